//! Hook `template`: renders each `template` block into the task dir before the task starts.
//!
//! Nomad renders with consul-template; this renders with [`crate::template`] (Go's
//! `text/template` with consul-template's functions caravan serves; the task's environment,
//! `NOMAD_*` included, is what `env` reads), custom delimiters honoured. A function caravan does
//! not have is an error naming it, so a job relying on Consul or Vault functions fails visibly
//! instead of rendering wrong. `env = true` templates are parsed as `KEY=VALUE` lines and added
//! to the task's environment. Source and destination paths are interpolated first from the
//! task's environment and the node (`${NOMAD_ALLOC_ID}`, `${attr.kernel.name}`), as Nomad does.
//! Nomad: `client/allocrunner/taskrunner/template/template.go`.
//!
//! **Invariant:** sources are read and destinations written beneath the task dir through
//! [`crate::allocfs`] (Nomad's file sandbox): an absolute or escaping path is an error, and a
//! symbolic link a task planted (`local/conf -> /etc`, `secrets -> /root`) is refused, never
//! followed, on the first start and on every restart.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::env_hook::{NodeFacts, interpolate};
use super::hooks::{HookError, HookFuture, Prestart, PrestartRequest, PrestartResponse, TaskHook};
use crate::allocfs::{FileKind, RelPath, Root};
use crate::client::ServerLink;
use crate::client::server_link::VariableRequest;
use crate::structs::{AllocId, Allocation, NodeId, Template};
use crate::template::{Dependencies, Inputs};

/// Largest template source read.
const MAX_SOURCE_BYTES: u64 = 4 << 20;

pub const NAME: &str = "template";

/// What rendering the templates gave.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rendered {
    /// The variables of `env = true` templates.
    pub env: BTreeMap<String, String>,
    /// A SHA-256 of each destination's rendered content, by destination.
    pub checksums: BTreeMap<String, String>,
    /// The destinations written this time (the others already held what they render to).
    pub written: Vec<String>,
    /// What the templates read, all together. With `missing` set nothing was written: the
    /// caller fetches what is missing and runs again.
    pub dependencies: Dependencies,
}

/// Renders every template. A destination whose content is unchanged since the render recorded
/// in `previous` (destination → checksum) and still on disk as rendered is not written again.
/// Nothing is written unless every template rendered with all it reads present in `inputs`.
pub fn run(
    task_dir: &Path,
    templates: &[Template],
    inputs: &Inputs,
    previous: &BTreeMap<String, String>,
) -> Result<Rendered, String> {
    let mut out = Rendered::default();
    if templates.is_empty() {
        return Ok(out);
    }
    let root = Root::open(task_dir).map_err(|err| err.to_string())?;
    let mut renders = Vec::with_capacity(templates.len());
    for template in templates {
        let source = if template.embedded_tmpl.is_empty() && !template.source_path.is_empty() {
            let path = RelPath::parse(&template.source_path).map_err(|_| {
                format!(
                    "template source {:?} escapes the task directory",
                    template.source_path
                )
            })?;
            let bytes = root
                .read(&path, MAX_SOURCE_BYTES)
                .map_err(|err| format!("failed to read template: {err}"))?;
            String::from_utf8(bytes)
                .map_err(|_| format!("template source {:?} is not UTF-8", template.source_path))?
        } else {
            template.embedded_tmpl.clone()
        };
        let output = crate::template::render(
            &template.dest_path,
            &source,
            &template.left_delim,
            &template.right_delim,
            inputs,
        )
        .map_err(|err| format!("failed to render template {:?}: {err}", template.dest_path))?;
        let read = output.dependencies;
        out.dependencies.services.extend(read.services);
        out.dependencies.service_list |= read.service_list;
        out.dependencies.variables.extend(read.variables);
        out.dependencies.missing |= read.missing;
        renders.push((template, output.text));
    }
    if out.dependencies.missing {
        return Ok(out);
    }
    for (template, rendered) in renders {
        write(&root, template, &rendered, previous, &mut out)?;
    }
    Ok(out)
}

/// Writes one rendered template unless unchanged; notes its checksum and `env = true` variables.
fn write(
    root: &Root,
    template: &Template,
    rendered: &str,
    previous: &BTreeMap<String, String>,
    out: &mut Rendered,
) -> Result<(), String> {
    let dest = RelPath::parse_rooted(&template.dest_path)
        .ok()
        .filter(|dest| !dest.is_root())
        .ok_or_else(|| {
            format!(
                "template destination {:?} escapes the task directory",
                template.dest_path
            )
        })?;
    let checksum = hex::encode(Sha256::digest(rendered.as_bytes()));
    let unchanged = previous.get(&template.dest_path) == Some(&checksum)
        && root
            .read(
                &dest,
                u64::try_from(rendered.len())
                    .unwrap_or(u64::MAX)
                    .saturating_add(1),
            )
            .is_ok_and(|on_disk| on_disk == rendered.as_bytes());
    let perms = u32::from_str_radix(template.perms.trim_start_matches("0o"), 8)
        .ok()
        .filter(|_| !template.perms.is_empty());
    if !unchanged {
        write_atomically(root, &dest, rendered.as_bytes(), perms)?;
        out.written.push(template.dest_path.clone());
    }
    out.checksums.insert(template.dest_path.clone(), checksum);
    if let Some(mode) = perms {
        root.set_mode(&dest, mode)
            .map_err(|err| format!("failed to set template permissions: {err}"))?;
    }
    if template.envvars {
        for line in rendered.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=') {
                out.env
                    .insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
    }
    Ok(())
}

/// Writes `contents` to `dest` as consul-template does: into a temporary file beside it, given
/// `perms` (else the mode the destination has, else 0644), renamed over the destination, so the
/// task never reads half a file. A link or directory planted at the destination is refused.
fn write_atomically(
    root: &Root,
    dest: &RelPath,
    contents: &[u8],
    perms: Option<u32>,
) -> Result<(), String> {
    let fail = |err: crate::allocfs::AllocFsError| format!("failed to write template: {err}");
    let Some((parent, name)) = dest.split_last() else {
        return Err(format!("template destination {dest} is the task directory"));
    };
    root.create_dir_all(&parent, 0o755).map_err(fail)?;
    let existing = match root.metadata(dest) {
        Ok(metadata) if metadata.kind == FileKind::File => Some(metadata.mode),
        Ok(metadata) => {
            let what = if metadata.kind == FileKind::Symlink {
                "a symbolic link"
            } else {
                "not a regular file"
            };
            return Err(format!("failed to write template: {dest} is {what}"));
        }
        Err(err) if err.is_not_found() => None,
        Err(err) => return Err(fail(err)),
    };
    let mut temporary = std::ffi::OsString::from(".");
    temporary.push(name);
    temporary.push(".caravan-tmp");
    let temporary = parent.join_name(&temporary);
    root.write(&temporary, contents).map_err(fail)?;
    let written = root
        .set_mode(&temporary, perms.or(existing).unwrap_or(0o644))
        .and_then(|()| root.rename(&temporary, dest));
    if let Err(err) = written {
        let _ = root.remove(&temporary);
        return Err(fail(err));
    }
    Ok(())
}

/// The services of `namespace` in the servers' answer to `/v1/services`.
pub(crate) fn services_of(
    lists: Vec<crate::structs::ServiceRegistrationListStub>,
    namespace: &str,
) -> Vec<crate::structs::ServiceRegistrationStub> {
    lists
        .into_iter()
        .filter(|list| list.namespace == namespace)
        .flat_map(|list| list.services)
        .collect()
}

/// Whose templates render: the servers answer reads in its namespace, and variables for its
/// allocation's task only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    pub namespace: String,
    pub node_id: NodeId,
    pub alloc_id: AllocId,
    pub task: String,
}

impl Workload {
    pub fn of(alloc: &Allocation, task: &str) -> Self {
        Self {
            namespace: alloc.namespace.clone(),
            node_id: alloc.node_id.clone(),
            alloc_id: alloc.id.clone(),
            task: task.to_owned(),
        }
    }
}

/// Renders until nothing the templates read is missing, fetching what is through `link` (the
/// instances of each service read, the namespace's service list, the variables read) for
/// `workload`, then writes.
/// Rounds are bounded: a template whose reads depend on what it read (`nomadService` over the
/// names `nomadServices` lists) needs one round per level.
pub async fn render_with_link(
    task_dir: &Path,
    templates: &[Template],
    env: &BTreeMap<String, String>,
    workload: &Workload,
    link: Option<&dyn ServerLink>,
    previous: &BTreeMap<String, String>,
) -> Result<Rendered, String> {
    const MAX_ROUNDS: usize = 8;
    let mut inputs = Inputs {
        env: env.clone(),
        ..Inputs::default()
    };
    for _ in 0..MAX_ROUNDS {
        let (dir, list, fed) = (task_dir.to_path_buf(), templates.to_vec(), inputs.clone());
        let previous = previous.clone();
        let rendered = tokio::task::spawn_blocking(move || run(&dir, &list, &fed, &previous))
            .await
            .map_err(|err| err.to_string())??;
        if !rendered.dependencies.missing {
            return Ok(rendered);
        }
        let Some(link) = link else {
            return Err(
                "templates read Nomad services or variables, but this task has no link to the \
                 servers"
                    .to_owned(),
            );
        };
        let namespace = workload.namespace.as_str();
        for name in &rendered.dependencies.services {
            if !inputs.services.contains_key(name) {
                let (instances, _index) = link
                    .read_service(namespace, name, 0)
                    .await
                    .map_err(|err| format!("failed to read service {name:?}: {err}"))?;
                inputs.services.insert(name.clone(), instances);
            }
        }
        for path in &rendered.dependencies.variables {
            if !inputs.variables.contains_key(path) {
                let request = VariableRequest {
                    node_id: workload.node_id.clone(),
                    alloc_id: workload.alloc_id.clone(),
                    task: workload.task.clone(),
                    path: path.clone(),
                };
                let variable = link
                    .read_variable(&request)
                    .await
                    .map_err(|err| format!("failed to read variable {path:?}: {err}"))?
                    .ok_or_else(|| format!("variable {path:?} not found"))?;
                inputs.variables.insert(path.clone(), variable.items);
            }
        }
        if rendered.dependencies.service_list && inputs.service_list.is_none() {
            let (lists, _index) = link
                .list_services(namespace, 0)
                .await
                .map_err(|err| format!("failed to list services: {err}"))?;
            inputs.service_list = Some(services_of(lists, namespace));
        }
    }
    Err(format!(
        "templates still read data not fetched after {MAX_ROUNDS} rounds"
    ))
}

/// `templates` with every `${...}` in their source and destination paths replaced from `env` and
/// the node, as Nomad's template hook does before rendering (`TaskEnv.ReplaceEnv`).
pub fn interpolated(
    templates: &[Template],
    env: &BTreeMap<String, String>,
    facts: &NodeFacts,
) -> Vec<Template> {
    templates
        .iter()
        .map(|template| Template {
            source_path: interpolate(&template.source_path, env, facts),
            dest_path: interpolate(&template.dest_path, env, facts),
            ..template.clone()
        })
        .collect()
}

/// What the hook keeps: the checksum of each destination's last render.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Checksums {
    checksums: BTreeMap<String, String>,
}

/// The checksums the hook kept in `state` (destination → checksum of its last render).
pub(crate) fn kept_checksums(
    state: Option<&crate::client::state::HookState>,
) -> BTreeMap<String, String> {
    state
        .and_then(|state| state.data.clone())
        .and_then(|data| serde_json::from_value::<Checksums>(data).ok())
        .map(|kept| kept.checksums)
        .unwrap_or_default()
}

/// The `template` hook: renders before every start, and on recovery, writing only what changed
/// since its last render (consul-template writes a destination only when its content changes).
/// `nomadService` / `nomadServices` read through `link` in the allocation's namespace.
#[derive(Clone, Default)]
pub struct TemplateHook {
    pub link: Option<Arc<dyn ServerLink>>,
    /// The node, for `${attr.*}` and `${meta.*}` in source and destination paths.
    pub facts: Arc<NodeFacts>,
}

impl TaskHook for TemplateHook {
    fn name(&self) -> &'static str {
        NAME
    }

    fn as_prestart(&self) -> Option<&dyn Prestart> {
        Some(self)
    }
}

impl Prestart for TemplateHook {
    fn prestart<'a>(
        &'a self,
        req: &'a PrestartRequest<'a>,
        resp: &'a mut PrestartResponse,
    ) -> HookFuture<'a> {
        Box::pin(async move {
            let previous = req.previous::<Checksums>().unwrap_or_default();
            let templates = interpolated(&req.task.templates, req.env, &self.facts);
            let rendered = render_with_link(
                req.task_dir,
                &templates,
                req.env,
                &Workload::of(req.alloc, &req.task.name),
                self.link.as_deref(),
                &previous.checksums,
            )
            .await
            .map_err(HookError::new)?;
            if !rendered.written.is_empty() {
                tracing::debug!(destinations = ?rendered.written, "templates rendered");
            }
            resp.env = rendered.env;
            resp.set_state(&Checksums {
                checksums: rendered.checksums,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(env: &BTreeMap<String, String>) -> Inputs {
        Inputs {
            env: env.clone(),
            ..Inputs::default()
        }
    }

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("NOMAD_TASK_NAME".to_owned(), "web".to_owned()),
            ("PORT".to_owned(), "8080".to_owned()),
        ])
    }

    #[test]
    fn writes_files_and_env_templates() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let templates = [
            Template {
                embedded_tmpl: "listen {{ env \"PORT\" }}\n".to_owned(),
                dest_path: "local/app.conf".to_owned(),
                perms: "0600".to_owned(),
                ..Template::default()
            },
            Template {
                embedded_tmpl: "EXTRA={{ env \"NOMAD_TASK_NAME\" }}-x\n".to_owned(),
                dest_path: "secrets/file.env".to_owned(),
                envvars: true,
                ..Template::default()
            },
        ];
        let extra = run(dir.path(), &templates, &inputs(&env()), &BTreeMap::new())?.env;
        assert_eq!(
            std::fs::read_to_string(dir.path().join("local/app.conf"))
                .map_err(|err| err.to_string())?,
            "listen 8080\n"
        );
        assert_eq!(extra.get("EXTRA").map(String::as_str), Some("web-x"));
        Ok(())
    }

    /// A task replaced `local/app.conf` and `secrets/` by links to the outside and exited: the
    /// restart's render refuses them and leaves the outside alone.
    #[test]
    fn planted_links_are_not_written_through() -> Result<(), String> {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let io = |err: std::io::Error| err.to_string();
        let dir = tempfile::tempdir().map_err(io)?;
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).map_err(io)?;
        let secret = outside.join("secret");
        std::fs::write(&secret, "secret").map_err(io)?;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        let task_dir = dir.path().join("task");
        std::fs::create_dir_all(task_dir.join("local")).map_err(io)?;
        symlink(&secret, task_dir.join("local/app.conf")).map_err(io)?;
        symlink(&outside, task_dir.join("secrets")).map_err(io)?;
        for dest in ["local/app.conf", "secrets/secret", "secrets/new.env"] {
            let templates = [Template {
                embedded_tmpl: "pwned".to_owned(),
                dest_path: dest.to_owned(),
                perms: "0666".to_owned(),
                ..Template::default()
            }];
            let err =
                run(&task_dir, &templates, &inputs(&env()), &BTreeMap::new()).expect_err("refused");
            assert!(err.contains("symbolic link"), "{dest}: {err}");
        }
        let source = [Template {
            source_path: "secrets/secret".to_owned(),
            dest_path: "local/copy".to_owned(),
            ..Template::default()
        }];
        assert!(run(&task_dir, &source, &inputs(&env()), &BTreeMap::new()).is_err());
        assert!(!task_dir.join("local/copy").exists());
        assert_eq!(std::fs::read_to_string(&secret).map_err(io)?, "secret");
        let mode = std::fs::metadata(&secret).map_err(io)?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(&outside)
            .map_err(io)?
            .flatten()
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(names, ["secret"]);
        Ok(())
    }

    /// A destination whose render matches the checksum kept and the file on disk is not
    /// written again; a changed render, or a file changed on disk, is.
    #[test]
    fn unchanged_renders_are_not_written_again() -> Result<(), String> {
        let io = |err: std::io::Error| err.to_string();
        let dir = tempfile::tempdir().map_err(io)?;
        let templates = [Template {
            embedded_tmpl: "port={{ env \"PORT\" }}\n".to_owned(),
            dest_path: "local/app.conf".to_owned(),
            ..Template::default()
        }];
        let first = run(dir.path(), &templates, &inputs(&env()), &BTreeMap::new())?;
        assert_eq!(first.written, ["local/app.conf"]);
        let again = run(dir.path(), &templates, &inputs(&env()), &first.checksums)?;
        assert!(again.written.is_empty(), "{again:?}");
        assert_eq!(again.checksums, first.checksums);
        // Without the kept checksum (a first render) it is written.
        let fresh = run(dir.path(), &templates, &inputs(&env()), &BTreeMap::new())?;
        assert_eq!(fresh.written, ["local/app.conf"]);
        // Changed on disk: written back.
        let dest = dir.path().join("local/app.conf");
        std::fs::write(&dest, "tampered").map_err(io)?;
        let mended = run(dir.path(), &templates, &inputs(&env()), &first.checksums)?;
        assert_eq!(mended.written, ["local/app.conf"]);
        assert_eq!(std::fs::read_to_string(&dest).map_err(io)?, "port=8080\n");
        // A changed render: written.
        let mut other = env();
        other.insert("PORT".to_owned(), "9090".to_owned());
        let changed = run(dir.path(), &templates, &inputs(&other), &first.checksums)?;
        assert_eq!(changed.written, ["local/app.conf"]);
        assert_ne!(changed.checksums, first.checksums);
        Ok(())
    }

    #[test]
    fn source_and_destination_paths_are_interpolated() {
        let mut facts = NodeFacts::default();
        facts
            .node
            .attributes
            .insert("kernel.name".to_owned(), "linux".to_owned());
        let templates = [Template {
            source_path: "local/${NOMAD_TASK_NAME}.tpl".to_owned(),
            dest_path: "local/${attr.kernel.name}/${PORT}.conf".to_owned(),
            embedded_tmpl: "x".to_owned(),
            ..Template::default()
        }];
        let done = interpolated(&templates, &env(), &facts);
        assert_eq!(done[0].source_path, "local/web.tpl");
        assert_eq!(done[0].dest_path, "local/linux/8080.conf");
        assert_eq!(
            done[0].embedded_tmpl, "x",
            "the template's text is not interpolated"
        );
    }
}

#[cfg(test)]
mod link_tests {
    use std::time::Duration;

    use super::*;
    use crate::client::fake_link::FakeLink;
    use crate::structs::{NodeId, ServiceRegistration};

    /// `nomadService` and `nomadServices` read the servers' catalog through the link, in the
    /// allocation's namespace, and the file is written once everything is fetched.
    #[tokio::test]
    async fn services_are_read_through_the_link() -> Result<(), String> {
        let link = FakeLink::new(Duration::from_secs(10));
        let node = NodeId::from("node-1");
        let registration = |namespace: &str, port: i32| ServiceRegistration {
            id: format!("web-{namespace}-{port}"),
            service_name: "web".to_owned(),
            namespace: namespace.to_owned(),
            tags: vec!["http".to_owned()],
            address: "127.0.0.1".to_owned(),
            port,
            ..ServiceRegistration::default()
        };
        link.sync_services(
            &node,
            &[registration("default", 8080), registration("other", 9090)],
            &[],
        )
        .await
        .map_err(|err| err.to_string())?;
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let templates = [Template {
            embedded_tmpl: "{{ range nomadServices }}{{ .Name }}:{{ range nomadService .Name }}\
                            {{ .Address }}:{{ .Port }}{{ end }}{{ end }}\n"
                .to_owned(),
            dest_path: "local/upstreams".to_owned(),
            ..Template::default()
        }];
        let env = BTreeMap::new();
        let link: Arc<dyn ServerLink> = Arc::new(link);
        let rendered = render_with_link(
            dir.path(),
            &templates,
            &env,
            &Workload {
                namespace: "default".to_owned(),
                ..Workload::default()
            },
            Some(&*link),
            &BTreeMap::new(),
        )
        .await?;
        assert_eq!(rendered.written, ["local/upstreams"]);
        assert_eq!(
            rendered.dependencies.services,
            std::collections::BTreeSet::from(["web".to_owned()])
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("local/upstreams"))
                .map_err(|err| err.to_string())?,
            "web:127.0.0.1:8080\n"
        );
        // Without a link a template reading services fails, naming why.
        let err = render_with_link(
            dir.path(),
            &templates,
            &env,
            &Workload::default(),
            None,
            &BTreeMap::new(),
        )
        .await
        .expect_err("no link");
        assert!(err.contains("no link to the servers"), "{err}");
        Ok(())
    }

    /// `nomadVar` reads the variable through the link for the task's allocation; a variable
    /// the servers do not have fails the render, naming it.
    #[tokio::test]
    async fn variables_are_read_through_the_link() -> Result<(), String> {
        let link = FakeLink::new(Duration::from_secs(10));
        link.put_variable(crate::structs::Variable {
            namespace: "default".to_owned(),
            path: "nomad/jobs/web".to_owned(),
            items: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            ..crate::structs::Variable::default()
        });
        let link: Arc<dyn ServerLink> = Arc::new(link);
        let dir = tempfile::tempdir().map_err(|err| err.to_string())?;
        let template = |path: &str| Template {
            embedded_tmpl: format!("{{{{ with nomadVar \"{path}\" }}}}{{{{ .k }}}}{{{{ end }}}}"),
            dest_path: "local/k".to_owned(),
            ..Template::default()
        };
        let workload = Workload {
            namespace: "default".to_owned(),
            task: "web".to_owned(),
            ..Workload::default()
        };
        let render = |template: Template| {
            let (dir, link, workload) = (dir.path().to_path_buf(), link.clone(), workload.clone());
            async move {
                render_with_link(
                    &dir,
                    &[template],
                    &BTreeMap::new(),
                    &workload,
                    Some(&*link),
                    &BTreeMap::new(),
                )
                .await
            }
        };
        let rendered = render(template("nomad/jobs/web")).await?;
        assert_eq!(rendered.written, ["local/k"]);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("local/k")).map_err(|err| err.to_string())?,
            "v"
        );
        let err = render(template("nomad/jobs/other"))
            .await
            .expect_err("no such variable");
        assert!(err.contains("\"nomad/jobs/other\" not found"), "{err}");
        Ok(())
    }
}
