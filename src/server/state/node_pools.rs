//! Node pools: written by the operator (`node pool apply|delete`) and created when a node
//! registers into a pool that does not exist yet (Nomad: `state_store_node_pools.go`).
//!
//! Invariant: `node_pools` never holds the built-in `all` and `default`; reads add them.

use std::sync::Arc;

use super::error::{ApplyError, ObjectKind};
use super::tables::Tables;
use crate::structs::{JobStatus, NodePool};

impl Tables {
    pub(super) fn apply_node_pool_upsert(
        &mut self,
        index: u64,
        pools: &[Arc<NodePool>],
    ) -> Result<(), ApplyError> {
        if let Some(builtin) = pools.iter().find(|pool| NodePool::is_builtin(&pool.name)) {
            return Err(ApplyError::NodePoolBuiltin {
                name: builtin.name.clone(),
            });
        }
        for pool in pools {
            self.store_node_pool(index, (**pool).clone());
        }
        Ok(())
    }

    pub(super) fn apply_node_pool_delete(
        &mut self,
        index: u64,
        names: &[String],
    ) -> Result<(), ApplyError> {
        for name in names {
            if NodePool::is_builtin(name) {
                return Err(ApplyError::NodePoolBuiltin { name: name.clone() });
            }
            if !self.node_pools.contains_key(name) {
                return Err(ApplyError::not_found(ObjectKind::NodePool, name));
            }
            let in_use = |what: &str| ApplyError::NodePoolInUse {
                name: name.clone(),
                what: what.to_owned(),
            };
            if self.nodes.values().any(|node| &node.node_pool == name) {
                return Err(in_use("nodes"));
            }
            let live_job = |job: &&Arc<crate::structs::Job>| {
                &job.node_pool == name && job.status != JobStatus::Dead
            };
            if self.jobs.values().any(|job| live_job(&job)) {
                return Err(in_use("non-terminal jobs"));
            }
        }
        for name in names {
            self.node_pools.remove(name);
        }
        self.indexes.node_pools = index;
        Ok(())
    }

    /// Creates `name` with no description if it is neither built in nor stored: a node may name
    /// a pool before the operator writes it (Nomad: `upsertNodeTxn`).
    pub(super) fn ensure_node_pool(&mut self, index: u64, name: &str) {
        if name.is_empty() || NodePool::is_builtin(name) || self.node_pools.contains_key(name) {
            return;
        }
        self.store_node_pool(
            index,
            NodePool {
                name: name.to_owned(),
                ..NodePool::default()
            },
        );
    }

    fn store_node_pool(&mut self, index: u64, mut pool: NodePool) {
        pool.create_index = self
            .node_pools
            .get(&pool.name)
            .map_or(index, |existing| existing.create_index);
        pool.modify_index = index;
        self.node_pools.insert(pool.name.clone(), Arc::new(pool));
        self.indexes.node_pools = index;
    }
}
