//! `GET /v1/client/fs/logs/{alloc}?task=&type=stdout|stderr&origin=start|end&offset=&follow=&plain=`
//! (Nomad: `command/agent/fs_endpoint.go` `Logs`): plain bytes with `plain=true`, else one
//! [`StreamFrame`] per line. `follow=true` keeps streaming until the task is dead.
//!
//! Log files are read in index order (`logs_hook::log_indexes`), oldest first: the stream is
//! the concatenation of `<task>.<type>.0 .1 ... .N` that the collector kept.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;

use super::fs::read_range;
use super::{Params, flag, number, runner_of, task_name_of};
use crate::allocfs::{RelPath, Root};
use crate::api::error::ApiError;
use crate::api::types::client::StreamFrame;
use crate::client::Shared;
use crate::client::task_runner::{TaskRunnerHandle, logs_hook};
use crate::structs::TaskStateValue;

/// How often a followed log is checked for growth.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Largest frame payload.
const FRAME_BYTES: usize = 64 * 1024;

/// One piece of a log stream, as a frame or, with `plain`, its bytes.
pub(crate) fn encode_chunk(frame: StreamFrame, plain: bool) -> Bytes {
    if plain {
        return Bytes::from(frame.data);
    }
    let mut text = serde_json::to_vec(&frame).expect("a stream frame always serialises");
    text.push(b'\n');
    Bytes::from(text)
}

pub(crate) async fn logs(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Result<Response, ApiError> {
    let runner = runner_of(&shared, &alloc)?;
    let task = task_name_of(&runner, &params)?;
    let Some(task_handle) = runner.tasks().get(&task).cloned() else {
        return Err(ApiError::NotFound(format!("task {task:?}")));
    };
    let stream_type = params
        .get("type")
        .cloned()
        .unwrap_or_else(|| "stdout".to_owned());
    if stream_type != "stdout" && stream_type != "stderr" {
        return Err(ApiError::BadRequest(format!(
            "invalid log type {stream_type:?}: expected stdout or stderr"
        )));
    }
    let origin_end = match params.get("origin").map(String::as_str) {
        None | Some("start") => false,
        Some("end") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "invalid origin {other:?}: expected start or end"
            )));
        }
    };
    let offset = number(&params, "offset", 0)?;
    let follow = flag(&params, "follow");
    let plain = flag(&params, "plain");
    let logs = logs_hook::open_logs_dir(runner.alloc_dir())
        .map_err(|err| ApiError::NotFound(format!("logs of allocation {alloc:?} ({err})")))?;
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    // The reading runs on a blocking thread: it reads files, and a follower waits for growth.
    tokio::task::spawn_blocking(move || {
        let request = LogRequest {
            logs,
            task,
            stream_type,
            origin_end,
            offset,
            follow,
            plain,
        };
        stream_logs(&request, &task_handle, &sender);
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(bytes), receiver))
    });
    Ok(stream_response(plain, stream))
}

/// A streamed answer of [`encode_chunk`]s: plain text, or JSON frames.
pub(crate) fn stream_response(
    plain: bool,
    chunks: impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) -> Response {
    let content_type = if plain {
        "text/plain; charset=utf-8"
    } else {
        "application/json"
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(chunks),
    )
        .into_response()
}

/// One `/v1/client/fs/logs` request, once checked.
struct LogRequest {
    logs: Root,
    task: String,
    stream_type: String,
    origin_end: bool,
    offset: u64,
    follow: bool,
    plain: bool,
}

/// Streams the task's log files in index order (oldest first), then, when following, what is
/// appended and each newer file as the collector rotates, until the task is dead. Only regular
/// files are read, through `allocfs`: a link planted under a log name is never followed.
fn stream_logs(request: &LogRequest, task_handle: &TaskRunnerHandle, sender: &mpsc::Sender<Bytes>) {
    let LogRequest {
        logs,
        task,
        stream_type,
        ..
    } = request;
    let file_len = |index: u64| {
        let name = logs_hook::file_name(task, stream_type, index);
        logs.metadata(&RelPath::root().join_name(std::ffi::OsStr::new(&name)))
            .ok()
            .filter(|metadata| metadata.is_file())
            .map(|metadata| metadata.len)
    };
    let indexes = logs_hook::log_indexes(logs, task, stream_type, true);
    let sizes: Vec<(u64, u64)> = indexes
        .iter()
        .filter_map(|index| Some((*index, file_len(*index)?)))
        .collect();
    let total: u64 = sizes.iter().map(|(_, len)| len).sum();
    let mut skip = if request.origin_end {
        total.saturating_sub(request.offset)
    } else {
        request.offset.min(total)
    };
    // Where reading starts: the first file not wholly skipped.
    let mut current = indexes.first().copied().unwrap_or(0);
    let mut position = 0u64;
    for (index, len) in &sizes {
        current = *index;
        if skip >= *len && Some(index) != sizes.last().map(|(last, _)| last) {
            skip -= len;
            continue;
        }
        position = skip.min(*len);
        break;
    }
    loop {
        // Everything currently in `current` from `position`.
        let name = logs_hook::file_name(task, stream_type, current);
        let path = RelPath::root().join_name(std::ffi::OsStr::new(&name));
        let data = read_range(logs, &path, position, 4 * FRAME_BYTES as u64).unwrap_or_default();
        if !data.is_empty() {
            for (piece_idx, piece) in data.chunks(FRAME_BYTES).enumerate() {
                let frame = StreamFrame {
                    offset: position + (piece_idx * FRAME_BYTES + piece.len()) as u64,
                    data: piece.to_vec(),
                    file: format!("alloc/logs/{name}"),
                    file_event: String::new(),
                };
                if sender
                    .blocking_send(encode_chunk(frame, request.plain))
                    .is_err()
                {
                    return;
                }
            }
            position += data.len() as u64;
            continue;
        }
        // `current` is read to its end: move on to the next newer file if there is one.
        let next = logs_hook::log_indexes(logs, task, stream_type, true)
            .into_iter()
            .find(|index| *index > current);
        if let Some(next) = next {
            current = next;
            position = 0;
            continue;
        }
        if !request.follow || task_handle.state().state == TaskStateValue::Dead {
            // One more look after death, so output written just before it is not missed.
            if request.follow && file_len(current).is_some_and(|len| len > position) {
                continue;
            }
            return;
        }
        if sender.is_closed() {
            return;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}
