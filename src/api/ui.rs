//! The Web UI: a single-page app served at `/ui/` on every agent's HTTP port.
//!
//! The assets (`src/api/ui_assets/`: plain JS modules and CSS, no build step) are embedded in the
//! binary with `include_str!`, so the UI works with no network. `/` and `/ui` redirect to `/ui/`;
//! `/ui/assets/<name>` serves an asset with its content type; any other path under `/ui/` answers
//! the app's page, so deep links (`/ui/jobs/example`) load the app, which routes on the client.
//! The app reads and writes only through the public `/v1` API.
//!
//! Nomad: `command/agent/http.go` (`/ui/` handler with its `UIContentSecurityPolicy`).

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

/// One embedded file: its name under `/ui/assets/`, content type and text.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX_HTML: &str = include_str!("ui_assets/index.html");

const ASSETS: &[Asset] = &[
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("ui_assets/app.js"),
    },
    Asset {
        name: "views.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("ui_assets/views.js"),
    },
    Asset {
        name: "nodes.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("ui_assets/nodes.js"),
    },
    Asset {
        name: "settings.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("ui_assets/settings.js"),
    },
    Asset {
        name: "lib.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("ui_assets/lib.js"),
    },
    Asset {
        name: "style.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("ui_assets/style.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("ui_assets/favicon.svg"),
    },
];

/// The UI's policy: only this origin's scripts, styles and API; nothing from elsewhere.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'";

/// The UI routes: merge into an agent's HTTP router (they have no fallback of their own).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui", get(|| async { Redirect::temporary("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/assets/{name}", get(asset))
        .route("/ui/{*path}", get(index))
}

async fn index() -> Response {
    with_headers(INDEX_HTML, "text/html; charset=utf-8", "no-cache")
}

async fn asset(Path(name): Path<String>) -> Response {
    match find_asset(&name) {
        Some(asset) => with_headers(asset.body, asset.content_type, "no-cache"),
        None => (StatusCode::NOT_FOUND, format!("no UI asset named {name:?}")).into_response(),
    }
}

fn find_asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

fn with_headers(body: &'static str, content_type: &'static str, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GETs `path` from the UI routes served on a loopback port: (status, content type,
    /// location, body).
    async fn get_path(path: &str) -> (StatusCode, Option<String>, Option<String>, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move { axum::serve(listener, router::<()>()).await });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let response = client
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .expect("response");
        let status = StatusCode::from_u16(response.status().as_u16()).expect("status");
        let header_of = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header_of("content-type");
        let location = header_of("location");
        let body = response.text().await.expect("body");
        server.abort();
        (status, content_type, location, body)
    }

    #[tokio::test]
    async fn root_redirects_to_the_ui() {
        for path in ["/", "/ui"] {
            let (status, _, location, _) = get_path(path).await;
            assert_eq!(status, StatusCode::TEMPORARY_REDIRECT, "{path}");
            assert_eq!(location.as_deref(), Some("/ui/"), "{path}");
        }
    }

    #[tokio::test]
    async fn deep_links_load_the_app() {
        for path in [
            "/ui/",
            "/ui/jobs",
            "/ui/jobs/example",
            "/ui/allocations/abc",
        ] {
            let (status, content_type, _, body) = get_path(path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert_eq!(
                content_type.as_deref(),
                Some("text/html; charset=utf-8"),
                "{path}"
            );
            assert!(body.contains("/ui/assets/app.js"), "{path}: {body}");
        }
    }

    #[tokio::test]
    async fn assets_have_their_content_types() {
        let (status, content_type, _, body) = get_path("/ui/assets/app.js").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            content_type.as_deref(),
            Some("text/javascript; charset=utf-8")
        );
        assert!(body.contains("import"));
        let (_, content_type, _, _) = get_path("/ui/assets/style.css").await;
        assert_eq!(content_type.as_deref(), Some("text/css; charset=utf-8"));
        let (status, _, _, body) = get_path("/ui/assets/nope.js").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(body.contains("nope.js"));
    }

    #[test]
    fn every_module_the_app_imports_is_embedded() {
        for asset in ASSETS {
            for line in asset.body.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let name = rest.split('"').next().unwrap_or_default();
                assert!(
                    find_asset(name).is_some(),
                    "{} imports {name}, which is not embedded",
                    asset.name
                );
            }
        }
    }
}
