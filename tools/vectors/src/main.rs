//! `vectors`: writes the test vectors of test-vectors/v1 (see test-vectors/README.md).
//!
//! `cargo run -p vectors` rewrites the files; `cargo run -p vectors -- --check` writes nothing and
//! exits non-zero, naming each file, when a regeneration would change any of them or when a file
//! under test-vectors/v1 is one no generator produces. Regeneration names such files but leaves
//! them for the author to delete.

use anyhow::{bail, Context, Result};
use std::process::ExitCode;

fn main() -> Result<ExitCode> {
    let check = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--check") => true,
        Some(other) => bail!("unknown argument {other:?}; usage: vectors [--check]"),
    };
    let root = vectors::repository_root();
    let files = vectors::generate_all()?;
    let changed = vectors::changed_files(&root, &files).context("comparing with the committed vectors")?;
    let stray = vectors::stray_files(&root, &files).context("listing the committed vectors")?;
    if check {
        if changed.is_empty() && stray.is_empty() {
            println!("{} vector files are up to date", files.len());
            return Ok(ExitCode::SUCCESS);
        }
        for path in &changed {
            eprintln!("would change: {path}");
        }
        for path in &stray {
            eprintln!("not generated: {path}");
        }
        if !changed.is_empty() {
            eprintln!("{} of {} vector files would change; run `cargo run -p vectors`", changed.len(), files.len());
        }
        if !stray.is_empty() {
            eprintln!("files under {} that no generator produces: {}; delete them", vectors::VECTORS_DIR, stray.len());
        }
        return Ok(ExitCode::FAILURE);
    }
    vectors::write_files(&root, &files)?;
    for file in &files {
        let state = if changed.contains(&file.path) { "written" } else { "unchanged" };
        println!("{state}: {}", file.path);
    }
    for path in &stray {
        eprintln!("not generated (delete it): {path}");
    }
    Ok(ExitCode::SUCCESS)
}
