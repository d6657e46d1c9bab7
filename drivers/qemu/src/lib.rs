//! The `qemu` driver: virtual machines under QEMU, as Nomad's qemu driver runs them (Nomad:
//! drivers/qemu/driver.go), with the logic here and the system calls behind narrow host
//! capabilities.
//!
//! - `host-process` starts `qemu-system-<emulator>` as the task's process (its own process group,
//!   working directory the task directory, the serial console on standard output into the task's
//!   log files, `-nographic`); the host waits on it (`waitable::process`) and records its pid,
//!   so an agent restart re-attaches to the running VM (`recover-task`) without rebooting it.
//!   `find-programs` and `probe` fingerprint the emulators and qemu's version.
//! - `host-socket` sends `system_powerdown` to the VM's HMP monitor socket (`qm.sock` in the task
//!   directory) when the task has `graceful_shutdown`.
//! - `host-config` gives the operator's plugin config (`image_paths`, `args_allowlist`,
//!   `emulators_allowlist`) to every call.
//!
//! Task config, plugin config and the command line: `config.rs`. Guests run under `tcg`:
//! `accelerator = "kvm"` is refused until a boot proves KVM on the node (a `/dev/kvm` that exists
//! is no proof: see drivers/qemu/README.md).

mod config;

use caravan_driver_sdk::host::process::{self, ExecRequest, SpawnRequest};
use caravan_driver_sdk::host::socket::{self, SocketRequest};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, ExitResult, Fingerprint, FsIsolation, Health,
    RawExit, StartedTask, TaskConfig, TaskHandle, TaskState, TaskStats, TaskStatus, Waitable,
};
use serde::{Deserialize, Serialize};

use crate::config::{MONITOR_SOCKET, PluginConfig, TaskConfigBlock};

/// What the handle keeps.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    pid: u32,
    program: String,
    image: String,
    graceful_shutdown: bool,
    guest_agent: bool,
}

/// How long to wait for the process to go after SIGKILL.
const KILL_GRACE_MS: u64 = 5_000;
/// How long the monitor gets to echo the command (the write alone already delivers it).
const MONITOR_REPLY_MS: u64 = 500;
/// How long the image check (`qemu-img info`) may take.
const IMAGE_CHECK_MS: u64 = 10_000;
/// How long `--version` may take in the fingerprint.
const VERSION_PROBE_MS: u64 = 5_000;

struct Qemu;

fn failed(context: &str) -> impl FnOnce(String) -> DriverError + '_ {
    move |err| DriverError::Failed(format!("{context}: {err}"))
}

/// QEMU's own verdict on the image before the VM starts: `qemu-img info` opens it with qemu's
/// block layer, so a missing or corrupt image fails the task with qemu's message (the VM's own
/// error would only reach the log files). Skipped when qemu-img is not installed.
fn check_image(config: &TaskConfig, image: &str) -> Result<(), DriverError> {
    let output = match process::exec(&ExecRequest {
        command: String::from("qemu-img"),
        args: vec![
            String::from("info"),
            String::from("-U"),
            String::from("--"),
            image.to_owned(),
        ],
        env: config.env.clone(),
        cwd: String::new(),
        timeout_ms: IMAGE_CHECK_MS,
    }) {
        Ok(output) => output,
        Err(err) if err.starts_with("cannot start") => {
            caravan_driver_sdk::log::debug(&format!("image check skipped: {err}"));
            return Ok(());
        }
        Err(err) => return Err(DriverError::Failed(format!("image check: {err}"))),
    };
    if output.exit_code == 0 {
        return Ok(());
    }
    let message = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    Err(DriverError::Failed(format!(
        "task {}: qemu cannot open image_path {image}: {message}",
        config.name
    )))
}

impl Driver for Qemu {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info(
            "qemu",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                send_signals: false,
                exec: false,
                fs_isolation: FsIsolation::None,
            },
        )
    }

    fn config_schema() -> String {
        String::from(
            r#"{"type":"object","additionalProperties":false,"required":["image_path"],"properties":{"image_path":{"type":"string","minLength":1},"emulator":{"type":"string"},"machine_type":{"type":"string"},"accelerator":{"enum":["tcg","kvm"]},"drive_interface":{"enum":["ide","scsi","sd","mtd","floppy","pflash","virtio","none"]},"graceful_shutdown":{"type":"boolean"},"guest_agent":{"type":"boolean"},"args":{"type":"array","items":{"type":"string"}},"port_map":{"type":["object","array"]}}}"#,
        )
    }

    fn fingerprint(plugin_config: String) -> Fingerprint {
        let plugin = match PluginConfig::parse(&plugin_config) {
            Ok(plugin) => plugin,
            Err(message) => {
                return Fingerprint {
                    health: Health::Unhealthy,
                    description: message,
                    attributes: Vec::new(),
                };
            }
        };
        let emulators: Vec<String> = process::find_programs("qemu-system-")
            .iter()
            .map(|name| config::trim_emulator(name).to_owned())
            .filter(|emulator| plugin.emulator_allowed(emulator))
            .collect();
        let Some(first) = emulators
            .iter()
            .find(|emulator| *emulator == "x86_64")
            .or_else(|| emulators.first())
        else {
            return Fingerprint {
                health: Health::Undetected,
                description: String::from("no qemu-system-* emulator in PATH"),
                attributes: Vec::new(),
            };
        };
        let program = format!("qemu-system-{first}");
        let version = match process::probe(&program, &[String::from("--version")], VERSION_PROBE_MS)
        {
            Ok(output) if output.exit_code == 0 => {
                config::parse_version(&String::from_utf8_lossy(&output.stdout))
            }
            Ok(output) => {
                return Fingerprint {
                    health: Health::Unhealthy,
                    description: format!(
                        "{program} --version exited {}: {}",
                        output.exit_code,
                        String::from_utf8_lossy(&output.stderr).trim()
                    ),
                    attributes: Vec::new(),
                };
            }
            Err(err) => {
                return Fingerprint {
                    health: Health::Unhealthy,
                    description: format!("{program} --version: {err}"),
                    attributes: Vec::new(),
                };
            }
        };
        let Some(version) = version else {
            return Fingerprint {
                health: Health::Unhealthy,
                description: format!("{program} --version printed no version"),
                attributes: Vec::new(),
            };
        };
        Fingerprint {
            health: Health::Healthy,
            description: String::from("healthy"),
            attributes: vec![
                (String::from("driver.qemu"), String::from("true")),
                (String::from("driver.qemu.version"), version),
                (String::from("driver.qemu.emulators"), emulators.join(",")),
            ],
        }
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let block: TaskConfigBlock = caravan_driver_sdk::parse_task_config(&config)?;
        let plugin = PluginConfig::parse(&caravan_driver_sdk::host::config::plugin_config())
            .map_err(DriverError::InvalidConfig)?;
        let plan = config::plan(&config, &block, &plugin)?;
        check_image(&config, &plan.image)?;
        let pid = process::spawn(&SpawnRequest {
            command: plan.program.clone(),
            args: plan.args,
            env: config.env.clone(),
            cwd: String::new(),
        })
        .map_err(failed("cannot start qemu"))?;
        caravan_driver_sdk::log::debug(&format!(
            "task {} started {} as pid {pid}",
            config.id, plan.program
        ));
        let state = State {
            pid,
            program: plan.program,
            image: plan.image,
            graceful_shutdown: plan.graceful_shutdown,
            guest_agent: plan.guest_agent,
        };
        Ok(caravan_driver_sdk::started(
            &config,
            caravan_driver_sdk::encode_state(&state)?,
            Waitable::Process(pid),
        ))
    }

    fn interpret_exit(_handle: TaskHandle, exit: RawExit) -> ExitResult {
        ExitResult {
            exit_code: exit.exit_code,
            signal: exit.signal,
            oom_killed: false,
            err: exit.detail,
        }
    }

    /// Nomad's stop: with `graceful_shutdown`, `system_powerdown` on the monitor and up to
    /// `timeout_ms` for the guest to power off; otherwise the kill signal (default SIGTERM) with
    /// the same wait. Then SIGKILL, reported as an error so the task's `Killed` event says the
    /// VM did not stop by itself.
    fn stop_task(handle: TaskHandle, timeout_ms: u64, signal: String) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if !process::is_alive(state.pid) {
            return Ok(());
        }
        let asked = if state.graceful_shutdown {
            match socket::request(&SocketRequest {
                path: String::from(MONITOR_SOCKET),
                message: b"system_powerdown\n".to_vec(),
                reply_until: Vec::new(),
                reply_timeout_ms: MONITOR_REPLY_MS,
            }) {
                Ok(_) => String::from("system_powerdown"),
                Err(err) => {
                    // No monitor to ask: fall back to the signal, as Nomad does.
                    caravan_driver_sdk::log::warn(&format!(
                        "task {}: cannot send system_powerdown: {err}",
                        handle.id
                    ));
                    signal_vm(&state, &signal)?
                }
            }
        } else {
            signal_vm(&state, &signal)?
        };
        if process::wait(state.pid, timeout_ms)
            .map_err(failed("wait"))?
            .is_some()
        {
            caravan_driver_sdk::log::info(&format!("task {}: VM stopped after {asked}", handle.id));
            return Ok(());
        }
        process::signal_group(state.pid, "SIGKILL").map_err(failed("cannot kill the VM"))?;
        match process::wait(state.pid, KILL_GRACE_MS).map_err(failed("wait"))? {
            Some(_) => Err(DriverError::Failed(format!(
                "the VM did not stop within {timeout_ms} ms of {asked}: killed with SIGKILL"
            ))),
            None => Err(DriverError::Failed(format!(
                "pid {} survived SIGKILL",
                state.pid
            ))),
        }
    }

    fn destroy_task(handle: TaskHandle, force: bool) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let alive = process::is_alive(state.pid);
        if alive && !force {
            return Err(DriverError::Failed(format!(
                "task {} still runs; destroy it with force",
                handle.id
            )));
        }
        let _ = process::signal_group(state.pid, "SIGKILL");
        if alive {
            process::wait(state.pid, KILL_GRACE_MS).map_err(failed("wait"))?;
        }
        Ok(())
    }

    fn inspect_task(handle: TaskHandle) -> Result<TaskStatus, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let task_state = match process::wait(state.pid, 0).map_err(failed("wait"))? {
            Some(exit) => TaskState::Exited(ExitResult {
                exit_code: exit.exit_code,
                signal: exit.signal,
                oom_killed: false,
                err: exit.detail,
            }),
            None => TaskState::Running,
        };
        Ok(TaskStatus {
            id: handle.id,
            state: task_state,
            attributes: vec![
                (String::from("pid"), state.pid.to_string()),
                (String::from("emulator"), state.program),
                (String::from("image_path"), state.image),
                (
                    String::from("graceful_shutdown"),
                    state.graceful_shutdown.to_string(),
                ),
                (String::from("guest_agent"), state.guest_agent.to_string()),
            ],
        })
    }

    fn recover_task(handle: TaskHandle) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if process::is_alive(state.pid) {
            Ok(())
        } else {
            Err(DriverError::TaskNotFound(format!(
                "task {}: qemu pid {} is gone",
                handle.id, state.pid
            )))
        }
    }

    fn task_stats(handle: TaskHandle) -> Result<TaskStats, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let stats = process::stats(state.pid).map_err(failed("stats"))?;
        Ok(TaskStats {
            timestamp_ms: stats.timestamp_ms,
            cpu_user_ms: stats.cpu_user_ms,
            cpu_system_ms: stats.cpu_system_ms,
            memory_rss_bytes: stats.memory_rss_bytes,
            pids: stats.pids,
        })
    }
}

/// Sends the kill signal (default SIGTERM, on which qemu exits) to the VM's process group;
/// returns what was sent, for the messages.
fn signal_vm(state: &State, signal: &str) -> Result<String, DriverError> {
    let signal = if signal.is_empty() { "SIGTERM" } else { signal };
    process::signal_group(state.pid, signal).map_err(failed("cannot signal the VM"))?;
    Ok(signal.to_owned())
}

caravan_driver_sdk::export_driver!(Qemu);
