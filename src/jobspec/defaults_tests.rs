//! A job file and the same job sent as API JSON must store the identical job: both decode into
//! `JobSubmission` and go through the one conversion, `JobSubmission::into_job`, which applies
//! every Nomad default. The JSON side is decoded as the register route decodes a body.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::{ParseConfig, parse, parse_submission};
use crate::api::decode::decode_json;
use crate::api::types::jobs::JobRegisterRequest;
use crate::structs::{DelayFunction, Job, JobSubmission, TaskGroupSubmission, TaskSubmission};

/// A JSON body as a user would write it: nulls (fields the file did not set) and empty values
/// dropped, recursively; a driver's free-form `Config` is the user's own and kept as written.
fn sparse(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(text) if text.is_empty() => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(sparse).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> = map
                .into_iter()
                .filter_map(|(key, value)| {
                    if key == "Config" {
                        return Some((key, value));
                    }
                    sparse(value).map(|value| (key, value))
                })
                .collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        other => Some(other),
    }
}

/// `stored` as JSON with the submission's own blocks in place of the stored ones.
fn with_blocks(stored: Value, blocks: Vec<(&str, Value)>) -> Value {
    let Value::Object(mut map) = stored else {
        panic!("a struct serialises as an object");
    };
    for (key, value) in blocks {
        map.insert(key.to_owned(), value);
    }
    Value::Object(map)
}

fn json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("serialises")
}

fn task_json(task: &TaskSubmission) -> Value {
    let blocks = vec![
        ("Resources", json(&task.resources)),
        ("RestartPolicy", json(&task.restart_policy)),
        ("LogConfig", json(&task.log_config)),
    ];
    with_blocks(json(&task.task), blocks)
}

fn group_json(group: &TaskGroupSubmission) -> Value {
    let tasks = Value::Array(group.tasks.iter().map(task_json).collect());
    let blocks = vec![
        ("Count", json(&group.count)),
        ("Tasks", tasks),
        ("RestartPolicy", json(&group.restart_policy)),
        ("ReschedulePolicy", json(&group.reschedule_policy)),
        ("EphemeralDisk", json(&group.ephemeral_disk)),
        ("Update", json(&group.update)),
        ("Migrate", json(&group.migrate)),
    ];
    with_blocks(json(&group.group), blocks)
}

/// The sparse JSON form of a job file, as `{"Job": ...}` text.
fn sparse_json_of(submission: &JobSubmission) -> String {
    let groups = Value::Array(submission.task_groups.iter().map(group_json).collect());
    let blocks = vec![
        ("TaskGroups", groups),
        ("Update", json(&submission.update)),
        ("Reschedule", json(&submission.reschedule)),
        ("Migrate", json(&submission.migrate)),
    ];
    let value = with_blocks(json(&submission.job), blocks);
    let job = sparse(value).expect("a job has fields");
    serde_json::json!({ "Job": job }).to_string()
}

/// The stored job the register route makes of `body`.
fn stored_from_json(body: &str) -> Job {
    let request: JobRegisterRequest = decode_json(body.as_bytes()).expect("the body decodes");
    request.job.expect("the body has a job").into_job()
}

fn stored_from_file(source: &str) -> Job {
    parse(source, "test.nomad.hcl", &ParseConfig::default()).expect("the job file parses")
}

fn corpus_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/jobs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("corpus directory exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.to_string_lossy().ends_with(".nomad.hcl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_corpus_file_and_its_sparse_json_store_the_same_job() {
    let files = corpus_files();
    assert!(files.len() >= 25, "only {} corpus files", files.len());
    let mut compared = 0;
    for path in &files {
        let source = std::fs::read_to_string(path).expect("corpus file is readable");
        let name = path.display().to_string();
        // Files that need variables from outside are covered by the corpus test itself.
        let Ok(from_file) = parse(&source, &name, &ParseConfig::default()) else {
            continue;
        };
        let submission = parse_submission(&source, &name).expect("the file decodes");
        let body = sparse_json_of(&submission);
        let from_json = stored_from_json(&body);
        assert_eq!(from_json, from_file, "{name}: JSON body {body}");
        compared += 1;
    }
    assert!(compared >= 25, "only {compared} corpus files compared");
}

#[test]
fn sparse_json_carries_only_what_the_file_wrote() {
    let source = r#"job "web" {
  group "g" {
    task "t" {
      driver = "raw_exec"
    }
  }
}"#;
    let body = sparse_json_of(&parse_submission(source, "web.nomad.hcl").expect("decodes"));
    for default_only in [
        "RestartPolicy",
        "ReschedulePolicy",
        "EphemeralDisk",
        "\"Count\"",
    ] {
        assert!(!body.contains(default_only), "{default_only} in {body}");
    }
    let job = stored_from_json(&body);
    assert_eq!(job.task_groups[0].count, 1);
    assert_eq!(job, stored_from_file(source));
}

fn restart_job(job_type: &str) -> (String, String) {
    let hcl = format!(
        r#"job "r" {{
  type = "{job_type}"
  group "g" {{
    restart {{
      delay = "5s"
    }}
    task "t" {{
      driver = "raw_exec"
    }}
  }}
}}"#
    );
    let json = format!(
        r#"{{"Job": {{"ID": "r", "Type": "{job_type}", "TaskGroups": [{{"Name": "g",
            "RestartPolicy": {{"Delay": 5000000000}},
            "Tasks": [{{"Name": "t", "Driver": "raw_exec"}}]}}]}}}}"#
    );
    (hcl, json)
}

#[test]
fn a_restart_block_with_only_a_delay_gets_the_types_attempts_from_file_and_json() {
    for (job_type, attempts, interval) in [
        ("service", 2, Duration::from_secs(30 * 60)),
        ("batch", 3, Duration::from_secs(24 * 3600)),
    ] {
        let (hcl, json) = restart_job(job_type);
        let from_file = stored_from_file(&hcl);
        let from_json = stored_from_json(&json);
        assert_eq!(from_json, from_file, "{job_type}");
        let policy = from_json.task_groups[0]
            .restart_policy
            .clone()
            .expect("a restart policy");
        assert_eq!(policy.attempts, attempts, "{job_type}");
        assert_eq!(policy.interval, interval, "{job_type}");
        assert_eq!(policy.delay, Duration::from_secs(5), "{job_type}");
    }
}

#[test]
fn explicit_zeros_are_kept_and_absent_fields_defaulted() {
    let hcl = r#"job "z" {
  group "g" {
    count = 0
    restart {
      attempts = 0
    }
    update {
      progress_deadline = "0s"
    }
    task "t" {
      driver = "raw_exec"
    }
  }
}"#;
    let json = r#"{"Job": {"ID": "z", "TaskGroups": [{"Name": "g", "Count": 0,
        "RestartPolicy": {"Attempts": 0}, "Update": {"ProgressDeadline": 0},
        "Tasks": [{"Name": "t", "Driver": "raw_exec"}]}]}}"#;
    let from_json = stored_from_json(json);
    assert_eq!(from_json, stored_from_file(hcl));
    let group = &from_json.task_groups[0];
    assert_eq!(group.count, 0);
    let restart = group.restart_policy.as_ref().expect("restart");
    assert_eq!(
        (restart.attempts, restart.delay),
        (0, Duration::from_secs(15))
    );
    let update = group.update.as_ref().expect("update");
    assert_eq!(update.progress_deadline, Duration::ZERO);
    assert_eq!(update.max_parallel, 1);
    assert_eq!(update.healthy_deadline, Duration::from_secs(300));
}

#[test]
fn partial_reschedule_and_update_blocks_merge_job_group_and_defaults() {
    let hcl = r#"job "p" {
  update {
    max_parallel = 3
  }
  reschedule {
    delay = "10s"
  }
  group "g" {
    update {
      canary = 1
      min_healthy_time = "20s"
    }
    reschedule {
      attempts = 2
      interval = "1h"
    }
    task "t" {
      driver = "raw_exec"
    }
  }
}"#;
    let json = r#"{"Job": {"ID": "p",
        "Update": {"MaxParallel": 3},
        "Reschedule": {"Delay": 10000000000},
        "TaskGroups": [{"Name": "g",
            "Update": {"Canary": 1, "MinHealthyTime": 20000000000},
            "ReschedulePolicy": {"Attempts": 2, "Interval": 3600000000000},
            "Tasks": [{"Name": "t", "Driver": "raw_exec"}]}]}}"#;
    let from_json = stored_from_json(json);
    assert_eq!(from_json, stored_from_file(hcl));
    let group = &from_json.task_groups[0];
    let reschedule = group.reschedule_policy.as_ref().expect("reschedule");
    assert_eq!(reschedule.attempts, 2);
    assert_eq!(reschedule.interval, Duration::from_secs(3600));
    assert_eq!(reschedule.delay, Duration::from_secs(10));
    assert_eq!(reschedule.delay_function, DelayFunction::Exponential);
    assert_eq!(reschedule.max_delay, Duration::from_secs(3600));
    assert!(!reschedule.unlimited, "attempts limit the policy");
    let update = group.update.as_ref().expect("update");
    assert_eq!(update.max_parallel, 3);
    assert_eq!(update.canary, 1);
    assert_eq!(update.min_healthy_time, Duration::from_secs(20));
    assert_eq!(update.stagger, Duration::from_secs(30));
    assert_eq!(update.health_check, "checks");
    assert_eq!(update.healthy_deadline, Duration::from_secs(300));
    assert_eq!(update.progress_deadline, Duration::from_secs(600));
    let migrate = group.migrate.as_ref().expect("service groups migrate");
    assert_eq!(migrate.max_parallel, 1);
    let task = &group.tasks[0];
    let resources = task.resources.as_ref().expect("resources");
    assert_eq!((resources.cpu, resources.memory_mb), (100, 300));
    assert_eq!(task.restart_policy, None, "the task follows its group");
}

#[test]
fn a_bad_field_anywhere_in_a_submission_is_named_by_its_path() {
    for (body, expected) in [
        (
            r#"{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "RestartPolicy": {"Attempts": "two"}}]}}"#,
            "Job.TaskGroups[0].RestartPolicy.Attempts: invalid type",
        ),
        (
            r#"{"Job": {"ID": "x", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Lifecycle": ["prestart"]}]}]}}"#,
            "Job.TaskGroups[0].Tasks[0].Lifecycle: invalid type: sequence",
        ),
        (
            r#"{"Job": {"ID": "x", "Priority": "high"}}"#,
            "Job.Priority: invalid type",
        ),
        (
            r#"{"Job": {"ID": "x", "Update": [1]}}"#,
            "Job.Update: invalid type: sequence",
        ),
    ] {
        let error = decode_json::<JobRegisterRequest>(body.as_bytes())
            .expect_err("the body does not decode");
        assert!(error.to_string().contains(expected), "{body}: {error}");
    }
}
