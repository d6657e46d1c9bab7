//! Tidy checks over the source tree (rust-analyzer's `xtask/src/tidy.rs` in spirit): every source
//! file opens with a `//!` doc, no test is ignored or expected to panic, no file grows past 1,000
//! lines.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1000;

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|name| name == "target") {
                    continue;
                }
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn checked_roots() -> Vec<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    ["src", "tests", "benches", "drivers", "wasm-examples"]
        .iter()
        .map(|dir| manifest_dir.join(dir))
        .filter(|dir| dir.exists())
        .collect()
}

#[test]
fn every_source_file_opens_with_a_module_doc() -> anyhow::Result<()> {
    let mut missing = Vec::new();
    for file in checked_roots().iter().flat_map(|root| rust_files(root)) {
        let text = std::fs::read_to_string(&file)?;
        if !text.trim_start().starts_with("//!") {
            missing.push(file.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "files without a //! module doc:\n{}",
        missing.join("\n")
    );
    Ok(())
}

#[test]
fn no_test_is_ignored_or_expected_to_panic() -> anyhow::Result<()> {
    let needles = [concat!("#[", "ignore"), concat!("#[", "should_panic")];
    let mut offenders = Vec::new();
    for file in checked_roots().iter().flat_map(|root| rust_files(root)) {
        let text = std::fs::read_to_string(&file)?;
        for needle in needles {
            if text.contains(needle) {
                offenders.push(format!("{}: {needle}", file.display()));
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
    Ok(())
}

#[test]
fn no_source_file_is_too_long() -> anyhow::Result<()> {
    let mut long = Vec::new();
    for file in checked_roots().iter().flat_map(|root| rust_files(root)) {
        let lines = std::fs::read_to_string(&file)?.lines().count();
        if lines > MAX_LINES {
            long.push(format!("{}: {lines} lines", file.display()));
        }
    }
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
    Ok(())
}
