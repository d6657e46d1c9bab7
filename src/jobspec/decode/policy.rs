//! `update`, `restart`, `reschedule`, `migrate`, `ephemeral_disk` and `logs` blocks.
//!
//! `restart`, `reschedule` and `migrate` decode into partial policies that remember which fields
//! the file wrote, because Nomad completes them field by field: a job-level `reschedule` under a
//! group-level one under the job type's defaults, and a `restart` without `attempts` takes the job
//! type's attempts (which `RestartPolicy::fill_from` cannot know, `attempts = 0` being meaningful).

use std::time::Duration;

use hcl::edit::structure::Block;

use crate::jobspec::body::{BlockReader, Schema, join_path, no_labels};
use crate::jobspec::error::JobspecError;
use crate::structs::{
    DelayFunction, EphemeralDisk, LogConfig, MigrateStrategy, ReschedulePolicy, RestartMode,
    RestartPolicy, UpdateStrategy,
};

const UPDATE_SCHEMA: Schema = Schema {
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

const RESTART_SCHEMA: Schema = Schema {
    arguments: &["attempts", "delay", "interval", "mode", "render_templates"],
    blocks: &[],
};

const RESCHEDULE_SCHEMA: Schema = Schema {
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

const MIGRATE_SCHEMA: Schema = Schema {
    arguments: &[
        "health_check",
        "healthy_deadline",
        "max_parallel",
        "min_healthy_time",
    ],
    blocks: &[],
};

const EPHEMERAL_DISK_SCHEMA: Schema = Schema {
    arguments: &["migrate", "size", "sticky"],
    blocks: &[],
};

const LOGS_SCHEMA: Schema = Schema {
    arguments: &["disabled", "enabled", "max_file_size", "max_files"],
    blocks: &[],
};

pub(super) fn decode_update(
    parent: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<UpdateStrategy, JobspecError> {
    no_labels(parent, block)?;
    let update = parent.child(
        block,
        format!("update of {}", parent.what),
        join_path(&parent.path, "Update"),
        UPDATE_SCHEMA,
    )?;
    Ok(UpdateStrategy {
        stagger: update.duration("stagger", "Stagger")?.unwrap_or_default(),
        max_parallel: update.int_in("max_parallel", "MaxParallel")?.unwrap_or(0),
        health_check: update
            .string("health_check", "HealthCheck")?
            .unwrap_or_default(),
        min_healthy_time: update
            .duration("min_healthy_time", "MinHealthyTime")?
            .unwrap_or_default(),
        healthy_deadline: update
            .duration("healthy_deadline", "HealthyDeadline")?
            .unwrap_or_default(),
        progress_deadline: update
            .duration("progress_deadline", "ProgressDeadline")?
            .unwrap_or_default(),
        canary: update.int_in("canary", "Canary")?.unwrap_or(0),
        auto_revert: update.bool("auto_revert", "AutoRevert")?.unwrap_or(false),
        auto_promote: update.bool("auto_promote", "AutoPromote")?.unwrap_or(false),
    })
}

/// A `restart` block as written.
#[derive(Clone, Debug, Default)]
pub(super) struct PartialRestart {
    attempts: Option<i32>,
    interval: Option<Duration>,
    delay: Option<Duration>,
    mode: Option<RestartMode>,
    render_templates: Option<bool>,
}

impl PartialRestart {
    pub fn decode(
        parent: &BlockReader<'_, '_>,
        block: &Block,
        field: &str,
    ) -> Result<Self, JobspecError> {
        no_labels(parent, block)?;
        let restart = parent.child(
            block,
            format!("restart of {}", parent.what),
            join_path(&parent.path, field),
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
        Ok(Self {
            attempts: restart.int_in("attempts", "Attempts")?,
            interval: restart.duration("interval", "Interval")?,
            delay: restart.duration("delay", "Delay")?,
            mode,
            render_templates: restart.bool("render_templates", "RenderTemplates")?,
        })
    }

    /// The written fields over `base`.
    pub fn over(&self, base: &RestartPolicy) -> RestartPolicy {
        RestartPolicy {
            attempts: self.attempts.unwrap_or(base.attempts),
            interval: self.interval.unwrap_or(base.interval),
            delay: self.delay.unwrap_or(base.delay),
            mode: self.mode.unwrap_or(base.mode),
            render_templates: self.render_templates.unwrap_or(base.render_templates),
        }
    }
}

/// A `reschedule` block as written.
#[derive(Clone, Debug, Default)]
pub(super) struct PartialReschedule {
    attempts: Option<i32>,
    interval: Option<Duration>,
    delay: Option<Duration>,
    delay_function: Option<DelayFunction>,
    max_delay: Option<Duration>,
    unlimited: Option<bool>,
}

impl PartialReschedule {
    pub fn decode(
        parent: &BlockReader<'_, '_>,
        block: &Block,
        field: &str,
    ) -> Result<Self, JobspecError> {
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
        Ok(Self {
            attempts: reschedule.int_in("attempts", "Attempts")?,
            interval: reschedule.duration("interval", "Interval")?,
            delay: reschedule.duration("delay", "Delay")?,
            delay_function,
            max_delay: reschedule.duration("max_delay", "MaxDelay")?,
            unlimited: reschedule.bool("unlimited", "Unlimited")?,
        })
    }

    /// `self` overlaid by the fields `other` wrote.
    pub fn merged(&self, other: &Self) -> Self {
        Self {
            attempts: other.attempts.or(self.attempts),
            interval: other.interval.or(self.interval),
            delay: other.delay.or(self.delay),
            delay_function: other.delay_function.or(self.delay_function),
            max_delay: other.max_delay.or(self.max_delay),
            unlimited: other.unlimited.or(self.unlimited),
        }
    }

    /// The written fields over `base`. A block that limits `attempts` without saying `unlimited`
    /// means a limited policy, even over the service default of unlimited rescheduling.
    pub fn over(&self, base: &ReschedulePolicy) -> ReschedulePolicy {
        let limited_by_attempts = self.attempts.is_some_and(|attempts| attempts > 0);
        ReschedulePolicy {
            attempts: self.attempts.unwrap_or(base.attempts),
            interval: self.interval.unwrap_or(base.interval),
            delay: self.delay.unwrap_or(base.delay),
            delay_function: self.delay_function.unwrap_or(base.delay_function),
            max_delay: self.max_delay.unwrap_or(base.max_delay),
            unlimited: self
                .unlimited
                .unwrap_or(base.unlimited && !limited_by_attempts),
        }
    }
}

/// A `migrate` block as written.
#[derive(Clone, Debug, Default)]
pub(super) struct PartialMigrate {
    max_parallel: Option<i32>,
    health_check: Option<String>,
    min_healthy_time: Option<Duration>,
    healthy_deadline: Option<Duration>,
}

impl PartialMigrate {
    pub fn decode(
        parent: &BlockReader<'_, '_>,
        block: &Block,
        field: &str,
    ) -> Result<Self, JobspecError> {
        no_labels(parent, block)?;
        let migrate = parent.child(
            block,
            format!("migrate of {}", parent.what),
            join_path(&parent.path, field),
            MIGRATE_SCHEMA,
        )?;
        Ok(Self {
            max_parallel: migrate.int_in("max_parallel", "MaxParallel")?,
            health_check: migrate.string("health_check", "HealthCheck")?,
            min_healthy_time: migrate.duration("min_healthy_time", "MinHealthyTime")?,
            healthy_deadline: migrate.duration("healthy_deadline", "HealthyDeadline")?,
        })
    }

    pub fn merged(&self, other: &Self) -> Self {
        Self {
            max_parallel: other.max_parallel.or(self.max_parallel),
            health_check: other.health_check.clone().or(self.health_check.clone()),
            min_healthy_time: other.min_healthy_time.or(self.min_healthy_time),
            healthy_deadline: other.healthy_deadline.or(self.healthy_deadline),
        }
    }

    /// The written fields; `MigrateStrategy::fill_defaults` completes the rest.
    pub fn into_strategy(self) -> MigrateStrategy {
        MigrateStrategy {
            max_parallel: self.max_parallel.unwrap_or(0),
            health_check: self.health_check.unwrap_or_default(),
            min_healthy_time: self.min_healthy_time.unwrap_or_default(),
            healthy_deadline: self.healthy_deadline.unwrap_or_default(),
        }
    }
}

pub(super) fn decode_ephemeral_disk(
    group: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<EphemeralDisk, JobspecError> {
    no_labels(group, block)?;
    let disk = group.child(
        block,
        format!("ephemeral_disk of {}", group.what),
        join_path(&group.path, "EphemeralDisk"),
        EPHEMERAL_DISK_SCHEMA,
    )?;
    Ok(EphemeralDisk {
        sticky: disk.bool("sticky", "Sticky")?.unwrap_or(false),
        migrate: disk.bool("migrate", "Migrate")?.unwrap_or(false),
        size_mb: disk.int_in("size", "SizeMB")?.unwrap_or(0),
    })
}

pub(super) fn decode_logs(
    task: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<LogConfig, JobspecError> {
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
        (Some(disabled), _) => disabled,
        (None, Some(enabled)) => !enabled,
        (None, None) => false,
    };
    Ok(LogConfig {
        max_files: logs.int_in("max_files", "MaxFiles")?.unwrap_or(0),
        max_file_size_mb: logs.int_in("max_file_size", "MaxFileSizeMB")?.unwrap_or(0),
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
