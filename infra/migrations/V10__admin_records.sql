-- Every administrative change commits in the same transaction as the chain record that accounts
-- for it. An erasure runs on the maintenance role's connection, so that role now appends its own
-- record there, as the service role appends everything else: it gets the append's privileges
-- (SELECT and INSERT on the log, UPDATE of the chain head, an outbox row) and still no UPDATE or
-- DELETE of the log itself (the append-only triggers apply to every role); the service role
-- still cannot erase. Row-level security confines both roles to the transaction's tenant.
GRANT SELECT, INSERT ON chain_entries, merkle_nodes, events, idempotency_keys, outbox TO audit_maintainer;
GRANT SELECT, UPDATE ON chain_heads TO audit_maintainer;
