//! Allocation health for deployments and node drains: is this allocation healthy?
//!
//! The servers place an allocation in a deployment (`DeploymentID`); its client decides once
//! whether it is healthy and reports it with its status ([`HealthTracker`], Nomad's
//! `client/allochealth/tracker.go`):
//!
//! - healthy when every long-running task (main tasks and sidecars) has been running, without a
//!   restart, for the group's `update.min_healthy_time` — and, with `health_check = "checks"`,
//!   the allocation's checks have been passing all that time;
//! - unhealthy when such a task dies (failed or not) or at `update.healthy_deadline`;
//! - `health_check = "manual"` leaves the decision to the operator: nothing is reported.
//!
//! A service allocation outside any deployment is judged the same way by its group's `migrate`
//! block ([`HealthTracker::for_migration`]): the node drainer moves the next allocation only
//! once the replacements are healthy.
//!
//! **The checks seam.** [`AllocHealth`] is the one input from health checks: whoever runs the
//! allocation's checks (the task runner's check hooks) holds a clone, from
//! `AllocRunnerHandle::health`, and calls [`AllocHealth::set_checks`] with whether every check
//! of the allocation passes now. An allocation whose checks never registered is trivially
//! healthy as far as checks go.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::structs::{MigrateStrategy, TaskState, TaskStateValue, UpdateStrategy};

/// The checks' verdict for one allocation, shared with the check runners. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AllocHealth {
    checks: watch::Sender<Option<bool>>,
}

impl Default for AllocHealth {
    fn default() -> Self {
        Self {
            checks: watch::Sender::new(None),
        }
    }
}

impl AllocHealth {
    /// Records whether every check of the allocation passes now.
    pub fn set_checks(&self, passing: bool) {
        self.checks.send_if_modified(|current| {
            let changed = *current != Some(passing);
            *current = Some(passing);
            changed
        });
    }

    /// The allocation has no checks (any more): checks do not hold health back.
    pub fn clear_checks(&self) {
        self.checks
            .send_if_modified(|current| current.take().is_some());
    }

    /// True unless registered checks are not all passing.
    pub fn checks_passing(&self) -> bool {
        *self.checks.borrow() != Some(false)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<bool>> {
        self.checks.subscribe()
    }
}

/// What the tracker says after looking at the tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Decided, for good.
    Decided(bool),
    /// Undecided: look again by this time at the latest (or on the next change).
    WaitUntil(Instant),
    /// Undecided and nothing to wait for (manual health).
    Undecided,
}

/// Decides one allocation's health once. A pure state machine over the times it is given.
#[derive(Clone, Debug)]
pub struct HealthTracker {
    min_healthy_time: Duration,
    use_checks: bool,
    manual: bool,
    deadline: Instant,
    /// Since when every long-running task has been running (and checks passing), as observed.
    healthy_since: Option<Instant>,
    /// Each long-running task's start, to notice a restart.
    starts: BTreeMap<String, Option<String>>,
    decided: Option<bool>,
}

impl HealthTracker {
    pub fn new(strategy: &UpdateStrategy, started: Instant) -> Self {
        Self {
            min_healthy_time: strategy.min_healthy_time,
            use_checks: strategy.health_check == "checks",
            manual: strategy.health_check == "manual",
            deadline: started + strategy.healthy_deadline,
            healthy_since: None,
            starts: BTreeMap::new(),
            decided: None,
        }
    }

    /// The tracker of a service allocation outside a deployment, by its group's `migrate`
    /// block (Nomad: the health hook's non-deployment case).
    pub fn for_migration(strategy: &MigrateStrategy, started: Instant) -> Self {
        let update = UpdateStrategy {
            health_check: strategy.health_check.clone(),
            min_healthy_time: strategy.min_healthy_time,
            healthy_deadline: strategy.healthy_deadline,
            ..UpdateStrategy::default()
        };
        Self::new(&update, started)
    }

    pub fn decided(&self) -> Option<bool> {
        self.decided
    }

    /// Looks at the long-running tasks' states (`tasks`) and the checks at `now`.
    pub fn observe(
        &mut self,
        now: Instant,
        tasks: &BTreeMap<String, &TaskState>,
        checks_passing: bool,
    ) -> Verdict {
        if let Some(healthy) = self.decided {
            return Verdict::Decided(healthy);
        }
        if self.manual {
            return Verdict::Undecided;
        }
        if tasks
            .values()
            .any(|state| state.state == TaskStateValue::Dead)
        {
            return self.decide(false);
        }
        let restarted = tasks.iter().any(|(name, state)| {
            self.starts
                .get(name)
                .is_some_and(|seen| seen.is_some() && *seen != state.started_at)
        });
        self.starts = tasks
            .iter()
            .map(|(name, state)| (name.clone(), state.started_at.clone()))
            .collect();
        let all_running = !tasks.is_empty()
            && tasks
                .values()
                .all(|state| state.state == TaskStateValue::Running);
        let ok = all_running && (!self.use_checks || checks_passing);
        if !ok || restarted {
            self.healthy_since = ok.then_some(now);
        } else if self.healthy_since.is_none() {
            self.healthy_since = Some(now);
        }
        if let Some(since) = self.healthy_since
            && now.saturating_duration_since(since) >= self.min_healthy_time
        {
            return self.decide(true);
        }
        if now >= self.deadline {
            return self.decide(false);
        }
        let healthy_at = self
            .healthy_since
            .map(|since| since + self.min_healthy_time);
        Verdict::WaitUntil(healthy_at.map_or(self.deadline, |at| at.min(self.deadline)))
    }

    fn decide(&mut self, healthy: bool) -> Verdict {
        self.decided = Some(healthy);
        Verdict::Decided(healthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strategy(health_check: &str) -> UpdateStrategy {
        UpdateStrategy {
            max_parallel: 1,
            health_check: health_check.to_owned(),
            min_healthy_time: Duration::from_secs(10),
            healthy_deadline: Duration::from_secs(60),
            ..UpdateStrategy::default()
        }
    }

    fn state(value: TaskStateValue, started: &str) -> TaskState {
        TaskState {
            state: value,
            started_at: (!started.is_empty()).then(|| started.to_owned()),
            ..TaskState::default()
        }
    }

    fn tasks(states: &[TaskState]) -> BTreeMap<String, &TaskState> {
        states
            .iter()
            .enumerate()
            .map(|(idx, state)| (format!("t{idx}"), state))
            .collect()
    }

    #[test]
    fn healthy_after_running_for_min_healthy_time() {
        let start = Instant::now();
        let mut tracker = HealthTracker::new(&strategy("task_states"), start);
        let pending = [state(TaskStateValue::Pending, "")];
        assert_eq!(
            tracker.observe(start, &tasks(&pending), true),
            Verdict::WaitUntil(start + Duration::from_secs(60))
        );
        let running = [state(TaskStateValue::Running, "a")];
        let at = start + Duration::from_secs(2);
        assert_eq!(
            tracker.observe(at, &tasks(&running), true),
            Verdict::WaitUntil(at + Duration::from_secs(10))
        );
        assert_eq!(
            tracker.observe(at + Duration::from_secs(9), &tasks(&running), true),
            Verdict::WaitUntil(at + Duration::from_secs(10))
        );
        assert_eq!(
            tracker.observe(at + Duration::from_secs(10), &tasks(&running), true),
            Verdict::Decided(true)
        );
        // Decided once: a later death changes nothing.
        let dead = [state(TaskStateValue::Dead, "a")];
        assert_eq!(
            tracker.observe(at + Duration::from_secs(11), &tasks(&dead), true),
            Verdict::Decided(true)
        );
    }

    #[test]
    fn a_restart_or_failing_checks_reset_the_clock() {
        let start = Instant::now();
        let mut tracker = HealthTracker::new(&strategy("checks"), start);
        let first = [state(TaskStateValue::Running, "a")];
        tracker.observe(start, &tasks(&first), true);
        let restarted = [state(TaskStateValue::Running, "b")];
        let later = start + Duration::from_secs(5);
        tracker.observe(later, &tasks(&restarted), true);
        assert_eq!(
            tracker.observe(start + Duration::from_secs(10), &tasks(&restarted), true),
            Verdict::WaitUntil(start + Duration::from_secs(15)),
            "a restart starts the clock again"
        );
        let critical_at = start + Duration::from_secs(12);
        tracker.observe(critical_at, &tasks(&restarted), false);
        assert_eq!(
            tracker.observe(start + Duration::from_secs(15), &tasks(&restarted), true),
            Verdict::WaitUntil(start + Duration::from_secs(25)),
            "failing checks start it again"
        );
        // With task_states, checks do not matter.
        let mut states_only = HealthTracker::new(&strategy("task_states"), start);
        states_only.observe(start, &tasks(&first), false);
        assert_eq!(
            states_only.observe(start + Duration::from_secs(10), &tasks(&first), false),
            Verdict::Decided(true)
        );
    }

    #[test]
    fn unhealthy_on_a_dead_task_or_at_the_deadline() {
        let start = Instant::now();
        let mut tracker = HealthTracker::new(&strategy("task_states"), start);
        let dead = [
            state(TaskStateValue::Running, "a"),
            TaskState {
                failed: true,
                ..state(TaskStateValue::Dead, "a")
            },
        ];
        assert_eq!(
            tracker.observe(start, &tasks(&dead), true),
            Verdict::Decided(false)
        );
        let mut slow = HealthTracker::new(&strategy("task_states"), start);
        let pending = [state(TaskStateValue::Pending, "")];
        assert_eq!(
            slow.observe(start + Duration::from_secs(60), &tasks(&pending), true),
            Verdict::Decided(false)
        );
        let mut manual = HealthTracker::new(&strategy("manual"), start);
        assert_eq!(
            manual.observe(start + Duration::from_secs(61), &tasks(&pending), true),
            Verdict::Undecided
        );
    }

    #[test]
    fn the_checks_seam_defaults_to_passing() {
        let health = AllocHealth::default();
        assert!(health.checks_passing());
        health.set_checks(false);
        assert!(!health.checks_passing());
        health.set_checks(true);
        assert!(health.checks_passing());
        health.set_checks(false);
        health.clear_checks();
        assert!(health.checks_passing());
    }
}
