//! The audit log's shared crate. Modules are listed in reading order: the pure chain core first,
//! then the adapters for PostgreSQL and AWS.
pub mod chain;
