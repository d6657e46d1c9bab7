//! `caravan eval status [-monitor] EVAL`.

use std::process::ExitCode;

use serde_json::Value;

use super::EvalStatusArgs;
use super::api_client::{ApiClient, format_time, key_values, short_id};

pub async fn run(args: &EvalStatusArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::from_args(&args.api);
    let eval: Value = client
        .get(&format!("/v1/evaluation/{}", args.eval_id))
        .await?;
    let eval_id = eval["ID"].as_str().unwrap_or_default().to_owned();
    if args.monitor {
        return super::job_run::monitor_eval(&client, &eval_id, args.verbose).await;
    }
    let failures = eval["FailedTGAllocs"]
        .as_object()
        .is_some_and(|failed| !failed.is_empty());
    println!(
        "{}",
        key_values(&[
            ("ID", short_id(&eval_id, args.verbose).to_owned()),
            (
                "Create Time",
                format_time(eval["CreateTime"].as_i64().unwrap_or(0))
            ),
            (
                "Modify Time",
                format_time(eval["ModifyTime"].as_i64().unwrap_or(0))
            ),
            (
                "Status",
                eval["Status"].as_str().unwrap_or_default().to_owned()
            ),
            (
                "Status Description",
                eval["StatusDescription"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            ),
            ("Type", eval["Type"].as_str().unwrap_or_default().to_owned()),
            (
                "TriggeredBy",
                eval["TriggeredBy"].as_str().unwrap_or_default().to_owned()
            ),
            (
                "Job ID",
                eval["JobID"].as_str().unwrap_or_default().to_owned()
            ),
            (
                "Namespace",
                eval["Namespace"].as_str().unwrap_or_default().to_owned()
            ),
            ("Priority", eval["Priority"].to_string()),
            ("Placement Failures", failures.to_string()),
        ])
    );
    Ok(ExitCode::SUCCESS)
}
