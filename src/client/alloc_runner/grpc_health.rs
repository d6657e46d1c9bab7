//! `grpc` checks: the standard health RPC, `grpc.health.v1.Health/Check`, over HTTP/2 without
//! TLS (h2c) with hyper; the check passes when the answer is `SERVING` (as Consul's gRPC checks).
//!
//! The two messages are one field each, so they are encoded by hand:
//! `HealthCheckRequest { string service = 1; }` and
//! `HealthCheckResponse { ServingStatus status = 1; }` (`UNKNOWN` 0, `SERVING` 1, `NOT_SERVING`
//! 2, `SERVICE_UNKNOWN` 3), each in gRPC's length-prefixed frame (a compression flag, 0 here, and
//! a big-endian `u32` length). The answer is untrusted (it comes from task code): its body is
//! capped at [`MAX_RESPONSE_BYTES`] and every malformed answer is an error, never a panic.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::checks::ProbeResult;

/// Largest answer body read.
pub const MAX_RESPONSE_BYTES: usize = 64 << 10;

/// The health RPC's path.
pub const HEALTH_CHECK_PATH: &str = "/grpc.health.v1.Health/Check";

/// `ServingStatus.SERVING`.
pub const SERVING: u64 = 1;

/// Why a health RPC gave no status.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    #[error("dial tcp {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("HTTP/2: {0}")]
    Http(#[from] hyper::Error),
    #[error("invalid request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("HTTP status {0}, not 200")]
    HttpStatus(u16),
    #[error("reading the answer: {0}")]
    Body(String),
    #[error("rpc error: code = {code} desc = {message}")]
    Status { code: String, message: String },
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
}

/// A `grpc` check of `service` (empty: the server as a whole) at `address` (`host:port`).
pub async fn probe(address: &str, service: &str, timeout: std::time::Duration) -> ProbeResult {
    match tokio::time::timeout(timeout, check(address, service)).await {
        Ok(Ok(status)) => ProbeResult {
            success: status == SERVING,
            status_code: 0,
            output: format!(
                "gRPC health {address} service {service:?}: {}",
                status_name(status)
            ),
        },
        Ok(Err(err)) => ProbeResult::failure(format!("gRPC health {address}: {err}")),
        Err(_) => ProbeResult::failure(format!(
            "gRPC health {address}: timed out after {}",
            crate::structs::duration::format_go_duration(timeout)
        )),
    }
}

fn status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".to_owned(),
        1 => "SERVING".to_owned(),
        2 => "NOT_SERVING".to_owned(),
        3 => "SERVICE_UNKNOWN".to_owned(),
        other => format!("status {other}"),
    }
}

/// Calls the health RPC once; the `ServingStatus` answered.
pub async fn check(address: &str, service: &str) -> Result<u64, GrpcError> {
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|source| GrpcError::Connect {
            address: address.to_owned(),
            source,
        })?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await?;
    let connection = tokio::spawn(connection);
    let answer = async {
        let request = hyper::Request::post(format!("http://{address}{HEALTH_CHECK_PATH}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from(frame(&encode_request(service)))))?;
        let response = sender.send_request(request).await?;
        if response.status() != hyper::StatusCode::OK {
            return Err(GrpcError::HttpStatus(response.status().as_u16()));
        }
        // A trailers-only answer (an error) carries its status in the headers.
        grpc_status(response.headers())?;
        let collected = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|err| GrpcError::Body(err.to_string()))?;
        if let Some(trailers) = collected.trailers() {
            grpc_status(trailers)?;
        }
        decode_response(&unframe(&collected.to_bytes())?)
    }
    .await;
    connection.abort();
    answer
}

/// An error for a `grpc-status` other than 0 (OK) in `headers`.
fn grpc_status(headers: &hyper::HeaderMap) -> Result<(), GrpcError> {
    match headers.get("grpc-status") {
        None => Ok(()),
        Some(code) if code.as_bytes() == b"0" => Ok(()),
        Some(code) => Err(GrpcError::Status {
            code: String::from_utf8_lossy(code.as_bytes()).into_owned(),
            message: headers
                .get("grpc-message")
                .map(|message| String::from_utf8_lossy(message.as_bytes()).into_owned())
                .unwrap_or_default(),
        }),
    }
}

/// `HealthCheckRequest { service }`.
pub fn encode_request(service: &str) -> Vec<u8> {
    let mut message = Vec::new();
    if !service.is_empty() {
        message.push(0x0a);
        put_varint(&mut message, service.len() as u64);
        message.extend_from_slice(service.as_bytes());
    }
    message
}

/// The `status` of a `HealthCheckResponse` (`UNKNOWN` when absent, as proto3's default).
pub fn decode_response(message: &[u8]) -> Result<u64, GrpcError> {
    let mut status = 0;
    walk_fields(message, |field, value| {
        if let (1, Field::Varint(value)) = (field, value) {
            status = value;
        }
    })?;
    Ok(status)
}

/// A message in gRPC's length-prefixed frame, uncompressed.
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(message);
    framed
}

/// The one message of a framed body.
pub fn unframe(body: &[u8]) -> Result<Vec<u8>, GrpcError> {
    let (header, rest) = body
        .split_at_checked(5)
        .ok_or(GrpcError::Malformed("no message in the answer"))?;
    if header[0] != 0 {
        return Err(GrpcError::Malformed("compressed message"));
    }
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let length = usize::try_from(length).map_err(|_| GrpcError::Malformed("message too long"))?;
    rest.get(..length)
        .map(<[u8]>::to_vec)
        .ok_or(GrpcError::Malformed("message shorter than its frame says"))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &[u8], at: &mut usize) -> Result<u64, GrpcError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*at)
            .ok_or(GrpcError::Malformed("truncated varint"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(GrpcError::Malformed("varint too long"))
}

/// One field's value (only varints are read: the status).
enum Field {
    Varint(u64),
    Skipped,
}

/// Calls `each` with every field of `message` (number, value); unknown fields are skipped as
/// protobuf says.
fn walk_fields(message: &[u8], mut each: impl FnMut(u64, Field)) -> Result<(), GrpcError> {
    let mut at = 0;
    while at < message.len() {
        let key = read_varint(message, &mut at)?;
        let value = match key & 7 {
            0 => Field::Varint(read_varint(message, &mut at)?),
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                at = at
                    .checked_add(width)
                    .filter(|end| *end <= message.len())
                    .ok_or(GrpcError::Malformed("truncated fixed-width field"))?;
                Field::Skipped
            }
            2 => {
                let length = usize::try_from(read_varint(message, &mut at)?)
                    .map_err(|_| GrpcError::Malformed("field too long"))?;
                let end = at
                    .checked_add(length)
                    .filter(|end| *end <= message.len())
                    .ok_or(GrpcError::Malformed("truncated field"))?;
                at = end;
                Field::Skipped
            }
            _ => return Err(GrpcError::Malformed("unknown wire type")),
        };
        each(key >> 3, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
