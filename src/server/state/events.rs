//! Change events, as Nomad's event stream (`/v1/event/stream`) publishes them.
//!
//! Applying a command records what changed as [`Event`]s; the store publishes them on a broadcast
//! channel after the write. Payloads are the stored `Arc`s, serialised only when a subscriber
//! writes them out, so a store nobody listens to pays nothing but the `Arc` clone.

use serde::Serialize;

pub use crate::api::types::events::{Event, EventPayload, Topic};

/// The events of one applied command.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventBatch {
    pub index: u64,
    pub events: Vec<Event>,
}
