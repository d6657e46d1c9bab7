//! The `job` block (Nomad: jobspec2 `parse_job.go`, `api.Job`).

use hcl::edit::structure::Block;

use super::group::{GroupContext, decode_group};
use super::placement::{decode_affinities, decode_constraints, decode_spreads};
use super::policy::{decode_migrate, decode_reschedule, decode_update};
use super::spec::{labeled_blocks, optional_block};
use super::specs;
use super::task::{TaskContext, decode_task};
use crate::jobspec::body::{BlockReader, Schema, no_labels, single_label};
use crate::jobspec::error::JobspecError;
use crate::structs::{
    Job, JobId, JobSubmission, JobType, ParameterizedJobConfig, PeriodicConfig, Secret, TaskGroup,
    TaskGroupSubmission, Vault,
};

const JOB_SCHEMA: Schema<'static> = Schema {
    arguments: &[
        "all_at_once",
        "datacenters",
        "id",
        "meta",
        "name",
        "namespace",
        "node_pool",
        "priority",
        "region",
        "type",
    ],
    blocks: &[
        "affinity",
        "constraint",
        "group",
        "meta",
        "migrate",
        "multiregion",
        "parameterized",
        "periodic",
        "reschedule",
        "secret",
        "spread",
        "task",
        "ui",
        "update",
        "vault",
    ],
};

const PERIODIC_SCHEMA: Schema<'static> = Schema {
    arguments: &["cron", "crons", "enabled", "prohibit_overlap", "time_zone"],
    blocks: &[],
};

const PARAMETERIZED_SCHEMA: Schema<'static> = Schema {
    arguments: &["meta_optional", "meta_required", "payload"],
    blocks: &[],
};

/// Decodes the one `job "<name>" { ... }` block; `file` reads the top level of the file.
pub(crate) fn decode_job(
    file: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<JobSubmission, JobspecError> {
    let job_name = single_label(file, block, "name")?;
    let job = file.child(
        block,
        format!("job {job_name:?}"),
        String::new(),
        JOB_SCHEMA,
    )?;

    let job_type = match job.string("type", "Type")? {
        None => JobType::default(),
        Some(text) => JobType::parse(&text).ok_or_else(|| {
            let offset = job
                .attribute("type")
                .map_or(job.offset, crate::jobspec::body::value_offset);
            job.error(
                offset,
                format!(
                    "invalid job type {text:?} in {}; expected one of service, batch, system, sysbatch",
                    job.what
                ),
            )
        })?,
    };
    let mut decoded = Job {
        id: JobId::from(job.string("id", "ID")?.unwrap_or_else(|| job_name.clone())),
        name: job
            .string("name", "Name")?
            .unwrap_or_else(|| job_name.clone()),
        job_type,
        region: job.string("region", "Region")?.unwrap_or_default(),
        namespace: job.string("namespace", "Namespace")?.unwrap_or_default(),
        node_pool: job.string("node_pool", "NodePool")?.unwrap_or_default(),
        priority: job.int_in("priority", "Priority")?.unwrap_or(0),
        all_at_once: job.bool("all_at_once", "AllAtOnce")?.unwrap_or(false),
        datacenters: job
            .strings("datacenters", "Datacenters")?
            .unwrap_or_default(),
        meta: job.string_map("meta", "Meta")?.unwrap_or_default(),
        constraints: decode_constraints(&job)?,
        affinities: decode_affinities(&job)?,
        spreads: decode_spreads(&job)?,
        ..Job::default()
    };
    let mut submission = JobSubmission::default();
    if let Some(block) = job.unique_block("update")? {
        submission.update = Some(decode_update(&job, block)?);
    }
    if let Some(block) = job.unique_block("periodic")? {
        decoded.periodic = Some(decode_periodic(&job, block)?);
    }
    if let Some(block) = job.unique_block("parameterized")? {
        decoded.parameterized_job = Some(decode_parameterized(&job, block)?);
    }
    if let Some(block) = job.unique_block("reschedule")? {
        submission.reschedule = Some(decode_reschedule(&job, block, "Reschedule")?);
    }
    if let Some(block) = job.unique_block("migrate")? {
        submission.migrate = Some(decode_migrate(&job, block)?);
    }
    decoded.ui = optional_block(&job, "ui", "UI", &specs::UI)?;
    decoded.multiregion = optional_block(&job, "multiregion", "Multiregion", &specs::MULTIREGION)?;
    let vault: Option<Vault> = optional_block(&job, "vault", "Vault", &specs::VAULT)?;
    let secrets: Vec<Secret> = labeled_blocks(&job, "secret", "Secrets", &specs::SECRET, "Name")?;
    let context = GroupContext {
        job_name: &decoded.id.0,
    };
    // Nomad (jobspec2 `normalizeJob`): a task written directly in the job is a group of its own,
    // named after it, placed before the written groups.
    let mut groups = Vec::new();
    for task_block in job.blocks("task") {
        let task_name = single_label(&job, task_block, "name")?;
        let task_context = TaskContext {
            job_name: context.job_name,
            group_name: &task_name,
        };
        let task = decode_task(&job, task_block, &task_context)?;
        groups.push(TaskGroupSubmission {
            group: TaskGroup {
                name: task_name.clone(),
                ..TaskGroup::default()
            },
            tasks: vec![task],
            ..TaskGroupSubmission::default()
        });
    }
    for group_block in job.blocks("group") {
        groups.push(decode_group(&job, group_block, &context)?);
    }
    for mut group in groups {
        // Nomad (jobspec2 `normalizeJob`): a job-level vault block is the default of every task,
        // and job-level secrets are added to every task's.
        for task in &mut group.tasks {
            if task.task.vault.is_none() {
                task.task.vault.clone_from(&vault);
            }
            task.task.secrets.extend(secrets.iter().cloned());
        }
        submission.task_groups.push(group);
    }
    submission.job = decoded;
    Ok(submission)
}

fn decode_periodic(
    job: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<PeriodicConfig, JobspecError> {
    no_labels(job, block)?;
    let periodic = job.child(
        block,
        "periodic".to_owned(),
        "Periodic".to_owned(),
        PERIODIC_SCHEMA,
    )?;
    Ok(PeriodicConfig {
        // Nomad: a periodic block is enabled unless it says otherwise.
        enabled: periodic.bool("enabled", "Enabled")?.unwrap_or(true),
        spec: periodic.string("cron", "Spec")?.unwrap_or_default(),
        specs: periodic.strings("crons", "Specs")?.unwrap_or_default(),
        spec_type: String::new(),
        prohibit_overlap: periodic
            .bool("prohibit_overlap", "ProhibitOverlap")?
            .unwrap_or(false),
        time_zone: periodic
            .string("time_zone", "TimeZone")?
            .unwrap_or_default(),
    })
}

fn decode_parameterized(
    job: &BlockReader<'_, '_>,
    block: &Block,
) -> Result<ParameterizedJobConfig, JobspecError> {
    no_labels(job, block)?;
    let parameterized = job.child(
        block,
        "parameterized".to_owned(),
        "ParameterizedJob".to_owned(),
        PARAMETERIZED_SCHEMA,
    )?;
    Ok(ParameterizedJobConfig {
        payload: parameterized
            .string("payload", "Payload")?
            .unwrap_or_default(),
        meta_required: parameterized
            .strings("meta_required", "MetaRequired")?
            .unwrap_or_default(),
        meta_optional: parameterized
            .strings("meta_optional", "MetaOptional")?
            .unwrap_or_default(),
    })
}
