//! Node pool endpoints: the operator's writes, checked before Raft, and the reads that add the
//! built-in pools to the stored ones (Nomad: `nomad/node_pool_endpoint.go`).

use std::sync::Arc;

use super::Server;
use super::endpoints::ServerError;
use super::raft::Command;
use super::state::StateSnapshot;
use crate::structs::{Job, NODE_POOL_DEFAULT, NodePool, SchedulerAlgorithm};

/// Every pool `snapshot` knows: the built-in ones first, then the stored ones by name.
pub fn node_pools(snapshot: &StateSnapshot) -> Vec<Arc<NodePool>> {
    NodePool::builtin()
        .into_iter()
        .map(Arc::new)
        .chain(snapshot.tables().node_pools.values().cloned())
        .collect()
}

/// The pool named `name`, built in or stored.
pub fn node_pool(snapshot: &StateSnapshot, name: &str) -> Option<Arc<NodePool>> {
    if NodePool::is_builtin(name) {
        return NodePool::builtin()
            .into_iter()
            .find(|pool| pool.name == name)
            .map(Arc::new);
    }
    snapshot.tables().node_pools.get(name).cloned()
}

/// Refuses a job whose pool does not exist (Nomad: `jobNodePoolValidatingHook`).
pub fn check_job_pool(snapshot: &StateSnapshot, job: &Job) -> Result<(), ServerError> {
    let pool = if job.node_pool.is_empty() {
        NODE_POOL_DEFAULT
    } else {
        &job.node_pool
    };
    if node_pool(snapshot, pool).is_none() {
        return Err(ServerError::Invalid(format!(
            "job {:?} is in nonexistent node pool {pool:?}",
            job.id.as_str()
        )));
    }
    Ok(())
}

impl Server {
    /// The algorithm that ranks nodes for `job`: its pool's own if the pool sets one, else the
    /// cluster's.
    pub fn algorithm_for(&self, snapshot: &StateSnapshot, job: Option<&Job>) -> SchedulerAlgorithm {
        job.and_then(|job| node_pool(snapshot, &job.node_pool))
            .and_then(|pool| pool.scheduler_configuration.as_ref()?.scheduler_algorithm)
            .unwrap_or_else(|| self.scheduler_config_in(snapshot).scheduler_algorithm)
    }

    /// Creates or replaces a pool (Nomad: `NodePool.UpsertNodePools`).
    pub async fn node_pool_upsert(&self, pool: NodePool) -> Result<u64, ServerError> {
        pool.validate()
            .map_err(|error| ServerError::Invalid(format!("invalid node pool: {error}")))?;
        let response = self
            .write_checked(Command::NodePoolUpsert {
                pools: vec![Arc::new(pool)],
            })
            .await?;
        Ok(response.index)
    }

    /// Deletes a pool that holds no node and no live job (Nomad: `NodePool.DeleteNodePools`).
    pub async fn node_pool_delete(&self, name: &str) -> Result<u64, ServerError> {
        let response = self
            .write_checked(Command::NodePoolDelete {
                names: vec![name.to_owned()],
            })
            .await?;
        Ok(response.index)
    }
}
