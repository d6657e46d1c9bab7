//! The node drainer: the leader's loop that moves allocations off draining nodes, a few at a
//! time, and ends each drain when its node is empty.
//!
//! Draining a node only marks it (`DrainStrategy`, ineligible); the schedulers move nothing until
//! the drainer marks an allocation for migration (`DesiredTransition.Migrate`) and asks for an
//! evaluation of its job. Every tick the drainer looks at the draining nodes:
//!
//! ```text
//! service group ─── healthy allocations (anywhere, not leaving) − (count − migrate.max_parallel)
//!                   of its allocations on draining nodes are marked; a replacement counts once
//!                   its client reports it healthy (by the group's migrate block)
//! batch ─────────── left to finish until the node's deadline
//! force deadline ── every allocation left on the node is marked
//! system ────────── marked once nothing else runs on the node (kept with -ignore-system)
//! node empty ────── drain complete: DrainStrategy cleared, Drain = false, still ineligible
//! ```
//!
//! It keeps no state of its own: a new leader picks up every drain where the last one left it.
//! Started with leadership and stopped with it (`leader.rs`): dropping the [`DrainerGuard`]
//! aborts the loop.
//!
//! Nomad: `nomad/drainer/` (`watch_jobs.go` `handleTaskGroup`, `draining_node.go` `IsDone`,
//! `drainer.go` `handleDeadlinedNodes`, `NodesDrainComplete`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use super::Server;
use super::endpoints::new_eval;
use super::raft::Command;
use crate::scheduler::State;
use crate::structs::{
    AllocDeploymentStatus, AllocId, Allocation, DesiredTransition, DrainStrategy, EvalTrigger, Job,
    JobId, JobType, Node, NodeId, TaskGroup,
};

/// How often the draining nodes are looked at.
const TICK: Duration = Duration::from_millis(200);

/// Stops the drainer when dropped.
pub(super) struct DrainerGuard(tokio::task::JoinHandle<()>);

impl Drop for DrainerGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the drainer for as long as the guard lives.
pub(super) fn start(server: Arc<Server>) -> DrainerGuard {
    DrainerGuard(tokio::spawn(run(server)))
}

async fn run(server: Arc<Server>) {
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let snapshot = server.store.snapshot();
        let draining: Vec<Arc<Node>> = snapshot
            .tables()
            .nodes
            .values()
            .filter(|node| node.drain_strategy.is_some())
            .cloned()
            .collect();
        if draining.is_empty() {
            continue;
        }
        let plan = plan(&snapshot, &draining, super::now_unix_nanos());
        if let Err(error) = act(&server, plan).await {
            tracing::warn!(error = %error, "node drainer");
        }
    }
}

/// What one look at the draining nodes decided.
#[derive(Debug, Default, PartialEq)]
struct DrainPlan {
    /// Allocations to mark for migration now, by job.
    migrate: BTreeMap<(String, JobId), (Arc<Job>, BTreeSet<AllocId>)>,
    /// Nodes whose drain is complete.
    done: Vec<NodeId>,
}

impl DrainPlan {
    fn mark(&mut self, job: &Arc<Job>, alloc: &Allocation) {
        self.migrate
            .entry((job.namespace.clone(), job.id.clone()))
            .or_insert_with(|| (job.clone(), BTreeSet::new()))
            .1
            .insert(alloc.id.clone());
    }
}

fn marked(alloc: &Allocation) -> bool {
    alloc.desired_transition.migrate == Some(true)
}

fn is_system(job: Option<&Arc<Job>>) -> bool {
    job.is_some_and(|job| matches!(job.job_type, JobType::System | JobType::Sysbatch))
}

/// Decides, over one state, which allocations leave the draining nodes now and which drains
/// are done.
fn plan(state: &dyn State, draining: &[Arc<Node>], now: i64) -> DrainPlan {
    let strategies: HashMap<&NodeId, &DrainStrategy> = draining
        .iter()
        .filter_map(|node| Some((&node.id, node.drain_strategy.as_ref()?)))
        .collect();
    let forced = |node_id: &NodeId| {
        strategies
            .get(node_id)
            .is_some_and(|strategy| strategy.force_deadline > 0 && now >= strategy.force_deadline)
    };
    let mut plan = DrainPlan::default();
    // The jobs with allocations still on the draining nodes.
    let mut jobs: BTreeSet<(String, JobId)> = BTreeSet::new();
    for node in draining {
        for alloc in state.allocs_by_node(&node.id) {
            if !alloc.is_terminal() {
                jobs.insert((alloc.namespace.clone(), alloc.job_id.clone()));
            }
        }
    }
    for (namespace, job_id) in &jobs {
        // A job gone or stopped has its allocations stopped by its scheduler already.
        let Some(job) = state.job_by_id(namespace, job_id).filter(|job| !job.stop) else {
            continue;
        };
        if is_system(Some(&job)) {
            continue;
        }
        let allocs = state.allocs_by_job(namespace, job_id);
        let leaving = |alloc: &&Arc<Allocation>| {
            strategies.contains_key(&alloc.node_id) && !alloc.is_terminal() && !marked(alloc)
        };
        for alloc in allocs.iter().filter(leaving) {
            if forced(&alloc.node_id) {
                plan.mark(&job, alloc);
            }
        }
        if job.job_type != JobType::Service {
            // Batch allocations finish where they run, or leave at the deadline.
            continue;
        }
        for group in &job.task_groups {
            let group_allocs: Vec<&Arc<Allocation>> = allocs
                .iter()
                .filter(|alloc| alloc.task_group == group.name)
                .collect();
            for alloc in migrate_now(group, &group_allocs, &|node_id| {
                strategies.contains_key(node_id)
            }) {
                plan.mark(&job, alloc);
            }
        }
        // Allocations of groups the job no longer has are stopped by its scheduler.
    }
    for node in draining {
        let Some(strategy) = &node.drain_strategy else {
            continue;
        };
        let allocs = state.allocs_by_node(&node.id);
        let mut jobs: HashMap<(String, JobId), Option<Arc<Job>>> = HashMap::new();
        let mut job_of = |alloc: &Allocation| {
            jobs.entry((alloc.namespace.clone(), alloc.job_id.clone()))
                .or_insert_with(|| state.job_by_id(&alloc.namespace, &alloc.job_id))
                .clone()
        };
        let mut others_left = false;
        let mut system_left = Vec::new();
        for alloc in allocs.iter().filter(|alloc| !alloc.is_client_terminal()) {
            let job = job_of(alloc);
            if !is_system(job.as_ref()) {
                others_left = true;
            } else if !strategy.ignore_system_jobs {
                system_left.push((job, alloc));
            }
        }
        if others_left {
            continue;
        }
        // Only system allocations are left: they go last.
        for (job, alloc) in &system_left {
            if let Some(job) = job
                && !alloc.is_terminal()
                && !marked(alloc)
            {
                plan.mark(job, alloc);
            }
        }
        if system_left.is_empty() {
            plan.done.push(node.id.clone());
        }
    }
    plan
}

/// Nomad's `handleTaskGroup`: of a service group's allocations on draining nodes, those that may
/// be marked now, keeping at least `count - migrate.max_parallel` healthy.
fn migrate_now<'a>(
    group: &TaskGroup,
    allocs: &[&'a Arc<Allocation>],
    draining: &dyn Fn(&NodeId) -> bool,
) -> Vec<&'a Arc<Allocation>> {
    let max_parallel = group
        .migrate
        .as_ref()
        .map_or(1, |migrate| migrate.max_parallel);
    let mut healthy: i64 = 0;
    let mut drainable = Vec::new();
    for &alloc in allocs {
        if alloc.is_terminal() || marked(alloc) {
            continue;
        }
        if AllocDeploymentStatus::is_healthy(alloc.deployment_status.as_ref()) {
            healthy += 1;
        }
        if draining(&alloc.node_id) {
            drainable.push(alloc);
        }
    }
    let threshold = i64::from(group.count) - i64::from(max_parallel);
    let room = usize::try_from(healthy - threshold).unwrap_or(0);
    drainable.sort_by(|left, right| left.id.cmp(&right.id));
    drainable.truncate(room);
    drainable
}

async fn act(server: &Server, plan: DrainPlan) -> Result<(), super::endpoints::ServerError> {
    if !plan.migrate.is_empty() {
        let now = super::now_unix_nanos();
        let mut transitions = BTreeMap::new();
        let mut evals = Vec::new();
        for (job, allocs) in plan.migrate.values() {
            tracing::info!(job_id = %job.id, count = allocs.len(), "marking allocations to migrate off draining nodes");
            for alloc_id in allocs {
                transitions.insert(
                    alloc_id.clone(),
                    DesiredTransition {
                        migrate: Some(true),
                        ..DesiredTransition::default()
                    },
                );
            }
            evals.push(new_eval(job, EvalTrigger::NODE_DRAIN, now));
        }
        server
            .write(Command::AllocDesiredTransition { transitions, evals })
            .await?;
    }
    for node_id in plan.done {
        tracing::info!(node_id = %node_id, "node drain complete");
        server
            .write(Command::NodeUpdateDrain {
                node_id,
                drain_strategy: None,
                mark_eligible: false,
                evals: Vec::new(),
            })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::harness::MemState;
    use crate::structs::{AllocClientStatus, AllocDesiredStatus, MigrateStrategy};

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn node(id: &str, drain: Option<DrainStrategy>) -> Node {
        Node {
            id: id.into(),
            drain: drain.is_some(),
            drain_strategy: drain,
            ..Node::default()
        }
    }

    fn job(id: &str, job_type: JobType, count: i32, max_parallel: i32) -> Job {
        Job {
            id: id.into(),
            namespace: "default".to_owned(),
            job_type,
            task_groups: vec![TaskGroup {
                name: "g".to_owned(),
                count,
                migrate: (job_type == JobType::Service).then(|| MigrateStrategy {
                    max_parallel,
                    ..MigrateStrategy::default()
                }),
                ..TaskGroup::default()
            }],
            ..Job::default()
        }
    }

    fn alloc(id: &str, job: &str, node: &str, healthy: Option<bool>) -> Allocation {
        Allocation {
            id: id.into(),
            namespace: "default".to_owned(),
            job_id: job.into(),
            task_group: "g".to_owned(),
            node_id: node.into(),
            client_status: AllocClientStatus::Running,
            deployment_status: healthy.map(|healthy| AllocDeploymentStatus {
                healthy: Some(healthy),
                ..AllocDeploymentStatus::default()
            }),
            ..Allocation::default()
        }
    }

    fn migrating(mut alloc: Allocation) -> Allocation {
        alloc.desired_transition.migrate = Some(true);
        alloc
    }

    fn marked_ids(plan: &DrainPlan) -> Vec<String> {
        plan.migrate
            .values()
            .flat_map(|(_, ids)| ids.iter().map(ToString::to_string))
            .collect()
    }

    fn draining(strategy: DrainStrategy) -> (MemState, Vec<Arc<Node>>) {
        let mut state = MemState::default();
        let a = node("a", Some(strategy));
        state.upsert_node(a);
        state.upsert_node(node("b", None));
        let nodes = vec![state.node_by_id(&"a".into()).expect("node a")];
        (state, nodes)
    }

    #[test]
    fn a_service_group_moves_max_parallel_at_a_time_behind_healthy_replacements() {
        let (mut state, nodes) = draining(DrainStrategy::default());
        state.upsert_job(job("web", JobType::Service, 3, 1));
        state.upsert_allocs([
            alloc("a1", "web", "a", Some(true)),
            alloc("a2", "web", "a", Some(true)),
            alloc("a3", "web", "a", Some(true)),
        ]);
        let plan = plan(&state, &nodes, NOW);
        assert_eq!(marked_ids(&plan), ["a1"]);
        assert!(plan.done.is_empty());

        // a1 is marked: nothing more until its replacement is healthy.
        state.upsert_allocs([
            migrating(alloc("a1", "web", "a", Some(true))),
            alloc("b1", "web", "b", None),
        ]);
        assert!(super::plan(&state, &nodes, NOW).migrate.is_empty());
        // An unhealthy replacement does not count either.
        state.upsert_allocs([alloc("b1", "web", "b", Some(false))]);
        assert!(super::plan(&state, &nodes, NOW).migrate.is_empty());
        state.upsert_allocs([alloc("b1", "web", "b", Some(true))]);
        assert_eq!(marked_ids(&super::plan(&state, &nodes, NOW)), ["a2"]);
    }

    #[test]
    fn max_parallel_two_marks_two_and_the_deadline_marks_everything() {
        let (mut state, nodes) = draining(DrainStrategy {
            force_deadline: NOW - 1,
            ..DrainStrategy::default()
        });
        state.upsert_job(job("web", JobType::Service, 3, 2));
        state.upsert_job(job("batch", JobType::Batch, 1, 0));
        state.upsert_allocs([
            alloc("a1", "web", "a", Some(true)),
            alloc("a2", "web", "a", Some(true)),
            alloc("a3", "web", "a", None),
            alloc("a4", "batch", "a", None),
        ]);
        let forced = plan(&state, &nodes, NOW);
        assert_eq!(marked_ids(&forced), ["a4", "a1", "a2", "a3"]);
        let early = plan(&state, &nodes, NOW - 2);
        assert_eq!(marked_ids(&early), ["a1"], "healthy 2 - (3 - 2)");
    }

    #[test]
    fn batch_finishes_in_place_and_system_goes_last_then_the_drain_completes() {
        let (mut state, nodes) = draining(DrainStrategy::default());
        state.upsert_job(job("batch", JobType::Batch, 1, 0));
        state.upsert_job(job("sys", JobType::System, 1, 0));
        state.upsert_allocs([
            alloc("a1", "batch", "a", None),
            alloc("s1", "sys", "a", None),
        ]);
        let plan = plan(&state, &nodes, NOW);
        assert!(plan.migrate.is_empty() && plan.done.is_empty(), "{plan:?}");

        let mut finished = alloc("a1", "batch", "a", None);
        finished.client_status = AllocClientStatus::Complete;
        state.upsert_allocs([finished]);
        let plan = super::plan(&state, &nodes, NOW);
        assert_eq!(marked_ids(&plan), ["s1"]);
        assert!(plan.done.is_empty());

        let mut stopped = migrating(alloc("s1", "sys", "a", None));
        stopped.desired_status = AllocDesiredStatus::Stop;
        stopped.client_status = AllocClientStatus::Complete;
        state.upsert_allocs([stopped]);
        let plan = super::plan(&state, &nodes, NOW);
        assert!(plan.migrate.is_empty());
        assert_eq!(plan.done, [NodeId::from("a")]);
    }

    #[test]
    fn ignore_system_jobs_leaves_them_running_and_completes() {
        let (mut state, nodes) = draining(DrainStrategy {
            ignore_system_jobs: true,
            ..DrainStrategy::default()
        });
        state.upsert_job(job("sys", JobType::System, 1, 0));
        state.upsert_allocs([alloc("s1", "sys", "a", None)]);
        let plan = plan(&state, &nodes, NOW);
        assert!(plan.migrate.is_empty());
        assert_eq!(plan.done, [NodeId::from("a")]);
    }
}
