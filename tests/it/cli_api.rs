//! The CLI against a real agent process: `caravan agent -config` on free loopback ports, then
//! `caravan job run|status|stop`, `alloc status|logs|fs|exec`, `node status`, `server members`, `eval
//! list` with `-address`, their output checked against Nomad's formats.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::support::{Run, caravan_bin};

/// A running agent, killed when dropped (also when a test panics).
struct AgentProcess {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl AgentProcess {
    fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_ignoring(dir, "")
    }

    /// Starts the agent with the signals `ignored` (`trap` names, space-separated) ignored, as
    /// `nohup` or a background shell would leave them.
    fn start_ignoring(dir: &Path, ignored: &str) -> anyhow::Result<Self> {
        let (http, rpc) = (free_port()?, free_port()?);
        let config = dir.join("agent.hcl");
        std::fs::write(
            &config,
            format!(
                r#"
bind_addr = "127.0.0.1"
data_dir  = "{data}"
name      = "cli-node"
ports {{
  http = {http}
  rpc  = {rpc}
}}
server {{
  enabled          = true
  bootstrap_expect = 1
}}
client {{
  enabled = true
}}
plugin "raw_exec" {{
  config {{
    enabled = true
  }}
}}
"#,
                data = dir.join("data").display()
            ),
        )?;
        let log = dir.join("agent.log");
        let mut command = if ignored.is_empty() {
            Command::new(caravan_bin())
        } else {
            let mut shell = Command::new("/bin/sh");
            shell
                .args(["-c", &format!("trap '' {ignored}; exec \"$0\" \"$@\"")])
                .arg(caravan_bin());
            shell
        };
        let child = command
            .args(["agent", "-config"])
            .arg(&config)
            .stdout(Stdio::from(std::fs::File::create(&log)?))
            .stderr(Stdio::from(std::fs::File::create(dir.join("agent.err"))?))
            .spawn()
            .context("failed to start the agent")?;
        Ok(Self {
            child,
            address: format!("http://127.0.0.1:{http}"),
            log,
        })
    }

    /// Runs `caravan ARGS -address ADDR`.
    fn cli(&self, dir: &Path, args: &[&str]) -> anyhow::Result<Run> {
        let (command, rest) = args.split_at(args.len().min(2));
        let output = Command::new(caravan_bin())
            .args(command)
            .args(["-address", &self.address])
            .args(rest)
            .current_dir(dir)
            .env_remove("CARAVAN_ADDR")
            .env_remove("NOMAD_ADDR")
            .output()?;
        Ok(Run::from(output))
    }

    /// Runs the command until its stdout satisfies `done`, or fails with the last output.
    fn cli_until(
        &self,
        dir: &Path,
        args: &[&str],
        within: Duration,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Run> {
        let deadline = Instant::now() + within;
        loop {
            let run = self.cli(dir, args)?;
            if run.code == Some(0) && done(&run.stdout) {
                return Ok(run);
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                anyhow::bail!(
                    "`caravan {}` never got there: {run:?}\nagent log:\n{log}",
                    args.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const SERVICE_JOB: &str = r#"
job "web" {
  datacenters = ["dc1"]
  type        = "service"
  group "web" {
    count = 2
    task "server" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo hello from $NOMAD_ALLOC_ID; exec sleep 600"]
      }
      resources {
        cpu    = 100
        memory = 64
      }
    }
  }
}
"#;

const BATCH_JOB: &str = r#"
job "web-once" {
  datacenters = ["dc1"]
  type        = "batch"
  group "once" {
    task "say" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "echo batch done; echo batch complaint >&2"]
      }
    }
  }
}
"#;

/// The allocation IDs in the first column of a `job status` allocations table.
fn alloc_rows<'a>(status: &'a str, state: &str) -> Vec<&'a str> {
    status
        .split("Allocations\n")
        .nth(1)
        .unwrap_or("")
        .lines()
        .skip(1)
        .filter(|line| line.split_whitespace().nth(5) == Some(state))
        .filter_map(|line| line.split_whitespace().next())
        .collect()
}

#[test]
fn cli_drives_a_real_agent() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let agent = AgentProcess::start(dir)?;
    let ready = Duration::from_secs(60);

    let nodes = agent.cli_until(dir, &["node", "status"], ready, |out| out.contains("ready"))?;
    assert!(
        nodes
            .stdout
            .starts_with("ID        Node Pool  DC   Name      Class   Drain  Eligibility  Status"),
        "{}",
        nodes.stdout
    );
    assert!(
        nodes
            .stdout
            .contains("cli-node  <none>  false  eligible     ready"),
        "{}",
        nodes.stdout
    );
    let this_node = agent.cli(dir, &["node", "status", "-self"])?;
    assert!(
        this_node.stdout.contains("Status        = ready"),
        "{this_node:?}"
    );
    let drivers = this_node
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("Driver Status = "))
        .unwrap_or("");
    assert!(
        drivers.split(',').any(|driver| driver == "raw_exec"),
        "{this_node:?}"
    );

    let members = agent.cli(dir, &["server", "members"])?;
    let header: Vec<&str> = members
        .stdout
        .lines()
        .next()
        .unwrap_or("")
        .split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect();
    assert_eq!(
        header,
        [
            "Name",
            "Address",
            "Port",
            "Status",
            "Leader",
            "Raft Version",
            "Build",
            "Datacenter",
            "Region"
        ],
        "{members:?}"
    );
    let member_row = members.stdout.lines().nth(1).unwrap_or("");
    let fields: Vec<&str> = member_row.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"cli-node.global"), "{members:?}");
    assert_eq!(
        fields.get(3..5),
        Some(&["alive", "true"][..]),
        "{members:?}"
    );

    // agent-info: each subsystem, then its counters indented; -json the API's object.
    let info = agent.cli(dir, &["agent-info"])?;
    assert_eq!(info.code, Some(0), "{info:?}");
    let lines: Vec<&str> = info.stdout.lines().collect();
    let raft = lines.iter().position(|line| *line == "raft");
    assert!(raft.is_some(), "{info:?}");
    assert!(
        lines[raft.unwrap_or_default() + 1..]
            .iter()
            .take_while(|line| line.starts_with("  "))
            .any(|line| line.starts_with("  applied_index = ")),
        "{info:?}"
    );
    let info = agent.cli(dir, &["agent-info", "-json"])?;
    let parsed: serde_json::Value = serde_json::from_str(&info.stdout)?;
    assert_eq!(parsed["config"]["Region"], "global", "{info:?}");
    let term = agent.cli(dir, &["agent-info", "-t{{ .stats.raft.term }}"])?;
    assert!(term.stdout.trim().parse::<u64>().is_ok(), "{term:?}");

    // job run: Nomad's evaluation monitor.
    std::fs::write(dir.join("web.nomad.hcl"), SERVICE_JOB)?;
    std::fs::write(dir.join("once.nomad.hcl"), BATCH_JOB)?;
    let run = agent.cli(dir, &["job", "run", "web.nomad.hcl"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("==> ") && lines[0].contains(": Monitoring evaluation \""),
        "{run:?}"
    );
    assert!(
        lines[1].starts_with("    ") && lines[1].ends_with(": Evaluation triggered by job \"web\""),
        "{run:?}"
    );
    let created = lines
        .iter()
        .filter(|line| line.contains("created: node \"") && line.ends_with("group \"web\""))
        .count();
    assert_eq!(created, 2, "{run:?}");
    assert!(
        run.stdout
            .contains("Evaluation status changed: \"pending\" -> \"complete\""),
        "{run:?}"
    );
    assert!(
        run.stdout.contains("finished with status \"complete\""),
        "{run:?}"
    );

    let batch = agent.cli(dir, &["job", "run", "once.nomad.hcl"])?;
    assert_eq!(batch.code, Some(0), "{batch:?}");
    assert!(
        batch
            .stdout
            .contains("Evaluation triggered by job \"web-once\""),
        "{batch:?}"
    );

    // job status: the jobs table, then one job with its summary and allocations.
    let jobs = agent.cli(dir, &["job", "status"])?;
    assert!(
        jobs.stdout
            .starts_with("ID        Type     Priority  Status"),
        "{jobs:?}"
    );
    assert!(jobs.stdout.contains("Submit Date"), "{jobs:?}");
    let status = agent.cli_until(dir, &["job", "status", "web"], ready, |out| {
        alloc_rows(out, "running").len() == 2
    })?;
    for expected in [
        "ID            = web",
        "Type          = service",
        "Namespace     = default",
        "Node Pool     = default",
        "Status        = running",
        "Parameterized = false",
        "Summary\nTask Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown\nweb         0       0         2        0       0         0     0",
        "Allocations\nID        Node ID   Task Group  Version  Desired  Status   Created",
    ] {
        assert!(
            status.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            status.stdout
        );
    }
    assert!(status.stdout.contains(" ago"), "{}", status.stdout);
    let web_allocs: Vec<String> = alloc_rows(&status.stdout, "running")
        .into_iter()
        .map(str::to_owned)
        .collect();
    let batch_status = agent.cli_until(dir, &["job", "status", "web-once"], ready, |out| {
        alloc_rows(out, "complete").len() == 1 && out.contains("Status        = dead")
    })?;
    let batch_alloc = alloc_rows(&batch_status.stdout, "complete")[0].to_owned();

    // Prefixes: an exact ID wins, an ambiguous prefix lists the candidates, a missing one says so.
    let ambiguous = agent.cli(dir, &["job", "status", "we"])?;
    assert_eq!(ambiguous.code, Some(1), "{ambiguous:?}");
    assert!(
        ambiguous.stderr.contains("Prefix matched multiple jobs"),
        "{ambiguous:?}"
    );
    assert!(
        ambiguous.stderr.contains("web-once") && ambiguous.stderr.contains("web "),
        "{ambiguous:?}"
    );
    let missing = agent.cli(dir, &["job", "status", "nope"])?;
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("No job(s) with prefix or ID \"nope\" found"),
        "{missing:?}"
    );
    let missing_alloc = agent.cli(dir, &["alloc", "status", "zz"])?;
    assert!(
        missing_alloc
            .stderr
            .contains("No allocation(s) with prefix or id \"zz\" found"),
        "{missing_alloc:?}"
    );

    // alloc status by an 8-character prefix (and a 6-character one).
    let web_alloc = &web_allocs[0];
    let alloc = agent.cli_until(dir, &["alloc", "status", &web_alloc[..6]], ready, |out| {
        out.contains("Started")
    })?;
    for expected in [
        &format!("ID                  = {web_alloc}") as &str,
        "Job ID              = web",
        "Client Status       = running",
        "Node Name           = cli-node",
        "Task \"server\" is \"running\"",
        "Task Resources:\nCPU",
        "Task Events:\nStarted At     = ",
        "Total Restarts = 0",
        "Recent Events:\nTime                  Type        Description",
        "Task started by client",
        "Received    Task received by client",
    ] {
        assert!(
            alloc.stdout.contains(expected),
            "missing {expected:?} in\n{}",
            alloc.stdout
        );
    }
    let events: Vec<&str> = alloc
        .stdout
        .split("Recent Events:\n")
        .nth(1)
        .unwrap_or("")
        .lines()
        .skip(1)
        .collect();
    assert!(
        events.first().is_some_and(|line| line.contains("Started")),
        "newest first: {events:?}"
    );

    // alloc logs: the task's stdout, and stderr with -stderr.
    let logs = agent.cli_until(dir, &["alloc", "logs", web_alloc], ready, |out| {
        out.contains("hello from")
    })?;
    assert!(logs.stdout.starts_with("hello from "), "{logs:?}");
    let batch_logs = agent.cli(dir, &["alloc", "logs", &batch_alloc, "say"])?;
    assert_eq!(batch_logs.stdout, "batch done\n", "{batch_logs:?}");
    let batch_stderr = agent.cli(dir, &["alloc", "logs", "-stderr", &batch_alloc])?;
    assert_eq!(batch_stderr.stdout, "batch complaint\n", "{batch_stderr:?}");
    let tail = agent.cli(dir, &["alloc", "logs", "-tail", "-n", "1", &batch_alloc])?;
    assert_eq!(tail.stdout, "batch done\n", "{tail:?}");
    let fs = agent.cli(dir, &["alloc", "fs", &batch_alloc, "alloc/logs"])?;
    assert!(
        fs.stdout
            .starts_with("Mode        Size  Modified Time         Name"),
        "{fs:?}"
    );
    assert!(fs.stdout.contains("say.stdout.0"), "{fs:?}");

    // alloc exec: the command's output and exit code come back through the websocket.
    let exec = agent.cli(
        dir,
        &[
            "alloc",
            "exec",
            web_alloc,
            "/bin/sh",
            "-c",
            "echo in $NOMAD_TASK_NAME; exit 3",
        ],
    )?;
    assert_eq!(
        (exec.code, exec.stdout.as_str()),
        (Some(3), "in server\n"),
        "{exec:?}"
    );

    let evals = agent.cli(dir, &["eval", "list"])?;
    // Columns are as wide as their widest cell (a `deployment-watcher` trigger, for one).
    assert!(
        evals.stdout.lines().any(|line| {
            let cells: Vec<&str> = line.split_whitespace().collect();
            cells.get(2..4) == Some(&["job-register", "web-once"][..])
        }),
        "{evals:?}"
    );

    // job stop: monitored like job run, then the job is dead.
    let stop = agent.cli(dir, &["job", "stop", "web"])?;
    assert_eq!(stop.code, Some(0), "{stop:?}");
    assert!(
        stop.stdout.contains("Evaluation triggered by job \"web\""),
        "{stop:?}"
    );
    assert!(
        stop.stdout.contains("finished with status \"complete\""),
        "{stop:?}"
    );
    agent.cli_until(dir, &["job", "status", "web"], ready, |out| {
        out.contains("Status        = dead (stopped)") && alloc_rows(out, "running").is_empty()
    })?;
    let summary = agent.cli(dir, &["status"])?;
    assert!(summary.stdout.contains("dead (stopped)"), "{summary:?}");
    Ok(())
}

/// The bits of `/proc/PID/status`'s `SigIgn` mask: signal N is bit N-1.
fn ignored_signals(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let mask = status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .context("no SigIgn in /proc status")?;
    Ok(u64::from_str_radix(mask.trim(), 16)?)
}

/// A task starts with every signal at its default disposition whatever the agent inherited: an
/// agent started with SIGHUP and SIGQUIT ignored (as under `nohup` or from a background shell;
/// it handles SIGINT itself) runs a shell task whose traps of them fire on `alloc signal` (a shell
/// cannot trap a signal ignored on entry).
#[test]
fn tasks_receive_signals_the_agent_ignores() -> anyhow::Result<()> {
    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    let agent = AgentProcess::start_ignoring(dir, "HUP QUIT")?;
    let ready = Duration::from_secs(60);
    agent.cli_until(dir, &["node", "status"], ready, |out| out.contains("ready"))?;
    let hup_quit = 0b101;
    assert_eq!(
        ignored_signals(agent.child.id())? & hup_quit,
        hup_quit,
        "the agent should run with SIGHUP and SIGQUIT ignored"
    );
    std::fs::write(
        dir.join("traps.nomad.hcl"),
        r#"
job "traps" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "/bin/sh"
        args    = ["-c", "trap 'echo got HUP' HUP; trap 'echo got QUIT' QUIT; echo armed; i=0; while [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done"]
      }
    }
  }
}
"#,
    )?;
    let run = agent.cli(dir, &["job", "run", "-detach", "traps.nomad.hcl"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let status = agent.cli_until(dir, &["job", "status", "traps"], ready, |out| {
        alloc_rows(out, "running").len() == 1
    })?;
    let alloc = alloc_rows(&status.stdout, "running")[0].to_owned();
    agent.cli_until(dir, &["alloc", "logs", &alloc], ready, |out| {
        out.contains("armed")
    })?;
    for (signal, line) in [("SIGHUP", "got HUP"), ("SIGQUIT", "got QUIT")] {
        let sent = agent.cli(dir, &["alloc", "signal", "-s", signal, &alloc])?;
        assert_eq!(sent.code, Some(0), "{sent:?}");
        agent.cli_until(dir, &["alloc", "logs", &alloc], ready, |out| {
            out.contains(line)
        })?;
    }
    let stop = agent.cli(dir, &["job", "stop", "-detach", "traps"])?;
    assert_eq!(stop.code, Some(0), "{stop:?}");
    agent.cli_until(dir, &["job", "status", "traps"], ready, |out| {
        alloc_rows(out, "complete").len() == 1
    })?;
    Ok(())
}
