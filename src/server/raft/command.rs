//! The closed set of writes: every change to the cluster state is one [`Command`] in the Raft log.
//!
//! Invariant: a command carries everything its apply needs — IDs, timestamps, follow-up
//! evaluations — made by the leader *before* the command enters Raft, so that applying it is a
//! pure function of the state and the command on every server and on every replay.
//!
//! Nomad: `nomad/structs/structs.go` `MessageType` and the request structs of `nomad/fsm.go`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::server::state::ApplyError;

use crate::structs::{
    AclPolicy, AclToken, AllocClientStatus, AllocId, Allocation, Deployment, DeploymentId,
    DeploymentStatusUpdate, DesiredTransition, DrainStrategy, EvalId, Evaluation, Job, JobId,
    Namespace, Node, NodeId, NodePool, NodeStatus, RootKeyMeta, ScalingEvent,
    SchedulingEligibility, ServiceRegistration, SortedVecMap, TaskState, VariableEncrypted,
};

/// One write to the state store.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Command {
    /// Registers a new version of a job, with the evaluation that schedules it.
    JobRegister {
        job: Arc<Job>,
        /// With `EnforceIndex`: the job modify index the writer expects the stored job to have
        /// (0: no such job); the apply refuses the register on any other.
        #[serde(default)]
        enforce_index: Option<u64>,
        eval: Option<Evaluation>,
    },
    /// Stops a job (marks it stopped) or, with `purge`, removes it and its versions.
    JobDeregister {
        namespace: String,
        job_id: JobId,
        purge: bool,
        eval: Option<Evaluation>,
    },
    /// Registers or re-registers a client node.
    NodeRegister {
        node: Arc<Node>,
        evals: Vec<Evaluation>,
    },
    NodeUpdateStatus {
        node_id: NodeId,
        status: NodeStatus,
        /// Unix seconds.
        updated_at: i64,
        evals: Vec<Evaluation>,
    },
    NodeUpdateEligibility {
        node_id: NodeId,
        eligibility: SchedulingEligibility,
        evals: Vec<Evaluation>,
    },
    NodeUpdateDrain {
        node_id: NodeId,
        drain_strategy: Option<DrainStrategy>,
        /// When the drain is removed, make the node eligible again.
        mark_eligible: bool,
        evals: Vec<Evaluation>,
    },
    /// Creates or updates evaluations (a scheduler's outcome, follow-ups, blocked evaluations).
    EvalUpdate { evals: Vec<Evaluation> },
    /// Garbage collection: what the leader's collection picked (`server::core_gc`).
    Reap(ReapRequest),
    /// A plan committed by the leader's plan applier.
    PlanApply(Arc<PlanApplyRequest>),
    /// Task states reported by clients, batched.
    AllocClientUpdate {
        updates: Vec<AllocClientUpdate>,
        evals: Vec<Evaluation>,
    },
    /// Operator requests about allocations (`alloc stop`, reschedule, migrate).
    AllocDesiredTransition {
        transitions: BTreeMap<AllocId, DesiredTransition>,
        evals: Vec<Evaluation>,
    },
    DeploymentUpdate {
        update: DeploymentStatusUpdate,
        eval: Option<Evaluation>,
    },
    /// Promotes a deployment's canaries (`groups` empty: every group).
    DeploymentPromote {
        deployment_id: DeploymentId,
        groups: Vec<String>,
        eval: Option<Evaluation>,
    },
    /// The operator sets allocations' health in a deployment with manual health checks.
    DeploymentAllocHealth {
        deployment_id: DeploymentId,
        healthy: Vec<AllocId>,
        unhealthy: Vec<AllocId>,
        /// Unix nanoseconds, the health's timestamp.
        now: i64,
        eval: Option<Evaluation>,
    },
    /// Upserts and deletes native service registrations (a client's sync, an operator's
    /// delete).
    ServiceRegistrations {
        upserts: Vec<Arc<ServiceRegistration>>,
        deletes: Vec<String>,
    },
    /// Scales a task group: the job with the group's new count (none for an event that changes
    /// no count), registered only if the stored job's modify index is still `enforce_index`, its
    /// evaluation, and the scaling event.
    JobScale {
        namespace: String,
        job_id: JobId,
        group: String,
        job: Option<Arc<Job>>,
        enforce_index: Option<u64>,
        eval: Option<Evaluation>,
        event: ScalingEvent,
    },
    /// Replaces the whole state with an operator's snapshot (`operator snapshot restore`).
    SnapshotRestore {
        state: Arc<crate::server::state::PersistedState>,
    },
    /// Replaces the scheduler configuration; with `cas`, only if the stored one's modify index
    /// is `cas` (`operator scheduler set-config -check-index`, `?cas=`).
    SchedulerSetConfig {
        config: crate::structs::SchedulerConfiguration,
        cas: Option<u64>,
    },
    /// The first management token; refused once the ACL system is bootstrapped.
    AclBootstrap { token: Arc<AclToken> },
    /// Creates or replaces ACL policies (their rules checked before Raft).
    AclPolicyUpsert { policies: Vec<Arc<AclPolicy>> },
    /// Deletes ACL policies by name; refused, changing nothing, if one does not exist.
    AclPolicyDelete { names: Vec<String> },
    /// Creates or updates ACL tokens (IDs, secrets and times made before Raft).
    AclTokenUpsert { tokens: Vec<Arc<AclToken>> },
    /// Deletes ACL tokens by accessor ID; refused, changing nothing, if one does not exist.
    AclTokenDelete { accessor_ids: Vec<String> },
    /// Creates or updates namespaces (checked before Raft).
    NamespaceUpsert { namespaces: Vec<Arc<Namespace>> },
    /// Deletes namespaces; refused, changing nothing, for `default`, a namespace that does not
    /// exist, or one that still holds a non-terminal job or a variable.
    NamespaceDelete { names: Vec<String> },
    /// Writes a variable, its items already sealed; with `cas`, only if the stored one's modify
    /// index is `cas` (0: only if there is none).
    VariableUpsert {
        variable: Arc<VariableEncrypted>,
        cas: Option<u64>,
    },
    /// Deletes a variable; with `cas`, only if the stored one's modify index is `cas`.
    VariableDelete {
        namespace: String,
        path: String,
        cas: Option<u64>,
    },
    /// Records a root key's ID (the key stays in the servers' keystores).
    RootKeyUpsert { key: Arc<RootKeyMeta> },
    /// Creates or replaces node pools (checked before Raft); the built-in ones are refused.
    NodePoolUpsert { pools: Vec<Arc<NodePool>> },
    /// Deletes node pools; refused, changing nothing, if one is built in, missing, or still
    /// holds nodes or live jobs.
    NodePoolDelete { names: Vec<String> },
    /// Marks a job version stable or not.
    JobStability {
        namespace: String,
        job_id: JobId,
        version: u64,
        stable: bool,
    },
}

impl Command {
    /// The command's name, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::JobRegister { .. } => "job_register",
            Self::JobDeregister { .. } => "job_deregister",
            Self::NodeRegister { .. } => "node_register",
            Self::NodeUpdateStatus { .. } => "node_update_status",
            Self::NodeUpdateEligibility { .. } => "node_update_eligibility",
            Self::NodeUpdateDrain { .. } => "node_update_drain",
            Self::EvalUpdate { .. } => "eval_update",
            Self::Reap(_) => "reap",
            Self::PlanApply(_) => "plan_apply",
            Self::AllocClientUpdate { .. } => "alloc_client_update",
            Self::AllocDesiredTransition { .. } => "alloc_desired_transition",
            Self::DeploymentUpdate { .. } => "deployment_update",
            Self::DeploymentPromote { .. } => "deployment_promote",
            Self::DeploymentAllocHealth { .. } => "deployment_alloc_health",
            Self::JobStability { .. } => "job_stability",
            Self::JobScale { .. } => "job_scale",
            Self::ServiceRegistrations { .. } => "service_registrations",
            Self::SnapshotRestore { .. } => "snapshot_restore",
            Self::SchedulerSetConfig { .. } => "scheduler_set_config",
            Self::AclBootstrap { .. } => "acl_bootstrap",
            Self::AclPolicyUpsert { .. } => "acl_policy_upsert",
            Self::AclPolicyDelete { .. } => "acl_policy_delete",
            Self::AclTokenUpsert { .. } => "acl_token_upsert",
            Self::AclTokenDelete { .. } => "acl_token_delete",
            Self::NamespaceUpsert { .. } => "namespace_upsert",
            Self::NamespaceDelete { .. } => "namespace_delete",
            Self::VariableUpsert { .. } => "variable_upsert",
            Self::VariableDelete { .. } => "variable_delete",
            Self::RootKeyUpsert { .. } => "root_key_upsert",
            Self::NodePoolUpsert { .. } => "node_pool_upsert",
            Self::NodePoolDelete { .. } => "node_pool_delete",
        }
    }
}

/// What one garbage collection removes. Applying it skips whatever is already gone or came
/// back to life since it was picked: a job modified since (re-registered), a deployment active
/// again, a node no longer down.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapRequest {
    pub eval_ids: Vec<EvalId>,
    pub alloc_ids: Vec<AllocId>,
    /// Jobs purged with their versions, each as modified when picked.
    pub jobs: Vec<ReapJob>,
    pub deployment_ids: Vec<DeploymentId>,
    pub node_ids: Vec<NodeId>,
}

impl ReapRequest {
    pub fn is_empty(&self) -> bool {
        self.eval_ids.is_empty()
            && self.alloc_ids.is_empty()
            && self.jobs.is_empty()
            && self.deployment_ids.is_empty()
            && self.node_ids.is_empty()
    }
}

/// A job picked for garbage collection.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ReapJob {
    pub namespace: String,
    pub job_id: JobId,
    /// The job's modify index when it was picked: a job modified since stays.
    pub modify_index: u64,
}

/// The committed part of a plan.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PlanApplyRequest {
    /// The job version of the placements; attached to each new allocation at apply, so the log
    /// carries the job once per plan rather than once per allocation.
    pub job: Option<Arc<Job>>,
    pub eval_id: EvalId,
    /// Allocations to stop: only their ID and the fields the plan changes matter.
    pub stopped: Vec<Arc<Allocation>>,
    /// New allocations and in-place updates, without their `job`.
    pub placed: Vec<Arc<Allocation>>,
    pub deployment: Option<Deployment>,
    pub deployment_updates: Vec<DeploymentStatusUpdate>,
    /// Unix nanoseconds, the commit time given to new and updated allocations.
    pub now: i64,
}

/// One allocation's status as its client reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocClientUpdate {
    #[serde(rename = "ID")]
    pub id: AllocId,
    pub client_status: AllocClientStatus,
    pub client_description: String,
    pub task_states: SortedVecMap<String, TaskState>,
    /// Unix nanoseconds.
    pub modify_time: i64,
    /// The allocation's health in its deployment, once the client decided it.
    pub deployment_healthy: Option<bool>,
}

/// What applying a command returns to the writer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandResponse {
    /// The Raft log index the command was applied at.
    pub index: u64,
    /// Why the state refused the command (an unknown node, for instance); the command is in the
    /// log all the same and changed nothing.
    pub error: Option<ApplyError>,
}
