//! `caravan job validate FILE`: parses the job file here, then asks the agent to validate it
//! (`PUT /v1/validate/job`, as Nomad's `job validate` does) so the answer is the server's own,
//! integrations refused and operator limits included. When no agent answers, the job is validated
//! here, each problem located in the file.
//!
//! Nomad: `command/job_validate.go`.

use std::process::ExitCode;

use super::block_on;
use super::output::outln;
use super::{JobValidateArgs, job_file};
use crate::api::client::ClientError;
use crate::api::types::jobs::{JobValidateRequest, JobValidateResponse};
use crate::structs::Job;

pub fn run(args: &JobValidateArgs) -> anyhow::Result<ExitCode> {
    // A file that does not parse fails with the jobspec's one located line, as before.
    let job = job_file::load(&args.job)?;
    let client = args.api.client()?;
    let body = JobValidateRequest::<&Job> { job: Some(&job) };
    let reply = block_on(async {
        Ok(client
            .put::<_, JobValidateResponse>("/v1/validate/job", &body)
            .await)
    })?;
    match reply {
        Ok(response) => {
            if !response.error.is_empty() {
                anyhow::bail!("Job validation errors:\n{}", response.error);
            }
            if !response.warnings.is_empty() {
                outln!("Job Warnings:\n{}\n", response.warnings)?;
            }
        }
        // The agent answered but refused the request: its reason is the answer.
        Err(err @ ClientError::UnexpectedResponse { .. }) => {
            anyhow::bail!("Error validating job: {err}");
        }
        // No agent: validate here, with each problem's position in the file.
        Err(_) => {
            job_file::load_validated(&args.job)
                .map_err(|err| anyhow::anyhow!("Job validation errors:\n{err:#}"))?;
        }
    }
    outln!("Job validation successful")?;
    Ok(ExitCode::SUCCESS)
}
