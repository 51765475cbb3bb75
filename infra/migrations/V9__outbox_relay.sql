-- The outbox relay. Every append writes one outbox row in its transaction (V1). After commit the
-- ingest function sends it to the index queue and marks it sent; the scheduled relay sends what
-- was committed but never sent (an instance that stopped between commit and send), so no entry
-- is left unindexed, and deletes sent rows after a while.
--
-- The relay works across tenants, which row-level security forbids to the service role, so it
-- goes through these functions. Like audit_tenants_to_checkpoint they reveal positions only
-- (tenant id, first seq, count), never content.

-- Unsent rows committed at least `min_age` ago (younger ones are normally being sent by the
-- instance that wrote them), oldest first. The service-wide log of tenant heads (the nil tenant)
-- is not searchable through the API, so its rows are never sent, only purged.
CREATE FUNCTION audit_outbox_unsent(min_age interval, max_rows integer)
    RETURNS TABLE (id bigint, tenant_id uuid, first_seq bigint, count integer)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
    SELECT o.id, o.tenant_id, o.first_seq, o.count
      FROM outbox o
     WHERE o.sent_at IS NULL
       AND o.created_at <= now() - min_age
       AND o.tenant_id <> '00000000-0000-0000-0000-000000000000'
     ORDER BY o.id
     LIMIT max_rows
    $$;

-- Marks rows sent; returns how many were still unsent.
CREATE FUNCTION audit_outbox_mark_sent(ids bigint[]) RETURNS integer
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public
    AS $$
    WITH marked AS (
        UPDATE outbox SET sent_at = now() WHERE id = ANY (ids) AND sent_at IS NULL RETURNING 1
    )
    SELECT count(*)::integer FROM marked
    $$;

-- Deletes rows sent more than `min_age` ago (and the global log's rows, never sent, after the
-- same time); returns how many.
CREATE FUNCTION audit_outbox_purge(min_age interval) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public
    AS $$
    WITH purged AS (
        DELETE FROM outbox
         WHERE (sent_at IS NOT NULL AND sent_at < now() - min_age)
            OR (tenant_id = '00000000-0000-0000-0000-000000000000' AND created_at < now() - min_age)
        RETURNING 1
    )
    SELECT count(*) FROM purged
    $$;

-- Reindexing (a new or emptied search index): queues every entry of every tenant again, as
-- outbox rows of at most `batch` entries, which the relay sends. For operators (the owner):
-- `SELECT audit_outbox_requeue_all(1000);` Returns how many rows it queued.
CREATE FUNCTION audit_outbox_requeue_all(batch integer) RETURNS bigint
    LANGUAGE sql VOLATILE
    AS $$
    WITH queued AS (
        INSERT INTO outbox (tenant_id, first_seq, count)
        SELECT h.tenant_id, s, least(batch::bigint, h.size - s)::integer
          FROM chain_heads h, generate_series(0::bigint, h.size - 1, batch::bigint) AS s
         WHERE h.size > 0 AND h.tenant_id <> '00000000-0000-0000-0000-000000000000'
        RETURNING 1
    )
    SELECT count(*) FROM queued
    $$;
REVOKE ALL ON FUNCTION audit_outbox_requeue_all(integer) FROM PUBLIC;

CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;

REVOKE ALL ON FUNCTION audit_outbox_unsent(interval, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_outbox_mark_sent(bigint[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_outbox_purge(interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_outbox_unsent(interval, integer) TO audit_service;
GRANT EXECUTE ON FUNCTION audit_outbox_mark_sent(bigint[]) TO audit_service;
GRANT EXECUTE ON FUNCTION audit_outbox_purge(interval) TO audit_service;
