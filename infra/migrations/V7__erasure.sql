-- Erasure that stays verifiable: an event's content and salt (and the copies of personal data in
-- the filter columns) are removed, while the hash skeleton in `chain_entries` (content digest,
-- leaf and chain hash) stays, so every proof and verification still passes and the entry shows
-- as erased.
--
-- Erasure has its own role. The service role cannot UPDATE or DELETE anything; the maintenance
-- role cannot either, directly: it may only call audit_erase, which changes nothing but what an
-- erasure removes, and only for the tenant the transaction acts for.

DO $$
BEGIN
    CREATE ROLE audit_maintainer NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
GRANT USAGE ON SCHEMA public TO audit_maintainer;

ALTER TABLE events ADD COLUMN erased_at timestamptz;

-- The append-only guard of `events`, with one exception: inside audit_erase (which sets
-- audit.erasing for its own transaction), an UPDATE may clear content, salt, actor_id and
-- resource_id and set erased_at, and change nothing else.
CREATE FUNCTION audit_events_guard() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('audit.erasing', true) = 'on'
       AND NEW.content IS NULL AND NEW.salt IS NULL AND NEW.erased_at IS NOT NULL
       AND NEW.actor_id = '' AND NEW.resource_id IS NULL
       AND (NEW.tenant_id, NEW.seq, NEW.received_at, NEW.event_id, NEW.occurred_at, NEW.action,
            NEW.resource_type, NEW.outcome, NEW.severity, NEW.source)
           IS NOT DISTINCT FROM
           (OLD.tenant_id, OLD.seq, OLD.received_at, OLD.event_id, OLD.occurred_at, OLD.action,
            OLD.resource_type, OLD.outcome, OLD.severity, OLD.source)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit log rows are append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION audit_events_guard();

-- Erases the content of the acting tenant's events matching exactly one criterion: one event id,
-- every event of one actor id, or every event received before a time (a retention window shorter
-- than the partitions'). Returns how many events were erased now (already erased ones are not
-- counted again).
CREATE FUNCTION audit_erase(p_tenant uuid, p_event_id uuid, p_actor_id text, p_received_before timestamptz)
    RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
    AS $$
DECLARE
    erased bigint;
BEGIN
    IF p_tenant IS NULL OR p_tenant IS DISTINCT FROM audit_current_tenant() THEN
        RAISE EXCEPTION 'audit_erase acts only for the tenant of the transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF num_nonnulls(p_event_id, p_actor_id, p_received_before) <> 1 THEN
        RAISE EXCEPTION 'audit_erase needs exactly one criterion' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('audit.erasing', 'on', true);
    UPDATE events
       SET content = NULL, salt = NULL, actor_id = '', resource_id = NULL, erased_at = now()
     WHERE tenant_id = p_tenant
       AND content IS NOT NULL
       AND (p_event_id IS NULL OR event_id = p_event_id)
       AND (p_actor_id IS NULL OR actor_id = p_actor_id)
       AND (p_received_before IS NULL OR received_at < p_received_before);
    GET DIAGNOSTICS erased = ROW_COUNT;
    PERFORM set_config('audit.erasing', 'off', true);
    RETURN erased;
END
$$;
REVOKE ALL ON FUNCTION audit_erase(uuid, uuid, text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_erase(uuid, uuid, text, timestamptz) TO audit_maintainer;
-- The maintenance role reads only what it needs to answer for an erasure: whether an event exists.
GRANT SELECT (tenant_id, event_id) ON chain_entries TO audit_maintainer;
