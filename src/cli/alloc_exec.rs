//! `caravan alloc exec`: runs a command in a task through the client's exec websocket and
//! relays its output and exit code.
//!
//! The websocket is spoken by hand, client side only, and only as far as the exec endpoint
//! needs: one upgrade request, then unfragmented text frames from the agent (`{"stdout":
//! {"data": <base64>}}`, `{"stderr": ...}`, `{"exited": true, "result": {"exit_code": N}}`)
//! until a close frame. The agent does not read stdin yet, so `-i` sends nothing.
//!
//! Nomad: `command/alloc_exec.go`, `api/allocations_exec.go`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::AllocExecArgs;
use super::alloc_status::{read_alloc, task_names};
use super::api_client::{ApiClient, block_on, encode, str_of};

pub fn run(args: &AllocExecArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
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
            str_of(&alloc, "ID"),
            encode(&task),
            encode(&command),
            args.tty
        );
        let exit_code = exec_over_websocket(client.address(), &path).await?;
        Ok(ExitCode::from(u8::try_from(exit_code).unwrap_or(1)))
    })
}

async fn exec_over_websocket(address: &str, path: &str) -> anyhow::Result<i64> {
    let host = address
        .split("://")
        .nth(1)
        .unwrap_or(address)
        .trim_end_matches('/');
    if address.starts_with("https://") {
        anyhow::bail!("alloc exec over https is not supported by this CLI yet");
    }
    let mut stream = TcpStream::connect(host)
        .await
        .with_context(|| format!("failed to connect to {host}"))?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: Y2FyYXZhbi1leGVjLWtleQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = Vec::new();
    let header_end = loop {
        let mut chunk = [0u8; 4096];
        let n_read = stream.read(&mut chunk).await?;
        if n_read == 0 {
            anyhow::bail!("the agent closed the connection during the exec handshake");
        }
        buffer.extend_from_slice(&chunk[..n_read]);
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).into_owned();
    let status_line = head.lines().next().unwrap_or("");
    if !status_line.contains(" 101 ") {
        let status = status_line.split_whitespace().nth(1).unwrap_or("?");
        let mut body = buffer[header_end..].to_vec();
        // The error body is short; whatever arrives with the headers or right after is enough.
        let mut rest = [0u8; 4096];
        if let Ok(Ok(n_read)) = tokio::time::timeout(
            std::time::Duration::from_millis(500),
            stream.read(&mut rest),
        )
        .await
        {
            body.extend_from_slice(&rest[..n_read]);
        }
        anyhow::bail!(
            "failed to exec into task: Unexpected response code: {status} ({})",
            String::from_utf8_lossy(&body).trim()
        );
    }
    let mut pending = buffer[header_end..].to_vec();
    let mut exit_code = 0;
    loop {
        let Some((opcode, payload, used)) = parse_frame(&pending)? else {
            let mut chunk = [0u8; 8192];
            let n_read = stream.read(&mut chunk).await?;
            if n_read == 0 {
                return Ok(exit_code);
            }
            pending.extend_from_slice(&chunk[..n_read]);
            continue;
        };
        pending.drain(..used);
        match opcode {
            0x1 | 0x2 => {
                let frame: Value = serde_json::from_slice(&payload)
                    .context("the agent sent an exec frame that is not JSON")?;
                if let Some(data) = frame.pointer("/stdout/data").and_then(Value::as_str) {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&base64_decode(data)?)?;
                    out.flush()?;
                }
                if let Some(data) = frame.pointer("/stderr/data").and_then(Value::as_str) {
                    std::io::stderr().write_all(&base64_decode(data)?)?;
                }
                if frame.get("exited").and_then(Value::as_bool) == Some(true) {
                    exit_code = frame
                        .pointer("/result/exit_code")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                }
            }
            0x8 => return Ok(exit_code),
            _ => {}
        }
    }
}

/// One complete server frame at the start of `data`: (opcode, payload, bytes used), or `None`
/// if more bytes are needed. Server frames are never masked (RFC 6455 section 5.1).
fn parse_frame(data: &[u8]) -> anyhow::Result<Option<(u8, Vec<u8>, usize)>> {
    if data.len() < 2 {
        return Ok(None);
    }
    let opcode = data[0] & 0x0f;
    let masked = data[1] & 0x80 != 0;
    let (length, mut offset) = match data[1] & 0x7f {
        126 if data.len() >= 4 => (u64::from(u16::from_be_bytes([data[2], data[3]])), 4),
        127 if data.len() >= 10 => {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&data[2..10]);
            (u64::from_be_bytes(bytes), 10)
        }
        126 | 127 => return Ok(None),
        short => (u64::from(short), 2),
    };
    let mask = if masked {
        if data.len() < offset + 4 {
            return Ok(None);
        }
        let mask = [
            data[offset],
            data[offset + 1],
            data[offset + 2],
            data[offset + 3],
        ];
        offset += 4;
        Some(mask)
    } else {
        None
    };
    let length = usize::try_from(length).context("websocket frame too large")?;
    if data.len() < offset + length {
        return Ok(None);
    }
    let mut payload = data[offset..offset + length].to_vec();
    if let Some(mask) = mask {
        for (byte_idx, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[byte_idx % 4];
        }
    }
    Ok(Some((opcode, payload, offset + length)))
}

/// Standard, padded base64, as Go encodes `[]byte` in JSON.
fn base64_decode(text: &str) -> anyhow::Result<Vec<u8>> {
    let value = |c: u8| -> anyhow::Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => anyhow::bail!("invalid base64 byte {other:?}"),
        })
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (idx, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * idx);
        }
        out.push((n >> 16) as u8);
        if chunk.len() > 2 {
            out.push((n >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(n as u8);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{base64_decode, parse_frame};

    #[test]
    fn base64_round_trips_with_the_client_encoder() {
        for text in [&b""[..], b"f", b"fo", b"foo", b"hello\n"] {
            let encoded = crate::client::api::base64_encode(text);
            assert_eq!(base64_decode(&encoded).expect("valid base64"), text);
        }
    }

    #[test]
    fn frames_wait_for_their_whole_payload() {
        assert_eq!(parse_frame(&[0x81, 3, b'a']).expect("well formed"), None);
        let frame = parse_frame(&[0x81, 3, b'a', b'b', b'c', 0x88]).expect("well formed");
        assert_eq!(frame, Some((1, b"abc".to_vec(), 5)));
    }
}
