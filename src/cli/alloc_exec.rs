//! `caravan alloc exec`: runs a command in a task through the client's exec websocket and
//! relays its output and exit code.
//!
//! The websocket (tokio-tungstenite) carries JSON frames from the agent (`{"stdout": {"data":
//! <base64>}}`, `{"stderr": ...}`, `{"exited": true, "result": {"exit_code": N}}`) until a close
//! frame. The agent does not read stdin yet, so `-i` sends nothing.
//!
//! Nomad: `command/alloc_exec.go`, `api/allocations_exec.go`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use futures::StreamExt;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message};

use super::AllocExecArgs;
use super::alloc_status::{read_alloc, task_names};
use super::block_on;
use crate::api::client::encode;

pub fn run(args: &AllocExecArgs) -> anyhow::Result<ExitCode> {
    let client = args.api.client()?;
    block_on(async {
        let alloc = read_alloc(&client, &args.alloc_id).await?;
        let tasks = task_names(&alloc);
        let task = match &args.task {
            Some(task) if tasks.contains(task) => task.clone(),
            Some(task) => anyhow::bail!("Could not find task named: {task}"),
            None if tasks.len() == 1 => tasks[0].clone(),
            None => anyhow::bail!(
                "Please specify the task with -task: allocation has tasks {}",
                tasks.join(", ")
            ),
        };
        let command = serde_json::to_string(&args.command)?;
        let path = format!(
            "/v1/client/allocation/{}/exec?task={}&command={}&tty={}",
            alloc.id,
            encode(&task),
            encode(&command),
            args.tty
        );
        let token = args.api.resolved_token();
        let tls = args.api.resolved_tls();
        let exit_code =
            exec_over_websocket(client.address(), &path, token.as_deref(), &tls).await?;
        Ok(ExitCode::from(u8::try_from(exit_code).unwrap_or(1)))
    })
}

/// Runs the exec stream at `path`, sending `token` in `X-Nomad-Token` as Nomad's API client does;
/// an `https://` agent is reached over `wss://` with the CLI's TLS settings.
async fn exec_over_websocket(
    address: &str,
    path: &str,
    token: Option<&str>,
    tls: &crate::tls::CliTls,
) -> anyhow::Result<i64> {
    let (scheme, host) = if let Some(host) = address.strip_prefix("http://") {
        ("ws", host)
    } else if let Some(host) = address.strip_prefix("https://") {
        ("wss", host)
    } else {
        anyhow::bail!("alloc exec needs an http:// or https:// agent address, not {address}");
    };
    let url = format!("{scheme}://{}{path}", host.trim_end_matches('/'));
    let mut request = url
        .as_str()
        .into_client_request()
        .with_context(|| format!("invalid exec address {url}"))?;
    if let Some(token) = token {
        let mut value = tungstenite::http::HeaderValue::from_str(token)
            .context("the ACL token is not a valid header value")?;
        value.set_sensitive(true);
        request.headers_mut().insert("X-Nomad-Token", value);
    }
    let config = if scheme == "wss" {
        Some(std::sync::Arc::new(tls.https_config()?))
    } else {
        None
    };
    let mut socket = match crate::tls::websocket::connect(request, config).await {
        Ok(socket) => socket,
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().unwrap_or_default();
            anyhow::bail!(
                "failed to exec into task: Unexpected response code: {} ({})",
                response.status().as_u16(),
                String::from_utf8_lossy(body).trim()
            );
        }
        Err(err) => {
            return Err(err).with_context(|| format!("failed to connect to {host}"));
        }
    };
    let mut exit_code = 0;
    while let Some(message) = socket.next().await {
        let payload = match message.context("the exec websocket failed")? {
            Message::Text(text) => text.as_bytes().to_vec(),
            Message::Binary(bytes) => bytes.to_vec(),
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        let frame: ExecFrame = serde_json::from_slice(&payload)
            .context("the agent sent an exec frame that is not JSON")?;
        if let Some(output) = frame.stdout {
            let mut out = std::io::stdout().lock();
            out.write_all(&output.decode()?)?;
            out.flush()?;
        }
        if let Some(output) = frame.stderr {
            std::io::stderr().write_all(&output.decode()?)?;
        }
        if frame.exited {
            exit_code = frame.result.map_or(0, |result| result.exit_code);
        }
    }
    Ok(exit_code)
}

/// One frame of the exec stream (Nomad: `api/allocations_exec.go` `ExecStreamingOutput`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ExecFrame {
    stdout: Option<ExecData>,
    stderr: Option<ExecData>,
    exited: bool,
    result: Option<ExecExit>,
}

#[derive(Debug, Deserialize)]
struct ExecData {
    /// Standard, padded base64, as Go encodes `[]byte` in JSON.
    data: String,
}

impl ExecData {
    fn decode(&self) -> anyhow::Result<Vec<u8>> {
        BASE64_STANDARD
            .decode(&self.data)
            .context("the agent sent exec output that is not base64")
    }
}

#[derive(Debug, Deserialize)]
struct ExecExit {
    exit_code: i64,
}

#[cfg(test)]
mod tests {
    use super::ExecFrame;

    #[test]
    fn exec_frames_decode_as_nomad_sends_them() {
        let frame: ExecFrame =
            serde_json::from_str(r#"{"stdout": {"data": "aGVsbG8K"}}"#).expect("a stdout frame");
        let stdout = frame.stdout.expect("stdout present");
        assert_eq!(stdout.decode().expect("valid base64"), b"hello\n");
        let frame: ExecFrame =
            serde_json::from_str(r#"{"exited": true, "result": {"exit_code": 3}}"#)
                .expect("an exit frame");
        assert!(frame.exited);
        assert_eq!(frame.result.map(|result| result.exit_code), Some(3));
        let frame: ExecFrame =
            serde_json::from_str(r#"{"stderr": {"data": "not base64!"}}"#).expect("decodes");
        assert!(frame.stderr.expect("stderr present").decode().is_err());
    }
}
