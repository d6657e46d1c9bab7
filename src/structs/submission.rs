//! The job as a user submits it, and the one conversion that applies Nomad's defaults.
//!
//! A job file (through the jobspec) and an API body (`{"Job": {...}}`) both decode into
//! [`JobSubmission`], whose blocks keep `Option` wherever "unset" differs from zero (Nomad's
//! `api.Job` uses pointers for this): `Count`, and the restart, reschedule, update, migrate,
//! ephemeral disk, resources and logs blocks. [`JobSubmission::into_job`] is the only place that
//! fills in Nomad's defaults (Nomad: `api/jobs.go` `Job.Canonicalize`, `api/tasks.go`
//! `TaskGroup.Canonicalize` and `Task.Canonicalize`): a partially written block is completed field
//! by field, a job-level `update`/`reschedule`/`migrate` block under a group's own, and a task's
//! `restart` over its group's policy. Every other field of the job decodes straight into the
//! stored types, in the same pass over the JSON object (see `FromOverlay`).

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use super::{
    DelayFunction, EphemeralDisk, Job, JobType, LogConfig, MigrateStrategy, Namespace,
    ReschedulePolicy, Resources, RestartMode, RestartPolicy, Task, TaskGroup, UpdateStrategy,
    duration, nullable,
};

/// A `restart` block as written (Nomad: `api.RestartPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartSubmission {
    pub attempts: Option<i32>,
    #[serde(with = "duration::opt_nanos")]
    pub interval: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub delay: Option<Duration>,
    pub mode: Option<RestartMode>,
    pub render_templates: Option<bool>,
}

impl RestartSubmission {
    /// The written fields over `base` (Nomad: `RestartPolicy.Merge`).
    fn over(&self, base: &RestartPolicy) -> RestartPolicy {
        RestartPolicy {
            attempts: self.attempts.unwrap_or(base.attempts),
            interval: self.interval.unwrap_or(base.interval),
            delay: self.delay.unwrap_or(base.delay),
            mode: self.mode.unwrap_or(base.mode),
            render_templates: self.render_templates.unwrap_or(base.render_templates),
        }
    }
}

/// A `reschedule` block as written (Nomad: `api.ReschedulePolicy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RescheduleSubmission {
    pub attempts: Option<i32>,
    #[serde(with = "duration::opt_nanos")]
    pub interval: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub delay: Option<Duration>,
    pub delay_function: Option<DelayFunction>,
    #[serde(with = "duration::opt_nanos")]
    pub max_delay: Option<Duration>,
    pub unlimited: Option<bool>,
}

impl RescheduleSubmission {
    /// `self` overlaid by the fields `other` wrote.
    fn merged(&self, other: &Self) -> Self {
        Self {
            attempts: other.attempts.or(self.attempts),
            interval: other.interval.or(self.interval),
            delay: other.delay.or(self.delay),
            delay_function: other.delay_function.or(self.delay_function),
            max_delay: other.max_delay.or(self.max_delay),
            unlimited: other.unlimited.or(self.unlimited),
        }
    }

    /// The written fields over `base`. A block that limits `attempts` without saying `unlimited`
    /// means a limited policy, even over the service default of unlimited rescheduling.
    fn over(&self, base: &ReschedulePolicy) -> ReschedulePolicy {
        let limited_by_attempts = self.attempts.is_some_and(|attempts| attempts > 0);
        ReschedulePolicy {
            attempts: self.attempts.unwrap_or(base.attempts),
            interval: self.interval.unwrap_or(base.interval),
            delay: self.delay.unwrap_or(base.delay),
            delay_function: self.delay_function.unwrap_or(base.delay_function),
            max_delay: self.max_delay.unwrap_or(base.max_delay),
            unlimited: self
                .unlimited
                .unwrap_or(base.unlimited && !limited_by_attempts),
        }
    }
}

/// An `update` block as written (Nomad: `api.UpdateStrategy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateSubmission {
    #[serde(with = "duration::opt_nanos")]
    pub stagger: Option<Duration>,
    pub max_parallel: Option<i32>,
    pub health_check: Option<String>,
    #[serde(with = "duration::opt_nanos")]
    pub min_healthy_time: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub healthy_deadline: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub progress_deadline: Option<Duration>,
    pub canary: Option<i32>,
    pub auto_revert: Option<bool>,
    pub auto_promote: Option<bool>,
}

impl UpdateSubmission {
    fn merged(&self, other: &Self) -> Self {
        Self {
            stagger: other.stagger.or(self.stagger),
            max_parallel: other.max_parallel.or(self.max_parallel),
            health_check: other.health_check.clone().or(self.health_check.clone()),
            min_healthy_time: other.min_healthy_time.or(self.min_healthy_time),
            healthy_deadline: other.healthy_deadline.or(self.healthy_deadline),
            progress_deadline: other.progress_deadline.or(self.progress_deadline),
            canary: other.canary.or(self.canary),
            auto_revert: other.auto_revert.or(self.auto_revert),
            auto_promote: other.auto_promote.or(self.auto_promote),
        }
    }

    fn over(&self, base: &UpdateStrategy) -> UpdateStrategy {
        UpdateStrategy {
            stagger: self.stagger.unwrap_or(base.stagger),
            max_parallel: self.max_parallel.unwrap_or(base.max_parallel),
            health_check: self
                .health_check
                .clone()
                .unwrap_or_else(|| base.health_check.clone()),
            min_healthy_time: self.min_healthy_time.unwrap_or(base.min_healthy_time),
            healthy_deadline: self.healthy_deadline.unwrap_or(base.healthy_deadline),
            progress_deadline: self.progress_deadline.unwrap_or(base.progress_deadline),
            canary: self.canary.unwrap_or(base.canary),
            auto_revert: self.auto_revert.unwrap_or(base.auto_revert),
            auto_promote: self.auto_promote.unwrap_or(base.auto_promote),
        }
    }
}

/// A `migrate` block as written (Nomad: `api.MigrateStrategy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MigrateSubmission {
    pub max_parallel: Option<i32>,
    pub health_check: Option<String>,
    #[serde(with = "duration::opt_nanos")]
    pub min_healthy_time: Option<Duration>,
    #[serde(with = "duration::opt_nanos")]
    pub healthy_deadline: Option<Duration>,
}

impl MigrateSubmission {
    fn merged(&self, other: &Self) -> Self {
        Self {
            max_parallel: other.max_parallel.or(self.max_parallel),
            health_check: other.health_check.clone().or(self.health_check.clone()),
            min_healthy_time: other.min_healthy_time.or(self.min_healthy_time),
            healthy_deadline: other.healthy_deadline.or(self.healthy_deadline),
        }
    }

    fn over(&self, base: &MigrateStrategy) -> MigrateStrategy {
        MigrateStrategy {
            max_parallel: self.max_parallel.unwrap_or(base.max_parallel),
            health_check: self
                .health_check
                .clone()
                .unwrap_or_else(|| base.health_check.clone()),
            min_healthy_time: self.min_healthy_time.unwrap_or(base.min_healthy_time),
            healthy_deadline: self.healthy_deadline.unwrap_or(base.healthy_deadline),
        }
    }
}

/// An `ephemeral_disk` block as written (Nomad: `api.EphemeralDisk`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EphemeralDiskSubmission {
    pub sticky: Option<bool>,
    pub migrate: Option<bool>,
    #[serde(rename = "SizeMB")]
    pub size_mb: Option<i32>,
}

/// A `resources` block as written (Nomad: `api.Resources`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ResourcesSubmission {
    #[serde(rename = "CPU")]
    pub cpu: Option<i32>,
    pub cores: Option<i32>,
    #[serde(rename = "MemoryMB")]
    pub memory_mb: Option<i32>,
    #[serde(rename = "MemoryMaxMB")]
    pub memory_max_mb: Option<i32>,
    #[serde(rename = "DiskMB")]
    pub disk_mb: Option<i32>,
    #[serde(deserialize_with = "nullable::default")]
    pub networks: Vec<super::NetworkResource>,
    #[serde(deserialize_with = "nullable::default")]
    pub devices: Vec<super::RequestedDevice>,
    #[serde(rename = "NUMA")]
    pub numa: Option<super::NumaResource>,
    #[serde(rename = "SecretsMB")]
    pub secrets_mb: Option<i32>,
}

/// A `logs` block as written (Nomad: `api.LogConfig`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LogConfigSubmission {
    pub max_files: Option<i32>,
    #[serde(rename = "MaxFileSizeMB")]
    pub max_file_size_mb: Option<i32>,
    pub disabled: Option<bool>,
}

/// A task as submitted: the stored task's fields, with the blocks whose defaults differ from zero
/// kept optional field by field (the stored task's own copies of them stay `None`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskSubmission {
    pub task: Task,
    pub resources: Option<ResourcesSubmission>,
    pub restart_policy: Option<RestartSubmission>,
    pub log_config: Option<LogConfigSubmission>,
}

/// A task group as submitted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskGroupSubmission {
    pub group: TaskGroup,
    pub count: Option<i32>,
    pub tasks: Vec<TaskSubmission>,
    pub restart_policy: Option<RestartSubmission>,
    pub reschedule_policy: Option<RescheduleSubmission>,
    pub ephemeral_disk: Option<EphemeralDiskSubmission>,
    pub update: Option<UpdateSubmission>,
    pub migrate: Option<MigrateSubmission>,
}

/// A job as submitted (`{"Job": {...}}` or a job file).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSubmission {
    pub job: Job,
    pub task_groups: Vec<TaskGroupSubmission>,
    pub update: Option<UpdateSubmission>,
    /// A job-level `reschedule` block: every group's default (Nomad: `api.Job.Reschedule`).
    pub reschedule: Option<RescheduleSubmission>,
    /// A job-level `migrate` block: every group's default (Nomad: `api.Job.Migrate`).
    pub migrate: Option<MigrateSubmission>,
}

impl<'de> Deserialize<'de> for TaskSubmission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SubmissionVisitor::<Self>(PhantomData))
    }
}

impl<'de> Deserialize<'de> for TaskGroupSubmission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SubmissionVisitor::<Self>(PhantomData))
    }
}

impl<'de> Deserialize<'de> for JobSubmission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SubmissionVisitor::<Self>(PhantomData))
    }
}

/// A submission read from a JSON object: its own optional blocks are taken out of the map as
/// their keys come, every other key goes to the stored type's derived `Deserialize`. One pass
/// over the map, so error paths (`Job.TaskGroups[0].Tasks[0].KillTimeout`) and the API's strict
/// decoding reach every field.
trait FromOverlay: Sized {
    const EXPECTING: &'static str;
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error>;
}

struct SubmissionVisitor<T>(PhantomData<T>);

impl<'de, T: FromOverlay> Visitor<'de> for SubmissionVisitor<T> {
    type Value = T;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::from_map(map)
    }
}

/// A map access that hands each key to `capture` first; keys it does not take pass through.
struct Overlay<A, F> {
    map: A,
    capture: F,
}

impl<'de, A, F> MapAccess<'de> for Overlay<A, F>
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<bool, A::Error>,
{
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.map.next_key::<String>()? else {
                return Ok(None);
            };
            if (self.capture)(&key, &mut self.map)? {
                continue;
            }
            return seed.deserialize(key.into_deserializer()).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

fn overlay<'de, T, A, F>(map: A, capture: F) -> Result<T, A::Error>
where
    T: Deserialize<'de>,
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<bool, A::Error>,
{
    T::deserialize(MapAccessDeserializer::new(Overlay { map, capture }))
}

/// A list that JSON may send as `null`.
fn list<'de, T: Deserialize<'de>, A: MapAccess<'de>>(map: &mut A) -> Result<Vec<T>, A::Error> {
    Ok(map.next_value::<Option<Vec<T>>>()?.unwrap_or_default())
}

impl FromOverlay for TaskSubmission {
    const EXPECTING: &'static str = "struct Task";

    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let (mut resources, mut restart_policy, mut log_config) = (None, None, None);
        let task = overlay(map, |key: &str, map: &mut A| {
            match key {
                "Resources" => resources = map.next_value()?,
                "RestartPolicy" => restart_policy = map.next_value()?,
                "LogConfig" => log_config = map.next_value()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(Self {
            task,
            resources,
            restart_policy,
            log_config,
        })
    }
}

impl FromOverlay for TaskGroupSubmission {
    const EXPECTING: &'static str = "struct TaskGroup";

    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut submission = Self::default();
        submission.group = overlay(map, |key: &str, map: &mut A| {
            match key {
                "Count" => submission.count = map.next_value()?,
                "Tasks" => submission.tasks = list(map)?,
                "RestartPolicy" => submission.restart_policy = map.next_value()?,
                "ReschedulePolicy" => submission.reschedule_policy = map.next_value()?,
                "EphemeralDisk" => submission.ephemeral_disk = map.next_value()?,
                "Update" => submission.update = map.next_value()?,
                "Migrate" => submission.migrate = map.next_value()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(submission)
    }
}

impl FromOverlay for JobSubmission {
    const EXPECTING: &'static str = "struct Job";

    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Self, A::Error> {
        let mut submission = Self::default();
        submission.job = overlay(map, |key: &str, map: &mut A| {
            match key {
                "TaskGroups" => submission.task_groups = list(map)?,
                "Update" => submission.update = map.next_value()?,
                "Reschedule" => submission.reschedule = map.next_value()?,
                "Migrate" => submission.migrate = map.next_value()?,
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(submission)
    }
}

/// Nomad's defaults, by job type where they differ (Nomad: `nomad/structs` `DefaultServiceJob*`,
/// `DefaultBatchJob*`, `DefaultUpdateStrategy`, `DefaultMigrateStrategy`).
pub(crate) mod defaults {
    use super::*;

    /// Service and system jobs: 2 attempts in 30m; batch jobs: 3 in 24h; 15s apart.
    pub fn restart(job_type: JobType) -> RestartPolicy {
        let (attempts, interval) = match job_type {
            JobType::Service | JobType::System => (2, Duration::from_secs(30 * 60)),
            JobType::Batch | JobType::Sysbatch => (3, Duration::from_secs(24 * 3600)),
        };
        RestartPolicy {
            attempts,
            interval,
            delay: Duration::from_secs(15),
            mode: RestartMode::Fail,
            render_templates: false,
        }
    }

    /// Service jobs reschedule without limit with exponential backoff from 30s to 1h; batch jobs
    /// once a day after 5s; system jobs are never rescheduled.
    pub fn reschedule(job_type: JobType) -> Option<ReschedulePolicy> {
        match job_type {
            JobType::Service => Some(ReschedulePolicy {
                attempts: 0,
                interval: Duration::ZERO,
                delay: Duration::from_secs(30),
                delay_function: DelayFunction::Exponential,
                max_delay: Duration::from_secs(3600),
                unlimited: true,
            }),
            JobType::Batch => Some(ReschedulePolicy {
                attempts: 1,
                interval: Duration::from_secs(24 * 3600),
                delay: Duration::from_secs(5),
                delay_function: DelayFunction::Constant,
                max_delay: Duration::ZERO,
                unlimited: false,
            }),
            JobType::System | JobType::Sysbatch => None,
        }
    }

    pub fn update() -> UpdateStrategy {
        UpdateStrategy {
            stagger: Duration::from_secs(30),
            max_parallel: 1,
            health_check: "checks".to_owned(),
            min_healthy_time: Duration::from_secs(10),
            healthy_deadline: Duration::from_secs(300),
            progress_deadline: Duration::from_secs(600),
            canary: 0,
            auto_revert: false,
            auto_promote: false,
        }
    }

    pub fn migrate() -> MigrateStrategy {
        MigrateStrategy {
            max_parallel: 1,
            health_check: "checks".to_owned(),
            min_healthy_time: Duration::from_secs(10),
            healthy_deadline: Duration::from_secs(300),
        }
    }

    pub const LOG_MAX_FILES: i32 = 10;
    pub const LOG_MAX_FILE_SIZE_MB: i32 = 10;
}

impl JobSubmission {
    /// The stored job: every field the submission left out filled with Nomad's default. This is
    /// the one place defaults are applied, for job files and API bodies alike.
    pub fn into_job(self) -> Job {
        let Self {
            mut job,
            task_groups,
            update,
            reschedule,
            migrate,
        } = self;
        if job.name.is_empty() {
            job.name = job.id.to_string();
        }
        if job.namespace.is_empty() {
            job.namespace = Namespace::DEFAULT.to_owned();
        }
        if job.region.is_empty() {
            job.region = "global".to_owned();
        }
        if job.priority == 0 {
            job.priority = Job::DEFAULT_PRIORITY;
        }
        if job.datacenters.is_empty() {
            job.datacenters = vec!["*".to_owned()];
        }
        if job.node_pool.is_empty() {
            job.node_pool = "default".to_owned();
        }
        if let Some(periodic) = &mut job.periodic {
            if periodic.spec_type.is_empty() {
                periodic.spec_type = "cron".to_owned();
            }
            if periodic.time_zone.is_empty() {
                periodic.time_zone = "UTC".to_owned();
            }
        }
        if let Some(parameterized) = &mut job.parameterized_job
            && parameterized.payload.is_empty()
        {
            parameterized.payload = "optional".to_owned();
        }
        let job_level = JobLevel {
            job_type: job.job_type,
            update: update.as_ref(),
            reschedule: reschedule.as_ref(),
            migrate: migrate.as_ref(),
        };
        job.task_groups = task_groups
            .into_iter()
            .map(|group| group.into_group(&job_level))
            .collect();
        // The job-level update block has been merged into the groups; as Nomad's
        // `ApiJobToStructJob`, the job keeps only its stagger and max_parallel, and only when
        // max_parallel is positive.
        job.update = match job.job_type {
            JobType::Service | JobType::System => update
                .map(|update| update.over(&defaults::update()))
                .filter(|update| update.max_parallel > 0)
                .map(|update| UpdateStrategy {
                    stagger: update.stagger,
                    max_parallel: update.max_parallel,
                    ..UpdateStrategy::default()
                }),
            JobType::Batch | JobType::Sysbatch => None,
        };
        job
    }

    /// A job already in the stored shape, read as a submission in which every block present is
    /// written, except the fields whose zero value has always meant "unset" there (zero
    /// durations, empty strings, a zero `max_parallel`, a zero disk, CPU or memory). Used by
    /// [`Job::canonicalize`] for jobs built in code.
    pub fn from_stored(mut job: Job) -> Self {
        let task_groups = std::mem::take(&mut job.task_groups)
            .into_iter()
            .map(TaskGroupSubmission::from_stored)
            .collect();
        let update = job.update.take().map(|update| update_from_stored(&update));
        Self {
            job,
            task_groups,
            update,
            reschedule: None,
            migrate: None,
        }
    }
}

/// What a group inherits from its job.
struct JobLevel<'a> {
    job_type: JobType,
    update: Option<&'a UpdateSubmission>,
    reschedule: Option<&'a RescheduleSubmission>,
    migrate: Option<&'a MigrateSubmission>,
}

/// Merges a job-level block under a group-level one; `None` when neither is written.
fn inherit<T: Clone + Default>(
    job_level: Option<&T>,
    group_level: Option<T>,
    merged: impl Fn(&T, &T) -> T,
) -> Option<T> {
    match (job_level, group_level) {
        (None, None) => None,
        (Some(job_level), None) => Some(job_level.clone()),
        (None, Some(group_level)) => Some(group_level),
        (Some(job_level), Some(group_level)) => Some(merged(job_level, &group_level)),
    }
}

impl TaskGroupSubmission {
    fn into_group(self, job_level: &JobLevel<'_>) -> TaskGroup {
        let Self {
            mut group,
            count,
            tasks,
            restart_policy,
            reschedule_policy,
            ephemeral_disk,
            update,
            migrate,
        } = self;
        let job_type = job_level.job_type;
        // Nomad: an unset count is the scaling block's min, else 1 (`TaskGroup.Canonicalize`).
        let scaling_min = group
            .scaling
            .as_ref()
            .and_then(|scaling| scaling.min)
            .and_then(|min| i32::try_from(min).ok());
        group.count = count.or(scaling_min).unwrap_or(1);
        // Nomad: `ScalingPolicy.Canonicalize` (enabled, min = the group's count, horizontal) and
        // `DisconnectStrategy.Canonicalize`.
        if let Some(scaling) = &mut group.scaling {
            scaling.enabled.get_or_insert(true);
            scaling.min.get_or_insert(i64::from(group.count));
            if scaling.policy_type.is_empty() {
                scaling.policy_type = "horizontal".to_owned();
            }
        }
        if let Some(disconnect) = &mut group.disconnect {
            disconnect.replace.get_or_insert(true);
            disconnect
                .reconcile
                .get_or_insert_with(|| "best_score".to_owned());
        }
        let restart = restart_policy
            .unwrap_or_default()
            .over(&defaults::restart(job_type));
        group.reschedule_policy = defaults::reschedule(job_type).map(|base| {
            inherit(
                job_level.reschedule,
                reschedule_policy,
                RescheduleSubmission::merged,
            )
            .unwrap_or_default()
            .over(&base)
        });
        let disk = ephemeral_disk.unwrap_or_default();
        group.ephemeral_disk = Some(EphemeralDisk {
            sticky: disk.sticky.unwrap_or(false),
            migrate: disk.migrate.unwrap_or(false),
            size_mb: disk.size_mb.unwrap_or(EphemeralDisk::DEFAULT_SIZE_MB),
        });
        group.update = match job_type {
            JobType::Service | JobType::System => Some(
                inherit(job_level.update, update, UpdateSubmission::merged)
                    .unwrap_or_default()
                    .over(&defaults::update()),
            ),
            JobType::Batch | JobType::Sysbatch => None,
        };
        group.migrate = (job_type == JobType::Service).then(|| {
            inherit(job_level.migrate, migrate, MigrateSubmission::merged)
                .unwrap_or_default()
                .over(&defaults::migrate())
        });
        for network in &mut group.networks {
            network.canonicalize();
        }
        for service in &mut group.services {
            service.canonicalize();
        }
        group.tasks = tasks
            .into_iter()
            .map(|task| task.into_task(&restart))
            .collect();
        group.restart_policy = Some(restart);
        group
    }

    fn from_stored(mut group: TaskGroup) -> Self {
        let tasks = std::mem::take(&mut group.tasks)
            .into_iter()
            .map(TaskSubmission::from_stored)
            .collect();
        let restart_policy = group.restart_policy.take().map(|policy| RestartSubmission {
            attempts: Some(policy.attempts),
            interval: nonzero(policy.interval),
            delay: nonzero(policy.delay),
            mode: Some(policy.mode),
            render_templates: Some(policy.render_templates),
        });
        let reschedule_policy = group
            .reschedule_policy
            .take()
            .map(|policy| RescheduleSubmission {
                attempts: Some(policy.attempts),
                interval: nonzero(policy.interval).filter(|_| !policy.unlimited),
                delay: nonzero(policy.delay),
                delay_function: Some(policy.delay_function),
                max_delay: nonzero(policy.max_delay),
                unlimited: Some(policy.unlimited),
            });
        let ephemeral_disk = group
            .ephemeral_disk
            .take()
            .map(|disk| EphemeralDiskSubmission {
                sticky: Some(disk.sticky),
                migrate: Some(disk.migrate),
                size_mb: (disk.size_mb != 0).then_some(disk.size_mb),
            });
        let update = group
            .update
            .take()
            .map(|update| update_from_stored(&update));
        let migrate = group.migrate.take().map(|migrate| MigrateSubmission {
            max_parallel: (migrate.max_parallel != 0).then_some(migrate.max_parallel),
            health_check: nonempty(migrate.health_check),
            min_healthy_time: nonzero(migrate.min_healthy_time),
            healthy_deadline: nonzero(migrate.healthy_deadline),
        });
        Self {
            count: Some(group.count),
            group,
            tasks,
            restart_policy,
            reschedule_policy,
            ephemeral_disk,
            update,
            migrate,
        }
    }
}

impl TaskSubmission {
    fn into_task(self, group_restart: &RestartPolicy) -> Task {
        let Self {
            mut task,
            resources,
            restart_policy,
            log_config,
        } = self;
        // A task's restart block is merged over its group's policy; without one the task follows
        // the group's (kept on the group, where the alloc runner reads it).
        task.restart_policy = restart_policy.map(|policy| policy.over(group_restart));
        let resources = resources.unwrap_or_default();
        let cores = resources.cores.unwrap_or(0);
        task.resources = Some(Resources {
            cpu: resources.cpu.unwrap_or(if cores == 0 {
                Resources::DEFAULT_CPU
            } else {
                0
            }),
            cores,
            memory_mb: resources.memory_mb.unwrap_or(Resources::DEFAULT_MEMORY_MB),
            memory_max_mb: resources.memory_max_mb.unwrap_or(0),
            disk_mb: resources.disk_mb.unwrap_or(0),
            networks: resources.networks,
            devices: resources
                .devices
                .into_iter()
                .map(|device| super::RequestedDevice {
                    count: Some(device.count()),
                    ..device
                })
                .collect(),
            numa: resources.numa,
            secrets_mb: resources.secrets_mb,
        });
        let logs = log_config.unwrap_or_default();
        task.log_config = Some(LogConfig {
            max_files: logs.max_files.unwrap_or(defaults::LOG_MAX_FILES),
            max_file_size_mb: logs
                .max_file_size_mb
                .unwrap_or(defaults::LOG_MAX_FILE_SIZE_MB),
            disabled: logs.disabled.unwrap_or(false),
        });
        task.apply_defaults();
        task
    }

    fn from_stored(mut task: Task) -> Self {
        let resources = task.resources.take().map(|resources| ResourcesSubmission {
            cpu: (resources.cpu != 0).then_some(resources.cpu),
            cores: Some(resources.cores),
            memory_mb: (resources.memory_mb != 0).then_some(resources.memory_mb),
            memory_max_mb: Some(resources.memory_max_mb),
            disk_mb: Some(resources.disk_mb),
            networks: resources.networks,
            devices: resources.devices,
            numa: resources.numa,
            secrets_mb: resources.secrets_mb,
        });
        let restart_policy = task.restart_policy.take().map(|policy| RestartSubmission {
            attempts: Some(policy.attempts),
            interval: nonzero(policy.interval),
            delay: nonzero(policy.delay),
            mode: Some(policy.mode),
            render_templates: Some(policy.render_templates),
        });
        let log_config = task.log_config.take().map(|logs| LogConfigSubmission {
            max_files: (logs.max_files != 0).then_some(logs.max_files),
            max_file_size_mb: (logs.max_file_size_mb != 0).then_some(logs.max_file_size_mb),
            disabled: Some(logs.disabled),
        });
        Self {
            task,
            resources,
            restart_policy,
            log_config,
        }
    }
}

fn update_from_stored(update: &UpdateStrategy) -> UpdateSubmission {
    UpdateSubmission {
        stagger: nonzero(update.stagger),
        max_parallel: (update.max_parallel != 0).then_some(update.max_parallel),
        health_check: nonempty(update.health_check.clone()),
        min_healthy_time: nonzero(update.min_healthy_time),
        healthy_deadline: nonzero(update.healthy_deadline),
        progress_deadline: nonzero(update.progress_deadline),
        canary: Some(update.canary),
        auto_revert: Some(update.auto_revert),
        auto_promote: Some(update.auto_promote),
    }
}

fn nonzero(duration: Duration) -> Option<Duration> {
    (!duration.is_zero()).then_some(duration)
}

fn nonempty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}
