//! API errors and the one function that maps them to HTTP statuses (Nomad: `command/agent/http.go`
//! `wrap`): a plain-text body with the reason, as Nomad answers.
//!
//! Every refusal of the state ([`ApplyError`]) and of the server ([`ServerError`]) is mapped in
//! `From<ServerError>`, by variant, never by its message; a new variant does not compile until it
//! has a status here. So is every refusal of the allocation filesystem ([`AllocFsError`]) on the
//! client's routes.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::allocfs::AllocFsError;
use crate::server::ServerError;
use crate::server::state::ApplyError;

/// How an enforce-index conflict's message begins, on the server that writes it and in the CLI
/// (`job run -check-index`) that recognises it (Nomad: `structs.RegisterEnforceIndexErrPrefix`,
/// which Nomad's `api` package re-exports as `api.RegisterEnforceIndexErrPrefix`).
pub const ENFORCE_INDEX_ERR_PREFIX: &str = "Enforcing job modify index";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: bad JSON, a bad query parameter, an invalid job.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request conflicts with the current state (an enforce-index mismatch, a draining node
    /// made eligible).
    #[error("{0}")]
    Conflict(String),
    /// No leader, or this server cannot serve the write now.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ServerError> for ApiError {
    fn from(error: ServerError) -> Self {
        match error {
            ServerError::Invalid(_) | ServerError::Validation(_) => {
                Self::BadRequest(error.to_string())
            }
            ServerError::State(ApplyError::NotFound { kind, id }) => {
                Self::NotFound(format!("{kind} {id:?}"))
            }
            ServerError::State(
                conflict @ (ApplyError::EnforceIndex { .. }
                | ApplyError::NodeDraining { .. }
                | ApplyError::SchedulerConfigCas { .. }),
            ) => Self::Conflict(conflict.to_string()),
            // Nomad: `NewErrRPCCodedf(400, "ACL bootstrap already done ...")`.
            ServerError::State(
                refused @ (ApplyError::AclBootstrapped { .. }
                | ApplyError::NodePoolBuiltin { .. }
                | ApplyError::NodePoolInUse { .. }),
            ) => Self::BadRequest(refused.to_string()),
            ServerError::Scheduler(message) => Self::BadRequest(message),
            // Nomad answers a missing leader with a 500.
            ServerError::NoLeader => Self::Internal(error.to_string()),
            ServerError::NotLeader(_) => Self::Unavailable(error.to_string()),
            ServerError::Raft(_) => Self::Internal(error.to_string()),
            ServerError::Forbidden(message) => Self::Forbidden(message),
            ServerError::State(refused @ ApplyError::NamespaceInUse(_)) => {
                Self::BadRequest(refused.to_string())
            }
            ServerError::State(conflict @ ApplyError::VariableCas { .. }) => {
                Self::Conflict(conflict.to_string())
            }
            ServerError::Keyring(_) => Self::Internal(error.to_string()),
        }
    }
}

/// A refusal of the allocation filesystem (the `/v1/client/fs/*` routes): a missing path is a
/// 404, a path that leaves the allocation or crosses a link a 400, an I/O failure a 500.
impl From<AllocFsError> for ApiError {
    fn from(error: AllocFsError) -> Self {
        match error {
            AllocFsError::NotFound { path, root } => {
                Self::NotFound(format!("{path:?} under {}", root.display()))
            }
            AllocFsError::Escapes { .. }
            | AllocFsError::Symlink { .. }
            | AllocFsError::NotRegular { .. }
            | AllocFsError::NotADirectory { .. }
            | AllocFsError::IsRoot { .. }
            | AllocFsError::TooLarge { .. } => Self::BadRequest(error.to_string()),
            AllocFsError::Io { .. } => Self::Internal(error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        (status, self.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::state::ObjectKind;
    use crate::structs::NodeId;

    fn mapped(error: ApplyError) -> (StatusCode, String) {
        let api = ApiError::from(ServerError::from(error));
        (api.status(), api.to_string())
    }

    #[test]
    fn a_missing_object_is_a_404_naming_it() {
        let cases = [
            (ObjectKind::Job, "web", "job \"web\" not found"),
            (ObjectKind::Node, "n1", "node \"n1\" not found"),
            (ObjectKind::Allocation, "a1", "alloc \"a1\" not found"),
            (ObjectKind::Evaluation, "e1", "evaluation \"e1\" not found"),
            (ObjectKind::Deployment, "d1", "deployment \"d1\" not found"),
        ];
        for (kind, id, message) in cases {
            assert_eq!(
                mapped(ApplyError::not_found(kind, id)),
                (StatusCode::NOT_FOUND, message.to_owned())
            );
        }
    }

    #[test]
    fn an_enforce_index_conflict_is_a_409_in_nomads_words() {
        let (status, message) = mapped(ApplyError::EnforceIndex {
            expected: 5,
            actual: Some(9),
        });
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            message,
            "Enforcing job modify index 5: job exists with conflicting job modify index: 9"
        );
        assert!(message.starts_with(ENFORCE_INDEX_ERR_PREFIX));
    }

    #[test]
    fn making_a_draining_node_eligible_is_a_409() {
        assert_eq!(
            mapped(ApplyError::NodeDraining {
                node_id: NodeId::from("n1"),
            }),
            (
                StatusCode::CONFLICT,
                "can not set node's scheduling eligibility to eligible while it is draining"
                    .to_owned()
            )
        );
    }

    #[test]
    fn server_errors_keep_their_statuses() {
        let cases = [
            (
                ServerError::Invalid("bad".to_owned()),
                StatusCode::BAD_REQUEST,
            ),
            (
                ServerError::Scheduler("no".to_owned()),
                StatusCode::BAD_REQUEST,
            ),
            (ServerError::NoLeader, StatusCode::INTERNAL_SERVER_ERROR),
            (
                ServerError::NotLeader("10.0.0.1:4647".to_owned()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                ServerError::Raft("down".to_owned()),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                ServerError::Forbidden("no".to_owned()),
                StatusCode::FORBIDDEN,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(ApiError::from(error).status(), status);
        }
    }
}
