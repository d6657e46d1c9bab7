//! The job-specification corpus: one job file per block of Nomad 1.10's job specification
//! (`tests/data/jobspec-corpus/`), written for this project from the examples of Nomad's
//! documentation.
//!
//! Each `x.nomad.hcl` must parse, without validation, to the job in `x.json` (compared as JSON
//! values: Nomad's names, Nomad's defaults). Where `x.err` exists the job must fail validation at
//! registration with exactly that text (Nomad's multierror wording); where it does not, the job
//! must be valid. Run with `UPDATE_EXPECT=1` to rewrite the expectations from the current output,
//! then review every changed file by eye.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ParseConfig, parse};

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jobspec-corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus directory exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".nomad.hcl"))
        .collect();
    files.sort();
    files
}

fn sibling(path: &Path, extension: &str) -> PathBuf {
    let name = path
        .file_name()
        .expect("a file")
        .to_string_lossy()
        .into_owned();
    path.with_file_name(format!(
        "{}.{extension}",
        name.trim_end_matches(".nomad.hcl")
    ))
}

/// The first differing JSON pointer between `expected` and `actual`, for a readable failure.
fn first_difference(expected: &Value, actual: &Value, at: String) -> Option<String> {
    match (expected, actual) {
        (Value::Object(left), Value::Object(right)) => {
            let keys: std::collections::BTreeSet<&String> =
                left.keys().chain(right.keys()).collect();
            let shown =
                |value: Option<&Value>| value.map_or("nothing".to_owned(), Value::to_string);
            keys.into_iter()
                .find_map(|key| match (left.get(key), right.get(key)) {
                    (Some(l), Some(r)) => first_difference(l, r, format!("{at}/{key}")),
                    (l, r) => Some(format!(
                        "{at}/{key}: expected {}, got {}",
                        shown(l),
                        shown(r)
                    )),
                })
        }
        (Value::Array(left), Value::Array(right)) if left.len() == right.len() => left
            .iter()
            .zip(right)
            .enumerate()
            .find_map(|(idx, (l, r))| first_difference(l, r, format!("{at}/{idx}"))),
        _ => (expected != actual).then(|| format!("{at}: expected {expected}, got {actual}")),
    }
}

#[test]
fn every_block_of_the_job_specification_parses_to_nomads_json() {
    let update = std::env::var_os("UPDATE_EXPECT").is_some();
    let files = corpus_files();
    assert!(files.len() >= 25, "only {} corpus files", files.len());
    let mut failures = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path).expect("corpus file is readable");
        let name = path
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        let job = match parse(&source, &name, &ParseConfig::default()) {
            Ok(job) => job,
            Err(error) => {
                failures.push(format!("{name}: does not parse: {error}"));
                continue;
            }
        };
        let actual = serde_json::to_value(&job).expect("a job serialises");
        let json_path = sibling(&path, "json");
        if update {
            let text = serde_json::to_string_pretty(&actual).expect("serialises") + "\n";
            std::fs::write(&json_path, text).expect("expectation is writable");
        } else {
            let expected: Value = std::fs::read_to_string(&json_path)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or(Value::Null);
            if let Some(difference) = first_difference(&expected, &actual, String::new()) {
                failures.push(format!("{}: {difference}", json_path.display()));
            }
        }
        let err_path = sibling(&path, "err");
        let validation = job.validate().err().map(|errors| errors.to_string());
        match (std::fs::read_to_string(&err_path).ok(), validation) {
            (None, None) => {}
            (None, Some(errors)) => {
                failures.push(format!("{name}: unexpectedly invalid: {errors}"))
            }
            (Some(_), None) => failures.push(format!("{name}: unexpectedly valid")),
            (Some(expected), Some(errors)) => {
                if update {
                    std::fs::write(&err_path, errors + "\n").expect("expectation is writable");
                } else if expected.trim_end() != errors {
                    failures.push(format!(
                        "{}:\n{}",
                        err_path.display(),
                        pretty_assertions::StrComparison::new(expected.trim_end(), &errors)
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `first_difference` names the path of the first change, so a failure reads at a glance.
#[test]
fn differences_are_reported_by_path() {
    let expected = serde_json::json!({"A": {"B": [1, 2]}, "C": null});
    let actual = serde_json::json!({"A": {"B": [1, 3]}, "C": null});
    assert_eq!(
        first_difference(&expected, &actual, String::new()).as_deref(),
        Some("/A/B/1: expected 2, got 3")
    );
    let missing = serde_json::json!({"A": {"B": [1, 2]}});
    assert_eq!(
        first_difference(&expected, &missing, String::new()).as_deref(),
        Some("/C: expected null, got nothing")
    );
    assert_eq!(first_difference(&expected, &expected, String::new()), None);
}
