-- The scheduled verifier's progress: per tenant, how far the chain has been verified and the chain
-- hash it ended in. The next run verifies only what was appended since, after checking that the
-- chain still ends in the recorded hash at the recorded size (so a rewrite of the verified part
-- is found too, even though it is not re-read).
CREATE TABLE verification_state (
    tenant_id      uuid PRIMARY KEY REFERENCES tenants,
    verified_size  bigint NOT NULL CHECK (verified_size >= 0),
    chain_hash     bytea NOT NULL CHECK (length(chain_hash) = 32),
    verified_at    timestamptz NOT NULL DEFAULT now(),
    -- The last run's fault (first bad seq and reason), NULL when it passed.
    last_fault     text
);
ALTER TABLE verification_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON verification_state USING (tenant_id = audit_current_tenant())
    WITH CHECK (tenant_id = audit_current_tenant());
GRANT SELECT, INSERT, UPDATE ON verification_state TO audit_service;

-- Tenants with entries not verified yet, longest-waiting first. Like audit_tenants_to_checkpoint,
-- it reveals only tenant ids; the verifier then acts for each tenant in turn.
CREATE FUNCTION audit_tenants_to_verify(max_tenants integer) RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
    SELECT h.tenant_id
      FROM chain_heads h
      LEFT JOIN verification_state v ON v.tenant_id = h.tenant_id
     WHERE h.size > COALESCE(v.verified_size, 0)
     ORDER BY v.verified_at NULLS FIRST, h.tenant_id
     LIMIT max_tenants
    $$;
REVOKE ALL ON FUNCTION audit_tenants_to_verify(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_tenants_to_verify(integer) TO audit_service;
