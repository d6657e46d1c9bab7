//! The job: the unit a user submits, made of task groups.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::nullable;
use super::validation::{ValidationErrors, check_name, check_path_name};
use super::{Affinity, Constraint, JobId, Spread, TaskGroup, UpdateStrategy};

/// Which scheduler places the job.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobType {
    /// Long-running services, restarted and rescheduled forever.
    #[default]
    Service,
    /// Work that runs to completion.
    Batch,
    /// One allocation on every feasible node.
    System,
    /// Run-to-completion on every feasible node.
    Sysbatch,
}

impl JobType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Batch => "batch",
            Self::System => "system",
            Self::Sysbatch => "sysbatch",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "service" => Some(Self::Service),
            "batch" => Some(Self::Batch),
            "system" => Some(Self::System),
            "sysbatch" => Some(Self::Sysbatch),
            _ => None,
        }
    }
}

impl fmt::Display for JobType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's lifecycle status as the servers derive it from its allocations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    #[default]
    Pending,
    Running,
    Dead,
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Dead => "dead",
        })
    }
}

/// `periodic` block: launch the job on a cron schedule.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PeriodicConfig {
    pub enabled: bool,
    /// The cron expression (`SpecType` "cron").
    pub spec: String,
    /// Several cron expressions (Nomad 1.6+ `crons`).
    #[serde(deserialize_with = "nullable::default")]
    pub specs: Vec<String>,
    pub spec_type: String,
    pub prohibit_overlap: bool,
    pub time_zone: String,
}

/// `parameterized` block: the job is a template dispatched with a payload and meta.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ParameterizedJobConfig {
    /// "optional", "required" or "forbidden".
    pub payload: String,
    #[serde(deserialize_with = "nullable::default")]
    pub meta_required: Vec<String>,
    #[serde(deserialize_with = "nullable::default")]
    pub meta_optional: Vec<String>,
}

/// A job as the API carries it (`{"Job": {...}}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Job {
    pub region: String,
    pub namespace: String,
    #[serde(rename = "ID")]
    pub id: JobId,
    pub name: String,
    #[serde(rename = "Type")]
    pub job_type: JobType,
    pub priority: i32,
    pub all_at_once: bool,
    #[serde(deserialize_with = "nullable::default")]
    pub datacenters: Vec<String>,
    pub node_pool: String,
    #[serde(deserialize_with = "nullable::default")]
    pub constraints: Vec<Constraint>,
    #[serde(deserialize_with = "nullable::default")]
    pub affinities: Vec<Affinity>,
    #[serde(deserialize_with = "nullable::default")]
    pub spreads: Vec<Spread>,
    #[serde(deserialize_with = "nullable::default")]
    pub task_groups: Vec<TaskGroup>,
    pub update: Option<UpdateStrategy>,
    pub periodic: Option<PeriodicConfig>,
    #[serde(rename = "ParameterizedJob")]
    pub parameterized_job: Option<ParameterizedJobConfig>,
    pub dispatched: bool,
    /// A dispatched job's payload (base64 in JSON, as Go's `[]byte`), at most
    /// [`Job::DISPATCH_PAYLOAD_LIMIT`] bytes; the client writes it to each task's
    /// `dispatch_payload` file.
    #[serde(with = "payload_base64", skip_serializing_if = "Vec::is_empty")]
    pub payload: Vec<u8>,
    #[serde(deserialize_with = "nullable::default")]
    pub meta: BTreeMap<String, String>,
    /// `multiregion` block: refused at registration (caravan has one region per cluster).
    pub multiregion: Option<super::Multiregion>,
    /// `ui` block: shown, not acted on.
    #[serde(rename = "UI")]
    pub ui: Option<super::JobUiConfig>,
    /// True once the job has been stopped (deregistered without purge).
    pub stop: bool,
    #[serde(rename = "ParentID")]
    pub parent_id: String,
    pub status: JobStatus,
    pub status_description: String,
    pub stable: bool,
    pub version: u64,
    /// Unix nanoseconds of the submission that made this version.
    pub submit_time: i64,
    pub create_index: u64,
    pub modify_index: u64,
    pub job_modify_index: u64,
}

impl Job {
    /// Nomad's default job priority.
    pub const DEFAULT_PRIORITY: i32 = 50;

    /// The largest dispatch payload, in bytes (Nomad: `DispatchPayloadSizeLimit`, 16 KiB).
    pub const DISPATCH_PAYLOAD_LIMIT: usize = 16 * 1024;

    /// Fills every field left unset with Nomad's default by reading the job as a submission
    /// ([`JobSubmission::from_stored`](super::JobSubmission::from_stored)) and converting it
    /// through the one conversion, [`JobSubmission::into_job`](super::JobSubmission::into_job).
    /// For jobs built in code; job files and API bodies decode into a submission directly.
    pub fn canonicalize(&mut self) {
        *self = super::JobSubmission::from_stored(std::mem::take(self)).into_job();
    }

    /// Checks the job as Nomad's `Job.Validate` does and returns every problem, each with the path
    /// of the offending field.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if self.id.0.is_empty() {
            errors.push("ID", "missing job ID");
        } else if self.id.0.contains(char::is_whitespace) {
            errors.push("ID", format!("job ID {:?} contains a space", self.id.0));
        } else if self.id.0.contains('\0') {
            errors.push("ID", "job ID contains a null character");
        } else {
            check_path_name("ID", "job ID", &self.id.0, &mut errors);
        }
        if self.name.is_empty() {
            errors.push("Name", "missing job name");
        } else {
            check_path_name("Name", "job name", &self.name, &mut errors);
        }
        if !(1..=100).contains(&self.priority) {
            errors.push(
                "Priority",
                format!(
                    "job priority must be between 1 and 100, got {}",
                    self.priority
                ),
            );
        }
        if self.datacenters.iter().any(String::is_empty) {
            errors.push("Datacenters", "datacenter name must not be empty");
        }
        if self.task_groups.is_empty() {
            // Nomad's wording (`Job.Validate`).
            errors.push("TaskGroups", "Missing job task groups");
        }
        let mut seen_groups = BTreeMap::new();
        for (group_idx, group) in self.task_groups.iter().enumerate() {
            let path = format!("TaskGroups[{}]", group.name);
            if let Some(previous_idx) = seen_groups.insert(group.name.clone(), group_idx) {
                errors.push(
                    &path,
                    format!(
                        "task group {:?} is defined twice (groups {} and {})",
                        group.name,
                        previous_idx + 1,
                        group_idx + 1
                    ),
                );
            }
            group.validate(self.job_type, &path, &mut errors);
        }
        for (constraint_idx, constraint) in self.constraints.iter().enumerate() {
            constraint.validate(&format!("Constraints[{constraint_idx}]"), &mut errors);
        }
        for (affinity_idx, affinity) in self.affinities.iter().enumerate() {
            affinity.validate(&format!("Affinities[{affinity_idx}]"), &mut errors);
        }
        for (spread_idx, spread) in self.spreads.iter().enumerate() {
            spread.validate(&format!("Spreads[{spread_idx}]"), &mut errors);
        }
        if matches!(self.job_type, JobType::System | JobType::Sysbatch)
            && !self.affinities.is_empty()
        {
            errors.push("Affinities", "system jobs may not have an affinity block");
        }
        if let Some(periodic) = &self.periodic
            && periodic.enabled
        {
            if !matches!(self.job_type, JobType::Batch | JobType::Sysbatch) {
                errors.push(
                    "Periodic",
                    "periodic can only be used with batch or sysbatch jobs",
                );
            }
            if periodic.spec.is_empty() && periodic.specs.is_empty() {
                errors.push("Periodic.Spec", "periodic job must have a cron spec");
            }
            if !matches!(periodic.spec_type.as_str(), "" | "cron") {
                errors.push(
                    "Periodic.SpecType",
                    format!(
                        "Unknown periodic specification type {:?}",
                        periodic.spec_type
                    ),
                );
            }
            let specs = (!periodic.spec.is_empty())
                .then_some(("Periodic.Spec".to_owned(), &periodic.spec))
                .into_iter()
                .chain(
                    periodic
                        .specs
                        .iter()
                        .enumerate()
                        .map(|(idx, spec)| (format!("Periodic.Specs[{idx}]"), spec)),
                );
            if let Err(problem) = periodic.zone() {
                // Nomad's message: "Invalid time zone %q: %v".
                errors.push(
                    "Periodic.TimeZone",
                    format!("Invalid time zone {:?}: {problem}", periodic.time_zone),
                );
            }
            for (path, spec) in specs {
                // Nomad's message: "Invalid cron spec %q: %v".
                if let Err(problem) = super::cron::check_cron(spec) {
                    errors.push(&path, format!("Invalid cron spec {spec:?}: {problem}"));
                }
            }
        }
        if let Some(parameterized) = &self.parameterized_job {
            if !matches!(self.job_type, JobType::Batch | JobType::Sysbatch) {
                errors.push(
                    "ParameterizedJob",
                    "parameterized can only be used with batch or sysbatch jobs",
                );
            }
            if !matches!(
                parameterized.payload.as_str(),
                "" | "optional" | "required" | "forbidden"
            ) {
                errors.push(
                    "ParameterizedJob.Payload",
                    format!(
                        "payload must be \"optional\", \"required\" or \"forbidden\", got {:?}",
                        parameterized.payload
                    ),
                );
            }
        }
        for key in self.meta.keys() {
            check_name("Meta", key, &mut errors);
        }
        if let Some(ui) = &self.ui
            && ui.description.len() > super::JobUiConfig::MAX_DESCRIPTION_LEN
        {
            errors.push(
                "UI.Description",
                format!(
                    "UI description must be under 1000 characters, currently {}",
                    ui.description.len()
                ),
            );
        }
        super::integrations::unsupported(self, &mut errors);
        errors.into_result()
    }

    /// The group named `name`, if the job has one.
    pub fn task_group(&self, name: &str) -> Option<&TaskGroup> {
        self.task_groups.iter().find(|group| group.name == name)
    }

    /// True for job types whose allocations run to completion rather than forever.
    pub fn is_batch_like(&self) -> bool {
        matches!(self.job_type, JobType::Batch | JobType::Sysbatch)
    }

    /// True if the job is a periodic or parameterized template that is launched, not run.
    pub fn is_template(&self) -> bool {
        self.periodic
            .as_ref()
            .is_some_and(|periodic| periodic.enabled)
            || (self.parameterized_job.is_some() && !self.dispatched)
    }
}

/// `[]byte` as Go's JSON writes it: a base64 string, `null` for none.
pub mod payload_base64 {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Vec::new()),
            Some(text) => STANDARD.decode(text.as_bytes()).map_err(|error| {
                serde::de::Error::custom(format!("payload is not base64: {error}"))
            }),
        }
    }
}
