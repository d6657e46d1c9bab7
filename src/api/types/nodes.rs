//! The node routes' messages: `/v1/nodes`, `/v1/node/:id`, `/v1/node/:id/drain`,
//! `/v1/node/:id/eligibility` (Nomad: `api/nodes.go`). A node is read as the stored [`Node`]
//! (its secret cleared); lists answer stubs. The node's own messages to the servers are in
//! [`super::node`].

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::structs::{DrainStrategy, DriverInfo, Node, NodeStatus, SchedulingEligibility};

/// One entry of a node list (Nomad: `structs.NodeListStub`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeListStub {
    pub address: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub attributes: Option<BTreeMap<String, String>>,
    pub datacenter: String,
    pub name: String,
    pub node_class: String,
    pub node_pool: String,
    pub version: String,
    pub drain: bool,
    pub scheduling_eligibility: SchedulingEligibility,
    pub status: NodeStatus,
    pub status_description: String,
    pub drivers: BTreeMap<String, DriverInfo>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl NodeListStub {
    pub fn new(node: &Node, with_attributes: bool) -> Self {
        Self {
            address: node
                .attributes
                .get("unique.network.ip-address")
                .cloned()
                .unwrap_or_else(|| {
                    node.http_addr
                        .rsplit_once(':')
                        .map_or_else(|| node.http_addr.clone(), |(host, _)| host.to_owned())
                }),
            id: node.id.to_string(),
            attributes: with_attributes.then(|| node.attributes.clone()),
            datacenter: node.datacenter.clone(),
            name: node.name.clone(),
            node_class: node.node_class.clone(),
            node_pool: node.node_pool.clone(),
            version: node
                .attributes
                .get("nomad.version")
                .cloned()
                .unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_owned()),
            drain: node.drain_strategy.is_some(),
            scheduling_eligibility: node.scheduling_eligibility,
            status: node.status,
            status_description: node.status_description.clone(),
            drivers: node.drivers.clone(),
            create_index: node.create_index,
            modify_index: node.modify_index,
        }
    }
}

/// Nomad: `api.DrainSpec`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DrainSpec {
    /// Nanoseconds; 0 drains without a deadline, a negative value forces the drain now (Nomad's
    /// `-force`).
    pub deadline: i64,
    pub ignore_system_jobs: bool,
}

impl DrainSpec {
    /// The drain strategy this spec asks for, started at `now` (Unix nanoseconds). The deadline
    /// saturates: `2^63-1` ns is as far in the future as time goes, never a wrap into the past.
    pub fn strategy(&self, now: i64, started_at: String) -> DrainStrategy {
        let force_deadline = match self.deadline {
            0 => 0,
            deadline if deadline < 0 => now,
            deadline => now.saturating_add(deadline),
        };
        DrainStrategy {
            deadline: Duration::from_nanos(u64::try_from(self.deadline.max(0)).unwrap_or(0)),
            ignore_system_jobs: self.ignore_system_jobs,
            force_deadline,
            started_at,
        }
    }
}

/// `PUT /v1/node/:id/drain` (Nomad: `api.NodeUpdateDrainRequest`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeUpdateDrainRequest {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// `None` ends a drain.
    pub drain_spec: Option<DrainSpec>,
    pub mark_eligible: bool,
}

/// The answer to a drain or eligibility change (Nomad: `api.NodeDrainUpdateResponse`,
/// `api.NodeEligibilityUpdateResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeDrainUpdateResponse {
    #[serde(rename = "EvalIDs")]
    pub eval_ids: Vec<String>,
    pub eval_create_index: u64,
    pub node_modify_index: u64,
    pub index: u64,
}

/// `PUT /v1/node/:id/eligibility` (Nomad: `api.NodeUpdateEligibilityRequest`); the answer is a
/// [`NodeDrainUpdateResponse`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NodeUpdateEligibilityRequest {
    #[serde(rename = "NodeID")]
    pub node_id: String,
    /// "eligible" or "ineligible".
    pub eligibility: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(deadline: i64) -> DrainSpec {
        DrainSpec {
            deadline,
            ignore_system_jobs: false,
        }
    }

    #[test]
    fn drain_deadlines_saturate_and_force() {
        let now = 1_700_000_000_000_000_000;
        let far = spec(i64::MAX).strategy(now, String::new());
        assert_eq!(far.force_deadline, i64::MAX, "never wraps into the past");
        assert_eq!(far.deadline, Duration::from_nanos(i64::MAX as u64));
        assert_eq!(spec(0).strategy(now, String::new()).force_deadline, 0);
        let forced = spec(-1).strategy(now, String::new());
        assert_eq!(
            (forced.force_deadline, forced.deadline),
            (now, Duration::ZERO)
        );
        assert_eq!(spec(5).strategy(now, String::new()).force_deadline, now + 5);
    }
}
