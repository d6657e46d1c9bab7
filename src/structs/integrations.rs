//! Blocks of Nomad's job specification that configure integrations caravan does not have:
//! Consul (`consul`, a service's `connect`), Vault (`vault`), CSI (`csi_plugin`, CSI volumes'
//! `mount_options`), `multiregion`, and `secret` with an external provider.
//!
//! They are decoded and stored under Nomad's JSON names so that a job file written for Nomad
//! parses as Nomad's does (`job run -output`, `/v1/jobs/parse`), and [`Job::validate`] refuses
//! them at registration with a message naming the block ([`unsupported`]): a job must never run
//! with part of its specification silently ignored. `connect`'s inner blocks (sidecar service,
//! sidecar task, gateway) stay JSON values: caravan only shows them.
//!
//! [`Job::validate`]: super::Job::validate

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::validation::ValidationErrors;
use super::{Job, duration, nullable};

/// `consul` block of a group or task (Nomad: `api.Consul`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Consul {
    pub namespace: String,
    pub cluster: String,
    pub partition: String,
}

impl Consul {
    /// True when the block asks for nothing beyond Nomad's defaults (the default cluster, no
    /// namespace or partition): such a block changes nothing and is accepted.
    pub fn is_default(&self) -> bool {
        matches!(self.cluster.as_str(), "" | "default")
            && self.namespace.is_empty()
            && self.partition.is_empty()
    }
}

/// `vault` block of a task (Nomad: `api.Vault`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Vault {
    #[serde(deserialize_with = "nullable::default")]
    pub policies: Vec<String>,
    pub role: String,
    pub namespace: String,
    pub cluster: String,
    /// Nomad's default: true.
    pub env: Option<bool>,
    pub disable_file: Option<bool>,
    pub change_mode: String,
    pub change_signal: String,
    pub allow_token_expiration: bool,
}

/// `connect` block of a service (Nomad: `api.ConsulConnect`): Consul service mesh.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ConsulConnect {
    pub native: bool,
    /// `gateway { proxy, ingress, terminating, mesh }`, under Nomad's JSON names.
    pub gateway: Option<serde_json::Value>,
    /// `sidecar_service { port, tags, proxy { upstreams, expose, config }, ... }`.
    pub sidecar_service: Option<serde_json::Value>,
    /// `sidecar_task { driver, config, resources, ... }`.
    pub sidecar_task: Option<serde_json::Value>,
}

/// `csi_plugin` block of a task (Nomad: `api.TaskCSIPluginConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TaskCsiPluginConfig {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Type")]
    pub plugin_type: String,
    pub mount_dir: String,
    pub stage_publish_base_dir: String,
    #[serde(with = "duration::nanos")]
    pub health_timeout: Duration,
}

/// `mount_options` of a CSI volume request (Nomad: `api.CSIMountOptions`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CsiMountOptions {
    #[serde(rename = "FSType")]
    pub fs_type: String,
    #[serde(deserialize_with = "nullable::default")]
    pub mount_flags: Vec<String>,
}

/// `multiregion` block of a job (Nomad: `api.Multiregion`, an Enterprise feature).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Multiregion {
    pub strategy: Option<MultiregionStrategy>,
    #[serde(deserialize_with = "nullable::default")]
    pub regions: Vec<MultiregionRegion>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MultiregionStrategy {
    pub max_parallel: i32,
    pub on_failure: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MultiregionRegion {
    pub name: String,
    pub count: Option<i32>,
    #[serde(deserialize_with = "nullable::default")]
    pub datacenters: Vec<String>,
    pub node_pool: String,
    #[serde(deserialize_with = "nullable::default")]
    pub meta: BTreeMap<String, String>,
}

/// `secret "<name>"` block of a task (Nomad 1.10: `api.Secret`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Secret {
    pub name: String,
    /// "nomad" (Nomad Variables), "vault", or a custom provider plugin.
    pub provider: String,
    pub path: String,
    #[serde(deserialize_with = "nullable::default")]
    pub config: serde_json::Map<String, serde_json::Value>,
    #[serde(deserialize_with = "nullable::default")]
    pub env: BTreeMap<String, String>,
}

/// Refuses every integration block of `job` that caravan cannot honour, each with a message that
/// names the block, where it is and why. Called by [`Job::validate`], so at registration.
pub(crate) fn unsupported(job: &Job, errors: &mut ValidationErrors) {
    if job.multiregion.is_some() {
        errors.push(
            "Multiregion",
            "caravan has no multiregion deployments: the job uses multiregion",
        );
    }
    for group in &job.task_groups {
        let group_path = &format!("TaskGroups[{}]", group.name);
        if let Some(consul) = &group.consul
            && !consul.is_default()
        {
            errors.push(
                &format!("{group_path}.Consul"),
                format!(
                    "caravan has no Consul integration: group {:?} uses consul with a non-default cluster, namespace or partition",
                    group.name
                ),
            );
        }
        for (name, volume) in &group.volumes {
            if volume.volume_type == "csi" {
                errors.push(
                    &format!("{group_path}.Volumes[{name}]"),
                    format!(
                        "caravan has no CSI volumes: group {:?} volume {name:?} has type \"csi\"",
                        group.name
                    ),
                );
            }
        }
        let services = group
            .services
            .iter()
            .map(|service| (format!("{group_path}.Services[{}]", service.name), service))
            .chain(group.tasks.iter().flat_map(|task| {
                task.services.iter().map(move |service| {
                    (
                        format!(
                            "{group_path}.Tasks[{}].Services[{}]",
                            task.name, service.name
                        ),
                        service,
                    )
                })
            }));
        for (path, service) in services {
            if service.connect.is_some() {
                errors.push(
                    &format!("{path}.Connect"),
                    format!(
                        "caravan has no Consul service mesh: group {:?} service {:?} uses connect",
                        group.name, service.name
                    ),
                );
            }
        }
        for task in &group.tasks {
            let task_path = format!("{group_path}.Tasks[{}]", task.name);
            if task.vault.is_some() {
                errors.push(
                    &format!("{task_path}.Vault"),
                    format!(
                        "caravan has no Vault integration: group {:?} task {:?} uses vault",
                        group.name, task.name
                    ),
                );
            }
            if let Some(consul) = &task.consul
                && !consul.is_default()
            {
                errors.push(
                    &format!("{task_path}.Consul"),
                    format!(
                        "caravan has no Consul integration: group {:?} task {:?} uses consul with a non-default cluster, namespace or partition",
                        group.name, task.name
                    ),
                );
            }
            if task.csi_plugin_config.is_some() {
                errors.push(
                    &format!("{task_path}.CSIPluginConfig"),
                    format!(
                        "caravan has no CSI support: group {:?} task {:?} uses csi_plugin",
                        group.name, task.name
                    ),
                );
            }
            for secret in &task.secrets {
                if !matches!(secret.provider.as_str(), "" | "nomad") {
                    errors.push(
                        &format!("{task_path}.Secrets[{}]", secret.name),
                        format!(
                            "caravan has no secret provider {:?}: group {:?} task {:?} secret {:?} (only provider \"nomad\" is known)",
                            secret.provider, group.name, task.name, secret.name
                        ),
                    );
                }
            }
            if task.schedule.is_some() {
                errors.push(
                    &format!("{task_path}.Schedule"),
                    format!(
                        "caravan has no task schedules (a Nomad Enterprise feature): group {:?} task {:?} uses schedule",
                        group.name, task.name
                    ),
                );
            }
            if let Some(numa) = task
                .resources
                .as_ref()
                .and_then(|resources| resources.numa.as_ref())
                && !matches!(numa.affinity.as_str(), "" | "none")
            {
                errors.push(
                    &format!("{task_path}.Resources.NUMA"),
                    format!(
                        "caravan has no NUMA-aware scheduling: group {:?} task {:?} asks for numa affinity {:?}",
                        group.name, task.name, numa.affinity
                    ),
                );
            }
        }
    }
}
