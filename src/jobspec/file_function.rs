//! Nomad's `file(path)` HCL function: the text of a file beside the job file, for job files the
//! CLI reads from disk (`data = file("config.tpl")`).
//!
//! Boundary: only [`super::parse_file`] and [`super::parse_file_validated`] install a base
//! directory, so files are read only on the operator's machine, relative to the job file; a job
//! parsed from text (`/v1/jobs/parse` on the server, as Nomad's does with `AllowFS` off) gets an
//! error naming why. The size is checked against the evaluation budget before reading.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl::eval::FuncArgs;

thread_local! {
    static BASE: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

/// Runs `parse` with `file()` reading relative to `base`; restores the previous state after.
pub(crate) fn with_file_base<R>(base: &Path, parse: impl FnOnce() -> R) -> R {
    let previous = BASE.with(|current| current.replace(Some(base.to_owned())));
    let result = parse();
    BASE.with(|current| current.replace(previous));
    result
}

pub(crate) fn file(args: FuncArgs) -> Result<Value, String> {
    let Some(Value::String(relative)) = args.first() else {
        return Err("argument 1 must be a string".to_owned());
    };
    let Some(base) = BASE.with(|current| current.borrow().clone()) else {
        return Err(
            "file() can only be used in a job file read from disk by the CLI; here the job \
             came as text, so it cannot read files"
                .to_owned(),
        );
    };
    let path = base.join(relative);
    let size = std::fs::metadata(&path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?
        .len();
    super::budget::check_size(usize::try_from(size).unwrap_or(usize::MAX))?;
    let text = std::fs::read_to_string(&path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    super::budget::charge(text.len())?;
    Ok(Value::from(text))
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
}
