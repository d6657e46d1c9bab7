//! Acting on an allocation's tasks: `PUT|POST /v1/client/allocation/{id}/restart` and
//! `.../signal`, `GET .../checks`, and `GET .../exec` over a WebSocket (Nomad: `command/agent/alloc_endpoint.go`).
//!
//! `exec` runs the command in the task's context through the driver's `exec-task` and answers
//! with Nomad's [`ExecStreamingOutput`] frames: stdout, stderr, then `exited` with the result.
//! The driver contract runs a command to completion, so stdin and TTYs are not supported yet.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path as UrlPath, Query, State};
use axum::response::Response;
use bytes::Bytes;

use super::{Params, runner_of, task_name_of};
use crate::api::error::ApiError;
use crate::api::types::client::{
    AllocRestartRequest, AllocSignalRequest, CheckResults, EmptyResponse, ExecStreamingOutput,
};
use crate::client::Shared;
use crate::client::task_runner::TaskCommand;
use crate::structs::TaskStateValue;

/// Longest an exec'd command may run.
const EXEC_TIMEOUT: Duration = Duration::from_secs(3600);

/// Decodes a body strictly: a body that does not decode acts on nothing.
fn decode<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::api::decode::decode_json(body).map_err(|error| ApiError::BadRequest(error.to_string()))
}

pub(crate) async fn restart(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    body: Bytes,
) -> Result<Json<EmptyResponse>, ApiError> {
    let request: AllocRestartRequest = decode(&body)?;
    let runner = runner_of(&shared, &alloc)?;
    let mut restarted = 0;
    for (name, task) in runner.tasks() {
        let selected = if request.task_name.is_empty() {
            request.all_tasks || task.state().state == TaskStateValue::Running
        } else {
            *name == request.task_name
        };
        if selected {
            task.send(TaskCommand::Restart {
                reason: None,
                failure: false,
            });
            restarted += 1;
        }
    }
    if restarted == 0 {
        return Err(ApiError::NotFound(format!("task {:?}", request.task_name)));
    }
    Ok(Json(EmptyResponse {}))
}

pub(crate) async fn signal(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    body: Bytes,
) -> Result<Json<EmptyResponse>, ApiError> {
    let request: AllocSignalRequest = decode(&body)?;
    let runner = runner_of(&shared, &alloc)?;
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
                reason: None,
            });
            signalled += 1;
        }
    }
    if signalled == 0 {
        return Err(ApiError::NotFound(format!("task {:?}", request.task)));
    }
    Ok(Json(EmptyResponse {}))
}

/// The latest result of each of the allocation's service checks, by check ID (Nomad:
/// `/v1/client/allocation/:id/checks`).
pub(crate) async fn checks(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
) -> Result<Json<CheckResults>, ApiError> {
    Ok(Json(runner_of(&shared, &alloc)?.check_results()))
}

pub(crate) async fn exec(
    State(shared): State<Arc<Shared>>,
    UrlPath(alloc): UrlPath<String>,
    Query(params): Params,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let runner = runner_of(&shared, &alloc)?;
    let task_name = task_name_of(&runner, &params)?;
    let command: Vec<String> = match params
        .get("command")
        .map(|command| serde_json::from_str::<Vec<String>>(command))
    {
        Some(Ok(command)) if !command.is_empty() => command,
        _ => {
            return Err(ApiError::BadRequest(
                "command must be a non-empty JSON array of strings".to_owned(),
            ));
        }
    };
    let Some(task) = runner.tasks().get(&task_name) else {
        return Err(ApiError::NotFound(format!("task {task_name:?}")));
    };
    let Some((driver, handle, scope)) = task.running() else {
        return Err(ApiError::BadRequest(format!(
            "task {task_name:?} is not running"
        )));
    };
    if !driver.info().capabilities.exec {
        return Err(ApiError::BadRequest(format!(
            "driver {:?} does not support exec",
            driver.name()
        )));
    }
    Ok(upgrade.on_upgrade(move |mut socket| async move {
        use axum::extract::ws::Message;
        let frames = match driver
            .exec_task(&scope, &handle, &command, EXEC_TIMEOUT)
            .await
        {
            Ok(result) => {
                let mut frames = Vec::new();
                if !result.stdout.is_empty() {
                    frames.push(ExecStreamingOutput::stdout(result.stdout));
                }
                if !result.stderr.is_empty() {
                    frames.push(ExecStreamingOutput::stderr(result.stderr));
                }
                frames.push(ExecStreamingOutput::exited(result.exit_code));
                frames
            }
            Err(err) => vec![
                ExecStreamingOutput::stderr(format!("{err}\n").into_bytes()),
                ExecStreamingOutput::exited(1),
            ],
        };
        for frame in frames {
            let text = serde_json::to_string(&frame).expect("an exec frame always serialises");
            if socket.send(Message::Text(text.into())).await.is_err() {
                return;
            }
        }
        let _ = socket.send(Message::Close(None)).await;
    }))
}
