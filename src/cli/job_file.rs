//! Reading a job file for `job validate`, `job run` and `job plan`: HCL through the jobspec, or
//! API JSON with `-json`; `-var`/`-var-file` flags and `NOMAD_VAR_*` from the environment.

use anyhow::Context;

use super::{JobFileArgs, VarArgs};
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
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", args.file.display()))?;
    // Both `{"Job": {...}}` (what `job run -output` prints) and a bare job are accepted.
    let job_value = match value {
        serde_json::Value::Object(mut map) if map.contains_key("Job") => {
            map.remove("Job").unwrap_or_default()
        }
        other => other,
    };
    let submission: JobSubmission = serde_json::from_value(job_value)
        .with_context(|| format!("{} is not a job", args.file.display()))?;
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
