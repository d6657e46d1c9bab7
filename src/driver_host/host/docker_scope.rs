//! The sandbox of capability `host-docker`: which containers a call may touch, and what a driver
//! may ask of the daemon.
//!
//! Ownership is recorded in the container's labels when the host creates it and checked on every
//! call that names a container (by id or name):
//!
//! | label              | value                                      |
//! |--------------------|--------------------------------------------|
//! | `caravan.managed`  | `true`                                     |
//! | `caravan.driver`   | the driver that created it (`docker`)      |
//! | `caravan.task_id`  | the task id of the creating call           |
//! | `caravan.alloc_id` | the allocation id of the creating call     |
//! | `caravan.task_dir` | the task directory of the creating call    |
//!
//! All three come from the call's [`TaskScope`](crate::driver_host::TaskScope), the client's own
//! record of the task (also the scope of `host-fs` and `host-process`), never from a driver
//! value, so a driver cannot reach another task's container by forging a handle: the labels of
//! that container name another task.
//!
//! **Invariant:** whatever the driver asks, a container runs privileged only with the plugin
//! config's `allow_privileged = true`, shares the host's network namespace (`network_mode =
//! "host"`) only with `allow_host_network = true`, mounts host paths or named volumes outside the
//! allocation directory only with `volumes { enabled = true }`, and logs only into files inside
//! the allocation directory (Nomad: drivers/docker/config.go `allow_privileged`,
//! `volumes.enabled`). A bind source inside the allocation directory is resolved beneath it
//! through [`crate::allocfs`] with no symbolic link on the way, when the container is created
//! and again just before it starts, so a link a container planted (`ln -s / alloc/data/hostroot`)
//! never mounts the host's `/` into another.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use bollard::models::ContainerInspectResponse;

use crate::allocfs::{FileKind, Root};

use crate::driver_host::bindings::caravan::driver::host_docker::{ContainerSpec, MountKind};

pub(crate) const LABEL_MANAGED: &str = "caravan.managed";
pub(crate) const LABEL_DRIVER: &str = "caravan.driver";
pub(crate) const LABEL_TASK_DIR: &str = "caravan.task_dir";
pub(crate) const LABEL_TASK_ID: &str = "caravan.task_id";
pub(crate) const LABEL_ALLOC_ID: &str = "caravan.alloc_id";
pub(crate) const LABEL_STDOUT: &str = "caravan.stdout_path";
pub(crate) const LABEL_STDERR: &str = "caravan.stderr_path";

/// The endpoint the capability uses when the plugin config names none.
pub(crate) const DEFAULT_ENDPOINT: &str = "unix:///var/run/docker.sock";

/// What a call is allowed, from the plugin config of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DockerSettings {
    /// `endpoint`: `unix:///path` or `tcp://host:port`.
    pub endpoint: String,
    /// `allow_privileged`.
    pub allow_privileged: bool,
    /// `volumes { enabled = true }`.
    pub volumes_enabled: bool,
    /// `allow_host_network = true`: containers may use `network_mode = "host"`.
    pub allow_host_network: bool,
}

impl DockerSettings {
    /// Reads the settings from a driver's `plugin "NAME" { config { ... } }` as JSON.
    pub(crate) fn from_plugin_config(
        config: Option<&serde_json::Value>,
    ) -> Result<DockerSettings, String> {
        let mut settings = DockerSettings {
            endpoint: String::from(DEFAULT_ENDPOINT),
            allow_privileged: false,
            volumes_enabled: false,
            allow_host_network: false,
        };
        let Some(object) = config.and_then(serde_json::Value::as_object) else {
            return Ok(settings);
        };
        if let Some(value) = object.get("endpoint") {
            settings.endpoint = value
                .as_str()
                .filter(|endpoint| !endpoint.is_empty())
                .ok_or_else(|| format!("plugin config endpoint: expected a string, got {value}"))?
                .to_owned();
        }
        if let Some(value) = object.get("allow_privileged") {
            settings.allow_privileged = value.as_bool().ok_or_else(|| {
                format!("plugin config allow_privileged: expected a bool, got {value}")
            })?;
        }
        if let Some(value) = object.get("allow_host_network") {
            settings.allow_host_network = value.as_bool().ok_or_else(|| {
                format!("plugin config allow_host_network: expected a bool, got {value}")
            })?;
        }
        if let Some(value) = object.get("volumes") {
            // HCL blocks arrive as an object, or as a list of one object.
            let block = match value {
                serde_json::Value::Array(blocks) => blocks.first(),
                other => Some(other),
            };
            if let Some(enabled) = block.and_then(|block| block.get("enabled")) {
                settings.volumes_enabled = enabled.as_bool().ok_or_else(|| {
                    format!("plugin config volumes.enabled: expected a bool, got {enabled}")
                })?;
            }
        }
        Ok(settings)
    }
}

/// Who a container belongs to: the driver and the task (from the call's scope) that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner<'a> {
    pub driver: &'a str,
    pub task_id: &'a str,
    pub alloc_id: &'a str,
    pub task_dir: &'a Path,
}

impl Owner<'_> {
    /// The labels the host puts on a container it creates for this owner.
    pub(crate) fn labels(&self) -> [(&'static str, String); 5] {
        [
            (LABEL_MANAGED, String::from("true")),
            (LABEL_DRIVER, self.driver.to_owned()),
            (LABEL_TASK_ID, self.task_id.to_owned()),
            (LABEL_ALLOC_ID, self.alloc_id.to_owned()),
            (LABEL_TASK_DIR, self.task_dir.display().to_string()),
        ]
    }

    /// Whether the inspected container belongs to the same allocation and driver (a task may
    /// join the network namespace of its allocation's other containers, `network_mode =
    /// "container:<id>"`, and of no other).
    pub(crate) fn check_same_alloc(
        &self,
        requested: &str,
        inspect: &ContainerInspectResponse,
    ) -> Result<(), String> {
        let empty = HashMap::new();
        let labels = inspect
            .config
            .as_ref()
            .and_then(|config| config.labels.as_ref())
            .unwrap_or(&empty);
        let same_alloc = labels
            .get(LABEL_TASK_DIR)
            .is_some_and(|task_dir| alloc_dir(Path::new(task_dir)) == alloc_dir(self.task_dir));
        let owned = labels.get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && labels.get(LABEL_DRIVER).map(String::as_str) == Some(self.driver)
            && same_alloc;
        if owned {
            Ok(())
        } else {
            Err(format!(
                "network_mode container:{requested}: not a container of this allocation: refused"
            ))
        }
    }

    /// Whether the inspected container carries this owner's labels.
    pub(crate) fn check(
        &self,
        requested: &str,
        inspect: &ContainerInspectResponse,
    ) -> Result<(), String> {
        let empty = HashMap::new();
        let labels = inspect
            .config
            .as_ref()
            .and_then(|config| config.labels.as_ref())
            .unwrap_or(&empty);
        let owned = labels.get(LABEL_MANAGED).map(String::as_str) == Some("true")
            && labels.get(LABEL_DRIVER).map(String::as_str) == Some(self.driver)
            && labels.get(LABEL_TASK_ID).map(String::as_str) == Some(self.task_id)
            && labels.get(LABEL_TASK_DIR).map(String::as_str)
                == Some(self.task_dir.display().to_string().as_str());
        if owned {
            Ok(())
        } else {
            Err(format!(
                "container {requested} was not created by driver {} for this task: refused",
                self.driver
            ))
        }
    }
}

/// The allocation directory of a task: the parent of its task directory.
pub(crate) fn alloc_dir(task_dir: &Path) -> &Path {
    task_dir.parent().unwrap_or(task_dir)
}

/// `path` with `.` and `..` resolved lexically; `None` if it is relative or climbs above `/`.
fn normalize(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut normal = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !normal.pop() {
                    return None;
                }
            }
            Component::Normal(part) => normal.push(part),
            Component::Prefix(_) => return None,
        }
    }
    Some(normal)
}

/// Whether absolute `path` is `dir` or inside it (lexically; symlinks inside an allocation are the
/// task's own business, as Nomad's alloc dir).
pub(crate) fn is_inside(path: &Path, dir: &Path) -> bool {
    match (normalize(path), normalize(dir)) {
        (Some(path), Some(dir)) => path.starts_with(dir),
        _ => false,
    }
}

/// A path relative to the task directory, refusing absolute paths and `..` that leave it.
pub(crate) fn resolve_in_task_dir(task_dir: &Path, relative: &str) -> Result<PathBuf, String> {
    let candidate = Path::new(relative);
    if candidate.is_absolute() {
        return Err(format!(
            "{relative}: expected a path relative to the task directory"
        ));
    }
    let joined = task_dir.join(candidate);
    if !is_inside(&joined, task_dir) {
        return Err(format!("{relative}: leaves the task directory"));
    }
    Ok(joined)
}

/// Checks a container spec against the sandbox rules of the call's task and settings.
pub(crate) fn check_spec(
    spec: &ContainerSpec,
    task_dir: &Path,
    settings: &DockerSettings,
) -> Result<(), String> {
    let alloc_dir = alloc_dir(task_dir);
    if spec.privileged && !settings.allow_privileged {
        return Err(String::from(
            "privileged containers are disabled on this node: set allow_privileged = true in the docker plugin config",
        ));
    }
    if spec.network_mode.as_deref().map(str::trim) == Some("host") && !settings.allow_host_network {
        return Err(String::from(
            "network_mode \"host\" is disabled on this node: set allow_host_network = true in the docker plugin config",
        ));
    }
    for mount in &spec.mounts {
        if !mount.target.starts_with('/') {
            return Err(format!(
                "mount target {:?}: expected an absolute path in the container",
                mount.target
            ));
        }
        match mount.kind {
            MountKind::Tmpfs => {}
            MountKind::Volume if !settings.volumes_enabled => {
                return Err(format!(
                    "volume {:?}: named volumes are disabled on this node: set volumes {{ enabled = true }} in the docker plugin config",
                    mount.source
                ));
            }
            MountKind::Volume => {}
            MountKind::Bind => {
                let source = Path::new(&mount.source);
                if !source.is_absolute() {
                    return Err(format!(
                        "bind mount source {:?}: expected an absolute host path",
                        mount.source
                    ));
                }
                if is_inside(source, alloc_dir) {
                    check_bind_source(source, alloc_dir)?;
                } else if !settings.volumes_enabled {
                    return Err(format!(
                        "bind mount source {:?} is outside the allocation directory: set volumes {{ enabled = true }} in the docker plugin config to allow host paths",
                        mount.source
                    ));
                }
            }
        }
    }
    for (stream, path) in [("stdout", &spec.stdout_path), ("stderr", &spec.stderr_path)] {
        check_log_path(stream, path, alloc_dir)?;
    }
    Ok(())
}

/// A bind source inside the allocation directory: every component beneath it, the last one
/// included, must be a real directory or file, never a symbolic link (task code may have planted
/// one). Resolved through `allocfs` from an fd of the allocation directory.
pub(crate) fn check_bind_source(source: &Path, alloc_dir: &Path) -> Result<(), String> {
    let refused = |why: String| format!("bind mount source {}: {why}", source.display());
    let (Some(source_normal), Some(alloc_normal)) = (normalize(source), normalize(alloc_dir))
    else {
        return Err(refused(String::from("not an absolute path")));
    };
    let relative = source_normal
        .strip_prefix(&alloc_normal)
        .map_err(|_| refused(String::from("outside the allocation directory")))?;
    let root = Root::open(alloc_dir).map_err(|err| refused(err.to_string()))?;
    let relative = root.rel(relative).map_err(|err| refused(err.to_string()))?;
    match root.metadata(&relative) {
        Ok(metadata) if metadata.kind == FileKind::Symlink => Err(refused(String::from(
            "a symbolic link; links under the allocation directory are never mounted",
        ))),
        Ok(_) => Ok(()),
        Err(err) => Err(refused(err.to_string())),
    }
}

/// Just before a container starts: its bind sources inside the allocation directory are checked
/// again (the container's own labels say which allocation; the host wrote them), since task code
/// may have swapped a directory for a link since the container was created.
pub(crate) fn recheck_mounts(
    inspect: &ContainerInspectResponse,
    task_dir: &Path,
) -> Result<(), String> {
    let alloc_dir = alloc_dir(task_dir);
    let mounts = inspect
        .host_config
        .as_ref()
        .and_then(|host_config| host_config.mounts.as_ref());
    for mount in mounts.into_iter().flatten() {
        if mount.typ != Some(bollard::models::MountType::BIND) {
            continue;
        }
        if let Some(source) = mount.source.as_deref()
            && is_inside(Path::new(source), alloc_dir)
        {
            check_bind_source(Path::new(source), alloc_dir)?;
        }
    }
    Ok(())
}

/// A log file must be `<alloc_dir>/alloc/logs/<name>`: where the host's log collectors read.
pub(crate) fn check_log_path(stream: &str, path: &str, alloc_dir: &Path) -> Result<(), String> {
    let in_logs_dir = normalize(Path::new(path)).is_some_and(|path| {
        path.parent() == normalize(&alloc_dir.join("alloc/logs")).as_deref()
            && path.file_name().is_some()
    });
    if !in_logs_dir {
        return Err(format!(
            "{stream} log file {path:?} is outside the allocation directory's alloc/logs ({})",
            alloc_dir.display()
        ));
    }
    Ok(())
}

/// Opens a container's log sink, `<alloc_dir>/alloc/logs/<name>` (checked by
/// [`check_log_path`] when the container was created), beneath the allocation directory through
/// `allocfs`: the collector's FIFO for writing, or a regular file for appending; a link a
/// container planted under that name (or in place of `alloc/logs`) is refused, never followed.
pub(crate) fn open_log_sink(path: &Path) -> Result<std::fs::File, String> {
    let refused = |why: String| format!("log sink {}: {why}", path.display());
    let logs_dir = path
        .parent()
        .ok_or_else(|| refused(String::from("no directory")))?;
    let alloc_dir = logs_dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| refused(String::from("not under an allocation directory")))?;
    let name = path
        .file_name()
        .ok_or_else(|| refused(String::from("no file name")))?;
    let root = Root::open(alloc_dir).map_err(|err| refused(err.to_string()))?;
    let relative = root
        .rel("alloc/logs")
        .map_err(|err| refused(err.to_string()))?
        .join_name(name);
    match root.metadata(&relative) {
        Ok(metadata) if metadata.kind == FileKind::Other => root
            .open_fifo(&relative, false)
            .map(std::fs::File::from)
            .map_err(|err| refused(err.to_string())),
        _ => root
            .open_file(&relative, crate::allocfs::OpenOptions::append())
            .map_err(|err| refused(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver_host::bindings::caravan::driver::host_docker::Mount;
    use serde_json::json;

    fn spec(mounts: Vec<Mount>, privileged: bool) -> ContainerSpec {
        ContainerSpec {
            name: String::from("web-1"),
            image: String::from("busybox"),
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            working_dir: None,
            hostname: None,
            user: None,
            mounts,
            ports: Vec::new(),
            network_mode: None,
            labels: Vec::new(),
            memory_bytes: 0,
            memory_reservation_bytes: 0,
            cpu_shares: 0,
            privileged,
            stdout_path: String::from("/data/alloc/a1/alloc/logs/web.stdout.0"),
            stderr_path: String::from("/data/alloc/a1/alloc/logs/web.stderr.0"),
        }
    }

    fn bind(source: &str) -> Mount {
        Mount {
            kind: MountKind::Bind,
            source: source.to_owned(),
            target: String::from("/data"),
            read_only: false,
        }
    }

    #[test]
    fn settings_default_to_the_local_socket_and_deny_everything() {
        let settings = DockerSettings::from_plugin_config(None).expect("defaults");
        assert_eq!(settings.endpoint, DEFAULT_ENDPOINT);
        assert!(!settings.allow_privileged && !settings.volumes_enabled);
        let settings = DockerSettings::from_plugin_config(Some(&json!({
            "endpoint": "unix:///tmp/d.sock", "allow_privileged": true, "volumes": [{"enabled": true}]
        })))
        .expect("valid");
        assert_eq!(settings.endpoint, "unix:///tmp/d.sock");
        assert!(settings.allow_privileged && settings.volumes_enabled);
        let err = DockerSettings::from_plugin_config(Some(&json!({"allow_privileged": "yes"})))
            .expect_err("not a bool");
        assert!(err.contains("allow_privileged"), "{err}");
    }

    #[test]
    fn the_spec_is_held_to_the_allocation_directory() {
        let data = tempfile::tempdir().expect("tempdir");
        let alloc = data.path().join("a1");
        std::fs::create_dir_all(alloc.join("alloc/data")).expect("mkdir");
        std::fs::create_dir_all(alloc.join("web")).expect("mkdir");
        let task_dir = alloc.join("web");
        let at = |relative: &str| format!("{}/{relative}", alloc.display());
        let strict = DockerSettings::from_plugin_config(None).expect("defaults");
        let spec = |mounts, privileged| {
            let mut spec = spec(mounts, privileged);
            spec.stdout_path = at("alloc/logs/web.stdout.0");
            spec.stderr_path = at("alloc/logs/web.stderr.0");
            spec
        };
        check_spec(&spec(vec![bind(&at("alloc"))], false), &task_dir, &strict)
            .expect("the shared alloc dir");
        let err = check_spec(&spec(vec![bind("/etc")], false), &task_dir, &strict)
            .expect_err("host path");
        assert!(err.contains("outside the allocation directory"), "{err}");
        let err = check_spec(&spec(vec![bind(&at("../a2"))], false), &task_dir, &strict)
            .expect_err("a sibling allocation");
        assert!(err.contains("outside"), "{err}");
        let err = check_spec(&spec(Vec::new(), true), &task_dir, &strict).expect_err("privileged");
        assert!(err.contains("allow_privileged"), "{err}");
        let open = DockerSettings {
            allow_privileged: true,
            volumes_enabled: true,
            ..strict.clone()
        };
        check_spec(&spec(vec![bind("/etc")], true), &task_dir, &open).expect("allowed");
        let mut escaping_log = spec(Vec::new(), false);
        escaping_log.stdout_path = String::from("/etc/passwd");
        let err = check_spec(&escaping_log, &task_dir, &open).expect_err("log outside");
        assert!(err.contains("stdout log file"), "{err}");
    }

    /// A container ran `ln -s / /alloc/data/hostroot`: another task's bind mount of it (or of a
    /// path through it, as `volumes = ["../alloc/data/hostroot:/host"]` becomes) is refused,
    /// even with host volumes enabled.
    #[test]
    fn a_planted_link_is_never_a_bind_source() {
        let data = tempfile::tempdir().expect("tempdir");
        let alloc = data.path().join("a1");
        std::fs::create_dir_all(alloc.join("alloc/data")).expect("mkdir");
        std::fs::create_dir_all(alloc.join("web")).expect("mkdir");
        std::os::unix::fs::symlink("/", alloc.join("alloc/data/hostroot")).expect("plant");
        let task_dir = alloc.join("web");
        let open = DockerSettings {
            volumes_enabled: true,
            ..DockerSettings::from_plugin_config(None).expect("defaults")
        };
        for source in [
            format!("{}/alloc/data/hostroot", alloc.display()),
            format!("{}/alloc/data/hostroot/etc", alloc.display()),
            format!("{}/web/../alloc/data/hostroot", alloc.display()),
        ] {
            let err = check_spec(&spec(vec![bind(&source)], false), &task_dir, &open)
                .expect_err("link refused");
            assert!(err.contains("symbolic link"), "{source}: {err}");
        }
    }

    #[test]
    fn container_logs_never_go_through_a_planted_link() {
        use std::io::Write;
        let data = tempfile::tempdir().expect("tempdir");
        let alloc = data.path().join("a1");
        let logs = alloc.join("alloc/logs");
        std::fs::create_dir_all(&logs).expect("mkdir");
        let secret = data.path().join("secret");
        std::fs::write(&secret, "secret").expect("write");
        std::os::unix::fs::symlink(&secret, logs.join("web.stdout.0")).expect("plant");
        let err = open_log_sink(&logs.join("web.stdout.0")).expect_err("refused");
        assert!(err.contains("symbolic link"), "{err}");
        let mut file = open_log_sink(&logs.join("web.stderr.0")).expect("a fresh file");
        file.write_all(b"ok").expect("write");
        assert_eq!(std::fs::read_to_string(&secret).expect("read"), "secret");
        assert!(
            check_log_path(
                "stdout",
                "/data/alloc/a1/web/local/x",
                Path::new("/data/alloc/a1")
            )
            .is_err()
        );
    }

    #[test]
    fn host_networking_needs_the_grant() {
        let task_dir = Path::new("/data/alloc/a1/web");
        let strict = DockerSettings::from_plugin_config(None).expect("defaults");
        let mut host = spec(Vec::new(), false);
        host.network_mode = Some(String::from("host"));
        let err = check_spec(&host, task_dir, &strict).expect_err("refused");
        assert!(err.contains("allow_host_network"), "{err}");
        let granted =
            DockerSettings::from_plugin_config(Some(&json!({"allow_host_network": true})))
                .expect("valid");
        check_spec(&host, task_dir, &granted).expect("granted");
        host.network_mode = Some(String::from("bridge"));
        check_spec(&host, task_dir, &strict).expect("bridge is fine");
    }

    #[test]
    fn task_relative_paths_stay_in_the_task_directory() {
        let task_dir = Path::new("/data/alloc/a1/web");
        assert_eq!(
            resolve_in_task_dir(task_dir, "local/image.tar").expect("inside"),
            Path::new("/data/alloc/a1/web/local/image.tar")
        );
        assert!(resolve_in_task_dir(task_dir, "../../a2/web/x.tar").is_err());
        assert!(resolve_in_task_dir(task_dir, "/tmp/x.tar").is_err());
    }
}
