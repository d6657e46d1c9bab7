//! Capability `host-docker`: containers through the node's Docker daemon (Engine API, bollard).
//!
//! The daemon is the one named by the calling driver's plugin config (`endpoint`, default
//! `unix:///var/run/docker.sock`); one client per endpoint is kept, its API version negotiated
//! with the daemon on first use (Debian's docker.io 20.10 speaks API 1.41).
//!
//! Scope and sandbox rules are in `docker_scope.rs`: every container call checks the container's
//! labels against the call's driver and task directory first. `docker_convert.rs` maps the WIT
//! records to the Engine API's models and keeps Docker's own error messages.
//!
//! Logs: `start-container` spawns a follower that streams the container's stdout and stderr
//! (demultiplexed) into the log files of its spec until the container stops; `follow-logs`
//! starts one again after an agent restart. `wait-container` lets the follower drain before it
//! returns, so the files are complete when the task is reported dead.
//!
//! Every function is async: `wait-container` suspends its call on the Engine API's wait stream
//! and never holds an agent thread.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, ImportImageOptions, KillContainerOptions,
    ListContainersOptions, LogsOptions, RemoveContainerOptions, StatsOptions, StopContainerOptions,
    WaitContainerOptions,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::driver_host::bindings::caravan::driver::host_docker::{
    ContainerExecOutput, ContainerExit, ContainerSpec, ContainerStats, ContainerStatus, DaemonInfo,
    Host, RegistryAuth,
};
use crate::driver_host::host::docker_convert::{
    add_devices, add_volumes, append_capped, container_body, docker_error, full_id, now_ms,
    split_reference, state_of, status_of,
};
use crate::driver_host::host::docker_scope::{
    self, DockerSettings, LABEL_STDERR, LABEL_STDOUT, LABEL_TASK_ID, Owner,
};
use crate::driver_host::instance::CallState;
use crate::driver_host::types::TaskScope;

/// Seconds a request may take to get its response headers (bollard's per-request timeout); the
/// call's own host timeout usually ends it first.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// How long pulling or loading an image may take.
const IMAGE_TIMEOUT: Duration = Duration::from_secs(600);
/// How long `wait-container` waits for the log follower to drain after the container stopped.
const LOG_DRAIN: Duration = Duration::from_secs(3);
/// How long the host's own ownership checks and reaping may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Agent-wide state of the capability: settings per driver, clients per endpoint, log followers.
pub(crate) struct DockerRuntime {
    plugins: BTreeMap<String, serde_json::Value>,
    clients: Mutex<HashMap<String, Docker>>,
    followers: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl DockerRuntime {
    /// `plugins`: the agent config's `plugin "NAME" { config {...} }` blocks by driver name.
    pub(crate) fn new(plugins: BTreeMap<String, serde_json::Value>) -> DockerRuntime {
        DockerRuntime {
            plugins,
            clients: Mutex::new(HashMap::new()),
            followers: Mutex::new(HashMap::new()),
        }
    }

    fn settings(&self, driver: &str) -> Result<DockerSettings, String> {
        DockerSettings::from_plugin_config(self.plugins.get(driver))
    }

    /// The client of the driver's endpoint, connected and version-negotiated on first use. A
    /// failure is not cached: a daemon started later is found by the next call.
    async fn client(&self, driver: &str) -> Result<(Docker, DockerSettings), String> {
        let settings = self.settings(driver)?;
        let cached = lock(&self.clients).get(&settings.endpoint).cloned();
        if let Some(docker) = cached {
            return Ok((docker, settings));
        }
        let endpoint = settings.endpoint.as_str();
        let unreachable =
            |err: BollardError| format!("cannot reach the Docker daemon at {endpoint}: {err}");
        let docker = if let Some(path) = endpoint.strip_prefix("unix://") {
            Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else if let Some(address) = endpoint.strip_prefix("tcp://") {
            Docker::connect_with_http(
                &format!("http://{address}"),
                REQUEST_TIMEOUT_SECS,
                API_DEFAULT_VERSION,
            )
        } else if endpoint.starts_with("http://") {
            Docker::connect_with_http(endpoint, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
        } else {
            return Err(format!(
                "docker endpoint {endpoint:?}: expected unix:///path or tcp://host:port"
            ));
        }
        .map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        lock(&self.clients).insert(settings.endpoint.clone(), docker.clone());
        Ok((docker, settings))
    }

    /// Streams the container's logs into the two files from `since` (Unix seconds; 0 for all)
    /// until it stops. At most one follower per container.
    fn follow(&self, docker: Docker, id: &str, stdout: PathBuf, stderr: PathBuf, since: i32) {
        let mut followers = lock(&self.followers);
        followers.retain(|_, follower| !follower.is_finished());
        if followers.contains_key(id) {
            return;
        }
        let container = id.to_owned();
        let task = tokio::spawn(async move {
            if let Err(err) = copy_logs(&docker, &container, &stdout, &stderr, since).await {
                tracing::warn!(container = %container, error = %err, "container log streaming ended");
            }
        });
        followers.insert(id.to_owned(), task.abort_handle());
    }

    /// Waits up to `limit` for the container's log follower to finish.
    async fn drain(&self, id: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let running = lock(&self.followers)
                .get(id)
                .is_some_and(|follower| !follower.is_finished());
            if !running || Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn unfollow(&self, id: &str) {
        if let Some(follower) = lock(&self.followers).remove(id) {
            follower.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn copy_logs(
    docker: &Docker,
    id: &str,
    stdout_path: &Path,
    stderr_path: &Path,
    since: i32,
) -> Result<(), String> {
    // Beneath the allocation directory, never through a link a container planted there.
    let open = |path: &Path| {
        let path = path.to_path_buf();
        async move {
            let file = tokio::task::spawn_blocking(move || docker_scope::open_log_sink(&path))
                .await
                .map_err(|err| err.to_string())??;
            Ok::<_, String>(tokio::fs::File::from_std(file))
        }
    };
    let mut stdout = open(stdout_path).await?;
    let mut stderr = open(stderr_path).await?;
    let mut stream = docker.logs(
        id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            since,
            ..LogsOptions::default()
        }),
    );
    while let Some(item) = stream.next().await {
        let written = match item.map_err(docker_error)? {
            bollard::container::LogOutput::StdErr { message } => stderr.write_all(&message).await,
            bollard::container::LogOutput::StdOut { message }
            | bollard::container::LogOutput::Console { message } => {
                stdout.write_all(&message).await
            }
            bollard::container::LogOutput::StdIn { .. } => Ok(()),
        };
        written.map_err(|err| format!("write logs: {err}"))?;
    }
    stdout.flush().await.map_err(|err| err.to_string())?;
    stderr.flush().await.map_err(|err| err.to_string())?;
    Ok(())
}

/// The owner a task's containers carry.
fn owner_of<'a>(driver: &'a str, scope: &'a TaskScope) -> Owner<'a> {
    Owner {
        driver,
        task_id: &scope.task_id,
        alloc_id: &scope.alloc_id,
        task_dir: &scope.task_dir,
    }
}

/// Waits on the Engine API's wait stream until the container is not running; Docker's error,
/// if any.
async fn wait_not_running(docker: &Docker, full: &str) -> Result<Option<String>, String> {
    let mut stream = docker.wait_container(
        full,
        Some(WaitContainerOptions {
            condition: String::from("not-running"),
        }),
    );
    match stream.next().await {
        Some(Ok(response)) => Ok(response
            .error
            .and_then(|error| error.message)
            .filter(|message| !message.is_empty())),
        Some(Err(BollardError::DockerContainerWaitError { error, .. })) => {
            Ok(Some(error).filter(|error| !error.is_empty()))
        }
        Some(Err(err)) => Err(docker_error(err)),
        None => Err(format!(
            "wait for container {full}: the daemon closed the stream"
        )),
    }
}

impl DockerRuntime {
    /// Inspects container `id` and checks it was created by `driver` for the task of `scope`.
    async fn owned(
        &self,
        driver: &str,
        scope: &TaskScope,
        id: &str,
    ) -> Result<(Docker, ContainerInspectResponse), String> {
        let (docker, _) = self.client(driver).await?;
        let inspect = docker
            .inspect_container(id, None)
            .await
            .map_err(docker_error)?;
        owner_of(driver, scope).check(id, &inspect)?;
        Ok((docker, inspect))
    }

    /// Whether container `id` belongs to the task of `scope` (for a `start-task` waitable).
    pub(crate) async fn check_owned(
        &self,
        driver: &str,
        scope: &TaskScope,
        id: &str,
    ) -> Result<(), String> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.owned(driver, scope, id))
            .await
            .map_err(|_| format!("docker inspect {id} timed out"))?
            .map(drop)
    }

    /// The host's own wait for a task whose life is container `id`: until it stops, then its
    /// logs drained and its exit read.
    pub(crate) async fn wait_task(
        &self,
        driver: &str,
        scope: &TaskScope,
        id: &str,
    ) -> Result<crate::driver_host::host::RawExit, String> {
        let (docker, inspect) =
            tokio::time::timeout(REQUEST_TIMEOUT, self.owned(driver, scope, id))
                .await
                .map_err(|_| format!("docker inspect {id} timed out"))??;
        let full = full_id(&inspect, id);
        let wait_error = wait_not_running(&docker, &full).await?;
        self.drain(&full, LOG_DRAIN).await;
        let inspect = docker
            .inspect_container(&full, None)
            .await
            .map_err(docker_error)?;
        let state = state_of(&inspect);
        let error = wait_error.or_else(|| {
            inspect
                .state
                .and_then(|state| state.error)
                .filter(|error| !error.is_empty())
        });
        Ok(crate::driver_host::host::RawExit {
            exit_code: state.exit_code,
            signal: 0,
            oom_killed: state.oom_killed,
            detail: error,
        })
    }

    /// Removes (forced) every container `driver` created for the task of `scope`; returns how
    /// many. Nothing when the driver has no daemon.
    pub(crate) async fn reap(&self, driver: &str, scope: &TaskScope) -> usize {
        let reaping = async {
            let (docker, _) = self.client(driver).await.ok()?;
            let mut filters = HashMap::new();
            filters.insert(
                String::from("label"),
                vec![
                    format!("{LABEL_TASK_ID}={}", scope.task_id),
                    format!("{}={driver}", docker_scope::LABEL_DRIVER),
                ],
            );
            let containers = docker
                .list_containers(Some(ListContainersOptions {
                    all: true,
                    filters: Some(filters),
                    ..ListContainersOptions::default()
                }))
                .await
                .ok()?;
            let mut removed = 0;
            for container in containers {
                let Some(id) = container.id else { continue };
                self.unfollow(&id);
                let options = RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..RemoveContainerOptions::default()
                };
                if docker.remove_container(&id, Some(options)).await.is_ok() {
                    removed += 1;
                }
            }
            Some(removed)
        };
        tokio::time::timeout(REQUEST_TIMEOUT, reaping)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

/// Runs a host operation under `limit`, counting its time as host time.
async fn bounded_for<T>(
    state: &CallState,
    what: &str,
    limit: Duration,
    operation: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    let _timer = state.host_timer();
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result,
        Err(_) => Err(format!("{what} timed out after {limit:?}")),
    }
}

impl CallState {
    /// The owner of containers this call may touch: its driver and task (the call's scope).
    fn docker_owner(&self) -> Result<Owner<'_>, String> {
        let scope = self
            .scope
            .as_deref()
            .ok_or_else(|| String::from("container calls need a task: this call concerns none"))?;
        Ok(owner_of(&self.driver, scope))
    }

    /// Inspects `id` and checks that it belongs to this call's task.
    async fn authorize(
        &self,
        docker: &Docker,
        id: &str,
    ) -> Result<ContainerInspectResponse, String> {
        let owner = self.docker_owner()?;
        let inspect = docker
            .inspect_container(id, None)
            .await
            .map_err(docker_error)?;
        owner.check(id, &inspect)?;
        Ok(inspect)
    }
}

impl Host for CallState {
    async fn daemon_version(&mut self) -> Result<DaemonInfo, String> {
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        crate::driver_host::host::bounded(self, "docker version", async move {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let version = docker.version().await.map_err(docker_error)?;
            Ok(DaemonInfo {
                version: version.version.unwrap_or_default(),
                api_version: version.api_version.unwrap_or_default(),
                os: version.os.unwrap_or_default(),
                arch: version.arch.unwrap_or_default(),
                kernel_version: version.kernel_version.unwrap_or_default(),
            })
        })
        .await
    }

    async fn inspect_image(&mut self, image: String) -> Result<Option<String>, String> {
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        crate::driver_host::host::bounded(self, "docker image inspect", async move {
            let (docker, _) = runtime.docker.client(&driver).await?;
            match docker.inspect_image(&image).await {
                Ok(inspect) => Ok(Some(inspect.id.unwrap_or(image))),
                Err(err) if status_of(&err) == Some(404) => Ok(None),
                Err(err) => Err(docker_error(err)),
            }
        })
        .await
    }

    async fn pull_image(
        &mut self,
        image: String,
        auth: Option<RegistryAuth>,
    ) -> Result<(), String> {
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        let what = format!("pulling image {image}");
        bounded_for(self, &what, IMAGE_TIMEOUT, async move {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let (repository, tag) = split_reference(&image);
            let credentials = auth.map(|auth| bollard::auth::DockerCredentials {
                username: Some(auth.username),
                password: Some(auth.password),
                email: auth.email,
                serveraddress: auth.server_address,
                ..bollard::auth::DockerCredentials::default()
            });
            let options = CreateImageOptions {
                from_image: Some(repository),
                tag: Some(tag).filter(|tag| !tag.is_empty()),
                ..CreateImageOptions::default()
            };
            let mut progress = docker.create_image(Some(options), None, credentials);
            while let Some(item) = progress.next().await {
                let info = item.map_err(|err| format!("pull {image}: {}", docker_error(err)))?;
                if let Some(detail) = info.error_detail {
                    return Err(format!(
                        "pull {image}: {}",
                        detail.message.unwrap_or_default()
                    ));
                }
            }
            Ok(())
        })
        .await
    }

    async fn load_image(&mut self, path: String) -> Result<Vec<String>, String> {
        let task_dir = self
            .task_dir
            .clone()
            .ok_or_else(|| String::from("load-image needs a task directory"))?;
        let archive = docker_scope::resolve_in_task_dir(&task_dir, &path)?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        let what = format!("loading image archive {path}");
        bounded_for(self, &what, IMAGE_TIMEOUT, async move {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let file = tokio::fs::File::open(&archive)
                .await
                .map_err(|err| format!("open image archive {}: {err}", archive.display()))?;
            let chunks = futures::stream::try_unfold(file, |mut file| async move {
                let mut buffer = vec![0; 256 << 10];
                let read = file.read(&mut buffer).await?;
                if read == 0 {
                    return Ok(None);
                }
                buffer.truncate(read);
                Ok(Some((bytes::Bytes::from(buffer), file)))
            });
            let mut progress = docker.import_image(
                ImportImageOptions {
                    quiet: true,
                    ..ImportImageOptions::default()
                },
                bollard::body_try_stream(chunks),
                None,
            );
            let mut loaded = Vec::new();
            while let Some(item) = progress.next().await {
                let info = item.map_err(|err| format!("load {path}: {}", docker_error(err)))?;
                if let Some(detail) = info.error_detail {
                    return Err(format!(
                        "load {path}: {}",
                        detail.message.unwrap_or_default()
                    ));
                }
                for line in info.stream.unwrap_or_default().lines() {
                    let name = line
                        .strip_prefix("Loaded image: ")
                        .or_else(|| line.strip_prefix("Loaded image ID: "));
                    if let Some(name) = name {
                        loaded.push(name.trim().to_owned());
                    }
                }
            }
            Ok(loaded)
        })
        .await
    }

    async fn create_container(&mut self, spec: ContainerSpec) -> Result<String, String> {
        let mut spec = spec;
        // The container's logs go to the task's own log files (the host's record).
        if let Some(scope) = &self.scope {
            spec.stdout_path = scope.stdout_path.display().to_string();
            spec.stderr_path = scope.stderr_path.display().to_string();
        }
        let runtime = Arc::clone(&self.runtime);
        let (docker, settings) = crate::driver_host::host::bounded(self, "docker connect", {
            let runtime = Arc::clone(&runtime);
            let driver = Arc::clone(&self.driver);
            async move { runtime.docker.client(&driver).await }
        })
        .await?;
        let owner = self.docker_owner()?;
        docker_scope::check_spec(&spec, owner.task_dir, &settings)?;
        if let Some(peer) = spec
            .network_mode
            .as_deref()
            .and_then(|mode| mode.strip_prefix("container:"))
        {
            let inspect = crate::driver_host::host::bounded(self, "docker inspect", async {
                docker
                    .inspect_container(peer, None)
                    .await
                    .map_err(docker_error)
            })
            .await?;
            owner.check_same_alloc(peer, &inspect)?;
        }
        let mut body = container_body(&spec, &owner);
        if let Some(scope) = &self.scope {
            add_devices(&mut body, &scope.devices);
            add_volumes(&mut body, &scope.volumes);
        }
        let options = || {
            Some(CreateContainerOptions {
                name: Some(spec.name.clone()).filter(|name| !name.is_empty()),
                ..CreateContainerOptions::default()
            })
        };
        crate::driver_host::host::bounded(self, "docker create", async {
            match docker.create_container(options(), body.clone()).await {
                Ok(created) => return Ok(created.id),
                Err(err) if status_of(&err) == Some(409) => {
                    // A container of that name is left from an earlier run of this task (Nomad:
                    // createContainer purges it); one of another owner stays and fails the call.
                    let message = docker_error(err);
                    let existing = self
                        .authorize(&docker, &spec.name)
                        .await
                        .map_err(|_| message.clone())?;
                    let existing_id = full_id(&existing, &spec.name);
                    runtime.docker.unfollow(&existing_id);
                    docker
                        .remove_container(
                            &existing_id,
                            Some(RemoveContainerOptions {
                                force: true,
                                v: true,
                                ..RemoveContainerOptions::default()
                            }),
                        )
                        .await
                        .map_err(docker_error)?;
                }
                Err(err) => return Err(docker_error(err)),
            }
            docker
                .create_container(options(), body)
                .await
                .map(|created| created.id)
                .map_err(docker_error)
        })
        .await
    }

    async fn start_container(&mut self, id: String) -> Result<(), String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        crate::driver_host::host::bounded(self, "docker start", async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let inspect = self.authorize(&docker, &id).await?;
            // The bind sources again, now: task code may have swapped one for a link since
            // the container was created.
            docker_scope::recheck_mounts(&inspect, self.docker_owner()?.task_dir)?;
            let full = full_id(&inspect, &id);
            let labels = inspect
                .config
                .as_ref()
                .and_then(|config| config.labels.clone())
                .unwrap_or_default();
            docker
                .start_container(&full, None)
                .await
                .map_err(docker_error)?;
            if let (Some(stdout), Some(stderr)) =
                (labels.get(LABEL_STDOUT), labels.get(LABEL_STDERR))
            {
                runtime
                    .docker
                    .follow(docker.clone(), &full, stdout.into(), stderr.into(), 0);
            }
            Ok(())
        })
        .await
    }

    async fn follow_logs(
        &mut self,
        id: String,
        _stdout_path: String,
        _stderr_path: String,
    ) -> Result<(), String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        let scope = self
            .scope
            .clone()
            .ok_or_else(|| String::from("container calls need a task: this call concerns none"))?;
        let stdout_path = scope.stdout_path.display().to_string();
        let stderr_path = scope.stderr_path.display().to_string();
        crate::driver_host::host::bounded(self, "docker logs", async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let owner = self.docker_owner()?;
            let alloc_dir = docker_scope::alloc_dir(owner.task_dir);
            docker_scope::check_log_path("stdout", &stdout_path, alloc_dir)?;
            docker_scope::check_log_path("stderr", &stderr_path, alloc_dir)?;
            let inspect = self.authorize(&docker, &id).await?;
            let since = i32::try_from(now_ms() / 1000).unwrap_or(0);
            runtime.docker.follow(
                docker,
                &full_id(&inspect, &id),
                stdout_path.into(),
                stderr_path.into(),
                since,
            );
            Ok(())
        })
        .await
    }

    async fn wait_container(
        &mut self,
        id: String,
        timeout_ms: u64,
    ) -> Result<Option<ContainerExit>, String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        let (docker, full) = crate::driver_host::host::bounded(self, "docker inspect", async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let inspect = self.authorize(&docker, &id).await?;
            Ok((docker, full_id(&inspect, &id)))
        })
        .await?;
        let _timer = self.host_timer();
        let wait = wait_not_running(&docker, &full);
        let wait_error = match tokio::time::timeout(Duration::from_millis(timeout_ms), wait).await {
            Ok(result) => result?,
            Err(_) => return Ok(None),
        };
        runtime.docker.drain(&full, LOG_DRAIN).await;
        let inspect = docker
            .inspect_container(&full, None)
            .await
            .map_err(docker_error)?;
        let state = state_of(&inspect);
        let error = wait_error.or_else(|| {
            inspect
                .state
                .and_then(|state| state.error)
                .filter(|error| !error.is_empty())
        });
        Ok(Some(ContainerExit {
            exit_code: state.exit_code,
            oom_killed: state.oom_killed,
            error,
        }))
    }

    async fn stop_container(
        &mut self,
        id: String,
        timeout_ms: u64,
        signal: String,
    ) -> Result<(), String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        let limit = self
            .host_call_timeout
            .saturating_add(Duration::from_millis(timeout_ms));
        bounded_for(self, "docker stop", limit, async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let inspect = self.authorize(&docker, &id).await?;
            let full = full_id(&inspect, &id);
            if !state_of(&inspect).running {
                return Ok(());
            }
            let ignore_stopped = |result: Result<(), BollardError>| match result {
                Err(err) if matches!(status_of(&err), Some(304 | 409)) => Ok(()),
                other => other.map_err(docker_error),
            };
            let seconds = i32::try_from(timeout_ms.div_ceil(1000)).unwrap_or(i32::MAX);
            if signal.is_empty() {
                // Docker sends the image's stop signal, then SIGKILL after the timeout.
                return ignore_stopped(
                    docker
                        .stop_container(
                            &full,
                            Some(StopContainerOptions {
                                t: Some(seconds),
                                signal: None,
                            }),
                        )
                        .await,
                );
            }
            ignore_stopped(
                docker
                    .kill_container(&full, Some(KillContainerOptions { signal }))
                    .await,
            )?;
            let mut wait = docker.wait_container(
                &full,
                Some(WaitContainerOptions {
                    condition: String::from("not-running"),
                }),
            );
            if tokio::time::timeout(Duration::from_millis(timeout_ms), wait.next())
                .await
                .is_ok()
            {
                return Ok(());
            }
            ignore_stopped(
                docker
                    .kill_container(
                        &full,
                        Some(KillContainerOptions {
                            signal: String::from("SIGKILL"),
                        }),
                    )
                    .await,
            )
        })
        .await
    }

    async fn signal_container(&mut self, id: String, signal: String) -> Result<(), String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        crate::driver_host::host::bounded(self, "docker kill", async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let inspect = self.authorize(&docker, &id).await?;
            docker
                .kill_container(
                    &full_id(&inspect, &id),
                    Some(KillContainerOptions { signal }),
                )
                .await
                .map_err(docker_error)
        })
        .await
    }

    async fn remove_container(&mut self, id: String, force: bool) -> Result<(), String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        crate::driver_host::host::bounded(self, "docker rm", async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let inspect = match docker.inspect_container(&id, None).await {
                Err(err) if status_of(&err) == Some(404) => return Ok(()),
                Err(err) => return Err(docker_error(err)),
                Ok(_) => self.authorize(&docker, &id).await?,
            };
            let full = full_id(&inspect, &id);
            runtime.docker.unfollow(&full);
            match docker
                .remove_container(
                    &full,
                    Some(RemoveContainerOptions {
                        force,
                        v: true,
                        ..RemoveContainerOptions::default()
                    }),
                )
                .await
            {
                Err(err) if status_of(&err) == Some(404) => Ok(()),
                other => other.map_err(docker_error),
            }
        })
        .await
    }

    async fn container_state(&mut self, id: String) -> Result<ContainerStatus, String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        crate::driver_host::host::bounded(self, "docker inspect", async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            Ok(state_of(&self.authorize(&docker, &id).await?))
        })
        .await
    }

    async fn inspect_container(&mut self, id: String) -> Result<String, String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        crate::driver_host::host::bounded(self, "docker inspect", async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let inspect = self.authorize(&docker, &id).await?;
            serde_json::to_string(&inspect).map_err(|err| err.to_string())
        })
        .await
    }

    async fn exec_container(
        &mut self,
        id: String,
        cmd: Vec<String>,
        timeout_ms: u64,
    ) -> Result<ContainerExecOutput, String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        let limit = self
            .host_call_timeout
            .saturating_add(Duration::from_millis(timeout_ms));
        bounded_for(self, "docker exec", limit, async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let inspect = self.authorize(&docker, &id).await?;
            let full = full_id(&inspect, &id);
            let exec = docker
                .create_exec(
                    &full,
                    bollard::exec::CreateExecOptions {
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        cmd: Some(cmd),
                        ..bollard::exec::CreateExecOptions::default()
                    },
                )
                .await
                .map_err(docker_error)?;
            let started = docker
                .start_exec(&exec.id, None)
                .await
                .map_err(docker_error)?;
            let mut stdout = Vec::new();
            let mut stderr = Vec::new();
            if let bollard::exec::StartExecResults::Attached { mut output, .. } = started {
                let collect = async {
                    while let Some(item) = output.next().await {
                        match item.map_err(docker_error)? {
                            bollard::container::LogOutput::StdErr { message } => {
                                append_capped(&mut stderr, &message);
                            }
                            bollard::container::LogOutput::StdOut { message }
                            | bollard::container::LogOutput::Console { message } => {
                                append_capped(&mut stdout, &message);
                            }
                            bollard::container::LogOutput::StdIn { .. } => {}
                        }
                    }
                    Ok::<(), String>(())
                };
                tokio::time::timeout(Duration::from_millis(timeout_ms), collect)
                    .await
                    .map_err(|_| format!("exec timed out after {timeout_ms} ms"))??;
            }
            let finished = docker.inspect_exec(&exec.id).await.map_err(docker_error)?;
            Ok(ContainerExecOutput {
                exit_code: finished
                    .exit_code
                    .and_then(|code| i32::try_from(code).ok())
                    .unwrap_or(-1),
                stdout,
                stderr,
            })
        })
        .await
    }

    async fn stats_container(&mut self, id: String) -> Result<ContainerStats, String> {
        // Container calls need a task: refused before the daemon is asked.
        self.docker_owner()?;
        let runtime = Arc::clone(&self.runtime);
        let driver = Arc::clone(&self.driver);
        crate::driver_host::host::bounded(self, "docker stats", async {
            let (docker, _) = runtime.docker.client(&driver).await?;
            let inspect = self.authorize(&docker, &id).await?;
            let mut stream = docker.stats(
                &full_id(&inspect, &id),
                Some(StatsOptions {
                    stream: false,
                    one_shot: true,
                }),
            );
            let stats = stream
                .next()
                .await
                .ok_or_else(|| String::from("the daemon sent no stats"))?
                .map_err(docker_error)?;
            let usage = stats
                .cpu_stats
                .and_then(|cpu| cpu.cpu_usage)
                .unwrap_or_default();
            let memory = stats.memory_stats.unwrap_or_default();
            let counters = memory.stats.unwrap_or_default();
            // cgroup v1 reports `rss`, v2 `anon`.
            let rss = counters
                .get("rss")
                .or_else(|| counters.get("anon"))
                .copied()
                .unwrap_or(0);
            let ns_to_ms = |ns: Option<u64>| ns.unwrap_or(0) / 1_000_000;
            Ok(ContainerStats {
                timestamp_ms: now_ms(),
                cpu_user_ms: ns_to_ms(usage.usage_in_usermode),
                cpu_system_ms: ns_to_ms(usage.usage_in_kernelmode),
                cpu_total_ms: ns_to_ms(usage.total_usage),
                memory_usage_bytes: memory.usage.unwrap_or(0),
                memory_rss_bytes: rss,
                memory_limit_bytes: memory.limit.unwrap_or(0),
            })
        })
        .await
    }
}
