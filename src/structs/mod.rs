//! The domain model: jobs, task groups, tasks, nodes, allocations, evaluations and deployments.
//!
//! These types are the one vocabulary of caravan. Servers store them, the scheduler reasons over them,
//! clients run them and the HTTP API sends them, all with the JSON names of Nomad's v1 API
//! (`PascalCase`, `ID`, `JobID`, durations as integer nanoseconds), so that Nomad's clients and habits
//! carry over unchanged.
//!
//! Invariant: this module depends on serde and the standard library only; it does no I/O.
//! Invariant: deserialisation is lenient as Nomad's is (missing fields and JSON `null` take the
//! default), validation is strict and separate ([`Job::validate`]), Nomad's defaults are applied in
//! one place, [`JobSubmission::into_job`], for both job files and API submissions: a submission
//! keeps `Option` where "unset" differs from zero, the stored job has every field decided.

mod acl;
mod allocation;
mod attribute;
mod blocks;
mod constraint;
mod cron;
mod deployment;
mod device;
pub mod duration;
mod evaluation;
mod ids;
mod integrations;
mod job;
mod job_summary;
mod namespace;
mod network;
mod node;
mod node_pool;
pub(crate) mod nullable;
mod plan;
mod policy;
mod resources;
mod scaling;
mod scheduler_config;
mod scores;
mod service;
mod service_registration;
mod sorted_map;
mod submission;
mod task;
mod task_group;
mod validation;
mod variable;
mod volume;

pub use acl::{
    ANONYMOUS_POLICY, AclPolicy, AclPolicyListStub, AclToken, AclTokenListStub, TOKEN_TYPE_CLIENT,
    TOKEN_TYPE_MANAGEMENT,
};
pub use allocation::{
    AllocClientStatus, AllocDesiredStatus, AllocMetric, AllocatedCpu, AllocatedMemory,
    AllocatedPort, AllocatedResources, AllocatedSharedResources, AllocatedTaskResources,
    Allocation, DesiredTransition, JobsWrittenApart, NodeScoreMeta, RescheduleEvent,
    RescheduleTracker, TaskEvent, TaskState, TaskStateValue,
};
pub use attribute::Attribute;
pub use blocks::{
    Action, ChangeScript, CniConfig, DisconnectStrategy, DnsConfig, JobUiConfig, JobUiLink,
    NumaResource, ScalingPolicy, ServiceWeights, TaskSchedule, TaskScheduleCron, WaitConfig,
};
pub use constraint::{Affinity, Constraint, ConstraintOperand, Spread, SpreadTarget};
pub use deployment::{
    AllocDeploymentStatus, Deployment, DeploymentState, DeploymentStatus,
    descriptions as deployment_descriptions, strategy_of,
};
pub use device::{
    AllocatedDeviceResource, DeviceGroupStats, DeviceIdTuple, DeviceStats, NodeDevice,
    NodeDeviceLocality, NodeDeviceResource, RequestedDevice, StatObject, StatValue,
};
pub use evaluation::{EvalStatus, EvalTrigger, Evaluation};
pub use ids::{AllocId, DeploymentId, EvalId, JobId, NodeId, new_uuid};
pub use integrations::{
    Consul, ConsulConnect, CsiMountOptions, Multiregion, MultiregionRegion, MultiregionStrategy,
    Secret, TaskCsiPluginConfig, Vault,
};
pub use job::{Job, JobStatus, JobType, ParameterizedJobConfig, PeriodicConfig, payload_base64};
pub use job_summary::{JobChildrenSummary, JobSummary, TaskGroupSummary};
pub use namespace::Namespace;
pub use network::{NetworkResource, Port};
pub use node::{
    DrainStrategy, DriverInfo, HostVolume, Node, NodeCpuResources, NodeDiskResources,
    NodeMemoryResources, NodeReservedResources, NodeResources, NodeStatus, SchedulingEligibility,
};
pub use node_pool::{NODE_POOL_ALL, NODE_POOL_DEFAULT, NodePool, NodePoolSchedulerConfiguration};
pub use plan::{DeploymentStatusUpdate, Plan, PlanResult, shared_allocs};
pub use policy::{
    DelayFunction, EphemeralDisk, LogConfig, MigrateStrategy, ReschedulePolicy, RestartMode,
    RestartPolicy, UpdateStrategy,
};
pub use resources::Resources;
pub use scaling::{JobScalingEvents, ScalingEvent};
pub use scheduler_config::{PreemptionConfig, SchedulerAlgorithm, SchedulerConfiguration};
pub use scores::Scores;
pub use service::{CheckRestart, Service, ServiceCheck};
pub use service_registration::{
    CheckStatus, ServiceRegistration, ServiceRegistrationListStub, ServiceRegistrationStub,
};
pub use sorted_map::SortedVecMap;
pub use submission::{
    EphemeralDiskSubmission, JobSubmission, LogConfigSubmission, MigrateSubmission,
    RescheduleSubmission, ResourcesSubmission, RestartSubmission, TaskGroupSubmission,
    TaskSubmission, UpdateSubmission,
};
pub use task::{
    DispatchPayloadConfig, Task, TaskArtifact, TaskLifecycle, Template, VolumeMount,
    WorkloadIdentity,
};
pub use task_group::{TaskGroup, VolumeRequest};
pub use validation::{ValidationError, ValidationErrors};
pub use variable::{
    ROOT_KEY_ACTIVE, ROOT_KEY_INACTIVE, RootKeyMeta, Variable, VariableEncrypted, VariableMetadata,
    check_variable_path, workload_variable_paths,
};
pub use volume::VOLUME_TYPE_HOST;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
