//! A tiny stand-in for the servers' HTTP API, on a loopback port: exactly the endpoints the
//! client's `HttpServerLink` uses (node register and heartbeat, the blocking allocation watch and
//! pull, allocation updates), over an in-memory table with a Raft-like index, speaking the wire
//! types of `caravan::api::types::node`. As the servers do, a server-side change stamps the
//! allocation's `AllocModifyIndex` and moves the watch; a client's update does neither.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use caravan::api::types::node::{
    AllocUpdateRequest, NodeClientAllocs, PullAllocsRequest, PullAllocsResponse,
};
use caravan::structs::{AllocDesiredStatus, AllocId, Allocation, Node, NodeId};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

#[derive(Default)]
struct Tables {
    nodes: HashMap<NodeId, Node>,
    allocs: BTreeMap<AllocId, Allocation>,
    registrations: u64,
    heartbeats: u64,
}

pub struct TestServer {
    tables: Mutex<Tables>,
    index: watch::Sender<u64>,
    heartbeat_ttl: Duration,
    pub addr: SocketAddr,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RegisterBody {
    node: Node,
}

impl TestServer {
    /// Serves on 127.0.0.1:0 until the test's runtime ends; `extra` is merged in (the client
    /// router, for the client API tests).
    pub async fn start(heartbeat_ttl: Duration) -> anyhow::Result<Arc<TestServer>> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server = Arc::new(TestServer {
            tables: Mutex::new(Tables::default()),
            index: watch::channel(1).0,
            heartbeat_ttl,
            addr: listener.local_addr()?,
        });
        let router = Router::new()
            .route("/v1/internal/node/register", put(register))
            .route("/v1/internal/node/{id}/heartbeat", put(heartbeat))
            .route("/v1/internal/node/{id}/client-allocs", get(client_allocs))
            .route("/v1/internal/node/{id}/allocs/pull", post(pull))
            .route("/v1/internal/node/{id}/allocations", put(update))
            .with_state(Arc::clone(&server));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_index(&self) -> u64 {
        *self.index.borrow() + 1
    }

    fn bump(&self) {
        self.index.send_modify(|index| *index += 1);
    }

    pub fn upsert_alloc(&self, mut alloc: Allocation) {
        let index = self.next_index();
        alloc.modify_index = index;
        alloc.alloc_modify_index = index;
        self.lock().allocs.insert(alloc.id.clone(), alloc);
        self.bump();
    }

    pub fn stop_alloc(&self, alloc_id: &AllocId) {
        let index = self.next_index();
        if let Some(alloc) = self.lock().allocs.get_mut(alloc_id) {
            alloc.desired_status = AllocDesiredStatus::Stop;
            alloc.modify_index = index;
            alloc.alloc_modify_index = index;
        }
        self.bump();
    }

    pub fn alloc(&self, alloc_id: &AllocId) -> Option<Allocation> {
        self.lock().allocs.get(alloc_id).cloned()
    }

    /// Polls the allocation as the client last reported it until `check` holds, or fails after
    /// `timeout` naming `what` was awaited and the last status seen.
    pub async fn wait_alloc(
        &self,
        alloc_id: &AllocId,
        what: &str,
        timeout: Duration,
        check: impl Fn(&Allocation) -> bool,
    ) -> anyhow::Result<Allocation> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let alloc = self
                .alloc(alloc_id)
                .ok_or_else(|| anyhow::anyhow!("alloc {alloc_id} does not exist"))?;
            if check(&alloc) {
                return Ok(alloc);
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "alloc never reached {what}: {} {:#?}",
                    alloc.client_status,
                    alloc.task_states
                );
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn node(&self, node_id: &NodeId) -> Option<Node> {
        self.lock().nodes.get(node_id).cloned()
    }

    pub fn forget_nodes(&self) {
        self.lock().nodes.clear();
    }

    pub fn registrations(&self) -> u64 {
        self.lock().registrations
    }

    pub fn heartbeats(&self) -> u64 {
        self.lock().heartbeats
    }
}

async fn register(
    State(server): State<Arc<TestServer>>,
    Json(body): Json<RegisterBody>,
) -> Response {
    let mut tables = server.lock();
    tables.nodes.insert(body.node.id.clone(), body.node);
    tables.registrations += 1;
    drop(tables);
    Json(json!({
        "HeartbeatTTL": server.heartbeat_ttl.as_nanos() as u64,
        "Index": *server.index.borrow(),
    }))
    .into_response()
}

async fn heartbeat(State(server): State<Arc<TestServer>>, Path(id): Path<String>) -> Response {
    let mut tables = server.lock();
    if !tables.nodes.contains_key(&NodeId::from(id.as_str())) {
        return (StatusCode::NOT_FOUND, "node not found").into_response();
    }
    tables.heartbeats += 1;
    Json(json!({ "HeartbeatTTL": server.heartbeat_ttl.as_nanos() as u64 })).into_response()
}

async fn client_allocs(
    State(server): State<Arc<TestServer>>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let min_index: u64 = params
        .get("index")
        .and_then(|index| index.parse().ok())
        .unwrap_or(0);
    let wait = params
        .get("wait")
        .and_then(|wait| caravan::structs::duration::parse_go_duration(wait).ok())
        .unwrap_or(Duration::from_secs(300))
        .min(Duration::from_secs(10));
    let mut index = server.index.subscribe();
    let _ = tokio::time::timeout(wait, index.wait_for(|index| *index > min_index)).await;
    let index = *index.borrow();
    let node_id = NodeId::from(id.as_str());
    let allocs = server
        .lock()
        .allocs
        .values()
        .filter(|alloc| alloc.node_id == node_id)
        .map(|alloc| (alloc.id.clone(), alloc.alloc_modify_index))
        .collect();
    Json(NodeClientAllocs { allocs, index }).into_response()
}

async fn pull(
    State(server): State<Arc<TestServer>>,
    Path(id): Path<String>,
    Json(body): Json<PullAllocsRequest>,
) -> Response {
    let node_id = NodeId::from(id.as_str());
    let tables = server.lock();
    let allocs: Vec<Arc<Allocation>> = body
        .alloc_ids
        .iter()
        .filter_map(|alloc_id| tables.allocs.get(alloc_id))
        .filter(|alloc| alloc.node_id == node_id)
        .map(|alloc| Arc::new(alloc.clone()))
        .collect();
    let index = *server.index.borrow();
    Json(PullAllocsResponse::from_allocs(allocs, index)).into_response()
}

async fn update(
    State(server): State<Arc<TestServer>>,
    Json(body): Json<AllocUpdateRequest>,
) -> Response {
    let mut tables = server.lock();
    for update in body.allocs {
        if let Some(alloc) = tables.allocs.get_mut(&update.id) {
            alloc.client_status = update.client_status;
            alloc.client_description = update.client_description;
            if !update.task_states.is_empty() {
                alloc.task_states = update.task_states.into();
            }
        }
    }
    Json(json!({})).into_response()
}
