//! Use cases, one module each, built on the chain core and the store. HTTP, SQS and schedule
//! handlers call these and only map their results.
pub mod ingest;
pub mod admin;
pub mod indexing;
pub mod query;
pub mod checkpoint;
pub mod global_log;
pub mod verify;
pub mod erasure;
pub mod export;
pub mod pruning;
pub mod authorizer;
pub mod partitions;
pub mod tail;
pub mod viewer_tokens;
pub mod console_settings;
pub mod oidc;
