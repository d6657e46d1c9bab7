//! The periodic dispatcher: the leader's loop that launches the children of periodic jobs on time.
//!
//! ```text
//! a periodic job (enabled, not stopped) ──► tracked with its next launch (cron specs, time zone)
//!   next launch reached ──► prohibit_overlap and a child not dead? skip : register the child
//!                           <job>/periodic-<unix seconds> (ParentID set, no periodic block)
//!                           with its evaluation, one Raft entry ──► next launch after it
//! ```
//!
//! The parent itself is never placed (registration makes no evaluation for it). A launch is
//! remembered by its child: the last launch of a job is its newest `periodic-` child (or its
//! submission), so a new leader launches at once a launch its predecessor missed, once, as
//! Nomad's `restorePeriodicDispatcher` does, and never launches the same time twice (a child's ID
//! is its launch time). `periodic force` launches one now, whatever the overlap.
//!
//! Started with leadership and stopped with it (`leader.rs`): dropping the
//! [`DispatcherGuard`] aborts the loop.
//!
//! Nomad: `nomad/periodic.go` (`PeriodicDispatch`, `shouldRun`, `deriveJob`, `derivedJobID`,
//! `ForceEval`), `nomad/leader.go` `restorePeriodicDispatcher`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::endpoints::new_eval;
use super::raft::Command;
use super::state::{JobKey, ObjectKind, StateSnapshot, job_key};
use super::{Server, ServerError};
use crate::api::types::job_launch::PeriodicForceResponse;
use crate::structs::{EvalTrigger, Job, JobId, JobStatus};

/// What a periodic child's ID has between its parent's ID and its launch time (Nomad:
/// `structs.PeriodicLaunchSuffix`).
pub const PERIODIC_LAUNCH_SUFFIX: &str = "/periodic-";

/// How often the dispatcher looks at the clock and, when jobs changed, at the jobs.
const TICK: Duration = Duration::from_millis(100);

/// Stops the dispatcher when dropped.
pub(super) struct DispatcherGuard(tokio::task::JoinHandle<()>);

impl Drop for DispatcherGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the dispatcher for as long as the guard lives.
pub(super) fn start(server: Arc<Server>) -> DispatcherGuard {
    DispatcherGuard(tokio::spawn(run(server)))
}

/// One periodic job the dispatcher follows.
struct Tracked {
    /// The version of the job the next launch was computed for.
    job_modify_index: u64,
    next: Option<DateTime<Utc>>,
}

async fn run(server: Arc<Server>) {
    let mut tracked: HashMap<JobKey, Tracked> = HashMap::new();
    let mut jobs_index = 0;
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let snapshot = server.store.snapshot();
        let now = Utc::now();
        let index = snapshot.tables().indexes.jobs;
        if index != jobs_index {
            jobs_index = index;
            track_jobs(&snapshot, &mut tracked, now);
        }
        for (key, entry) in &mut tracked {
            let Some(next) = entry.next.filter(|next| *next <= now) else {
                continue;
            };
            let Some(job) = snapshot.job(&key.0, &key.1) else {
                continue;
            };
            if let Err(error) = launch(&server, &snapshot, &job, next, false).await {
                tracing::warn!(job_id = %job.id, error = %error, "periodic launch failed");
            }
            entry.next = job.periodic.as_ref().and_then(|periodic| {
                // Behind the clock (a slow write, a missed tick): the next launch still to come.
                periodic.next_launch(next.max(Utc::now()))
            });
        }
    }
}

/// Follows the periodic jobs of `snapshot`: new ones and changed ones get their next launch,
/// stopped, disabled and removed ones are dropped.
fn track_jobs(
    snapshot: &StateSnapshot,
    tracked: &mut HashMap<JobKey, Tracked>,
    now: DateTime<Utc>,
) {
    let mut live = std::collections::HashSet::new();
    for job in snapshot.jobs() {
        let Some(periodic) = job.periodic.as_ref().filter(|periodic| periodic.enabled) else {
            continue;
        };
        if job.stop || !job.parent_id.is_empty() {
            continue;
        }
        let key = job_key(&job.namespace, &job.id);
        live.insert(key.clone());
        let next = match tracked.get(&key) {
            Some(entry) if entry.job_modify_index == job.job_modify_index => continue,
            // A new version of a job followed already: its schedule from now.
            Some(_) => periodic.next_launch(now),
            // First seen (registered, or this server just became leader): the launch after the
            // last one, which may already be due.
            None => periodic.next_launch(last_launch(snapshot, job)),
        };
        tracked.insert(
            key,
            Tracked {
                job_modify_index: job.job_modify_index,
                next,
            },
        );
    }
    tracked.retain(|key, _| live.contains(key));
}

/// When `job` was last launched: its newest periodic child, else its submission.
fn last_launch(snapshot: &StateSnapshot, job: &Job) -> DateTime<Utc> {
    let prefix = format!("{}{PERIODIC_LAUNCH_SUFFIX}", job.id);
    let newest_child = snapshot
        .job_children(&job.namespace, &job.id)
        .filter_map(|child| child.id.as_str().strip_prefix(&prefix)?.parse::<i64>().ok())
        .max()
        .and_then(|seconds| DateTime::from_timestamp(seconds, 0));
    let submitted = DateTime::from_timestamp_nanos(job.submit_time);
    newest_child.map_or(submitted, |child| child.max(submitted))
}

/// The child of a periodic job launched at `launch` (Nomad: `deriveJob`, `derivedJobID`).
pub fn derive_child(parent: &Job, launch: DateTime<Utc>) -> Job {
    let id = format!(
        "{}{PERIODIC_LAUNCH_SUFFIX}{}",
        parent.id,
        launch.timestamp()
    );
    let mut child = parent.clone();
    child.id = JobId::from(id.as_str());
    child.name = id;
    child.parent_id = parent.id.to_string();
    child.periodic = None;
    child.stop = false;
    child.status = JobStatus::Pending;
    child.status_description.clear();
    child.stable = false;
    child.version = 0;
    child.create_index = 0;
    child.modify_index = 0;
    child.job_modify_index = 0;
    child
}

/// True when a child of `parent` is still pending or running (Nomad: `RunningChildren`).
fn has_running_child(snapshot: &StateSnapshot, parent: &Job) -> bool {
    snapshot
        .job_children(&parent.namespace, &parent.id)
        .any(|child| child.status != JobStatus::Dead)
}

/// Registers the child of `parent` for `launch` with its evaluation; `None` when skipped (an
/// overlap the job prohibits, or a child for that time exists already).
async fn launch(
    server: &Server,
    snapshot: &StateSnapshot,
    parent: &Job,
    launch: DateTime<Utc>,
    force: bool,
) -> Result<Option<PeriodicForceResponse>, ServerError> {
    let prohibit_overlap = parent
        .periodic
        .as_ref()
        .is_some_and(|periodic| periodic.prohibit_overlap);
    if !force && prohibit_overlap && has_running_child(snapshot, parent) {
        tracing::info!(job_id = %parent.id, "skipping periodic launch: a child still runs and the job prohibits overlap");
        return Ok(None);
    }
    let mut child = derive_child(parent, launch);
    if snapshot.job(&child.namespace, &child.id).is_some() {
        return Ok(None);
    }
    let now = super::now_unix_nanos();
    child.submit_time = now;
    let eval = new_eval(&child, EvalTrigger::PERIODIC_JOB, now);
    let eval_id = eval.id.to_string();
    tracing::info!(job_id = %parent.id, child_id = %child.id, "launching periodic job");
    let response = server
        .write_checked(Command::JobRegister {
            job: Arc::new(child),
            enforce_index: Some(0),
            eval: Some(eval),
        })
        .await?;
    Ok(Some(PeriodicForceResponse {
        eval_id,
        eval_create_index: response.index,
        index: response.index,
    }))
}

impl Server {
    /// Launches a child of a periodic job now, whatever its overlap policy (Nomad:
    /// `Periodic.Force`).
    pub async fn periodic_force(
        &self,
        namespace: &str,
        job_id: &JobId,
    ) -> Result<PeriodicForceResponse, ServerError> {
        if !self.is_leader() {
            return Err(match self.leader_addr() {
                Some(leader) => ServerError::NotLeader(leader),
                None => ServerError::NoLeader,
            });
        }
        let snapshot = self.store.snapshot();
        let Some(job) = snapshot.job(namespace, job_id) else {
            return Err(ServerError::not_found(ObjectKind::Job, job_id));
        };
        // Nomad's messages.
        if job.stop {
            return Err(ServerError::Invalid(
                "can't force run stopped job".to_owned(),
            ));
        }
        if !job
            .periodic
            .as_ref()
            .is_some_and(|periodic| periodic.enabled)
        {
            return Err(ServerError::Invalid(
                "can't force run non-periodic job".to_owned(),
            ));
        }
        launch(self, &snapshot, &job, Utc::now(), true)
            .await?
            .ok_or_else(|| {
                ServerError::Invalid(format!(
                    "a child of job {job_id:?} was launched this second already"
                ))
            })
    }
}
