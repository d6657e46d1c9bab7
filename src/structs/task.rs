//! The task: one process, container, VM or Wasm program, run by a driver.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validation::{ValidationErrors, check_path_name};
use super::{
    Action, Affinity, ChangeScript, Constraint, Consul, LogConfig, Resources, RestartPolicy,
    ScalingPolicy, Secret, Service, TaskCsiPluginConfig, TaskSchedule, Vault, WaitConfig, duration,
    nullable,
};

/// `lifecycle` block: when a task runs relative to the group's main tasks.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskLifecycle {
    /// "prestart", "poststart" or "poststop".
    pub hook: String,
    /// Keep running beside the main tasks instead of running to completion first.
    pub sidecar: bool,
}

impl TaskLifecycle {
    pub const PRESTART: &'static str = "prestart";
    pub const POSTSTART: &'static str = "poststart";
    pub const POSTSTOP: &'static str = "poststop";
}

/// `artifact` block: something fetched into the task dir before the task starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskArtifact {
    pub getter_source: String,
    #[serde(deserialize_with = "nullable::default")]
    pub getter_options: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable::default")]
    pub getter_headers: BTreeMap<String, String>,
    /// "any", "file" or "dir".
    pub getter_mode: String,
    pub relative_dest: String,
    pub getter_insecure: bool,
    pub chown: bool,
}

/// `template` block: a file rendered into the task dir.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Template {
    pub source_path: String,
    pub dest_path: String,
    pub embedded_tmpl: String,
    /// "restart", "signal", "noop" or "script".
    pub change_mode: String,
    pub change_signal: String,
    #[serde(with = "duration::nanos")]
    pub splay: Duration,
    pub perms: String,
    pub left_delim: String,
    pub right_delim: String,
    /// Render as environment variables (`env = true`).
    pub envvars: bool,
    pub err_missing_key: bool,
    pub change_script: Option<ChangeScript>,
    pub once: bool,
    pub uid: Option<i32>,
    pub gid: Option<i32>,
    #[serde(with = "duration::opt_nanos")]
    pub vault_grace: Option<Duration>,
    pub wait: Option<WaitConfig>,
}

/// `volume_mount` block: a group volume mounted into a task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeMount {
    pub volume: String,
    pub destination: String,
    pub read_only: bool,
    /// "private", "host-to-task" or "bidirectional".
    pub propagation_mode: String,
    #[serde(rename = "SELinuxLabel")]
    pub selinux_label: String,
}

/// `identity` block: a workload identity (a signed token) given to the task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WorkloadIdentity {
    /// Empty for the task's default identity.
    pub name: String,
    #[serde(deserialize_with = "nullable::default")]
    pub audience: Vec<String>,
    pub change_mode: String,
    pub change_signal: String,
    /// Expose the token as `NOMAD_TOKEN` (or `NOMAD_TOKEN_<name>`).
    pub env: bool,
    /// Write the token into the secrets dir.
    pub file: bool,
    pub filepath: String,
    pub service_name: String,
    #[serde(rename = "TTL", with = "duration::nanos")]
    pub ttl: Duration,
    #[serde(deserialize_with = "nullable::default")]
    pub extra_claims: Vec<String>,
}

/// `dispatch_payload` block: where a dispatched job's payload is written.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DispatchPayloadConfig {
    pub file: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Task {
    pub name: String,
    pub driver: String,
    pub user: String,
    pub lifecycle: Option<TaskLifecycle>,
    /// The driver's free-form `config` block.
    #[serde(deserialize_with = "nullable::default")]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(deserialize_with = "nullable::default")]
    pub constraints: Vec<Constraint>,
    #[serde(deserialize_with = "nullable::default")]
    pub affinities: Vec<Affinity>,
    #[serde(deserialize_with = "nullable::default")]
    pub env: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable::default")]
    pub services: Vec<Service>,
    pub resources: Option<Resources>,
    pub restart_policy: Option<RestartPolicy>,
    #[serde(deserialize_with = "nullable::default")]
    pub meta: BTreeMap<String, String>,
    #[serde(with = "duration::opt_nanos")]
    pub kill_timeout: Option<Duration>,
    pub log_config: Option<LogConfig>,
    #[serde(deserialize_with = "nullable::default")]
    pub artifacts: Vec<TaskArtifact>,
    #[serde(deserialize_with = "nullable::default")]
    pub templates: Vec<Template>,
    #[serde(deserialize_with = "nullable::default")]
    pub volume_mounts: Vec<VolumeMount>,
    pub leader: bool,
    #[serde(with = "duration::opt_nanos")]
    pub shutdown_delay: Option<Duration>,
    pub kill_signal: String,
    pub kind: String,
    /// The default workload identity.
    pub identity: Option<WorkloadIdentity>,
    /// Named workload identities.
    #[serde(deserialize_with = "nullable::default")]
    pub identities: Vec<WorkloadIdentity>,
    pub dispatch_payload: Option<DispatchPayloadConfig>,
    pub vault: Option<Vault>,
    pub consul: Option<Consul>,
    #[serde(rename = "CSIPluginConfig")]
    pub csi_plugin_config: Option<TaskCsiPluginConfig>,
    /// `scaling "cpu"` and `scaling "mem"` blocks.
    #[serde(deserialize_with = "nullable::default")]
    pub scaling_policies: Vec<ScalingPolicy>,
    #[serde(deserialize_with = "nullable::default")]
    pub secrets: Vec<Secret>,
    #[serde(deserialize_with = "nullable::default")]
    pub actions: Vec<Action>,
    pub schedule: Option<TaskSchedule>,
}

impl Task {
    /// Nomad's default time between the kill signal and SIGKILL.
    pub const DEFAULT_KILL_TIMEOUT: Duration = Duration::from_secs(5);

    /// Nomad's defaults for the task's plain fields (Nomad: `api/tasks.go` `Task.Canonicalize`);
    /// called only by the submission conversion, which fills the optional blocks.
    pub(super) fn apply_defaults(&mut self) {
        if self.kill_timeout.is_none() {
            self.kill_timeout = Some(Self::DEFAULT_KILL_TIMEOUT);
        }
        for artifact in &mut self.artifacts {
            if artifact.getter_mode.is_empty() {
                artifact.getter_mode = "any".to_owned();
            }
        }
        for template in &mut self.templates {
            if template.change_mode.is_empty() {
                template.change_mode = "restart".to_owned();
            }
            if template.change_mode == "signal" && template.change_signal.is_empty() {
                template.change_signal = "SIGHUP".to_owned();
            }
            if template.splay.is_zero() {
                template.splay = Duration::from_secs(5);
            }
            if template.perms.is_empty() {
                template.perms = "0644".to_owned();
            }
            if template.left_delim.is_empty() {
                template.left_delim = "{{".to_owned();
            }
            if template.right_delim.is_empty() {
                template.right_delim = "}}".to_owned();
            }
        }
        for service in &mut self.services {
            service.canonicalize();
        }
        for mount in &mut self.volume_mounts {
            // Nomad: `VolumeMount.Canonicalize`.
            if mount.propagation_mode.is_empty() {
                mount.propagation_mode = "private".to_owned();
            }
        }
        // Nomad: `Vault.Canonicalize` and `ScalingPolicy.Canonicalize`.
        if let Some(vault) = &mut self.vault {
            vault.env.get_or_insert(true);
            vault.disable_file.get_or_insert(false);
            if vault.change_mode.is_empty() {
                vault.change_mode = "restart".to_owned();
            }
        }
        for policy in &mut self.scaling_policies {
            policy.enabled.get_or_insert(true);
        }
    }

    pub(crate) fn validate(
        &self,
        path: &str,
        port_labels: &BTreeMap<String, ()>,
        errors: &mut ValidationErrors,
    ) {
        if self.name.is_empty() {
            errors.push(path, "missing task name");
        } else {
            check_path_name(path, "task name", &self.name, errors);
        }
        if self.driver.is_empty() {
            errors.push(&format!("{path}.Driver"), "missing task driver");
        }
        if let Some(resources) = &self.resources {
            resources.validate(&format!("{path}.Resources"), errors);
        }
        if let Some(lifecycle) = &self.lifecycle
            && !matches!(
                lifecycle.hook.as_str(),
                TaskLifecycle::PRESTART | TaskLifecycle::POSTSTART | TaskLifecycle::POSTSTOP
            )
        {
            errors.push(
                &format!("{path}.Lifecycle.Hook"),
                format!(
                    "invalid lifecycle hook {:?}: expected \"prestart\", \"poststart\" or \"poststop\"",
                    lifecycle.hook
                ),
            );
        }
        if let Some(policy) = &self.restart_policy {
            policy.validate(&format!("{path}.RestartPolicy"), errors);
        }
        if let Some(log_config) = &self.log_config {
            log_config.validate(&format!("{path}.LogConfig"), errors);
        }
        for (constraint_idx, constraint) in self.constraints.iter().enumerate() {
            constraint.validate(&format!("{path}.Constraints[{constraint_idx}]"), errors);
        }
        for (affinity_idx, affinity) in self.affinities.iter().enumerate() {
            affinity.validate(&format!("{path}.Affinities[{affinity_idx}]"), errors);
        }
        for (artifact_idx, artifact) in self.artifacts.iter().enumerate() {
            if artifact.getter_source.is_empty() {
                errors.push(
                    &format!("{path}.Artifacts[{artifact_idx}].GetterSource"),
                    "artifact source must not be empty",
                );
            }
            if !matches!(artifact.getter_mode.as_str(), "" | "any" | "file" | "dir") {
                errors.push(
                    &format!("{path}.Artifacts[{artifact_idx}].GetterMode"),
                    format!(
                        "invalid artifact mode {:?}: expected \"any\", \"file\" or \"dir\"",
                        artifact.getter_mode
                    ),
                );
            }
        }
        for (template_idx, template) in self.templates.iter().enumerate() {
            let template_path = format!("{path}.Templates[{template_idx}]");
            if template.source_path.is_empty() && template.embedded_tmpl.is_empty() {
                errors.push(
                    &template_path,
                    "template must have a source or embedded data",
                );
            }
            if template.dest_path.is_empty() {
                errors.push(
                    &format!("{template_path}.DestPath"),
                    "template must have a destination",
                );
            }
            if !matches!(
                template.change_mode.as_str(),
                "" | "restart" | "signal" | "noop" | "script"
            ) {
                errors.push(
                    &format!("{template_path}.ChangeMode"),
                    format!("invalid template change_mode {:?}", template.change_mode),
                );
            }
        }
        // Nomad (structs `validateServices`, COMPAT(0.13)): a task's services may also name the
        // ports of the deprecated networks in its own resources.
        let task_networks = self
            .resources
            .iter()
            .flat_map(|resources| &resources.networks);
        let mut service_port_labels = port_labels.clone();
        for port in task_networks.flat_map(super::NetworkResource::ports) {
            service_port_labels.insert(port.label.clone(), ());
        }
        for service in &self.services {
            service.validate(
                &format!("{path}.Services[{}]", service.name),
                &service_port_labels,
                errors,
            );
        }
    }

    /// The task's lifecycle hook, or `None` for a main task.
    pub fn lifecycle_hook(&self) -> Option<&str> {
        self.lifecycle
            .as_ref()
            .map(|lifecycle| lifecycle.hook.as_str())
    }
}
