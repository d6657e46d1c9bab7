//! Nomad's file-system HCL functions, for job files the CLI reads from disk: `file(path)`, the
//! text of a file beside the job file (`data = file("config.tpl")`), and `pathexpand(path)`, a
//! leading `~` made the home directory of the parse's environment (`HOME`).
//!
//! Boundary: only [`super::parse_file`] and [`super::parse_file_validated`] install a base
//! directory, so files are read only on the operator's machine, relative to the job file; a job
//! parsed from text (`/v1/jobs/parse` on the server, as Nomad's does with `AllowFS` off) gets an
//! error naming why. The size is checked against the evaluation budget before reading.

use std::cell::RefCell;
use std::path::PathBuf;

use hcl::Value;
use hcl::eval::FuncArgs;

/// What the file-system functions of one parse may use.
#[derive(Clone)]
pub(crate) struct FileAccess {
    /// The directory `file()` reads relative to: the job file's.
    pub base: PathBuf,
    /// The home directory `pathexpand()` puts for `~`, if the environment has one.
    pub home: Option<String>,
}

thread_local! {
    static ACCESS: RefCell<Option<FileAccess>> = const { RefCell::new(None) };
}

/// Runs `parse` with the file-system functions allowed as `access` says; restores the previous
/// state after.
pub(crate) fn with_file_access<R>(access: FileAccess, parse: impl FnOnce() -> R) -> R {
    let previous = ACCESS.with(|current| current.replace(Some(access)));
    let result = parse();
    ACCESS.with(|current| current.replace(previous));
    result
}

fn current_access(function: &str) -> Result<FileAccess, String> {
    ACCESS.with(|current| current.borrow().clone()).ok_or_else(|| {
        format!(
            "{function}() can only be used in a job file read from disk by the CLI; here the job \
             came as text, so it cannot use the file system"
        )
    })
}

pub(crate) fn file(args: FuncArgs) -> Result<Value, String> {
    let Some(Value::String(relative)) = args.first() else {
        return Err("argument 1 must be a string".to_owned());
    };
    let path = current_access("file")?.base.join(relative);
    let size = std::fs::metadata(&path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?
        .len();
    super::budget::check_size(usize::try_from(size).unwrap_or(usize::MAX))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    super::budget::charge(text.len())?;
    Ok(Value::from(text))
}

/// `~` or a leading `~/` becomes the home directory (Nomad's, from Terraform: `~user` is an
/// error); any other path is returned as given.
pub(crate) fn pathexpand(args: FuncArgs) -> Result<Value, String> {
    let Some(Value::String(path)) = args.first() else {
        return Err("argument 1 must be a string".to_owned());
    };
    let access = current_access("pathexpand")?;
    let Some(rest) = path.strip_prefix('~') else {
        return Ok(Value::from(path.as_str()));
    };
    if !(rest.is_empty() || rest.starts_with('/')) {
        return Err(format!(
            "cannot expand {path:?}: only the current user's home (~ or ~/...) can be expanded"
        ));
    }
    let home = access
        .home
        .ok_or_else(|| format!("cannot expand {path:?}: HOME is not set"))?;
    Ok(Value::from(format!("{home}{rest}")))
}

#[cfg(test)]
mod tests {
    use crate::jobspec::{ParseConfig, parse, parse_file};

    const JOB: &str = "job \"f\" {\n  group \"g\" {\n    task \"t\" {\n      driver = \"raw_exec\"\n      template {\n        data        = file(\"app.tpl\")\n        destination = \"local/app.conf\"\n      }\n    }\n  }\n}\n";

    #[test]
    fn file_reads_beside_a_job_file_read_from_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("app.tpl"), "port = {{ env \"PORT\" }}\n").expect("write");
        let path = dir.path().join("f.nomad.hcl");
        std::fs::write(&path, JOB).expect("write");
        let job = parse_file(&path, &ParseConfig::default()).expect("parses");
        assert_eq!(
            job.task_groups[0].tasks[0].templates[0].embedded_tmpl,
            "port = {{ env \"PORT\" }}\n"
        );

        std::fs::remove_file(dir.path().join("app.tpl")).expect("remove");
        let error = parse_file(&path, &ParseConfig::default())
            .expect_err("missing file")
            .to_string();
        assert!(
            error.contains(":6:23: ") && error.contains("cannot read"),
            "{error}"
        );
    }

    #[test]
    fn file_is_refused_for_a_job_given_as_text() {
        let error = parse(JOB, "input.nomad.hcl", &ParseConfig::default())
            .expect_err("no file system")
            .to_string();
        assert!(
            error.starts_with("input.nomad.hcl:6:") && error.contains("read from disk by the CLI"),
            "{error}"
        );
    }

    /// `pathexpand` (Nomad's, from Terraform): `~` and `~/...` take `HOME` from the parse's
    /// environment; other paths come back as given; `~user` and text-only parses are refused.
    #[test]
    fn pathexpand_expands_the_home_of_the_parse_environment() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("p.nomad.hcl");
        let expand = |argument: &str, env: &[(&str, &str)]| {
            let source = format!(
                "job \"p\" {{\n  meta {{\n    path = pathexpand(\"{argument}\")\n  }}\n}}\n"
            );
            std::fs::write(&path, &source).expect("write");
            let config = ParseConfig {
                env: env
                    .iter()
                    .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                    .collect(),
                ..ParseConfig::default()
            };
            parse_file(&path, &config)
                .map(|job| job.meta["path"].clone())
                .map_err(|error| error.to_string())
        };
        let home = [("HOME", "/home/op")];
        assert_eq!(
            expand("~/.ssh/id_rsa", &home).as_deref(),
            Ok("/home/op/.ssh/id_rsa")
        );
        assert_eq!(expand("~", &home).as_deref(), Ok("/home/op"));
        assert_eq!(expand("/etc/~x", &home).as_deref(), Ok("/etc/~x"));
        let error = expand("~root/x", &home).expect_err("another user's home");
        assert!(
            error.starts_with(&format!("{}:3:", path.display())) && error.contains("~root/x"),
            "{error}"
        );
        let error = expand("~/x", &[]).expect_err("no HOME");
        assert!(error.contains("HOME is not set"), "{error}");

        let error = parse(
            "job \"p\" {\n  meta {\n    path = pathexpand(\"~\")\n  }\n}\n",
            "input.nomad.hcl",
            &ParseConfig::default(),
        )
        .expect_err("no file system")
        .to_string();
        assert!(error.contains("pathexpand() can only be used"), "{error}");
    }
}
