//! `filter=` and pagination on a real `-dev` agent's list endpoints and the CLI's `-filter`,
//! `-per-page` and `-page-token`: the filter selects by the answered JSON, pages follow their
//! `X-Nomad-NextToken` to the end without repeating or losing an item, and a malformed filter is
//! refused naming the problem. Nomad's command shortcuts (`inspect`, `node-status`) work, and `-json` prints
//! the objects a command read.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::dev::Dev;
use crate::support::server::wait_for;

fn job(id: &str, team: &str, priority: u32) -> Value {
    json!({ "Job": {
        "ID": id,
        "Type": "batch",
        "Priority": priority,
        "Meta": { "team": team },
        "TaskGroups": [{
            "Name": "g",
            "RestartPolicy": { "Attempts": 0, "Mode": "fail" },
            "EphemeralDisk": { "SizeMB": 10 },
            "Tasks": [{
                "Name": "t",
                "Driver": "raw_exec",
                "Config": { "command": "/bin/true" },
                "Resources": { "CPU": 20, "MemoryMB": 16 },
            }],
        }],
    }})
}

/// GETs `path`: the status, the `X-Nomad-NextToken` header and the body.
async fn get(dev: &Dev, path: &str) -> anyhow::Result<(u16, Option<String>, String)> {
    let response = reqwest::get(format!("{}{path}", dev.url)).await?;
    let status = response.status().as_u16();
    let token = response
        .headers()
        .get("X-Nomad-NextToken")
        .map(|value| value.to_str().map(str::to_owned))
        .transpose()?;
    Ok((status, token, response.text().await?))
}

fn ids(body: &str) -> anyhow::Result<Vec<String>> {
    let items: Vec<Value> = serde_json::from_str(body)?;
    Ok(items
        .iter()
        .filter_map(|item| item["ID"].as_str().map(str::to_owned))
        .collect())
}

fn encode(text: &str) -> String {
    caravan::api::client::encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_filter_and_page_as_nomads() -> anyhow::Result<()> {
    let dev = Dev::start().await?;
    let jobs = [
        ("list-a1", "a", 40),
        ("list-a2", "a", 60),
        ("list-b1", "b", 50),
        ("list-b2", "b", 70),
        ("list-c1", "c", 50),
    ];
    for (id, team, priority) in jobs {
        dev.put("/v1/jobs", &job(id, team, priority)).await?;
    }
    // Every job has its evaluation before the lists are read.
    wait_for(Duration::from_secs(30), || async {
        let evals = dev.get("/v1/evaluations").await?;
        Ok((evals.as_array().map_or(0, Vec::len) >= jobs.len()).then_some(()))
    })
    .await?;

    // The filter reads the answered JSON: a map key, a number, a regular expression.
    let (status, _, body) = get(
        &dev,
        &format!("/v1/jobs?filter={}", encode(r#"Meta.team == "b""#)),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body)?, ["list-b1", "list-b2"]);
    let expression = r#"Priority >= 0 or ID == "x""#;
    let (status, _, body) = get(&dev, &format!("/v1/jobs?filter={}", encode(expression))).await?;
    assert_eq!(status, 400, "an unknown operator is refused: {body}");
    assert!(
        body.starts_with("failed to read filter expression: "),
        "Nomad's wording: {body}"
    );
    let expression = r#"Priority == 50 and ID matches "^list-[bc]""#;
    let (_, _, body) = get(&dev, &format!("/v1/jobs?filter={}", encode(expression))).await?;
    assert_eq!(ids(&body)?, ["list-b1", "list-c1"]);
    let expression = r#"Meta.team != "a" and not (ID contains "c")"#;
    let (_, _, body) = get(&dev, &format!("/v1/jobs?filter={}", encode(expression))).await?;
    assert_eq!(ids(&body)?, ["list-b1", "list-b2"]);

    // Pages of two follow their tokens to the end: every job once, in ID order.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &token {
            Some(token) => format!("/v1/jobs?per_page=2&next_token={}", encode(token)),
            None => "/v1/jobs?per_page=2".to_owned(),
        };
        let (status, next, body) = get(&dev, &path).await?;
        assert_eq!(status, 200, "{body}");
        let page = ids(&body)?;
        assert!(
            page.len() <= 2,
            "a page holds at most per_page items: {page:?}"
        );
        seen.extend(page);
        pages += 1;
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
        assert!(pages < 10, "the pages end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, jobs.map(|(id, _, _)| id.to_owned()));

    // The filter applies before the page is cut.
    let expression = r#"Meta.team == "a" or Meta.team == "c""#;
    let (_, next, body) = get(
        &dev,
        &format!("/v1/jobs?per_page=2&filter={}", encode(expression)),
    )
    .await?;
    assert_eq!(ids(&body)?, ["list-a1", "list-a2"]);
    assert_eq!(next.as_deref(), Some("list-c1"));

    // The evaluations list filters by the job each belongs to.
    let expression = r#"JobID == "list-b2""#;
    let (_, _, body) = get(
        &dev,
        &format!("/v1/evaluations?filter={}", encode(expression)),
    )
    .await?;
    let evals: Vec<Value> = serde_json::from_str(&body)?;
    assert!(!evals.is_empty());
    assert!(
        evals.iter().all(|eval| eval["JobID"] == "list-b2"),
        "{body}"
    );

    // The CLI: `eval list -filter`, and `-per-page` with Nomad's hint for the next page.
    let run = dev
        .cli(&["eval", "list", "-filter", r#"JobID == "list-c1""#])
        .await?;
    assert!((run.code == Some(0)), "{}", run.stderr);
    assert!(run.stdout.contains("list-c1"), "{}", run.stdout);
    assert!(!run.stdout.contains("list-a1"), "{}", run.stdout);
    let run = dev.cli(&["eval", "list", "-per-page", "2"]).await?;
    assert!((run.code == Some(0)), "{}", run.stderr);
    assert!(
        run.stdout
            .contains("Results have been paginated. To get the next page run:"),
        "{}",
        run.stdout
    );
    let token = run
        .stdout
        .rsplit("-page-token ")
        .next()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    assert!(!token.is_empty(), "{}", run.stdout);
    let first_page: BTreeSet<&str> = run.stdout.lines().skip(1).take(2).collect();
    let next = dev
        .cli(&["eval", "list", "-per-page", "2", "-page-token", &token])
        .await?;
    assert!((next.code == Some(0)), "{}", next.stderr);
    let second_page: BTreeSet<&str> = next.stdout.lines().skip(1).take(2).collect();
    assert!(
        first_page.is_disjoint(&second_page),
        "{first_page:?} / {second_page:?}"
    );
    let run = dev
        .cli(&["node", "status", "-filter", r#"Status == "down""#])
        .await?;
    assert!((run.code == Some(0)), "{}", run.stderr);
    assert!(run.stdout.contains("No nodes registered"), "{}", run.stdout);
    let run = dev.cli(&["eval", "list", "-filter", "JobID =="]).await?;
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("failed to read filter expression"),
        "{}",
        run.stderr
    );

    // `-json` prints what the command read, as the API answers it, indented as Nomad's.
    let run = dev
        .cli(&["eval", "list", "-json", "-filter", r#"JobID == "list-a2""#])
        .await?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let evals: Vec<Value> = serde_json::from_str(&run.stdout)?;
    assert!(!evals.is_empty(), "{}", run.stdout);
    assert!(evals.iter().all(|eval| eval["JobID"] == "list-a2"));
    assert!(run.stdout.contains("\n    {\n        \""), "{}", run.stdout);
    let run = dev.cli(&["node", "status", "-json"]).await?;
    let nodes: Vec<Value> = serde_json::from_str(&run.stdout)?;
    assert_eq!(nodes.len(), 1, "{}", run.stdout);
    let node_id = nodes[0]["ID"].as_str().unwrap_or_default().to_owned();
    let run = dev.cli(&["node", "status", "-json", &node_id]).await?;
    let node: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(node["ID"], node_id.as_str());
    assert!(node["Attributes"].is_object(), "the whole node: {node}");
    let eval_id = evals[0]["ID"].as_str().unwrap_or_default().to_owned();
    let run = dev.cli(&["eval", "status", "-json", &eval_id]).await?;
    let eval: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(eval["ID"], eval_id.as_str());
    let alloc = dev.first_alloc("list-a2", "complete").await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();
    let run = dev.cli(&["alloc", "status", "-json", &alloc_id]).await?;
    let alloc: Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(alloc["ID"], alloc_id.as_str());
    assert_eq!(alloc["JobID"], "list-a2");

    // Nomad's shortcuts run the commands they stand for.
    let run = dev.cli(&["inspect", "list-b1"]).await?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("\"ID\": \"list-b1\""), "{}", run.stdout);
    let run = dev.cli(&["node-status"]).await?;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("ready"), "{}", run.stdout);

    dev.shutdown().await;
    Ok(())
}
