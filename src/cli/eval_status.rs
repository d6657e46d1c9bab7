//! `caravan eval status|list`: evaluations and why their placements failed.
//!
//! Nomad: `command/eval_status.go`, `command/eval_list.go`.

use std::process::ExitCode;

use serde_json::Value;

use super::api_client::{ApiClient, ObjectKind, block_on, str_of};
use super::format::{format_nanos, kv, short_id, table, time_ago};
use super::monitor::{self, MonitorConfig};
use super::output::outln;
use super::{ApiOnlyArgs, EvalStatusArgs};

pub fn status(args: &EvalStatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        if args.eval_id.len() < 2 {
            anyhow::bail!("Eval ID must contain at least two characters.");
        }
        let stub = client.resolve(ObjectKind::Eval, &args.eval_id).await?;
        let eval_id = str_of(&stub, "ID").to_owned();
        if args.monitor {
            let config = MonitorConfig {
                verbose: args.verbose,
            };
            return Ok(ExitCode::from(
                monitor::monitor_eval(&client, &eval_id, config).await?,
            ));
        }
        let eval = client
            .get(&format!("/v1/evaluation/{eval_id}"))
            .await
            .map_err(|err| anyhow::anyhow!("Error querying evaluation: {err}"))?;
        outln!("{}", eval_block(&eval, args.verbose))?;
        if let Some(failed) = failed_groups(&eval) {
            outln!()?;
            outln!("==> Failed Placements")?;
            for (group, metric) in failed {
                for line in monitor::failed_placement_lines(group, metric) {
                    outln!("{line}")?;
                }
            }
            let blocked = str_of(&eval, "BlockedEval");
            if !blocked.is_empty() {
                outln!(
                    "\nEvaluation {:?} waiting for additional capacity to place remainder",
                    short_id(blocked, args.verbose)
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn failed_groups(eval: &Value) -> Option<&serde_json::Map<String, Value>> {
    eval.get("FailedTGAllocs")
        .and_then(Value::as_object)
        .filter(|failed| !failed.is_empty())
}

fn eval_block(eval: &Value, verbose: bool) -> String {
    let time = |field: &str| {
        let nanos = super::api_client::i64_of(eval, field);
        if verbose {
            format_nanos(nanos)
        } else {
            time_ago(nanos)
        }
    };
    let mut pairs = vec![
        ("ID", short_id(str_of(eval, "ID"), verbose)),
        ("Create Time", time("CreateTime")),
        ("Modify Time", time("ModifyTime")),
        ("Status", str_of(eval, "Status").to_owned()),
        ("Status Description", status_description(eval)),
        ("Type", str_of(eval, "Type").to_owned()),
        ("TriggeredBy", str_of(eval, "TriggeredBy").to_owned()),
    ];
    let node_id = str_of(eval, "NodeID");
    if node_id.is_empty() {
        pairs.push(("Job ID", str_of(eval, "JobID").to_owned()));
    } else {
        pairs.push(("Node ID", short_id(node_id, verbose)));
    }
    let deployment_id = str_of(eval, "DeploymentID");
    if !deployment_id.is_empty() {
        pairs.push(("Deployment ID", short_id(deployment_id, verbose)));
    }
    pairs.push(("Namespace", str_of(eval, "Namespace").to_owned()));
    pairs.push((
        "Priority",
        super::api_client::i64_of(eval, "Priority").to_string(),
    ));
    pairs.push((
        "Placement Failures",
        failed_groups(eval).is_some().to_string(),
    ));
    kv(&pairs)
}

fn status_description(eval: &Value) -> String {
    match str_of(eval, "StatusDescription") {
        "" => str_of(eval, "Status").to_owned(),
        text => text.to_owned(),
    }
}

pub fn list(args: &ApiOnlyArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.api)?;
    block_on(async {
        let evals = client
            .get("/v1/evaluations")
            .await
            .map_err(|err| anyhow::anyhow!("Error querying evaluations: {err}"))?;
        let mut evals = evals.as_array().cloned().unwrap_or_default();
        if evals.is_empty() {
            outln!("No evals found")?;
            return Ok(ExitCode::SUCCESS);
        }
        evals.sort_by_key(|eval| std::cmp::Reverse(super::api_client::i64_of(eval, "CreateIndex")));
        outln!("{}", evals_table(&evals, false))?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `ID  Priority  Triggered By  Job ID  Namespace  Node ID  Status  Placement Failures`.
pub fn evals_table(evals: &[Value], verbose: bool) -> String {
    let rows: Vec<Vec<String>> = evals
        .iter()
        .map(|eval| {
            vec![
                short_id(str_of(eval, "ID"), verbose),
                super::api_client::i64_of(eval, "Priority").to_string(),
                str_of(eval, "TriggeredBy").to_owned(),
                str_of(eval, "JobID").to_owned(),
                str_of(eval, "Namespace").to_owned(),
                short_id(str_of(eval, "NodeID"), verbose),
                str_of(eval, "Status").to_owned(),
                failed_groups(eval).is_some().to_string(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "Priority",
            "Triggered By",
            "Job ID",
            "Namespace",
            "Node ID",
            "Status",
            "Placement Failures",
        ],
        &rows,
    )
}
