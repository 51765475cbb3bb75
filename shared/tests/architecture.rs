//! Invariants of the code's shape that a reader relies on (docs/ARCHITECTURE.md), checked by
//! reading the sources: `chain` imports nothing else of the crate and does no I/O, and SQL lives
//! only under `store`.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn chain_imports_nothing_else_of_the_crate_and_does_no_io() {
    let files = rust_files(&src().join("chain"));
    assert!(files.len() >= 8, "expected the chain modules, found {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            let uses_crate = code.contains("crate::") && !code.contains("crate::chain::");
            let io = ["tokio", "tokio_postgres", "aws_", "std::fs", "std::net::Tcp", "reqwest", "async fn"]
                .iter()
                .any(|needle| code.contains(needle));
            assert!(!uses_crate && !io && !code.contains("super::super"), "{}:{}: {line}", file.display(), n + 1);
        }
    }
}

#[test]
fn sql_lives_only_in_store() {
    let sql_markers = ["SELECT ", "INSERT INTO", "UPDATE ", "DELETE FROM", "CREATE TABLE"];
    for file in rust_files(&src()) {
        if file.starts_with(src().join("store")) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for (n, line) in text.lines().enumerate() {
            let in_string = line.contains('"');
            let hit = sql_markers.iter().any(|m| line.contains(m));
            assert!(!(in_string && hit), "SQL outside store at {}:{}: {line}", file.display(), n + 1);
        }
    }
}
