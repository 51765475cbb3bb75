//! The console's browser verifier: the log's own chain core (`shared/src/chain/`, compiled here
//! from the same source files) behind a JSON API, built for WebAssembly so the console checks in
//! the browser exactly what the service, the CLI and the SDKs check.
//!
//! - [`chain`]: the pure core, included by path. It imports nothing of its crate but itself
//!   (`crate::chain::..`), so it compiles unchanged inside this crate.
//! - [`keys`]: the pinned keys (verifier key strings) and the signed-note check against them.
//! - [`page`]: `verify_page`, a page of entries and its batch proof against the pinned keys.
//! - [`vectors`]: `run_vectors`, the shared test vectors run through this build.
//! - `abi`: the C ABI the WebAssembly module exports (`alloc`, `dealloc`, `verify_page`,
//!   `run_vectors`); `console/src/verifier.ts` is its TypeScript side.

#[path = "../../../shared/src/chain/mod.rs"]
pub mod chain;

pub mod keys;
pub mod page;
pub mod vectors;

pub mod abi;

use serde::Serialize;
use serde_json::json;

/// The JSON API every export answers through: the input bytes in, a JSON document out. A bad
/// input is answered `{"error":{"code","message"}}`, as the service answers a bad request.
fn answer<T: Serialize>(result: Result<T, ApiError>) -> Vec<u8> {
    let value = match result {
        Ok(value) => serde_json::to_value(value),
        Err(e) => Ok(json!({ "error": { "code": e.code(), "message": e.to_string() } })),
    };
    // Serialising a value built from owned strings and numbers cannot fail; the fallback keeps the
    // contract (always a JSON document) even so.
    value
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_else(|_| br#"{"error":{"code":"internal","message":"the result could not be encoded"}}"#.to_vec())
}

/// Why a call's input was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the input is not strict JSON: {0}")]
    NotStrictJson(#[from] chain::strict_json::StrictJsonError),
    #[error("the input does not have the expected shape: {0}")]
    Shape(#[from] serde_json::Error),
    #[error("{0}")]
    Invalid(String),
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotStrictJson(_) => "invalid_json",
            ApiError::Shape(_) | ApiError::Invalid(_) => "invalid_input",
        }
    }
}

/// `verify_page` over JSON: the input of [`page::PageInput`] (strict JSON), the answer a
/// [`page::PageReport`] or an error body.
pub fn verify_page_json(input: &[u8]) -> Vec<u8> {
    answer(page::verify_page_bytes(input))
}

/// `run_vectors` over JSON: `{"files": {"<file name>": <file text or parsed file>}}`, the answer a
/// [`vectors::VectorReport`] or an error body.
pub fn run_vectors_json(input: &[u8]) -> Vec<u8> {
    answer(vectors::run_vectors_bytes(input))
}
