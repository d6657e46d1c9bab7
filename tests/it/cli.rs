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
