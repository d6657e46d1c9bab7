//! An example third-party driver written against the caravan SDK: Nomad's `java` driver.
//!
//! Task config (Nomad: drivers/java): `jar_path` or `class` (one of them), `class_path`,
//! `jvm_options`, `args`. It builds `java [jvm_options...] [-cp class_path] (-jar jar_path | class)
//! [args...]` and runs it through the `host-process` capability, which the operator grants in the
//! agent config: `plugin "java" { config { capabilities = ["process"] } }`.

use caravan_driver_sdk::host::process::{self, SpawnRequest};
use caravan_driver_sdk::{
    Capabilities, Driver, DriverError, DriverInfo, Fingerprint, FsIsolation, Health, StartedTask,
    TaskConfig, TaskHandle, TaskStats, Waitable,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JavaConfig {
    jar_path: Option<String>,
    class: Option<String>,
    class_path: Option<String>,
    #[serde(default)]
    jvm_options: Vec<String>,
    #[serde(default)]
    args: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct State {
    pid: u32,
}

/// Builds the `java` argument list from the task config (all the driver's logic lives here, so it
/// is tested natively with `cargo test`).
fn java_args(config: &JavaConfig) -> Result<Vec<String>, String> {
    let mut args = config.jvm_options.clone();
    if let Some(class_path) = &config.class_path {
        args.push(String::from("-cp"));
        args.push(class_path.clone());
    }
    match (&config.jar_path, &config.class) {
        (Some(jar), None) => {
            args.push(String::from("-jar"));
            args.push(jar.clone());
        }
        (None, Some(class)) => args.push(class.clone()),
        (Some(_), Some(_)) => return Err(String::from("set only one of jar_path and class")),
        (None, None) => return Err(String::from("one of jar_path and class is required")),
    }
    args.extend(config.args.iter().cloned());
    Ok(args)
}

struct Java;

impl Driver for Java {
    fn info() -> DriverInfo {
        caravan_driver_sdk::driver_info(
            "java",
            env!("CARGO_PKG_VERSION"),
            Capabilities {
                send_signals: true,
                exec: false,
                fs_isolation: FsIsolation::None,
            },
        )
    }

    fn fingerprint(_plugin_config: String) -> Fingerprint {
        // Probing `java -version` needs a task directory to run in; a real driver would do it with
        // `host-process.exec` in a scratch directory. Here: healthy, and the version unknown.
        Fingerprint {
            health: Health::Healthy,
            description: String::from("healthy"),
            attributes: vec![(String::from("driver.java"), String::from("1"))],
        }
    }

    fn start_task(config: TaskConfig) -> Result<StartedTask, DriverError> {
        let java: JavaConfig = caravan_driver_sdk::parse_task_config(&config)?;
        let args = java_args(&java)
            .map_err(|err| DriverError::InvalidConfig(format!("task {}: {err}", config.name)))?;
        let pid = process::spawn(&SpawnRequest {
            command: String::from("java"),
            args,
            env: config.env.clone(),
            // The task directory; output goes to the task's log files (the host's choice).
            cwd: String::new(),
        })
        .map_err(|err| DriverError::Failed(format!("cannot start java: {err}")))?;
        // The host waits on the process; the default `interpret_exit` reports its exit as is.
        Ok(caravan_driver_sdk::started(
            &config,
            caravan_driver_sdk::encode_state(&State { pid })?,
            Waitable::Process(pid),
        ))
    }

    fn stop_task(handle: TaskHandle, timeout_ms: u64, signal: String) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let signal = if signal.is_empty() {
            String::from("SIGTERM")
        } else {
            signal
        };
        process::signal_group(state.pid, &signal).map_err(DriverError::Failed)?;
        if process::wait(state.pid, timeout_ms)
            .map_err(DriverError::Failed)?
            .is_none()
        {
            process::signal_group(state.pid, "SIGKILL").map_err(DriverError::Failed)?;
        }
        Ok(())
    }

    fn recover_task(handle: TaskHandle) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        if process::is_alive(state.pid) {
            Ok(())
        } else {
            Err(DriverError::TaskNotFound(format!(
                "pid {} is gone",
                state.pid
            )))
        }
    }

    fn signal_task(handle: TaskHandle, signal: String) -> Result<(), DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        process::signal(state.pid, &signal).map_err(DriverError::Failed)
    }

    fn task_stats(handle: TaskHandle) -> Result<TaskStats, DriverError> {
        let state: State = caravan_driver_sdk::decode_state(&handle)?;
        let stats = process::stats(state.pid).map_err(DriverError::Failed)?;
        Ok(TaskStats {
            timestamp_ms: stats.timestamp_ms,
            cpu_user_ms: stats.cpu_user_ms,
            cpu_system_ms: stats.cpu_system_ms,
            memory_rss_bytes: stats.memory_rss_bytes,
            pids: stats.pids,
        })
    }
}

caravan_driver_sdk::export_driver!(Java);

#[cfg(test)]
mod tests {
    use super::*;

    fn config(json: &str) -> JavaConfig {
        serde_json::from_str(json).expect("valid test config")
    }

    #[test]
    fn jar_with_options_and_args() {
        let args = java_args(&config(
            r#"{"jar_path":"app.jar","jvm_options":["-Xmx256m"],"args":["serve"]}"#,
        ));
        assert_eq!(
            args,
            Ok(vec![
                "-Xmx256m".into(),
                "-jar".into(),
                "app.jar".into(),
                "serve".into()
            ])
        );
    }

    #[test]
    fn class_with_class_path() {
        let args = java_args(&config(r#"{"class":"Main","class_path":"lib/*"}"#));
        assert_eq!(args, Ok(vec!["-cp".into(), "lib/*".into(), "Main".into()]));
    }

    #[test]
    fn needs_exactly_one_entry_point() {
        assert!(java_args(&config("{}")).is_err());
        assert!(java_args(&config(r#"{"jar_path":"a.jar","class":"Main"}"#)).is_err());
    }
}
