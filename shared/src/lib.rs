//! The audit log's shared crate. Modules are listed in reading order: the pure chain core first,
//! then the adapters for PostgreSQL and AWS, then the use cases built on them, then the HTTP layer
//! and the start-up every function shares.
pub mod chain;
pub mod auth;
pub mod signer;
pub mod store;
pub mod aws;
pub mod search;
pub mod service;
pub mod metrics;
pub mod api;
pub mod sqs;
pub mod config;
pub mod runtime;
