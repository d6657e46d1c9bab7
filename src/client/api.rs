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
//!
//! Rotated log files are read oldest first (`logs_hook::log_files`): the stream is the
//! concatenation of `<task>.<type>.N ... .1 .0`.
//!
//! **Invariant:** every file served resolves inside the allocation's directory.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
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
        .route("/v1/client/allocation/{alloc}/restart", any(restart))
        .route("/v1/client/allocation/{alloc}/signal", any(signal))
        .route("/v1/client/allocation/{alloc}/stats", get(alloc_stats))
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

fn flag(params: &HashMap<String, String>, name: &str) -> bool {
    params
        .get(name)
        .is_some_and(|value| value == "true" || value == "1")
}

fn path_param(
    runner: &AllocRunnerHandle,
    params: &HashMap<String, String>,
) -> Result<PathBuf, ApiError> {
    let relative = params.get("path").map(String::as_str).unwrap_or("/");
    let escapes = || {
        error(
            StatusCode::BAD_REQUEST,
            format!("path {relative:?} escapes the allocation directory"),
        )
    };
    let path = runner.alloc_dir().resolve(relative).ok_or_else(escapes)?;
    // A task can plant symlinks in its directories: what they point to must stay inside too.
    if let (Ok(real), Ok(root)) = (
        std::fs::canonicalize(&path),
        std::fs::canonicalize(runner.alloc_dir().root()),
    ) && !real.starts_with(&root)
    {
        return Err(escapes());
    }
    Ok(path)
}

fn file_info(path: &Path, name: String) -> std::io::Result<serde_json::Value> {
    let metadata = std::fs::metadata(path)?;
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode();
    let mod_time = metadata
        .modified()
        .map(|time| humantime::format_rfc3339_nanos(time).to_string())
        .unwrap_or_default();
    Ok(json!({
        "Name": name,
        "IsDir": metadata.is_dir(),
        "Size": metadata.len(),
        "FileMode": format_mode(mode, metadata.is_dir()),
        "ModTime": mod_time,
        "ContentType": if metadata.is_dir() { "" } else { "application/octet-stream" },
    }))
}

fn format_mode(mode: u32, is_dir: bool) -> String {
    let mut text = String::from(if is_dir { "d" } else { "-" });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        text.push(if bits & 4 != 0 { 'r' } else { '-' });
        text.push(if bits & 2 != 0 { 'w' } else { '-' });
        text.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    text
}

async fn ls(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Response {
    let result = (|| {
        let runner = runner_of(&shared, &alloc)?;
        let dir = path_param(&runner, &params)?;
        let entries =
            std::fs::read_dir(&dir).map_err(|err| error(StatusCode::NOT_FOUND, err.to_string()))?;
        let mut infos = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(info) = file_info(&entry.path(), name) {
                infos.push(info);
            }
        }
        infos.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
        Ok::<_, ApiError>(Json(infos).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn stat(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Response {
    let result = (|| {
        let runner = runner_of(&shared, &alloc)?;
        let path = path_param(&runner, &params)?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".to_owned());
        let info =
            file_info(&path, name).map_err(|err| error(StatusCode::NOT_FOUND, err.to_string()))?;
        Ok::<_, ApiError>(Json(info).into_response())
    })();
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn cat(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
) -> Response {
    let result = (|| {
        let runner = runner_of(&shared, &alloc)?;
        let path = path_param(&runner, &params)?;
        if path.is_dir() {
            return Err(error(StatusCode::BAD_REQUEST, "path is a directory"));
        }
        let bytes =
            std::fs::read(&path).map_err(|err| error(StatusCode::NOT_FOUND, err.to_string()))?;
        Ok::<_, ApiError>(
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response(),
        )
    })();
    result.unwrap_or_else(IntoResponse::into_response)
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
    let request: RestartRequest = serde_json::from_slice(&body).unwrap_or_default();
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
            task.send(TaskCommand::Restart);
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
    let request: SignalRequest = serde_json::from_slice(&body).unwrap_or_default();
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
pub fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(ALPHABET[(n >> 18) as usize & 63] as char);
        out.push(ALPHABET[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            ALPHABET[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            ALPHABET[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
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
    let logs_dir = runner.alloc_dir().logs_dir();
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    tokio::spawn(async move {
        let files = logs_hook::log_files(&logs_dir, &task, &stream_type);
        let mut contents: Vec<(String, Vec<u8>)> = files
            .iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (
                    format!("alloc/logs/{name}"),
                    std::fs::read(path).unwrap_or_default(),
                )
            })
            .collect();
        let total: u64 = contents.iter().map(|(_, data)| data.len() as u64).sum();
        let mut skip = if origin_end {
            total.saturating_sub(offset)
        } else {
            offset.min(total)
        };
        let live_name = format!("alloc/logs/{task}.{stream_type}.0");
        let mut live_position = contents
            .iter()
            .find(|(name, _)| *name == live_name)
            .map(|(_, data)| data.len() as u64)
            .unwrap_or(0);
        for (name, data) in contents.drain(..) {
            let len = data.len() as u64;
            if skip >= len {
                skip -= len;
                continue;
            }
            let start = usize::try_from(skip).unwrap_or(0);
            skip = 0;
            for (piece_idx, piece) in data[start..].chunks(FRAME_BYTES).enumerate() {
                let chunk = Chunk {
                    file: name.clone(),
                    offset: (start + piece_idx * FRAME_BYTES) as u64,
                    data: piece.to_vec(),
                };
                if sender.send(encode_chunk(&chunk, plain)).await.is_err() {
                    return;
                }
            }
        }
        if !follow {
            return;
        }
        let live_path = logs_hook::live_path(&logs_dir, &task, &stream_type);
        let rotated_path = logs_dir.join(format!("{task}.{stream_type}.1"));
        loop {
            let task_dead = task_handle.state().state == TaskStateValue::Dead;
            let size = std::fs::metadata(&live_path)
                .map(|metadata| metadata.len())
                .unwrap_or(0);
            if size < live_position {
                // Rotated: the rest of what we were reading is now at the end of `.1`.
                if let Ok(rotated) = std::fs::read(&rotated_path)
                    && (rotated.len() as u64) > live_position
                {
                    let start = usize::try_from(live_position).unwrap_or(0);
                    let chunk = Chunk {
                        file: format!("alloc/logs/{task}.{stream_type}.1"),
                        offset: live_position,
                        data: rotated[start..].to_vec(),
                    };
                    if sender.send(encode_chunk(&chunk, plain)).await.is_err() {
                        return;
                    }
                }
                live_position = 0;
            }
            if size > live_position
                && let Ok(data) = read_from(&live_path, live_position)
                && !data.is_empty()
            {
                let chunk = Chunk {
                    file: live_name.clone(),
                    offset: live_position,
                    data,
                };
                live_position += chunk.data.len() as u64;
                if sender.send(encode_chunk(&chunk, plain)).await.is_err() {
                    return;
                }
                continue;
            }
            if task_dead {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(FOLLOW_POLL) => {}
                () = sender.closed() => return,
            }
        }
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

fn read_from(path: &Path, position: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(position))?;
    let mut data = Vec::new();
    file.take(4 * FRAME_BYTES as u64).read_to_end(&mut data)?;
    Ok(data)
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
        assert_eq!(format_mode(0o755, true), "drwxr-xr-x");
        assert_eq!(format_mode(0o640, false), "-rw-r-----");
    }
}
