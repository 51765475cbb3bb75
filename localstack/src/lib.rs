//! The local stack: a throwaway or persistent PostgreSQL cluster and the local AWS endpoint,
//! started from the machine's own binaries and the project's venv. Tests, benchmarks and the local
//! run all start their services through this crate, so there is one way to do it.
pub mod process;
pub mod postgres;
pub mod moto;
pub mod opensearch;
pub mod bootstrap;
