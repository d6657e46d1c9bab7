//! The caller's identity, resolved once per request by one middleware, which also enforces
//! ACLs: with `acl { enabled = true }`, the token of `X-Nomad-Token` (or `Authorization:
//! Bearer`) resolves to what it may do ([`crate::server::acl`]) and the route's rule
//! ([`super::access`]) is checked before any handler runs; a refusal is Nomad's 403
//! `Permission denied` (or `ACL token not found`, `ACL token expired`). Handlers that answer
//! lists or streams read [`Identity::acl`] to leave out what the token may not see.
//!
//! With ACLs off every caller may do everything, as in Nomad.
//!
//! Nomad: `command/agent/http.go` `parseToken`, `nomad/acl.go` `ResolveToken`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::access::{Rule, path_object_id, rule_for};
use super::error::ApiError;
use crate::acl::Acl;
use crate::server::Server;
use crate::server::node_identity::PERMISSION_DENIED;
use crate::structs::{AclToken, AllocId, DeploymentId, EvalId};

/// Who is calling.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The secret of `X-Nomad-Token` (or `Authorization: Bearer`), if any: an ACL token's, or a
    /// node's on its own calls.
    pub token: Option<String>,
    /// The ACL token it resolved to (none: anonymous, or ACLs off).
    pub acl_token: Option<Arc<AclToken>>,
    /// What the caller may do (everything with ACLs off).
    pub acl: Arc<Acl>,
}

impl Identity {
    /// Whether the caller may read jobs and their objects in `namespace`.
    pub fn may_read_namespace(&self, namespace: &str) -> bool {
        self.acl.allow_namespace_op(namespace, "read-job")
    }

    /// Refuses, with Nomad's 403, a caller without `capability` in `namespace`.
    pub fn require(&self, namespace: &str, capability: &str) -> Result<(), ApiError> {
        if self.acl.allow_namespace_op(namespace, capability) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(PERMISSION_DENIED.to_owned()))
        }
    }
}

/// The secret a request offers: `X-Nomad-Token`, else `Authorization: Bearer`.
pub fn secret_of(request: &Request) -> Option<String> {
    let headers = request.headers();
    headers
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
        .filter(|token| !token.is_empty())
}

/// The request's `?namespace=`, `default` when unset.
fn namespace_of(request: &Request) -> String {
    request
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "namespace")
        .map(|(_, value)| value.replace("%2A", "*").replace("%2a", "*"))
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or_else(|| "default".to_owned())
}

fn denied() -> Response {
    ApiError::Forbidden(PERMISSION_DENIED.to_owned()).into_response()
}

/// Resolves the caller, checks the route's rule, and stores the [`Identity`] in the request's
/// extensions.
pub async fn resolve_identity(
    State(server): State<Arc<Server>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = secret_of(&request);
    if !server.acl_enabled() {
        request.extensions_mut().insert(Identity {
            token,
            acl_token: None,
            acl: Arc::new(Acl::management()),
        });
        return next.run(request).await;
    }
    let Some(rule) = rule_for(request.method(), request.uri().path()) else {
        return denied();
    };
    // Routes whose callers carry no ACL token: the node proves itself by its secret in the
    // handler; servers talk Raft.
    let resolved = match rule {
        Rule::Public | Rule::NodeSecret | Rule::ServerRpc | Rule::Bootstrap => None,
        _ => match server.resolve_token(token.as_deref()) {
            Ok(resolved) => Some(resolved),
            Err(error) => return ApiError::Forbidden(error.to_string()).into_response(),
        },
    };
    if let Some(resolved) = &resolved
        && !allowed(&server, rule, &resolved.acl, &request)
    {
        return denied();
    }
    let (acl_token, acl) = match resolved {
        Some(resolved) => (resolved.token, resolved.acl),
        None => (None, Arc::new(Acl::deny_all())),
    };
    request.extensions_mut().insert(Identity {
        token,
        acl_token,
        acl,
    });
    next.run(request).await
}

/// The only item of `items`, if there is exactly one.
fn unique<'a>(mut items: impl Iterator<Item = &'a String>) -> Option<String> {
    let first = items.next()?;
    items.next().is_none().then(|| first.clone())
}

fn allowed(server: &Server, rule: Rule, acl: &Acl, request: &Request) -> bool {
    match rule {
        Rule::Public
        | Rule::NodeSecret
        | Rule::ServerRpc
        | Rule::Bootstrap
        | Rule::Filtered
        | Rule::JobBody(_) => true,
        Rule::Management => acl.is_management(),
        Rule::Events => acl.may_read_anything(),
        Rule::Namespace(capability) => {
            let namespace = namespace_of(request);
            // Across namespaces (`*`), the handler keeps what the token may read.
            namespace == "*" || acl.allow_namespace_op(&namespace, capability)
        }
        Rule::AllocNamespace(capability)
        | Rule::EvalNamespace(capability)
        | Rule::DeploymentNamespace(capability) => {
            let Some(id) = path_object_id(request.uri().path()) else {
                return false;
            };
            let snapshot = server.store.snapshot();
            // By full ID, else by a unique ID prefix, as the routes resolve them.
            let namespace = match rule {
                Rule::AllocNamespace(_) => snapshot
                    .alloc(&AllocId::from(id))
                    .map(|alloc| alloc.namespace.clone())
                    .or_else(|| {
                        unique(
                            snapshot
                                .allocs_with_prefix(id)
                                .map(|alloc| &alloc.namespace),
                        )
                    }),
                Rule::EvalNamespace(_) => snapshot
                    .eval(&EvalId::from(id))
                    .map(|eval| eval.namespace.clone())
                    .or_else(|| unique(snapshot.evals_with_prefix(id).map(|eval| &eval.namespace))),
                _ => snapshot
                    .deployment(&DeploymentId::from(id))
                    .map(|deployment| deployment.namespace.clone())
                    .or_else(|| {
                        unique(
                            snapshot
                                .deployments_with_prefix(id)
                                .map(|deployment| &deployment.namespace),
                        )
                    }),
            };
            // An object that does not exist is the handler's 404, for a token that may read
            // something at all; the request's namespace decides otherwise.
            let namespace = namespace.unwrap_or_else(|| namespace_of(request));
            acl.allow_namespace_op(&namespace, capability)
        }
        Rule::NodeRead => acl.allow_node_read(),
        Rule::NodeWrite => acl.allow_node_write(),
        Rule::AgentRead => acl.allow_agent_read(),
        Rule::AgentWrite => acl.allow_agent_write(),
        Rule::OperatorRead => acl.allow_operator_read(),
        Rule::OperatorWrite => acl.allow_operator_write(),
    }
}
