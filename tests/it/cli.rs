//! The command-line frame: commands that need no agent, run as the real binary.

use crate::support::{caravan, test_data};

#[test]
fn version_prints_the_crate_version() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = caravan(dir.path(), &["version"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout.trim(),
        format!("caravan v{}", env!("CARGO_PKG_VERSION"))
    );
    Ok(())
}

#[test]
fn nomads_shortcuts_run_the_commands_they_stand_for() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for (shortcut, command) in [
        (&["client-config"][..], &["node", "config"][..]),
        (&["run"], &["job", "run"]),
        (&["logs"], &["alloc", "logs"]),
        (&["server-members"], &["server", "members"]),
    ] {
        let short = caravan(dir.path(), &[shortcut, &["-h"]].concat())?;
        let long = caravan(dir.path(), &[command, &["-h"]].concat())?;
        assert_eq!(short.code, Some(0), "{shortcut:?}: {short:?}");
        assert_eq!(short.stdout, long.stdout, "{shortcut:?} is {command:?}");
    }
    Ok(())
}

#[test]
fn job_init_writes_the_example_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = caravan(dir.path(), &["job", "init"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(
        run.stdout.trim(),
        "Example job file written to example.nomad.hcl"
    );
    let written = std::fs::read_to_string(dir.path().join("example.nomad.hcl"))?;
    assert!(written.contains("job \"example\""));
    assert!(written.contains("image          = \"redis:7\""));

    let again = caravan(dir.path(), &["job", "init"])?;
    assert_eq!(again.code, Some(1), "{again:?}");
    assert!(again.stderr.contains("already exists"), "{again:?}");

    let short = caravan(dir.path(), &["job", "init", "-short", "short.nomad.hcl"])?;
    assert_eq!(short.code, Some(0), "{short:?}");
    let written = std::fs::read_to_string(dir.path().join("short.nomad.hcl"))?;
    assert!(!written.contains('#'), "the short example has no comments");
    Ok(())
}

#[test]
fn tutorial_agent_configs_validate() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    for name in ["server.hcl", "client1.hcl", "client2.hcl"] {
        let path = test_data(&format!("agent/{name}"));
        let run = caravan(
            dir.path(),
            &["config", "validate", path.to_str().unwrap_or_default()],
        )?;
        assert_eq!(run.code, Some(0), "{name}: {run:?}");
        assert_eq!(run.stdout.trim(), "Configuration is valid!");
    }
    Ok(())
}

#[test]
fn config_validate_names_the_problem() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.hcl");
    std::fs::write(
        &path,
        "server {\n  enabled = true\n  bootstrap_expekt = 1\n}\n",
    )?;
    let run = caravan(dir.path(), &["config", "validate", "bad.hcl"])?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .contains("bad.hcl:3:3: unknown field `bootstrap_expekt`"),
        "{run:?}"
    );
    Ok(())
}

#[test]
fn unknown_flags_and_commands_fail_with_usage() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = caravan(dir.path(), &["job", "frobnicate"])?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("unrecognized subcommand 'frobnicate'"),
        "{run:?}"
    );
    let run = caravan(dir.path(), &["agent", "-bogus"])?;
    assert_eq!(run.code, Some(1), "{run:?}");
    Ok(())
}

#[test]
fn help_accepts_nomad_spelling() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let run = caravan(dir.path(), &["job", "run", "-help"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("--output"), "{run:?}");
    assert!(run.stdout.contains("--detach"), "{run:?}");
    Ok(())
}

#[test]
fn example_job_validates_and_prints_api_json() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    assert_eq!(caravan(dir.path(), &["job", "init"])?.code, Some(0));
    let run = caravan(dir.path(), &["job", "validate", "example.nomad.hcl"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout.trim(), "Job validation successful");

    let run = caravan(dir.path(), &["job", "run", "-output", "example.nomad.hcl"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout)?;
    let job = &json["Job"];
    assert_eq!(job["ID"], "example");
    assert_eq!(job["Type"], "service");
    // Nomad 1.10's example has a ui block, kept in the job as Nomad's `UI`.
    assert_eq!(job["UI"]["Description"], "caravan **Example** Job");
    assert_eq!(job["UI"]["Links"][0]["Label"], "Learn more about caravan");
    assert_eq!(job["TaskGroups"][0]["Tasks"][0]["Identity"]["Env"], true);
    let group = &job["TaskGroups"][0];
    assert_eq!(group["Name"], "cache");
    assert_eq!(group["Count"], 1);
    assert_eq!(group["Networks"][0]["DynamicPorts"][0]["Label"], "db");
    assert_eq!(group["Networks"][0]["DynamicPorts"][0]["To"], 6379);
    assert_eq!(group["RestartPolicy"]["Interval"], 1_800_000_000_000_u64);
    let task = &group["Tasks"][0];
    assert_eq!(task["Driver"], "docker");
    assert_eq!(task["Config"]["image"], "redis:7");
    assert_eq!(task["Resources"]["CPU"], 500);
    assert_eq!(task["Resources"]["MemoryMB"], 256);
    // The printed JSON is accepted back as a job file.
    std::fs::write(dir.path().join("example.json"), &run.stdout)?;
    let run = caravan(dir.path(), &["job", "validate", "-json", "example.json"])?;
    assert_eq!(run.code, Some(0), "{run:?}");
    Ok(())
}

#[test]
fn malformed_job_files_fail_with_one_located_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let cases = [
        (
            "unknown.nomad.hcl",
            "job \"x\" {\n  group \"g\" {\n    cuont = 3\n    task \"t\" {\n      driver = \"raw_exec\"\n    }\n  }\n}\n",
            "unknown.nomad.hcl:3:5: unsupported argument \"cuont\" in group \"g\"",
        ),
        (
            "unclosed.nomad.hcl",
            "job \"x\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n  }\n}\n",
            "unclosed.nomad.hcl:6:3: syntax error",
        ),
    ];
    for (name, text, expected) in cases {
        std::fs::write(dir.path().join(name), text)?;
        let run = caravan(dir.path(), &["job", "validate", name])?;
        assert_eq!(run.code, Some(1), "{name}: {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{name}: one line: {run:?}");
        assert!(
            run.stderr.starts_with(&format!("Error: {expected}")),
            "{name}: {run:?}"
        );
        assert!(!run.stderr.contains("panicked"), "{name}: {run:?}");
    }
    Ok(())
}

#[test]
fn job_variables_come_from_flags() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("vars.nomad.hcl"),
        "variable \"image\" {\n  type = string\n}\njob \"v\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"docker\"\n      config {\n        image = var.image\n      }\n    }\n  }\n}\n",
    )?;
    let run = caravan(
        dir.path(),
        &[
            "job",
            "run",
            "-output",
            "-var",
            "image=redis:7",
            "vars.nomad.hcl",
        ],
    )?;
    assert_eq!(run.code, Some(0), "{run:?}");
    let json: serde_json::Value = serde_json::from_str(&run.stdout)?;
    assert_eq!(
        json["Job"]["TaskGroups"][0]["Tasks"][0]["Config"]["image"],
        "redis:7"
    );
    let run = caravan(dir.path(), &["job", "validate", "vars.nomad.hcl"])?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr.contains("image"),
        "a missing variable is named: {run:?}"
    );
    Ok(())
}
