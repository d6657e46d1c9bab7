//! The server's write endpoints: each validates a request, makes the IDs, timestamps and
//! evaluations the change needs, and submits one [`Command`] through Raft.
//!
//! Nomad: `nomad/job_endpoint.go`, `node_endpoint.go`, `alloc_endpoint.go`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};

use super::Server;
use super::raft::{AllocClientUpdate, Command, CommandResponse, ServerId};
use super::state::{ApplyError, ObjectKind, StateSnapshot};
use crate::api::types::jobs::{JobDeregisterResponse, JobRegisterResponse};
use crate::api::types::node::{NodeServerInfo, NodeUpdateResponse};
use crate::scheduler::State as _;
use crate::structs::{
    AllocClientStatus, AllocId, DesiredTransition, DrainStrategy, EvalId, EvalStatus, EvalTrigger,
    Evaluation, Job, JobId, JobType, Node, NodeId, NodeStatus, SchedulingEligibility,
    ValidationErrors,
};

/// Why a server request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Invalid(String),
    #[error("Job validation failed: {0}")]
    Validation(#[from] ValidationErrors),
    /// The state refuses the request: checked before the write or by the apply itself.
    #[error(transparent)]
    State(#[from] ApplyError),
    /// Nomad's `structs.ErrNoLeader`, word for word: clients match on it.
    #[error("No cluster leader")]
    NoLeader,
    #[error("this server is not the leader (leader: {0})")]
    NotLeader(String),
    #[error("raft: {0}")]
    Raft(String),
    /// The scheduler failed to plan a job (`job plan`).
    #[error("{0}")]
    Scheduler(String),
    /// The caller may not do this (a node speaking for another node's ID, or reporting for
    /// another node's allocation).
    #[error("{0}")]
    Forbidden(String),
    /// A variable could not be sealed or opened (a root key missing from this server's
    /// keystore, the keystore unreadable).
    #[error(transparent)]
    Keyring(#[from] super::keyring::KeyringError),
}

impl ServerError {
    /// The request names an object the state does not hold.
    pub fn not_found(kind: ObjectKind, id: impl std::fmt::Display) -> Self {
        Self::State(ApplyError::not_found(kind, id))
    }
}

/// How long a write waits for a quorum to commit it (Nomad: `rpc_hold_timeout`, 5 s).
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the writes that create evaluations (drain, eligibility, alloc stop) did; the routes
/// answer with their own wire types.
#[derive(Clone, Debug, Default)]
pub struct EvalsResponse {
    pub eval_ids: Vec<String>,
    pub eval_id: String,
    pub eval_create_index: u64,
    pub index: u64,
}

/// A new pending evaluation for `job` (Nomad: the `structs.Evaluation` literals of the endpoints).
pub fn new_eval(job: &Job, triggered_by: &str, now: i64) -> Evaluation {
    Evaluation {
        id: EvalId::generate(),
        namespace: job.namespace.clone(),
        priority: job.priority,
        eval_type: job.job_type,
        triggered_by: triggered_by.to_owned(),
        job_id: job.id.clone(),
        job_modify_index: job.job_modify_index,
        status: EvalStatus::Pending,
        create_time: now,
        modify_time: now,
        ..Evaluation::default()
    }
}

impl Server {
    /// Submits a command through Raft and waits for it to be applied. A leader that cannot
    /// reach a quorum within [`WRITE_TIMEOUT`] answers [`ServerError::NoLeader`], never hangs;
    /// the entry may still commit if the quorum comes back, as with any timed-out write.
    pub async fn write(&self, command: Command) -> Result<CommandResponse, ServerError> {
        let name = command.name();
        let written = tokio::time::timeout(WRITE_TIMEOUT, self.raft.raft.client_write(command));
        let Ok(written) = written.await else {
            tracing::warn!(
                command = name,
                "raft write not committed in time: no quorum"
            );
            return Err(ServerError::NoLeader);
        };
        match written {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                match forward.leader_node {
                    Some(node) => Err(ServerError::NotLeader(node.addr)),
                    None => Err(ServerError::NoLeader),
                }
            }
            Err(error) => {
                tracing::error!(command = name, error = %error, "raft write failed");
                Err(ServerError::Raft(error.to_string()))
            }
        }
    }

    /// Like [`write`](Self::write), turning a command the state refused into an error.
    pub(super) async fn write_checked(
        &self,
        command: Command,
    ) -> Result<CommandResponse, ServerError> {
        let mut response = self.write(command).await?;
        match response.error.take() {
            Some(error) => Err(ServerError::State(error)),
            None => Ok(response),
        }
    }

    pub fn raft_id(&self) -> ServerId {
        self.raft.id
    }

    /// Checks a job as registration does, after putting it in this server's region (Nomad:
    /// `Job.Validate`): the job's own rules ([`Job::validate`], which also refuses the
    /// integrations caravan lacks) and the operator's limits. Registration and `/v1/validate/job`
    /// ask this.
    pub fn job_validate(&self, job: &mut Job) -> Result<(), ServerError> {
        if job.region.is_empty() || job.region == "global" {
            job.region = self.options.region.clone();
        }
        job.validate()?;
        super::node_pools::check_job_pool(&self.store.snapshot(), job)?;
        self.options.limits.check(job).map_err(ServerError::Invalid)
    }

    /// Registers a job (Nomad: `Job.Register`).
    pub async fn job_register(&self, job: Job) -> Result<JobRegisterResponse, ServerError> {
        self.job_register_enforced(job, None).await
    }

    /// Registers a job; with `enforce_index`, only if the stored job's modify index is that one
    /// (0: only if no such job exists), checked by the apply itself so that no write can slip in
    /// between check and register (Nomad: `Job.Register` with `EnforceIndex`).
    pub async fn job_register_enforced(
        &self,
        mut job: Job,
        enforce_index: Option<u64>,
    ) -> Result<JobRegisterResponse, ServerError> {
        self.check_job_registration_allowed()?;
        self.job_validate(&mut job)?;
        self.check_namespace_exists(&format!("job {:?}", job.id.to_string()), &job.namespace)?;
        let now = super::now_unix_nanos();
        job.submit_time = now;
        let eval = (!job.is_template()).then(|| new_eval(&job, EvalTrigger::JOB_REGISTER, now));
        let eval_id = eval
            .as_ref()
            .map(|eval| eval.id.to_string())
            .unwrap_or_default();
        let namespace = job.namespace.clone();
        let job_id = job.id.clone();
        let response = self
            .write_checked(Command::JobRegister {
                job: Arc::new(job),
                enforce_index,
                eval,
            })
            .await?;
        let job_modify_index = self
            .store
            .snapshot()
            .job(&namespace, &job_id)
            .map_or(response.index, |job| job.job_modify_index);
        Ok(JobRegisterResponse {
            eval_create_index: if eval_id.is_empty() {
                0
            } else {
                response.index
            },
            eval_id,
            job_modify_index,
            warnings: String::new(),
            index: response.index,
            last_contact: 0,
            known_leader: true,
        })
    }

    /// Stops a job, or with `purge` removes it (Nomad: `Job.Deregister`).
    pub async fn job_deregister(
        &self,
        namespace: &str,
        job_id: &JobId,
        purge: bool,
    ) -> Result<JobDeregisterResponse, ServerError> {
        let Some(job) = self.store.snapshot().job(namespace, job_id) else {
            return Err(ServerError::not_found(ObjectKind::Job, job_id));
        };
        let now = super::now_unix_nanos();
        let eval = (!job.is_template()).then(|| new_eval(&job, EvalTrigger::JOB_DEREGISTER, now));
        let eval_id = eval
            .as_ref()
            .map(|eval| eval.id.to_string())
            .unwrap_or_default();
        let keep = eval.as_ref().map(|eval| eval.id.clone());
        let response = self
            .write_checked(Command::JobDeregister {
                namespace: namespace.to_owned(),
                job_id: job_id.clone(),
                purge,
                eval,
            })
            .await?;
        self.cancel_job_evals(namespace, job_id, keep.as_ref())
            .await;
        Ok(JobDeregisterResponse {
            eval_create_index: if eval_id.is_empty() {
                0
            } else {
                response.index
            },
            eval_id,
            job_modify_index: response.index,
            index: response.index,
        })
    }

    /// Forces a scheduler run for a job (Nomad: `Job.Evaluate`). With `force_reschedule` its failed
    /// allocations are marked to be replaced now, whatever their reschedule policy says.
    pub async fn job_evaluate(
        &self,
        namespace: &str,
        job_id: &JobId,
        force_reschedule: bool,
    ) -> Result<EvalsResponse, ServerError> {
        let snapshot = self.store.snapshot();
        let Some(job) = snapshot.job(namespace, job_id) else {
            return Err(ServerError::not_found(ObjectKind::Job, job_id));
        };
        if job
            .periodic
            .as_ref()
            .is_some_and(|periodic| periodic.enabled)
        {
            return Err(ServerError::Invalid(
                "can't evaluate periodic job".to_owned(),
            ));
        }
        if job.parameterized_job.is_some() && !job.dispatched {
            return Err(ServerError::Invalid(
                "can't evaluate parameterized job".to_owned(),
            ));
        }
        let transitions = if force_reschedule {
            snapshot
                .allocs_by_job(namespace, job_id)
                .iter()
                .filter(|alloc| alloc.client_status == AllocClientStatus::Failed)
                .map(|alloc| {
                    let transition = DesiredTransition {
                        force_reschedule: Some(true),
                        ..DesiredTransition::default()
                    };
                    (alloc.id.clone(), transition)
                })
                .collect()
        } else {
            BTreeMap::new()
        };
        let eval = new_eval(&job, EvalTrigger::JOB_REGISTER, super::now_unix_nanos());
        self.transition_with_eval(transitions, eval).await
    }

    /// Writes desired transitions with the evaluation that acts on them.
    async fn transition_with_eval(
        &self,
        transitions: BTreeMap<AllocId, DesiredTransition>,
        eval: Evaluation,
    ) -> Result<EvalsResponse, ServerError> {
        let eval_id = eval.id.to_string();
        let response = self
            .write(Command::AllocDesiredTransition {
                transitions,
                evals: vec![eval],
            })
            .await?;
        Ok(EvalsResponse {
            eval_ids: vec![eval_id.clone()],
            eval_id,
            eval_create_index: response.index,
            index: response.index,
        })
    }

    /// Cancels the evaluations of a deregistered job still waiting in the broker or blocked,
    /// all but `keep` (the deregister's own): they would only place what was just stopped.
    async fn cancel_job_evals(&self, namespace: &str, job_id: &JobId, keep: Option<&EvalId>) {
        let mut cancelled = self.broker.cancel_job(namespace, job_id, keep);
        cancelled.extend(self.blocked.cancel_job(namespace, job_id));
        if cancelled.is_empty() {
            return;
        }
        let now = super::now_unix_nanos();
        let evals = cancelled
            .iter()
            .map(|eval| {
                let mut eval = (**eval).clone();
                eval.status = EvalStatus::Canceled;
                eval.status_description = "job deregistered".to_owned();
                eval.modify_time = now;
                eval
            })
            .collect();
        if let Err(error) = self.write(Command::EvalUpdate { evals }).await {
            tracing::warn!(error = %error, "marking evaluations of a deregistered job cancelled");
        }
    }

    /// Registers a client node and gives it a heartbeat TTL (Nomad: `Node.Register`).
    pub async fn node_register(&self, mut node: Node) -> Result<NodeUpdateResponse, ServerError> {
        if node.id.0.is_empty() {
            return Err(ServerError::Invalid("missing node ID".to_owned()));
        }
        node.validate_registration()
            .map_err(|errors| ServerError::Invalid(format!("invalid node: {errors}")))?;
        if node.datacenter.is_empty() {
            node.datacenter = "dc1".to_owned();
        }
        if node.node_pool.is_empty() {
            node.node_pool = "default".to_owned();
        }
        if node.name.is_empty() {
            node.name = node.id.to_string();
        }
        let now = super::now_unix_nanos();
        node.status_updated_at = now / 1_000_000_000;
        let snapshot = self.store.snapshot();
        let previous = snapshot.tables().nodes.get(&node.id).cloned();
        super::node_identity::check_registration(previous.as_deref(), &node)?;
        let becomes_ready = node.status == NodeStatus::Ready
            && previous
                .as_ref()
                .is_none_or(|previous| previous.status != NodeStatus::Ready);
        let evals = if becomes_ready {
            node_evals(&snapshot, &node.id, now)
        } else {
            Vec::new()
        };
        let eval_ids = evals.iter().map(|eval| eval.id.to_string()).collect();
        let node_id = node.id.clone();
        let has_evals = !evals.is_empty();
        let response = self
            .write_checked(Command::NodeRegister {
                node: Arc::new(node),
                evals,
            })
            .await?;
        Ok(self.node_response(&node_id, response.index, eval_ids, has_evals))
    }

    fn node_response(
        &self,
        node_id: &NodeId,
        index: u64,
        eval_ids: Vec<String>,
        has_evals: bool,
    ) -> NodeUpdateResponse {
        let ttl = self.heartbeats.reset(node_id);
        let snapshot = self.store.snapshot();
        NodeUpdateResponse {
            heartbeat_ttl: u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX),
            eval_ids,
            eval_create_index: if has_evals { index } else { 0 },
            node_modify_index: index,
            leader_rpc_addr: self.leader_addr().unwrap_or_default(),
            num_nodes: snapshot.tables().nodes.len() as u64,
            servers: self
                .peers()
                .into_iter()
                .map(|rpc_advertise_addr| NodeServerInfo {
                    rpc_advertise_addr,
                    datacenter: self.options.datacenter.clone(),
                })
                .collect(),
            index,
        }
    }

    /// A client's heartbeat, or any node status change (Nomad: `Node.UpdateStatus`). Heartbeats
    /// that change nothing do not go through Raft.
    pub async fn node_update_status(
        &self,
        node_id: &NodeId,
        status: NodeStatus,
    ) -> Result<NodeUpdateResponse, ServerError> {
        self.node_update_status_as(node_id, status, None).await
    }

    /// A node's own heartbeat or status update: `secret_id` must be the one the node registered
    /// with ([`super::node_identity`]).
    pub async fn node_heartbeat(
        &self,
        node_id: &NodeId,
        status: NodeStatus,
        secret_id: Option<&str>,
    ) -> Result<NodeUpdateResponse, ServerError> {
        self.node_update_status_as(node_id, status, Some(secret_id))
            .await
    }

    /// `as_node` is `Some(secret)` when the node itself calls, `None` for the servers' own
    /// changes (heartbeat expiry) and operators.
    async fn node_update_status_as(
        &self,
        node_id: &NodeId,
        status: NodeStatus,
        as_node: Option<Option<&str>>,
    ) -> Result<NodeUpdateResponse, ServerError> {
        let snapshot = self.store.snapshot();
        let Some(node) = snapshot.tables().nodes.get(node_id).cloned() else {
            return Err(ServerError::not_found(ObjectKind::Node, node_id));
        };
        if let Some(secret) = as_node {
            super::node_identity::check_secret(&node, secret)?;
        }
        if node.status == status {
            let index = snapshot.tables().indexes.nodes;
            if status == NodeStatus::Down {
                return Ok(NodeUpdateResponse {
                    index,
                    ..NodeUpdateResponse::default()
                });
            }
            return Ok(self.node_response(node_id, index, Vec::new(), false));
        }
        let now = super::now_unix_nanos();
        // Going down, disconnecting or coming back all change what can run where (Nomad:
        // `createNodeEvals` for transitions to down, disconnected and ready).
        let evals = if matches!(
            status,
            NodeStatus::Down | NodeStatus::Ready | NodeStatus::Disconnected
        ) {
            node_evals(&snapshot, node_id, now)
        } else {
            Vec::new()
        };
        let eval_ids = evals.iter().map(|eval| eval.id.to_string()).collect();
        let has_evals = !evals.is_empty();
        let response = self
            .write_checked(Command::NodeUpdateStatus {
                node_id: node_id.clone(),
                status,
                updated_at: now / 1_000_000_000,
                evals,
            })
            .await?;
        if status == NodeStatus::Down {
            return Ok(NodeUpdateResponse {
                eval_ids,
                eval_create_index: response.index,
                index: response.index,
                ..NodeUpdateResponse::default()
            });
        }
        Ok(self.node_response(node_id, response.index, eval_ids, has_evals))
    }

    /// Batched allocation updates from a client (Nomad: `Node.UpdateAlloc`): failed allocations of
    /// service and batch jobs get an evaluation, so they are rescheduled.
    /// The updates come from the wire: a node may update only its own allocations (by the
    /// servers' record of where each runs), and the modify time is stamped here, not by the
    /// client.
    pub async fn node_update_allocs(
        &self,
        node_id: &NodeId,
        wire_updates: Vec<crate::api::types::node::AllocUpdate>,
    ) -> Result<u64, ServerError> {
        let snapshot = self.store.snapshot();
        let now = super::now_unix_nanos();
        let mut updates = Vec::with_capacity(wire_updates.len());
        for update in wire_updates {
            if update.node_id != *node_id {
                return Err(ServerError::Forbidden(format!(
                    "node {node_id} cannot report for node {}",
                    update.node_id
                )));
            }
            match snapshot.alloc(&update.id) {
                Some(alloc) if alloc.node_id != *node_id => {
                    return Err(ServerError::Forbidden(format!(
                        "allocation {} does not run on node {node_id}",
                        update.id
                    )));
                }
                // An allocation garbage-collected meanwhile: the apply skips it.
                _ => {}
            }
            updates.push(AllocClientUpdate {
                id: update.id,
                client_status: update.client_status,
                client_description: update.client_description,
                task_states: update.task_states.into(),
                modify_time: now,
                deployment_healthy: update.deployment_status.and_then(|status| status.healthy),
            });
        }
        // A failed allocation is rescheduled; one that was `unknown` (its client disconnected)
        // and reports again may have a replacement to settle with (Nomad: `Node.UpdateAlloc`).
        let mut jobs_to_evaluate = BTreeMap::new();
        for update in &updates {
            let Some(alloc) = snapshot.alloc(&update.id) else {
                continue;
            };
            let trigger = if update.client_status == AllocClientStatus::Failed {
                EvalTrigger::RETRY_FAILED_ALLOC
            } else if alloc.client_status == AllocClientStatus::Unknown
                && update.client_status != AllocClientStatus::Unknown
            {
                EvalTrigger::RECONNECT
            } else {
                continue;
            };
            jobs_to_evaluate
                .entry((alloc.namespace.clone(), alloc.job_id.clone()))
                .or_insert(trigger);
        }
        let evals = jobs_to_evaluate
            .iter()
            .filter_map(|((namespace, job_id), trigger)| {
                snapshot.job(namespace, job_id).map(|job| (job, *trigger))
            })
            .filter(|(job, _)| !job.stop)
            .map(|(job, trigger)| new_eval(&job, trigger, now))
            .collect();
        let response = self
            .write(Command::AllocClientUpdate { updates, evals })
            .await?;
        Ok(response.index)
    }

    /// Sets a node's scheduling eligibility (Nomad: `Node.UpdateEligibility`).
    pub async fn node_update_eligibility(
        &self,
        node_id: &NodeId,
        eligibility: SchedulingEligibility,
    ) -> Result<EvalsResponse, ServerError> {
        let snapshot = self.store.snapshot();
        if snapshot.tables().nodes.get(node_id).is_none() {
            return Err(ServerError::not_found(ObjectKind::Node, node_id));
        }
        let evals = if eligibility == SchedulingEligibility::Eligible {
            node_evals(&snapshot, node_id, super::now_unix_nanos())
        } else {
            Vec::new()
        };
        let eval_ids: Vec<String> = evals.iter().map(|eval| eval.id.to_string()).collect();
        let response = self
            .write_checked(Command::NodeUpdateEligibility {
                node_id: node_id.clone(),
                eligibility,
                evals,
            })
            .await?;
        Ok(EvalsResponse {
            eval_create_index: if eval_ids.is_empty() {
                0
            } else {
                response.index
            },
            eval_ids,
            eval_id: String::new(),
            index: response.index,
        })
    }

    /// Starts or stops draining a node (Nomad: `Node.UpdateDrain`). Starting only marks the node:
    /// the leader's drainer (`drainer.rs`) moves its allocations, `migrate.max_parallel` at a
    /// time. Stopping evaluates the jobs on the node, as it may take work again.
    pub async fn node_update_drain(
        &self,
        node_id: &NodeId,
        drain_strategy: Option<DrainStrategy>,
        mark_eligible: bool,
    ) -> Result<EvalsResponse, ServerError> {
        let snapshot = self.store.snapshot();
        if snapshot.tables().nodes.get(node_id).is_none() {
            return Err(ServerError::not_found(ObjectKind::Node, node_id));
        }
        let evals = if drain_strategy.is_some() {
            Vec::new()
        } else {
            node_evals(&snapshot, node_id, super::now_unix_nanos())
        };
        let eval_ids: Vec<String> = evals.iter().map(|eval| eval.id.to_string()).collect();
        let response = self
            .write_checked(Command::NodeUpdateDrain {
                node_id: node_id.clone(),
                drain_strategy,
                mark_eligible,
                evals,
            })
            .await?;
        Ok(EvalsResponse {
            eval_create_index: if eval_ids.is_empty() {
                0
            } else {
                response.index
            },
            eval_ids,
            eval_id: String::new(),
            index: response.index,
        })
    }

    /// Stops one allocation; the scheduler replaces it (Nomad: `Alloc.Stop`).
    pub async fn alloc_stop(&self, alloc_id: &AllocId) -> Result<EvalsResponse, ServerError> {
        let snapshot = self.store.snapshot();
        let Some(alloc) = snapshot.alloc(alloc_id) else {
            return Err(ServerError::not_found(ObjectKind::Allocation, alloc_id));
        };
        let job = alloc
            .job
            .clone()
            .or_else(|| snapshot.job(&alloc.namespace, &alloc.job_id))
            .ok_or_else(|| ServerError::not_found(ObjectKind::Job, &alloc.job_id))?;
        let eval = new_eval(&job, EvalTrigger::ALLOC_STOP, super::now_unix_nanos());
        let migrate = DesiredTransition {
            migrate: Some(true),
            ..DesiredTransition::default()
        };
        self.transition_with_eval(BTreeMap::from([(alloc_id.clone(), migrate)]), eval)
            .await
    }

    /// Waits for an evaluation to reach a terminal status; for tests and the bench.
    pub async fn wait_for_eval(
        &self,
        eval_id: &EvalId,
        timeout: Duration,
    ) -> Option<Arc<Evaluation>> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut indexes = self.store.watch_indexes();
        loop {
            if let Some(eval) = self.store.snapshot().eval(eval_id)
                && eval.status.is_terminal()
            {
                return Some(eval);
            }
            if tokio::time::timeout_at(deadline, indexes.changed())
                .await
                .is_err()
            {
                return self.store.snapshot().eval(eval_id);
            }
        }
    }
}

/// Evaluations for every job with allocations on the node, and every system job (Nomad:
/// `node_endpoint.go` `createNodeEvals`).
pub fn node_evals(snapshot: &StateSnapshot, node_id: &NodeId, now: i64) -> Vec<Evaluation> {
    let tables = snapshot.tables();
    let mut jobs: BTreeMap<(String, JobId), Arc<Job>> = BTreeMap::new();
    if let Some(allocs) = tables.allocs_by_node.get(node_id) {
        for alloc in allocs.values() {
            let key = (alloc.namespace.clone(), alloc.job_id.clone());
            if jobs.contains_key(&key) {
                continue;
            }
            if let Some(job) = tables.jobs.get(&key) {
                jobs.insert(key, job.clone());
            }
        }
    }
    for (key, job) in tables.jobs.iter() {
        if matches!(job.job_type, JobType::System | JobType::Sysbatch) && !job.stop {
            jobs.entry(key.clone()).or_insert_with(|| job.clone());
        }
    }
    jobs.values()
        .filter(|job| !job.is_template())
        .map(|job| {
            let mut eval = new_eval(job, EvalTrigger::NODE_UPDATE, now);
            eval.node_id = Some(node_id.clone());
            eval.node_modify_index = tables
                .nodes
                .get(node_id)
                .map_or(0, |node| node.modify_index);
            eval
        })
        .collect()
}
