-- Signed checkpoints: one row per tenant and signed tree size, append-only. The note is stored
-- exactly as signed (C2SP signed note), so it can be handed out and verified byte for byte.

CREATE TABLE checkpoints (
    tenant_id   uuid NOT NULL REFERENCES tenants,
    tree_size   bigint NOT NULL CHECK (tree_size >= 0),
    root_hash   bytea NOT NULL CHECK (length(root_hash) = 32),
    note        text NOT NULL,
    key_name    text NOT NULL,
    key_id      bytea NOT NULL CHECK (length(key_id) = 4),
    signed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, tree_size)
);

CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();

ALTER TABLE checkpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON checkpoints
    USING (tenant_id = audit_current_tenant()) WITH CHECK (tenant_id = audit_current_tenant());
GRANT SELECT, INSERT ON checkpoints TO audit_service;

-- The scheduled checkpointer works across tenants, which row-level security otherwise hides from
-- the service role. This function reveals only which tenants' trees grew past their latest
-- signed checkpoint, nothing of their rows; the checkpointer then acts for each tenant in turn.
CREATE FUNCTION audit_tenants_to_checkpoint(max_tenants integer) RETURNS TABLE (tenant_id uuid)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
    SELECT h.tenant_id
      FROM chain_heads h
     WHERE h.size > COALESCE((SELECT max(c.tree_size) FROM checkpoints c WHERE c.tenant_id = h.tenant_id), 0)
     ORDER BY h.updated_at
     LIMIT max_tenants
    $$;
REVOKE ALL ON FUNCTION audit_tenants_to_checkpoint(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_tenants_to_checkpoint(integer) TO audit_service;
