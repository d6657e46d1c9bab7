//! Query parameters common to Nomad's endpoints: blocking (`index`, `wait`), `prefix`,
//! `namespace`, and booleans that accept `true`, `True` and `1` (Go's `strconv.ParseBool`).

use std::collections::HashMap;
use std::time::Duration;

use super::error::ApiError;

/// Nomad's default and maximum blocking wait.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);
pub const MAX_WAIT: Duration = Duration::from_secs(600);

/// Parsed query parameters.
#[derive(Clone, Debug, Default)]
pub struct QueryOptions {
    pub params: HashMap<String, String>,
    /// Block until the index is greater than this; 0 does not block.
    pub min_index: u64,
    pub wait: Duration,
    pub prefix: String,
    pub namespace: String,
}

impl QueryOptions {
    pub fn parse(params: HashMap<String, String>) -> Result<Self, ApiError> {
        let min_index = match params.get("index") {
            Some(text) => text
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("invalid index {text:?}")))?,
            None => 0,
        };
        let wait = match params.get("wait") {
            Some(text) => parse_go_duration(text)
                .ok_or_else(|| ApiError::BadRequest(format!("invalid wait time {text:?}")))?
                .min(MAX_WAIT),
            None => DEFAULT_WAIT,
        };
        let prefix = params.get("prefix").cloned().unwrap_or_default();
        let namespace = params
            .get("namespace")
            .filter(|namespace| !namespace.is_empty())
            .cloned()
            .unwrap_or_else(|| crate::structs::Namespace::DEFAULT.to_owned());
        Ok(Self {
            params,
            min_index,
            wait,
            prefix,
            namespace,
        })
    }

    /// A boolean parameter; absent is `false`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.params.get(name) {
            None => Ok(false),
            Some(text) => parse_bool(text)
                .ok_or_else(|| ApiError::BadRequest(format!("invalid {name} value {text:?}"))),
        }
    }

    /// True if the request asks for every namespace (`namespace=*`).
    pub fn all_namespaces(&self) -> bool {
        self.namespace == "*"
    }
}

/// Go's `strconv.ParseBool`.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "" | "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A Go duration ("10s", "5m", "100ms", "1h30m"); a bare number is seconds.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text).ok()
}
