//! The nodes table.
//!
//! Nomad: `nomad/state/state_store.go` `upsertNodeTxn`, `UpdateNodeStatus`,
//! `UpdateNodeEligibility`, `updateNodeDrainImpl`.

use std::sync::Arc;

use super::apply::ApplyEffects;
use super::error::{ApplyError, ObjectKind};
use super::events::{Event, EventPayload, Topic};
use super::tables::Tables;
use crate::structs::{DrainStrategy, Node, NodeId, NodeStatus, SchedulingEligibility};

impl Tables {
    /// Removes a node that is down (garbage collection); its remaining allocations are
    /// terminal and stay until their own collection. A node that came back stays.
    pub(super) fn delete_down_node(
        &mut self,
        index: u64,
        node_id: &NodeId,
        effects: &mut ApplyEffects,
    ) {
        let Some(node) = self.nodes.get(node_id).cloned() else {
            return;
        };
        if node.status != NodeStatus::Down {
            return;
        }
        self.nodes.remove(node_id);
        self.node_usage.remove(node_id);
        self.delete_node_services(index, node_id);
        self.indexes.nodes = index;
        effects.event(|| Event {
            topic: Topic::Node,
            event_type: "NodeDeregistration".into(),
            key: node.id.to_string(),
            namespace: String::new(),
            index,
            payload: EventPayload::Node(node.clone()),
        });
    }

    pub(super) fn apply_node_register(
        &mut self,
        index: u64,
        node: &Arc<Node>,
        effects: &mut ApplyEffects,
    ) {
        let mut node = (**node).clone();
        match self.nodes.get(&node.id) {
            Some(existing) => {
                node.create_index = existing.create_index;
                // Operator decisions survive a client's re-registration.
                node.drain_strategy = existing.drain_strategy.clone();
                node.drain = existing.drain;
                node.scheduling_eligibility = existing.scheduling_eligibility;
            }
            None => node.create_index = index,
        }
        node.modify_index = index;
        if node.status == NodeStatus::Ready {
            effects.capacity_changed = true;
        }
        self.ensure_node_pool(index, &node.node_pool);
        self.store_node(index, Arc::new(node), "NodeRegistration", effects);
    }

    fn store_node(
        &mut self,
        index: u64,
        node: Arc<Node>,
        event_type: &'static str,
        effects: &mut ApplyEffects,
    ) {
        self.nodes.insert(node.id.clone(), node.clone());
        self.indexes.nodes = index;
        effects.nodes.push(node.clone());
        effects.event(|| Event {
            topic: Topic::Node,
            event_type: event_type.into(),
            key: node.id.to_string(),
            namespace: String::new(),
            index,
            payload: EventPayload::Node(node.clone()),
        });
    }

    fn node_for_update(&self, node_id: &NodeId) -> Result<Node, ApplyError> {
        self.nodes
            .get(node_id)
            .map(|node| (**node).clone())
            .ok_or_else(|| ApplyError::not_found(ObjectKind::Node, node_id))
    }

    pub(super) fn apply_node_update_status(
        &mut self,
        index: u64,
        node_id: &NodeId,
        status: NodeStatus,
        updated_at: i64,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        let mut node = self.node_for_update(node_id)?;
        if node.status != NodeStatus::Ready && status == NodeStatus::Ready {
            effects.capacity_changed = true;
        }
        if status == NodeStatus::Down {
            self.delete_node_services(index, node_id);
        }
        node.status = status;
        node.status_updated_at = updated_at;
        node.modify_index = index;
        self.store_node(index, Arc::new(node), "NodeEvent", effects);
        Ok(())
    }

    pub(super) fn apply_node_update_eligibility(
        &mut self,
        index: u64,
        node_id: &NodeId,
        eligibility: SchedulingEligibility,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        let mut node = self.node_for_update(node_id)?;
        if node.drain_strategy.is_some() && eligibility == SchedulingEligibility::Eligible {
            return Err(ApplyError::NodeDraining {
                node_id: node_id.clone(),
            });
        }
        if eligibility == SchedulingEligibility::Eligible {
            effects.capacity_changed = true;
        }
        node.scheduling_eligibility = eligibility;
        node.modify_index = index;
        self.store_node(index, Arc::new(node), "NodeEligibility", effects);
        Ok(())
    }

    pub(super) fn apply_node_update_drain(
        &mut self,
        index: u64,
        node_id: &NodeId,
        drain_strategy: Option<DrainStrategy>,
        mark_eligible: bool,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        let mut node = self.node_for_update(node_id)?;
        node.drain = drain_strategy.is_some();
        if drain_strategy.is_some() {
            node.scheduling_eligibility = SchedulingEligibility::Ineligible;
        } else if mark_eligible {
            node.scheduling_eligibility = SchedulingEligibility::Eligible;
            effects.capacity_changed = true;
        }
        node.drain_strategy = drain_strategy;
        node.modify_index = index;
        self.store_node(index, Arc::new(node), "NodeDrain", effects);
        Ok(())
    }
}
