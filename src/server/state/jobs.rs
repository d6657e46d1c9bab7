//! The jobs, job versions and job summaries tables.
//!
//! Nomad: `nomad/state/state_store.go` `upsertJobImpl`, `DeleteJob`, `getJobStatus`,
//! `updateSummaryWithJob`.

use std::sync::Arc;

use super::apply::ApplyEffects;
use super::error::{ApplyError, ObjectKind, check_enforce_index};
use super::events::{Event, EventPayload, Topic};
use super::tables::{JobKey, Tables, job_key};
use crate::structs::{
    Evaluation, Job, JobChildrenSummary, JobId, JobStatus, JobSummary, JobType, TaskGroupSummary,
};

/// How many versions of a job the store keeps (Nomad: `JobTrackedVersions`).
pub const JOB_TRACKED_VERSIONS: u64 = 6;

/// True if two versions of a job differ in what the user submitted, not just in what the servers
/// stamp on them.
fn spec_changed(existing: &Job, submitted: &Job) -> bool {
    let strip = |job: &Job| {
        let mut job = job.clone();
        job.version = 0;
        job.create_index = 0;
        job.modify_index = 0;
        job.job_modify_index = 0;
        job.submit_time = 0;
        job.status = JobStatus::Pending;
        job.status_description.clear();
        job.stable = false;
        job
    };
    strip(existing) != strip(submitted)
}

impl Tables {
    pub(super) fn apply_job_register(
        &mut self,
        index: u64,
        job: &Arc<Job>,
        enforce_index: Option<u64>,
        eval: Option<&Evaluation>,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        if let Some(expected) = enforce_index {
            let actual = self
                .jobs
                .get(&job_key(&job.namespace, &job.id))
                .map(|existing| existing.job_modify_index);
            check_enforce_index(expected, actual)?;
        }
        let stored = self.upsert_job(index, (**job).clone(), effects);
        if let Some(eval) = eval {
            let mut eval = eval.clone();
            eval.job_modify_index = stored.job_modify_index;
            self.upsert_evals(index, std::slice::from_ref(&eval), effects);
        }
        Ok(())
    }

    pub(super) fn apply_job_deregister(
        &mut self,
        index: u64,
        namespace: &str,
        job_id: &JobId,
        purge: bool,
        eval: Option<&Evaluation>,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        let key = job_key(namespace, job_id);
        let Some(existing) = self.jobs.get(&key).cloned() else {
            return Err(ApplyError::not_found(ObjectKind::Job, job_id));
        };
        if purge {
            self.jobs.remove(&key);
            let versions: Vec<_> = self
                .job_versions
                .range((key.clone(), 0)..=(key.clone(), u64::MAX))
                .map(|(version_key, _)| version_key.clone())
                .collect();
            for version_key in versions {
                self.job_versions.remove(&version_key);
            }
            self.job_summaries.remove(&key);
            if self.scaling_events.remove(&key).is_some() {
                self.indexes.scaling_events = index;
            }
            if !existing.parent_id.is_empty() {
                self.refresh_children_summary(index, namespace, &existing.parent_id);
            }
            self.indexes.jobs = index;
            self.indexes.job_versions = index;
            self.indexes.job_summaries = index;
            effects.event(|| Event {
                topic: Topic::Job,
                event_type: "JobDeregistered".into(),
                key: job_id.to_string(),
                namespace: namespace.to_owned(),
                index,
                payload: EventPayload::Job(existing.clone()),
            });
        } else {
            let mut stopped = (*existing).clone();
            stopped.stop = true;
            self.upsert_job(index, stopped, effects);
        }
        if let Some(eval) = eval {
            self.upsert_evals(index, std::slice::from_ref(eval), effects);
        }
        Ok(())
    }

    /// Stores a new version of a job (or the same version, if the spec did not change) and
    /// returns it as stored.
    pub(super) fn upsert_job(
        &mut self,
        index: u64,
        mut job: Job,
        effects: &mut ApplyEffects,
    ) -> Arc<Job> {
        let key = job_key(&job.namespace, &job.id);
        match self.jobs.get(&key) {
            Some(existing) => {
                job.create_index = existing.create_index;
                if spec_changed(existing, &job) {
                    job.version = existing.version + 1;
                    job.job_modify_index = index;
                    job.stable = false;
                } else {
                    job.version = existing.version;
                    job.job_modify_index = existing.job_modify_index;
                    job.submit_time = existing.submit_time;
                    job.stable = existing.stable;
                }
            }
            None => {
                job.create_index = index;
                job.job_modify_index = index;
                job.version = 0;
            }
        }
        job.modify_index = index;
        job.status = self.job_status(&key, &job);
        let job = Arc::new(job);
        self.jobs.insert(key.clone(), job.clone());
        self.job_versions
            .insert((key.clone(), job.version), job.clone());
        if job.version >= JOB_TRACKED_VERSIONS {
            let oldest_kept = job.version + 1 - JOB_TRACKED_VERSIONS;
            let stale: Vec<_> = self
                .job_versions
                .range((key.clone(), 0)..(key.clone(), oldest_kept))
                .map(|(version_key, _)| version_key.clone())
                .collect();
            for version_key in stale {
                self.job_versions.remove(&version_key);
            }
        }
        self.update_summary_with_job(index, &key, &job);
        if !job.parent_id.is_empty() {
            self.refresh_children_summary(index, &job.namespace, &job.parent_id);
        }
        self.indexes.jobs = index;
        self.indexes.job_versions = index;
        effects.event(|| Event {
            topic: Topic::Job,
            event_type: "JobRegistered".into(),
            key: job.id.to_string(),
            namespace: job.namespace.clone(),
            index,
            payload: EventPayload::Job(job.clone()),
        });
        job
    }

    /// Makes sure the job's summary has an entry for each of its groups.
    fn update_summary_with_job(&mut self, index: u64, key: &JobKey, job: &Job) {
        let mut summary = match self.job_summaries.get(key) {
            Some(summary) => (**summary).clone(),
            None => JobSummary {
                job_id: job.id.clone(),
                namespace: job.namespace.clone(),
                create_index: index,
                ..JobSummary::default()
            },
        };
        let mut changed = summary.create_index == index;
        // Nomad: a periodic or parameterized job's summary counts its children.
        if (job.periodic.is_some() || job.parameterized_job.is_some()) && summary.children.is_none()
        {
            summary.children = Some(JobChildrenSummary::default());
            changed = true;
        }
        for group in &job.task_groups {
            if !summary.summary.contains_key(&group.name) {
                summary
                    .summary
                    .insert(group.name.clone(), TaskGroupSummary::default());
                changed = true;
            }
        }
        if changed {
            summary.modify_index = index;
            self.job_summaries.insert(key.clone(), Arc::new(summary));
            self.indexes.job_summaries = index;
        }
    }

    /// Applies `change` to one task group's summary counts.
    pub(super) fn change_summary(
        &mut self,
        index: u64,
        key: &JobKey,
        group: &str,
        change: impl FnOnce(&mut TaskGroupSummary),
    ) {
        let Some(summary) = self.job_summaries.get_mut(key) else {
            return;
        };
        // Copied only if a snapshot still shares it: a plan changes one summary a thousand times.
        let summary = Arc::make_mut(summary);
        match summary.summary.get_mut(group) {
            Some(group_summary) => change(group_summary),
            None => change(summary.summary.entry(group.to_owned()).or_default()),
        }
        summary.modify_index = index;
        self.indexes.job_summaries = index;
    }

    /// Recomputes a job's status after its allocations or evaluations changed.
    pub(super) fn refresh_job_status(
        &mut self,
        index: u64,
        key: &JobKey,
        effects: &mut ApplyEffects,
    ) {
        let Some(job) = self.jobs.get(key).cloned() else {
            return;
        };
        let status = self.job_status(key, &job);
        if status == job.status {
            return;
        }
        let mut updated = (*job).clone();
        updated.status = status;
        updated.modify_index = index;
        let updated = Arc::new(updated);
        self.jobs.insert(key.clone(), updated.clone());
        self.job_versions
            .insert((key.clone(), updated.version), updated.clone());
        self.indexes.jobs = index;
        if !updated.parent_id.is_empty() {
            self.refresh_children_summary(index, &updated.namespace, &updated.parent_id);
        }
        effects.event(|| Event {
            topic: Topic::Job,
            event_type: "JobStatusUpdated".into(),
            key: updated.id.to_string(),
            namespace: updated.namespace.clone(),
            index,
            payload: EventPayload::Job(updated.clone()),
        });
    }

    /// The jobs launched or dispatched from `parent_id`, in ID order: their IDs are
    /// `<parent>/...`, so they are one ordered range of the jobs table.
    pub fn job_children<'a>(
        &'a self,
        namespace: &'a str,
        parent_id: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Job>> + 'a {
        let prefix = format!("{parent_id}/");
        let start = job_key(namespace, &JobId::from(prefix.as_str()));
        self.jobs
            .range(start..)
            .take_while(move |((ns, id), _)| ns == namespace && id.as_str().starts_with(&prefix))
            .map(|(_, child)| child)
            .filter(move |child| child.parent_id == parent_id)
    }

    /// Recounts the children of `parent_id` by status into its summary (Nomad:
    /// `state_store.go` `setJobSummary` for `ParentID`). Children are launched or dispatched with
    /// IDs `<parent>/...`.
    fn refresh_children_summary(&mut self, index: u64, namespace: &str, parent_id: &str) {
        let parent_key = job_key(namespace, &JobId::from(parent_id));
        let Some(existing) = self.job_summaries.get(&parent_key) else {
            return;
        };
        let mut children = JobChildrenSummary::default();
        for child in self.job_children(namespace, parent_id) {
            match child.status {
                JobStatus::Pending => children.pending += 1,
                JobStatus::Running => children.running += 1,
                JobStatus::Dead => children.dead += 1,
            }
        }
        if existing.children.as_ref() == Some(&children) {
            return;
        }
        let mut summary = (**existing).clone();
        summary.children = Some(children);
        summary.modify_index = index;
        self.job_summaries.insert(parent_key, Arc::new(summary));
        self.indexes.job_summaries = index;
    }

    /// Nomad: `state_store.go` `getJobStatus`.
    fn job_status(&self, key: &JobKey, job: &Job) -> JobStatus {
        if job.job_type == JobType::System || job.is_template() {
            return if job.stop {
                JobStatus::Dead
            } else {
                JobStatus::Running
            };
        }
        let mut has_alloc = false;
        if let Some(allocs) = self.allocs_by_job.get(key) {
            for alloc in allocs.values() {
                has_alloc = true;
                if !alloc.is_terminal() {
                    return JobStatus::Running;
                }
            }
        }
        let mut has_eval = false;
        if let Some(evals) = self.evals_by_job.get(key) {
            for eval in evals.values() {
                if !eval.status.is_terminal() {
                    return JobStatus::Pending;
                }
                has_eval = true;
            }
        }
        if has_eval || has_alloc || job.stop {
            JobStatus::Dead
        } else {
            JobStatus::Pending
        }
    }
}

impl Tables {
    /// Marks one version of a job stable or not, in the versions table and, when it is the
    /// current version, in the jobs table (Nomad: `UpdateJobStability`).
    pub(super) fn apply_job_stability(
        &mut self,
        index: u64,
        namespace: &str,
        job_id: &JobId,
        version: u64,
        stable: bool,
        effects: &mut ApplyEffects,
    ) -> Result<(), ApplyError> {
        let key = job_key(namespace, job_id);
        let Some(existing) = self.job_versions.get(&(key.clone(), version)).cloned() else {
            return Err(ApplyError::not_found(
                ObjectKind::JobVersion,
                format!("{job_id} version {version}"),
            ));
        };
        let mut updated = (*existing).clone();
        updated.stable = stable;
        updated.modify_index = index;
        let updated = Arc::new(updated);
        self.job_versions
            .insert((key.clone(), version), updated.clone());
        self.indexes.job_versions = index;
        if let Some(current) = self.jobs.get(&key).cloned()
            && current.version == version
        {
            let mut current = (*current).clone();
            current.stable = stable;
            current.modify_index = index;
            let current = Arc::new(current);
            self.jobs.insert(key, current.clone());
            self.indexes.jobs = index;
            effects.event(|| Event {
                topic: Topic::Job,
                event_type: "JobStabilityUpdated".into(),
                key: current.id.to_string(),
                namespace: current.namespace.clone(),
                index,
                payload: EventPayload::Job(current.clone()),
            });
        }
        Ok(())
    }
}
