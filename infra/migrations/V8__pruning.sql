-- Pruning: `events` partitions older than the retention are archived to S3 (per tenant, JSONL.gz
-- and a manifest) and then dropped, by the maintenance role. The hash skeleton (`chain_entries`,
-- `merkle_nodes`) stays, so proofs and verification keep working: a pruned entry verifies like an
-- erased one, by its skeleton. A tenant's legal hold keeps every partition it has rows in.

ALTER TABLE tenants ADD COLUMN legal_hold_until timestamptz;

-- One row per dropped partition, with the archives written for it (tenant, object keys, counts).
CREATE TABLE pruned_partitions (
    name        text PRIMARY KEY,
    range_from  timestamptz NOT NULL,
    range_to    timestamptz NOT NULL,
    archives    jsonb NOT NULL,
    pruned_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER pruned_partitions_append_only BEFORE UPDATE OR DELETE ON pruned_partitions
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
GRANT SELECT ON pruned_partitions TO audit_maintainer;

-- The monthly partitions of `events` whose whole range ends at or before `cutoff`.
CREATE FUNCTION audit_partitions_due(cutoff timestamptz)
    RETURNS TABLE (name text, range_from timestamptz, range_to timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public
    AS $$
    SELECT p.name, p.range_from, p.range_from + interval '1 month'
      FROM (SELECT c.relname::text AS name,
                   to_timestamp(substr(c.relname, 8), 'YYYY_MM')::timestamp AT TIME ZONE 'UTC' AS range_from
              FROM pg_inherits i
              JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'events'::regclass
               AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$') p
     WHERE p.range_from + interval '1 month' <= cutoff
     ORDER BY p.range_from
    $$;

-- Per tenant with rows in a partition: the seq range, the row count, and whether a legal hold
-- keeps the partition.
CREATE FUNCTION audit_partition_tenants(partition_name text)
    RETURNS TABLE (tenant_id uuid, first_seq bigint, last_seq bigint, row_count bigint, held boolean)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public
    AS $$
BEGIN
    IF partition_name !~ '^events_[0-9]{4}_[0-9]{2}$' THEN
        RAISE EXCEPTION 'not an events partition: %', partition_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT e.tenant_id, min(e.seq), max(e.seq), count(*),
                bool_or(t.legal_hold_until IS NOT NULL AND t.legal_hold_until > now())
           FROM %I e JOIN tenants t USING (tenant_id)
          GROUP BY e.tenant_id ORDER BY e.tenant_id', partition_name);
END
$$;

-- Drops a partition once every tenant with rows in it has an archive listed in `archives`
-- (a JSON array of objects with at least "tenant_id"), no tenant with rows in it is under a legal
-- hold, and its range ended at or before `cutoff`, which may not be later than the start of the
-- current month. Records the drop.
CREATE FUNCTION audit_drop_event_partition(partition_name text, cutoff timestamptz, archives jsonb)
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
    EXECUTE format('ALTER TABLE events DETACH PARTITION %I', partition_name);
    EXECUTE format('DROP TABLE %I', partition_name);
    INSERT INTO pruned_partitions (name, range_from, range_to, archives)
        VALUES (partition_name, due.range_from, due.range_to, archives);
END
$$;

REVOKE ALL ON FUNCTION audit_partitions_due(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_partition_tenants(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_drop_event_partition(text, timestamptz, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_partitions_due(timestamptz) TO audit_maintainer;
GRANT EXECUTE ON FUNCTION audit_partition_tenants(text) TO audit_maintainer;
GRANT EXECUTE ON FUNCTION audit_drop_event_partition(text, timestamptz, jsonb) TO audit_maintainer;

-- The archiver reads, one tenant at a time (row-level security applies), the rows it archives
-- and the checkpoint that covers them.
GRANT SELECT ON events, chain_entries, checkpoints TO audit_maintainer;
