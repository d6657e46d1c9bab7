//! The event stream's messages: `GET /v1/event/stream` (Nomad: `api/event_stream.go`).
//!
//! The stream is newline-delimited JSON, one [`EventsFrame`] a line: the events of one applied
//! write that match the requested topics, or an empty frame (`{}`) as a heartbeat. The servers'
//! state records its changes as these same [`Event`]s; payloads are the stored `Arc`s, serialised
//! only when a subscriber writes them out.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::structs::{Allocation, Deployment, Evaluation, Job, Node};

/// A topic of the event stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum EventPayload {
    Job(Arc<Job>),
    Allocation(Arc<Allocation>),
    Node(Arc<Node>),
    Evaluation(Arc<Evaluation>),
    Deployment(Arc<Deployment>),
}

/// One change (Nomad: `api.Event`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    pub topic: Topic,
    /// Nomad's event types: "JobRegistered", "AllocationUpdated", "NodeRegistration"...
    #[serde(rename = "Type")]
    pub event_type: Cow<'static, str>,
    /// The object's ID.
    pub key: String,
    pub namespace: String,
    pub index: u64,
    pub payload: EventPayload,
}

/// One line of the stream (Nomad: `api.Events`): empty for a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EventsFrame {
    #[serde(skip_serializing_if = "is_zero")]
    pub index: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
}

fn is_zero(index: &u64) -> bool {
    *index == 0
}

impl EventsFrame {
    /// A heartbeat frame carries no events.
    pub fn is_heartbeat(&self) -> bool {
        self.events.is_empty()
    }
}
