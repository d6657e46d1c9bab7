//! The `task` block (Nomad: `api.Task`) and the blocks only a task has: `resources`, `logs`,
//! `lifecycle`, `template`, `artifact`, `volume_mount`.

use hcl::edit::structure::Block;

use super::config::decode_config;
use super::network::decode_network;
use super::placement::{decode_affinities, decode_constraints};
use super::policy::{decode_logs, decode_restart};
use super::service::decode_services;
use super::spec::{decode, from_json, labeled_blocks, optional_block};
use super::specs;
use crate::jobspec::body::{BlockReader, Schema, join_path, no_labels, single_label};
use crate::jobspec::error::JobspecError;
use crate::structs::{
    DispatchPayloadConfig, ResourcesSubmission, ScalingPolicy, Task, TaskArtifact, TaskLifecycle,
    TaskSubmission, Template, VolumeMount, WorkloadIdentity,
};

const TASK_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "driver",
        "env",
        "kill_signal",
        "kill_timeout",
        "kind",
        "leader",
        "meta",
        "shutdown_delay",
        "user",
    ],
    blocks: &[
        "action",
        "affinity",
        "artifact",
        "config",
        "constraint",
        "consul",
        "csi_plugin",
        "dispatch_payload",
        "env",
        "identity",
        "lifecycle",
        "logs",
        "meta",
        "resources",
        "restart",
        "scaling",
        "schedule",
        "secret",
        "service",
        "template",
        "vault",
        "volume_mount",
    ],
};

const IDENTITY_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "aud",
        "change_mode",
        "change_signal",
        "env",
        "extra_claims",
        "file",
        "filepath",
        "name",
        "service_name",
        "ttl",
    ],
    blocks: &[],
};

const DISPATCH_PAYLOAD_SCHEMA: Schema<'static> = Schema {
    arguments: &["file"],
    blocks: &[],
};

const RESOURCES_SCHEMA: Schema<'static> = Schema {
    arguments: &["cores", "cpu", "disk", "memory", "memory_max", "secrets"],
    blocks: &["device", "network", "numa"],
};

const LIFECYCLE_SCHEMA: Schema<'static> = Schema {
    arguments: &["hook", "sidecar"],
    blocks: &[],
};

const TEMPLATE_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "change_mode",
        "change_signal",
        "data",
        "destination",
        "env",
        "error_on_missing_key",
        "gid",
        "left_delimiter",
        "once",
        "perms",
        "right_delimiter",
        "source",
        "splay",
        "uid",
        "vault_grace",
    ],
    blocks: &["change_script", "wait"],
};

const ARTIFACT_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "chown",
        "destination",
        "headers",
        "insecure",
        "mode",
        "options",
        "source",
    ],
    blocks: &["headers", "options"],
};

const VOLUME_MOUNT_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "destination",
        "propagation_mode",
        "read_only",
        "selinux_label",
        "volume",
    ],
    blocks: &[],
};

/// What a task inherits from its group and job.
pub(super) struct TaskContext<'a> {
    pub job_name: &'a str,
    pub group_name: &'a str,
}

pub(super) fn decode_task(
    group: &BlockReader<'_, '_>,
    block: &Block,
    context: &TaskContext<'_>,
) -> Result<TaskSubmission, JobspecError> {
    let task_name = single_label(group, block, "name")?;
    let task = group.child(
        block,
        format!("task {task_name:?}"),
        join_path(&group.path, &format!("Tasks[{task_name}]")),
        TASK_SCHEMA,
    )?;
    let mut decoded = Task {
        driver: task.string("driver", "Driver")?.unwrap_or_default(),
        user: task.string("user", "User")?.unwrap_or_default(),
        kind: task.string("kind", "Kind")?.unwrap_or_default(),
        env: task.string_map("env", "Env")?.unwrap_or_default(),
        meta: task.string_map("meta", "Meta")?.unwrap_or_default(),
        kill_timeout: task.duration("kill_timeout", "KillTimeout")?,
        kill_signal: task
            .string("kill_signal", "KillSignal")?
            .unwrap_or_default(),
        shutdown_delay: task.duration("shutdown_delay", "ShutdownDelay")?,
        leader: task.bool("leader", "Leader")?.unwrap_or(false),
        constraints: decode_constraints(&task)?,
        affinities: decode_affinities(&task)?,
        services: decode_services(
            &task,
            &format!("{}-{}-{task_name}", context.job_name, context.group_name),
        )?,
        ..Task::default()
    };
    if let Some(config_block) = task.unique_block("config")? {
        decoded.config = decode_config(&task, config_block)?;
    }
    let mut submission = TaskSubmission::default();
    if let Some(resources_block) = task.unique_block("resources")? {
        submission.resources = Some(decode_resources(&task, resources_block)?);
    }
    if let Some(restart_block) = task.unique_block("restart")? {
        // Merged over the group's policy by the submission conversion, as Nomad does.
        submission.restart_policy = Some(decode_restart(&task, restart_block)?);
    }
    if let Some(logs_block) = task.unique_block("logs")? {
        submission.log_config = Some(decode_logs(&task, logs_block)?);
    }
    if let Some(lifecycle_block) = task.unique_block("lifecycle")? {
        no_labels(&task, lifecycle_block)?;
        let lifecycle = task.child(
            lifecycle_block,
            format!("lifecycle of {}", task.what),
            join_path(&task.path, "Lifecycle"),
            LIFECYCLE_SCHEMA,
        )?;
        decoded.lifecycle = Some(TaskLifecycle {
            hook: lifecycle.string("hook", "Hook")?.unwrap_or_default(),
            sidecar: lifecycle.bool("sidecar", "Sidecar")?.unwrap_or(false),
        });
    }
    if let Some(payload_block) = task.unique_block("dispatch_payload")? {
        no_labels(&task, payload_block)?;
        let payload = task.child(
            payload_block,
            format!("dispatch_payload of {}", task.what),
            join_path(&task.path, "DispatchPayload"),
            DISPATCH_PAYLOAD_SCHEMA,
        )?;
        decoded.dispatch_payload = Some(DispatchPayloadConfig {
            file: payload.string("file", "File")?.unwrap_or_default(),
        });
    }
    for identity_block in task.blocks("identity") {
        let identity = decode_identity(&task, identity_block)?;
        // Nomad: the identity without a name is the task's default one; only one may exist.
        if !identity.name.is_empty() {
            decoded.identities.push(identity);
        } else if decoded.identity.is_some() {
            return Err(task.error(
                crate::jobspec::body::block_offset(identity_block),
                format!(
                    "{} has two identity blocks without a name; only the default identity may omit it",
                    task.what
                ),
            ));
        } else {
            decoded.identity = Some(identity);
        }
    }
    for (template_idx, template_block) in task.blocks("template").enumerate() {
        decoded
            .templates
            .push(decode_template(&task, template_block, template_idx)?);
    }
    for (artifact_idx, artifact_block) in task.blocks("artifact").enumerate() {
        decoded
            .artifacts
            .push(decode_artifact(&task, artifact_block, artifact_idx)?);
    }
    for (mount_idx, mount_block) in task.blocks("volume_mount").enumerate() {
        no_labels(&task, mount_block)?;
        let mount = task.child(
            mount_block,
            format!("volume_mount of {}", task.what),
            join_path(&task.path, &format!("VolumeMounts[{mount_idx}]")),
            VOLUME_MOUNT_SCHEMA,
        )?;
        decoded.volume_mounts.push(VolumeMount {
            volume: mount.string("volume", "Volume")?.unwrap_or_default(),
            destination: mount
                .string("destination", "Destination")?
                .unwrap_or_default(),
            read_only: mount.bool("read_only", "ReadOnly")?.unwrap_or(false),
            propagation_mode: mount
                .string("propagation_mode", "PropagationMode")?
                .unwrap_or_default(),
            selinux_label: mount
                .string("selinux_label", "SELinuxLabel")?
                .unwrap_or_default(),
        });
    }
    decoded.vault = optional_block(&task, "vault", "Vault", &specs::VAULT)?;
    decoded.consul = optional_block(&task, "consul", "Consul", &specs::CONSUL)?;
    decoded.csi_plugin_config =
        optional_block(&task, "csi_plugin", "CSIPluginConfig", &specs::CSI_PLUGIN)?;
    decoded.schedule = optional_block(&task, "schedule", "Schedule", &specs::SCHEDULE)?;
    decoded.secrets = labeled_blocks(&task, "secret", "Secrets", &specs::SECRET, "Name")?;
    decoded.actions = labeled_blocks(&task, "action", "Actions", &specs::ACTION, "Name")?;
    decoded.scaling_policies = decode_task_scaling(&task)?;
    decoded.name = task_name;
    submission.task = decoded;
    Ok(submission)
}

pub(super) fn decode_identity(
    task: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<WorkloadIdentity, JobspecError> {
    no_labels(task, block)?;
    let identity = task.child(
        block,
        format!("identity of {}", task.what),
        join_path(&task.path, "Identity"),
        IDENTITY_SCHEMA,
    )?;
    Ok(WorkloadIdentity {
        name: identity.string("name", "Name")?.unwrap_or_default(),
        audience: identity.strings("aud", "Audience")?.unwrap_or_default(),
        change_mode: identity
            .string("change_mode", "ChangeMode")?
            .unwrap_or_default(),
        change_signal: identity
            .string("change_signal", "ChangeSignal")?
            .unwrap_or_default(),
        env: identity.bool("env", "Env")?.unwrap_or(false),
        file: identity.bool("file", "File")?.unwrap_or(false),
        filepath: identity.string("filepath", "Filepath")?.unwrap_or_default(),
        service_name: identity
            .string("service_name", "ServiceName")?
            .unwrap_or_default(),
        ttl: identity.duration("ttl", "TTL")?.unwrap_or_default(),
        extra_claims: identity
            .strings("extra_claims", "ExtraClaims")?
            .unwrap_or_default(),
    })
}

fn decode_resources(
    task: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<ResourcesSubmission, JobspecError> {
    no_labels(task, block)?;
    let resources = task.child(
        block,
        format!("resources of {}", task.what),
        join_path(&task.path, "Resources"),
        RESOURCES_SCHEMA,
    )?;
    Ok(ResourcesSubmission {
        cpu: resources.int_in("cpu", "CPU")?,
        cores: resources.int_in("cores", "Cores")?,
        memory_mb: resources.int_in("memory", "MemoryMB")?,
        memory_max_mb: resources.int_in("memory_max", "MemoryMaxMB")?,
        disk_mb: resources.int_in("disk", "DiskMB")?,
        secrets_mb: resources.int_in("secrets", "SecretsMB")?,
        numa: optional_block(&resources, "numa", "NUMA", &specs::NUMA)?,
        devices: labeled_blocks(&resources, "device", "Devices", &specs::DEVICE, "Name")?,
        // Nomad's HCL1 form: `network { port "http" {} }` inside resources.
        networks: resources
            .blocks("network")
            .map(|block| decode_network(&resources, block))
            .collect::<Result<_, _>>()?,
    })
}

fn decode_template(
    task: &BlockReader<'_, '_>,
    block: &Block,
    template_idx: usize,
) -> Result<Template, JobspecError> {
    no_labels(task, block)?;
    let template = task.child(
        block,
        format!("template of {}", task.what),
        join_path(&task.path, &format!("Templates[{template_idx}]")),
        TEMPLATE_SCHEMA,
    )?;
    Ok(Template {
        source_path: template.string("source", "SourcePath")?.unwrap_or_default(),
        dest_path: template
            .string("destination", "DestPath")?
            .unwrap_or_default(),
        embedded_tmpl: template.string("data", "EmbeddedTmpl")?.unwrap_or_default(),
        change_mode: template
            .string("change_mode", "ChangeMode")?
            .unwrap_or_default(),
        change_signal: template
            .string("change_signal", "ChangeSignal")?
            .unwrap_or_default(),
        splay: template.duration("splay", "Splay")?.unwrap_or_default(),
        perms: template.string("perms", "Perms")?.unwrap_or_default(),
        left_delim: template
            .string("left_delimiter", "LeftDelim")?
            .unwrap_or_default(),
        right_delim: template
            .string("right_delimiter", "RightDelim")?
            .unwrap_or_default(),
        envvars: template.bool("env", "Envvars")?.unwrap_or(false),
        err_missing_key: template
            .bool("error_on_missing_key", "ErrMissingKey")?
            .unwrap_or(false),
        once: template.bool("once", "Once")?.unwrap_or(false),
        uid: template.int_in("uid", "Uid")?,
        gid: template.int_in("gid", "Gid")?,
        vault_grace: template.duration("vault_grace", "VaultGrace")?,
        wait: optional_block(&template, "wait", "Wait", &specs::TEMPLATE_WAIT)?,
        change_script: optional_block(
            &template,
            "change_script",
            "ChangeScript",
            &specs::CHANGE_SCRIPT,
        )?,
    })
}

fn decode_artifact(
    task: &BlockReader<'_, '_>,
    block: &Block,
    artifact_idx: usize,
) -> Result<TaskArtifact, JobspecError> {
    no_labels(task, block)?;
    let artifact = task.child(
        block,
        format!("artifact of {}", task.what),
        join_path(&task.path, &format!("Artifacts[{artifact_idx}]")),
        ARTIFACT_SCHEMA,
    )?;
    Ok(TaskArtifact {
        getter_source: artifact
            .string("source", "GetterSource")?
            .unwrap_or_default(),
        getter_options: artifact
            .string_map("options", "GetterOptions")?
            .unwrap_or_default(),
        getter_headers: artifact
            .string_map("headers", "GetterHeaders")?
            .unwrap_or_default(),
        getter_mode: artifact.string("mode", "GetterMode")?.unwrap_or_default(),
        relative_dest: artifact
            .string("destination", "RelativeDest")?
            .unwrap_or_default(),
        getter_insecure: artifact
            .bool("insecure", "GetterInsecure")?
            .unwrap_or(false),
        chown: artifact.bool("chown", "Chown")?.unwrap_or(false),
    })
}

/// A task's `scaling "cpu"` and `scaling "mem"` blocks, typed "vertical_cpu" and "vertical_mem"
/// (Nomad: jobspec2 `decodeTaskScalingPolicies`); any other label, a second block of a kind, or a
/// `type` that contradicts the label is an error.
fn decode_task_scaling(task: &BlockReader<'_, '_>) -> Result<Vec<ScalingPolicy>, JobspecError> {
    let mut policies: Vec<ScalingPolicy> = Vec::new();
    for block in task.blocks("scaling") {
        let label = single_label(task, block, "cpu|mem")?;
        let policy_type = match label.to_ascii_lowercase().as_str() {
            "cpu" => "vertical_cpu",
            "mem" => "vertical_mem",
            _ => {
                return Err(task.error(
                    crate::jobspec::body::block_offset(block),
                    format!(
                        "invalid scaling policy name {label:?} in {}: a task's scaling block is scaling \"cpu\" or scaling \"mem\"",
                        task.what
                    ),
                ));
            }
        };
        if policies
            .iter()
            .any(|policy| policy.policy_type == policy_type)
        {
            return Err(task.error(
                crate::jobspec::body::block_offset(block),
                format!(
                    "duplicate scaling {label:?} block in {}; only one is allowed",
                    task.what
                ),
            ));
        }
        let what = format!("scaling {label:?} of {}", task.what);
        let mut object = decode(
            task,
            block,
            &specs::SCALING,
            what.clone(),
            join_path(&task.path, &format!("ScalingPolicies[{label}]")),
        )?;
        match object.get("Type").and_then(serde_json::Value::as_str) {
            None => {
                object.insert("Type".to_owned(), serde_json::Value::from(policy_type));
            }
            Some(written) if written == policy_type => {}
            Some(written) => {
                return Err(task.error(
                    crate::jobspec::body::block_offset(block),
                    format!(
                        "invalid scaling policy type {written:?} in {what}: expected {policy_type:?}"
                    ),
                ));
            }
        }
        policies.push(from_json(
            task,
            block,
            serde_json::Value::Object(object),
            &what,
        )?);
    }
    Ok(policies)
}
