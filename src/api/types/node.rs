//! The client↔server messages of a node: its allocation watch, the pull of changed
//! allocations and its status updates (Nomad: `Node.GetClientAllocs`, `Alloc.GetAllocs`,
//! `Node.UpdateAlloc`).
//!
//! The watch is Nomad's: a blocking query on the node's own allocation index answers with only
//! allocation IDs and their `AllocModifyIndex`; the client then pulls just the allocations whose
//! index moved, their jobs sent once per job version however many allocations run them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::structs::{
    AllocClientStatus, AllocId, Allocation, Job, JobId, Node, NodeId, NodeStatus, TaskState,
};

/// `GET /v1/internal/node/:id/client-allocs?index=N`: the node's allocations as IDs and the
/// index of their last server-side change (Nomad: `NodeClientAllocsResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct NodeClientAllocs {
    /// Every allocation of the node with its `AllocModifyIndex`.
    pub allocs: BTreeMap<AllocId, u64>,
    /// The node's allocation index: pass it as `index` to block until it moves.
    pub index: u64,
}

/// `POST /v1/internal/node/:id/allocs/pull`: the allocations a client wants in full.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PullAllocsRequest {
    #[serde(rename = "AllocIDs")]
    pub alloc_ids: Vec<AllocId>,
}

/// The answer to [`PullAllocsRequest`]: the allocations without their job, and each job version
/// they run once. Allocations of other nodes and unknown IDs are left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PullAllocsResponse {
    pub allocs: Vec<PulledAlloc>,
    pub jobs: Vec<Arc<Job>>,
    /// The Raft index the answer was read at.
    pub index: u64,
}

/// One pulled allocation, its job left out, and the version of the job it runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PulledAlloc {
    pub alloc: Allocation,
    /// `None` for an allocation stored without a job.
    pub job_version: Option<u64>,
}

/// The key that joins a pulled allocation to its job: namespace, job ID and job version.
pub type JobVersionKey = (String, JobId, u64);

impl PullAllocsResponse {
    /// Builds the answer from full allocations, sharing each job version once.
    pub fn from_allocs(allocs: impl IntoIterator<Item = Arc<Allocation>>, index: u64) -> Self {
        let mut jobs: BTreeMap<JobVersionKey, Arc<Job>> = BTreeMap::new();
        let allocs = allocs
            .into_iter()
            .map(|alloc| {
                let mut alloc = (*alloc).clone();
                let job_version = alloc.job.take().map(|job| {
                    let version = job.version;
                    jobs.entry((job.namespace.clone(), job.id.clone(), version))
                        .or_insert(job);
                    version
                });
                PulledAlloc { alloc, job_version }
            })
            .collect();
        PullAllocsResponse {
            allocs,
            jobs: jobs.into_values().collect(),
            index,
        }
    }

    /// The allocations with their jobs attached again. An allocation whose job version is not
    /// in the answer keeps `job: None`.
    pub fn into_allocs(self) -> Vec<Allocation> {
        let jobs: BTreeMap<JobVersionKey, Arc<Job>> = self
            .jobs
            .into_iter()
            .map(|job| ((job.namespace.clone(), job.id.clone(), job.version), job))
            .collect();
        self.allocs
            .into_iter()
            .map(
                |PulledAlloc {
                     mut alloc,
                     job_version,
                 }| {
                    alloc.job = job_version.and_then(|version| {
                        jobs.get(&(alloc.namespace.clone(), alloc.job_id.clone(), version))
                            .cloned()
                    });
                    alloc
                },
            )
            .collect()
    }
}

/// What a client reports about one of its allocations (Nomad: the `Allocation` stubs of
/// `Node.UpdateAlloc`). The server stamps the modify time; a node may update only its own
/// allocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AllocUpdate {
    #[serde(rename = "ID")]
    pub id: AllocId,
    #[serde(rename = "NodeID")]
    pub node_id: NodeId,
    pub client_status: AllocClientStatus,
    #[serde(default)]
    pub client_description: String,
    /// Empty leaves the stored task states as they are.
    #[serde(default)]
    pub task_states: BTreeMap<String, TaskState>,
    /// The allocation's health in its deployment once the client decided it; only `Healthy`
    /// is read (the servers stamp the time and know whether it is a canary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_status: Option<crate::structs::AllocDeploymentStatus>,
}

/// `PUT /v1/internal/node/:id/allocations`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AllocUpdateRequest {
    pub allocs: Vec<AllocUpdate>,
}

/// `PUT /v1/internal/node/register` (Nomad: `structs.NodeRegisterRequest`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeRegisterRequest {
    pub node: Option<Node>,
}

/// `PUT /v1/internal/node/:id/heartbeat` (Nomad: `structs.NodeUpdateStatusRequest`). An empty
/// body is a heartbeat with status `ready` and no secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeHeartbeatRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<NodeStatus>,
    /// The secret the node registered with: a heartbeat for a node ID registered with another
    /// secret is refused (403).
    #[serde(rename = "SecretID")]
    pub secret_id: String,
}

/// The answer to a registration or heartbeat (Nomad: `structs.NodeUpdateResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeUpdateResponse {
    /// Nanoseconds within which the node must heartbeat again.
    #[serde(rename = "HeartbeatTTL")]
    pub heartbeat_ttl: u64,
    #[serde(rename = "EvalIDs")]
    pub eval_ids: Vec<String>,
    pub eval_create_index: u64,
    pub node_modify_index: u64,
    #[serde(rename = "LeaderRPCAddr")]
    pub leader_rpc_addr: String,
    pub num_nodes: u64,
    /// Every voting server, so clients learn them all and fail over between them (Nomad:
    /// `NodeUpdateResponse.Servers`).
    pub servers: Vec<NodeServerInfo>,
    pub index: u64,
}

/// A server as clients learn it (Nomad: `structs.NodeServerInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeServerInfo {
    #[serde(rename = "RPCAdvertiseAddr")]
    pub rpc_advertise_addr: String,
    pub datacenter: String,
}

/// The answer to an [`AllocUpdateRequest`] (Nomad: `structs.GenericResponse`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AllocUpdateResponse {
    pub index: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(id: &str, job: &Arc<Job>) -> Arc<Allocation> {
        Arc::new(Allocation {
            id: AllocId::from(id),
            namespace: job.namespace.clone(),
            job_id: job.id.clone(),
            job: Some(Arc::clone(job)),
            ..Allocation::default()
        })
    }

    #[test]
    fn a_pull_sends_each_job_version_once_and_reattaches_it() {
        let v1 = Arc::new(Job {
            id: JobId::from("web"),
            namespace: "default".to_owned(),
            version: 1,
            ..Job::default()
        });
        let v2 = Arc::new(Job {
            version: 2,
            ..(*v1).clone()
        });
        let allocs = vec![alloc("a", &v1), alloc("b", &v1), alloc("c", &v2)];
        let response = PullAllocsResponse::from_allocs(allocs, 7);
        assert_eq!(response.jobs.len(), 2, "two versions, each sent once");
        assert!(
            response
                .allocs
                .iter()
                .all(|pulled| pulled.alloc.job.is_none())
        );
        let wire = serde_json::to_string(&response).expect("serialises");
        let back: PullAllocsResponse = serde_json::from_str(&wire).expect("deserialises");
        let allocs = back.into_allocs();
        let versions: Vec<Option<u64>> = allocs
            .iter()
            .map(|alloc| alloc.job.as_ref().map(|job| job.version))
            .collect();
        assert_eq!(versions, [Some(1), Some(1), Some(2)]);
    }

    #[test]
    fn wire_types_read_nomad_shaped_json_and_refuse_strangers() {
        let json = r#"{"Allocs": {"a1": 12, "a2": 30}, "Index": 30}"#;
        let allocs: NodeClientAllocs = serde_json::from_str(json).expect("decodes");
        assert_eq!(allocs.allocs.get(&AllocId::from("a2")), Some(&30));
        assert_eq!(serde_json::to_value(&allocs).expect("encodes")["Index"], 30);

        let update = r#"{"Allocs": [{"ID": "a1", "NodeID": "n1", "ClientStatus": "running"}]}"#;
        let request: AllocUpdateRequest = serde_json::from_str(update).expect("decodes");
        assert_eq!(request.allocs[0].node_id, NodeId::from("n1"));
        let stamped = r#"{"Allocs": [{"ID": "a1", "NodeID": "n1", "ClientStatus": "running",
            "ModifyTime": 5}]}"#;
        let error = serde_json::from_str::<AllocUpdateRequest>(stamped)
            .expect_err("a client does not stamp times");
        assert!(error.to_string().contains("ModifyTime"), "{error}");
    }
}

/// `POST /v1/internal/node/:id/acl/resolve`: a client agent asks what the secret a caller of
/// its own routes offered grants (none: an anonymous caller).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TokenResolveRequest {
    #[serde(rename = "SecretID")]
    pub secret_id: Option<String>,
}

/// The answer: what the token grants, as its policies' rules (which the client compiles
/// itself), never the secret. A 403 (`ACL token not found`, `ACL token expired`) otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TokenGrant {
    /// The token's accessor ID; none for an anonymous caller.
    #[serde(rename = "AccessorID")]
    pub accessor_id: Option<String>,
    /// A management token: everything.
    pub management: bool,
    /// The token's policies that exist (the `anonymous` policy for an anonymous caller).
    pub policies: Vec<crate::structs::AclPolicy>,
}
