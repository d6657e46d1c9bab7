//! `GET` and `POST /v1/jobs/statuses`: the job index of Nomad's UI, each job with its
//! allocations summarised and its latest deployment (Nomad 1.8+:
//! `command/agent/job_endpoint_statuses.go`, `nomad/job_endpoint_statuses.go`).
//!
//! Ordered by modify index, newest first (`reverse=true`: oldest first), paged with `per_page`
//! and `next_token`, filtered with `filter`; children of periodic and parameterized jobs only with
//! `include_children`. A body naming jobs (`{"Jobs": [{"ID", "Namespace"}]}`) answers those
//! alone, on one page, across their namespaces. A blocking `index` waits on the jobs,
//! allocations and deployments tables.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;

use super::jobs::parse_body;
use crate::api::blocking::blocking_page;
use crate::api::error::ApiError;
use crate::api::identity::Identity;
use crate::api::list::{ListQuery, modify_index_token};
use crate::api::query::QueryOptions;
use crate::api::types::job_statuses::{
    JobStatusesAlloc, JobStatusesJob, JobStatusesLatestDeployment, JobStatusesRequest, NamespacedId,
};
use crate::server::Server;
use crate::server::state::{StateSnapshot, Table};
use crate::structs::Job;

/// The namespace a request with no `?namespace=` acts in.
const DEFAULT_NAMESPACE: &str = "default";

pub async fn statuses(
    State(server): State<Arc<Server>>,
    Extension(identity): Extension<Identity>,
    Query(params): Query<HashMap<String, String>>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let mut query = QueryOptions::parse(params)?;
    let mut include_children = query.flag("include_children")?;
    let mut list = ListQuery::parse(&query)?.newest_first();
    let mut requested: Option<BTreeSet<NamespacedId>> = None;
    if !body.trim_ascii().is_empty() {
        let request: JobStatusesRequest = parse_body(&body)?;
        if request.jobs.is_empty() {
            return Err(ApiError::BadRequest("no jobs in request".to_owned()));
        }
        include_children |= request.include_children;
        let jobs: BTreeSet<NamespacedId> = request
            .jobs
            .into_iter()
            .map(|mut job| {
                if job.namespace.is_empty() {
                    DEFAULT_NAMESPACE.clone_into(&mut job.namespace);
                }
                job
            })
            .collect();
        let namespaces: BTreeSet<&str> = jobs.iter().map(|job| job.namespace.as_str()).collect();
        // The jobs' one namespace, or all of them (Nomad's wildcard for mixed namespaces).
        query.namespace = match namespaces.iter().next() {
            Some(namespace) if namespaces.len() == 1 => (*namespace).to_owned(),
            _ if query.namespace == DEFAULT_NAMESPACE => "*".to_owned(),
            _ => query.namespace.clone(),
        };
        list = list.unlimited();
        requested = Some(jobs);
    }
    if !query.all_namespaces() {
        identity.require(&query.namespace, "read-job")?;
    }
    blocking_page(
        &server,
        &query,
        list,
        &[Table::Jobs, Table::Allocs, Table::Deployments],
        |job: &JobStatusesJob| modify_index_token(job.modify_index, &job.namespace, &job.id),
        |snapshot| {
            Ok(snapshot
                .jobs()
                .filter(|job| query.all_namespaces() || job.namespace == query.namespace)
                .filter(|job| identity.acl.allow_namespace_op(&job.namespace, "read-job"))
                .filter(|job| include_children || job.parent_id.is_empty())
                .filter(|job| {
                    requested.as_ref().is_none_or(|jobs| {
                        jobs.contains(&NamespacedId {
                            id: job.id.to_string(),
                            namespace: job.namespace.clone(),
                        })
                    })
                })
                .map(|job| job_statuses_job(snapshot, job))
                .collect())
        },
    )
    .await
}

/// `job` with its children's statuses if it launches children, else its allocations and latest
/// deployment (Nomad: `jobStatusesJobFromJob`).
fn job_statuses_job(snapshot: &StateSnapshot, job: &Job) -> JobStatusesJob {
    let mut entry = JobStatusesJob::new(job);
    if job.is_template() {
        entry.child_statuses = Some(
            snapshot
                .job_children(&job.namespace, job.id.as_str())
                .map(|child| child.status)
                .collect(),
        );
        return entry;
    }
    let allocs = crate::scheduler::State::allocs_by_job(snapshot, &job.namespace, &job.id);
    entry.allocs = Some(
        allocs
            .iter()
            .map(|alloc| JobStatusesAlloc::new(alloc))
            .collect(),
    );
    entry.latest_deployment =
        crate::scheduler::State::latest_deployment_by_job(snapshot, &job.namespace, &job.id)
            .map(|deployment| JobStatusesLatestDeployment::new(&deployment));
    entry
}
