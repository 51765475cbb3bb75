-- The Merkle tree keeps every eighth level only (the levels of C2SP tlog-tiles' tiles): the leaf
-- hashes in chain_entries, and in merkle_nodes the perfect subtrees of 2^8, 2^16, ... leaves.
-- Any other node is derived when read from at most 128 stored nodes below it
-- (`chain::merkle::derive_nodes`), so an append writes about one tree row per 256 events instead
-- of one per event, and the tree costs about 1 byte per event instead of about 190.
--
-- The rows of the other levels are dropped here. merkle_nodes is append-only (V1), so its
-- trigger is set aside for this one statement; nothing else changes the table. The space is
-- reused by later appends once autovacuum has run (or `VACUUM merkle_nodes;`).
ALTER TABLE merkle_nodes DISABLE TRIGGER merkle_nodes_append_only;
DELETE FROM merkle_nodes WHERE level % 8 <> 0;
ALTER TABLE merkle_nodes ENABLE TRIGGER merkle_nodes_append_only;
ALTER TABLE merkle_nodes ADD CONSTRAINT merkle_nodes_stored_levels CHECK (level % 8 = 0);
