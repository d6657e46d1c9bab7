//! `update`, `restart`, `reschedule`, `migrate`, `ephemeral_disk` and `logs` blocks.
//!
//! Each decodes into its submission type, which records exactly the fields the file wrote;
//! `JobSubmission::into_job` completes them with Nomad's defaults, as it does for API bodies.

use hcl::edit::structure::Block;

use crate::jobspec::body::{BlockReader, Schema, join_path, no_labels};
use crate::jobspec::error::JobspecError;
use crate::structs::{
    DelayFunction, EphemeralDiskSubmission, LogConfigSubmission, MigrateSubmission,
    RescheduleSubmission, RestartMode, RestartSubmission, UpdateSubmission,
};

const UPDATE_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "auto_promote",
        "auto_revert",
        "canary",
        "health_check",
        "healthy_deadline",
        "max_parallel",
        "min_healthy_time",
        "progress_deadline",
        "stagger",
    ],
    blocks: &[],
};

const RESTART_SCHEMA: Schema<'static> = Schema {
    arguments: &["attempts", "delay", "interval", "mode", "render_templates"],
    blocks: &[],
};

const RESCHEDULE_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "attempts",
        "delay",
        "delay_function",
        "interval",
        "max_delay",
        "unlimited",
    ],
    blocks: &[],
};

const MIGRATE_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "health_check",
        "healthy_deadline",
        "max_parallel",
        "min_healthy_time",
    ],
    blocks: &[],
};

const EPHEMERAL_DISK_SCHEMA: Schema<'static> = Schema {
    arguments: &["migrate", "size", "sticky"],
    blocks: &[],
};

const LOGS_SCHEMA: Schema<'static> = Schema {
    arguments: &["disabled", "enabled", "max_file_size", "max_files"],
    blocks: &[],
};

pub(super) fn decode_update(
    parent: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<UpdateSubmission, JobspecError> {
    no_labels(parent, block)?;
    let update = parent.child(
        block,
        format!("update of {}", parent.what),
        join_path(&parent.path, "Update"),
        UPDATE_SCHEMA,
    )?;
    Ok(UpdateSubmission {
        stagger: update.duration("stagger", "Stagger")?,
        max_parallel: update.int_in("max_parallel", "MaxParallel")?,
        health_check: update.string("health_check", "HealthCheck")?,
        min_healthy_time: update.duration("min_healthy_time", "MinHealthyTime")?,
        healthy_deadline: update.duration("healthy_deadline", "HealthyDeadline")?,
        progress_deadline: update.duration("progress_deadline", "ProgressDeadline")?,
        canary: update.int_in("canary", "Canary")?,
        auto_revert: update.bool("auto_revert", "AutoRevert")?,
        auto_promote: update.bool("auto_promote", "AutoPromote")?,
    })
}

pub(super) fn decode_restart(
    parent: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<RestartSubmission, JobspecError> {
    no_labels(parent, block)?;
    let restart = parent.child(
        block,
        format!("restart of {}", parent.what),
        join_path(&parent.path, "RestartPolicy"),
        RESTART_SCHEMA,
    )?;
    let mode = match restart.string("mode", "Mode")? {
        None => None,
        Some(text) => Some(match text.as_str() {
            "fail" => RestartMode::Fail,
            "delay" => RestartMode::Delay,
            _ => {
                return Err(invalid_choice(&restart, "mode", &text, "fail, delay"));
            }
        }),
    };
    Ok(RestartSubmission {
        attempts: restart.int_in("attempts", "Attempts")?,
        interval: restart.duration("interval", "Interval")?,
        delay: restart.duration("delay", "Delay")?,
        mode,
        render_templates: restart.bool("render_templates", "RenderTemplates")?,
    })
}

/// A `reschedule` block of a job (`field` "Reschedule") or group ("ReschedulePolicy").
pub(super) fn decode_reschedule(
    parent: &BlockReader<'_, '_>,
    block: &Block,
    field: &str,
) -> Result<RescheduleSubmission, JobspecError> {
    no_labels(parent, block)?;
    let reschedule = parent.child(
        block,
        format!("reschedule of {}", parent.what),
        join_path(&parent.path, field),
        RESCHEDULE_SCHEMA,
    )?;
    let delay_function = match reschedule.string("delay_function", "DelayFunction")? {
        None => None,
        Some(text) => Some(match text.as_str() {
            "constant" => DelayFunction::Constant,
            "exponential" => DelayFunction::Exponential,
            "fibonacci" => DelayFunction::Fibonacci,
            _ => {
                return Err(invalid_choice(
                    &reschedule,
                    "delay_function",
                    &text,
                    "constant, exponential, fibonacci",
                ));
            }
        }),
    };
    Ok(RescheduleSubmission {
        attempts: reschedule.int_in("attempts", "Attempts")?,
        interval: reschedule.duration("interval", "Interval")?,
        delay: reschedule.duration("delay", "Delay")?,
        delay_function,
        max_delay: reschedule.duration("max_delay", "MaxDelay")?,
        unlimited: reschedule.bool("unlimited", "Unlimited")?,
    })
}

pub(super) fn decode_migrate(
    parent: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<MigrateSubmission, JobspecError> {
    no_labels(parent, block)?;
    let migrate = parent.child(
        block,
        format!("migrate of {}", parent.what),
        join_path(&parent.path, "Migrate"),
        MIGRATE_SCHEMA,
    )?;
    Ok(MigrateSubmission {
        max_parallel: migrate.int_in("max_parallel", "MaxParallel")?,
        health_check: migrate.string("health_check", "HealthCheck")?,
        min_healthy_time: migrate.duration("min_healthy_time", "MinHealthyTime")?,
        healthy_deadline: migrate.duration("healthy_deadline", "HealthyDeadline")?,
    })
}

pub(super) fn decode_ephemeral_disk(
    group: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<EphemeralDiskSubmission, JobspecError> {
    no_labels(group, block)?;
    let disk = group.child(
        block,
        format!("ephemeral_disk of {}", group.what),
        join_path(&group.path, "EphemeralDisk"),
        EPHEMERAL_DISK_SCHEMA,
    )?;
    Ok(EphemeralDiskSubmission {
        sticky: disk.bool("sticky", "Sticky")?,
        migrate: disk.bool("migrate", "Migrate")?,
        size_mb: disk.int_in("size", "SizeMB")?,
    })
}

pub(super) fn decode_logs(
    task: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<LogConfigSubmission, JobspecError> {
    no_labels(task, block)?;
    let logs = task.child(
        block,
        format!("logs of {}", task.what),
        join_path(&task.path, "LogConfig"),
        LOGS_SCHEMA,
    )?;
    let disabled = match (
        logs.bool("disabled", "Disabled")?,
        logs.bool("enabled", "Disabled")?,
    ) {
        (Some(disabled), _) => Some(disabled),
        (None, enabled) => enabled.map(|enabled| !enabled),
    };
    Ok(LogConfigSubmission {
        max_files: logs.int_in("max_files", "MaxFiles")?,
        max_file_size_mb: logs.int_in("max_file_size", "MaxFileSizeMB")?,
        disabled,
    })
}

/// An error for an argument whose string value is not one of the allowed choices.
pub(super) fn invalid_choice(
    reader: &BlockReader<'_, '_>,
    name: &str,
    value: &str,
    choices: &str,
) -> JobspecError {
    let offset = reader
        .attribute(name)
        .map_or(reader.offset, crate::jobspec::body::value_offset);
    reader.error(
        offset,
        format!(
            "invalid value for \"{name}\" in {}: {value:?}; expected one of {choices}",
            reader.what
        ),
    )
}
