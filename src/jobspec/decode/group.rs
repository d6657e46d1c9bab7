//! The `group` block (Nomad: `api.TaskGroup`).

use hcl::edit::structure::Block;

use super::network::decode_network;
use super::placement::{decode_affinities, decode_constraints, decode_spreads};
use super::policy::{
    decode_ephemeral_disk, decode_migrate, decode_reschedule, decode_restart, decode_update,
};
use super::service::decode_services;
use super::spec::{decode, from_json, labeled_blocks, optional_block};
use super::specs;
use super::task::{TaskContext, decode_task};
use crate::jobspec::body::no_labels;
use crate::jobspec::body::{BlockReader, Schema, join_path, single_label};
use crate::jobspec::error::JobspecError;
use crate::structs::{ScalingPolicy, Secret, TaskGroup, TaskGroupSubmission, Vault, VolumeRequest};

const GROUP_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "count",
        "max_client_disconnect",
        "max_run_duration",
        "meta",
        "prevent_reschedule_on_lost",
        "shutdown_delay",
        "stop_after_client_disconnect",
    ],
    blocks: &[
        "affinity",
        "constraint",
        "consul",
        "disconnect",
        "ephemeral_disk",
        "meta",
        "migrate",
        "network",
        "reschedule",
        "restart",
        "scaling",
        "secret",
        "service",
        "spread",
        "task",
        "update",
        "vault",
        "volume",
    ],
};

const VOLUME_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "access_mode",
        "attachment_mode",
        "per_alloc",
        "read_only",
        "source",
        "sticky",
        "type",
    ],
    blocks: &["mount_options"],
};

/// What a group's decoding needs from its job (inheriting its blocks is the conversion's work).
pub(super) struct GroupContext<'a> {
    pub job_name: &'a str,
}

pub(super) fn decode_group(
    job: &BlockReader<'_, '_>,
    block: &Block,
    context: &GroupContext<'_>,
) -> Result<TaskGroupSubmission, JobspecError> {
    let group_name = single_label(job, block, "name")?;
    let group = job.child(
        block,
        format!("group {group_name:?}"),
        join_path(&job.path, &format!("TaskGroups[{group_name}]")),
        GROUP_SCHEMA,
    )?;

    let mut submission = TaskGroupSubmission {
        count: group.int_in("count", "Count")?,
        group: TaskGroup {
            meta: group.string_map("meta", "Meta")?.unwrap_or_default(),
            shutdown_delay: group.duration("shutdown_delay", "ShutdownDelay")?,
            stop_after_client_disconnect: group
                .duration("stop_after_client_disconnect", "StopAfterClientDisconnect")?,
            max_client_disconnect: group
                .duration("max_client_disconnect", "MaxClientDisconnect")?,
            max_run_duration: group.duration("max_run_duration", "MaxRunDuration")?,
            prevent_reschedule_on_lost: group
                .bool("prevent_reschedule_on_lost", "PreventRescheduleOnLost")?
                .unwrap_or(false),
            disconnect: optional_block(&group, "disconnect", "Disconnect", &specs::DISCONNECT)?,
            consul: optional_block(&group, "consul", "Consul", &specs::CONSUL)?,
            scaling: decode_group_scaling(&group)?,
            constraints: decode_constraints(&group)?,
            affinities: decode_affinities(&group)?,
            spreads: decode_spreads(&group)?,
            services: decode_services(&group, &format!("{}-{group_name}", context.job_name))?,
            ..TaskGroup::default()
        },
        ..TaskGroupSubmission::default()
    };
    if let Some(block) = group.unique_block("restart")? {
        submission.restart_policy = Some(decode_restart(&group, block)?);
    }
    if let Some(block) = group.unique_block("reschedule")? {
        submission.reschedule_policy = Some(decode_reschedule(&group, block, "ReschedulePolicy")?);
    }
    if let Some(block) = group.unique_block("migrate")? {
        submission.migrate = Some(decode_migrate(&group, block)?);
    }
    if let Some(block) = group.unique_block("ephemeral_disk")? {
        submission.ephemeral_disk = Some(decode_ephemeral_disk(&group, block)?);
    }
    if let Some(block) = group.unique_block("update")? {
        submission.update = Some(decode_update(&group, block)?);
    }
    let decoded = &mut submission.group;
    for network_block in group.blocks("network") {
        decoded
            .networks
            .push(decode_network(&group, network_block)?);
    }
    for volume_block in group.blocks("volume") {
        let (name, volume) = decode_volume(&group, volume_block)?;
        decoded.volumes.insert(name, volume);
    }
    let task_context = TaskContext {
        job_name: context.job_name,
        group_name: &group_name,
    };
    let vault: Option<Vault> = optional_block(&group, "vault", "Vault", &specs::VAULT)?;
    let secrets: Vec<Secret> = labeled_blocks(&group, "secret", "Secrets", &specs::SECRET, "Name")?;
    for task_block in group.blocks("task") {
        let mut task = decode_task(&group, task_block, &task_context)?;
        // Nomad (jobspec2 `decodeTaskGroup`): a group's vault block is the default of its tasks,
        // its secrets are added to theirs.
        if task.task.vault.is_none() {
            task.task.vault.clone_from(&vault);
        }
        task.task.secrets.extend(secrets.iter().cloned());
        submission.tasks.push(task);
    }
    submission.group.name = group_name;
    Ok(submission)
}

fn decode_volume(
    group: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<(String, VolumeRequest), JobspecError> {
    let name = single_label(group, block, "name")?;
    let volume = group.child(
        block,
        format!("volume {name:?} of {}", group.what),
        join_path(&group.path, &format!("Volumes[{name}]")),
        VOLUME_SCHEMA,
    )?;
    Ok((
        name.clone(),
        VolumeRequest {
            name,
            volume_type: volume
                .string("type", "Type")?
                .unwrap_or_else(|| "host".to_owned()),
            source: volume.string("source", "Source")?.unwrap_or_default(),
            read_only: volume.bool("read_only", "ReadOnly")?.unwrap_or(false),
            sticky: volume.bool("sticky", "Sticky")?.unwrap_or(false),
            access_mode: volume
                .string("access_mode", "AccessMode")?
                .unwrap_or_default(),
            attachment_mode: volume
                .string("attachment_mode", "AttachmentMode")?
                .unwrap_or_default(),
            per_alloc: volume.bool("per_alloc", "PerAlloc")?.unwrap_or(false),
            mount_options: optional_block(
                &volume,
                "mount_options",
                "MountOptions",
                &specs::MOUNT_OPTIONS,
            )?,
        },
    ))
}

/// A group's `scaling` block; its `type` is "horizontal" unless it says otherwise (Nomad: jobspec2
/// `decodeTaskGroup`).
fn decode_group_scaling(
    group: &BlockReader<'_, '_>,
) -> Result<Option<ScalingPolicy>, JobspecError> {
    let Some(block) = group.unique_block("scaling")? else {
        return Ok(None);
    };
    no_labels(group, block)?;
    let what = format!("scaling of {}", group.what);
    let mut object = decode(
        group,
        block,
        &specs::SCALING,
        what.clone(),
        join_path(&group.path, "Scaling"),
    )?;
    object
        .entry("Type")
        .or_insert_with(|| serde_json::Value::from("horizontal"));
    from_json(group, block, serde_json::Value::Object(object), &what).map(Some)
}
