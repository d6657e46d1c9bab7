//! ACLs on a client agent's own routes (`/v1/client/...`: fs, logs, exec, stats, restart,
//! signal), with `acl { enabled = true }` in the client's configuration.
//!
//! A client holds no tokens: it asks the servers what the caller's secret grants
//! (`POST /v1/internal/node/<id>/acl/resolve`, proved by the node's own secret), compiles the
//! policies it gets back, and keeps the result for `acl { token_ttl }` ([`TOKEN_TTL`] unless set;
//! Nomad's client ACL cache), so a revoked token stops working within that time. The route's
//! rule is the one of the servers' table ([`crate::api::access`]); an allocation's namespace is
//! read from the client's own runner.
//!
//! ```text
//!   request ─► Identity already set (the in-process server checked it) ─► handler
//!           ─► cached grant for the secret's hash, younger than token_ttl ─┐
//!           ─► else ask the servers ─► 403 "ACL token not found" / ...   │
//!                                   ─► compile the policies, cache ──────┴► rule allows? ─► handler
//!                                                                                      └► 403 Permission denied
//! ```
//!
//! Secrets are kept only as SHA-256 hashes in the cache and never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::server_link::LinkError;
use crate::acl::PERMISSION_DENIED;
use crate::acl::{Acl, Policy};
use crate::api::access::{Rule, path_object_id, rule_for};
use crate::api::error::ApiError;
use crate::api::identity::{Identity, secret_of};
use crate::api::types::node::TokenGrant;

/// How long a resolved token is trusted before the servers are asked again, unless
/// `acl { token_ttl }` says (Nomad's default).
pub const TOKEN_TTL: Duration = Duration::from_secs(30);

/// Entries kept at most; the cache is emptied when it would grow past this.
const MAX_ENTRIES: usize = 4096;

/// Resolved tokens by the SHA-256 of their secret (`""` for anonymous).
#[derive(Debug)]
pub(crate) struct TokenCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<Acl>)>>,
}

impl TokenCache {
    /// A cache that trusts an answer for `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<Arc<Acl>> {
        let entries = self.lock();
        let (at, acl) = entries.get(key)?;
        (at.elapsed() < self.ttl).then(|| Arc::clone(acl))
    }

    fn insert(&self, key: String, acl: Arc<Acl>) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), acl));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Arc<Acl>)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The ACL a grant from the servers amounts to. A policy that does not parse grants nothing
/// (the servers check rules before they store them).
pub(crate) fn acl_of_grant(grant: &TokenGrant) -> Acl {
    if grant.management {
        return Acl::management();
    }
    let parsed: Vec<Policy> = grant
        .policies
        .iter()
        .filter_map(|policy| match Policy::parse(&policy.rules) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                tracing::warn!(policy = %policy.name, error = %error, "ACL policy from the servers does not parse");
                None
            }
        })
        .collect();
    Acl::from_policies(&parsed)
}

/// What the caller's secret grants, from the cache or the servers.
async fn resolve(shared: &Shared, secret: Option<&str>) -> Result<Arc<Acl>, ApiError> {
    let key = secret.map(crate::acl::secret_hash).unwrap_or_default();
    if let Some(acl) = shared.tokens.get(&key) {
        return Ok(acl);
    }
    let node_id = shared.node_id();
    let grant = shared
        .link
        .resolve_token(&node_id, secret)
        .await
        .map_err(|error| match error {
            LinkError::Denied(message) => ApiError::Forbidden(message),
            other => ApiError::Internal(format!("resolving the ACL token: {other}")),
        })?;
    let acl = Arc::new(acl_of_grant(&grant));
    shared.tokens.insert(key, Arc::clone(&acl));
    Ok(acl)
}

/// Whether `acl` allows the client route `request`.
fn allowed(shared: &Shared, acl: &Acl, request: &Request) -> bool {
    let path = request.uri().path();
    match rule_for(request.method(), path) {
        Some(Rule::NodeRead) => acl.allow_node_read(),
        Some(Rule::AgentRead) => acl.allow_agent_read(),
        Some(Rule::AgentWrite) => acl.allow_agent_write(),
        Some(Rule::AllocNamespace(capability)) => {
            // An allocation this client does not run is the handler's 404 for a caller who may
            // act in `default`.
            let namespace = path_object_id(path)
                .and_then(|id| shared.runner(id))
                .map(|runner| runner.alloc().namespace.clone())
                .unwrap_or_else(|| "default".to_owned());
            acl.allow_namespace_op(&namespace, capability)
        }
        _ => false,
    }
}

/// The middleware over the client's routes when the client enforces ACLs.
pub(crate) async fn check_caller(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    if request.extensions().get::<Identity>().is_some() {
        // The in-process server resolved the caller and checked the route already.
        return next.run(request).await;
    }
    let token = secret_of(&request);
    let acl = match resolve(&shared, token.as_deref()).await {
        Ok(acl) => acl,
        Err(error) => return error.into_response(),
    };
    if !allowed(&shared, &acl, &request) {
        return ApiError::Forbidden(PERMISSION_DENIED.to_owned()).into_response();
    }
    request.extensions_mut().insert(Identity {
        token,
        acl_token: None,
        acl,
    });
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::AclPolicy;

    fn grant(rules: &str) -> TokenGrant {
        TokenGrant {
            accessor_id: Some("a".to_owned()),
            management: false,
            policies: vec![AclPolicy {
                name: "p".to_owned(),
                rules: rules.to_owned(),
                ..AclPolicy::default()
            }],
        }
    }

    #[test]
    fn a_grant_compiles_to_its_policies() {
        let acl = acl_of_grant(&grant(
            r#"namespace "web" { capabilities = ["read-logs"] }"#,
        ));
        assert!(acl.allow_namespace_op("web", "read-logs"));
        assert!(!acl.allow_namespace_op("web", "alloc-exec"));
        assert!(!acl.allow_namespace_op("default", "read-logs"));
        assert!(
            acl_of_grant(&TokenGrant {
                management: true,
                ..TokenGrant::default()
            })
            .is_management()
        );
        // Rules that do not parse grant nothing.
        let broken = acl_of_grant(&grant("namespace {"));
        assert!(!broken.allow_namespace_op("default", "read-logs"));
    }

    #[test]
    fn cached_grants_expire() {
        let cache = TokenCache::new(TOKEN_TTL);
        cache.insert("k".to_owned(), Arc::new(Acl::management()));
        assert!(cache.get("k").is_some());
        assert!(cache.get("other").is_none());
        cache.lock().get_mut("k").expect("entry").0 = Instant::now()
            .checked_sub(TOKEN_TTL + Duration::from_secs(1))
            .expect("an earlier instant");
        assert!(cache.get("k").is_none());
    }
}
