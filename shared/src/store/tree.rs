//! Merkle reads: roots and proofs from stored node hashes. The chain module says which perfect
//! subtrees a proof needs (O(log n) of them); one query fetches them all.

use super::{hash_col, seq_col, tenant_param, to_i64, Store, StoreError, SET_TENANT};
use crate::chain::entry::Entry;
use crate::chain::hash::Hash;
use crate::chain::merkle::{self, NodeId};
use crate::chain::tiles::{entry_bundle, Tile, TileKind};
use std::collections::HashMap;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Statement};
use uuid::Uuid;

const FETCH_NODES: &str = "SELECT 0::smallint, seq, leaf_hash FROM chain_entries WHERE tenant_id = $1 AND seq = ANY($2)
     UNION ALL
     SELECT n.level, n.idx, n.hash FROM merkle_nodes n
       JOIN unnest($3::smallint[], $4::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx
      WHERE n.tenant_id = $1";
const TREE_SIZE: &str = "SELECT size FROM chain_heads WHERE tenant_id = $1";
const TILE_LEAVES: &str =
    "SELECT leaf_hash FROM chain_entries WHERE tenant_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq";
const TILE_NODES: &str =
    "SELECT hash FROM merkle_nodes WHERE tenant_id = $1 AND level = $2 AND idx >= $3 AND idx < $4 ORDER BY idx";
const TILE_ENTRIES: &str = "SELECT tenant_id, seq, event_id, received_at, content_digest FROM chain_entries
      WHERE tenant_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq";

/// A tile the tree holds has every one of its rows; fewer means stored nodes are missing.
fn check_tile_rows(tile: &Tile, rows: usize) -> Result<(), StoreError> {
    if rows != usize::from(tile.width) {
        return Err(StoreError::Corrupt(format!("{tile} has {rows} of its {} rows", tile.width)));
    }
    Ok(())
}

/// Fetches the hashes of `ids` (level 0 from the skeleton, higher levels from `merkle_nodes`, or
/// derived from the stored level below them).
/// Ids that are not stored are simply absent from the map.
async fn fetch_nodes(
    client: &impl GenericClient,
    statement: &Statement,
    tenant: Uuid,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    // Only every eighth level is stored (`merkle::STORED_LEVEL_STEP`); the rest is derived.
    let stored = fetch_stored(client, statement, tenant, &merkle::stored_sources(ids)).await?;
    Ok(merkle::derive_nodes(ids, &stored))
}

/// Fetches stored nodes as they are (`ids` at stored levels only).
async fn fetch_stored(
    client: &impl GenericClient,
    statement: &Statement,
    tenant: Uuid,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StoreError> {
    let leaves: Vec<i64> = ids.iter().filter(|i| i.level == 0).map(|i| to_i64(i.index)).collect::<Result<_, _>>()?;
    let inner: Vec<&NodeId> = ids.iter().filter(|i| i.level > 0).collect();
    let levels: Vec<i16> = inner.iter().map(|i| i16::from(i.level)).collect();
    let idx: Vec<i64> = inner.iter().map(|i| to_i64(i.index)).collect::<Result<_, _>>()?;
    let rows = client.query(statement, &[&tenant, &leaves, &levels, &idx]).await?;
    rows.iter()
        .map(|r| {
            let level = u8::try_from(r.get::<_, i16>(0)).map_err(|_| StoreError::Corrupt("bad node level".into()))?;
            Ok((NodeId { level, index: seq_col(r.get(1))? }, hash_col(r.get::<_, &[u8]>(2))?))
        })
        .collect()
}

/// A tree size and the root hash at that size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeHead {
    pub size: u64,
    pub root: Hash,
}

impl Store {
    /// Opens a read-only transaction acting for `tenant`; returns it with the node-fetching
    /// statement and the tenant's current size. (A plain method rather than a closure-taking one:
    /// futures of async closures cannot yet be shown `Send`, which the HTTP handlers need.)
    async fn begin_tree(
        &mut self,
        tenant: Uuid,
    ) -> Result<(tokio_postgres::Transaction<'_>, Statement, u64), StoreError> {
        self.recover().await?;
        let [fetch] = self.prepared([FETCH_NODES]).await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        let tenant_text = tenant_param(tenant);
        let set_params: [&(dyn ToSql + Sync); 1] = [&tenant_text];
        let size_params: [&(dyn ToSql + Sync); 1] = [&tenant];
        let (_, head) = futures::try_join!(tx.execute(SET_TENANT, &set_params), tx.query_opt(TREE_SIZE, &size_params))?;
        let size = seq_col(head.ok_or(StoreError::UnknownTenant)?.get(0))?;
        Ok((tx, fetch, size))
    }

    /// A tlog-tiles tile or entry bundle of the tenant's tree as it stands (`chain::tiles`), or
    /// `None` if the tree does not yet hold all of it. Tiles only ever fill up: what one names
    /// never changes once it is served.
    pub async fn tile(&mut self, tenant: Uuid, tile: &Tile) -> Result<Option<Vec<u8>>, StoreError> {
        let (tx, _, size) = self.begin_tree(tenant).await?;
        let Some((first, end)) = tile.node_range().filter(|_| tile.within(size)) else {
            tx.commit().await?;
            return Ok(None);
        };
        let (first, end) = (to_i64(first)?, to_i64(end)?);
        let body = match tile.kind {
            TileKind::Entries => {
                let rows = tx.query(TILE_ENTRIES, &[&tenant, &first, &end]).await?;
                let entries = rows
                    .iter()
                    .map(|r| {
                        Ok(Entry {
                            tenant_id: r.get(0),
                            seq: seq_col(r.get(1))?,
                            id: r.get(2),
                            received_at: r.get(3),
                            content_digest: hash_col(r.get::<_, &[u8]>(4))?,
                        }
                        .canonical_bytes())
                    })
                    .collect::<Result<Vec<Vec<u8>>, StoreError>>()?;
                check_tile_rows(tile, entries.len())?;
                entry_bundle(entries.iter().map(Vec::as_slice))
                    .ok_or_else(|| StoreError::Corrupt("an entry longer than a bundle allows".into()))?
            }
            TileKind::Hashes { .. } => {
                let rows = if tile.tree_level() == 0 {
                    tx.query(TILE_LEAVES, &[&tenant, &first, &end]).await?
                } else {
                    tx.query(TILE_NODES, &[&tenant, &i16::from(tile.tree_level()), &first, &end]).await?
                };
                check_tile_rows(tile, rows.len())?;
                rows.iter().flat_map(|r| r.get::<_, &[u8]>(0).to_vec()).collect()
            }
        };
        tx.commit().await?;
        Ok(Some(body))
    }

    /// The tenant's current tree size and root.
    pub async fn tree_head(&mut self, tenant: Uuid) -> Result<TreeHead, StoreError> {
        let (tx, fetch, size) = self.begin_tree(tenant).await?;
        let nodes = fetch_nodes(&tx, &fetch, tenant, &merkle::root_nodes(size)).await?;
        let head = TreeHead { size, root: merkle::root(size, &nodes)? };
        tx.commit().await?;
        Ok(head)
    }

    /// The tenant's current tree size alone.
    pub async fn tree_size(&mut self, tenant: Uuid) -> Result<u64, StoreError> {
        let (tx, _, size) = self.begin_tree(tenant).await?;
        tx.commit().await?;
        Ok(size)
    }

    /// The root at `size`, or `None` when a stored hash it derives from is missing (a row deleted
    /// behind the service): for verification, which reports that instead of failing.
    pub async fn root_if_complete(&mut self, tenant: Uuid, size: u64) -> Result<Option<Hash>, StoreError> {
        match self.root_at(tenant, size).await {
            Ok(root) => Ok(Some(root)),
            Err(StoreError::Merkle(merkle::MerkleError::MissingNode(_))) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The root at an earlier (or the current) tree size.
    pub async fn root_at(&mut self, tenant: Uuid, size: u64) -> Result<Hash, StoreError> {
        let (tx, fetch, current) = self.begin_tree(tenant).await?;
        check_size(size, current)?;
        let nodes = fetch_nodes(&tx, &fetch, tenant, &merkle::root_nodes(size)).await?;
        let root = merkle::root(size, &nodes)?;
        tx.commit().await?;
        Ok(root)
    }

    /// RFC 9162 inclusion proof of leaf `seq` in the tree of size `tree_size`.
    pub async fn inclusion_proof(&mut self, tenant: Uuid, seq: u64, tree_size: u64) -> Result<Vec<Hash>, StoreError> {
        let (tx, fetch, current) = self.begin_tree(tenant).await?;
        check_size(tree_size, current)?;
        if seq >= tree_size {
            return Err(StoreError::InvalidRange(format!("seq {seq} is not in a tree of size {tree_size}")));
        }
        let ids = merkle::inclusion_proof_nodes(seq, tree_size)?;
        let nodes = fetch_nodes(&tx, &fetch, tenant, &ids).await?;
        let proof = merkle::inclusion_proof(seq, tree_size, &nodes)?;
        tx.commit().await?;
        Ok(proof)
    }

    /// RFC 9162 inclusion proofs of several leaves in the tree of size `tree_size`, in the order
    /// of `seqs`: the nodes of every path are fetched in one query (paths to nearby leaves share
    /// most of their nodes, so the query reads each once).
    pub async fn inclusion_proofs(
        &mut self,
        tenant: Uuid,
        seqs: &[u64],
        tree_size: u64,
    ) -> Result<Vec<Vec<Hash>>, StoreError> {
        let (tx, fetch, current) = self.begin_tree(tenant).await?;
        check_size(tree_size, current)?;
        let mut ids = std::collections::BTreeSet::new();
        for &seq in seqs {
            if seq >= tree_size {
                return Err(StoreError::InvalidRange(format!("seq {seq} is not in a tree of size {tree_size}")));
            }
            ids.extend(merkle::inclusion_proof_nodes(seq, tree_size)?);
        }
        let ids: Vec<NodeId> = ids.into_iter().collect();
        let nodes = fetch_nodes(&tx, &fetch, tenant, &ids).await?;
        let proofs =
            seqs.iter().map(|&seq| merkle::inclusion_proof(seq, tree_size, &nodes)).collect::<Result<_, _>>()?;
        tx.commit().await?;
        Ok(proofs)
    }

    /// RFC 9162 consistency proof between two tree sizes.
    pub async fn consistency_proof(&mut self, tenant: Uuid, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
        let (tx, fetch, current) = self.begin_tree(tenant).await?;
        check_size(to, current)?;
        if from > to {
            return Err(StoreError::InvalidRange(format!("from ({from}) must not exceed to ({to})")));
        }
        let ids = merkle::consistency_proof_nodes(from, to)?;
        let nodes = fetch_nodes(&tx, &fetch, tenant, &ids).await?;
        let proof = merkle::consistency_proof(from, to, &nodes)?;
        tx.commit().await?;
        Ok(proof)
    }
}

fn check_size(size: u64, current: u64) -> Result<(), StoreError> {
    if size > current {
        return Err(StoreError::InvalidRange(format!("tree size {size} exceeds the current size {current}")));
    }
    Ok(())
}
