-- The service-wide log of tenant heads. Each tenant checkpoint the checkpointer signs is also
-- appended, as an event, to one more chain: the log of the reserved tenant with the nil id. Its
-- own signed checkpoint is the one anchored in S3 (Object Lock), so one anchor per run covers
-- every tenant, and the service cannot show two tenants histories that disagree with it. The
-- global log is stored, hashed, proved and verified exactly like a tenant's chain.
INSERT INTO tenants (tenant_id, name)
    VALUES ('00000000-0000-0000-0000-000000000000', 'service-wide log of tenant heads');
INSERT INTO chain_heads (tenant_id) VALUES ('00000000-0000-0000-0000-000000000000');

-- Heads signed recently whose entry in the global log is missing: the checkpointer stored the
-- checkpoint and then stopped before recording it. Found by the idempotency key every head is
-- recorded under ('head:<tenant>:<size>'), so a retry never records a head twice.
CREATE INDEX checkpoints_signed_at ON checkpoints (signed_at);

CREATE FUNCTION audit_heads_not_logged(since timestamptz, max_heads integer)
    RETURNS TABLE (tenant_id uuid, tree_size bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
    SELECT c.tenant_id, c.tree_size
      FROM checkpoints c
     WHERE c.signed_at >= since
       AND c.tenant_id <> '00000000-0000-0000-0000-000000000000'
       AND NOT EXISTS (SELECT 1 FROM idempotency_keys k
                        WHERE k.tenant_id = '00000000-0000-0000-0000-000000000000'
                          AND k.key = 'head:' || c.tenant_id || ':' || c.tree_size)
     ORDER BY c.signed_at
     LIMIT max_heads
    $$;
REVOKE ALL ON FUNCTION audit_heads_not_logged(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_heads_not_logged(timestamptz, integer) TO audit_service;

-- The verifier also visits a tenant whose head moved below the verified size (a truncated
-- tail), not only one that grew.
CREATE OR REPLACE FUNCTION audit_tenants_to_verify(max_tenants integer) RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
    SELECT h.tenant_id
      FROM chain_heads h
      LEFT JOIN verification_state v ON v.tenant_id = h.tenant_id
     WHERE h.size <> COALESCE(v.verified_size, 0)
     ORDER BY v.verified_at NULLS FIRST, h.tenant_id
     LIMIT max_tenants
    $$;
