//! The pure core of the log: event model and validation, canonical bytes, hashes, the Merkle tree
//! and its proofs, and checkpoints. Nothing here does I/O or is async, and nothing here imports
//! another module of this crate; that keeps every hash reproducible from published formats alone.
pub mod hash;
pub mod event;
pub mod canonical;
pub mod strict_json;
pub mod entry;
pub mod publisher;
pub mod merkle;
pub mod tiles;
pub mod checkpoint;
pub mod receipt;
pub mod verify;
pub mod archive;
pub mod export;
