//! The task group: tasks placed together on one node, the unit of scheduling.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validation::{ValidationErrors, check_path_name};
use super::{
    Affinity, Constraint, Consul, CsiMountOptions, DisconnectStrategy, EphemeralDisk, JobType,
    MigrateStrategy, NetworkResource, ReschedulePolicy, RestartPolicy, ScalingPolicy, Service,
    Spread, Task, UpdateStrategy, duration, nullable,
};

/// A `volume` request of a group (host volumes).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeRequest {
    pub name: String,
    #[serde(rename = "Type")]
    pub volume_type: String,
    pub source: String,
    pub read_only: bool,
    pub sticky: bool,
    pub access_mode: String,
    pub attachment_mode: String,
    pub mount_options: Option<CsiMountOptions>,
    pub per_alloc: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskGroup {
    pub name: String,
    pub count: i32,
    #[serde(deserialize_with = "nullable::default")]
    pub constraints: Vec<Constraint>,
    #[serde(deserialize_with = "nullable::default")]
    pub affinities: Vec<Affinity>,
    #[serde(deserialize_with = "nullable::default")]
    pub spreads: Vec<Spread>,
    #[serde(deserialize_with = "nullable::default")]
    pub tasks: Vec<Task>,
    #[serde(deserialize_with = "nullable::default")]
    pub volumes: BTreeMap<String, VolumeRequest>,
    pub restart_policy: Option<RestartPolicy>,
    pub reschedule_policy: Option<ReschedulePolicy>,
    pub ephemeral_disk: Option<EphemeralDisk>,
    pub update: Option<UpdateStrategy>,
    pub migrate: Option<MigrateStrategy>,
    #[serde(deserialize_with = "nullable::default")]
    pub networks: Vec<NetworkResource>,
    #[serde(deserialize_with = "nullable::default")]
    pub meta: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable::default")]
    pub services: Vec<Service>,
    #[serde(with = "duration::opt_nanos")]
    pub shutdown_delay: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub stop_after_client_disconnect: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub max_client_disconnect: Option<Duration>,
    /// `disconnect` block (Nomad 1.8+), the successor of `max_client_disconnect`.
    pub disconnect: Option<DisconnectStrategy>,
    #[serde(with = "duration::opt_nanos")]
    pub max_run_duration: Option<Duration>,
    /// `scaling` block: the count's bounds for `job scale` and an autoscaler.
    pub scaling: Option<ScalingPolicy>,
    pub consul: Option<Consul>,
    pub prevent_reschedule_on_lost: bool,
}

impl Default for TaskGroup {
    fn default() -> Self {
        Self {
            name: String::new(),
            // For groups built in code; a submitted group's count comes from the conversion.
            count: 1,
            constraints: Vec::new(),
            affinities: Vec::new(),
            spreads: Vec::new(),
            tasks: Vec::new(),
            volumes: BTreeMap::new(),
            restart_policy: None,
            reschedule_policy: None,
            ephemeral_disk: None,
            update: None,
            migrate: None,
            networks: Vec::new(),
            meta: BTreeMap::new(),
            services: Vec::new(),
            shutdown_delay: None,
            stop_after_client_disconnect: None,
            max_client_disconnect: None,
            disconnect: None,
            max_run_duration: None,
            scaling: None,
            consul: None,
            prevent_reschedule_on_lost: false,
        }
    }
}

impl TaskGroup {
    /// How long allocations of the group on a disconnected client stay `unknown` before they are
    /// lost: `disconnect { lost_after }`, or its predecessor `max_client_disconnect`; `None`
    /// when they are lost at once.
    pub fn disconnect_window(&self) -> Option<Duration> {
        self.disconnect
            .as_ref()
            .and_then(|disconnect| disconnect.lost_after)
            .or(self.max_client_disconnect)
            .filter(|window| !window.is_zero())
    }

    /// Whether an allocation that became `unknown` is replaced meanwhile (`disconnect {
    /// replace }`, true by default as Nomad's).
    pub fn replaces_disconnected(&self) -> bool {
        self.disconnect
            .as_ref()
            .and_then(|disconnect| disconnect.replace)
            .unwrap_or(true)
    }

    /// Whether, when a disconnected client comes back, its allocation gives way to the
    /// replacement (`disconnect { reconcile = "keep_replacement" }`); otherwise the original,
    /// which has run the longest, is kept and the replacement stopped.
    pub fn keeps_replacement_on_reconnect(&self) -> bool {
        self.disconnect
            .as_ref()
            .and_then(|disconnect| disconnect.reconcile.as_deref())
            == Some("keep_replacement")
    }

    pub(crate) fn validate(&self, job_type: JobType, path: &str, errors: &mut ValidationErrors) {
        if self.name.is_empty() {
            errors.push(path, "missing task group name");
        } else {
            check_path_name(path, "task group name", &self.name, errors);
        }
        if self.count < 0 {
            errors.push(
                &format!("{path}.Count"),
                format!("task group count can't be negative, got {}", self.count),
            );
        }
        if matches!(job_type, JobType::System | JobType::Sysbatch) && self.count > 1 {
            errors.push(
                &format!("{path}.Count"),
                format!(
                    "{job_type} jobs run once per node: count must be 0 or 1, got {}",
                    self.count
                ),
            );
        }
        if self.tasks.is_empty() {
            errors.push(path, "task group must have at least one task");
        }
        if self.networks.len() > 1 {
            errors.push(
                &format!("{path}.Networks"),
                "only one network block is allowed per group",
            );
        }
        let mut port_labels = BTreeMap::new();
        for network in &self.networks {
            network.validate(&format!("{path}.Networks"), &mut port_labels, errors);
        }
        if let Some(policy) = &self.restart_policy {
            policy.validate(&format!("{path}.RestartPolicy"), errors);
        }
        if let Some(disk) = &self.ephemeral_disk
            && disk.size_mb < EphemeralDisk::MIN_SIZE_MB
        {
            // Nomad: `EphemeralDisk.Validate`.
            errors.push(
                &format!("{path}.EphemeralDisk.SizeMB"),
                format!(
                    "minimum DiskMB value is {}; got {}",
                    EphemeralDisk::MIN_SIZE_MB,
                    disk.size_mb
                ),
            );
        }
        if let Some(migrate) = &self.migrate
            && migrate.max_parallel < 0
        {
            // Nomad: `MigrateStrategy.Validate`.
            errors.push(
                &format!("{path}.Migrate.MaxParallel"),
                format!(
                    "MaxParallel must be >= 0 but found {}",
                    migrate.max_parallel
                ),
            );
        }
        if let Some(policy) = &self.reschedule_policy {
            policy.validate(&format!("{path}.ReschedulePolicy"), errors);
        }
        if let Some(scaling) = &self.scaling {
            self.validate_scaling(scaling, &format!("{path}.Scaling"), errors);
        }
        if let Some(update) = &self.update {
            update.validate(&format!("{path}.Update"), errors);
        }
        let canaries = self.update.as_ref().map_or(0, |update| update.canary);
        for (name, volume) in &self.volumes {
            volume.validate(
                job_type,
                canaries,
                &format!("{path}.Volumes[{name}]"),
                errors,
            );
        }
        for (constraint_idx, constraint) in self.constraints.iter().enumerate() {
            constraint.validate(&format!("{path}.Constraints[{constraint_idx}]"), errors);
        }
        for (affinity_idx, affinity) in self.affinities.iter().enumerate() {
            affinity.validate(&format!("{path}.Affinities[{affinity_idx}]"), errors);
        }
        for (spread_idx, spread) in self.spreads.iter().enumerate() {
            spread.validate(&format!("{path}.Spreads[{spread_idx}]"), errors);
        }
        for service in &self.services {
            service.validate(
                &format!("{path}.Services[{}]", service.name),
                &port_labels,
                errors,
            );
        }
        let mut seen_tasks = BTreeMap::new();
        let mut n_leaders = 0;
        for task in &self.tasks {
            let task_path = format!("{path}.Tasks[{}]", task.name);
            if seen_tasks.insert(task.name.clone(), ()).is_some() {
                errors.push(&task_path, format!("task {:?} is defined twice", task.name));
            }
            if task.leader {
                n_leaders += 1;
            }
            task.validate(&task_path, &port_labels, errors);
            super::volume::validate_mounts(&task.volume_mounts, &self.volumes, &task_path, errors);
        }
        if n_leaders > 1 {
            errors.push(path, "only one task may be marked as leader");
        }
    }

    /// Nomad: `ScalingPolicy.Validate` and `TaskGroup.validateScalingPolicy`.
    fn validate_scaling(&self, scaling: &ScalingPolicy, path: &str, errors: &mut ValidationErrors) {
        let min = scaling.min.unwrap_or(0);
        match scaling.max {
            Some(max) if max >= 0 => {
                if max < min {
                    errors.push(
                        path,
                        "Scaling policy invalid: maximum count must not be less than minimum count",
                    );
                } else if i64::from(self.count) > max {
                    errors.push(
                        path,
                        "Scaling policy invalid: task group count must not be greater than maximum count in scaling policy",
                    );
                }
            }
            _ => errors.push(
                path,
                "Scaling policy invalid: maximum count must be specified and non-negative",
            ),
        }
        if min < 0 {
            errors.push(
                path,
                "Scaling policy invalid: minimum count must be specified and non-negative",
            );
        } else if i64::from(self.count) < min {
            errors.push(
                path,
                "Scaling policy invalid: task group count must not be less than minimum count in scaling policy",
            );
        }
    }

    /// The task named `name`, if the group has one.
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|task| task.name == name)
    }

    /// Sum of the tasks' CPU in MHz, the group's share of a node.
    pub fn total_cpu(&self) -> i64 {
        self.tasks
            .iter()
            .filter_map(|task| task.resources.as_ref())
            .map(|resources| i64::from(resources.cpu))
            .sum()
    }

    /// Sum of the tasks' memory in MB.
    pub fn total_memory_mb(&self) -> i64 {
        self.tasks
            .iter()
            .filter_map(|task| task.resources.as_ref())
            .map(|resources| i64::from(resources.memory_mb))
            .sum()
    }
}
