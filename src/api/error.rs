//! API errors and the one function that maps them to HTTP statuses (Nomad: `command/agent/http.go`
//! `wrap`): a plain-text body with the reason, as Nomad answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::server::ServerError;

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
            ServerError::NotFound { kind, id } => Self::NotFound(format!("{kind} {id:?}")),
            ServerError::Rejected(message) if message.contains("not found") => {
                Self::NotFound(message.trim_end_matches(" not found").to_owned())
            }
            ServerError::Rejected(message) => Self::BadRequest(message),
            ServerError::NoLeader | ServerError::NotLeader(_) => {
                Self::Unavailable(error.to_string())
            }
            ServerError::Raft(_) => Self::Internal(error.to_string()),
            ServerError::Forbidden(message) => Self::Forbidden(message),
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
