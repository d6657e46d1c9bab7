//! The caller's identity, resolved once per request by a middleware, so ACL checks can later be
//! enforced in one place (Nomad: `command/agent/http.go` `parseToken`, `ResolveToken`).
//!
//! Today every caller is anonymous with full rights: there are no ACLs yet.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Who is calling.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The secret of `X-Nomad-Token` (or `Authorization: Bearer`), if any.
    pub token: Option<String>,
}

/// Resolves the caller's identity and stores it in the request's extensions.
pub async fn resolve_identity(mut request: Request, next: Next) -> Response {
    let headers = request.headers();
    let token = headers
        .get("X-Nomad-Token")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "))
                .map(str::to_owned)
        })
        .filter(|token| !token.is_empty());
    request.extensions_mut().insert(Identity { token });
    next.run(request).await
}
