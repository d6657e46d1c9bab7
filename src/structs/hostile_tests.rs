//! Hostile input against the model: every numeric field of a rich job set to `-1`, names that
//! are not path components, bad cron specs. Each must be refused by decoding or validation with
//! a message naming the field.

use serde_json::Value;

use super::*;

const SERVICES_JOB: &str = include_str!("../../tests/data/jobs/services.json");

/// Fields the servers set, never the submitter: they are overwritten on register.
const SERVER_SET: &[&str] = &[
    "/Version",
    "/SubmitTime",
    "/CreateIndex",
    "/ModifyIndex",
    "/JobModifyIndex",
];

fn numeric_paths(value: &Value, path: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                numeric_paths(child, format!("{path}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (idx, child) in items.iter().enumerate() {
                numeric_paths(child, format!("{path}/{idx}"), out);
            }
        }
        Value::Number(_) => out.push(path),
        _ => {}
    }
}

/// Decodes and validates `json` as a submitted job; `Err` with the reason if refused.
fn submit(json: Value) -> Result<Job, String> {
    let mut job: Job = serde_json::from_value(json).map_err(|error| error.to_string())?;
    job.canonicalize();
    job.validate().map_err(|errors| errors.to_string())?;
    Ok(job)
}

#[test]
fn minus_one_is_refused_in_every_numeric_field() {
    let base: Value = serde_json::from_str(SERVICES_JOB).expect("test job parses");
    submit(base.clone()).expect("the base job is valid");
    let mut paths = Vec::new();
    numeric_paths(&base, String::new(), &mut paths);
    // Fields the sample leaves out, set on the first group and task.
    let extra = [
        "/TaskGroups/0/ShutdownDelay",
        "/TaskGroups/0/StopAfterClientDisconnect",
        "/TaskGroups/0/MaxClientDisconnect",
        "/TaskGroups/0/Tasks/0/ShutdownDelay",
    ];
    let mut accepted = Vec::new();
    let mut n_checked = 0;
    for path in paths
        .iter()
        .map(String::as_str)
        .chain(extra)
        .filter(|path| !SERVER_SET.contains(path))
        // `To = -1` maps a port to the same number inside the task: valid, as in Nomad.
        .filter(|path| !path.ends_with("/To"))
    {
        let mut hostile = base.clone();
        let (parent, key) = path.rsplit_once('/').expect("paths start with /");
        let slot = hostile
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("parent is an object");
        slot.insert(key.to_owned(), Value::from(-1));
        n_checked += 1;
        if submit(hostile).is_ok() {
            accepted.push(path.to_owned());
        }
    }
    assert!(n_checked >= 40, "only {n_checked} fields checked");
    assert!(accepted.is_empty(), "-1 accepted in {accepted:?}");
}

#[test]
fn names_must_be_path_components() {
    let base: Value = serde_json::from_str(SERVICES_JOB).expect("test job parses");
    let long = "n".repeat(4096);
    for name in ["..", ".", "a/b", "a\\b", "a\0b", "tab\there", long.as_str()] {
        for (pointer, field) in [
            ("/TaskGroups/0/Tasks/0", "task name"),
            ("/TaskGroups/0", "task group name"),
            ("", "job ID"),
        ] {
            let mut hostile = base.clone();
            let key = if pointer.is_empty() { "ID" } else { "Name" };
            hostile
                .pointer_mut(pointer)
                .and_then(Value::as_object_mut)
                .expect("object")
                .insert(key.to_owned(), Value::from(name));
            if pointer.is_empty() {
                hostile["Name"] = Value::from("fine");
            }
            let error = submit(hostile).expect_err("an unsafe name is refused");
            assert!(error.contains(field), "{name:?} as {field}: {error}");
        }
    }
}

#[test]
fn invalid_cron_specs_are_refused_with_nomads_message() {
    let mut job: Value = serde_json::from_str(include_str!("../../tests/data/jobs/periodic.json"))
        .expect("test job parses");
    submit(job.clone()).expect("the base job is valid");
    job["Periodic"]["Spec"] = Value::from("61 * * * *");
    let error = submit(job.clone()).expect_err("bad cron");
    assert_eq!(
        error,
        "1 error occurred:\n\t* Periodic.Spec: Invalid cron spec \"61 * * * *\": minute field \"61\": 61 is out of range 0-59"
    );
    job["Periodic"]["Spec"] = Value::from("");
    job["Periodic"]["Specs"] = serde_json::json!(["0 9 * * 1-5", "bogus"]);
    let error = submit(job).expect_err("bad cron in the list");
    assert!(
        error.starts_with("1 error occurred:\n\t* Periodic.Specs[1]: Invalid cron spec \"bogus\""),
        "{error}"
    );
}
