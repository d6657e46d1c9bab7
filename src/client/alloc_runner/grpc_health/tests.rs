//! The health RPC against a real HTTP/2 (h2c) server on 127.0.0.1, in-process: hyper's server
//! answering `grpc.health.v1.Health/Check` as gRPC servers do (data frame, then `grpc-status`
//! trailers; errors trailers-only).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::*;

/// The test server's side of the two messages (service names under 128 bytes).
fn decode_request(message: &[u8]) -> String {
    match message {
        [0x0a, length, name @ ..] if usize::from(*length) == name.len() => {
            String::from_utf8_lossy(name).into_owned()
        }
        _ => String::new(),
    }
}

fn encode_response(status: u8) -> Vec<u8> {
    if status == 0 {
        Vec::new()
    } else {
        vec![0x08, status]
    }
}

type Answer = hyper::Response<
    StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>,
>;

fn answer(frames: Vec<Frame<Bytes>>, headers: &[(&'static str, &'static str)]) -> Answer {
    let mut response = hyper::Response::new(StreamBody::new(futures::stream::iter(
        frames.into_iter().map(Ok).collect::<Vec<_>>(),
    )));
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/grpc"),
    );
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(*name, hyper::header::HeaderValue::from_static(value));
    }
    response
}

fn trailers(status: &'static str) -> Frame<Bytes> {
    let mut map = hyper::HeaderMap::new();
    map.insert(
        "grpc-status",
        hyper::header::HeaderValue::from_static(status),
    );
    Frame::trailers(map)
}

/// Serves the health service: "" and "web" are SERVING, "down" NOT_SERVING, "garbage" answers
/// a frame that is not one, anything else is NOT_FOUND (trailers-only), as grpc-go's.
async fn health(request: hyper::Request<hyper::body::Incoming>) -> Result<Answer, Infallible> {
    assert_eq!(request.uri().path(), HEALTH_CHECK_PATH);
    assert_eq!(
        request.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/grpc"[..])
    );
    let body = request
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let service = unframe(&body)
        .map(|message| decode_request(&message))
        .unwrap_or_else(|_| "?".to_owned());
    let status = |status: u8| {
        answer(
            vec![
                Frame::data(Bytes::from(frame(&encode_response(status)))),
                trailers("0"),
            ],
            &[],
        )
    };
    Ok(match service.as_str() {
        "" | "web" => status(1),
        "down" => status(2),
        "garbage" => answer(
            vec![Frame::data(Bytes::from_static(b"\x01\x00")), trailers("0")],
            &[],
        ),
        _ => answer(
            vec![],
            &[("grpc-status", "5"), ("grpc-message", "unknown service")],
        ),
    })
}

async fn server() -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(health)),
            );
        }
    });
    Ok((address, task))
}

#[tokio::test]
async fn the_health_rpc_passes_only_when_serving() -> anyhow::Result<()> {
    let (address, server) = server().await?;
    let timeout = Duration::from_secs(5);
    for service in ["", "web"] {
        let result = probe(&address, service, timeout).await;
        assert!(result.success, "{service:?}: {result:?}");
        assert!(result.output.contains("SERVING"), "{result:?}");
    }
    let down = probe(&address, "down", timeout).await;
    assert!(!down.success);
    assert!(down.output.contains("NOT_SERVING"), "{down:?}");
    let unknown = probe(&address, "nope", timeout).await;
    assert!(!unknown.success);
    assert!(
        unknown.output.contains("code = 5 desc = unknown service"),
        "{unknown:?}"
    );
    let garbage = probe(&address, "garbage", timeout).await;
    assert!(!garbage.success);
    assert!(garbage.output.contains("malformed"), "{garbage:?}");
    server.abort();
    // Nothing listening: a failure naming the dial.
    let closed = probe(&address, "", timeout).await;
    assert!(!closed.success);
    assert!(closed.output.contains("dial tcp"), "{closed:?}");
    Ok(())
}

#[test]
fn messages_round_trip_and_skip_unknown_fields() -> Result<(), GrpcError> {
    assert_eq!(encode_request("web"), b"\x0a\x03web");
    assert!(encode_request("").is_empty());
    // A name of 300 bytes: its length is the two-byte varint 0xac 0x02.
    let long = encode_request(&"x".repeat(300));
    assert_eq!(&long[..3], b"\x0a\xac\x02");
    assert_eq!(long.len(), 303);
    for status in [0, 1, 2, 3] {
        assert_eq!(
            decode_response(&encode_response(status))?,
            u64::from(status)
        );
    }
    // Unknown fields (a fixed64, a string) around the status are skipped.
    let mut message = vec![0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0x1a, 2, b'h', b'i'];
    message.extend(encode_response(2));
    assert_eq!(decode_response(&message)?, 2);
    assert_eq!(unframe(&frame(&message))?, message);
    Ok(())
}

#[test]
fn malformed_answers_are_errors() {
    for bad in [
        &b""[..],
        b"\x00\x00\x00",
        b"\x01\x00\x00\x00\x00",
        b"\x00\x00\x00\x00\x09\x08",
    ] {
        assert!(unframe(bad).is_err(), "{bad:?}");
    }
    for bad in [
        &b"\x08"[..],
        b"\x0a\x05ab",
        b"\x0f",
        b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
    ] {
        assert!(decode_response(bad).is_err(), "{bad:?}");
    }
}
