//! `job plan`: a dry run of the scheduler against the state with the submitted job in it.
//!
//! The scheduler runs as for a real evaluation, but on a speculative snapshot and with a planner
//! that records instead of committing. Nomad: `nomad/job_endpoint.go` `Plan`,
//! `scheduler/annotate.go`.

use std::sync::Arc;

use super::endpoints::new_eval;
use super::raft::Command;
use super::{Server, ServerError};
use crate::api::types::jobs::{JobDiff, JobPlanResponse, PlanAnnotations};
use crate::scheduler::{Planner, PlannerError, SchedulerConfig, State};
use crate::structs::{EvalTrigger, Evaluation, Job, Plan, PlanResult, shared_allocs};

/// Records what the scheduler would do.
#[derive(Default)]
struct RecordingPlanner {
    plans: Vec<Plan>,
    evals: Vec<Evaluation>,
    created: Vec<Evaluation>,
}

impl Planner for RecordingPlanner {
    fn submit_plan(
        &mut self,
        plan: Plan,
    ) -> Result<(PlanResult, Option<Arc<dyn State>>), PlannerError> {
        let result = PlanResult {
            node_update: shared_allocs(&plan.node_update),
            node_allocation: shared_allocs(&plan.node_allocation),
            deployment: plan.deployment.clone(),
            deployment_updates: plan.deployment_updates.clone(),
            refresh_index: 0,
            alloc_index: plan.snapshot_index,
        };
        self.plans.push(plan);
        Ok((result, None))
    }

    fn update_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError> {
        self.evals.push(eval);
        Ok(())
    }

    fn create_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError> {
        self.created.push(eval);
        Ok(())
    }

    fn reblock_eval(&mut self, eval: Evaluation) -> Result<(), PlannerError> {
        self.evals.push(eval);
        Ok(())
    }
}

impl Server {
    /// Plans `job` without registering it.
    pub async fn job_plan(&self, mut job: Job, diff: bool) -> Result<JobPlanResponse, ServerError> {
        job.validate()?;
        self.options
            .limits
            .check(&job)
            .map_err(ServerError::Invalid)?;
        let snapshot = self.store.snapshot();
        let existing = snapshot.job(&job.namespace, &job.id);
        let now = super::now_unix_nanos();
        job.submit_time = now;
        let mut eval = new_eval(&job, EvalTrigger::JOB_REGISTER, now);
        eval.annotate_plan = true;
        let command = Command::JobRegister {
            job: Arc::new(job.clone()),
            enforce_index: None,
            eval: Some(eval.clone()),
        };
        let speculative = snapshot.speculative(&command);
        let planned_job = speculative.job(&job.namespace, &job.id);
        let stored_eval = speculative
            .eval(&eval.id)
            .map(|eval| (*eval).clone())
            .unwrap_or(eval);
        let index = snapshot.tables().indexes.latest;
        let algorithm = self.algorithm_for(&snapshot, Some(&job));
        let scheduler = self.scheduler;
        let state: Arc<dyn State> = Arc::new(speculative);
        let recorded = tokio::task::spawn_blocking(move || {
            let mut planner = RecordingPlanner::default();
            let config = SchedulerConfig {
                now_unix_nanos: now,
                algorithm,
                ..SchedulerConfig::default()
            };
            scheduler(state, &mut planner, &config, &stored_eval).map(|()| planner)
        })
        .await
        .map_err(|error| ServerError::Raft(error.to_string()))?
        .map_err(|error| ServerError::Scheduler(error.to_string()))?;
        let mut annotations = PlanAnnotations::default();
        for plan in &recorded.plans {
            for alloc in plan.node_allocation.values().flatten() {
                let updates = annotations
                    .desired_tg_updates
                    .entry(alloc.task_group.clone())
                    .or_default();
                if snapshot.alloc(&alloc.id).is_some() {
                    updates.in_place_update += 1;
                } else if alloc.previous_allocation.is_some() {
                    updates.destructive_update += 1;
                } else {
                    updates.place += 1;
                }
            }
            for alloc in plan.node_update.values().flatten() {
                annotations
                    .desired_tg_updates
                    .entry(alloc.task_group.clone())
                    .or_default()
                    .stop += 1;
            }
        }
        let failed_tg_allocs = recorded
            .evals
            .last()
            .map(|eval| eval.failed_tg_allocs.clone())
            .unwrap_or_default();
        let diff_type = match (&existing, &planned_job) {
            (None, _) => "Added",
            (Some(existing), Some(planned)) if planned.version != existing.version => "Edited",
            _ => "None",
        };
        Ok(JobPlanResponse {
            annotations,
            failed_tg_allocs,
            job_modify_index: existing.map_or(0, |job| job.job_modify_index),
            created_evals: recorded.created,
            diff: diff.then(|| JobDiff {
                diff_type: diff_type.to_owned(),
                id: job.id.to_string(),
                ..JobDiff::default()
            }),
            warnings: String::new(),
            index,
        })
    }
}
