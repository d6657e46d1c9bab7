//! Namespaces on a real server, through the API and the CLI: `default` always exists and cannot
//! be deleted, `namespace apply` (flags or a specification file), `list`, `status` and `delete`
//! answer as Nomad's, a job cannot be registered in a namespace that does not exist, a namespace
//! holding a live job is not deleted, and `NOMAD_NAMESPACE` picks the namespace commands act in.

use std::process::Command;

use serde_json::{Value, json};

use crate::support::server::{TestServer, service_job};
use crate::support::{Run, caravan, caravan_bin};

fn job_in(namespace: &str, id: &str) -> Value {
    let mut job = service_job(id, 1);
    job["Namespace"] = json!(namespace);
    json!({ "Job": job })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_are_made_listed_used_and_deleted_as_nomads() -> anyhow::Result<()> {
    let server = TestServer::start().await?;
    let dir = tempfile::tempdir()?;
    let address = server.url.clone();
    let cli = |args: &[&str]| -> anyhow::Result<Run> {
        let mut all = args.to_vec();
        all.extend(["-address", address.as_str()]);
        caravan(dir.path(), &all)
    };

    let listed = cli(&["namespace", "list"])?;
    assert_eq!(listed.code, Some(0), "{listed:?}");
    assert_eq!(
        listed.stdout.trim(),
        "Name     Description\ndefault  Default shared namespace"
    );

    // A job in a namespace that does not exist is refused, in Nomad's words.
    let refused = server.put("/v1/jobs", &job_in("web", "site")).await?;
    assert_eq!(refused.status().as_u16(), 400);
    assert_eq!(
        refused.text().await?,
        "job \"site\" is in nonexistent namespace \"web\""
    );

    // Made by flags, and from a specification file.
    let applied = cli(&["namespace", "apply", "-description", "the web team", "web"])?;
    assert_eq!(
        applied.stdout.trim(),
        "Successfully applied namespace \"web\"!",
        "{applied:?}"
    );
    let spec = dir.path().join("api.hcl");
    std::fs::write(
        &spec,
        "namespace \"api\" {\n  description = \"from a file\"\n}\n",
    )?;
    let applied = cli(&["namespace", "apply", &spec.to_string_lossy()])?;
    assert_eq!(
        applied.stdout.trim(),
        "Successfully applied namespace \"api\"!",
        "{applied:?}"
    );
    let status = cli(&["namespace", "status", "api"])?;
    assert_eq!(
        status.stdout.trim(),
        "Name        = api\nDescription = from a file\nQuota       = <none>",
        "{status:?}"
    );
    let (namespaces, _): (Vec<Value>, u64) = server.get_json("/v1/namespaces").await?;
    let names: Vec<&str> = namespaces
        .iter()
        .filter_map(|namespace| namespace["Name"].as_str())
        .collect();
    assert_eq!(names, ["api", "default", "web"]);
    let missing = server.get("/v1/namespace/nope").await?;
    assert_eq!(missing.status().as_u16(), 404);

    // A job runs in web; NOMAD_NAMESPACE points the CLI there.
    server.put_json("/v1/jobs", &job_in("web", "site")).await?;
    let in_web: Run = Command::new(caravan_bin())
        .args(["job", "status", "-address", &address])
        .env("NOMAD_NAMESPACE", "web")
        .env_remove("CARAVAN_NAMESPACE")
        .current_dir(dir.path())
        .output()?
        .into();
    assert!(in_web.stdout.contains("site"), "{in_web:?}");
    let in_default = cli(&["job", "status"])?;
    assert!(!in_default.stdout.contains("site"), "{in_default:?}");
    let (everywhere, _): (Vec<Value>, u64) = server.get_json("/v1/jobs?namespace=*").await?;
    assert_eq!(everywhere.len(), 1);

    // web holds a live job: not deleted, as Nomad says.
    let kept = cli(&["namespace", "delete", "web"])?;
    assert_eq!(kept.code, Some(1), "{kept:?}");
    assert!(
        kept.stderr.contains(
            "namespace \"web\" contains at least one non-terminal job \"site\". All jobs must \
             be terminal in namespace before it can be deleted"
        ),
        "{kept:?}"
    );
    let purged = server
        .http
        .delete(format!(
            "{}/v1/job/site?namespace=web&purge=true",
            server.url
        ))
        .send()
        .await?;
    assert!(purged.status().is_success());
    let deleted = cli(&["namespace", "delete", "web"])?;
    assert_eq!(
        deleted.stdout.trim(),
        "Successfully deleted namespace \"web\"!",
        "{deleted:?}"
    );
    let default = cli(&["namespace", "delete", "default"])?;
    assert_eq!(default.code, Some(1));
    assert!(
        default
            .stderr
            .contains("default namespace can not be deleted"),
        "{default:?}"
    );
    server.stop().await;
    Ok(())
}
