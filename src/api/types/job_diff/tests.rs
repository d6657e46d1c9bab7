//! The diff between two versions of a job, typed as Nomad types it.

use std::collections::BTreeMap;

use super::*;
use crate::structs::{Constraint, Job, JobId, Resources, Task, TaskGroup};

fn job() -> Job {
    let task = Task {
        name: "redis".to_owned(),
        driver: "raw_exec".to_owned(),
        config: serde_json::json!({ "command": "/bin/sleep", "args": ["300"] })
            .as_object()
            .cloned()
            .unwrap_or_default(),
        resources: Some(Resources {
            cpu: 100,
            memory_mb: 256,
            ..Resources::default()
        }),
        ..Task::default()
    };
    Job {
        id: JobId::from("example"),
        name: "example".to_owned(),
        datacenters: vec!["dc1".to_owned()],
        priority: 50,
        version: 0,
        task_groups: vec![TaskGroup {
            name: "cache".to_owned(),
            count: 1,
            tasks: vec![task],
            ..TaskGroup::default()
        }],
        ..Job::default()
    }
}

fn task_mut(job: &mut Job) -> &mut Task {
    &mut job.task_groups[0].tasks[0]
}

#[test]
fn an_unchanged_job_is_none_and_bookkeeping_is_ignored() {
    let old = job();
    let mut new = job();
    new.version = 1;
    new.modify_index = 99;
    new.job_modify_index = 99;
    new.submit_time = 12345;
    new.stable = true;
    let diff = JobDiff::between(Some(&old), Some(&new));
    assert_eq!(diff.diff_type, NONE);
    assert_eq!(diff.id, "example");
    assert!(diff.fields.is_empty(), "{:?}", diff.fields);
    assert!(diff.objects.is_empty(), "{:?}", diff.objects);
    assert_eq!(diff.task_groups.len(), 1);
    assert_eq!(diff.task_groups[0].diff_type, NONE);
    assert_eq!(diff.task_groups[0].tasks[0].diff_type, NONE);
    assert_eq!(diff.task_groups[0].tasks[0].name, "redis");
}

#[test]
fn changed_fields_objects_and_sets_are_typed() {
    let old = job();
    let mut new = job();
    new.priority = 70;
    new.meta = BTreeMap::from([("owner".to_owned(), "ops".to_owned())]);
    new.datacenters = vec!["dc2".to_owned()];
    new.task_groups[0].count = 3;
    new.task_groups[0].constraints = vec![Constraint {
        l_target: "${attr.kernel.name}".to_owned(),
        r_target: "linux".to_owned(),
        operand: "=".to_owned(),
    }];
    if let Some(resources) = task_mut(&mut new).resources.as_mut() {
        resources.memory_mb = 512;
    }
    task_mut(&mut new)
        .config
        .insert("args".to_owned(), serde_json::json!(["600"]));
    let diff = JobDiff::between(Some(&old), Some(&new));
    assert_eq!(diff.diff_type, EDITED);
    let priority = diff
        .fields
        .iter()
        .find(|field| field.name == "Priority")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (
            priority.diff_type.as_str(),
            priority.old.as_str(),
            priority.new.as_str()
        ),
        (EDITED, "50", "70")
    );
    let meta = diff
        .fields
        .iter()
        .find(|field| field.name == "Meta[owner]")
        .cloned()
        .unwrap_or_default();
    assert_eq!((meta.diff_type.as_str(), meta.new.as_str()), (ADDED, "ops"));
    let datacenters = diff
        .objects
        .iter()
        .find(|object| object.name == "Datacenters")
        .cloned()
        .unwrap_or_default();
    assert_eq!(datacenters.diff_type, EDITED);
    let values: Vec<(&str, &str, &str)> = datacenters
        .fields
        .iter()
        .map(|f| (f.diff_type.as_str(), f.old.as_str(), f.new.as_str()))
        .collect();
    assert_eq!(values, [(ADDED, "", "dc2"), (DELETED, "dc1", "")]);

    let group = &diff.task_groups[0];
    assert_eq!(group.diff_type, EDITED);
    let count = group
        .fields
        .iter()
        .find(|field| field.name == "Count")
        .cloned()
        .unwrap_or_default();
    assert_eq!((count.old.as_str(), count.new.as_str()), ("1", "3"));
    let constraint = group
        .objects
        .iter()
        .find(|object| object.name == "Constraint")
        .cloned()
        .unwrap_or_default();
    assert_eq!(constraint.diff_type, ADDED);
    assert!(
        constraint
            .fields
            .iter()
            .any(|f| f.name == "RTarget" && f.new == "linux" && f.diff_type == ADDED),
        "{constraint:?}"
    );

    let task = &group.tasks[0];
    assert_eq!(task.diff_type, EDITED);
    // Contextual: the edited object lists its unchanged fields too.
    let resources = task
        .objects
        .iter()
        .find(|object| object.name == "Resources")
        .cloned()
        .unwrap_or_default();
    assert_eq!(resources.diff_type, EDITED);
    let field = |name: &str| {
        resources
            .fields
            .iter()
            .find(|field| field.name == name)
            .map(|f| (f.diff_type.clone(), f.old.clone(), f.new.clone()))
    };
    assert_eq!(
        field("MemoryMB"),
        Some((EDITED.to_owned(), "256".to_owned(), "512".to_owned()))
    );
    assert_eq!(
        field("CPU"),
        Some((NONE.to_owned(), "100".to_owned(), "100".to_owned()))
    );
    let config = task
        .objects
        .iter()
        .find(|object| object.name == "Config")
        .cloned()
        .unwrap_or_default();
    assert!(
        config
            .fields
            .iter()
            .any(|f| f.name == "args[0]" && f.old == "300" && f.new == "600"),
        "{config:?}"
    );
    assert!(
        config
            .fields
            .iter()
            .any(|f| f.name == "command" && f.diff_type == NONE),
        "{config:?}"
    );
    // The task's own unchanged fields are not listed.
    assert!(task.fields.is_empty(), "{:?}", task.fields);
}

#[test]
fn groups_and_tasks_added_and_deleted() {
    let old = job();
    let mut new = job();
    new.task_groups[0].name = "web".to_owned();
    let mut extra = task_mut(&mut new).clone();
    extra.name = "sidecar".to_owned();
    new.task_groups[0].tasks.push(extra);
    let diff = JobDiff::between(Some(&old), Some(&new));
    let groups: Vec<(&str, &str)> = diff
        .task_groups
        .iter()
        .map(|group| (group.name.as_str(), group.diff_type.as_str()))
        .collect();
    assert_eq!(groups, [("cache", DELETED), ("web", ADDED)]);
    let tasks: Vec<(&str, &str)> = diff.task_groups[1]
        .tasks
        .iter()
        .map(|task| (task.name.as_str(), task.diff_type.as_str()))
        .collect();
    assert_eq!(tasks, [("redis", ADDED), ("sidecar", ADDED)]);
    assert_eq!(JobDiff::between(None, Some(&new)).diff_type, ADDED);
    assert_eq!(JobDiff::between(Some(&old), None).diff_type, DELETED);
}
