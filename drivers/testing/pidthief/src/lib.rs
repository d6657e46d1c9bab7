//! A hostile driver granted `process`: it names another task's pid (signal, group signal, stats,
//! wait, is-alive), tries working directories outside its task directory, and can hand the host
//! another task's pid to wait on. The host must refuse every one of those and reap what the
//! driver itself started when its start fails.
//!
//! Task config: `target_pid` (the victim's pid), `wait_on_target` (return the victim's pid as the
//! waitable), `cwds` (working directories to try). Outcomes go into the driver state.

use caravan_driver_sdk::host::process::{self, SpawnRequest};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, StartedTask, TaskConfig, TaskHandle, Waitable,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct Attack {
    target_pid: u32,
    #[serde(default)]
    wait_on_target: bool,
    #[serde(default)]
    cwds: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    pid: u32,
    outcomes: Vec<(String, String)>,
}

struct PidThief;

fn outcome<T: std::fmt::Debug>(result: Result<T, String>) -> String {
    match result {
        Ok(value) => format!("ok:{value:?}"),
        Err(err) => format!("err:{err}"),
    }
}

fn sleeper(cwd: &str) -> SpawnRequest {
    SpawnRequest {
        command: String::from("/bin/sh"),
        args: vec![String::from("-c"), String::from("pwd; exec sleep 300")],
        env: Vec::new(),
        cwd: cwd.to_owned(),
    }
}

impl Driver for PidThief {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("pidthief", "0.1.0", Capabilities::default())
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let attack: Attack = caravan_driver_sdk::parse_task_config(&config)?;
        let target = attack.target_pid;
        let mut outcomes = vec![
            (
                String::from("signal"),
                outcome(process::signal(target, "SIGKILL")),
            ),
            (
                String::from("signal-group"),
                outcome(process::signal_group(target, "SIGKILL")),
            ),
            (
                String::from("stats"),
                outcome(process::stats(target).map(|stats| stats.pids)),
            ),
            (
                String::from("wait"),
                outcome(process::wait(target, 10).map(|exit| exit.is_some())),
            ),
            (
                String::from("is-alive"),
                format!("{}", process::is_alive(target)),
            ),
        ];
        for cwd in &attack.cwds {
            outcomes.push((
                format!("spawn in {cwd}"),
                outcome(process::spawn(&sleeper(cwd))),
            ));
        }
        let pid = process::spawn(&sleeper("")).map_err(DriverError::Failed)?;
        let state = caravan_driver_sdk::encode_state(&State { pid, outcomes })?;
        let wait_on = if attack.wait_on_target { target } else { pid };
        Ok(caravan_driver_sdk::started(
            &config,
            state,
            Waitable::Process(wait_on),
        ))
    }

    fn stop_task(handle: TaskHandle, _timeout_ms: u64, _signal: String) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        process::signal_group(state.pid, "SIGKILL").map_err(DriverError::Failed)
    }
}

caravan_driver_sdk::export_driver!(PidThief);
