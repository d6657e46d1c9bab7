//! Hook `template`: renders each `template` block into the task dir before the task starts.
//!
//! Nomad renders with consul-template; this renders its basic subset: `{{ env "NAME" }}` (the
//! task's environment, `NOMAD_*` included) and text without actions copied as is, with custom
//! delimiters honoured. Any other action is an error naming it, so a job relying on Consul or
//! Vault functions fails visibly instead of rendering wrong. `env = true` templates are parsed as
//! `KEY=VALUE` lines and added to the task's environment.
//! Nomad: `client/allocrunner/taskrunner/template/template.go`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::client::alloc_runner::alloc_dir::resolve_under;
use crate::structs::Template;

pub const NAME: &str = "template";

/// Renders every template; returns the variables of `env = true` templates.
pub fn run(
    task_dir: &Path,
    templates: &[Template],
    env: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut extra_env = BTreeMap::new();
    for template in templates {
        let source = if template.embedded_tmpl.is_empty() && !template.source_path.is_empty() {
            let path = if Path::new(&template.source_path).is_absolute() {
                Path::new(&template.source_path).to_path_buf()
            } else {
                resolve_under(task_dir, &template.source_path).ok_or_else(|| {
                    format!(
                        "template source {:?} escapes the task directory",
                        template.source_path
                    )
                })?
            };
            std::fs::read_to_string(&path)
                .map_err(|err| format!("failed to read template {}: {err}", path.display()))?
        } else {
            template.embedded_tmpl.clone()
        };
        let left = if template.left_delim.is_empty() {
            "{{"
        } else {
            &template.left_delim
        };
        let right = if template.right_delim.is_empty() {
            "}}"
        } else {
            &template.right_delim
        };
        let rendered = render(&source, left, right, env)
            .map_err(|err| format!("failed to render template {:?}: {err}", template.dest_path))?;
        let dest = resolve_under(task_dir, &template.dest_path).ok_or_else(|| {
            format!(
                "template destination {:?} escapes the task directory",
                template.dest_path
            )
        })?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|err| err.to_string())?;
        }
        std::fs::write(&dest, &rendered)
            .map_err(|err| format!("failed to write {}: {err}", dest.display()))?;
        if let Ok(mode) = u32::from_str_radix(template.perms.trim_start_matches("0o"), 8)
            && !template.perms.is_empty()
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode))
                .map_err(|err| err.to_string())?;
        }
        if template.envvars {
            for line in rendered.lines() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some((key, value)) = line.split_once('=') {
                    extra_env.insert(key.trim().to_owned(), value.trim().to_owned());
                }
            }
        }
    }
    Ok(extra_env)
}

/// Renders `source`: `{{ env "X" }}` actions (with `{{-`/`-}}` trimming) and literal text.
pub fn render(
    source: &str,
    left: &str,
    right: &str,
    env: &BTreeMap<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find(left) {
        let mut literal = &rest[..start];
        let after = &rest[start + left.len()..];
        let end = after
            .find(right)
            .ok_or_else(|| format!("unclosed action (missing {right:?})"))?;
        let mut action = &after[..end];
        if let Some(trimmed) = action.strip_prefix('-') {
            literal = literal.trim_end();
            action = trimmed;
        }
        out.push_str(literal);
        let mut trim_after = false;
        if let Some(trimmed) = action.strip_suffix('-') {
            trim_after = true;
            action = trimmed;
        }
        out.push_str(&evaluate(action.trim(), env)?);
        rest = &after[end + right.len()..];
        if trim_after {
            rest = rest.trim_start();
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn evaluate(action: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    if let Some(argument) = action.strip_prefix("env ") {
        let name = argument.trim().trim_matches('"');
        return Ok(env.get(name).cloned().unwrap_or_default());
    }
    if action.starts_with("/*") && action.ends_with("*/") {
        return Ok(String::new());
    }
    Err(format!(
        "unsupported template action {action:?}: only env is available"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("NOMAD_TASK_NAME".to_owned(), "web".to_owned()),
            ("PORT".to_owned(), "8080".to_owned()),
        ])
    }

    #[test]
    fn renders_env_and_text() {
        assert_eq!(
            render(
                "task={{ env \"NOMAD_TASK_NAME\" }} port={{env \"PORT\"}}\n",
                "{{",
                "}}",
                &env()
            ),
            Ok("task=web port=8080\n".to_owned())
        );
        assert_eq!(
            render("a  {{- env \"PORT\" -}}  b", "{{", "}}", &env()),
            Ok("a8080b".to_owned())
        );
        assert_eq!(
            render("[[ env \"PORT\" ]] {{x}}", "[[", "]]", &env()),
            Ok("8080 {{x}}".to_owned())
        );
        assert_eq!(
            render("plain file", "{{", "}}", &env()),
            Ok("plain file".to_owned())
        );
    }

    #[test]
    fn unknown_actions_are_errors() {
        let err = render("{{ key \"service/x\" }}", "{{", "}}", &env());
        assert!(err.is_err_and(|err| err.contains("key \\\"service/x\\\"")));
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
        let extra = run(dir.path(), &templates, &env())?;
        assert_eq!(
            std::fs::read_to_string(dir.path().join("local/app.conf"))
                .map_err(|err| err.to_string())?,
            "listen 8080\n"
        );
        assert_eq!(extra.get("EXTRA").map(String::as_str), Some("web-x"));
        Ok(())
    }
}
