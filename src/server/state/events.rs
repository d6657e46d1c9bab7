//! Change events, as Nomad's event stream (`/v1/event/stream`) publishes them.
//!
//! Applying a command records what changed as [`Event`]s; the store publishes them on a broadcast
//! channel after the write. Payloads are the stored `Arc`s, serialised only when a subscriber
//! writes them out, so a store nobody listens to pays nothing but the `Arc` clone.

use std::sync::Arc;

use serde::Serialize;

use crate::structs::{Allocation, Deployment, Evaluation, Job, Node};

/// A topic of the event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Topic {
    Job,
    Allocation,
    Node,
    Evaluation,
    Deployment,
}

impl Topic {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Job" => Some(Self::Job),
            "Allocation" => Some(Self::Allocation),
            "Node" => Some(Self::Node),
            "Evaluation" => Some(Self::Evaluation),
            "Deployment" => Some(Self::Deployment),
            _ => None,
        }
    }
}

/// The changed object, under its type's name as Nomad's payloads are (`{"Job": {...}}`).
#[derive(Clone, Debug, Serialize)]
pub enum EventPayload {
    Job(Arc<Job>),
    Allocation(Arc<Allocation>),
    Node(Arc<Node>),
    Evaluation(Arc<Evaluation>),
    Deployment(Arc<Deployment>),
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub topic: Topic,
    /// Nomad's event types: "JobRegistered", "AllocationUpdated", "NodeRegistration"...
    #[serde(rename = "Type")]
    pub event_type: &'static str,
    /// The object's ID.
    pub key: String,
    pub namespace: String,
    pub index: u64,
    pub payload: EventPayload,
}

/// The events of one applied command.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventBatch {
    pub index: u64,
    pub events: Vec<Event>,
}
