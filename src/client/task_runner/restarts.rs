//! The restart tracker: given how a task's last run ended, whether and when to run it again.
//!
//! A pure state machine with the clock passed in, so every branch is tested without sleeping
//! (Nomad: `client/allocrunner/taskrunner/restarts/restarts.go`).
//!
//! ```text
//!              exit 0, not restart-on-success ──────────────► Terminated (done, not failed)
//!   run ends ─ attempts = 0 ─────────────────────────────────► NotRestarting (failed)
//!              count ≤ attempts within the interval ──────────► Restarting after delay + jitter
//!              count > attempts, mode "fail" ─────────────────► NotRestarting (failed)
//!              count > attempts, mode "delay" ────────────────► Restarting when the interval ends
//!   start error, unrecoverable ───────────────────────────────► NotRestarting (failed)
//! ```
//!
//! **Invariant:** `next` never sleeps and never reads the clock; the caller passes `now` and a
//! jitter fraction in `[0, 1)`.

use std::time::{Duration, Instant};

use crate::structs::{JobType, RestartMode, RestartPolicy, TaskLifecycle};

/// Nomad's restart reasons, shown in the "Restarting" and "Not Restarting" events.
pub const REASON_WITHIN_POLICY: &str = "Restart within policy";
pub const REASON_NO_RESTARTS_ALLOWED: &str = "Policy allows no restarts";
pub const REASON_UNRECOVERABLE: &str = "Error was unrecoverable";
pub const REASON_DELAY: &str = "Exceeded allowed attempts, applying a delay";
pub const REASON_SUCCESS: &str = "Restart unnecessary as task terminated successfully";

/// How the task's last run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The task ran and exited; `successful` is exit code 0 without signal or error.
    Exited { successful: bool },
    /// The driver could not start it.
    StartFailed { recoverable: bool },
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestartDecision {
    /// Run again after `delay`.
    Restart { delay: Duration, reason: String },
    /// Done and successful: the task is dead, not failed.
    Terminated { reason: String },
    /// Done and failed.
    NotRestarting { reason: String },
}

/// Counts restarts within the policy's interval.
#[derive(Debug, Clone)]
pub struct RestartTracker {
    policy: RestartPolicy,
    /// Whether a successful exit is restarted too (service and system main tasks, sidecars).
    restart_on_success: bool,
    interval_start: Option<Instant>,
    count: i32,
}

impl RestartTracker {
    /// Nomad's `NewRestartTracker`: batch jobs and run-to-completion lifecycle tasks stop after
    /// a successful exit, the others run forever.
    pub fn new(
        policy: RestartPolicy,
        job_type: JobType,
        lifecycle: Option<&TaskLifecycle>,
    ) -> Self {
        let mut restart_on_success = !matches!(job_type, JobType::Batch | JobType::Sysbatch);
        if let Some(lifecycle) = lifecycle
            && (!lifecycle.sidecar || lifecycle.hook == TaskLifecycle::POSTSTOP)
        {
            restart_on_success = false;
        }
        RestartTracker {
            policy,
            restart_on_success,
            interval_start: None,
            count: 0,
        }
    }

    /// Decides after a run ended at `now`; `jitter` in `[0, 1)` adds up to a quarter of the delay.
    pub fn next(&mut self, outcome: RunOutcome, now: Instant, jitter: f64) -> RestartDecision {
        if self.policy.attempts == 0 {
            if matches!(outcome, RunOutcome::Exited { successful: true })
                && !self.restart_on_success
            {
                return RestartDecision::Terminated {
                    reason: REASON_SUCCESS.to_owned(),
                };
            }
            return RestartDecision::NotRestarting {
                reason: REASON_NO_RESTARTS_ALLOWED.to_owned(),
            };
        }
        let interval_start = *self.interval_start.get_or_insert(now);
        if now >= interval_start + self.policy.interval {
            self.count = 0;
            self.interval_start = Some(now);
        }
        match outcome {
            RunOutcome::StartFailed { recoverable: false } => RestartDecision::NotRestarting {
                reason: REASON_UNRECOVERABLE.to_owned(),
            },
            RunOutcome::Exited { successful: true } if !self.restart_on_success => {
                RestartDecision::Terminated {
                    reason: REASON_SUCCESS.to_owned(),
                }
            }
            RunOutcome::Exited { .. } | RunOutcome::StartFailed { .. } => {
                self.count += 1;
                if self.count > self.policy.attempts {
                    match self.policy.mode {
                        RestartMode::Fail => RestartDecision::NotRestarting {
                            reason: format!(
                                "Exceeded allowed attempts {} in interval {} and mode is \"fail\"",
                                self.policy.attempts,
                                crate::structs::duration::format_go_duration(self.policy.interval)
                            ),
                        },
                        RestartMode::Delay => {
                            let interval_end =
                                self.interval_start.unwrap_or(now) + self.policy.interval;
                            RestartDecision::Restart {
                                delay: interval_end.saturating_duration_since(now),
                                reason: REASON_DELAY.to_owned(),
                            }
                        }
                    }
                } else {
                    let jitter = self.policy.delay.mul_f64(jitter.clamp(0.0, 0.999) / 4.0);
                    RestartDecision::Restart {
                        delay: self.policy.delay + jitter,
                        reason: REASON_WITHIN_POLICY.to_owned(),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(attempts: i32, interval_s: u64, delay_s: u64, mode: RestartMode) -> RestartPolicy {
        RestartPolicy {
            attempts,
            interval: Duration::from_secs(interval_s),
            delay: Duration::from_secs(delay_s),
            mode,
            render_templates: false,
        }
    }

    const FAILED: RunOutcome = RunOutcome::Exited { successful: false };
    const SUCCEEDED: RunOutcome = RunOutcome::Exited { successful: true };

    fn restart(delay_s: u64) -> RestartDecision {
        RestartDecision::Restart {
            delay: Duration::from_secs(delay_s),
            reason: REASON_WITHIN_POLICY.to_owned(),
        }
    }

    #[test]
    fn failures_restart_until_attempts_are_used_then_fail() {
        let mut tracker =
            RestartTracker::new(policy(2, 60, 15, RestartMode::Fail), JobType::Service, None);
        let now = Instant::now();
        assert_eq!(tracker.next(FAILED, now, 0.0), restart(15));
        assert_eq!(
            tracker.next(FAILED, now + Duration::from_secs(16), 0.0),
            restart(15)
        );
        assert_eq!(
            tracker.next(FAILED, now + Duration::from_secs(32), 0.0),
            RestartDecision::NotRestarting {
                reason: "Exceeded allowed attempts 2 in interval 1m0s and mode is \"fail\""
                    .to_owned()
            }
        );
    }

    #[test]
    fn a_new_interval_resets_the_count() {
        let mut tracker =
            RestartTracker::new(policy(1, 60, 5, RestartMode::Fail), JobType::Service, None);
        let now = Instant::now();
        assert_eq!(tracker.next(FAILED, now, 0.0), restart(5));
        assert_eq!(
            tracker.next(FAILED, now + Duration::from_secs(61), 0.0),
            restart(5)
        );
    }

    #[test]
    fn delay_mode_waits_for_the_end_of_the_interval() {
        let mut tracker =
            RestartTracker::new(policy(1, 60, 5, RestartMode::Delay), JobType::Service, None);
        let now = Instant::now();
        assert_eq!(tracker.next(FAILED, now, 0.0), restart(5));
        assert_eq!(
            tracker.next(FAILED, now + Duration::from_secs(20), 0.0),
            RestartDecision::Restart {
                delay: Duration::from_secs(40),
                reason: REASON_DELAY.to_owned()
            }
        );
    }

    #[test]
    fn jitter_adds_at_most_a_quarter_of_the_delay() {
        let mut tracker = RestartTracker::new(
            policy(3, 600, 20, RestartMode::Fail),
            JobType::Service,
            None,
        );
        let RestartDecision::Restart { delay, .. } = tracker.next(FAILED, Instant::now(), 0.5)
        else {
            panic!("expected a restart");
        };
        assert_eq!(delay, Duration::from_millis(22_500));
    }

    #[test]
    fn batch_success_terminates_service_success_restarts() {
        let now = Instant::now();
        let mut batch =
            RestartTracker::new(policy(3, 600, 1, RestartMode::Fail), JobType::Batch, None);
        assert!(matches!(
            batch.next(SUCCEEDED, now, 0.0),
            RestartDecision::Terminated { .. }
        ));
        let mut service =
            RestartTracker::new(policy(3, 600, 1, RestartMode::Fail), JobType::Service, None);
        assert_eq!(service.next(SUCCEEDED, now, 0.0), restart(1));
    }

    #[test]
    fn prestart_tasks_run_to_completion_sidecars_do_not() {
        let now = Instant::now();
        let prestart = TaskLifecycle {
            hook: TaskLifecycle::PRESTART.to_owned(),
            sidecar: false,
        };
        let mut init = RestartTracker::new(
            policy(3, 600, 1, RestartMode::Fail),
            JobType::Service,
            Some(&prestart),
        );
        assert!(matches!(
            init.next(SUCCEEDED, now, 0.0),
            RestartDecision::Terminated { .. }
        ));
        let sidecar = TaskLifecycle {
            hook: TaskLifecycle::PRESTART.to_owned(),
            sidecar: true,
        };
        let mut proxy = RestartTracker::new(
            policy(3, 600, 1, RestartMode::Fail),
            JobType::Service,
            Some(&sidecar),
        );
        assert_eq!(proxy.next(SUCCEEDED, now, 0.0), restart(1));
    }

    #[test]
    fn zero_attempts_never_restart() {
        let now = Instant::now();
        let mut tracker =
            RestartTracker::new(policy(0, 600, 1, RestartMode::Fail), JobType::Batch, None);
        assert_eq!(
            tracker.next(FAILED, now, 0.0),
            RestartDecision::NotRestarting {
                reason: REASON_NO_RESTARTS_ALLOWED.to_owned()
            }
        );
        assert!(matches!(
            tracker.next(SUCCEEDED, now, 0.0),
            RestartDecision::Terminated { .. }
        ));
    }

    #[test]
    fn unrecoverable_start_errors_fail_at_once() {
        let mut tracker =
            RestartTracker::new(policy(3, 600, 1, RestartMode::Fail), JobType::Service, None);
        assert_eq!(
            tracker.next(
                RunOutcome::StartFailed { recoverable: false },
                Instant::now(),
                0.0
            ),
            RestartDecision::NotRestarting {
                reason: REASON_UNRECOVERABLE.to_owned()
            }
        );
    }
}
