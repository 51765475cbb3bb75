//! Full-text search. PostgreSQL's full text (`store::query`, through `audit_text_search`) is the
//! default; with OpenSearch configured, `GET /v1/events?q=` asks OpenSearch for the matching seqs
//! and reads the entries themselves from PostgreSQL, so every hit is the stored, verifiable
//! entry and the results contract is the same either way.
//!
//! One index holds every tenant's documents, routed by tenant id (a tenant's documents live on
//! one shard, and a search touches only that shard), with the tenant id as a field every query
//! filters on. An index per tenant would put one index (and its shards) in the cluster state per
//! tenant, which does not scale to many small tenants; see docs/ARCHITECTURE.md.

pub mod document;
pub mod opensearch;

pub use opensearch::{OpenSearch, SearchError};
