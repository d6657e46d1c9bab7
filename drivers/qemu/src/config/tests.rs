//! Unit tests of the qemu driver's config validation and command line.

use caravan_driver_sdk::{PortMapping, Resources};

use super::*;

fn task(json: &str) -> TaskConfig {
    TaskConfig {
        id: String::from("a1/vm"),
        name: String::from("vm"),
        alloc_id: String::from("a1"),
        job_name: String::from("job"),
        group_name: String::from("group"),
        config_json: json.to_owned(),
        env: Vec::new(),
        task_dir: String::from("/data/alloc/a1/vm"),
        stdout_path: String::from("/data/alloc/a1/alloc/logs/vm.stdout.0"),
        stderr_path: String::from("/data/alloc/a1/alloc/logs/vm.stderr.0"),
        resources: Resources {
            cpu_mhz: 500,
            memory_mb: 256,
            memory_max_mb: 0,
        },
        ports: vec![PortMapping {
            label: String::from("http"),
            value: 24_000,
            to: 0,
            host_ip: String::from("127.0.0.1"),
        }],
        user: None,
    }
}

fn plan_of(config: &TaskConfig, plugin: &PluginConfig) -> Result<Plan, DriverError> {
    let block: TaskConfigBlock = caravan_driver_sdk::parse_task_config(config)?;
    plan(config, &block, plugin)
}

fn message(err: DriverError) -> String {
    match err {
        DriverError::InvalidConfig(message) | DriverError::Failed(message) => message,
        other => format!("{other:?}"),
    }
}

#[test]
fn the_command_line_is_nomads_in_nomads_order() {
    let config = task(
        r#"{"image_path":"local/linux.img","graceful_shutdown":true,"guest_agent":true,
            "args":["-kernel","vmlinuz"],"port_map":[{"http":80}]}"#,
    );
    let plan = plan_of(&config, &PluginConfig::default()).expect("valid");
    assert_eq!(plan.program, "qemu-system-x86_64");
    assert_eq!(plan.image, "/data/alloc/a1/vm/local/linux.img");
    assert_eq!(
        plan.args,
        [
            "-machine",
            "type=pc,accel=tcg",
            "-name",
            "linux.img",
            "-m",
            "256M",
            "-drive",
            "file=/data/alloc/a1/vm/local/linux.img,if=ide,id=image0",
            "-nographic",
            "-monitor",
            "unix:/data/alloc/a1/vm/qm.sock,server=on,wait=off",
            "-chardev",
            "socket,path=/data/alloc/a1/vm/qa.sock,server=on,wait=off,id=qga0",
            "-device",
            "virtio-serial",
            "-device",
            "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
            "-kernel",
            "vmlinuz",
            "-netdev",
            "user,id=user.0,hostfwd=tcp:127.0.0.1:24000-:80,hostfwd=udp:127.0.0.1:24000-:80",
            "-device",
            "virtio-net,netdev=user.0",
        ]
    );
}

#[test]
fn ports_with_a_to_forward_without_a_port_map_and_never_to_every_interface() {
    let mut config = task(r#"{"image_path":"x.img"}"#);
    let plan = plan_of(&config, &PluginConfig::default()).expect("valid");
    assert!(
        !plan.args.iter().any(|arg| arg == "-netdev"),
        "no ports to forward"
    );
    config.ports[0].to = 8080;
    let plan = plan_of(&config, &PluginConfig::default()).expect("valid");
    assert!(
        plan.args.contains(&String::from(
            "user,id=user.0,hostfwd=tcp:127.0.0.1:24000-:8080,hostfwd=udp:127.0.0.1:24000-:8080"
        )),
        "{:?}",
        plan.args
    );
    for ip in ["", "0.0.0.0"] {
        config.ports[0].host_ip = ip.to_owned();
        let err = message(plan_of(&config, &PluginConfig::default()).expect_err(ip));
        assert!(err.contains("every interface"), "{err}");
    }
    let config = task(r#"{"image_path":"x.img","port_map":{"db":5432}}"#);
    let err = message(plan_of(&config, &PluginConfig::default()).expect_err("no such label"));
    assert!(err.contains("no port labelled \"db\""), "{err}");
}

#[test]
fn args_outside_the_allowlist_are_refused_by_name() {
    let plugin = PluginConfig {
        args_allowlist: vec![String::from("-kernel"), String::from("--append")],
        ..PluginConfig::default()
    };
    let config = task(r#"{"image_path":"x.img","args":["-kernel","k","-append","x y"]}"#);
    plan_of(&config, &plugin).expect("listed");
    let config = task(r#"{"image_path":"x.img","args":["-kernel","k","-device","evil"]}"#);
    let err = message(plan_of(&config, &plugin).expect_err("unlisted"));
    assert!(
        err.contains("argument \"-device\" is not in the plugin's args_allowlist"),
        "{err}"
    );
    // Without an allowlist everything goes (Nomad's default).
    plan_of(&config, &PluginConfig::default()).expect("no allowlist");
}

#[test]
fn images_must_lie_in_the_allocation_or_under_image_paths() {
    let plugin = PluginConfig {
        image_paths: vec![String::from("/srv/images")],
        ..PluginConfig::default()
    };
    for (image, resolved) in [
        ("local/a.img", "/data/alloc/a1/vm/local/a.img"),
        ("../alloc/data/a.img", "/data/alloc/a1/alloc/data/a.img"),
        ("/data/alloc/a1/vm/a.img", "/data/alloc/a1/vm/a.img"),
        ("/srv/images/base/a.qcow2", "/srv/images/base/a.qcow2"),
    ] {
        assert_eq!(
            image_path(&task("{}"), &plugin, image).expect(image),
            resolved
        );
    }
    for image in [
        "../../a2/vm/a.img",
        "/etc/shadow",
        "/srv/images/../secret.img",
        "/srv/imagesX/a.img",
        "/srv/images",
        "",
    ] {
        assert!(image_path(&task("{}"), &plugin, image).is_err(), "{image}");
    }
}

#[test]
fn bad_values_name_their_key() {
    let plugin = PluginConfig {
        emulators_allowlist: vec![String::from("qemu-system-x86_64")],
        ..PluginConfig::default()
    };
    for (json, expected) in [
        (r#"{}"#, "image_path"),
        (
            r#"{"image_path":"x","emulator":"aarch64"}"#,
            "emulators_allowlist",
        ),
        (
            r#"{"image_path":"x","emulator":"x86_64,evil"}"#,
            "not an emulator name",
        ),
        (
            r#"{"image_path":"x","machine_type":"pc,accel=kvm"}"#,
            "machine_type",
        ),
        (r#"{"image_path":"x","accelerator":"hvf"}"#, "accelerator"),
        (r#"{"image_path":"x","accelerator":"kvm"}"#, "kvm"),
        (
            r#"{"image_path":"x","drive_interface":"usb"}"#,
            "drive_interface",
        ),
        (
            r#"{"image_path":"x","port_map":{"http":"eighty"}}"#,
            "port_map.http",
        ),
        (r#"{"image_path":"x","imagepath":"y"}"#, "unknown field"),
    ] {
        let err = message(plan_of(&task(json), &plugin).expect_err(json));
        assert!(err.contains(expected), "{json}: {err}");
    }
    let config = task(r#"{"image_path":"x","emulator":"qemu-system-x86_64"}"#);
    assert_eq!(
        plan_of(&config, &plugin).expect("allowed").program,
        "qemu-system-x86_64"
    );
}

#[test]
fn memory_within_nomads_bounds_and_cores_become_smp() {
    let mut config = task(r#"{"image_path":"x.img"}"#);
    for memory in [64, 4_000_001] {
        config.resources.memory_mb = memory;
        let err = message(plan_of(&config, &PluginConfig::default()).expect_err("bounds"));
        assert!(err.contains("resources.memory"), "{err}");
    }
    config.resources.memory_mb = 128;
    config
        .env
        .push((String::from("NOMAD_CPU_CORES"), String::from("0-1,3")));
    let plan = plan_of(&config, &PluginConfig::default()).expect("valid");
    assert!(plan.args.windows(2).any(|pair| pair == ["-m", "128M"]));
    assert!(plan.args.windows(2).any(|pair| pair == ["-smp", "3"]));
    assert_eq!(count_cpuset("2"), Some(1));
    assert_eq!(count_cpuset("3-1"), None);
}

#[test]
fn long_socket_paths_are_refused_with_nomads_hint() {
    let mut config = task(r#"{"image_path":"x.img","graceful_shutdown":true}"#);
    config.task_dir = format!("/data/alloc/a1/{}", "v".repeat(90));
    let err = message(plan_of(&config, &PluginConfig::default()).expect_err("long"));
    assert!(err.contains("try to reduce the task name"), "{err}");
    // Without a socket the path length does not matter.
    let config = TaskConfig {
        config_json: String::from(r#"{"image_path":"x.img"}"#),
        ..config
    };
    plan_of(&config, &PluginConfig::default()).expect("no socket");
}

#[test]
fn commas_in_paths_are_escaped_for_qemu() {
    let mut config = task(r#"{"image_path":"a,b.img"}"#);
    config.task_dir = String::from("/data/alloc/a1/v,m");
    let plan = plan_of(&config, &PluginConfig::default()).expect("valid");
    assert!(
        plan.args.contains(&String::from(
            "file=/data/alloc/a1/v,,m/a,,b.img,if=ide,id=image0"
        )),
        "{:?}",
        plan.args
    );
}

#[test]
fn versions_parse_as_nomad_reads_them() {
    assert_eq!(
        parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n"),
        Some(String::from("10.0.2"))
    );
    assert_eq!(parse_version("no version here"), None);
    assert_eq!(parse_version("version x"), None);
}
