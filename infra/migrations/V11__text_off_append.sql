-- Full text off the append path. Until now PostgreSQL's full text was an expression GIN index on
-- `events` (V3), so every append paid for parsing its strings and inserting their words into the
-- index, in the transaction the client waits for, even where OpenSearch serves `q`. The words now
-- live in `event_text`, written after commit by the index queue's consumer when no OpenSearch is
-- configured (`store::text`); an append writes nothing here. An event is searchable through
-- PostgreSQL once the indexer has run, as it is through OpenSearch.
--
-- What the expression index gave for free is kept by hand:
-- - erased content is not searchable: a trigger deletes the row when `events.content` becomes
--   NULL, and the indexer locks the rows it reads (FOR SHARE), so an erasure and an indexer
--   running at once are serialised and the erased words never land after the erasure;
-- - pruned content is not searchable: dropping an `events` partition deletes its rows here too.

CREATE TABLE event_text (
    tenant_id  uuid NOT NULL,
    seq        bigint NOT NULL,
    words      tsvector NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);
CREATE INDEX event_text_words ON event_text USING gin (words);
ALTER TABLE event_text ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON event_text USING (tenant_id = audit_current_tenant())
    WITH CHECK (tenant_id = audit_current_tenant());
-- The service role has no privilege on the table: the indexer writes through audit_index_text and
-- the search reads through audit_text_search, both for the tenant of the transaction only; rows
-- leave through the erasure trigger and pruning.

-- The words of stored content: every string value (action, actor, resource, source, metadata
-- values), not member names, as V3's index had them.
CREATE FUNCTION audit_event_words(content text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT jsonb_to_tsvector('simple', content::jsonb, '["string"]') $$;

CREATE FUNCTION audit_event_text_forget() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
    AS $$
BEGIN
    DELETE FROM event_text WHERE tenant_id = OLD.tenant_id AND seq = OLD.seq;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_text_forget AFTER UPDATE OF content ON events
    FOR EACH ROW WHEN (OLD.content IS NOT NULL AND NEW.content IS NULL)
    EXECUTE FUNCTION audit_event_text_forget();

-- The indexer's write: the words of the current tenant's entries in the ranges [firsts[i],
-- ends[i]), those already written left alone (a redelivered message is harmless), entries without
-- content (erased, or pruned with their partition) skipped; returns the rows written. The event
-- rows read are locked FOR SHARE until commit, so an erasure of one of them waits for this write
-- (and its trigger then deletes the row), or this read waits for the erasure and finds no content.
-- (Locking needs UPDATE privilege on events, which the service role must not have: hence a
-- function running as the owner.)
CREATE FUNCTION audit_index_text(firsts bigint[], ends bigint[]) RETURNS bigint
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public
    AS $$
    WITH wanted AS (
        SELECT DISTINCT s FROM unnest(firsts, ends) AS r(lo, hi), generate_series(lo, hi - 1) AS s
    ), source AS (
        SELECT e.tenant_id, e.seq, e.content FROM events e JOIN wanted w ON e.seq = w.s
         WHERE e.tenant_id = audit_current_tenant() AND e.content IS NOT NULL
           FOR SHARE OF e
    ), written AS (
        INSERT INTO event_text (tenant_id, seq, words)
        SELECT tenant_id, seq, audit_event_words(content) FROM source
        ON CONFLICT (tenant_id, seq) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) FROM written
    $$;
REVOKE ALL ON FUNCTION audit_index_text(bigint[], bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_index_text(bigint[], bigint[]) TO audit_service;

-- The existing events' words, then the index they replace.
INSERT INTO event_text (tenant_id, seq, words)
SELECT tenant_id, seq, audit_event_words(content) FROM events WHERE content IS NOT NULL;
DROP INDEX events_text;

-- The search itself (see V3 for why a SECURITY DEFINER function): the same contract, now over
-- `event_text`.
CREATE OR REPLACE FUNCTION audit_text_search(query text) RETURNS TABLE (seq bigint)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
    SELECT t.seq
      FROM event_text t
     WHERE t.tenant_id = audit_current_tenant()
       AND t.words @@ websearch_to_tsquery('simple', query)
    $$;

-- Pruning (V8) drops a partition; its words go with it, in the same transaction.
CREATE OR REPLACE FUNCTION audit_drop_event_partition(partition_name text, cutoff timestamptz, archives jsonb)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public
    AS $$
DECLARE
    due record;
    missing uuid;
BEGIN
    IF cutoff > date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' THEN
        RAISE EXCEPTION 'the cutoff may not reach into the current month' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO due FROM audit_partitions_due(cutoff) d WHERE d.name = partition_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'partition % is not due for pruning', partition_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF EXISTS (SELECT 1 FROM audit_partition_tenants(partition_name) p WHERE p.held) THEN
        RAISE EXCEPTION 'partition % holds rows of a tenant under legal hold', partition_name
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT p.tenant_id INTO missing
      FROM audit_partition_tenants(partition_name) p
     WHERE NOT EXISTS (SELECT 1 FROM jsonb_array_elements(archives) a WHERE (a->>'tenant_id')::uuid = p.tenant_id)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'partition % has rows of tenant % that were not archived', partition_name, missing
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('DELETE FROM event_text t USING %I e WHERE t.tenant_id = e.tenant_id AND t.seq = e.seq',
                   partition_name);
    EXECUTE format('ALTER TABLE events DETACH PARTITION %I', partition_name);
    EXECUTE format('DROP TABLE %I', partition_name);
    INSERT INTO pruned_partitions (name, range_from, range_to, archives)
        VALUES (partition_name, due.range_from, due.range_to, archives);
END
$$;
