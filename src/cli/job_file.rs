//! Reading a job file for `job validate`, `job run` and `job plan`: HCL through the jobspec, or
//! API JSON with `-json`; `-var`/`-var-file` flags and `NOMAD_VAR_*` from the environment.

use anyhow::Context;

use super::{JobFileArgs, VarArgs};
use crate::api::types::jobs::JobRegisterRequest;
use crate::jobspec::{self, ParseConfig};
use crate::structs::{Job, JobSubmission};

/// Parses the job file named in `args` into a job with Nomad's defaults, without validating it:
/// as with Nomad, the server validates at registration.
pub fn load(args: &JobFileArgs) -> anyhow::Result<Job> {
    if args.json {
        return load_json(args);
    }
    let config = parse_config(&args.vars)?;
    Ok(jobspec::parse_file(&args.file, &config)?)
}

/// [`load`], then validates the job here, each problem of an HCL file located in it (`job
/// validate` without an agent).
pub fn load_validated(args: &JobFileArgs) -> anyhow::Result<Job> {
    if args.json {
        let job = load_json(args)?;
        job.validate()
            .map_err(|errors| anyhow::anyhow!("{}: {errors}", args.file.display()))?;
        return Ok(job);
    }
    let config = parse_config(&args.vars)?;
    Ok(jobspec::parse_file_validated(&args.file, &config)?)
}

fn load_json(args: &JobFileArgs) -> anyhow::Result<Job> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("failed to read {}", args.file.display()))?;
    let not_a_job = |error: serde_json::Error| {
        let what = match error.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "is not valid JSON"
            }
            _ => "is not a job",
        };
        anyhow::Error::new(error).context(format!("{} {what}", args.file.display()))
    };
    // Both `{"Job": {...}}` (what `job run -output` prints) and a bare job are accepted.
    let request: JobRegisterRequest = serde_json::from_str(&text).map_err(not_a_job)?;
    let submission = match request.job {
        Some(submission) => submission,
        None => serde_json::from_str::<JobSubmission>(&text).map_err(not_a_job)?,
    };
    Ok(submission.into_job())
}

fn parse_config(vars: &VarArgs) -> anyhow::Result<ParseConfig> {
    let parsed = vars
        .vars
        .iter()
        .map(|flag| ParseConfig::parse_var_flag(flag).map_err(anyhow::Error::msg))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ParseConfig {
        vars: parsed,
        var_files: vars.var_files.clone(),
        env: Vec::new(),
    }
    .with_process_env())
}

/// The job as the API carries it: `{"Job": {...}}`, pretty-printed, fields in the model's order.
pub fn api_json(job: &Job) -> anyhow::Result<String> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct JobRequest<'a> {
        job: &'a Job,
    }
    Ok(serde_json::to_string_pretty(&JobRequest { job })?)
}
