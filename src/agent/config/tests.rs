//! Agent configuration: the tutorial's files, merging, and errors that name file and line.

use std::path::PathBuf;

use super::*;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/agent")
        .join(name)
}

#[test]
fn tutorial_server_config_loads() {
    let config = AgentConfig::load_paths(&[data("server.hcl")]).expect("server.hcl loads");
    config.validate().expect("server.hcl is valid");
    assert_eq!(config.name.as_deref(), Some("server1"));
    assert_eq!(config.data_dir, Some(PathBuf::from("/tmp/server1")));
    assert!(config.server_enabled());
    assert!(!config.client_enabled());
    assert_eq!(config.server.bootstrap_expect, Some(1));
    assert_eq!(config.http_port(), 4646);
    assert_eq!(config.rpc_port(), 4647);
}

#[test]
fn tutorial_client_config_loads() {
    let config = AgentConfig::load_paths(&[data("client1.hcl")]).expect("client1.hcl loads");
    config.validate().expect("client1.hcl is valid");
    assert!(config.client_enabled());
    assert_eq!(
        config.client.servers.as_deref(),
        Some(&["127.0.0.1:4647".to_owned()][..])
    );
    assert_eq!(config.http_port(), 5656);
    assert_eq!(config.log_level.as_deref(), Some("DEBUG"));
}

#[test]
fn later_files_override_and_blocks_merge() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("00-base.hcl"),
        r#"
        datacenter = "dc1"
        client {
          enabled = true
          servers = ["10.0.0.1:4647"]
          meta { rack = "r1" }
        }
        plugin "raw_exec" {
          config { enabled = true }
        }
        "#,
    )
    .expect("write");
    std::fs::write(
        dir.path().join("10-override.json"),
        r#"{"datacenter": "dc2", "client": {"servers": ["10.0.0.2:4647"], "meta": {"zone": "a"}}}"#,
    )
    .expect("write");
    std::fs::write(dir.path().join("notes.txt"), "not a config").expect("write");
    let config = AgentConfig::load_paths(&[dir.path().to_owned()]).expect("directory loads");
    assert_eq!(config.datacenter(), "dc2");
    assert_eq!(
        config.client.servers.as_deref(),
        Some(&["10.0.0.2:4647".to_owned()][..])
    );
    assert_eq!(
        config.client.meta.get("rack").map(String::as_str),
        Some("r1")
    );
    assert_eq!(
        config.client.meta.get("zone").map(String::as_str),
        Some("a")
    );
    assert_eq!(
        config.plugin["raw_exec"].config,
        Some(serde_json::json!({"enabled": true}))
    );
}

#[test]
fn repeated_blocks_merge() {
    let config = AgentConfig::parse(
        "server {\n  enabled = true\n}\nserver {\n  bootstrap_expect = 3\n}\n",
        "x.hcl",
    )
    .expect("parses");
    assert_eq!(config.server.enabled, Some(true));
    assert_eq!(config.server.bootstrap_expect, Some(3));
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let err = AgentConfig::parse(
        "log_level = \"INFO\"\nserver {\n  enabled = true\n  bootstrap_expekt = 1\n}\n",
        "server.hcl",
    )
    .expect_err("unknown key");
    let message = err.to_string();
    assert!(
        message.starts_with("server.hcl:4:3: unknown field `bootstrap_expekt`"),
        "{message}"
    );
}

#[test]
fn syntax_error_is_located() {
    // The tutorial's server.hcl as printed: the server block is never closed.
    let err = AgentConfig::parse(
        "name = \"server1\"\nserver {\n  enabled = true\n",
        "server.hcl",
    )
    .expect_err("unclosed block");
    assert!(err.to_string().starts_with("server.hcl:"), "{err}");
    assert!(
        matches!(err, ConfigError::Located { line: 3 | 4, .. }),
        "{err:?}"
    );
}

#[test]
fn validation_reports_every_problem() {
    let config = AgentConfig::parse(
        r#"
        log_level = "LOUD"
        client {
          enabled = true
          servers = [""]
          host_volume "data" {
            path = "relative/path"
          }
        }
        "#,
        "client.hcl",
    )
    .expect("parses");
    let message = config.validate().expect_err("invalid").to_string();
    assert!(message.contains("3 problems"), "{message}");
    assert!(message.contains("log_level \"LOUD\""), "{message}");
    assert!(
        message.contains("client.servers: server address is empty"),
        "{message}"
    );
    assert!(message.contains("must be absolute"), "{message}");
}

#[test]
fn an_agent_needs_a_role() {
    let config = AgentConfig::parse("name = \"idle\"\n", "idle.hcl").expect("parses");
    let message = config.validate().expect_err("no role").to_string();
    assert!(
        message.contains("must enable server or client"),
        "{message}"
    );
}

#[test]
fn dev_config_is_valid_and_enables_raw_exec() {
    let config = AgentConfig::dev();
    config.validate().expect("dev config is valid");
    assert!(config.server_enabled() && config.client_enabled());
    assert_eq!(
        config.http_addr().expect("addr").to_string(),
        "127.0.0.1:4646"
    );
    assert_eq!(
        config.plugin["raw_exec"].config,
        Some(serde_json::json!({"enabled": true}))
    );
}

#[test]
fn merge_overlays_flags_on_files() {
    let mut config = AgentConfig::load_paths(&[data("client1.hcl")]).expect("loads");
    let flags = AgentConfig {
        data_dir: Some(PathBuf::from("/var/lib/caravan")),
        ..AgentConfig::default()
    };
    config.merge(&flags).expect("merges");
    assert_eq!(config.data_dir, Some(PathBuf::from("/var/lib/caravan")));
    assert_eq!(config.name.as_deref(), Some("client1"));
}

#[test]
fn server_addresses_parse() {
    assert_eq!(
        parse_server_address("10.0.0.1:4647"),
        Ok(("10.0.0.1".to_owned(), 4647))
    );
    assert_eq!(
        parse_server_address("server1"),
        Ok(("server1".to_owned(), 4647))
    );
    assert_eq!(
        parse_server_address("[::1]:5000"),
        Ok(("::1".to_owned(), 5000))
    );
    assert!(parse_server_address("host:notaport").is_err());
    assert!(parse_server_address("").is_err());
}

#[test]
fn server_request_limits_are_configurable() {
    let config = AgentConfig::parse(
        "server {\n  enabled = true\n  job_max_task_groups = 5\n  job_max_tasks_per_group = 6\n  job_max_placements = 7\n  job_max_size = 8000\n  max_request_body_size = 9000\n}\n",
        "limits.hcl",
    )
    .expect("parses");
    config.validate().expect("valid");
    let options = crate::agent::start::server_options(&config, true).expect("maps");
    assert_eq!(
        options.limits,
        crate::server::limits::JobLimits {
            max_task_groups: 5,
            max_tasks_per_group: 6,
            max_placements: 7,
            max_job_bytes: 8000,
            max_request_body_bytes: 9000,
        }
    );
    let defaults = crate::agent::start::server_options(&AgentConfig::dev(), true).expect("maps");
    assert_eq!(defaults.limits, crate::server::limits::JobLimits::default());

    let zero = AgentConfig::parse(
        "server {\n  enabled = true\n  job_max_placements = 0\n}\n",
        "zero.hcl",
    )
    .expect("parses");
    let error = zero.validate().expect_err("zero is no limit").to_string();
    assert!(
        error.contains("server.job_max_placements must be at least 1"),
        "{error}"
    );
}

#[test]
fn lists_in_a_plugin_config_reach_the_plugin_as_written() -> Result<(), ConfigError> {
    let config = AgentConfig::parse(
        r#"
plugin "caravan-test-devices" {
  config {
    devices = [
      { type = "gpu", name = "a", instances = ["a-0"] },
      { type = "gpu", name = "b", instances = ["b-0"] },
    ]
  }
}
server {
  enabled = true
}
server {
  bootstrap_expect = 1
}
"#,
        "agent.hcl",
    )?;
    let devices = config.plugin["caravan-test-devices"]
        .config
        .as_ref()
        .and_then(|config| config.get("devices"))
        .and_then(serde_json::Value::as_array)
        .map(Vec::len);
    assert_eq!(devices, Some(2), "{:?}", config.plugin);
    // Repeated blocks elsewhere still merge.
    assert_eq!(config.server.enabled, Some(true));
    assert_eq!(config.server.bootstrap_expect, Some(1));
    Ok(())
}

#[test]
fn the_tls_block_maps_with_nomads_defaults() {
    let text = r#"
region = "east"
server { enabled = true }
tls {
  http      = true
  ca_file   = "ca.pem"
  cert_file = "server.pem"
  key_file  = "server-key.pem"
  tls_min_version = "tls12"
}
"#;
    let config = AgentConfig::parse(text, "tls.hcl").expect("parses");
    config.validate().expect("valid");
    let settings = config.tls_settings().expect("TLS is on");
    assert!(settings.http && !settings.rpc);
    assert!(!settings.verify_server_hostname && !settings.verify_https_client);
    assert_eq!(settings.ca_file, PathBuf::from("ca.pem"));
    assert_eq!(settings.region, "east");
    assert!(
        AgentConfig::dev().tls_settings().is_none(),
        "the dev agent has no TLS"
    );

    let without_ca = r#"
server { enabled = true }
tls {
  rpc       = true
  cert_file = "server.pem"
  key_file  = "server-key.pem"
}
"#;
    let error = AgentConfig::parse(without_ca, "tls.hcl")
        .expect("parses")
        .validate()
        .expect_err("TLS needs the CA");
    assert!(error.to_string().contains("tls.ca_file"), "{error}");
}

#[test]
fn the_artifact_block_takes_nomads_limits_and_sizes() -> Result<(), String> {
    let config = AgentConfig::parse(
        r#"
        client {
          artifact {
            http_read_timeout              = "5m"
            http_max_size                  = "512MiB"
            decompression_size_limit       = "1.5GB"
            decompression_file_count_limit = 10
            git_timeout                    = "90s"
            gcs_timeout                    = "1m"
            disable_filesystem_isolation   = false
          }
        }
        "#,
        "client.hcl",
    )
    .map_err(|err| err.to_string())?;
    let limits = config.client.artifact.limits()?;
    assert_eq!(limits.http_read_timeout, Duration::from_secs(300));
    assert_eq!(limits.http_max_size, 512 * 1024 * 1024);
    assert_eq!(limits.decompression_size_limit, 1_500_000_000);
    assert_eq!(limits.decompression_file_count_limit, 10);
    assert_eq!(limits.git_timeout, Duration::from_secs(90));
    assert_eq!(
        ArtifactConfig::default().limits()?,
        ArtifactLimits::default()
    );
    assert_eq!(ArtifactLimits::default().http_max_size, 100_000_000_000);
    for (text, bytes) in [
        ("100GB", 100_000_000_000),
        ("1 kb", 1000),
        ("2Ki", 2048),
        ("7", 7),
    ] {
        assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
    }
    assert!(parse_bytes("lots").is_err() && parse_bytes("3 parsecs").is_err());
    let bad = AgentConfig::parse(
        "client {\n enabled = true\n servers = [\"127.0.0.1:4647\"]\n artifact { http_max_size = \"huge\" }\n}\n",
        "client.hcl",
    )
    .map_err(|err| err.to_string())?;
    let message = bad.validate().expect_err("invalid size").to_string();
    assert!(
        message.contains("client.artifact.http_max_size"),
        "{message}"
    );
    Ok(())
}
