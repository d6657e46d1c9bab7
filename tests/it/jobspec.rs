//! Parse here, validate at registration, against a real agent: `job run -output` prints a job
//! Nomad's parser accepts (even one without groups), `job run` is refused by the server with
//! Nomad's message, a job using Consul service mesh is refused naming the block, and `job
//! validate` asks the agent (`PUT /v1/validate/job`) when one answers, validating locally
//! otherwise.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{AgentProcess, Run, caravan, free_port, test_data};

struct Agent {
    _process: AgentProcess,
    address: String,
}

impl Agent {
    /// A dev-style agent (server and client) whose server allows at most 4 placements per job,
    /// a limit only the server knows.
    fn start(dir: &Path) -> anyhow::Result<Self> {
        let (http, rpc, serf) = (free_port()?, free_port()?, free_port()?);
        let config = dir.join("agent.hcl");
        std::fs::write(
            &config,
            format!(
                r#"
bind_addr = "127.0.0.1"
data_dir  = "{data}"
name      = "jobspec-node"
ports {{
  http = {http}
  rpc  = {rpc}
  serf = {serf}
}}
server {{
  enabled            = true
  bootstrap_expect   = 1
  job_max_placements = 4
}}
client {{
  enabled = true
}}
"#,
                data = dir.join("data").display()
            ),
        )?;
        let process = AgentProcess::start(dir, "agent", &config)?;
        let agent = Self {
            _process: process,
            address: format!("http://127.0.0.1:{http}"),
        };
        // Ready once the server has a leader: `job status` lists (no) jobs.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let run = agent.cli(dir, &["job", "status"])?;
            if run.code == Some(0) {
                return Ok(agent);
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
                anyhow::bail!("the agent never answered: {run:?}\n{log}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `caravan <command> <subcommand> -address ADDR <rest>`.
    fn cli(&self, dir: &Path, args: &[&str]) -> anyhow::Result<Run> {
        let (command, rest) = args.split_at(args.len().min(2));
        let mut full: Vec<&str> = command.to_vec();
        full.extend(["-address", self.address.as_str()]);
        full.extend(rest);
        caravan(dir, &full)
    }
}

fn corpus(name: &str) -> String {
    test_data(&format!("jobspec-corpus/{name}"))
        .display()
        .to_string()
}

#[test]
fn jobs_are_parsed_here_and_validated_at_registration() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let agent = Agent::start(dir.path())?;

    // A job without groups parses, as with Nomad...
    let no_groups = corpus("no_groups.nomad.hcl");
    let run = caravan(dir.path(), &["job", "run", "-output", &no_groups])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(json["Job"]["ID"], "empty");
    assert_eq!(json["Job"]["TaskGroups"], serde_json::json!([]));
    // ...and the server refuses it at registration, in Nomad's words.
    let run = agent.cli(dir.path(), &["job", "run", &no_groups])?;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains(
            "Job validation failed: 1 error occurred:\n\t* TaskGroups: Missing job task groups"
        ),
        "{run:?}"
    );

    // Consul service mesh parses and is refused naming the block.
    let connect = corpus("connect.nomad.hcl");
    let run = caravan(dir.path(), &["job", "run", "-output", &connect])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(
        json["Job"]["TaskGroups"][0]["Services"][0]["Connect"]["SidecarService"]["Proxy"]["Upstreams"]
            [0]["DestinationName"],
        "count-api"
    );
    let run = agent.cli(dir.path(), &["job", "run", &connect])?;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr.contains(
            "caravan has no Consul service mesh: group \"dashboard\" service \"count-dashboard\" uses connect"
        ),
        "{run:?}"
    );
    let run = agent.cli(dir.path(), &["job", "status"])?;
    assert!(!run.stdout.contains("countdash"), "{run:?}");

    // `job validate` reports the server's answer through the agent.
    let run = agent.cli(dir.path(), &["job", "validate", &connect])?;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("Job validation errors:"), "{run:?}");
    assert!(run.stderr.contains("uses connect"), "{run:?}");

    // A limit only the server knows: 5 placements are fine here, not on this agent.
    let big = dir.path().join("big.nomad.hcl");
    std::fs::write(
        &big,
        "job \"big\" {\n  group \"g\" {\n    count = 5\n    task \"t\" {\n      driver = \"raw_exec\"\n      config {\n        command = \"/bin/true\"\n      }\n    }\n  }\n}\n",
    )?;
    let big = big.display().to_string();
    let run = agent.cli(dir.path(), &["job", "validate", &big])?;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("server.job_max_placements"), "{run:?}");
    // Without an agent, the job is validated here.
    let nobody = format!("http://127.0.0.1:{}", free_port()?);
    let run = caravan(dir.path(), &["job", "validate", "-address", &nobody, &big])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.trim(), "Job validation successful");
    // Locally, problems are located in the file.
    let run = caravan(
        dir.path(),
        &["job", "validate", "-address", &nobody, &no_groups],
    )?;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(
        run.stderr
            .contains("no_groups.nomad.hcl:2:1: TaskGroups: Missing job task groups"),
        "{run:?}"
    );

    // `job init`'s example (with its ui block) validates through the agent and registers.
    let run = caravan(dir.path(), &["job", "init"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = agent.cli(dir.path(), &["job", "validate", "example.nomad.hcl"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.trim(), "Job validation successful");
    let run = agent.cli(dir.path(), &["job", "run", "-detach", "example.nomad.hcl"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let run = agent.cli(dir.path(), &["job", "inspect", "example"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let inspected: serde_json::Value = serde_json::from_str(&run.stdout)?;
    let job = inspected.get("Job").unwrap_or(&inspected);
    assert_eq!(job["UI"]["Description"], "caravan **Example** Job");
    Ok(())
}
