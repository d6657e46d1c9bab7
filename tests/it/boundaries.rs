//! The boundaries of `DESIGN.md`, held by a test (rust-analyzer's `tidy.rs` in spirit): each part
//! of `src/` lists the parts it must never import, and the test fails naming the file and the
//! import that crosses a boundary, `#[cfg(test)]` code included.
//!
//! What counts as an import: every `crate::<module>` path in a file of the part (grouped
//! `use crate::{a, b::c}` included), and in `src/main.rs` every `caravan::<module>` path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A part: the `src/` module that holds it and the top-level modules it must never name.
struct Part {
    name: &'static str,
    module: &'static str,
    never: &'static [&'static str],
    /// When set, the only top-level modules the part may name besides itself.
    only: Option<&'static [&'static str]>,
}

/// DESIGN.md's table of imports that must never exist, plus the two stronger rules of its
/// invariants: the scheduler imports only the model, and the model knows nothing else.
const PARTS: &[Part] = &[
    Part {
        name: "Structs",
        module: "structs",
        never: &["server", "client", "api"],
        only: Some(&[]),
    },
    Part {
        name: "Scheduler",
        module: "scheduler",
        never: &["api", "client", "driver_host"],
        only: Some(&["structs"]),
    },
    Part {
        name: "DriverHost",
        module: "driver_host",
        never: &["server", "client", "api"],
        only: None,
    },
    Part {
        name: "Client",
        module: "client",
        never: &["server"],
        only: None,
    },
    Part {
        name: "Server",
        module: "server",
        never: &["client", "driver_host"],
        only: None,
    },
    Part {
        name: "Jobspec",
        module: "jobspec",
        never: &["server"],
        only: None,
    },
    Part {
        name: "WireModel",
        module: "api/types",
        never: &[
            "server",
            "client",
            "driver_host",
            "scheduler",
            "jobspec",
            "cli",
        ],
        only: Some(&["structs", "api"]),
    },
    Part {
        name: "Cli",
        module: "cli",
        never: &["server", "client"],
        only: None,
    },
];

/// Crates and standard-library modules that do I/O; the model names none of them.
const IO_PATHS: &[&str] = &[
    "tokio::",
    "reqwest::",
    "axum::",
    "hyper::",
    "redb::",
    "bollard::",
    "wasmtime::",
    "nix::",
    "libc::",
    "std::fs",
    "std::net",
    "std::process",
    "std::thread",
    "std::env",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The files of a part: `src/<module>/**.rs` and `src/<module>.rs`.
fn part_files(module: &str) -> Vec<PathBuf> {
    let mut files = rust_files_under(&src_dir().join(module));
    let single = src_dir().join(format!("{module}.rs"));
    if single.exists() {
        files.push(single);
    }
    files
}

/// Text without `//` comments, so that docs naming a module do not count as imports.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules named after `root::` in `code`, grouped imports included.
fn modules_named(code: &str, root: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let prefix = format!("{root}::");
    let mut rest = code;
    while let Some(at) = rest.find(&prefix) {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + prefix.len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            named.extend(top_level_idents(group));
        } else {
            named.insert(leading_ident(after));
        }
    }
    named.remove("");
    named
}

fn leading_ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The first identifier of each item of a `{...}` group (the text after its `{`).
fn top_level_idents(group: &str) -> Vec<String> {
    let mut idents = Vec::new();
    let mut depth = 0usize;
    let mut at_item_start = true;
    for (idx, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item_start = true,
            c if c.is_whitespace() => {}
            _ if at_item_start && depth == 0 => {
                idents.push(leading_ident(&group[idx..]));
                at_item_start = false;
            }
            _ => {}
        }
    }
    idents
}

fn violations_of(part: &Part) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for file in part_files(part.module) {
        let code = code_of(&std::fs::read_to_string(&file)?);
        for module in modules_named(&code, "crate") {
            let forbidden = part.never.contains(&module.as_str())
                || part
                    .only
                    .is_some_and(|only| module != part.module && !only.contains(&module.as_str()));
            if forbidden {
                found.push(format!(
                    "{} ({}) imports crate::{module}",
                    file.display(),
                    part.name
                ));
            }
        }
    }
    Ok(found)
}

#[test]
fn no_part_imports_what_design_md_forbids() -> anyhow::Result<()> {
    let mut found = Vec::new();
    for part in PARTS {
        found.extend(violations_of(part)?);
    }
    let main = src_dir().join("main.rs");
    let code = code_of(&std::fs::read_to_string(&main)?);
    for module in modules_named(&code, "caravan") {
        if ["server", "client"].contains(&module.as_str()) {
            found.push(format!(
                "{} (Cli) imports caravan::{module}",
                main.display()
            ));
        }
    }
    assert!(
        found.is_empty(),
        "boundary violations:\n{}",
        found.join("\n")
    );
    Ok(())
}

#[test]
fn the_model_names_no_io_crate() -> anyhow::Result<()> {
    let mut found = Vec::new();
    for file in [part_files("structs"), part_files("api/types")].concat() {
        let code = code_of(&std::fs::read_to_string(&file)?);
        for io in IO_PATHS {
            if code.contains(io) {
                found.push(format!("{} names {io}", file.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the model does I/O:\n{}",
        found.join("\n")
    );
    Ok(())
}

/// The scanner itself: a check that finds nothing proves nothing unless it can find something.
#[test]
fn the_scanner_sees_plain_grouped_and_nested_imports() {
    let code = code_of(
        "use crate::structs::Job;\n\
         use crate::{client::api, server::{raft, state}};\n\
         fn f() { crate::driver_host::load(); }\n\
         // crate::api in a comment does not count\n\
         let x = mycrate::api::y;\n",
    );
    let named: Vec<String> = modules_named(&code, "crate").into_iter().collect();
    assert_eq!(named, ["client", "driver_host", "server", "structs"]);
    let scheduler = &PARTS[1];
    assert!(scheduler.never.contains(&"client"));
}

/// True when `code` names the identifier `Value` (a `serde_json::Value` or its import).
fn names_value(code: &str) -> bool {
    code.match_indices("Value").any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + "Value".len()..].chars().next();
        let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !ident(before) && !ident(after)
    })
}

/// True when `code` builds untyped JSON without naming `Value` (`json!`, `to_value`).
fn builds_untyped_json(code: &str) -> bool {
    ["json!", "to_value(", "from_value("]
        .iter()
        .any(|pattern| code.contains(pattern))
}

/// The CLI reads and writes the wire types of `api::types` only, never loose JSON (#16).
#[test]
fn the_cli_reads_no_untyped_json() -> anyhow::Result<()> {
    let mut found = Vec::new();
    for file in part_files("cli") {
        let code = code_of(&std::fs::read_to_string(&file)?);
        if names_value(&code) || builds_untyped_json(&code) {
            found.push(format!(
                "{} reads or builds serde_json::Value; use the wire types of api::types",
                file.display()
            ));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
    assert!(names_value("let x: serde_json::Value = y;"));
    assert!(!names_value("let x: JsonValue = y; // Values"));
    assert!(builds_untyped_json("let body = serde_json::json!({});"));
    assert!(!builds_untyped_json(
        "let body: JobRegisterRequest = from_str(text)?;"
    ));
    Ok(())
}
