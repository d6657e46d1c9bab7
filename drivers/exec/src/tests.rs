//! Unit tests of the exec driver's config logic (modes, capabilities, validation).

use super::*;
use caravan_driver_sdk::Resources;

fn config(json: &str) -> TaskConfig {
    TaskConfig {
        id: String::from("alloc/web"),
        name: String::from("web"),
        alloc_id: String::from("alloc"),
        job_name: String::from("job"),
        group_name: String::from("group"),
        config_json: json.to_owned(),
        env: Vec::new(),
        task_dir: String::from("/alloc/web"),
        stdout_path: String::from("/alloc/logs/web.stdout.0"),
        stderr_path: String::from("/alloc/logs/web.stderr.0"),
        resources: Resources {
            cpu_mhz: 100,
            memory_mb: 64,
            memory_max_mb: 0,
        },
        ports: Vec::new(),
        user: None,
    }
}

fn plugin(json: &str) -> PluginConfig {
    PluginConfig::parse(json).expect("plugin config")
}

#[test]
fn a_task_gets_nomads_defaults() {
    let request = request(
        &config(r#"{"command":"/bin/sh","args":["-c","true"]}"#),
        &plugin("{}"),
    )
    .expect("valid");
    assert_eq!(request.command, "/bin/sh");
    assert_eq!(request.args, ["-c", "true"]);
    assert_eq!(
        (request.pid_mode.as_str(), request.ipc_mode.as_str()),
        ("private", "private")
    );
    assert_eq!(request.caps.len(), DEFAULT_CAPS.len());
}

#[test]
fn host_modes_need_the_plugin_default() {
    let json = r#"{"command":"x","pid_mode":"host"}"#;
    let err = request(&config(json), &plugin("{}")).expect_err("refused");
    assert!(
        matches!(&err, DriverError::InvalidConfig(m) if m.contains("default_pid_mode")),
        "{err:?}"
    );
    let allowed =
        request(&config(json), &plugin(r#"{"default_pid_mode":"host"}"#)).expect("allowed");
    assert_eq!(allowed.pid_mode, "host");
    let inherited = request(
        &config(r#"{"command":"x"}"#),
        &plugin(r#"{"default_ipc_mode":"host"}"#),
    )
    .expect("default");
    assert_eq!(inherited.ipc_mode, "host");
    assert!(PluginConfig::parse(r#"{"default_pid_mode":"shared"}"#).is_err());
}

#[test]
fn caps_are_added_within_allow_caps_and_dropped() {
    let allow: Vec<String> = DEFAULT_CAPS.iter().map(|cap| (*cap).to_owned()).collect();
    let err = task_caps(&allow, &[String::from("CAP_NET_RAW")], &[]).expect_err("not allowed");
    assert!(err.contains("net_raw"), "{err}");
    let mut wider = allow.clone();
    wider.push(String::from("net_raw"));
    let caps = task_caps(
        &wider,
        &[String::from("CAP_NET_RAW")],
        &[String::from("kill")],
    )
    .expect("allowed");
    assert!(caps.contains(&String::from("net_raw")));
    assert!(!caps.contains(&String::from("kill")));
    assert!(
        task_caps(&allow, &[], &[String::from("all")])
            .expect("drop all")
            .is_empty()
    );
    let narrow = vec![String::from("chown")];
    assert_eq!(task_caps(&narrow, &[], &[]).expect("narrow"), ["chown"]);
}

#[test]
fn a_missing_empty_or_misspelt_key_is_invalid() {
    for json in [
        r#"{}"#,
        r#"{"command":"  "}"#,
        r#"{"command":"x","arg":[]}"#,
        r#"{"command":"x","ipc_mode":"shared"}"#,
    ] {
        let err = request(&config(json), &plugin("{}")).expect_err(json);
        assert!(
            matches!(err, DriverError::InvalidConfig(_)),
            "{json}: {err:?}"
        );
    }
}
