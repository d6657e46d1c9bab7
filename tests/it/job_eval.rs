//! `caravan job eval` and the `-t` output format on a real `-dev` agent: a failed allocation that
//! its reschedule policy leaves failed is replaced once an operator forces a reschedule; templates
//! format what the API answers.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::dev::{Dev, shell_job};
use crate::support::server::wait_for;

fn ids(allocs: &Value) -> BTreeSet<String> {
    allocs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|alloc| alloc["ID"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_eval_force_reschedule_replaces_a_failed_allocation() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put("/v1/jobs", &shell_job("eval-fail", "batch", "exit 3"))
        .await?;
    let failed = dev.first_alloc("eval-fail", "failed").await?;
    let failed_id = failed["ID"].as_str().unwrap_or_default().to_owned();

    // A plain evaluation changes nothing: the policy allows no reschedule.
    let plain = dev.cli(&["job", "eval", "eval-fail"]).await?;
    assert_eq!(plain.code, Some(0), "{}{}", plain.stdout, plain.stderr);
    assert!(
        plain.stdout.contains("finished with status \"complete\""),
        "{}",
        plain.stdout
    );
    let allocs = dev.get("/v1/job/eval-fail/allocations").await?;
    assert_eq!(ids(&allocs), BTreeSet::from([failed_id.clone()]));

    let forced = dev
        .cli(&["job", "eval", "-force-reschedule", "-detach", "eval-fail"])
        .await?;
    assert_eq!(forced.code, Some(0), "{}", forced.stderr);
    assert!(
        forced.stdout.starts_with("Created eval ID: \""),
        "{}",
        forced.stdout
    );
    // The list stub has no PreviousAllocation (as Nomad's): follow the failed one's NextAllocation.
    let next_id = wait_for(Duration::from_secs(30), || async {
        let old = dev.get(&format!("/v1/allocation/{failed_id}")).await?;
        Ok(old["NextAllocation"].as_str().map(str::to_owned))
    })
    .await?;
    let replacement = dev.get(&format!("/v1/allocation/{next_id}")).await?;
    assert_eq!(replacement["PreviousAllocation"], failed_id.as_str());
    let allocs = dev.get("/v1/job/eval-fail/allocations").await?;
    assert_eq!(
        ids(&allocs),
        BTreeSet::from([failed_id.clone(), next_id.clone()])
    );
    let evals = dev.get("/v1/job/eval-fail/evaluations").await?;
    let eval = evals
        .as_array()
        .into_iter()
        .flatten()
        .find(|eval| eval["ID"] == replacement["EvalID"])
        .cloned()
        .unwrap_or_default();
    assert_eq!(eval["TriggeredBy"], "job-register", "{evals}");
    let old = dev.get(&format!("/v1/allocation/{failed_id}")).await?;
    assert_eq!(old["DesiredTransition"]["ForceReschedule"], true, "{old}");

    // Through the API with an empty body, as Nomad's clients may send it.
    let (status, body) = dev
        .put_raw("/v1/job/eval-fail/evaluate", &json!(null))
        .await?;
    assert_eq!(status, 400, "a null body is not a request: {body}");
    let (status, body) = dev
        .put_raw(
            "/v1/job/eval-fail/evaluate",
            &json!({ "JobID": "other", "EvalOptions": {} }),
        )
        .await?;
    assert_eq!((status, body.trim()), (400, "JobID not same as job name"));
    let response = reqwest::Client::new()
        .put(format!("{}/v1/job/eval-fail/evaluate", dev.url))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await?;
    assert!(
        answer["EvalID"].as_str().is_some_and(|id| id.len() == 36),
        "{answer}"
    );

    // A periodic job is launched, not evaluated.
    let mut periodic = shell_job("eval-cron", "batch", "true");
    periodic["Job"]["Periodic"] =
        json!({ "Enabled": true, "SpecType": "cron", "Spec": "0 0 1 1 *" });
    dev.put("/v1/jobs", &periodic).await?;
    let refused = dev.cli(&["job", "eval", "eval-cron"]).await?;
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("can't evaluate periodic job"),
        "{}",
        refused.stderr
    );
    dev.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_t_formats_the_api_objects_with_a_go_template() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    dev.put("/v1/jobs", &shell_job("fmt-job", "batch", "exit 0"))
        .await?;
    dev.first_alloc("fmt-job", "complete").await?;
    let allocs = dev.get("/v1/job/fmt-job/allocations").await?;

    let listed = dev
        .cli(&[
            "job",
            "allocs",
            "-t",
            "{{range .}}{{.ID}} {{.ClientStatus}}\n{{end}}",
            "fmt-job",
        ])
        .await?;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let expected: String = allocs
        .as_array()
        .into_iter()
        .flatten()
        .map(|alloc| format!("{} complete\n", alloc["ID"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(listed.stdout, format!("{expected}\n"));

    let inspected = dev
        .cli(&[
            "job",
            "inspect",
            "-t",
            "{{.ID}} {{.Type}} {{len .TaskGroups}}",
            "fmt-job",
        ])
        .await?;
    assert_eq!(
        inspected.stdout, "fmt-job batch 1\n",
        "{}",
        inspected.stderr
    );

    let node = dev
        .cli(&["node", "status", "-t", "{{range .}}{{.Status}}{{end}}"])
        .await?;
    assert_eq!(node.stdout, "ready\n", "{}", node.stderr);

    let both = dev
        .cli(&["job", "allocs", "-json", "-t", "{{.}}", "fmt-job"])
        .await?;
    assert_ne!(both.code, Some(0), "-json and -t together are refused");
    let broken = dev
        .cli(&["job", "inspect", "-t", "{{.ID", "fmt-job"])
        .await?;
    assert_eq!(broken.code, Some(1));
    assert!(
        broken.stderr.contains("Error parsing the template"),
        "{}",
        broken.stderr
    );
    dev.shutdown().await;
    Ok(())
}
