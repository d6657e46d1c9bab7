//! `/v1/event/stream`: Nomad's event stream, newline-delimited JSON.
//!
//! Each line is `{"Index": N, "Events": [...]}` with the events of one applied write that match the
//! requested topics (`?topic=Job:example&topic=Allocation:*`; none means every topic), or `{}` as a
//! heartbeat at once and every 10 s. Events before the request are not replayed.
//!
//! Nomad: `command/agent/event_endpoint.go`, `nomad/stream/`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::broadcast::error::RecvError;

use crate::acl::Acl;
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::api::types::events::EventsFrame;
use crate::server::Server;
use crate::server::state::{Event, EventBatch, Topic};

/// Requested topics and keys; an empty filter lets everything through.
#[derive(Debug, Default)]
struct TopicFilter {
    topics: HashMap<Topic, HashSet<String>>,
    all: bool,
    /// What the caller may read: node events need `node:read`, the others `read-job` in their
    /// namespace (Nomad: `nomad/stream` ACL filtering).
    acl: Option<Arc<Acl>>,
}

impl TopicFilter {
    fn parse(raw_query: Option<&str>) -> Result<Self, ApiError> {
        let mut filter = Self::default();
        for pair in raw_query.unwrap_or_default().split('&') {
            let Some(("topic", value)) = pair.split_once('=') else {
                continue;
            };
            let value = value
                .replace("%3A", ":")
                .replace("%3a", ":")
                .replace("%2A", "*");
            let (topic, key) = value.split_once(':').unwrap_or((&value, "*"));
            if topic == "*" {
                filter.all = true;
                continue;
            }
            let topic = Topic::parse(topic)
                .ok_or_else(|| ApiError::BadRequest(format!("invalid topic {topic:?}")))?;
            filter
                .topics
                .entry(topic)
                .or_default()
                .insert(key.to_owned());
        }
        if filter.topics.is_empty() {
            filter.all = true;
        }
        Ok(filter)
    }

    fn matches(&self, event: &Event) -> bool {
        if let Some(acl) = &self.acl {
            let readable = match event.topic {
                Topic::Node => acl.allow_node_read(),
                _ => acl.allow_namespace_op(&event.namespace, "read-job"),
            };
            if !readable {
                return false;
            }
        }
        if self.all {
            return true;
        }
        self.topics
            .get(&event.topic)
            .is_some_and(|keys| keys.contains("*") || keys.contains(&event.key))
    }
}

fn line(batch: &EventBatch, filter: &TopicFilter) -> Option<bytes::Bytes> {
    let frame = EventsFrame {
        index: batch.index,
        events: batch
            .events
            .iter()
            .filter(|event| filter.matches(event))
            .cloned()
            .collect(),
    };
    if frame.is_heartbeat() {
        return None;
    }
    Some(frame_bytes(&frame))
}

/// One frame as a line of the stream.
fn frame_bytes(frame: &EventsFrame) -> bytes::Bytes {
    let mut bytes = serde_json::to_vec(frame).expect("an events frame always serialises");
    bytes.push(b'\n');
    bytes::Bytes::from(bytes)
}

pub async fn stream(
    State(server): State<Arc<Server>>,
    axum::Extension(identity): axum::Extension<Identity>,
    RawQuery(raw_query): RawQuery,
) -> Result<Response, ApiError> {
    let mut filter = TopicFilter::parse(raw_query.as_deref())?;
    filter.acl = Some(identity.acl);
    let filter = Arc::new(filter);
    let receiver = server.store.subscribe_events();
    let events = futures::stream::unfold(receiver, move |mut receiver| {
        let filter = filter.clone();
        async move {
            loop {
                match tokio::time::timeout(Duration::from_secs(10), receiver.recv()).await {
                    Err(_) => {
                        let heartbeat = frame_bytes(&EventsFrame::default());
                        return Some((Ok::<_, std::io::Error>(heartbeat), receiver));
                    }
                    Ok(Ok(batch)) => {
                        if let Some(line) = line(&batch, &filter) {
                            return Some((Ok(line), receiver));
                        }
                    }
                    // A slow reader skips what it missed rather than ending the stream.
                    Ok(Err(RecvError::Lagged(_))) => {}
                    Ok(Err(RecvError::Closed)) => return None,
                }
            }
        }
    });
    // A heartbeat first: it sends the response head at once, so a client's request returns
    // before the first event.
    let events = futures::stream::once(async {
        Ok::<_, std::io::Error>(frame_bytes(&EventsFrame::default()))
    })
    .chain(events)
    .boxed();
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(events),
    )
        .into_response())
}
