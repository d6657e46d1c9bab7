//! One module per resource, each with the handlers of its paths.

pub mod acl;
pub mod agent;
pub mod allocs;
pub mod client;
pub mod deployments;
pub mod evals;
pub mod events;
pub mod internal;
pub mod job_launch;
pub mod job_statuses;
pub mod jobs;
pub mod jobs_parse;
pub mod keyring;
pub mod monitor;
pub mod namespaces;
pub mod node_pools;
pub mod nodes;
pub mod operator;
pub mod scaling;
pub mod services;
pub mod system;
pub mod validate;
pub mod variables;

use std::sync::Arc;

use crate::api::error::ApiError;

/// Finds an object by full ID or by a unique ID prefix, as Nomad's CLI accepts short IDs.
pub fn by_id_or_prefix<'a, T: 'a>(
    kind: &str,
    id: &str,
    exact: Option<Arc<T>>,
    mut with_prefix: impl Iterator<Item = &'a Arc<T>>,
) -> Result<Arc<T>, ApiError> {
    if let Some(found) = exact {
        return Ok(found);
    }
    if id.is_empty() {
        return Err(ApiError::BadRequest(format!("missing {kind} ID")));
    }
    let Some(first) = with_prefix.next() else {
        return Err(ApiError::NotFound(format!("{kind} {id:?}")));
    };
    if with_prefix.next().is_some() {
        return Err(ApiError::BadRequest(format!(
            "{kind} ID prefix {id:?} matches several {kind}s"
        )));
    }
    Ok(first.clone())
}
