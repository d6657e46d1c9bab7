//! Host volumes end to end on a real `-dev` agent: the client's `host_volume` blocks, a group's
//! `volume` and a task's `volume_mount` from a job file, the host giving a Wasm task the
//! directories where it mounts them (a read-only one it can read but not write, a writable one
//! it writes to), a raw_exec task refused as Nomad refuses it, and a mount of an undefined volume
//! refused at registration with Nomad's message.

use std::path::Path;

use caravan::agent::config::HostVolumeConfig;

use crate::support::dev::Dev;

const HELLO_WASM: &str = env!("CARAVAN_EXAMPLE_HELLO_WASM");

/// A dev agent offering `certs` (read-only, holding `greeting.txt`) and `scratch` (writable),
/// both in `dir`.
async fn agent_with_volumes(dir: &Path) -> anyhow::Result<Dev> {
    std::fs::create_dir_all(dir.join("certs"))?;
    std::fs::write(dir.join("certs/greeting.txt"), "hi from the host\n")?;
    agent_offering(dir, &[("certs", true), ("scratch", false)]).await
}

/// A dev agent offering one host volume per `(name, read_only)`, each the directory `dir/name`.
async fn agent_offering(dir: &Path, volumes: &[(&str, bool)]) -> anyhow::Result<Dev> {
    let mut offered = Vec::new();
    for (name, read_only) in volumes {
        let path = dir.join(name);
        std::fs::create_dir_all(&path)?;
        offered.push((
            (*name).to_owned(),
            HostVolumeConfig {
                path: Some(path),
                read_only: Some(*read_only),
            },
        ));
    }
    let guests = Path::new(HELLO_WASM)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Dev::start_with(move |config| {
        config.client.host_volume.extend(offered);
        config.client.artifact.file_allowlist = Some(vec![guests]);
    })
    .await
}

fn write_job(dir: &Path, name: &str, text: &str) -> anyhow::Result<String> {
    let file = dir.join(format!("{name}.nomad.hcl"));
    std::fs::write(&file, text)?;
    Ok(file.to_string_lossy().into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_task_reads_a_read_only_host_volume_and_writes_a_writable_one() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let dev = agent_with_volumes(dir.path()).await?;
    let node = dev.get("/v1/nodes").await?;
    let node_id = node[0]["ID"].as_str().unwrap_or_default().to_owned();
    let node = dev.get(&format!("/v1/node/{node_id}")).await?;
    assert_eq!(node["HostVolumes"]["certs"]["ReadOnly"], true, "{node}");

    let job = write_job(
        dir.path(),
        "volumes",
        &format!(
            r#"job "volumes" {{
  type = "batch"
  group "g" {{
    volume "certs" {{
      type      = "host"
      source    = "certs"
      read_only = true
    }}
    volume "scratch" {{
      type   = "host"
      source = "scratch"
    }}
    task "t" {{
      driver = "wasm"
      artifact {{
        source      = "file://{hello}"
        destination = "local/"
      }}
      volume_mount {{
        volume      = "certs"
        destination = "/certs"
      }}
      volume_mount {{
        volume      = "scratch"
        destination = "/scratch"
      }}
      config {{
        module = "local/hello.wasm"
      }}
      env {{
        HELLO_READ  = "/certs/greeting.txt"
        HELLO_WRITE = "/certs/planted.txt"
      }}
    }}
    task "w" {{
      driver = "wasm"
      artifact {{
        source      = "file://{hello}"
        destination = "local/"
      }}
      volume_mount {{
        volume      = "scratch"
        destination = "/scratch"
      }}
      config {{
        module = "local/hello.wasm"
      }}
      env {{
        HELLO_WRITE = "/scratch/out.txt"
      }}
    }}
  }}
}}
"#,
            hello = HELLO_WASM
        ),
    )?;
    let run = dev.cli(&["job", "run", "-detach", &job]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let alloc = dev.first_alloc("volumes", "complete").await?;
    let alloc_id = alloc["ID"].as_str().unwrap_or_default().to_owned();

    let logs = dev.cli(&["alloc", "logs", &alloc_id, "t"]).await?;
    assert!(
        logs.stdout
            .contains("read /certs/greeting.txt: hi from the host"),
        "{logs:?}"
    );
    assert!(
        logs.stdout.contains("write /certs/planted.txt failed"),
        "the read-only volume took a write: {logs:?}"
    );
    assert!(!dir.path().join("certs/planted.txt").exists());

    let logs = dev.cli(&["alloc", "logs", &alloc_id, "w"]).await?;
    assert!(
        logs.stdout.contains("write /scratch/out.txt: ok"),
        "{logs:?}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("scratch/out.txt"))?,
        "written by a Wasm task\n"
    );
    dev.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_exec_cannot_mount_and_undefined_volumes_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let dev = agent_with_volumes(dir.path()).await?;

    let refused = write_job(
        dir.path(),
        "undefined",
        r#"job "undefined" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      volume_mount {
        volume      = "data"
        destination = "/data"
      }
      config {
        command = "/bin/true"
      }
    }
  }
}
"#,
    )?;
    let run = dev.cli(&["job", "run", "-detach", &refused]).await?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("Volume Mount (0) references undefined volume data"),
        "{run:?}"
    );

    let raw = write_job(
        dir.path(),
        "raw",
        r#"job "raw" {
  type = "batch"
  group "g" {
    volume "certs" {
      type      = "host"
      source    = "certs"
      read_only = true
    }
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }
    task "t" {
      driver = "raw_exec"
      volume_mount {
        volume      = "certs"
        destination = "/certs"
      }
      config {
        command = "/bin/true"
      }
    }
  }
}
"#,
    )?;
    let run = dev.cli(&["job", "run", "-detach", &raw]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let alloc = dev.first_alloc("raw", "failed").await?;
    let events = alloc["TaskStates"]["t"]["Events"].to_string();
    assert!(
        events.contains(r#"task driver \"raw_exec\" for \"t\" does not support host volumes"#),
        "{events}"
    );
    dev.shutdown().await;
    Ok(())
}

/// `per_alloc = true`: each allocation mounts the node volume suffixed with its own index, and
/// the scheduler places only where that volume exists (`shard[0]` and `shard[1]` are offered,
/// so a third allocation finds no node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_alloc_volumes_give_each_allocation_its_own_directory() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let dev = agent_offering(dir.path(), &[("shard[0]", true), ("shard[1]", true)]).await?;
    for index in 0..2 {
        std::fs::write(
            dir.path().join(format!("shard[{index}]/id.txt")),
            format!("shard number {index}\n"),
        )?;
    }
    let job = write_job(
        dir.path(),
        "shards",
        &format!(
            r#"job "shards" {{
  type = "batch"
  group "g" {{
    count = 3
    volume "shard" {{
      type      = "host"
      source    = "shard"
      read_only = true
      per_alloc = true
    }}
    task "t" {{
      driver = "wasm"
      artifact {{
        source      = "file://{hello}"
        destination = "local/"
      }}
      volume_mount {{
        volume      = "shard"
        destination = "/shard"
      }}
      config {{
        module = "local/hello.wasm"
      }}
      env {{
        HELLO_READ = "/shard/id.txt"
      }}
    }}
  }}
}}
"#,
            hello = HELLO_WASM
        ),
    )?;
    let run = dev.cli(&["job", "run", "-detach", &job]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let mut read = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while read.len() < 2 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "two allocations did not complete: {read:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        read.clear();
        let allocs = dev.get("/v1/job/shards/allocations").await?;
        for alloc in allocs.as_array().into_iter().flatten() {
            if alloc["ClientStatus"] != "complete" {
                continue;
            }
            let id = alloc["ID"].as_str().unwrap_or_default();
            let logs = dev.cli(&["alloc", "logs", id, "t"]).await?;
            read.push((
                alloc["Name"].as_str().unwrap_or_default().to_owned(),
                logs.stdout,
            ));
        }
    }
    read.sort();
    assert_eq!(read[0].0, "shards.g[0]");
    assert!(
        read[0].1.contains("read /shard/id.txt: shard number 0"),
        "{read:?}"
    );
    assert_eq!(read[1].0, "shards.g[1]");
    assert!(
        read[1].1.contains("read /shard/id.txt: shard number 1"),
        "{read:?}"
    );
    let status = dev.cli(&["job", "status", "shards"]).await?;
    assert!(
        status.stdout.contains("missing compatible host volumes"),
        "the third allocation has no shard[2]: {status:?}"
    );
    dev.shutdown().await;
    Ok(())
}
