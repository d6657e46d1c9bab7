//! `GET /v1/job/<id>/versions?diffs=true` and `caravan job history -p` against a real server:
//! each version's field diffs from the one before it, typed and printed as Nomad's.

use serde_json::Value;

use crate::support::caravan;
use crate::support::server::{TestServer, service_job};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_shows_the_field_diffs_between_versions() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    server
        .put_json(
            "/v1/jobs",
            &serde_json::json!({ "Job": service_job("example", 1) }),
        )
        .await?;
    let mut edited = service_job("example", 3);
    edited["TaskGroups"][0]["Tasks"][0]["Resources"]["MemoryMB"] = 512.into();
    server
        .put_json("/v1/jobs", &serde_json::json!({ "Job": edited }))
        .await?;

    let (versions, _): (Value, u64) = server
        .get_json("/v1/job/example/versions?diffs=true")
        .await?;
    let diffs = versions["Diffs"].as_array().cloned().unwrap_or_default();
    assert_eq!(diffs.len(), 1, "{versions}");
    let diff = &diffs[0];
    assert_eq!(diff["Type"], "Edited");
    assert_eq!(diff["ID"], "example");
    let group = &diff["TaskGroups"][0];
    assert_eq!(group["Name"], "cache");
    assert_eq!(group["Type"], "Edited");
    let count = group["Fields"]
        .as_array()
        .and_then(|fields| fields.iter().find(|field| field["Name"] == "Count"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (&count["Type"], &count["Old"], &count["New"]),
        (&"Edited".into(), &"1".into(), &"3".into()),
        "{group}"
    );
    let resources = group["Tasks"][0]["Objects"]
        .as_array()
        .and_then(|objects| objects.iter().find(|object| object["Name"] == "Resources"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(resources["Type"], "Edited", "{group}");
    // Without diffs=true there are none, as Nomad's.
    let (plain, _): (Value, u64) = server.get_json("/v1/job/example/versions").await?;
    assert!(plain["Diffs"].is_null(), "{plain}");

    let dir = tempfile::tempdir()?;
    let url = server.url.clone();
    let run = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || caravan(&dir, &["job", "history", "-address", &url, "-p", "example"])
    })
    .await??;
    assert_eq!(run.code, Some(0), "{run:?}");
    let out = &run.stdout;
    for expected in [
        "Version     = 1",
        "Diff        =",
        "+/- Job: \"example\"",
        "+/- Task Group: \"cache\"",
        "  +/- Count: \"1\" => \"3\"",
        "  +/- Task: \"redis\"",
        "    +/- Resources {",
        // Aligned with the longest field of the object (`MemoryMaxMB`), as Nomad's.
        "      +/- MemoryMB:    \"256\" => \"512\"",
        "Version     = 0",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
    // The oldest version has nothing to differ from.
    let oldest = out.split("Version     = 0").nth(1).unwrap_or_default();
    assert!(!oldest.contains("Diff"), "{out}");

    let url = server.url.clone();
    let plain = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || caravan(&dir, &["job", "history", "-address", &url, "example"])
    })
    .await??;
    assert_eq!(plain.code, Some(0), "{plain:?}");
    assert!(!plain.stdout.contains("Diff"), "{}", plain.stdout);
    assert!(plain.stdout.contains("Version     = 1"), "{}", plain.stdout);
    server.stop().await;
    Ok(())
}
