//! The client's HTTP routes, `/v1/client/...`, as an `axum::Router` the agent mounts into its
//! HTTP server (Nomad: `command/agent/fs_endpoint.go`, `alloc_endpoint.go`, `stats_endpoint.go`).
//!
//! - `GET /v1/client/fs/logs/{alloc}?task=&type=stdout|stderr&origin=start|end&offset=&follow=&plain=`:
//!   plain bytes with `plain=true`, else Nomad's frames `{"Offset","Data"(base64),"File"}`, one JSON
//!   object per line. `follow=true` keeps streaming until the task is dead.
//! - `GET /v1/client/fs/ls/{alloc}?path=`, `cat`, `stat`: files under the allocation dir.
//! - `GET /v1/client/allocation/{id}/exec?task=&command=["cmd","arg"]` (websocket): runs the
//!   command in the task's context through the driver's `exec-task` and answers with Nomad's
//!   frames `{"stdout":{"data":b64}}`, `{"stderr":{"data":b64}}`, then
//!   `{"exited":true,"result":{"exit_code":N}}`. The driver contract runs a command to completion,
//!   so stdin and TTYs are not supported yet.
//! - `PUT|POST /v1/client/allocation/{id}/restart` `{"TaskName","AllTasks"}`, `.../signal`
//!   `{"Task","Signal"}`, `GET .../stats`; `GET /v1/client/stats` the host's usage.
//! - `GET /v1/client/allocation/{id}/checks`: the latest result of each native service check,
//!   by check ID (Nomad's `CheckQueryResult`).
//!
//! - `GET /v1/client/fs/readat/{alloc}?path=&offset=&limit=`: a byte range of a file.
//!
//! Log files are read in index order (`logs_hook::log_indexes`), oldest first: the stream is
//! the concatenation of `<task>.<type>.0 .1 ... .N` that the collector kept.
//!
//! **Invariant:** every file served is reached through `crate::allocfs` beneath the
//! allocation's directory: a symbolic link a task planted is listed as a link and never
//! followed, and only regular files are read.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc;

use crate::allocfs::{AllocFsError, FileKind, Metadata, OpenOptions, RelPath, Root};
use crate::client::Shared;
use crate::client::alloc_runner::AllocRunnerHandle;
use crate::client::task_runner::{TaskCommand, logs_hook};
use crate::structs::TaskStateValue;

/// How often a followed log is checked for growth.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Largest frame payload.
const FRAME_BYTES: usize = 64 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/client/fs/logs/{alloc}", get(logs))
        .route("/v1/client/fs/ls/{alloc}", get(ls))
        .route("/v1/client/fs/cat/{alloc}", get(cat))
        .route("/v1/client/fs/stat/{alloc}", get(stat))
        .route("/v1/client/fs/readat/{alloc}", get(readat))
        .route("/v1/client/allocation/{alloc}/restart", any(restart))
        .route("/v1/client/allocation/{alloc}/signal", any(signal))
        .route("/v1/client/allocation/{alloc}/stats", get(alloc_stats))
        .route("/v1/client/allocation/{alloc}/checks", get(alloc_checks))
        .route("/v1/client/allocation/{alloc}/exec", get(exec))
        .route("/v1/client/stats", get(host_stats))
        .with_state(shared)
}

type Params = Query<HashMap<String, String>>;

/// An error answer: a status and a plain-text message, as Nomad's HTTP API gives them.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, self.1).into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError(status, message.into())
}

fn runner_of(shared: &Shared, alloc_id: &str) -> Result<AllocRunnerHandle, ApiError> {
    shared.runner(alloc_id).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            format!("unknown allocation {alloc_id:?}"),
        )
    })
}

/// A boolean query parameter as Go's `strconv.ParseBool` reads it (python-nomad sends `True`).
fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .and_then(|value| crate::api::query::parse_bool(value))
        .unwrap_or(false)
}

/// The allocation's root and the `path` parameter beneath it. Every fs route then acts through
/// [`crate::allocfs`], so a link a task planted is reported as a link, never followed.
fn path_param(
    runner: &AllocRunnerHandle,
    params: &HashMap<String, String>,
) -> Result<(Root, RelPath), ApiError> {
    let relative = params.get("path").map(String::as_str).unwrap_or("/");
    let root = runner.alloc_dir().open_root().map_err(|err| {
        error(
            StatusCode::NOT_FOUND,
            format!("allocation directory: {err}"),
        )
    })?;
    let path = root.rel_rooted(relative).map_err(|_| {
        error(
            StatusCode::BAD_REQUEST,
            format!("path {relative:?} escapes the allocation directory"),
        )
    })?;
    Ok((root, path))
}

/// The status an allocfs error answers with.
fn fs_error(err: AllocFsError) -> ApiError {
    let status = match &err {
        AllocFsError::NotFound { .. } => StatusCode::NOT_FOUND,
        AllocFsError::Escapes { .. }
        | AllocFsError::Symlink { .. }
        | AllocFsError::NotRegular { .. }
        | AllocFsError::NotADirectory { .. }
        | AllocFsError::IsRoot { .. }
        | AllocFsError::TooLarge { .. } => StatusCode::BAD_REQUEST,
        AllocFsError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, err.to_string())
}

/// Runs a blocking file operation off the async threads.
async fn blocking<T: Send + 'static>(
    operation: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(operation)
        .await
        .map_err(|err| error(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?
}

fn file_info(metadata: &Metadata, name: String) -> serde_json::Value {
    let mod_time = humantime::format_rfc3339_nanos(metadata.modified).to_string();
    json!({
        "Name": name,
        "IsDir": metadata.is_dir(),
        "Size": metadata.len,
        "FileMode": format_mode(metadata.mode, metadata.kind),
        "ModTime": mod_time,
        "ContentType": if metadata.is_dir() { "" } else { "application/octet-stream" },
    })
}

fn format_mode(mode: u32, kind: FileKind) -> String {
    let mut text = String::from(match kind {
        FileKind::Dir => "d",
        FileKind::Symlink => "L",
        FileKind::File => "-",
        FileKind::Other => "?",
    });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    text
}

/// Largest file `cat` answers with; `readat` reads any range of a larger one.
const MAX_CAT_BYTES: u64 = 64 << 20;

async fn ls(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Response {
    let result = async {
        let runner = runner_of(&shared, &alloc)?;
        let (root, path) = path_param(&runner, &params)?;
        let entries = blocking(move || root.list(&path).map_err(fs_error)).await?;
        let infos: Vec<_> = entries
            .iter()
            .map(|entry| file_info(&entry.metadata, entry.name.to_string_lossy().into_owned()))
            .collect();
        Ok::<_, ApiError>(Json(infos).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn stat(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Response {
    let result = async {
        let runner = runner_of(&shared, &alloc)?;
        let (root, path) = path_param(&runner, &params)?;
        let name = path
            .names()
            .last()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_owned());
        let metadata = blocking(move || root.metadata(&path).map_err(fs_error)).await?;
        Ok::<_, ApiError>(Json(file_info(&metadata, name)).into_response())
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

async fn cat(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Response {
    let result = async {
        let runner = runner_of(&shared, &alloc)?;
        let (root, path) = path_param(&runner, &params)?;
        let bytes = blocking(move || {
            if root.metadata(&path).map_err(fs_error)?.is_dir() {
                return Err(error(StatusCode::BAD_REQUEST, "path is a directory"));
            }
            root.read(&path, MAX_CAT_BYTES).map_err(fs_error)
        })
        .await?;
        Ok::<_, ApiError>(
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        )
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// `GET /v1/client/fs/readat/{alloc}?path=&offset=&limit=`: a byte range of a file.
async fn readat(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Response {
    let result = async {
        let runner = runner_of(&shared, &alloc)?;
        let (root, path) = path_param(&runner, &params)?;
        let number = |name: &str, default: u64| match params.get(name) {
            None => Ok(default),
            Some(text) => text.parse::<u64>().map_err(|_| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("{name} must be a non-negative integer"),
                )
            }),
        };
        let offset = number("offset", 0)?;
        let limit = number("limit", MAX_CAT_BYTES)?.min(MAX_CAT_BYTES);
        let bytes =
            blocking(move || read_range(&root, &path, offset, limit).map_err(fs_error)).await?;
        Ok::<_, ApiError>(
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        )
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

/// Up to `limit` bytes of the regular file at `path` from `offset`.
fn read_range(
    root: &Root,
    path: &RelPath,
    offset: u64,
    limit: u64,
) -> Result<Vec<u8>, AllocFsError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |source| AllocFsError::Io {
        path: path.to_string(),
        root: root.path().to_path_buf(),
        source,
    };
    let mut file = root.open_file(path, OpenOptions::read())?;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut data = Vec::new();
    file.take(limit).read_to_end(&mut data).map_err(io)?;
    Ok(data)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct RestartRequest {
    task_name: String,
    all_tasks: bool,
}

async fn restart(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    body: Bytes,
) -> Response {
    // A body that does not decode acts on nothing (strict: no defaults for a bad body).
    let request: RestartRequest = match crate::api::decode::decode_json(&body) {
        Ok(request) => request,
        Err(decode_error) => {
            return error(StatusCode::BAD_REQUEST, decode_error.to_string()).into_response();
        }
    };
    let runner = match runner_of(&shared, &alloc) {
        Ok(runner) => runner,
        Err(response) => return response.into_response(),
    };
    let mut restarted = 0;
    for (name, task) in runner.tasks() {
        let selected = if request.task_name.is_empty() {
            request.all_tasks || task.state().state == TaskStateValue::Running
        } else {
            *name == request.task_name
        };
        if selected {
            task.send(TaskCommand::Restart { reason: None });
            restarted += 1;
        }
    }
    if restarted == 0 {
        return error(
            StatusCode::NOT_FOUND,
            format!("task {:?} not found", request.task_name),
        )
        .into_response();
    }
    Json(json!({})).into_response()
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct SignalRequest {
    task: String,
    signal: String,
}

async fn signal(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    body: Bytes,
) -> Response {
    let request: SignalRequest = match crate::api::decode::decode_json(&body) {
        Ok(request) => request,
        Err(decode_error) => {
            return error(StatusCode::BAD_REQUEST, decode_error.to_string()).into_response();
        }
    };
    let runner = match runner_of(&shared, &alloc) {
        Ok(runner) => runner,
        Err(response) => return response.into_response(),
    };
    let signal = if request.signal.is_empty() {
        "SIGKILL".to_owned()
    } else {
        request.signal
    };
    let mut signalled = 0;
    for (name, task) in runner.tasks() {
        if request.task.is_empty() || *name == request.task {
            task.send(TaskCommand::Signal {
                signal: signal.clone(),
            });
            signalled += 1;
        }
    }
    if signalled == 0 {
        return error(
            StatusCode::NOT_FOUND,
            format!("task {:?} not found", request.task),
        )
        .into_response();
    }
    Json(json!({})).into_response()
}

/// The latest result of each of the allocation's service checks, by check ID (Nomad:
/// `/v1/client/allocation/:id/checks`).
async fn alloc_checks(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
) -> Response {
    match runner_of(&shared, &alloc) {
        Ok(runner) => Json(runner.check_results()).into_response(),
        Err(response) => response.into_response(),
    }
}

async fn alloc_stats(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
) -> Response {
    let runner = match runner_of(&shared, &alloc) {
        Ok(runner) => runner,
        Err(response) => return response.into_response(),
    };
    let mut tasks = serde_json::Map::new();
    let (mut total_rss, mut total_user, mut total_system) = (0u64, 0u64, 0u64);
    let now = crate::client::task_runner::events::now_nanos();
    for (name, task) in runner.tasks() {
        let Some((driver, handle, scope)) = task.running() else {
            continue;
        };
        if let Ok(stats) = driver.task_stats(&scope, &handle).await {
            total_rss += stats.memory_rss_bytes;
            total_user += stats.cpu_user_ms;
            total_system += stats.cpu_system_ms;
            tasks.insert(name.clone(), json!({
                "ResourceUsage": {
                    "MemoryStats": { "RSS": stats.memory_rss_bytes, "Measured": ["RSS"] },
                    "CpuStats": {
                        "UserMode": stats.cpu_user_ms as f64 * 1e6,
                        "SystemMode": stats.cpu_system_ms as f64 * 1e6,
                        "TotalTicks": (stats.cpu_user_ms + stats.cpu_system_ms) as f64,
                        "Measured": ["User Mode", "System Mode"],
                    },
                },
                "Timestamp": stats.timestamp_ms as i64 * 1_000_000,
                "Pids": stats.pids.iter().map(|pid| (pid.to_string(), json!({}))).collect::<serde_json::Map<_, _>>(),
            }));
        }
    }
    Json(json!({
        "ResourceUsage": {
            "MemoryStats": { "RSS": total_rss, "Measured": ["RSS"] },
            "CpuStats": {
                "UserMode": total_user as f64 * 1e6,
                "SystemMode": total_system as f64 * 1e6,
                "TotalTicks": (total_user + total_system) as f64,
                "Measured": ["User Mode", "System Mode"],
            },
        },
        "Tasks": tasks,
        "Timestamp": now,
    }))
    .into_response()
}

async fn host_stats(State(shared): State<Arc<Shared>>) -> Response {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> u64 {
        meminfo
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let total = field("MemTotal:");
    let available = field("MemAvailable:");
    let free = field("MemFree:");
    let uptime = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|text| {
            text.split_whitespace()
                .next()
                .and_then(|secs| secs.parse::<f64>().ok())
        })
        .unwrap_or(0.0) as u64;
    let (disk_total, disk_free) = match nix::sys::statvfs::statvfs(&shared.data_dir) {
        // The statvfs field types differ across platforms.
        #[allow(clippy::unnecessary_cast)]
        Ok(stat) => {
            let fragment = stat.fragment_size() as u64;
            (
                stat.blocks() as u64 * fragment,
                stat.blocks_available() as u64 * fragment,
            )
        }
        Err(_) => (0, 0),
    };
    let used = disk_total.saturating_sub(disk_free);
    Json(json!({
        "Memory": { "Total": total, "Available": available, "Used": total.saturating_sub(available), "Free": free },
        "Uptime": uptime,
        "Timestamp": crate::client::task_runner::events::now_nanos(),
        "AllocDirStats": {
            "Device": "", "Mountpoint": shared.data_dir.display().to_string(),
            "Size": disk_total, "Used": used, "Available": disk_free,
            "UsedPercent": if disk_total > 0 { used as f64 * 100.0 / disk_total as f64 } else { 0.0 },
        },
        "ClientUptime": shared.started.elapsed().as_secs(),
    }))
    .into_response()
}

/// Longest an exec'd command may run.
const EXEC_TIMEOUT: Duration = Duration::from_secs(3600);

async fn exec(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Response {
    let runner = match runner_of(&shared, &alloc) {
        Ok(runner) => runner,
        Err(response) => return response.into_response(),
    };
    let task_name = match params.get("task") {
        Some(task) => task.clone(),
        None if runner.tasks().len() == 1 => {
            runner.tasks().keys().next().cloned().unwrap_or_default()
        }
        None => return error(StatusCode::BAD_REQUEST, "must provide task name").into_response(),
    };
    let command: Vec<String> = match params
        .get("command")
        .map(|command| serde_json::from_str::<Vec<String>>(command))
    {
        Some(Ok(command)) if !command.is_empty() => command,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "command must be a non-empty JSON array of strings",
            )
            .into_response();
        }
    };
    let Some(task) = runner.tasks().get(&task_name) else {
        return error(StatusCode::NOT_FOUND, format!("unknown task {task_name:?}")).into_response();
    };
    let Some((driver, handle, scope)) = task.running() else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("task {task_name:?} is not running"),
        )
        .into_response();
    };
    if !driver.info().capabilities.exec {
        return error(
            StatusCode::BAD_REQUEST,
            format!("driver {:?} does not support exec", driver.name()),
        )
        .into_response();
    }
    upgrade.on_upgrade(move |mut socket| async move {
        use axum::extract::ws::Message;
        let frames = match driver
            .exec_task(&scope, &handle, &command, EXEC_TIMEOUT)
            .await
        {
            Ok(result) => {
                let mut frames = Vec::new();
                if !result.stdout.is_empty() {
                    frames.push(json!({ "stdout": { "data": base64_encode(&result.stdout) } }));
                }
                if !result.stderr.is_empty() {
                    frames.push(json!({ "stderr": { "data": base64_encode(&result.stderr) } }));
                }
                frames.push(json!({ "exited": true, "result": { "exit_code": result.exit_code } }));
                frames
            }
            Err(err) => vec![
                json!({ "stderr": { "data": base64_encode(format!("{err}\n").as_bytes()) } }),
                json!({ "exited": true, "result": { "exit_code": 1 } }),
            ],
        };
        for frame in frames {
            if socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                return;
            }
        }
        let _ = socket.send(Message::Close(None)).await;
    })
}

/// Base64 (standard alphabet, padded), as Go's `[]byte` JSON encoding.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::prelude::BASE64_STANDARD.encode(bytes)
}

/// One piece of a log stream.
struct Chunk {
    file: String,
    offset: u64,
    data: Vec<u8>,
}

fn encode_chunk(chunk: &Chunk, plain: bool) -> Bytes {
    if plain {
        return Bytes::from(chunk.data.clone());
    }
    let frame = json!({
        "Offset": chunk.offset + chunk.data.len() as u64,
        "Data": base64_encode(&chunk.data),
        "File": chunk.file,
        "FileEvent": "",
    });
    let mut text = frame.to_string();
    text.push('\n');
    Bytes::from(text)
}

async fn logs(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Response {
    let runner = match runner_of(&shared, &alloc) {
        Ok(runner) => runner,
        Err(response) => return response.into_response(),
    };
    let task = match params.get("task").cloned() {
        Some(task) => task,
        None if runner.tasks().len() == 1 => {
            runner.tasks().keys().next().cloned().unwrap_or_default()
        }
        None => return error(StatusCode::BAD_REQUEST, "must provide task name").into_response(),
    };
    let Some(task_handle) = runner.tasks().get(&task).cloned() else {
        return error(StatusCode::NOT_FOUND, format!("unknown task {task:?}")).into_response();
    };
    let stream_type = params
        .get("type")
        .cloned()
        .unwrap_or_else(|| "stdout".to_owned());
    if stream_type != "stdout" && stream_type != "stderr" {
        return error(
            StatusCode::BAD_REQUEST,
            format!("invalid log type {stream_type:?}: expected stdout or stderr"),
        )
        .into_response();
    }
    let origin_end = match params.get("origin").map(String::as_str) {
        None | Some("start") => false,
        Some("end") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("invalid origin {other:?}: expected start or end"),
            )
            .into_response();
        }
    };
    let offset: u64 = match params.get("offset").map(|text| text.parse::<u64>()) {
        None => 0,
        Some(Ok(offset)) => offset,
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "offset must be a non-negative integer",
            )
            .into_response();
        }
    };
    let follow = flag(&params, "follow");
    let plain = flag(&params, "plain");
    let logs = match logs_hook::open_logs_dir(runner.alloc_dir()) {
        Ok(logs) => logs,
        Err(err) => {
            return error(StatusCode::NOT_FOUND, format!("no logs: {err}")).into_response();
        }
    };
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
    let content_type = if plain {
        "text/plain; charset=utf-8"
    } else {
        "application/json"
    };
    (
        [(header::CONTENT_TYPE, content_type)],
        Body::from_stream(stream),
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
fn stream_logs(
    request: &LogRequest,
    task_handle: &crate::client::task_runner::TaskRunnerHandle,
    sender: &mpsc::Sender<Bytes>,
) {
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
                let chunk = Chunk {
                    file: format!("alloc/logs/{name}"),
                    offset: position + (piece_idx * FRAME_BYTES) as u64,
                    data: piece.to_vec(),
                };
                if sender
                    .blocking_send(encode_chunk(&chunk, request.plain))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"hello\n"), "aGVsbG8K");
    }

    #[test]
    fn file_modes_read_like_ls() {
        assert_eq!(format_mode(0o755, FileKind::Dir), "drwxr-xr-x");
        assert_eq!(format_mode(0o640, FileKind::File), "-rw-r-----");
        assert_eq!(format_mode(0o777, FileKind::Symlink), "Lrwxrwxrwx");
    }
}
