//! Does a new job version need new allocations, or can running ones be updated in place?
//!
//! Anything that changes what runs (drivers, configs, env, resources, artifacts, templates, mounts,
//! networks, disk, volumes, meta) is destructive; scheduling-only and policy changes (count,
//! update, restart and reschedule policies, services, constraints the node still meets) are not.
//!
//! Nomad: `scheduler/util.go` `tasksUpdated`.

use crate::structs::{Job, Task};

/// True if allocations of `group_name` made from `old_job` must be replaced to run `new_job`.
pub fn tasks_updated(old_job: &Job, new_job: &Job, group_name: &str) -> bool {
    let (Some(old), Some(new)) = (
        old_job.task_group(group_name),
        new_job.task_group(group_name),
    ) else {
        return true;
    };
    if old.tasks.len() != new.tasks.len()
        || old.networks != new.networks
        || old.ephemeral_disk != new.ephemeral_disk
        || old.volumes != new.volumes
        || old.meta != new.meta
        || old_job.meta != new_job.meta
    {
        return true;
    }
    old.tasks
        .iter()
        .any(|old_task| match new.task(&old_task.name) {
            Some(new_task) => task_changed(old_task, new_task),
            None => true,
        })
}

fn task_changed(old: &Task, new: &Task) -> bool {
    old.driver != new.driver
        || old.user != new.user
        || old.config != new.config
        || old.env != new.env
        || old.resources != new.resources
        || old.meta != new.meta
        || old.artifacts != new.artifacts
        || old.templates != new.templates
        || old.volume_mounts != new.volume_mounts
        || old.lifecycle != new.lifecycle
        || old.kill_signal != new.kill_signal
        || old.leader != new.leader
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{Resources, RestartPolicy, TaskGroup};

    fn job() -> Job {
        Job {
            task_groups: vec![TaskGroup {
                name: "web".to_owned(),
                count: 2,
                tasks: vec![Task {
                    name: "server".to_owned(),
                    driver: "wasm".to_owned(),
                    resources: Some(Resources {
                        cpu: 100,
                        memory_mb: 128,
                        ..Resources::default()
                    }),
                    ..Task::default()
                }],
                ..TaskGroup::default()
            }],
            ..Job::default()
        }
    }

    #[test]
    fn destructive_and_in_place_changes() {
        type Edit = fn(&mut Job);
        let cases: [(&str, Edit, bool); 7] = [
            ("nothing", |_| {}, false),
            ("count", |job| job.task_groups[0].count = 5, false),
            (
                "restart policy",
                |job| job.task_groups[0].restart_policy = Some(RestartPolicy::default()),
                false,
            ),
            (
                "driver",
                |job| job.task_groups[0].tasks[0].driver = "docker".to_owned(),
                true,
            ),
            (
                "env",
                |job| {
                    job.task_groups[0].tasks[0]
                        .env
                        .insert("A".to_owned(), "1".to_owned());
                },
                true,
            ),
            (
                "memory",
                |job| {
                    if let Some(resources) = &mut job.task_groups[0].tasks[0].resources {
                        resources.memory_mb = 256;
                    }
                },
                true,
            ),
            (
                "job meta",
                |job| {
                    job.meta.insert("v".to_owned(), "2".to_owned());
                },
                true,
            ),
        ];
        for (name, edit, expected) in cases {
            let mut new = job();
            edit(&mut new);
            assert_eq!(tasks_updated(&job(), &new, "web"), expected, "{name}");
        }
        assert!(tasks_updated(&job(), &job(), "missing"));
    }
}
