//! Fuzzing the two front doors for jobs: the job-file parser (`jobspec::parse`) and the job JSON
//! decoder (`decode_json::<JobRegisterRequest>`, then canonicalize, validate and the server's
//! limits). A proptest-driven corpus run in the normal test suite: mutations of the files under
//! `tests/data/jobs` (bytes cut, duplicated, replaced by hostile tokens), a few hundred cases per
//! run, each checked for no panic, a bounded time and a bounded answer.
//!
//! Inputs that once broke something are kept in [`REGRESSIONS`] and run every time; proptest also
//! records a failing case's seed under `proptest-regressions/` to replay it first.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use crate::api::decode::decode_json;
use crate::api::types::jobs::JobRegisterRequest;
use crate::jobspec::{ParseConfig, parse_validated};
use crate::server::limits::JobLimits;

/// Inputs kept because they once took the agent down or panicked, with what they feed.
const REGRESSIONS: &[(Door, &str, &str)] = &[
    // 29 nested replace(): gigabytes of string from 875 bytes (issue 17).
    (
        Door::Hcl,
        "job \"x\" {\n meta { x = replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(\"aaaaaaaaaa\", \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\"), \"a\", \"aa\") }\n group \"g\" {\n  task \"t\" { driver = \"raw_exec\" }\n }\n}\n",
        "over the limit of 1048576 bytes per value",
    ),
    // hcl-rs arithmetic overflow inside a function argument.
    (
        Door::Hcl,
        "job \"x\" {\n meta { x = tostring(9223372036854775807 + 1) }\n group \"g\" {\n  task \"t\" { driver = \"raw_exec\" }\n }\n}\n",
        "",
    ),
    // Restart attempts times delay past what a Duration holds.
    (
        Door::Hcl,
        "job \"x\" {\n group \"g\" {\n restart {\n attempts = 2147483647\n delay = \"2562047h\"\n }\n task \"t\" { driver = \"raw_exec\" }\n }\n}\n",
        "restart interval",
    ),
    // A task named `..` (its task dir would be every allocation's directory).
    (
        Door::Json,
        r#"{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "..", "Driver": "raw_exec"}]}]}}"#,
        "task name \"..\" is not allowed",
    ),
    // A count that made the scheduler build a billion placements.
    (
        Door::Json,
        r#"{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Count": 1000000000, "Tasks": [{"Name": "t", "Driver": "raw_exec"}]}]}}"#,
        "server.job_max_placements",
    ),
    // Arrays where structs belong.
    (
        Door::Json,
        r#"{"Job": ["x", "y"]}"#,
        "Job: invalid type: sequence",
    ),
    (Door::Json, r#"[{"ID": "x"}]"#, "invalid type: sequence"),
    // Negative durations and a deadline at the end of time.
    (
        Door::Json,
        r#"{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec", "KillTimeout": -1}]}]}}"#,
        "KillTimeout: duration must be a positive value",
    ),
    (
        Door::Json,
        r#"{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec", "KillTimeout": 9223372036854775807}]}]}}"#,
        "",
    ),
];

#[derive(Clone, Copy, Debug)]
enum Door {
    Hcl,
    Json,
}

/// The most time one input may take, far above what a valid job needs.
const MAX_TIME: Duration = Duration::from_secs(3);

/// Tokens that tend to break parsers and evaluators.
const HOSTILE: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    "${",
    "%{",
    "\\",
    "\0",
    "-1",
    "1e400",
    "9223372036854775807",
    "-9223372036854775808",
    "[]",
    "{}",
    "null",
    "..",
    "/",
    "replace(\"aaaa\", \"a\", \"aaaa\")",
    "upper(",
    ")",
    ",",
    "=",
    "\n",
    "<<EOF\n",
    "EOF\n",
    "local.",
    "var.",
    "count = 1000000000",
    "\"Count\": 1000000000",
    "\"KillTimeout\": -1",
    "\u{202e}",
    "é",
    "#",
    "//",
    "/*",
];

#[derive(Clone, Debug)]
enum Mutation {
    Delete { at: usize, len: usize },
    Duplicate { at: usize, len: usize },
    Insert { at: usize, token: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..64usize).prop_map(|(at, len)| Mutation::Delete { at, len }),
        (any::<usize>(), 1..256usize).prop_map(|(at, len)| Mutation::Duplicate { at, len }),
        (any::<usize>(), 0..HOSTILE.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match *mutation {
            Mutation::Delete { at, len: cut } => {
                let at = at % len;
                let end = (at + cut).min(bytes.len());
                if at < end {
                    bytes.drain(at..end);
                }
            }
            Mutation::Duplicate { at, len: copied } => {
                let at = at % len;
                let end = (at + copied).min(bytes.len());
                if at < end {
                    let piece = bytes[at..end].to_vec();
                    bytes.splice(end..end, piece);
                }
            }
            Mutation::Insert { at, token } => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, HOSTILE[token].bytes());
            }
        }
    }
    bytes
}

fn corpus(extension: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jobs");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the job corpus is readable")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(extension))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| std::fs::read(path).expect("corpus file is readable"))
        .collect()
}

/// Feeds one input through a door; panics (a proptest failure) on a panic inside, an input that
/// takes too long, or an answer out of proportion to the input. Returns the error, if any.
fn check(door: Door, input: &[u8]) -> String {
    let started = Instant::now();
    let (answer_len, error) = match door {
        Door::Hcl => {
            let text = String::from_utf8_lossy(input);
            // Parsed and validated, as `job validate` does without an agent.
            match parse_validated(&text, "fuzz.nomad.hcl", &ParseConfig::default(), &[]) {
                Ok(job) => (
                    serde_json::to_vec(&job).map_or(0, |json| json.len()),
                    String::new(),
                ),
                Err(error) => {
                    let message = error.to_string();
                    assert!(!message.contains('\n'), "one-line errors: {message:?}");
                    (message.len(), message)
                }
            }
        }
        Door::Json => {
            let message = match decode_json::<JobRegisterRequest>(input) {
                Ok(request) => match request.job {
                    Some(submission) => {
                        let job = submission.into_job();
                        job.validate()
                            .map_err(|errors| errors.to_string())
                            .and_then(|()| JobLimits::default().check(&job))
                            .err()
                            .unwrap_or_default()
                    }
                    None => String::new(),
                },
                Err(error) => error.to_string(),
            };
            (message.len(), message)
        }
    };
    let elapsed = started.elapsed();
    assert!(elapsed < MAX_TIME, "{door:?} input took {elapsed:?}");
    // A valid job's JSON may be a few times its file; an error says little more than the input.
    let bound = input.len().saturating_mul(16).saturating_add(64 << 10);
    assert!(
        answer_len <= bound,
        "{door:?} answer of {answer_len} bytes for {} input bytes",
        input.len()
    );
    error
}

#[test]
fn regressions_stay_fixed() {
    for (door, input, expected) in REGRESSIONS {
        let answer = check(*door, input.as_bytes());
        assert!(answer.contains(expected), "{door:?} {input:?}: {answer}");
    }
}

#[test]
fn the_corpus_itself_passes() {
    for file in corpus(".nomad.hcl") {
        check(Door::Hcl, &file);
    }
    for file in corpus(".json") {
        let wrapped = [b"{\"Job\": ".as_slice(), &file, b"}"].concat();
        check(Door::Json, &wrapped);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn mutated_job_files_never_panic(
        file_idx in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let files = corpus(".nomad.hcl");
        let file = file_idx.get(&files).clone();
        check(Door::Hcl, &mutate(file, &mutations));
    }

    #[test]
    fn mutated_job_json_never_panics(
        file_idx in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..8),
    ) {
        let files = corpus(".json");
        let file = file_idx.get(&files).clone();
        let wrapped = [b"{\"Job\": ".as_slice(), &file, b"}"].concat();
        check(Door::Json, &mutate(wrapped, &mutations));
    }
}
