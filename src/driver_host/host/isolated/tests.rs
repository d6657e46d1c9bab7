//! Unit tests of `host-isolated`'s config, capability and mount-point logic.

use super::*;

#[test]
fn plugin_config_defaults_and_errors() {
    let config = IsolationConfig::from_plugin_config(None).expect("defaults");
    assert_eq!(
        config.chroot_env.get("/usr").map(String::as_str),
        Some("/usr")
    );
    assert!(config.allow_caps.contains(&String::from("kill")));
    assert!(!config.pid_host_allowed && !config.ipc_host_allowed);
    let custom = serde_json::json!({
        "chroot_env": {"/opt/tools": "/tools"},
        "allow_caps": ["CAP_NET_RAW"],
        "default_pid_mode": "host",
    });
    let config = IsolationConfig::from_plugin_config(Some(&custom)).expect("custom");
    assert_eq!(config.chroot_env.len(), 1);
    assert_eq!(config.allow_caps, ["net_raw"]);
    assert!(config.pid_host_allowed && !config.ipc_host_allowed);
    for bad in [
        serde_json::json!({"chroot_env": ["/usr"]}),
        serde_json::json!({"allow_caps": "all"}),
        serde_json::json!({"default_ipc_mode": "shared"}),
    ] {
        assert!(
            IsolationConfig::from_plugin_config(Some(&bad)).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn caps_outside_allow_caps_are_refused_and_the_rest_dropped() {
    let allowed = vec![String::from("kill"), String::from("chown")];
    let drop = caps_to_drop(&[String::from("CAP_KILL")], &allowed, 40).expect("kill is allowed");
    assert!(!drop.contains(&5), "kill (5) is kept");
    assert!(
        drop.contains(&0) && drop.contains(&21),
        "chown and sys_admin dropped"
    );
    assert_eq!(drop.len(), 40);
    let err = caps_to_drop(&[String::from("sys_admin")], &allowed, 40).expect_err("refused");
    assert!(err.contains("allow_caps"), "{err}");
    assert!(caps_to_drop(&[String::from("bogus")], &allowed, 40).is_err());
    let all = vec![String::from("all")];
    assert!(caps_to_drop(&[String::from("sys_admin")], &all, 40).is_ok());
}

#[test]
fn modes_need_the_plugin_to_allow_host() {
    assert_eq!(mode("", "pid_mode", false), Ok(true));
    assert_eq!(mode("private", "pid_mode", false), Ok(true));
    assert_eq!(mode("host", "pid_mode", true), Ok(false));
    assert!(mode("host", "pid_mode", false).is_err());
    assert!(mode("other", "ipc_mode", true).is_err());
}

#[test]
fn mount_points_are_created_and_symlinks_refused() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
    let root = dir.path().join("task");
    std::fs::create_dir(&root).map_err(|err| err.to_string())?;
    let usr = mount_point(&root, "/usr/lib", true)?;
    assert!(usr.is_dir());
    let file = mount_point(&root, "etc/resolv.conf", false)?;
    assert!(file.is_file());
    std::os::unix::fs::symlink(dir.path(), root.join("bin")).map_err(|err| err.to_string())?;
    assert!(mount_point(&root, "/bin", true).is_err());
    assert!(mount_point(&root, "/bin/x", true).is_err());
    assert!(mount_point(&root, "../x", true).is_err());
    assert!(mount_point(&root, "/", true).is_err());
    assert!(!dir.path().join("x").exists());
    Ok(())
}
