//! Garbage collection of the cluster state: what the leader reaps from the store once it is
//! finished and old enough — terminal evaluations and their allocations, dead jobs with all of
//! theirs, deployments nothing refers to any more, nodes long down.
//!
//! ```text
//!   leader, every job_gc_interval ─┐
//!   PUT /v1/system/gc (forced) ────┴─► collect(snapshot, now, thresholds) ─► Command::Reap ─► apply
//! ```
//!
//! `collect` only reads a snapshot; what it picks travels in one Raft command
//! ([`ReapRequest`]), so every server deletes the same objects. The client agents see their reaped allocations disappear from their
//! watch and destroy them (alloc dirs included).
//!
//! The rules, as Nomad's (`nomad/core_sched.go`): an evaluation goes once it is terminal, older
//! than `eval_gc_threshold` (`batch_eval_gc_threshold` for a batch job's), and every allocation
//! it made can go; the allocations that can go go even when their evaluation stays. An
//! allocation can go once it is terminal and old enough, unless its job still runs and it is a
//! failure the job's reschedule policy may still replace. A job goes once it is dead (a periodic
//! or parameterized parent only once stopped), untouched for `job_gc_threshold`, with every
//! evaluation and allocation. A deployment goes once it is terminal, no allocation refers to it
//! and the job version that superseded it is older than `deployment_gc_threshold`; a live job's
//! latest deployment (the one `job status` shows) stays. A node goes once it has
//! been down for `node_gc_threshold` with no allocation left running on it. A forced collection
//! (`caravan system gc`) uses thresholds of zero. Nomad measures age by Raft index through a
//! time table; caravan measures it by the objects' own modify times, written by the leader.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::raft::{Command, ReapJob, ReapRequest};
use super::state::StateSnapshot;
use super::{Server, ServerError};
use crate::structs::{
    AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, DeploymentId, EvalId, Evaluation,
    Job, JobStatus, JobType, NodeStatus,
};

/// How old finished objects must be before they are reaped (Nomad's server `*_gc_threshold`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GcConfig {
    /// How often the leader collects.
    pub interval: Duration,
    pub eval_threshold: Duration,
    pub batch_eval_threshold: Duration,
    pub job_threshold: Duration,
    pub deployment_threshold: Duration,
    pub node_threshold: Duration,
}

impl Default for GcConfig {
    /// Nomad's defaults.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5 * 60),
            eval_threshold: Duration::from_secs(60 * 60),
            batch_eval_threshold: Duration::from_secs(24 * 60 * 60),
            job_threshold: Duration::from_secs(4 * 60 * 60),
            deployment_threshold: Duration::from_secs(60 * 60),
            node_threshold: Duration::from_secs(24 * 60 * 60),
        }
    }
}

impl GcConfig {
    /// Everything finished goes, however recent (`system gc`).
    pub fn forced() -> Self {
        Self {
            interval: Duration::ZERO,
            eval_threshold: Duration::ZERO,
            batch_eval_threshold: Duration::ZERO,
            job_threshold: Duration::ZERO,
            deployment_threshold: Duration::ZERO,
            node_threshold: Duration::ZERO,
        }
    }
}

/// Stops the leader's periodic collection when dropped.
pub(super) struct CollectorGuard(tokio::task::JoinHandle<()>);

impl Drop for CollectorGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the leader's collection every `gc.interval`, for as long as the guard lives.
pub(super) fn start(server: Arc<Server>) -> CollectorGuard {
    CollectorGuard(tokio::spawn(async move {
        let config = server.options.gc.clone();
        let period = config.interval.max(Duration::from_secs(1));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(error) = collect_garbage(&server, &config).await {
                tracing::warn!(error = %error, "garbage collection failed");
            }
        }
    }))
}

/// Collects what `config` lets go now and removes it through Raft; answers what was picked.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn collect_garbage(
    server: &Arc<Server>,
    config: &GcConfig,
) -> Result<ReapRequest, ServerError> {
    let snapshot = server.store.snapshot();
    let config_for_collect = config.clone();
    // A large state takes a while to walk: off the runtime's workers.
    let request = tokio::task::spawn_blocking(move || {
        collect(&snapshot, super::now_unix_nanos(), &config_for_collect)
    })
    .await
    .map_err(|error| ServerError::Raft(format!("garbage collection: {error}")))?;
    if !request.is_empty() {
        tracing::info!(
            evals = request.eval_ids.len(),
            allocs = request.alloc_ids.len(),
            jobs = request.jobs.len(),
            deployments = request.deployment_ids.len(),
            nodes = request.node_ids.len(),
            "garbage collection"
        );
        server.write(Command::Reap(request.clone())).await?;
    }
    Ok(request)
}

/// Picks what `config` lets go at `now` (Unix nanoseconds).
pub fn collect(snapshot: &StateSnapshot, now: i64, config: &GcConfig) -> ReapRequest {
    let cutoff = |threshold: Duration| {
        now.saturating_sub(i64::try_from(threshold.as_nanos()).unwrap_or(i64::MAX))
    };
    let tables = snapshot.tables();
    let mut reaped = ReapRequest::default();
    let mut evals_gone: BTreeSet<EvalId> = BTreeSet::new();
    let mut allocs_gone: BTreeSet<AllocId> = BTreeSet::new();
    let mut jobs_gone: BTreeSet<ReapJob> = BTreeSet::new();

    // Dead jobs, with everything of theirs.
    let job_cutoff = cutoff(config.job_threshold);
    for job in snapshot.jobs() {
        let parent = job.periodic.is_some() || job.parameterized_job.is_some();
        if job.status != JobStatus::Dead || (parent && !job.stop) || job.submit_time > job_cutoff {
            continue;
        }
        let evals = snapshot.evals_by_job(&job.namespace, &job.id);
        let allocs: Vec<Arc<Allocation>> = tables
            .allocs_by_job
            .get(&(job.namespace.clone(), job.id.clone()))
            .map(|allocs| allocs.values().cloned().collect())
            .unwrap_or_default();
        let finished = evals
            .iter()
            .all(|eval| eval.status.is_terminal() && eval.modify_time <= job_cutoff)
            && allocs
                .iter()
                .all(|alloc| alloc_can_go(alloc, Some(job), job_cutoff));
        if !finished {
            continue;
        }
        evals_gone.extend(evals.iter().map(|eval| eval.id.clone()));
        allocs_gone.extend(allocs.iter().map(|alloc| alloc.id.clone()));
        reaped.deployment_ids.extend(
            snapshot
                .deployments_by_job(&job.namespace, &job.id)
                .iter()
                .map(|deployment| deployment.id.clone()),
        );
        jobs_gone.insert(ReapJob {
            namespace: job.namespace.clone(),
            job_id: job.id.clone(),
            modify_index: job.modify_index,
        });
    }

    // Terminal evaluations of the jobs that stay, and whichever of their allocations can go.
    for eval in tables.evals.values() {
        if evals_gone.contains(&eval.id) || !eval.status.is_terminal() {
            continue;
        }
        let job = snapshot.job(&eval.namespace, &eval.job_id);
        let batch = job
            .as_ref()
            .is_some_and(|job| job.job_type == JobType::Batch);
        let eval_cutoff = cutoff(if batch {
            config.batch_eval_threshold
        } else {
            config.eval_threshold
        });
        if eval.modify_time > eval_cutoff {
            continue;
        }
        // A live batch job keeps its history: its evaluations are how `job status` explains it.
        if let Some(job) = &job
            && batch
            && !job.stop
            && job.status != JobStatus::Dead
        {
            continue;
        }
        if let Some(allocs) = eval_allocs(snapshot, eval, job.as_deref(), eval_cutoff) {
            evals_gone.insert(eval.id.clone());
            allocs_gone.extend(allocs);
        } else {
            allocs_gone.extend(
                snapshot
                    .allocs_by_eval(eval)
                    .iter()
                    .filter(|alloc| alloc_can_go(alloc, job.as_deref(), eval_cutoff))
                    .map(|alloc| alloc.id.clone()),
            );
        }
    }

    // Deployments nothing refers to any more.
    let deployment_cutoff = cutoff(config.deployment_threshold);
    let referenced: BTreeSet<&DeploymentId> = tables
        .allocs
        .values()
        .filter(|alloc| !allocs_gone.contains(&alloc.id))
        .filter_map(|alloc| alloc.deployment_id.as_ref())
        .collect();
    for deployment in tables.deployments.values() {
        let job_goes = jobs_gone
            .iter()
            .any(|job| job.namespace == deployment.namespace && job.job_id == deployment.job_id);
        if job_goes || deployment.status.is_active() || referenced.contains(&deployment.id) {
            continue;
        }
        let Some(job) = snapshot.job(&deployment.namespace, &deployment.job_id) else {
            // Its job was purged: nothing shows it any more.
            reaped.deployment_ids.push(deployment.id.clone());
            continue;
        };
        // The job's latest deployment stays while the job does (`job status` shows it); an
        // older one is as old as the version that superseded it.
        let latest = snapshot
            .deployments_by_job(&deployment.namespace, &deployment.job_id)
            .iter()
            .max_by_key(|candidate| candidate.create_index)
            .is_some_and(|latest| latest.id == deployment.id);
        let superseded_at = snapshot
            .job_versions(&deployment.namespace, &deployment.job_id)
            .iter()
            .filter(|version| version.version > deployment.job_version)
            .min_by_key(|version| version.version)
            .map_or(job.submit_time, |version| version.submit_time);
        let forced = config.deployment_threshold.is_zero();
        if !forced && (latest || superseded_at > deployment_cutoff) {
            continue;
        }
        reaped.deployment_ids.push(deployment.id.clone());
    }

    // Nodes long down with nothing left running on them.
    let node_cutoff = cutoff(config.node_threshold);
    for node in tables.nodes.values() {
        let down_since = node.status_updated_at.saturating_mul(1_000_000_000);
        if node.status != NodeStatus::Down || down_since > node_cutoff {
            continue;
        }
        let running = tables
            .allocs_by_node
            .get(&node.id)
            .is_some_and(|allocs| allocs.values().any(|alloc| !alloc.is_terminal()));
        if !running {
            reaped.node_ids.push(node.id.clone());
        }
    }

    reaped.eval_ids = evals_gone.into_iter().collect();
    reaped.alloc_ids = allocs_gone.into_iter().collect();
    reaped.jobs = jobs_gone.into_iter().collect();
    reaped
}

/// The allocations of `eval` if every one of them can go (the evaluation can go too), else
/// `None`.
fn eval_allocs(
    snapshot: &StateSnapshot,
    eval: &Evaluation,
    job: Option<&Job>,
    cutoff: i64,
) -> Option<Vec<AllocId>> {
    snapshot
        .allocs_by_eval(eval)
        .iter()
        .map(|alloc| alloc_can_go(alloc, job, cutoff).then(|| alloc.id.clone()))
        .collect()
}

/// Whether an allocation is finished and old enough to be reaped (Nomad: `allocGCEligible`).
fn alloc_can_go(alloc: &Allocation, job: Option<&Job>, cutoff: i64) -> bool {
    if !alloc.is_terminal() || alloc.modify_time > cutoff {
        return false;
    }
    let Some(job) = job.filter(|job| !job.stop && job.status != JobStatus::Dead) else {
        return true;
    };
    if alloc.desired_status != AllocDesiredStatus::Run
        || alloc.client_status != AllocClientStatus::Failed
        || alloc.next_allocation.is_some()
    {
        return true;
    }
    // A failure of a live job: it goes only once its reschedule policy can no longer replace it.
    let Some(policy) = job
        .task_groups
        .iter()
        .find(|group| group.name == alloc.task_group)
        .and_then(|group| group.reschedule_policy.as_ref())
    else {
        return true;
    };
    if policy.unlimited {
        return false;
    }
    let attempts = usize::try_from(policy.attempts).unwrap_or(0);
    let interval = i64::try_from(policy.interval.as_nanos()).unwrap_or(i64::MAX);
    let recent = alloc.reschedule_tracker.as_ref().map_or(0, |tracker| {
        tracker
            .events
            .iter()
            .filter(|event| event.reschedule_time > alloc.modify_time.saturating_sub(interval))
            .count()
    });
    recent >= attempts
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::server::raft::{AllocClientUpdate, PlanApplyRequest};
    use crate::server::state::StateStore;
    use crate::structs::{
        AllocId, EvalId, EvalStatus, Evaluation, JobId, Node, NodeId, ReschedulePolicy, TaskGroup,
    };

    const HOUR: i64 = 3_600_000_000_000;

    /// A store written command by command, each at the next index.
    struct World {
        store: StateStore,
        index: u64,
    }

    impl World {
        fn new() -> Self {
            let mut world = Self {
                store: StateStore::new(),
                index: 0,
            };
            world.apply(Command::NodeRegister {
                node: Arc::new(Node {
                    id: NodeId::from("n1"),
                    status: NodeStatus::Ready,
                    ..Node::default()
                }),
                evals: Vec::new(),
            });
            world
        }

        fn apply(&mut self, command: Command) {
            self.index += 1;
            let (response, _) = self.store.apply(self.index, &command);
            assert_eq!(response.error, None, "{command:?}");
        }

        /// Registers `id` (submitted at `at`), with a terminal evaluation and one allocation
        /// placed at `at` that ends `status` at `at`.
        fn job(&mut self, id: &str, job_type: JobType, status: AllocClientStatus, at: i64) {
            let mut job = Job {
                id: JobId::from(id),
                job_type,
                submit_time: at,
                task_groups: vec![TaskGroup {
                    name: "g".to_owned(),
                    count: 1,
                    ..TaskGroup::default()
                }],
                ..Job::default()
            };
            job.canonicalize();
            let job = Arc::new(job);
            let eval = Evaluation {
                id: EvalId::from(format!("{id}-eval")),
                namespace: "default".to_owned(),
                job_id: job.id.clone(),
                status: EvalStatus::Complete,
                modify_time: at,
                ..Evaluation::default()
            };
            self.apply(Command::JobRegister {
                job: job.clone(),
                enforce_index: None,
                eval: Some(eval.clone()),
            });
            self.apply(Command::PlanApply(Arc::new(PlanApplyRequest {
                job: Some(job.clone()),
                eval_id: eval.id.clone(),
                placed: vec![Arc::new(Allocation {
                    id: AllocId::from(format!("{id}-alloc")),
                    namespace: "default".to_owned(),
                    eval_id: eval.id.clone(),
                    job_id: job.id.clone(),
                    node_id: NodeId::from("n1"),
                    task_group: "g".to_owned(),
                    ..Allocation::default()
                })],
                now: at,
                ..PlanApplyRequest::default()
            })));
            self.apply(Command::AllocClientUpdate {
                updates: vec![AllocClientUpdate {
                    id: AllocId::from(format!("{id}-alloc")),
                    client_status: status,
                    modify_time: at,
                    ..AllocClientUpdate::default()
                }],
                evals: Vec::new(),
            });
        }

        fn collect(&self, now: i64, config: &GcConfig) -> ReapRequest {
            collect(&self.store.snapshot(), now, config)
        }
    }

    fn ids<T: ToString>(items: &[T]) -> Vec<String> {
        items.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_dead_batch_job_goes_with_everything_once_past_its_threshold() {
        let mut world = World::new();
        world.job("done", JobType::Batch, AllocClientStatus::Complete, HOUR);
        let config = GcConfig::default();
        // Three hours later it is still within job_gc_threshold (4h): nothing goes, not even
        // the evaluation (a live batch job's history stays; a dead one goes only whole).
        assert_eq!(world.collect(4 * HOUR, &config), ReapRequest::default());
        let reaped = world.collect(6 * HOUR, &config);
        assert_eq!(ids(&reaped.eval_ids), ["done-eval"]);
        assert_eq!(ids(&reaped.alloc_ids), ["done-alloc"]);
        assert_eq!(
            reaped.jobs,
            [ReapJob {
                namespace: "default".to_owned(),
                job_id: JobId::from("done"),
                modify_index: world
                    .store
                    .snapshot()
                    .job("default", &JobId::from("done"))
                    .map_or(0, |job| job.modify_index),
            }]
        );
        // Applied, the job and all of it are gone; the node stays.
        world.apply(Command::Reap(reaped));
        let snapshot = world.store.snapshot();
        assert!(snapshot.job("default", &JobId::from("done")).is_none());
        assert!(snapshot.eval(&EvalId::from("done-eval")).is_none());
        assert!(snapshot.alloc(&AllocId::from("done-alloc")).is_none());
        assert!(snapshot.tables().nodes.contains_key(&NodeId::from("n1")));
        assert_eq!(world.collect(6 * HOUR, &config), ReapRequest::default());
    }

    #[test]
    fn a_running_job_keeps_its_live_allocation_and_a_forced_collection_takes_old_evaluations() {
        let mut world = World::new();
        world.job("web", JobType::Service, AllocClientStatus::Running, HOUR);
        // The evaluation is terminal but made a running allocation: both stay, forced or not.
        assert_eq!(
            world.collect(100 * HOUR, &GcConfig::forced()),
            ReapRequest::default()
        );
        // Once the allocation completes, the job is dead: a forced collection takes it whole.
        world.apply(Command::AllocClientUpdate {
            updates: vec![AllocClientUpdate {
                id: AllocId::from("web-alloc"),
                client_status: AllocClientStatus::Complete,
                modify_time: 2 * HOUR,
                ..AllocClientUpdate::default()
            }],
            evals: Vec::new(),
        });
        assert_eq!(
            world.collect(2 * HOUR + 1, &GcConfig::default()),
            ReapRequest::default(),
            "within the thresholds nothing goes"
        );
        let forced = world.collect(2 * HOUR + 1, &GcConfig::forced());
        assert_eq!(ids(&forced.eval_ids), ["web-eval"]);
        assert_eq!(ids(&forced.alloc_ids), ["web-alloc"]);
        assert_eq!(forced.jobs.len(), 1, "{forced:?}");
    }

    #[test]
    fn a_failure_the_reschedule_policy_may_still_replace_stays() {
        let mut job = Job {
            id: JobId::from("web"),
            task_groups: vec![TaskGroup {
                name: "g".to_owned(),
                reschedule_policy: Some(ReschedulePolicy {
                    attempts: 2,
                    interval: Duration::from_secs(3600),
                    ..ReschedulePolicy::default()
                }),
                ..TaskGroup::default()
            }],
            status: JobStatus::Running,
            ..Job::default()
        };
        job.canonicalize();
        let failed = Allocation {
            task_group: "g".to_owned(),
            client_status: AllocClientStatus::Failed,
            modify_time: HOUR,
            ..Allocation::default()
        };
        assert!(!alloc_can_go(&failed, Some(&job), 2 * HOUR));
        // Replaced, or its job stopped: it goes.
        let replaced = Allocation {
            next_allocation: Some(AllocId::from("next")),
            ..failed.clone()
        };
        assert!(alloc_can_go(&replaced, Some(&job), 2 * HOUR));
        let stopped = Job {
            stop: true,
            ..job.clone()
        };
        assert!(alloc_can_go(&failed, Some(&stopped), 2 * HOUR));
        // Too recent for the cutoff: it stays whatever the job.
        assert!(!alloc_can_go(&failed, None, HOUR - 1));
    }

    #[test]
    fn a_node_long_down_with_nothing_running_goes() {
        let mut world = World::new();
        world.apply(Command::NodeUpdateStatus {
            node_id: NodeId::from("n1"),
            status: NodeStatus::Down,
            updated_at: 3600,
            evals: Vec::new(),
        });
        let config = GcConfig::default();
        assert!(world.collect(20 * HOUR, &config).node_ids.is_empty());
        let reaped = world.collect(26 * HOUR, &config);
        assert_eq!(ids(&reaped.node_ids), ["n1"]);
        // A node that came back before the apply stays.
        world.apply(Command::NodeUpdateStatus {
            node_id: NodeId::from("n1"),
            status: NodeStatus::Ready,
            updated_at: 26 * 3600,
            evals: Vec::new(),
        });
        world.apply(Command::Reap(reaped));
        assert!(
            world
                .store
                .snapshot()
                .tables()
                .nodes
                .contains_key(&NodeId::from("n1"))
        );
    }

    #[test]
    fn a_job_registered_again_since_it_was_picked_stays() {
        let mut world = World::new();
        world.job("again", JobType::Batch, AllocClientStatus::Complete, HOUR);
        let reaped = world.collect(6 * HOUR, &GcConfig::default());
        assert_eq!(reaped.jobs.len(), 1);
        world.job(
            "again",
            JobType::Batch,
            AllocClientStatus::Running,
            6 * HOUR,
        );
        world.apply(Command::Reap(reaped));
        assert!(
            world
                .store
                .snapshot()
                .job("default", &JobId::from("again"))
                .is_some()
        );
    }
}
