//! A hostile driver granted `wasm`: it asks for its workload's module and preopened directory
//! outside its task directory (absolute, `..`, through a planted symlink), names another task's
//! workload id (stop, wait, stats, is-running) and can hand the host that id to wait on. The host
//! must refuse every one of those; a legitimate workload still runs, its output in the task's
//! own log file.
//!
//! Task config: `module` (the legitimate module, relative), `modules` and `dirs` (the attempts),
//! `target_workload`, `wait_on_target`, `memory_limit_mb` (what it asks). Outcomes go into the
//! driver state.

use caravan_driver_sdk::host::wasm::{self, Workload};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, StartedTask, TaskConfig, TaskHandle, Waitable,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct Attack {
    module: String,
    #[serde(default)]
    modules: Vec<String>,
    #[serde(default)]
    dirs: Vec<String>,
    #[serde(default)]
    target_workload: u64,
    #[serde(default)]
    wait_on_target: bool,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default = "default_memory")]
    memory_limit_mb: u64,
}

fn default_memory() -> u64 {
    64
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    workload: u64,
    outcomes: Vec<(String, String)>,
}

struct WasmThief;

fn outcome<T: std::fmt::Debug>(result: Result<T, String>) -> String {
    match result {
        Ok(value) => format!("ok:{value:?}"),
        Err(err) => format!("err:{err}"),
    }
}

fn workload(module: &str, dir: &str, attack: &Attack) -> Workload {
    Workload {
        module_path: module.to_owned(),
        args: attack.args.clone(),
        env: Vec::new(),
        dir: dir.to_owned(),
        max_memory_bytes: attack.memory_limit_mb << 20,
        fuel: None,
    }
}

impl Driver for WasmThief {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info("wasmthief", "0.1.0", Capabilities::default())
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let attack: Attack = caravan_driver_sdk::parse_task_config(&config)?;
        let target = attack.target_workload;
        let mut outcomes = vec![
            (String::from("stop"), outcome(wasm::stop(target))),
            (
                String::from("wait"),
                outcome(wasm::wait(target, 10).map(|exit| exit.is_some())),
            ),
            (
                String::from("stats"),
                outcome(wasm::stats(target).map(|stats| stats.memory_bytes)),
            ),
            (
                String::from("is-running"),
                format!("{}", wasm::is_running(target)),
            ),
        ];
        for module in &attack.modules {
            outcomes.push((
                format!("module {module}"),
                outcome(wasm::start(&workload(module, "", &attack))),
            ));
        }
        for dir in &attack.dirs {
            outcomes.push((
                format!("dir {dir}"),
                outcome(wasm::start(&workload(&attack.module, dir, &attack))),
            ));
        }
        let id =
            wasm::start(&workload(&attack.module, "", &attack)).map_err(DriverError::Failed)?;
        let state = caravan_driver_sdk::encode_state(&State {
            workload: id,
            outcomes,
        })?;
        let wait_on = if attack.wait_on_target { target } else { id };
        Ok(caravan_driver_sdk::started(
            &config,
            state,
            Waitable::Workload(wait_on),
        ))
    }

    fn stop_task(handle: TaskHandle, _timeout_ms: u64, _signal: String) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        wasm::stop(state.workload).map_err(DriverError::Failed)
    }
}

caravan_driver_sdk::export_driver!(WasmThief);
