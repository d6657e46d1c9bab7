//! Dispatching parameterized jobs: a child `<job>/dispatch-[<prefix>-]<unix>-<8 hex>` with the
//! request's payload and meta, registered with its evaluation in one Raft entry. The parent
//! itself is never placed.
//!
//! The payload and meta are the job submitter's: checked against the parent's `parameterized`
//! block (payload `required`/`forbidden`, `meta_required`, `meta_optional`), the payload at most
//! [`Job::DISPATCH_PAYLOAD_LIMIT`] bytes, and the ID prefix a safe part of a job ID.
//!
//! Nomad: `nomad/job_endpoint.go` `Job.Dispatch`, `validateDispatchRequest`;
//! `structs.DispatchedID`.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::endpoints::new_eval;
use super::raft::Command;
use super::state::ObjectKind;
use super::{Server, ServerError};
use crate::api::types::job_launch::JobDispatchResponse;
use crate::structs::{EvalTrigger, Job, JobId, JobStatus, new_uuid};

/// What a dispatched child's ID has between its parent's ID and the rest (Nomad:
/// `structs.DispatchLaunchSuffix`).
pub const DISPATCH_LAUNCH_SUFFIX: &str = "/dispatch-";

/// The longest `-id-prefix-template`.
const MAX_ID_PREFIX_LEN: usize = 64;

/// A dispatch request, as the endpoint receives it.
#[derive(Debug, Default)]
pub struct DispatchRequest {
    pub payload: Vec<u8>,
    pub meta: BTreeMap<String, String>,
    pub id_prefix_template: String,
}

/// Checks a dispatch against the parameterized job (Nomad: `validateDispatchRequest`, with its
/// messages).
pub fn validate_dispatch(parent: &Job, request: &DispatchRequest) -> Result<(), String> {
    let Some(parameterized) = parent.parameterized_job.as_ref() else {
        return Err(format!(
            "Specified job {:?} is not a parameterized job",
            parent.id.as_str()
        ));
    };
    let has_payload = !request.payload.is_empty();
    match parameterized.payload.as_str() {
        "required" if !has_payload => {
            return Err("Payload is not provided but required by parameterized job".to_owned());
        }
        "forbidden" if has_payload => {
            return Err("Payload provided but forbidden by parameterized job".to_owned());
        }
        _ => {}
    }
    if request.payload.len() > Job::DISPATCH_PAYLOAD_LIMIT {
        return Err(format!(
            "Payload exceeds maximum size; {} > {}",
            request.payload.len(),
            Job::DISPATCH_PAYLOAD_LIMIT
        ));
    }
    let unpermitted: Vec<&str> = request
        .meta
        .keys()
        .filter(|key| {
            !parameterized.meta_required.contains(key) && !parameterized.meta_optional.contains(key)
        })
        .map(String::as_str)
        .collect();
    if !unpermitted.is_empty() {
        return Err(format!(
            "Dispatch request included unpermitted metadata keys: [{}]",
            unpermitted.join(" ")
        ));
    }
    let mut missing: Vec<&str> = parameterized
        .meta_required
        .iter()
        .filter(|key| !request.meta.contains_key(*key))
        .map(String::as_str)
        .collect();
    missing.sort_unstable();
    if !missing.is_empty() {
        return Err(format!(
            "Dispatch did not provide required meta keys: [{}]",
            missing.join(" ")
        ));
    }
    let prefix = &request.id_prefix_template;
    if prefix.len() > MAX_ID_PREFIX_LEN
        || prefix
            .chars()
            .any(|c| c == '/' || c == '\\' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "ID prefix template {prefix:?} must be at most {MAX_ID_PREFIX_LEN} characters \
             without slashes, spaces or control characters"
        ));
    }
    Ok(())
}

/// The child of `parent` for a dispatch at `unix_seconds` (Nomad: `Job.Dispatch`'s copy, and
/// `DispatchedID`).
pub fn dispatched_child(parent: &Job, request: DispatchRequest, unix_seconds: i64) -> Job {
    let uuid = new_uuid();
    let short = uuid.get(..8).unwrap_or(&uuid);
    let id = if request.id_prefix_template.is_empty() {
        format!(
            "{}{DISPATCH_LAUNCH_SUFFIX}{unix_seconds}-{short}",
            parent.id
        )
    } else {
        format!(
            "{}{DISPATCH_LAUNCH_SUFFIX}{}-{unix_seconds}-{short}",
            parent.id, request.id_prefix_template
        )
    };
    let mut child = parent.clone();
    child.id = JobId::from(id.as_str());
    child.name = id;
    child.parent_id = parent.id.to_string();
    child.dispatched = true;
    child.payload = request.payload;
    child.meta.extend(request.meta);
    child.stop = false;
    child.status = JobStatus::Pending;
    child.status_description.clear();
    child.stable = false;
    child.version = 0;
    child.create_index = 0;
    child.modify_index = 0;
    child.job_modify_index = 0;
    child
}

impl Server {
    /// Dispatches a parameterized job (Nomad: `Job.Dispatch`).
    pub async fn job_dispatch(
        &self,
        namespace: &str,
        job_id: &JobId,
        request: DispatchRequest,
    ) -> Result<JobDispatchResponse, ServerError> {
        self.check_job_registration_allowed()?;
        let Some(parent) = self.store.snapshot().job(namespace, job_id) else {
            return Err(ServerError::not_found(ObjectKind::Job, job_id));
        };
        if parent.parameterized_job.is_none() || parent.dispatched {
            return Err(ServerError::Invalid(format!(
                "Specified job {:?} is not a parameterized job",
                job_id.as_str()
            )));
        }
        if parent.stop {
            return Err(ServerError::Invalid(format!(
                "Specified job {:?} is stopped",
                job_id.as_str()
            )));
        }
        validate_dispatch(&parent, &request).map_err(ServerError::Invalid)?;
        let now = super::now_unix_nanos();
        let mut child = dispatched_child(&parent, request, now / 1_000_000_000);
        child.submit_time = now;
        // A dispatched child of a periodic job is launched by the periodic dispatcher instead.
        let eval = (!child.is_template()).then(|| new_eval(&child, EvalTrigger::JOB_REGISTER, now));
        let eval_id = eval
            .as_ref()
            .map(|eval| eval.id.to_string())
            .unwrap_or_default();
        let dispatched_job_id = child.id.to_string();
        let response = self
            .write_checked(Command::JobRegister {
                job: Arc::new(child),
                enforce_index: Some(0),
                eval,
            })
            .await?;
        Ok(JobDispatchResponse {
            dispatched_job_id,
            eval_create_index: if eval_id.is_empty() {
                0
            } else {
                response.index
            },
            eval_id,
            job_create_index: response.index,
            index: response.index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::ParameterizedJobConfig;

    fn parent(payload: &str, required: &[&str], optional: &[&str]) -> Job {
        Job {
            id: JobId::from("render"),
            parameterized_job: Some(ParameterizedJobConfig {
                payload: payload.to_owned(),
                meta_required: required.iter().map(|key| (*key).to_owned()).collect(),
                meta_optional: optional.iter().map(|key| (*key).to_owned()).collect(),
            }),
            ..Job::default()
        }
    }

    fn request(payload: &[u8], meta: &[(&str, &str)]) -> DispatchRequest {
        DispatchRequest {
            payload: payload.to_vec(),
            meta: meta
                .iter()
                .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
                .collect(),
            id_prefix_template: String::new(),
        }
    }

    #[test]
    fn dispatches_are_checked_against_the_parameterized_block() {
        let job = parent("required", &["b", "a"], &["opt"]);
        let cases = [
            (
                request(b"", &[("a", "1"), ("b", "2")]),
                Err("Payload is not provided but required by parameterized job"),
            ),
            (
                request(b"x", &[("a", "1")]),
                Err("Dispatch did not provide required meta keys: [b]"),
            ),
            (
                request(b"x", &[]),
                Err("Dispatch did not provide required meta keys: [a b]"),
            ),
            (
                request(b"x", &[("a", "1"), ("b", "2"), ("zz", "3")]),
                Err("Dispatch request included unpermitted metadata keys: [zz]"),
            ),
            (
                request(b"x", &[("a", "1"), ("b", "2"), ("opt", "3")]),
                Ok(()),
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(
                validate_dispatch(&job, &request),
                expected.map_err(str::to_owned)
            );
        }
        let forbidden = parent("forbidden", &[], &[]);
        assert_eq!(
            validate_dispatch(&forbidden, &request(b"x", &[])),
            Err("Payload provided but forbidden by parameterized job".to_owned())
        );
        let optional = parent("optional", &[], &[]);
        let big = vec![0u8; Job::DISPATCH_PAYLOAD_LIMIT + 1];
        assert_eq!(
            validate_dispatch(&optional, &request(&big, &[])),
            Err("Payload exceeds maximum size; 16385 > 16384".to_owned())
        );
        let mut sneaky = request(b"", &[]);
        sneaky.id_prefix_template = "../x".to_owned();
        assert!(validate_dispatch(&optional, &sneaky).is_err());
    }

    #[test]
    fn a_child_carries_the_payload_and_meta_under_its_parent() {
        let job = parent("optional", &[], &["who"]);
        let mut request = request(b"hello", &[("who", "world")]);
        request.id_prefix_template = "nightly".to_owned();
        let child = dispatched_child(&job, request, 1_700_000_000);
        let suffix = child
            .id
            .as_str()
            .strip_prefix("render/dispatch-nightly-1700000000-")
            .expect("the ID names parent, prefix and time");
        assert_eq!(suffix.len(), 8);
        assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(child.name, child.id.as_str());
        assert_eq!(child.parent_id, "render");
        assert!(child.dispatched && !child.is_template());
        assert_eq!(child.payload, b"hello");
        assert_eq!(child.meta.get("who").map(String::as_str), Some("world"));
    }
}
