//! Scheduler tests through the recording harness, and the property tests.

mod cores;
mod deployments;
mod devices;
mod disconnect;
mod generic;
mod mock;
mod properties;
mod reconcile;
mod system;

use super::SchedulerConfig;
use super::harness::{Harness, MemState};
use crate::structs::{Job, Node};

/// A harness over `nodes` with `job` registered; returns the stored job version.
fn harness_with(nodes: Vec<Node>, job: Job) -> (Harness, std::sync::Arc<Job>) {
    let mut state = MemState::default();
    for node in nodes {
        state.upsert_node(node);
    }
    let job = state.upsert_job(job);
    (Harness::new(state), job)
}

fn config() -> SchedulerConfig {
    SchedulerConfig {
        now_unix_nanos: 1_700_000_000_000_000_000,
        ..SchedulerConfig::default()
    }
}
