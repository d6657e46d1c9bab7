//! Round trips of the model against JSON shaped like Nomad's API documentation examples.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;

/// Reads `json`, writes it back, and checks nothing was lost or renamed: every key of the
/// original must come back with the same value (`null` may come back as an empty collection).
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(json: &str) -> T {
    let original: Value = serde_json::from_str(json).expect("test JSON parses");
    let typed: T = serde_json::from_value(original.clone()).expect("model reads the JSON");
    let written = serde_json::to_value(&typed).expect("model writes JSON");
    assert_same(&original, &written, "$");
    let typed_again: T = serde_json::from_value(written).expect("model reads its own JSON");
    assert_eq!(typed, typed_again);
    typed
}

fn assert_same(original: &Value, written: &Value, path: &str) {
    match (original, written) {
        (Value::Object(original), Value::Object(written)) => {
            for (key, original_value) in original {
                let written_value = written
                    .get(key)
                    .unwrap_or_else(|| panic!("{path}.{key} was dropped"));
                assert_same(original_value, written_value, &format!("{path}.{key}"));
            }
        }
        (Value::Array(original), Value::Array(written)) => {
            assert_eq!(original.len(), written.len(), "{path} length");
            for (idx, (original, written)) in original.iter().zip(written).enumerate() {
                assert_same(original, written, &format!("{path}[{idx}]"));
            }
        }
        (Value::Null, Value::Array(items)) if items.is_empty() => {}
        (Value::Null, Value::Object(items)) if items.is_empty() => {}
        (Value::Number(original), Value::Number(written)) => {
            assert_eq!(original.as_f64(), written.as_f64(), "{path}");
        }
        (original, written) => assert_eq!(original, written, "{path}"),
    }
}

#[derive(serde::Deserialize, Serialize, PartialEq, Debug)]
#[serde(rename_all = "PascalCase")]
struct JobEnvelope {
    job: Job,
}

#[test]
fn job_round_trips_with_nomad_names() {
    let envelope: JobEnvelope = round_trip(include_str!("testdata/job.json"));
    let job = envelope.job;
    assert_eq!(job.id.as_str(), "example");
    assert_eq!(job.job_type, JobType::Service);
    let group = &job.task_groups[0];
    assert_eq!(group.count, 1);
    let restart = group.restart_policy.as_ref().expect("restart policy");
    assert_eq!(restart.interval, Duration::from_secs(1800));
    assert_eq!(restart.mode, RestartMode::Fail);
    let reschedule = group.reschedule_policy.as_ref().expect("reschedule policy");
    assert_eq!(reschedule.delay_function, DelayFunction::Exponential);
    assert_eq!(group.networks[0].dynamic_ports[0].to, 6379);
    let task = &group.tasks[0];
    assert_eq!(task.config["image"], "redis:7");
    assert_eq!(task.kill_timeout, Some(Duration::from_secs(5)));
    assert_eq!(task.resources.as_ref().map(|r| r.memory_max_mb), Some(512));
    assert_eq!(task.services[0].checks[0].interval, Duration::from_secs(10));
    assert_eq!(job.spreads[0].spread_target[1].percent, 30);
    assert_eq!(group.affinities[0].weight, 50);
    assert!(job.validate().is_ok(), "{:?}", job.validate());
}

#[test]
fn allocation_round_trips() {
    let alloc: Allocation = round_trip(include_str!("testdata/allocation.json"));
    assert_eq!(alloc.index(), Some(0));
    assert_eq!(alloc.client_status, AllocClientStatus::Running);
    assert_eq!(alloc.allocated_resources.shared.ports[0].value, 23516);
    let events = &alloc.task_states["redis"].events;
    assert_eq!(events[1].event_type, TaskEvent::TERMINATED);
    assert_eq!(events[1].exit_code, 137);
    assert_eq!(alloc.allocated_resources.total_cpu(), 500);
    assert!(!alloc.is_terminal());
}

#[test]
fn node_round_trips() {
    let node: Node = round_trip(include_str!("testdata/node.json"));
    assert!(node.is_schedulable());
    assert!(node.has_healthy_driver("raw_exec"));
    assert!(!node.has_healthy_driver("docker"));
    assert_eq!(node.node_resources.cpu.cpu_shares, 4800);
}

#[test]
fn evaluation_round_trips() {
    let eval: Evaluation = round_trip(include_str!("testdata/evaluation.json"));
    assert_eq!(eval.status, EvalStatus::Complete);
    assert_eq!(
        eval.failed_tg_allocs["cache"].dimension_exhausted["memory"],
        1
    );
    assert_eq!(eval.queued_allocations["cache"], 3);
}

#[test]
fn deployment_and_summary_round_trip() {
    let deployment: Deployment = round_trip(include_str!("testdata/deployment.json"));
    assert_eq!(deployment.status, DeploymentStatus::Successful);
    assert_eq!(deployment.task_groups["cache"].healthy_allocs, 1);
    let summary: JobSummary = round_trip(include_str!("testdata/job_summary.json"));
    assert_eq!(summary.summary["cache"].running, 3);
}

#[test]
fn missing_fields_and_nulls_take_defaults() {
    let job: Job = serde_json::from_str(
        r#"{"ID": "min", "TaskGroups": [{"Name": "g", "Tasks": [{"Name": "t", "Driver": "raw_exec", "Config": null}]}]}"#,
    )
    .expect("minimal job parses");
    assert_eq!(job.task_groups[0].count, 1, "Nomad's default count is 1");
    assert!(job.task_groups[0].tasks[0].config.is_empty());
}

#[test]
fn canonicalize_applies_nomad_defaults_by_type() {
    let mut service = minimal_job(JobType::Service);
    service.canonicalize();
    let group = &service.task_groups[0];
    assert_eq!(service.priority, 50);
    assert_eq!(service.namespace, "default");
    assert_eq!(service.datacenters, ["*"]);
    assert_eq!(
        group.restart_policy,
        Some(super::submission::defaults::restart(JobType::Service))
    );
    assert_eq!(
        group.reschedule_policy,
        super::submission::defaults::reschedule(JobType::Service)
    );
    assert_eq!(group.update, Some(super::submission::defaults::update()));
    assert_eq!(group.ephemeral_disk.as_ref().map(|d| d.size_mb), Some(300));
    let task = &group.tasks[0];
    assert_eq!(
        task.resources.as_ref().map(|r| (r.cpu, r.memory_mb)),
        Some((100, 300))
    );
    assert_eq!(
        task.log_config
            .as_ref()
            .map(|l| (l.max_files, l.max_file_size_mb)),
        Some((10, 10))
    );

    let mut batch = minimal_job(JobType::Batch);
    batch.canonicalize();
    let group = &batch.task_groups[0];
    assert_eq!(group.restart_policy.as_ref().map(|p| p.attempts), Some(3));
    assert_eq!(
        group.reschedule_policy.as_ref().map(|p| p.attempts),
        Some(1)
    );
    assert_eq!(group.update, None);

    let mut system = minimal_job(JobType::System);
    system.canonicalize();
    assert_eq!(system.task_groups[0].reschedule_policy, None);
}

#[test]
fn validation_names_every_problem() {
    let mut job = minimal_job(JobType::System);
    job.canonicalize();
    job.priority = 101;
    job.task_groups[0].count = 3;
    job.task_groups[0].tasks[0].driver.clear();
    job.constraints.push(Constraint {
        l_target: "${attr.kernel.name}".into(),
        r_target: "linux".into(),
        operand: "~=".into(),
    });
    let errors = job.validate().expect_err("job is invalid");
    let paths: Vec<&str> = errors.errors.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "Priority",
            "TaskGroups[g].Count",
            "TaskGroups[g].Tasks[t].Driver",
            "Constraints[0].Operand"
        ]
    );
    assert!(
        errors
            .to_string()
            .contains("unknown constraint operator \"~=\"")
    );
}

/// Nomad (structs `validateServices`, COMPAT(0.13)): a task's service may name a port of the
/// deprecated network in the task's own resources; a port defined nowhere is still refused.
#[test]
fn task_services_may_use_ports_of_the_task_resources_network() {
    let mut job = minimal_job(JobType::Service);
    let task = &mut job.task_groups[0].tasks[0];
    task.resources = Some(Resources {
        cpu: 100,
        memory_mb: 64,
        networks: vec![NetworkResource {
            dynamic_ports: vec![Port {
                label: "http".into(),
                ..Port::default()
            }],
            ..NetworkResource::default()
        }],
        ..Resources::default()
    });
    task.services.push(Service {
        name: "web".into(),
        port_label: "http".into(),
        ..Service::default()
    });
    job.canonicalize();
    assert!(job.validate().is_ok(), "{:?}", job.validate());

    job.task_groups[0].tasks[0].services[0].port_label = "grpc".into();
    let errors = job.validate().expect_err("unknown port");
    assert!(
        errors
            .to_string()
            .contains("port label \"grpc\" is not defined"),
        "{errors}"
    );
}

/// Nomad's `memory_max = -1` (no limit) is refused with a message saying so, not as a
/// `memory_max` below `memory`.
#[test]
fn memory_max_without_limit_is_refused_naming_why() {
    let mut job = minimal_job(JobType::Service);
    job.task_groups[0].tasks[0].resources = Some(Resources {
        cpu: 100,
        memory_mb: 64,
        memory_max_mb: Resources::MEMORY_NO_LIMIT,
        ..Resources::default()
    });
    job.canonicalize();
    let errors = job.validate().expect_err("no limit is refused");
    let message = errors.to_string();
    assert!(
        message.contains("memory_max = -1 (no memory limit)"),
        "{message}"
    );
    assert!(!message.contains("must be at least memory"), "{message}");
}

fn minimal_job(job_type: JobType) -> Job {
    Job {
        id: "j".into(),
        job_type,
        task_groups: vec![TaskGroup {
            name: "g".into(),
            tasks: vec![Task {
                name: "t".into(),
                driver: "raw_exec".into(),
                ..Task::default()
            }],
            ..TaskGroup::default()
        }],
        ..Job::default()
    }
}

/// A job sent as API JSON with integrations caravan lacks is refused at validation, each
/// naming its block, as a job file is.
#[test]
fn api_jobs_using_missing_integrations_are_refused_naming_the_block() {
    let json = serde_json::json!({
        "ID": "mesh",
        "TaskGroups": [{
            "Name": "g",
            "Services": [{"Name": "api", "Connect": {"Native": true}}],
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Vault": {"Role": "app"},
                "Resources": {"SecretsMB": -1}
            }]
        }]
    });
    let submission: crate::structs::JobSubmission = serde_json::from_value(json).expect("decodes");
    let job = submission.into_job();
    let errors = job.validate().expect_err("refused").to_string();
    assert!(errors.starts_with("3 errors occurred:\n\t* "), "{errors}");
    assert!(
        errors.contains("TaskGroups[g].Services[api].Connect: caravan has no Consul service mesh: group \"g\" service \"api\" uses connect"),
        "{errors}"
    );
    assert!(
        errors.contains("TaskGroups[g].Tasks[t].Vault: caravan has no Vault integration"),
        "{errors}"
    );
    assert!(
        errors.contains(
            "TaskGroups[g].Tasks[t].Resources.SecretsMB: SecretsMB value (-1) cannot be negative"
        ),
        "{errors}"
    );
}
