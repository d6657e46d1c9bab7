//! The `group` block (Nomad: `api.TaskGroup`).

use hcl::edit::structure::Block;

use super::network::decode_network;
use super::placement::{decode_affinities, decode_constraints, decode_spreads};
use super::policy::{
    PartialMigrate, PartialReschedule, PartialRestart, decode_ephemeral_disk, decode_update,
};
use super::service::decode_services;
use super::task::{TaskContext, decode_task};
use crate::jobspec::body::{BlockReader, Schema, join_path, single_label};
use crate::jobspec::error::JobspecError;
use crate::structs::{JobType, ReschedulePolicy, RestartPolicy, TaskGroup, VolumeRequest};

const GROUP_SCHEMA: Schema = Schema {
    arguments: &[
        "count",
        "max_client_disconnect",
        "meta",
        "shutdown_delay",
        "stop_after_client_disconnect",
    ],
    blocks: &[
        "affinity",
        "constraint",
        "ephemeral_disk",
        "meta",
        "migrate",
        "network",
        "reschedule",
        "restart",
        "service",
        "spread",
        "task",
        "update",
        "volume",
    ],
};

const VOLUME_SCHEMA: Schema = Schema {
    arguments: &["read_only", "source", "type"],
    blocks: &[],
};

/// What a group inherits from its job.
pub(super) struct GroupContext<'a> {
    pub job_name: &'a str,
    pub job_type: JobType,
    pub reschedule: Option<&'a PartialReschedule>,
    pub migrate: Option<&'a PartialMigrate>,
}

pub(super) fn decode_group(
    job: &BlockReader<'_, '_>,
    block: &Block,
    context: &GroupContext<'_>,
) -> Result<TaskGroup, JobspecError> {
    let group_name = single_label(job, block, "name")?;
    let group = job.child(
        block,
        format!("group {group_name:?}"),
        join_path(&job.path, &format!("TaskGroups[{group_name}]")),
        GROUP_SCHEMA,
    )?;

    let restart_partial = match group.unique_block("restart")? {
        Some(block) => PartialRestart::decode(&group, block, "RestartPolicy")?,
        None => PartialRestart::default(),
    };
    let restart_policy = restart_partial.over(&RestartPolicy::default_for(context.job_type));

    let group_reschedule = match group.unique_block("reschedule")? {
        Some(block) => Some(PartialReschedule::decode(
            &group,
            block,
            "ReschedulePolicy",
        )?),
        None => None,
    };
    let reschedule_policy = match (context.reschedule, group_reschedule) {
        (None, None) => None,
        (job_level, group_level) => {
            let merged = job_level
                .cloned()
                .unwrap_or_default()
                .merged(&group_level.unwrap_or_default());
            let base = ReschedulePolicy::default_for(context.job_type).unwrap_or_default();
            Some(merged.over(&base))
        }
    };

    let group_migrate = match group.unique_block("migrate")? {
        Some(block) => Some(PartialMigrate::decode(&group, block, "Migrate")?),
        None => None,
    };
    let migrate = match (context.migrate, group_migrate) {
        (None, None) => None,
        (job_level, group_level) => Some(
            job_level
                .cloned()
                .unwrap_or_default()
                .merged(&group_level.unwrap_or_default())
                .into_strategy(),
        ),
    };

    let mut decoded = TaskGroup {
        count: group.int_in("count", "Count")?.unwrap_or(1),
        meta: group.string_map("meta", "Meta")?.unwrap_or_default(),
        shutdown_delay: group.duration("shutdown_delay", "ShutdownDelay")?,
        stop_after_client_disconnect: group
            .duration("stop_after_client_disconnect", "StopAfterClientDisconnect")?,
        max_client_disconnect: group.duration("max_client_disconnect", "MaxClientDisconnect")?,
        constraints: decode_constraints(&group)?,
        affinities: decode_affinities(&group)?,
        spreads: decode_spreads(&group)?,
        restart_policy: Some(restart_policy.clone()),
        reschedule_policy,
        migrate,
        services: decode_services(&group, &format!("{}-{group_name}", context.job_name))?,
        ..TaskGroup::default()
    };
    if let Some(block) = group.unique_block("ephemeral_disk")? {
        decoded.ephemeral_disk = Some(decode_ephemeral_disk(&group, block)?);
    }
    if let Some(block) = group.unique_block("update")? {
        decoded.update = Some(decode_update(&group, block)?);
    }
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
        group_restart: &restart_policy,
    };
    for task_block in group.blocks("task") {
        decoded
            .tasks
            .push(decode_task(&group, task_block, &task_context)?);
    }
    decoded.name = group_name;
    Ok(decoded)
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
        },
    ))
}
