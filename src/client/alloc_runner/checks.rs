//! Health checks of native services, run by the client (Nomad: `client/serviceregistration/checks`
//! and `client/allocrunner/checks_hook.go`, with `check_restart` from
//! `client/serviceregistration/watcher.go`).
//!
//! A check is probed every `interval` under `timeout` ([`probe`]: `http` expects a 2xx, `tcp` a
//! connection, `script` exit code 0 through the task's driver `exec`, `grpc` a `SERVING` answer to
//! the health RPC, `grpc_health.rs`); each result goes through
//! the check's [`CheckTracker`], a pure state machine over the times it is given:
//!
//! ```text
//!            success_before_passing consecutive successes
//!   pending ───────────────────────────────────────────► success
//!      │    ◄─────────────────────────────────────────── │
//!      │      failures_before_critical consecutive failures
//!      └───────────────────────────────────────────────► failure
//!   check_restart: `limit` consecutive observations in failure, none counted before `grace`
//!   has passed since the task (re)started ─► restart the task, count again from zero
//! ```
//!
//! `initial_status` sets where a check starts ("passing" → success, "warning"/"critical" →
//! failure, else pending). Nomad-native checks have no warning state, so `ignore_warnings` changes
//! nothing here.

use std::time::Duration;

use tokio::time::Instant;

use crate::structs::{CheckStatus, ServiceCheck};

/// What `check_restart` asks of a check (`limit` 0: never restart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RestartRule {
    pub limit: u32,
    pub grace: Duration,
}

/// The thresholds of one check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Thresholds {
    pub initial: CheckStatus,
    pub success_before_passing: u32,
    pub failures_before_critical: u32,
    pub restart: Option<RestartRule>,
}

impl Thresholds {
    /// The thresholds of `check`, with the service's `check_restart` as the default.
    pub fn of(
        check: &ServiceCheck,
        service_restart: Option<&crate::structs::CheckRestart>,
    ) -> Self {
        let initial = match check.initial_status.as_str() {
            "passing" => CheckStatus::Success,
            "warning" | "critical" => CheckStatus::Failure,
            _ => CheckStatus::Pending,
        };
        let restart = check
            .check_restart
            .as_ref()
            .or(service_restart)
            .filter(|rule| rule.limit > 0)
            .map(|rule| RestartRule {
                limit: u32::try_from(rule.limit).unwrap_or(0),
                grace: rule.grace,
            });
        Thresholds {
            initial,
            success_before_passing: u32::try_from(check.success_before_passing).unwrap_or(0),
            failures_before_critical: u32::try_from(check.failures_before_critical).unwrap_or(0),
            restart,
        }
    }
}

/// What one observation leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    pub status: CheckStatus,
    /// `check_restart`'s limit was reached: restart the task.
    pub restart: bool,
}

/// One check's status from its results.
#[derive(Clone, Debug)]
pub struct CheckTracker {
    thresholds: Thresholds,
    status: CheckStatus,
    successes: u32,
    failures: u32,
    /// Consecutive observations in failure past the grace, towards `check_restart.limit`.
    unhealthy: u32,
    grace_until: Instant,
}

impl CheckTracker {
    /// A tracker for a task that (re)started at `started`.
    pub fn new(thresholds: Thresholds, started: Instant) -> Self {
        CheckTracker {
            status: thresholds.initial,
            successes: 0,
            failures: 0,
            unhealthy: 0,
            grace_until: started + thresholds.restart.map_or(Duration::ZERO, |rule| rule.grace),
            thresholds,
        }
    }

    pub fn status(&self) -> CheckStatus {
        self.status
    }

    /// The task (re)started at `now`: `check_restart` waits its grace again and counts anew.
    pub fn task_started(&mut self, now: Instant) {
        self.unhealthy = 0;
        self.grace_until = now
            + self
                .thresholds
                .restart
                .map_or(Duration::ZERO, |rule| rule.grace);
    }

    /// Records one probe result at `now`.
    pub fn observe(&mut self, now: Instant, success: bool) -> Observed {
        if success {
            self.successes = self.successes.saturating_add(1);
            self.failures = 0;
            if self.successes >= self.thresholds.success_before_passing.max(1) {
                self.status = CheckStatus::Success;
            }
        } else {
            self.failures = self.failures.saturating_add(1);
            self.successes = 0;
            if self.failures >= self.thresholds.failures_before_critical.max(1) {
                self.status = CheckStatus::Failure;
            }
        }
        let mut restart = false;
        if let Some(rule) = self.thresholds.restart {
            if self.status != CheckStatus::Failure || now < self.grace_until {
                self.unhealthy = 0;
            } else {
                self.unhealthy += 1;
                if self.unhealthy >= rule.limit {
                    restart = true;
                    self.task_started(now);
                }
            }
        }
        Observed {
            status: self.status,
            restart,
        }
    }
}

pub use crate::api::types::client::{CheckQueryResult, CheckResults};

/// One probe's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeResult {
    pub success: bool,
    pub status_code: u16,
    pub output: String,
}

impl ProbeResult {
    pub fn failure(output: impl Into<String>) -> Self {
        ProbeResult {
            success: false,
            status_code: 0,
            output: output.into(),
        }
    }
}

/// At most this much of a response or a script's output is kept.
const MAX_OUTPUT: usize = 4096;

fn clip(text: &str) -> String {
    let mut end = text.len().min(MAX_OUTPUT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// An `http` check: the method, headers and body of the check; success on a 2xx.
pub async fn probe_http(
    client: &reqwest::Client,
    url: &str,
    check: &ServiceCheck,
    timeout: Duration,
) -> ProbeResult {
    let method = if check.method.is_empty() {
        "GET"
    } else {
        check.method.as_str()
    };
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return ProbeResult::failure(format!("invalid HTTP method {:?}", check.method));
    };
    let mut request = client.request(method.clone(), url).timeout(timeout);
    for (name, values) in &check.header {
        for value in values {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    if !check.body.is_empty() {
        request = request.body(check.body.clone());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            ProbeResult {
                success: status.is_success(),
                status_code: status.as_u16(),
                output: clip(&format!("HTTP {method} {url}: {status} Output: {body}")),
            }
        }
        Err(err) => ProbeResult::failure(format!("HTTP {method} {url}: {err}")),
    }
}

/// A `tcp` check: success when a connection opens within `timeout`.
pub async fn probe_tcp(address: &str, timeout: Duration) -> ProbeResult {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => ProbeResult {
            success: true,
            status_code: 0,
            output: format!("TCP connect {address}: Success"),
        },
        Ok(Err(err)) => ProbeResult::failure(format!("dial tcp {address}: {err}")),
        Err(_) => ProbeResult::failure(format!("dial tcp {address}: i/o timeout")),
    }
}

/// A script check's result from its exit code and output (0 passes, as Nomad's).
pub fn script_result(exit_code: i32, stdout: &[u8], stderr: &[u8]) -> ProbeResult {
    let mut output = String::from_utf8_lossy(stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(stderr));
    ProbeResult {
        success: exit_code == 0,
        status_code: 0,
        output: clip(&output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds(sbp: u32, fbc: u32, restart: Option<(u32, u64)>) -> Thresholds {
        Thresholds {
            initial: CheckStatus::Pending,
            success_before_passing: sbp,
            failures_before_critical: fbc,
            restart: restart.map(|(limit, grace)| RestartRule {
                limit,
                grace: Duration::from_secs(grace),
            }),
        }
    }

    /// Feeds `results` one second apart from `start`; returns the status after each, and
    /// whether it asked for a restart.
    fn run(
        tracker: &mut CheckTracker,
        start: Instant,
        results: &[bool],
    ) -> Vec<(CheckStatus, bool)> {
        results
            .iter()
            .enumerate()
            .map(|(idx, success)| {
                let at = start + Duration::from_secs(idx as u64 + 1);
                let observed = tracker.observe(at, *success);
                (observed.status, observed.restart)
            })
            .collect()
    }

    use CheckStatus::{Failure as F, Pending as P, Success as S};

    #[test]
    fn one_result_decides_without_thresholds() {
        let start = Instant::now();
        let mut tracker = CheckTracker::new(thresholds(0, 0, None), start);
        assert_eq!(tracker.status(), P);
        let seen = run(&mut tracker, start, &[true, false, true]);
        assert_eq!(seen, vec![(S, false), (F, false), (S, false)]);
    }

    #[test]
    fn success_before_passing_needs_consecutive_successes() {
        let start = Instant::now();
        let mut tracker = CheckTracker::new(thresholds(3, 0, None), start);
        let seen = run(&mut tracker, start, &[true, true, false, true, true, true]);
        let statuses: Vec<_> = seen.iter().map(|(status, _)| *status).collect();
        assert_eq!(statuses, vec![P, P, F, F, F, S]);
    }

    #[test]
    fn failures_before_critical_tolerates_blips() {
        let start = Instant::now();
        let mut tracker = CheckTracker::new(thresholds(0, 2, None), start);
        let seen = run(&mut tracker, start, &[true, false, true, false, false]);
        let statuses: Vec<_> = seen.iter().map(|(status, _)| *status).collect();
        assert_eq!(statuses, vec![S, S, S, S, F]);
    }

    #[test]
    fn initial_status_sets_the_start() {
        let check = ServiceCheck {
            initial_status: "passing".to_owned(),
            ..ServiceCheck::default()
        };
        let tracker = CheckTracker::new(Thresholds::of(&check, None), Instant::now());
        assert_eq!(tracker.status(), S);
        let critical = ServiceCheck {
            initial_status: "critical".to_owned(),
            ..ServiceCheck::default()
        };
        let tracker = CheckTracker::new(Thresholds::of(&critical, None), Instant::now());
        assert_eq!(tracker.status(), F);
    }

    #[test]
    fn check_restart_after_limit_failures_past_grace() {
        let start = Instant::now();
        // Grace 2 s: the failure at 1 s does not count; 2, 3 and 4 s do.
        let mut tracker = CheckTracker::new(thresholds(0, 0, Some((3, 2))), start);
        let seen = run(&mut tracker, start, &[false, false, false, false]);
        assert_eq!(
            seen.iter().map(|(_, restart)| *restart).collect::<Vec<_>>(),
            vec![false, false, false, true]
        );
        // After the restart the grace runs again from the restart (4 s) to 6 s: 5 s is in it,
        // 6, 7 and 8 s count.
        let more: Vec<bool> = (5..=8)
            .map(|second| {
                tracker
                    .observe(start + Duration::from_secs(second), false)
                    .restart
            })
            .collect();
        assert_eq!(more, vec![false, false, false, true]);
    }

    #[test]
    fn a_success_resets_the_restart_count() {
        let start = Instant::now();
        let mut tracker = CheckTracker::new(thresholds(0, 0, Some((2, 0))), start);
        let seen = run(
            &mut tracker,
            start,
            &[false, true, false, true, false, false],
        );
        assert_eq!(
            seen.iter().map(|(_, restart)| *restart).collect::<Vec<_>>(),
            vec![false, false, false, false, false, true]
        );
    }

    #[test]
    fn check_restart_defaults_to_the_services() {
        let service_rule = crate::structs::CheckRestart {
            limit: 2,
            grace: Duration::from_secs(5),
            ignore_warnings: false,
        };
        let check = ServiceCheck::default();
        assert_eq!(
            Thresholds::of(&check, Some(&service_rule)).restart,
            Some(RestartRule {
                limit: 2,
                grace: Duration::from_secs(5)
            })
        );
        let own = ServiceCheck {
            check_restart: Some(crate::structs::CheckRestart {
                limit: 0,
                ..service_rule.clone()
            }),
            ..ServiceCheck::default()
        };
        assert_eq!(Thresholds::of(&own, Some(&service_rule)).restart, None);
    }

    #[test]
    fn script_results_pass_on_exit_zero_only() {
        assert!(script_result(0, b"ok", b"").success);
        let failed = script_result(2, b"out ", b"err");
        assert!(!failed.success);
        assert_eq!(failed.output, "out err");
    }

    #[tokio::test]
    async fn tcp_probes_a_listener_and_a_closed_port() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let address = listener.local_addr().expect("address").to_string();
        assert!(probe_tcp(&address, Duration::from_secs(2)).await.success);
        drop(listener);
        let closed = probe_tcp(&address, Duration::from_secs(2)).await;
        assert!(!closed.success, "{closed:?}");
    }
}
