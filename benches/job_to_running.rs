//! `cargo bench --bench job_to_running`: median time from an allocation reaching a client to
//! its task running, for a raw_exec task and a Wasm task.
//!
//! This measures the client half of `job run` → running: the client's blocking watch wakes,
//! the alloc runner builds the alloc dir and runs the hooks, the driver starts the task, and the
//! "running" status reaches the servers through the update batcher. The servers here are an
//! in-process [`ServerLink`]; the whole path through `POST /v1/jobs`, Raft and the scheduler is
//! measured once the agent wires a dev server to this client.
//!
//! The last line is `raw_exec_p50_ms=X wasm_p50_ms=Y`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use caravan::client::{
    AllocUpdate, Client, ClientOptions, HeartbeatResponse, LinkError, NodeAllocs, ServerLink,
};
use caravan::structs::{
    AllocClientStatus, AllocDesiredStatus, AllocId, Allocation, Job, JobId, JobType, Node, NodeId,
    Task, TaskGroup,
};
use futures::future::BoxFuture;
use serde_json::json;
use tokio::sync::{mpsc, watch};

const ROUNDS: usize = 25;

struct BenchLink {
    allocs: Mutex<BTreeMap<AllocId, Allocation>>,
    index: watch::Sender<u64>,
    updates: mpsc::UnboundedSender<(Instant, AllocUpdate)>,
}

impl BenchLink {
    fn upsert(&self, alloc: Allocation) {
        self.allocs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(alloc.id.clone(), alloc);
        self.index.send_modify(|index| *index += 1);
    }
}

impl ServerLink for BenchLink {
    fn register<'a>(
        &'a self,
        _node: &'a Node,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>> {
        Box::pin(async {
            Ok(HeartbeatResponse {
                heartbeat_ttl: Duration::from_secs(30),
            })
        })
    }

    fn heartbeat<'a>(
        &'a self,
        _node_id: &'a NodeId,
    ) -> BoxFuture<'a, Result<HeartbeatResponse, LinkError>> {
        Box::pin(async {
            Ok(HeartbeatResponse {
                heartbeat_ttl: Duration::from_secs(30),
            })
        })
    }

    fn watch_allocs<'a>(
        &'a self,
        _node_id: &'a NodeId,
        min_index: u64,
    ) -> BoxFuture<'a, Result<NodeAllocs, LinkError>> {
        Box::pin(async move {
            let mut index = self.index.subscribe();
            let _ = tokio::time::timeout(
                Duration::from_secs(60),
                index.wait_for(|index| *index > min_index),
            )
            .await;
            let index = *index.borrow();
            let allocs = self
                .allocs
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .values()
                .cloned()
                .collect();
            Ok(NodeAllocs { allocs, index })
        })
    }

    fn update_allocs<'a>(
        &'a self,
        updates: &'a [AllocUpdate],
    ) -> BoxFuture<'a, Result<(), LinkError>> {
        Box::pin(async move {
            let now = Instant::now();
            for update in updates {
                let _ = self.updates.send((now, update.clone()));
            }
            Ok(())
        })
    }
}

fn alloc_with(node_id: &NodeId, task: Task) -> Allocation {
    let job = Job {
        id: JobId::from("bench"),
        name: "bench".to_owned(),
        job_type: JobType::Service,
        namespace: "default".to_owned(),
        task_groups: vec![TaskGroup {
            name: "group".to_owned(),
            tasks: vec![task],
            ..TaskGroup::default()
        }],
        ..Job::default()
    };
    Allocation {
        id: AllocId::generate(),
        namespace: "default".to_owned(),
        name: "bench.group[0]".to_owned(),
        node_id: node_id.clone(),
        job_id: job.id.clone(),
        job: Some(Arc::new(job)),
        task_group: "group".to_owned(),
        ..Allocation::default()
    }
}

async fn wait_for(
    updates: &mut mpsc::UnboundedReceiver<(Instant, AllocUpdate)>,
    alloc_id: &AllocId,
    status: AllocClientStatus,
) -> anyhow::Result<Instant> {
    loop {
        let (at, update) = tokio::time::timeout(Duration::from_secs(30), updates.recv())
            .await?
            .ok_or_else(|| anyhow::anyhow!("update channel closed"))?;
        if update.id == *alloc_id && update.client_status == status {
            return Ok(at);
        }
    }
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

async fn measure(
    link: &BenchLink,
    updates: &mut mpsc::UnboundedReceiver<(Instant, AllocUpdate)>,
    node_id: &NodeId,
    task: &Task,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let alloc = alloc_with(node_id, task.clone());
        let alloc_id = alloc.id.clone();
        let started = Instant::now();
        link.upsert(alloc.clone());
        let running = wait_for(updates, &alloc_id, AllocClientStatus::Running).await?;
        samples.push(running.duration_since(started));
        let mut stopped = alloc;
        stopped.desired_status = AllocDesiredStatus::Stop;
        stopped.modify_index += 1;
        link.upsert(stopped);
        wait_for(updates, &alloc_id, AllocClientStatus::Complete).await?;
    }
    Ok(samples)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let (updates_tx, mut updates) = mpsc::unbounded_channel();
        let link = Arc::new(BenchLink {
            allocs: Mutex::new(BTreeMap::new()),
            index: watch::channel(1).0,
            updates: updates_tx,
        });
        let client = Client::start(
            ClientOptions {
                data_dir: dir.path().to_path_buf(),
                plugins: BTreeMap::from([("raw_exec".to_owned(), json!({ "enabled": true }))]),
                network_ip: Some("127.0.0.1".parse()?),
                ..ClientOptions::default()
            },
            link.clone(),
        )
        .await?;
        let node_id = client.node_id();
        let raw_exec = Task {
            name: "sleep".to_owned(),
            driver: "raw_exec".to_owned(),
            config: json!({ "command": "/bin/sleep", "args": ["60"] })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            kill_timeout: Some(Duration::from_secs(1)),
            ..Task::default()
        };
        let wasm = Task {
            name: "counter".to_owned(),
            driver: "wasm".to_owned(),
            config: json!({ "module": env!("CARAVAN_EXAMPLE_COUNTER_WASM"), "args": ["1000"] })
                .as_object()
                .cloned()
                .unwrap_or_default(),
            kill_timeout: Some(Duration::from_secs(1)),
            ..Task::default()
        };
        // One warm-up each: driver instances, the Wasm module's compilation cache.
        measure_once(&link, &mut updates, &node_id, &raw_exec).await?;
        measure_once(&link, &mut updates, &node_id, &wasm).await?;
        let raw_exec_samples = measure(&link, &mut updates, &node_id, &raw_exec).await?;
        let wasm_samples = measure(&link, &mut updates, &node_id, &wasm).await?;
        client.shutdown().await;
        println!("alloc to running over {ROUNDS} rounds each (client half of job run to running)");
        println!(
            "raw_exec_p50_ms={:.2} wasm_p50_ms={:.2}",
            median_ms(raw_exec_samples),
            median_ms(wasm_samples)
        );
        Ok(())
    })
}

async fn measure_once(
    link: &BenchLink,
    updates: &mut mpsc::UnboundedReceiver<(Instant, AllocUpdate)>,
    node_id: &NodeId,
    task: &Task,
) -> anyhow::Result<()> {
    let alloc = alloc_with(node_id, task.clone());
    let alloc_id = alloc.id.clone();
    link.upsert(alloc.clone());
    wait_for(updates, &alloc_id, AllocClientStatus::Running).await?;
    let mut stopped = alloc;
    stopped.desired_status = AllocDesiredStatus::Stop;
    stopped.modify_index += 1;
    link.upsert(stopped);
    wait_for(updates, &alloc_id, AllocClientStatus::Complete).await?;
    Ok(())
}
