-- What the HTTP API needs beyond the chain: publishers' signing keys, the tenant setting that
-- requires publisher signatures, and indexes for filtered listing and full-text search.

-- Publisher keys: registered by a tenant's admin, used to check signatures on incoming events.
-- Rows are never deleted; a key is revoked once, and events it signed before stay valid.
CREATE TABLE publisher_keys (
    tenant_id   uuid NOT NULL REFERENCES tenants,
    key_id      text NOT NULL CHECK (key_id ~ '^[A-Za-z0-9._:-]{1,128}$'),
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    public_key  bytea NOT NULL CHECK (length(public_key) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    PRIMARY KEY (tenant_id, key_id)
);
ALTER TABLE publisher_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON publisher_keys USING (tenant_id = audit_current_tenant())
    WITH CHECK (tenant_id = audit_current_tenant());

-- The only change a key row may see: revoked_at going from NULL to a time.
CREATE FUNCTION audit_publisher_key_revoke_only() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.revoked_at IS NOT NULL OR NEW.revoked_at IS NULL
       OR (NEW.tenant_id, NEW.key_id, NEW.name, NEW.public_key, NEW.created_at)
          IS DISTINCT FROM (OLD.tenant_id, OLD.key_id, OLD.name, OLD.public_key, OLD.created_at) THEN
        RAISE EXCEPTION 'a publisher key can only be revoked, once' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER publisher_keys_revoke_only BEFORE UPDATE OR DELETE ON publisher_keys
    FOR EACH ROW EXECUTE FUNCTION audit_publisher_key_revoke_only();

ALTER TABLE tenants ADD COLUMN require_signatures boolean NOT NULL DEFAULT false;

GRANT SELECT, INSERT ON publisher_keys TO audit_service;
GRANT UPDATE (revoked_at) ON publisher_keys TO audit_service;
GRANT UPDATE (require_signatures) ON tenants TO audit_service;

-- Listing: `GET /v1/events` orders by seq within a tenant; each common filter gets an index that
-- ends in seq, so a filtered page is an index range scan per partition, merged by seq. Outcome and
-- severity have a handful of values each and are filtered while scanning in seq order instead.
CREATE INDEX events_by_action ON events (tenant_id, action, seq);
CREATE INDEX events_by_actor ON events (tenant_id, actor_id, seq);
CREATE INDEX events_by_resource ON events (tenant_id, resource_type, resource_id, seq);
CREATE INDEX events_by_occurred ON events (tenant_id, occurred_at);

-- Full text (the default search when no OpenSearch is configured): every string value of the
-- stored event (action, actor, resource, source, metadata values), not its member names. An
-- expression index, so erased content (NULL) simply drops out and nothing is stored twice.
CREATE INDEX events_text ON events USING gin (jsonb_to_tsvector('simple', content::jsonb, '["string"]'));

-- Row-level security evaluates a policy before any condition whose operator is not leakproof,
-- and the text-match operator (@@) is not, so under the policy the index above could never be
-- used: every row of the tenant would be parsed. This function runs the match as the owner, with
-- the tenant taken from the same transaction setting the policies use, so it returns nothing
-- when no tenant is set and only the current tenant's rows otherwise.
CREATE FUNCTION audit_text_search(query text) RETURNS TABLE (seq bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
    SELECT e.seq
      FROM events e
     WHERE e.tenant_id = audit_current_tenant()
       AND jsonb_to_tsvector('simple', e.content::jsonb, '["string"]') @@ websearch_to_tsquery('simple', query)
    $$;
REVOKE ALL ON FUNCTION audit_text_search(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_text_search(text) TO audit_service;
