//! Host volumes as a job asks for them: a group's `volume` requests and a task's `volume_mount`s,
//! their validation at registration, and which of the node's `host_volume`s a request names.
//!
//! Nomad: `nomad/structs/volumes.go` (`VolumeRequest.Validate`, `VolumeMount.Validate`) and the
//! volume checks of `Task.Validate`.

use std::collections::BTreeMap;

use super::validation::ValidationErrors;
use super::{JobType, VolumeMount, VolumeRequest};

/// A group volume of this type is a client `host_volume`.
pub const VOLUME_TYPE_HOST: &str = "host";
const VOLUME_TYPE_CSI: &str = "csi";

impl VolumeRequest {
    /// Whether the request names a client `host_volume` (type `host`, the default).
    pub fn is_host(&self) -> bool {
        self.volume_type.is_empty() || self.volume_type == VOLUME_TYPE_HOST
    }

    /// The node's host volume this request names for the allocation named `alloc_name`: the
    /// source, suffixed with the allocation's index (`data[2]`) when `per_alloc` is set.
    pub fn host_source(&self, alloc_name: &str) -> String {
        if !self.per_alloc {
            return self.source.clone();
        }
        let suffix = alloc_name.rfind('[').map_or("", |open| &alloc_name[open..]);
        format!("{}{suffix}", self.source)
    }

    /// Nomad: `VolumeRequest.Validate` (CSI volumes are refused before this, with the other
    /// integrations caravan lacks).
    pub(crate) fn validate(
        &self,
        job_type: JobType,
        canaries: i32,
        path: &str,
        errors: &mut ValidationErrors,
    ) {
        let prefix = format!("Task group volume validation for {} failed", self.name);
        if !self.is_host() && self.volume_type != VOLUME_TYPE_CSI {
            errors.push(
                path,
                format!(
                    "{prefix}: volume has unrecognized type {}",
                    self.volume_type
                ),
            );
            return;
        }
        let mut fail = |message: String| errors.push(path, format!("{prefix}: {message}"));
        if self.source.is_empty() {
            fail(String::from("volume has an empty source"));
        }
        if self.per_alloc {
            if matches!(job_type, JobType::System | JobType::Sysbatch) {
                fail(String::from(
                    "volume cannot be per_alloc for system or sysbatch jobs",
                ));
            }
            if canaries > 0 {
                fail(String::from(
                    "volume cannot be per_alloc when canaries are in use",
                ));
            }
            if self.sticky {
                fail(String::from(
                    "volume cannot be per_alloc and sticky at the same time",
                ));
            }
        }
        if !self.is_host() {
            return;
        }
        if self.mount_options.is_some() {
            fail(String::from("host volumes cannot have mount options"));
        }
        match self.access_mode.as_str() {
            "single-node-reader-only" if !self.read_only => {
                fail(format!("{} volumes must be read-only", self.access_mode));
            }
            ""
            | "single-node-reader-only"
            | "single-node-writer"
            | "single-node-single-writer"
            | "single-node-multi-writer" => {}
            other => fail(format!(
                "host volumes cannot be mounted with {other} access mode"
            )),
        }
    }
}

/// Nomad: the volume checks of `Task.Validate` and `VolumeMount.Validate`.
pub(crate) fn validate_mounts(
    mounts: &[VolumeMount],
    volumes: &BTreeMap<String, VolumeRequest>,
    path: &str,
    errors: &mut ValidationErrors,
) {
    for (index, mount) in mounts.iter().enumerate() {
        let mount_path = format!("{path}.VolumeMounts[{index}]");
        if !volumes.contains_key(&mount.volume) {
            errors.push(
                &mount_path,
                format!(
                    "Volume Mount ({index}) references undefined volume {}",
                    mount.volume
                ),
            );
        }
        let invalid = |what: &str| format!("Volume Mount ({index}) is invalid: \"{what}\"");
        if mount.volume.is_empty() {
            errors.push(
                &mount_path,
                invalid("volume mount references an empty volume"),
            );
        }
        if !matches!(
            mount.propagation_mode.as_str(),
            "" | "private" | "host-to-task" | "bidirectional"
        ) {
            errors.push(
                &mount_path,
                invalid(&format!(
                    "volume mount has an invalid propagation mode: {:?}",
                    mount.propagation_mode
                )),
            );
        }
        if !matches!(mount.selinux_label.as_str(), "" | "z" | "Z") {
            errors.push(
                &mount_path,
                invalid(&format!(
                    "volume mount has an invalid SELinux label: \"{}\"",
                    mount.selinux_label
                )),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(source: &str) -> VolumeRequest {
        VolumeRequest {
            name: String::from("data"),
            volume_type: String::from("host"),
            source: source.to_owned(),
            ..VolumeRequest::default()
        }
    }

    fn messages(errors: &ValidationErrors) -> Vec<String> {
        errors.errors.iter().map(|e| e.message.clone()).collect()
    }

    #[test]
    fn per_alloc_sources_take_the_allocations_index() {
        let mut volume = request("data");
        assert_eq!(volume.host_source("web.cache[2]"), "data");
        volume.per_alloc = true;
        assert_eq!(volume.host_source("web.cache[2]"), "data[2]");
        assert_eq!(volume.host_source("no-index"), "data");
    }

    #[test]
    fn requests_are_checked_as_nomad_checks_them() {
        let mut errors = ValidationErrors::default();
        let mut volume = request("");
        volume.per_alloc = true;
        volume.sticky = true;
        volume.access_mode = String::from("multi-node-writer");
        volume.validate(JobType::System, 1, "Job.TaskGroups[g]", &mut errors);
        assert_eq!(
            messages(&errors),
            [
                "Task group volume validation for data failed: volume has an empty source",
                "Task group volume validation for data failed: volume cannot be per_alloc for system or sysbatch jobs",
                "Task group volume validation for data failed: volume cannot be per_alloc when canaries are in use",
                "Task group volume validation for data failed: volume cannot be per_alloc and sticky at the same time",
                "Task group volume validation for data failed: host volumes cannot be mounted with multi-node-writer access mode",
            ]
        );
        let mut errors = ValidationErrors::default();
        let mut volume = request("data");
        volume.access_mode = String::from("single-node-reader-only");
        volume.validate(JobType::Service, 0, "g", &mut errors);
        assert_eq!(
            messages(&errors),
            [
                "Task group volume validation for data failed: single-node-reader-only volumes must be read-only"
            ]
        );
        let mut errors = ValidationErrors::default();
        let mut volume = request("data");
        volume.volume_type = String::from("nfs");
        volume.validate(JobType::Service, 0, "g", &mut errors);
        assert_eq!(
            messages(&errors),
            ["Task group volume validation for data failed: volume has unrecognized type nfs"]
        );
        let mut errors = ValidationErrors::default();
        request("data").validate(JobType::Service, 0, "g", &mut errors);
        assert!(errors.errors.is_empty(), "{:?}", messages(&errors));
    }

    #[test]
    fn mounts_name_a_group_volume() {
        let volumes = BTreeMap::from([(String::from("data"), request("data"))]);
        let mounts = [
            VolumeMount {
                volume: String::from("data"),
                destination: String::from("/srv"),
                ..VolumeMount::default()
            },
            VolumeMount {
                volume: String::from("logs"),
                destination: String::from("/logs"),
                propagation_mode: String::from("sideways"),
                ..VolumeMount::default()
            },
        ];
        let mut errors = ValidationErrors::default();
        validate_mounts(&mounts, &volumes, "Job.TaskGroups[g].Tasks[t]", &mut errors);
        assert_eq!(
            messages(&errors),
            [
                "Volume Mount (1) references undefined volume logs",
                "Volume Mount (1) is invalid: \"volume mount has an invalid propagation mode: \"sideways\"\"",
            ]
        );
    }
}
