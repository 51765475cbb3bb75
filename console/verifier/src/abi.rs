//! The C ABI of the WebAssembly module, small enough to call without generated bindings:
//!
//! - `alloc(len) -> ptr`: a buffer of `len` bytes the caller writes its input into;
//! - `dealloc(ptr, len)`: frees a buffer from `alloc` or a result (`len` = its whole length);
//! - `verify_page(ptr, len) -> ptr`, `run_vectors(ptr, len) -> ptr`: read the JSON input at
//!   `ptr..ptr+len` (the caller still owns and frees it) and return a result buffer: a 4-byte
//!   little-endian length `n`, then `n` bytes of JSON. The caller frees it with
//!   `dealloc(ptr, 4 + n)`.
//!
//! Every buffer is a boxed byte slice, so its length is its allocation and `dealloc` rebuilds
//! exactly what was allocated. The names are exported unmangled on wasm32 only; on the host these
//! are ordinary functions, so they cannot clash with a C library's symbols in a test binary.
#![allow(unsafe_code)]

/// Allocates a zeroed buffer of `len` bytes and hands it to the caller.
#[cfg_attr(target_arch = "wasm32", export_name = "alloc")]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    Box::into_raw(vec![0u8; len].into_boxed_slice()).cast::<u8>()
}

/// Frees a buffer that [`alloc`] or a call returned.
///
/// # Safety
/// `ptr` and `len` must be those of one live buffer from this module, freed once.
#[cfg_attr(target_arch = "wasm32", export_name = "dealloc")]
pub unsafe extern "C" fn dealloc(ptr: *mut u8, len: usize) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: the caller passes back a pointer and length this module produced with
    // `Box<[u8]>::into_raw`, so this rebuilds that same box.
    drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
}

/// Runs `call` on the input buffer and returns its answer as a length-prefixed buffer.
///
/// # Safety
/// `ptr..ptr+len` must be readable (a buffer from [`alloc`], or empty with any `ptr`).
unsafe fn call(ptr: *const u8, len: usize, call: fn(&[u8]) -> Vec<u8>) -> *mut u8 {
    let input: &[u8] = if len == 0 {
        &[]
    } else {
        // SAFETY: the caller wrote `len` bytes at `ptr` into a buffer of this module.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    let answer = call(input);
    // A JSON answer over 4 GiB cannot be produced from an input that fits in wasm32's memory.
    let n = u32::try_from(answer.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + answer.len());
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(&answer);
    Box::into_raw(out.into_boxed_slice()).cast::<u8>()
}

/// `verify_page` (see [`crate::page`]).
///
/// # Safety
/// As [`call`]: `ptr..ptr+len` is a readable buffer of this module.
#[cfg_attr(target_arch = "wasm32", export_name = "verify_page")]
pub unsafe extern "C" fn verify_page(ptr: *const u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { call(ptr, len, crate::verify_page_json) }
}

/// `run_vectors` (see [`crate::vectors`]).
///
/// # Safety
/// As [`call`]: `ptr..ptr+len` is a readable buffer of this module.
#[cfg_attr(target_arch = "wasm32", export_name = "run_vectors")]
pub unsafe extern "C" fn run_vectors(ptr: *const u8, len: usize) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { call(ptr, len, crate::run_vectors_json) }
}
