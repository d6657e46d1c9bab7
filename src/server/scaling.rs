//! Scaling a job's task group (`job scale`, `/v1/job/<id>/scale`): the group's new count within
//! its `scaling { min max }` registered as a new job version with its evaluation, and the scaling
//! event recorded, in one Raft entry; and the scale status with the events.
//!
//! Nomad: `nomad/job_endpoint.go` `Job.Scale`, `Job.ScaleStatus`.

use std::sync::Arc;

use super::endpoints::new_eval;
use super::raft::Command;
use super::state::{ObjectKind, StateSnapshot, job_key};
use super::{Server, ServerError};
use crate::api::types::jobs::JobRegisterResponse;
use crate::api::types::scaling::{
    JobScaleStatusResponse, SCALING_TARGET_GROUP, ScalingRequest, TaskGroupScaleStatus,
};
use crate::scheduler::State as _;
use crate::structs::{
    AllocClientStatus, EvalTrigger, Job, JobId, JobType, ScalingEvent, TaskGroup,
};

/// Checks a scaling request against the job and returns the group it targets (Nomad's checks of
/// `Job.Scale`, with its messages).
pub fn check_scale<'a>(job: &'a Job, request: &ScalingRequest) -> Result<&'a TaskGroup, String> {
    if let Some(count) = request.count {
        if count < 0 {
            return Err("scaling action count can't be negative".to_owned());
        }
        if request.error {
            return Err("scaling action should not contain count if error is true".to_owned());
        }
    }
    let group_name = request
        .target
        .get(SCALING_TARGET_GROUP)
        .map(String::as_str)
        .unwrap_or_default();
    if group_name.is_empty() {
        return Err("missing task group name for scaling action".to_owned());
    }
    if job.job_type == JobType::System {
        return Err("cannot scale jobs of type \"system\"".to_owned());
    }
    let Some(group) = job.task_group(group_name) else {
        return Err(format!(
            "task group {group_name:?} specified for scaling does not exist in job"
        ));
    };
    if let (Some(count), Some(scaling)) = (request.count, group.scaling.as_ref()) {
        let min = scaling.min.unwrap_or(0);
        if count < min {
            return Err(format!(
                "group count was less than scaling policy minimum: {count} < {min}"
            ));
        }
        if let Some(max) = scaling.max
            && count > max
        {
            return Err(format!(
                "group count was greater than scaling policy maximum: {count} > {max}"
            ));
        }
    }
    if request
        .count
        .is_some_and(|count| count > i64::from(i32::MAX))
    {
        return Err("scaling action count is too large".to_owned());
    }
    Ok(group)
}

impl Server {
    /// Scales a task group, or records an event without a count (Nomad: `Job.Scale`).
    pub async fn job_scale(
        &self,
        namespace: &str,
        job_id: &JobId,
        request: ScalingRequest,
    ) -> Result<JobRegisterResponse, ServerError> {
        self.check_job_registration_allowed()?;
        let Some(existing) = self.store.snapshot().job(namespace, job_id) else {
            return Err(ServerError::not_found(ObjectKind::Job, job_id));
        };
        let group = check_scale(&existing, &request).map_err(ServerError::Invalid)?;
        if existing.stop && request.count.is_some() {
            return Err(ServerError::Invalid(format!(
                "job {:?} is stopped: run it again to scale it",
                job_id.as_str()
            )));
        }
        let group_name = group.name.clone();
        let previous_count = i64::from(group.count);
        let now = super::now_unix_nanos();
        let (job, eval) = match request.count {
            Some(count) => {
                let mut job = (*existing).clone();
                if let Some(group) = job
                    .task_groups
                    .iter_mut()
                    .find(|group| group.name == group_name)
                {
                    group.count = i32::try_from(count).unwrap_or(i32::MAX);
                }
                job.submit_time = now;
                self.job_validate(&mut job)?;
                let eval =
                    (!job.is_template()).then(|| new_eval(&job, EvalTrigger::JOB_SCALING, now));
                (Some(Arc::new(job)), eval)
            }
            _ => (None, None),
        };
        let eval_id = eval.as_ref().map(|eval| eval.id.to_string());
        let enforce_index = if request.job_modify_index > 0 {
            request.job_modify_index
        } else {
            existing.job_modify_index
        };
        let response = self
            .write_checked(Command::JobScale {
                namespace: namespace.to_owned(),
                job_id: job_id.clone(),
                group: group_name,
                job,
                enforce_index: Some(enforce_index),
                eval,
                event: ScalingEvent {
                    time: u64::try_from(now).unwrap_or(0),
                    count: request.count,
                    previous_count,
                    message: request.message,
                    error: request.error,
                    meta: request.meta,
                    eval_id: eval_id.clone(),
                    create_index: 0,
                },
            })
            .await?;
        let job_modify_index = self
            .store
            .snapshot()
            .job(namespace, job_id)
            .map_or(response.index, |job| job.job_modify_index);
        Ok(JobRegisterResponse {
            eval_create_index: if eval_id.is_some() { response.index } else { 0 },
            eval_id: eval_id.unwrap_or_default(),
            job_modify_index,
            warnings: String::new(),
            index: response.index,
            last_contact: 0,
            known_leader: true,
        })
    }
}

/// A job's groups: their desired, placed and running counts and their scaling events (Nomad:
/// `Job.ScaleStatus`).
pub fn scale_status(
    snapshot: &StateSnapshot,
    namespace: &str,
    job_id: &JobId,
) -> Option<JobScaleStatusResponse> {
    let job = snapshot.job(namespace, job_id)?;
    let deployment = snapshot.latest_deployment_by_job(namespace, job_id);
    let allocs = snapshot.allocs_by_job(namespace, job_id);
    let events = snapshot
        .tables()
        .scaling_events
        .get(&job_key(namespace, job_id))
        .cloned();
    let task_groups = job
        .task_groups
        .iter()
        .map(|group| {
            let mut status = TaskGroupScaleStatus {
                desired: i64::from(group.count),
                ..TaskGroupScaleStatus::default()
            };
            if let Some(state) = deployment
                .as_ref()
                .filter(|deployment| deployment.job_version == job.version)
                .and_then(|deployment| deployment.task_groups.get(&group.name))
            {
                status.placed = i64::from(state.placed_allocs);
                status.healthy = i64::from(state.healthy_allocs);
                status.unhealthy = i64::from(state.unhealthy_allocs);
            }
            let live = allocs
                .iter()
                .filter(|alloc| alloc.task_group == group.name && !alloc.is_terminal());
            if deployment.is_none() {
                status.placed = live.count() as i64;
            }
            status.running = allocs
                .iter()
                .filter(|alloc| {
                    alloc.task_group == group.name
                        && alloc.client_status == AllocClientStatus::Running
                        && !alloc.is_terminal()
                })
                .count() as i64;
            status.events = events
                .as_ref()
                .and_then(|events| events.scaling_events.get(&group.name).cloned())
                .unwrap_or_default();
            (group.name.clone(), status)
        })
        .collect();
    Some(JobScaleStatusResponse {
        job_id: job.id.to_string(),
        namespace: job.namespace.clone(),
        job_create_index: job.create_index,
        job_modify_index: job.job_modify_index,
        job_stopped: job.stop,
        task_groups,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::structs::ScalingPolicy;

    fn job(job_type: JobType, scaling: Option<ScalingPolicy>) -> Job {
        Job {
            id: JobId::from("web"),
            job_type,
            task_groups: vec![TaskGroup {
                name: "g".to_owned(),
                count: 1,
                scaling,
                ..TaskGroup::default()
            }],
            ..Job::default()
        }
    }

    fn request(group: &str, count: Option<i64>) -> ScalingRequest {
        ScalingRequest {
            count,
            target: BTreeMap::from([(SCALING_TARGET_GROUP.to_owned(), group.to_owned())]),
            ..ScalingRequest::default()
        }
    }

    #[test]
    fn scales_are_checked_with_nomads_messages() {
        let bounded = job(
            JobType::Service,
            Some(ScalingPolicy {
                min: Some(1),
                max: Some(3),
                ..ScalingPolicy::default()
            }),
        );
        let check = |job: &Job, request: &ScalingRequest| {
            check_scale(job, request).map(|group| group.name.clone())
        };
        assert_eq!(check(&bounded, &request("g", Some(3))), Ok("g".to_owned()));
        assert_eq!(check(&bounded, &request("g", None)), Ok("g".to_owned()));
        let cases = [
            (
                request("g", Some(4)),
                "group count was greater than scaling policy maximum: 4 > 3",
            ),
            (
                request("g", Some(0)),
                "group count was less than scaling policy minimum: 0 < 1",
            ),
            (
                request("g", Some(-1)),
                "scaling action count can't be negative",
            ),
            (
                request("", Some(2)),
                "missing task group name for scaling action",
            ),
            (
                request("other", Some(2)),
                "task group \"other\" specified for scaling does not exist in job",
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(check(&bounded, &request), Err(expected.to_owned()));
        }
        let mut errored = request("g", Some(2));
        errored.error = true;
        assert_eq!(
            check(&bounded, &errored),
            Err("scaling action should not contain count if error is true".to_owned())
        );
        // No scaling block: any count.
        let free = job(JobType::Batch, None);
        assert_eq!(check(&free, &request("g", Some(40))), Ok("g".to_owned()));
        let system = job(JobType::System, None);
        assert_eq!(
            check(&system, &request("g", Some(2))),
            Err("cannot scale jobs of type \"system\"".to_owned())
        );
    }
}
