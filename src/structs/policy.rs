//! The policies of a group or task: restart, reschedule, update, migrate, disk and logs.
//!
//! These are the stored shapes, every field decided; Nomad's defaults and the completion of a
//! partially written block live in one place, `submission.rs`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;
use super::submission::defaults;
use super::validation::ValidationErrors;

/// What a task does when its restart attempts are used up within the interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartMode {
    /// Mark the task failed (and let the group be rescheduled).
    #[default]
    Fail,
    /// Wait until the interval has passed, then try again.
    Delay,
}

/// `restart` block: how the client restarts a failing task in place.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    pub attempts: i32,
    #[serde(with = "duration::nanos")]
    pub interval: Duration,
    #[serde(with = "duration::nanos")]
    pub delay: Duration,
    pub mode: RestartMode,
    pub render_templates: bool,
}

impl RestartPolicy {
    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if self.attempts < 0 {
            errors.push(
                &format!("{path}.Attempts"),
                "restart attempts can't be negative",
            );
        }
        // Checked: a job file may ask for more restarts than a `Duration` can hold.
        let total_delay = u32::try_from(self.attempts)
            .ok()
            .and_then(|attempts| self.delay.checked_mul(attempts));
        if self.attempts > 0 && total_delay.is_none_or(|total_delay| self.interval < total_delay) {
            errors.push(
                &format!("{path}.Interval"),
                format!(
                    "restart interval {} is less than attempts ({}) times delay ({})",
                    duration::format_go_duration(self.interval),
                    self.attempts,
                    duration::format_go_duration(self.delay)
                ),
            );
        }
    }
}

/// How the delay between reschedules grows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DelayFunction {
    #[default]
    Constant,
    Exponential,
    Fibonacci,
}

/// `reschedule` block: how the servers replace a failed allocation on another node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReschedulePolicy {
    pub attempts: i32,
    #[serde(with = "duration::nanos")]
    pub interval: Duration,
    #[serde(with = "duration::nanos")]
    pub delay: Duration,
    pub delay_function: DelayFunction,
    #[serde(with = "duration::nanos")]
    pub max_delay: Duration,
    pub unlimited: bool,
}

impl ReschedulePolicy {
    /// The delay before reschedule number `attempt_idx` (0-based), as Nomad's delay functions grow.
    pub fn delay_for_attempt(&self, attempt_idx: u32) -> Duration {
        let delay = match self.delay_function {
            DelayFunction::Constant => self.delay,
            DelayFunction::Exponential => self
                .delay
                .checked_mul(1u32.checked_shl(attempt_idx).unwrap_or(u32::MAX))
                .unwrap_or(Duration::MAX),
            DelayFunction::Fibonacci => {
                let (mut previous, mut current) = (self.delay, self.delay);
                for _ in 1..attempt_idx {
                    let next = previous.saturating_add(current);
                    previous = current;
                    current = next;
                }
                current
            }
        };
        if self.max_delay.is_zero() {
            delay
        } else {
            delay.min(self.max_delay)
        }
    }

    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if self.attempts < 0 {
            errors.push(
                &format!("{path}.Attempts"),
                "reschedule attempts can't be negative",
            );
        }
        if self.unlimited && self.attempts > 0 {
            errors.push(
                path,
                "reschedule attempts can't be set when unlimited is true",
            );
        }
        if self.delay_function != DelayFunction::Constant
            && !self.max_delay.is_zero()
            && self.max_delay < self.delay
        {
            errors.push(
                &format!("{path}.MaxDelay"),
                format!(
                    "max_delay {} is less than delay {}",
                    duration::format_go_duration(self.max_delay),
                    duration::format_go_duration(self.delay)
                ),
            );
        }
    }
}

/// `ephemeral_disk` block: the alloc dir's size and whether it follows the allocation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EphemeralDisk {
    pub sticky: bool,
    pub migrate: bool,
    #[serde(rename = "SizeMB")]
    pub size_mb: i32,
}

impl EphemeralDisk {
    pub const DEFAULT_SIZE_MB: i32 = 300;
    /// The smallest disk Nomad accepts.
    pub const MIN_SIZE_MB: i32 = 10;
}

/// `logs` block: rotation of a task's stdout and stderr files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfig {
    pub max_files: i32,
    #[serde(rename = "MaxFileSizeMB")]
    pub max_file_size_mb: i32,
    pub disabled: bool,
}

impl LogConfig {
    /// Completes a config that predates the submission conversion (zero meaning unset).
    pub fn fill_defaults(&mut self) {
        if self.max_files == 0 {
            self.max_files = defaults::LOG_MAX_FILES;
        }
        if self.max_file_size_mb == 0 {
            self.max_file_size_mb = defaults::LOG_MAX_FILE_SIZE_MB;
        }
    }

    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if self.max_files < 1 {
            errors.push(&format!("{path}.MaxFiles"), "max_files must be at least 1");
        }
        if self.max_file_size_mb < 1 {
            errors.push(
                &format!("{path}.MaxFileSizeMB"),
                "max_file_size must be at least 1",
            );
        }
    }
}

/// `migrate` block: how allocations leave a draining node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MigrateStrategy {
    pub max_parallel: i32,
    pub health_check: String,
    #[serde(with = "duration::nanos")]
    pub min_healthy_time: Duration,
    #[serde(with = "duration::nanos")]
    pub healthy_deadline: Duration,
}

/// `update` block: rolling updates, canaries and deployments.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateStrategy {
    #[serde(with = "duration::nanos")]
    pub stagger: Duration,
    pub max_parallel: i32,
    /// "checks", "task_states" or "manual".
    pub health_check: String,
    #[serde(with = "duration::nanos")]
    pub min_healthy_time: Duration,
    #[serde(with = "duration::nanos")]
    pub healthy_deadline: Duration,
    #[serde(with = "duration::nanos")]
    pub progress_deadline: Duration,
    pub canary: i32,
    pub auto_revert: bool,
    pub auto_promote: bool,
}

impl UpdateStrategy {
    pub(crate) fn validate(&self, path: &str, errors: &mut ValidationErrors) {
        if !matches!(
            self.health_check.as_str(),
            "checks" | "task_states" | "manual"
        ) {
            errors.push(
                &format!("{path}.HealthCheck"),
                format!(
                    "invalid health_check {:?}: expected \"checks\", \"task_states\" or \"manual\"",
                    self.health_check
                ),
            );
        }
        if self.max_parallel < 0 {
            errors.push(
                &format!("{path}.MaxParallel"),
                "max_parallel can't be negative",
            );
        }
        if self.canary < 0 {
            errors.push(&format!("{path}.Canary"), "canary count can't be negative");
        }
        if self.healthy_deadline <= self.min_healthy_time {
            errors.push(
                &format!("{path}.HealthyDeadline"),
                "healthy_deadline must be greater than min_healthy_time",
            );
        }
        if !self.progress_deadline.is_zero() && self.progress_deadline < self.healthy_deadline {
            errors.push(
                &format!("{path}.ProgressDeadline"),
                "progress_deadline must be zero or at least healthy_deadline",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::JobType;

    #[test]
    fn exponential_reschedule_delay_doubles_up_to_max() {
        let policy = crate::structs::submission::defaults::reschedule(JobType::Service)
            .expect("service has a policy");
        let delays: Vec<u64> = (0..9)
            .map(|n| policy.delay_for_attempt(n).as_secs())
            .collect();
        assert_eq!(delays, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[test]
    fn fibonacci_reschedule_delay() {
        let policy = ReschedulePolicy {
            delay: Duration::from_secs(5),
            delay_function: DelayFunction::Fibonacci,
            max_delay: Duration::from_secs(60),
            ..ReschedulePolicy::default()
        };
        let delays: Vec<u64> = (0..8)
            .map(|n| policy.delay_for_attempt(n).as_secs())
            .collect();
        assert_eq!(delays, [5, 5, 10, 15, 25, 40, 60, 60]);
    }

    #[test]
    fn restart_interval_must_hold_all_attempts() {
        let policy = RestartPolicy {
            attempts: 3,
            interval: Duration::from_secs(30),
            delay: Duration::from_secs(15),
            ..RestartPolicy::default()
        };
        let mut errors = ValidationErrors::default();
        policy.validate("RestartPolicy", &mut errors);
        assert_eq!(
            errors.to_string(),
            "1 error occurred:\n\t* RestartPolicy.Interval: restart interval 30s is less than attempts (3) times delay (15s)"
        );
    }
}
