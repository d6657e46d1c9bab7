//! The built-in device plugins through the real host: the config-based test plugin, and the
//! nvidia plugin against a stand-in `nvidia-smi` printing the answers in `tests/data/nvidia-smi/`
//! (hand-written in nvidia-smi's format; see its README: no GPU was at hand).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::driver_host::{DevicePluginError, DriverHost, DriverHostConfig};
use crate::structs::{Attribute, NodeDeviceResource};

fn device_host(
    plugins: BTreeMap<String, serde_json::Value>,
    probe_dir: Option<&Path>,
) -> Result<DriverHost, crate::driver_host::Error> {
    DriverHost::new(DriverHostConfig {
        plugins,
        device_probe_path: probe_dir.map(|dir| vec![dir.to_path_buf()]),
        ..DriverHostConfig::default()
    })
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/nvidia-smi")
        .join(name)
}

/// A directory with an executable `nvidia-smi` running `body` (a shell script).
fn fake_nvidia_smi(body: &str) -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("nvidia-smi");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

fn answering_fixtures() -> std::io::Result<tempfile::TempDir> {
    fake_nvidia_smi(&format!(
        "case \"$1\" in\n  --query-gpu=uuid,name,*) /bin/cat {:?} ;;\n  --query-gpu=uuid,utilization*) /bin/cat {:?} ;;\n  *) echo \"unexpected $1\" >&2; exit 2 ;;\nesac",
        fixture("gpus.csv"),
        fixture("stats.csv"),
    ))
}

fn nvidia(config: serde_json::Value) -> BTreeMap<String, serde_json::Value> {
    BTreeMap::from([("nomad-device-nvidia".to_owned(), config)])
}

fn ids(group: &NodeDeviceResource) -> Vec<&str> {
    group.instances.iter().map(|i| i.id.as_str()).collect()
}

#[tokio::test]
async fn the_test_plugin_reports_its_config_and_reserves_its_env() -> anyhow::Result<()> {
    let plugins = BTreeMap::from([(
        "caravan-test-devices".to_owned(),
        json!({
            "visible_env": "SIM_VISIBLE",
            "devices": [{
                "type": "gpu", "name": "sim-80g",
                "instances": ["sim-0", "sim-1", "sim-2"], "unhealthy": ["sim-2"],
                "attributes": { "memory": "80 GiB", "driver_version": "sim", "cores": 132 }
            }]
        }),
    )]);
    let host = device_host(plugins, None)?;
    assert_eq!(host.device_plugins(), ["caravan-test-devices"]);
    let mut fingerprints = host.fingerprint_devices().await;
    let groups = fingerprints
        .remove("caravan-test-devices")
        .expect("fingerprinted")?;
    assert_eq!(groups.len(), 1);
    let group = &groups[0];
    assert_eq!(group.full_name(), "caravan-test/gpu/sim-80g");
    assert_eq!(ids(group), ["sim-0", "sim-1", "sim-2"]);
    let healthy: Vec<bool> = group.instances.iter().map(|i| i.healthy).collect();
    assert_eq!(healthy, [true, true, false]);
    assert_eq!(group.attributes["memory"], Attribute::int(80, "GiB"));
    assert_eq!(group.attributes["cores"], Attribute::int(132, ""));
    assert_eq!(group.attributes["driver_version"], Attribute::string("sim"));
    let reservation = host
        .reserve_devices("caravan-test-devices", &["sim-0".into(), "sim-1".into()])
        .await?;
    assert_eq!(reservation.env["SIM_VISIBLE"], "sim-0,sim-1");
    let err = host
        .reserve_devices("caravan-test-devices", &["sim-9".into()])
        .await
        .expect_err("unknown instance");
    assert!(
        err.to_string().contains("unknown device \"sim-9\""),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn plugins_run_only_when_configured_and_bad_configs_say_why() -> anyhow::Result<()> {
    let host = device_host(
        BTreeMap::from([
            (
                "nomad-device-nvidia".to_owned(),
                json!({ "enabled": false }),
            ),
            (
                "caravan-test-devices".to_owned(),
                json!({ "devices": [{ "type": "gpu" }] }),
            ),
        ]),
        None,
    )?;
    assert_eq!(host.device_plugins(), ["caravan-test-devices"]);
    let err = host
        .reserve_devices("nomad-device-nvidia", &[])
        .await
        .expect_err("disabled");
    assert!(matches!(err, DevicePluginError::NotEnabled { .. }), "{err}");
    let err = host
        .reserve_devices("acme", &[])
        .await
        .expect_err("unknown");
    assert!(err.to_string().contains("neither built in"), "{err}");
    let fingerprint = host
        .fingerprint_devices()
        .await
        .remove("caravan-test-devices")
        .expect("fingerprinted");
    let err = fingerprint.expect_err("the device has no name");
    assert!(err.to_string().contains("missing field `name`"), "{err}");
    Ok(())
}

#[tokio::test]
async fn nvidia_groups_gpus_by_model_with_nomads_attributes() -> anyhow::Result<()> {
    let probe_dir = answering_fixtures()?;
    let host = device_host(
        nvidia(json!({ "ignored_gpu_ids": ["GPU-0b1c2d3e-4f5a-6b7c-8d9e-0f1a2b3c4d5e"] })),
        Some(probe_dir.path()),
    )?;
    let groups = host
        .fingerprint_devices()
        .await
        .remove("nomad-device-nvidia")
        .expect("fingerprinted")?;
    assert_eq!(groups.len(), 2);
    let (h100, h200) = (&groups[0], &groups[1]);
    assert_eq!(h100.full_name(), "nvidia/gpu/NVIDIA H100 80GB HBM3");
    assert_eq!(
        ids(h100),
        ["GPU-6d7a8b1c-2f3e-4a5b-9c8d-0e1f2a3b4c5d"],
        "one ignored"
    );
    assert_eq!(
        h100.instances[0]
            .locality
            .as_ref()
            .map(|l| l.pci_bus_id.as_str()),
        Some("00000000:19:00.0")
    );
    assert_eq!(h100.attributes["memory"], Attribute::int(81559, "MiB"));
    assert_eq!(h100.attributes["power"], Attribute::int(700, "W"));
    assert_eq!(h100.attributes["cores_clock"], Attribute::int(1980, "MHz"));
    assert_eq!(h100.attributes["memory_clock"], Attribute::int(2619, "MHz"));
    assert_eq!(
        h100.attributes["driver_version"],
        Attribute::string("550.54.15")
    );
    assert_eq!(
        h100.attributes["display_state"],
        Attribute::string("Disabled")
    );
    assert_eq!(
        h100.attributes["persistence_mode"],
        Attribute::string("Enabled")
    );
    assert_eq!(h200.full_name(), "nvidia/gpu/NVIDIA H200");
    assert_eq!(h200.instances.len(), 2);
    assert!(h200.instances.iter().all(|instance| instance.healthy));
    assert_eq!(h200.attributes["memory"], Attribute::int(143771, "MiB"));

    let reservation = host
        .reserve_devices(
            "nomad-device-nvidia",
            &[
                "GPU-9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0".into(),
                "GPU-11111111-2222-3333-4444-555555555555".into(),
            ],
        )
        .await?;
    assert_eq!(
        reservation.env["NVIDIA_VISIBLE_DEVICES"],
        "GPU-9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0,GPU-11111111-2222-3333-4444-555555555555"
    );

    let stats = host.device_stats("nomad-device-nvidia").await?;
    assert_eq!(stats.len(), 3, "the ignored GPU is left out");
    let figures = |id: &str| -> BTreeMap<String, Attribute> { stats[id].iter().cloned().collect() };
    let busy = figures("GPU-6d7a8b1c-2f3e-4a5b-9c8d-0e1f2a3b4c5d");
    assert_eq!(
        stats["GPU-6d7a8b1c-2f3e-4a5b-9c8d-0e1f2a3b4c5d"][0].0, "utilization",
        "listed first: the summary"
    );
    assert_eq!(busy["utilization"], Attribute::int(87, "%"));
    assert_eq!(busy["memory_used"], Attribute::int(61234, "MiB"));
    assert_eq!(busy["temperature"], Attribute::int(71, "C"));
    assert_eq!(busy["power_draw"], Attribute::float(612.35, "W"));
    assert!(!figures("GPU-9f8e7d6c-5b4a-3928-1706-f5e4d3c2b1a0").contains_key("utilization"));
    Ok(())
}

#[tokio::test]
async fn nvidia_without_nvidia_smi_is_no_devices_and_a_failing_one_is_an_error()
-> anyhow::Result<()> {
    let empty = tempfile::tempdir()?;
    let host = device_host(nvidia(json!({})), Some(empty.path()))?;
    let none = host
        .fingerprint_devices()
        .await
        .remove("nomad-device-nvidia")
        .expect("fingerprinted")?;
    assert!(none.is_empty(), "no nvidia-smi: no devices, no error");

    let failing = fake_nvidia_smi(&format!("/bin/cat {:?}\nexit 9", fixture("no-driver.txt")))?;
    let host = device_host(nvidia(json!({})), Some(failing.path()))?;
    let err = host
        .fingerprint_devices()
        .await
        .remove("nomad-device-nvidia")
        .expect("fingerprinted")
        .expect_err("no driver loaded");
    let message = err.to_string();
    assert!(message.contains("nvidia-smi exited with 9"), "{message}");
    assert!(message.contains("couldn't communicate"), "{message}");

    let garbled = fake_nvidia_smi("echo 'GPU-1, only three, fields'")?;
    let host = device_host(nvidia(json!({})), Some(garbled.path()))?;
    let err = host
        .fingerprint_devices()
        .await
        .remove("nomad-device-nvidia")
        .expect("fingerprinted")
        .expect_err("three fields");
    assert!(err.to_string().contains("3 fields where 10"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_plugin_probes_only_the_programs_granted_to_it() -> anyhow::Result<()> {
    let probe_dir = answering_fixtures()?;
    let host = device_host(
        nvidia(json!({ "probe_programs": ["lspci"] })),
        Some(probe_dir.path()),
    )?;
    let err = host
        .fingerprint_devices()
        .await
        .remove("nomad-device-nvidia")
        .expect("fingerprinted")
        .expect_err("nvidia-smi not granted");
    assert!(
        err.to_string()
            .contains("probe \"nvidia-smi\" is not granted to device plugin"),
        "{err}"
    );
    Ok(())
}

#[test]
fn answers_breaking_the_contract_are_refused() {
    use crate::driver_host::bindings::device::caravan::device::types::{
        DeviceGroup, DeviceInstance,
    };
    let instance = |id: &str| DeviceInstance {
        id: id.to_owned(),
        healthy: true,
        health_description: String::new(),
        pci_bus_id: None,
    };
    let group = |vendor: &str, ids: &[&str]| DeviceGroup {
        vendor: vendor.to_owned(),
        device_type: "gpu".to_owned(),
        name: "x".to_owned(),
        instances: ids.iter().map(|id| instance(id)).collect(),
        attributes: Vec::new(),
    };
    let check = |groups| super::node_devices(groups).map(|devices| devices.len());
    assert_eq!(check(vec![group("acme", &["a", "b"])]), Ok(1));
    for (groups, says) in [
        (vec![group("", &["a"])], "needs a vendor"),
        (vec![group("acme", &["a", "a"])], "reported twice"),
        (vec![group("acme", &[""])], "instance ID"),
        (
            vec![group("acme", &[]), group("acme", &[])],
            "reported twice",
        ),
        (vec![group("a/b", &[])], "without `/`"),
        (
            (0..=NodeDeviceResource::MAX_GROUPS)
                .map(|idx| group(&format!("v{idx}"), &[]))
                .collect(),
            "at most 64",
        ),
    ] {
        let err = check(groups).expect_err(says);
        assert!(err.contains(says), "{err}");
    }
}

#[tokio::test]
async fn reservations_carry_mounts_and_device_nodes_checked_by_the_host() -> anyhow::Result<()> {
    let plugin = |mounts: serde_json::Value, nodes: serde_json::Value| {
        BTreeMap::from([(
            "caravan-test-devices".to_owned(),
            json!({ "devices": [
                { "type": "fpga", "name": "sim", "instances": ["f-0"],
                  "mounts": mounts, "device_nodes": nodes },
                { "type": "gpu", "name": "other", "instances": ["g-0"],
                  "mounts": [{ "host_path": "/opt/other", "task_path": "/opt/other" }] },
            ]}),
        )])
    };
    let host = device_host(
        plugin(
            json!([{ "host_path": "/opt/sim", "task_path": "/opt/sim", "read_only": true }]),
            json!([
                { "host_path": "/dev/null", "task_path": "/dev/sim0", "permissions": "rw" },
                { "host_path": "/dev/zero", "task_path": "/dev/sim1" },
            ]),
        ),
        None,
    )?;
    let reservation = host
        .reserve_devices("caravan-test-devices", &["f-0".into()])
        .await?;
    assert_eq!(
        reservation.mounts,
        [crate::driver_host::DeviceMount {
            task_path: "/opt/sim".into(),
            host_path: "/opt/sim".into(),
            read_only: true,
        }],
        "only the mounts of the group given"
    );
    let nodes: Vec<(&str, &str, &str)> = reservation
        .devices
        .iter()
        .map(|node| {
            (
                node.host_path.as_str(),
                node.task_path.as_str(),
                node.cgroup_permissions.as_str(),
            )
        })
        .collect();
    assert_eq!(
        nodes,
        [
            ("/dev/null", "/dev/sim0", "rw"),
            ("/dev/zero", "/dev/sim1", "rwm")
        ],
        "no permissions given means rwm"
    );
    for (mounts, nodes, says) in [
        (
            json!([{ "host_path": "/", "task_path": "/host" }]),
            json!([]),
            "absolute and normalised",
        ),
        (
            json!([{ "host_path": "/opt/../etc", "task_path": "/etc2" }]),
            json!([]),
            "absolute and normalised",
        ),
        (
            json!([{ "host_path": "relative", "task_path": "/x" }]),
            json!([]),
            "absolute and normalised",
        ),
        (
            json!([]),
            json!([{ "host_path": "/etc/shadow", "task_path": "/dev/x" }]),
            "under /dev/",
        ),
        (
            json!([]),
            json!([{ "host_path": "/dev/null", "task_path": "/dev/x", "permissions": "rwx" }]),
            "not made of r, w and m",
        ),
    ] {
        let host = device_host(plugin(mounts, nodes), None)?;
        let err = host
            .reserve_devices("caravan-test-devices", &["f-0".into()])
            .await
            .expect_err(says);
        assert!(err.to_string().contains(says), "{says}: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn a_device_plugin_component_in_the_plugin_dir_is_fingerprinted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let component = super::builtin::BUILTIN_DEVICE_PLUGINS
        .iter()
        .find(|(name, _)| *name == "caravan-test-devices")
        .map(|(_, bytes)| *bytes)
        .ok_or_else(|| anyhow::anyhow!("the test plugin is built in"))?;
    // The operator's own device plugin, one more without a plugin block, and a driver.
    std::fs::write(dir.path().join("site-devices.wasm"), component)?;
    std::fs::write(dir.path().join("idle-devices.wasm"), component)?;
    std::fs::copy(
        Path::new(env!("CARAVAN_TESTING_DRIVERS_DIR")).join("noisy.wasm"),
        dir.path().join("noisy.wasm"),
    )?;
    std::fs::write(dir.path().join("broken.wasm"), b"not a component")?;
    let host = DriverHost::new(DriverHostConfig {
        plugins: BTreeMap::from([
            (
                "site-devices".to_owned(),
                json!({ "devices": [{ "type": "fpga", "name": "site-1", "instances": ["s-0"] }] }),
            ),
            ("noisy".to_owned(), json!({})),
        ]),
        plugin_dir: Some(dir.path().to_path_buf()),
        ..DriverHostConfig::default()
    })?;
    assert_eq!(host.device_plugins(), ["site-devices"]);
    let drivers = host.available_drivers();
    assert!(drivers.iter().any(|name| name == "noisy"), "{drivers:?}");
    assert!(
        !drivers
            .iter()
            .any(|name| name == "site-devices" || name == "idle-devices"),
        "device plugins are never offered as drivers: {drivers:?}"
    );
    let mut fingerprints = host.fingerprint_devices().await;
    let groups = fingerprints
        .remove("site-devices")
        .ok_or_else(|| anyhow::anyhow!("fingerprinted"))??;
    assert_eq!(groups[0].full_name(), "caravan-test/fpga/site-1");
    assert_eq!(ids(&groups[0]), ["s-0"]);
    let reservation = host
        .reserve_devices("site-devices", &["s-0".into()])
        .await?;
    assert_eq!(reservation.env["CARAVAN_TEST_VISIBLE_DEVICES"], "s-0");
    let err = host
        .reserve_devices("idle-devices", &["s-0".into()])
        .await
        .expect_err("no plugin block");
    assert!(err.to_string().contains("not enabled"), "{err}");
    Ok(())
}

#[test]
fn device_plugins_are_told_from_drivers_by_their_export() -> anyhow::Result<()> {
    let device = super::builtin::BUILTIN_DEVICE_PLUGINS
        .iter()
        .find(|(name, _)| *name == "nomad-device-nvidia")
        .map(|(_, bytes)| *bytes)
        .ok_or_else(|| anyhow::anyhow!("built in"))?;
    assert_eq!(
        super::device_contract_version(device).as_deref(),
        Some("0.1.0")
    );
    let driver = std::fs::read(Path::new(env!("CARAVAN_TESTING_DRIVERS_DIR")).join("noisy.wasm"))?;
    assert_eq!(super::device_contract_version(&driver), None);
    assert_eq!(super::device_contract_version(b"\0asm garbage"), None);
    Ok(())
}

/// The demo config the README names parses and reports what it says: two groups, one
/// unhealthy instance, and stats for the healthy 80 GiB ones.
#[tokio::test]
async fn the_shipped_demo_config_reports_its_devices_and_stats() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/devices.hcl");
    let config =
        crate::agent::config::AgentConfig::parse(&std::fs::read_to_string(&path)?, "devices.hcl")?;
    let plugins = config
        .plugin
        .iter()
        .map(|(name, plugin)| (name.clone(), plugin.config.clone().unwrap_or(json!({}))))
        .collect();
    let host = device_host(plugins, None)?;
    let groups = host
        .fingerprint_devices()
        .await
        .remove("caravan-test-devices")
        .ok_or_else(|| anyhow::anyhow!("fingerprinted"))??;
    let names: Vec<String> = groups.iter().map(NodeDeviceResource::full_name).collect();
    assert_eq!(
        names,
        ["caravan-test/gpu/sim-80g", "caravan-test/gpu/sim-16g"]
    );
    let unhealthy: Vec<&str> = groups
        .iter()
        .flat_map(|group| &group.instances)
        .filter(|instance| !instance.healthy)
        .map(|instance| instance.id.as_str())
        .collect();
    assert_eq!(unhealthy, ["sim-2"]);
    let stats = host.device_group_stats().await;
    let sim = stats
        .iter()
        .find(|group| group.name == "sim-80g")
        .ok_or_else(|| anyhow::anyhow!("stats of sim-80g: {stats:?}"))?;
    assert_eq!(
        sim.instance_stats.keys().collect::<Vec<_>>(),
        ["sim-0", "sim-1"]
    );
    let summary = sim.instance_stats["sim-0"]
        .summary
        .as_ref()
        .map(ToString::to_string);
    assert_eq!(summary.as_deref(), Some("1024 MiB"));
    Ok(())
}
