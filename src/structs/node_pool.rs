//! Node pools: named groups of client nodes. A node joins the pool its agent names (created on
//! its first registration if missing); a job runs only on the nodes of its pool; `all` spans every
//! node and `default` holds the nodes that name none. Both are built in and cannot be changed.
//!
//! Nomad: `nomad/structs/node_pool.go`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SchedulerAlgorithm;
use super::nullable;

/// The pool that spans every node; a job in it may run anywhere.
pub const NODE_POOL_ALL: &str = "all";
/// The pool of nodes and jobs that name none.
pub const NODE_POOL_DEFAULT: &str = "default";

const MAX_NAME_LENGTH: usize = 128;
const MAX_DESCRIPTION_LENGTH: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodePool {
    pub name: String,
    pub description: String,
    #[serde(deserialize_with = "nullable::default")]
    pub meta: BTreeMap<String, String>,
    /// How the scheduler ranks this pool's nodes, over the cluster's configuration.
    pub scheduler_configuration: Option<NodePoolSchedulerConfiguration>,
    pub create_index: u64,
    pub modify_index: u64,
}

/// A pool's own scheduler settings (Nomad: `NodePoolSchedulerConfiguration`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodePoolSchedulerConfiguration {
    /// Empty: the cluster's algorithm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_algorithm: Option<SchedulerAlgorithm>,
    /// Stored and shown only, as the cluster-wide flag: caravan does not oversubscribe memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_oversubscription_enabled: Option<bool>,
}

impl NodePool {
    /// The pools every cluster has, as Nomad describes them.
    pub fn builtin() -> [NodePool; 2] {
        [
            NodePool {
                name: NODE_POOL_ALL.to_owned(),
                description: "Node pool with all nodes in the cluster.".to_owned(),
                ..NodePool::default()
            },
            NodePool {
                name: NODE_POOL_DEFAULT.to_owned(),
                description: "Default node pool.".to_owned(),
                ..NodePool::default()
            },
        ]
    }

    pub fn is_builtin(name: &str) -> bool {
        name == NODE_POOL_ALL || name == NODE_POOL_DEFAULT
    }

    /// Checks what an operator submits (Nomad: `NodePool.Validate`).
    pub fn validate(&self) -> Result<(), String> {
        let valid_name = !self.name.is_empty()
            && self.name.len() <= MAX_NAME_LENGTH
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid_name {
            return Err(format!(
                "invalid name {:?}, must match regex ^[a-zA-Z0-9-_]{{1,{MAX_NAME_LENGTH}}}$",
                self.name
            ));
        }
        if self.description.len() > MAX_DESCRIPTION_LENGTH {
            return Err(format!("description longer than {MAX_DESCRIPTION_LENGTH}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_nomads_rule() {
        let pool = |name: &str| NodePool {
            name: name.to_owned(),
            ..NodePool::default()
        };
        assert!(pool("prod-eu_1").validate().is_ok());
        for bad in ["", "with space", "dots.not", &"x".repeat(129)] {
            let err = pool(bad).validate().expect_err("refused");
            assert!(err.starts_with("invalid name"), "{bad:?}: {err}");
        }
        let long = NodePool {
            description: "d".repeat(257),
            ..pool("ok")
        };
        assert_eq!(
            long.validate().expect_err("refused"),
            "description longer than 256"
        );
    }

    #[test]
    fn the_builtin_pools_are_all_and_default() {
        let names: Vec<String> = NodePool::builtin()
            .into_iter()
            .map(|pool| pool.name)
            .collect();
        assert_eq!(names, ["all", "default"]);
        assert!(NodePool::is_builtin("all") && NodePool::is_builtin("default"));
        assert!(!NodePool::is_builtin("prod"));
    }
}
