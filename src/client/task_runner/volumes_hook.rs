//! Hook `volumes`: resolves the task's `volume_mount`s against its group's `volume` requests and
//! the client's own `host_volume` config into the mounts the host gives the task when it starts
//! (`host-docker`: bind mounts; `host-isolated`: binds in the chroot; `host-wasm`: preopened
//! directories, read-only where asked). A driver that isolates no filesystem cannot give a task a
//! volume, so such a task fails here, as Nomad's does.
//!
//! **Invariant:** the host paths come from the agent's config (the node's `host_volume`s), never
//! from the job or a driver: a job names a volume, the operator says where it is.
//!
//! Nomad: `client/allocrunner/taskrunner/volume_hook.go`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::env_hook::NodeFacts;
use super::hooks::{HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::driver_host::{FsIsolation, TaskVolume};
use crate::structs::{Allocation, HostVolume, Task};

pub const NAME: &str = "volumes";

/// The `volumes` hook; in the list only for tasks with `volume_mount`s.
pub struct VolumesHook {
    pub facts: Arc<NodeFacts>,
}

/// The mounts `task` of `alloc` gets from the node's `host_volumes`. Nomad:
/// `volumeHook.hostVolumeMountConfigurations`.
pub fn host_volume_mounts(
    alloc: &Allocation,
    task: &Task,
    host_volumes: &BTreeMap<String, HostVolume>,
) -> Result<Vec<TaskVolume>, String> {
    let group = alloc
        .job
        .as_deref()
        .and_then(|job| job.task_group(&alloc.task_group))
        .ok_or_else(|| format!("allocation has no task group {:?}", alloc.task_group))?;
    let mut mounts = Vec::new();
    for mount in &task.volume_mounts {
        let request = group.volumes.get(&mount.volume).ok_or_else(|| {
            format!(
                "volume_mount references undefined volume {:?}",
                mount.volume
            )
        })?;
        if !request.is_host() {
            return Err(format!(
                "volume {:?} has type {:?}: only host volumes can be mounted",
                mount.volume, request.volume_type
            ));
        }
        let source = request.host_source(&alloc.name);
        let volume = host_volumes
            .get(&source)
            .ok_or_else(|| format!("host volume validation error: missing {source}"))?;
        mounts.push(TaskVolume {
            host_path: PathBuf::from(&volume.path),
            task_path: mount.destination.clone(),
            read_only: volume.read_only || request.read_only || mount.read_only,
        });
    }
    Ok(mounts)
}

impl TaskHook for VolumesHook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }
}

impl Prestart for VolumesHook {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let mounts = host_volume_mounts(req.alloc, req.task, &self.facts.node.host_volumes)
                .map_err(HookError::fatal)?;
            if !mounts.is_empty() && req.fs_isolation == FsIsolation::None {
                return Err(HookError::fatal(format!(
                    "task driver {:?} for {:?} does not support host volumes",
                    req.task.driver, req.task.name
                )));
            }
            resp.volumes = mounts;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{Job, TaskGroup, VolumeMount, VolumeRequest};

    fn alloc_with(volumes: &[(&str, VolumeRequest)]) -> Allocation {
        let group = TaskGroup {
            name: String::from("cache"),
            volumes: volumes
                .iter()
                .map(|(name, request)| ((*name).to_owned(), request.clone()))
                .collect(),
            ..TaskGroup::default()
        };
        let job = Job {
            task_groups: vec![group],
            ..Job::default()
        };
        Allocation {
            name: String::from("web.cache[1]"),
            task_group: String::from("cache"),
            job: Some(Arc::new(job)),
            ..Allocation::default()
        }
    }

    fn request(source: &str, read_only: bool, per_alloc: bool) -> VolumeRequest {
        VolumeRequest {
            volume_type: String::from("host"),
            source: source.to_owned(),
            read_only,
            per_alloc,
            ..VolumeRequest::default()
        }
    }

    fn task_mounting(mounts: &[(&str, &str, bool)]) -> Task {
        Task {
            volume_mounts: mounts
                .iter()
                .map(|(volume, destination, read_only)| VolumeMount {
                    volume: (*volume).to_owned(),
                    destination: (*destination).to_owned(),
                    read_only: *read_only,
                    ..VolumeMount::default()
                })
                .collect(),
            ..Task::default()
        }
    }

    fn host(path: &str, read_only: bool) -> HostVolume {
        HostVolume {
            path: path.to_owned(),
            read_only,
        }
    }

    #[test]
    fn mounts_take_the_paths_of_the_nodes_volumes_and_any_read_only() {
        let alloc = alloc_with(&[
            ("certs", request("certs", false, false)),
            ("data", request("data", false, true)),
            ("logs", request("logs", true, false)),
        ]);
        let task = task_mounting(&[
            ("certs", "/etc/certs", false),
            ("data", "/srv", false),
            ("logs", "/logs", false),
            ("data", "/srv-ro", true),
        ]);
        let node = BTreeMap::from([
            (String::from("certs"), host("/opt/certs", true)),
            (String::from("data[1]"), host("/opt/data-1", false)),
            (String::from("logs"), host("/var/log/app", false)),
        ]);
        let mounts = host_volume_mounts(&alloc, &task, &node).expect("mounts");
        let seen: Vec<(&str, &str, bool)> = mounts
            .iter()
            .map(|m| {
                (
                    m.host_path.to_str().unwrap_or_default(),
                    m.task_path.as_str(),
                    m.read_only,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("/opt/certs", "/etc/certs", true),
                ("/opt/data-1", "/srv", false),
                ("/var/log/app", "/logs", true),
                ("/opt/data-1", "/srv-ro", true),
            ]
        );
    }

    #[test]
    fn a_volume_the_node_lacks_or_the_group_lacks_is_an_error() {
        let alloc = alloc_with(&[("data", request("data", false, false))]);
        let err = host_volume_mounts(
            &alloc,
            &task_mounting(&[("data", "/srv", false)]),
            &BTreeMap::new(),
        )
        .expect_err("missing host volume");
        assert_eq!(err, "host volume validation error: missing data");
        let err = host_volume_mounts(
            &alloc,
            &task_mounting(&[("other", "/srv", false)]),
            &BTreeMap::new(),
        )
        .expect_err("undefined volume");
        assert!(err.contains("undefined volume \"other\""), "{err}");
    }
}
