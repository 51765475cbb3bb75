-- The chain store: tenants, per-tenant chain heads, the hash skeleton, Merkle nodes, event content
-- (partitioned by month), idempotency records and the outbox.
--
-- Where the hash skeleton lives: a unique index on a partitioned table must contain the partition
-- key, so UNIQUE (tenant_id, seq) on the time-partitioned `events` table could not stop two rows
-- with the same seq in different months. The skeleton (`chain_entries`: seq, id, time, content
-- digest, leaf and chain hash) is therefore an ordinary table whose primary key (tenant_id, seq)
-- the database enforces globally; a forked chain cannot be committed. It is small (about 200 bytes
-- a row) and is kept when content partitions are pruned, so proofs for old entries keep working.
-- The content itself lives in `events`, partitioned by `received_at` month, so old content can be
-- archived and dropped a month at a time.

DO $$
BEGIN
    CREATE ROLE audit_service NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;

-- The tenant a connection acts for, set per transaction with set_config('app.tenant_id', .., true).
-- Unset means no tenant: every row-level-security policy then matches nothing.
CREATE FUNCTION audit_current_tenant() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE FUNCTION audit_reject_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'the audit table % is append-only; % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TABLE tenants (
    tenant_id   uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per tenant, created with the tenant and locked (SELECT .. FOR UPDATE) by every append:
-- the lock serialises writers of one tenant and nothing else.
CREATE TABLE chain_heads (
    tenant_id         uuid PRIMARY KEY REFERENCES tenants,
    size              bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
    chain_hash        bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'
                      CHECK (length(chain_hash) = 32),
    -- The Merkle frontier: hashes of the perfect subtrees that make up the current tree (one per
    -- set bit of size, largest first), 32 bytes each. An append needs exactly these to compute
    -- the nodes it completes, and reading them with the lock saves a round trip under it.
    frontier          bytea NOT NULL DEFAULT '\x' CHECK (length(frontier) % 32 = 0),
    last_received_at  timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chain_entries (
    tenant_id       uuid NOT NULL,
    seq             bigint NOT NULL CHECK (seq >= 0),
    event_id        uuid NOT NULL UNIQUE,
    received_at     timestamptz NOT NULL,
    content_digest  bytea NOT NULL CHECK (length(content_digest) = 32),
    leaf_hash       bytea NOT NULL CHECK (length(leaf_hash) = 32),
    chain_hash      bytea NOT NULL CHECK (length(chain_hash) = 32),
    PRIMARY KEY (tenant_id, seq)
);

-- Hashes of complete (perfect) Merkle subtrees of level >= 1; level 0 is chain_entries.leaf_hash.
-- Node (level, idx) covers leaves [idx * 2^level, (idx + 1) * 2^level).
CREATE TABLE merkle_nodes (
    tenant_id  uuid NOT NULL,
    level      smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx        bigint NOT NULL CHECK (idx >= 0),
    hash       bytea NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (tenant_id, level, idx)
);

CREATE TABLE events (
    tenant_id      uuid NOT NULL,
    seq            bigint NOT NULL,
    received_at    timestamptz NOT NULL,
    event_id       uuid NOT NULL,
    occurred_at    timestamptz NOT NULL,
    action         text NOT NULL,
    actor_id       text NOT NULL,
    resource_type  text,
    resource_id    text,
    outcome        text NOT NULL,
    severity       text,
    source         text,
    -- RFC 8785 canonical JSON exactly as digested, and its salt; both NULL once erased.
    content        text,
    salt           bytea CHECK (length(salt) = 32),
    PRIMARY KEY (tenant_id, seq, received_at)
) PARTITION BY RANGE (received_at);

CREATE TABLE idempotency_keys (
    tenant_id     uuid NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  bytea NOT NULL CHECK (length(request_hash) = 32),
    first_seq     bigint NOT NULL,
    count         integer NOT NULL CHECK (count > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);

-- One row per committed append; the relay sends it to the index queue and marks it sent.
CREATE TABLE outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id   uuid NOT NULL,
    first_seq   bigint NOT NULL,
    count       integer NOT NULL CHECK (count > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Append-only: no UPDATE or DELETE on the hash skeleton, the Merkle nodes or the content.
CREATE TRIGGER chain_entries_append_only BEFORE UPDATE OR DELETE ON chain_entries
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER chain_entries_no_truncate BEFORE TRUNCATE ON chain_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER merkle_nodes_append_only BEFORE UPDATE OR DELETE ON merkle_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER merkle_nodes_no_truncate BEFORE TRUNCATE ON merkle_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_reject_change();
-- Row triggers on a partitioned table are cloned onto every partition, present and future.
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();
CREATE TRIGGER idempotency_keys_append_only BEFORE UPDATE ON idempotency_keys
    FOR EACH ROW EXECUTE FUNCTION audit_reject_change();

-- Monthly partitions of `events` from the month of `from_month` for `months` months; returns how
-- many were created. Safe to call any number of times.
CREATE FUNCTION audit_ensure_event_partitions(from_month date, months integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$
DECLARE
    created integer := 0;
    lo date;
    name text;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        lo := (date_trunc('month', from_month) + make_interval(months => i))::date;
        name := format('events_%s', to_char(lo, 'YYYY_MM'));
        IF to_regclass(name) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                name, lo::timestamp AT TIME ZONE 'UTC', (lo + interval '1 month')::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END
$$;

-- Row-level security: a second wall behind the service's own tenant checks. Every table holding
-- tenant rows gets the same policy: rows of the tenant set for the transaction, nothing else.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'chain_heads', 'chain_entries', 'merkle_nodes', 'events',
                             'idempotency_keys', 'outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING (tenant_id = audit_current_tenant())'
                       ' WITH CHECK (tenant_id = audit_current_tenant())', t);
    END LOOP;
END
$$;

-- The service role reads and appends. It can move a chain head and mark outbox rows sent, and
-- nothing else: no UPDATE or DELETE of entries, nodes or content, no DDL.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO audit_service;
GRANT SELECT, INSERT ON tenants, chain_entries, merkle_nodes, events, idempotency_keys TO audit_service;
GRANT SELECT, INSERT, UPDATE ON chain_heads TO audit_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox TO audit_service;
REVOKE ALL ON FUNCTION audit_ensure_event_partitions(date, integer) FROM PUBLIC;
