//! Embeds the built console (`console/dist`, made by `npm run build` in `console/`, which
//! scripts/setup runs) into the binary: writes `$OUT_DIR/assets.rs` with one
//! `shared::api::console::Asset` per file, its `.gz` and `.br` forms beside it. Without
//! `console/dist` the list is empty and the function answers 503 `console_not_built`, so a cargo
//! build never depends on npm.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let dist = manifest.join("../../console/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut code = String::from("/// The built console's files (console/dist), embedded by build.rs.\n");
    code.push_str("pub static ASSETS: &[shared::api::console::Asset] = &[\n");
    if dist.join("index.html").is_file() {
        let mut all = Vec::new();
        files(&dist, &mut all)?;
        all.sort();
        for path in &all {
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path.strip_prefix(&dist)?.to_string_lossy().replace('\\', "/");
            let hidden = name.split('/').any(|part| part.starts_with('.'));
            if hidden || name.ends_with(".gz") || name.ends_with(".br") || name == "manifest.json" {
                continue;
            }
            let variant = |ext: &str| {
                let p = PathBuf::from(format!("{}.{ext}", path.display()));
                if p.is_file() {
                    format!("Some(include_bytes!({:?}))", p.display().to_string())
                } else {
                    "None".to_owned()
                }
            };
            writeln!(
                code,
                "    shared::api::console::Asset {{ path: {name:?}, body: include_bytes!({:?}), gzip: {}, br: {} }},",
                path.display().to_string(),
                variant("gz"),
                variant("br"),
            )?;
        }
    } else {
        println!(
            "cargo:warning=console/dist is missing, so the console function will answer 503 console_not_built: run scripts/setup (npm ci and npm run build in console/)"
        );
    }
    code.push_str("];\n");
    std::fs::write(PathBuf::from(std::env::var("OUT_DIR")?).join("assets.rs"), code)?;
    Ok(())
}
