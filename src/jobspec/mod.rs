//! Job files: Nomad's HCL2 job specification → [`structs::Job`](crate::structs::Job).
//!
//! ```text
//! source ──parse (hcl-edit, spans)──► Body ──variables/locals──► Evaluator
//!        ──decode (one reader per block, schema-checked)──► JobSubmission
//!        ──JobSubmission::into_job (Nomad's defaults)──► Job  (──Job::validate──► located errors)
//! ```
//!
//! Entry points: [`parse`] for text, [`parse_file`] for a path; [`ParseConfig`] carries `-var`,
//! `-var-file` and the environment (for `NOMAD_VAR_<name>`). As Nomad's parser, they parse only:
//! a job without groups parses, and the server validates at registration. [`parse_validated`]
//! and [`parse_file_validated`] also validate, each problem located at the line that caused it
//! (`job validate` without an agent).
//!
//! Invariant: the jobspec depends only on `structs`; it never panics, whatever the input.
//! Invariant: every error is one line that starts with `file:line:col` (see [`JobspecError`]).
//! Invariant: interpolations rooted at anything but `var` and `local` (`${attr.kernel.name}`,
//! `${NOMAD_PORT_http}`, `${meta.rack}`) are kept literally for the client to fill in.
//! Boundary: the file system is touched only to read the job file, the var files and, for a job
//! file read from disk, the files its `file()` calls name (relative to the job file).
//! Invariant: evaluation runs under a [`Budget`] of bytes and time (`budget.rs`); a file over it
//! fails at the expression that crossed it.

mod body;
mod budget;
mod decode;
mod error;
mod eval;
mod file_function;
mod functions;
mod operators;
mod variables;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod defaults_tests;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use budget::Budget;
pub use error::{JobspecError, Location, ValidationProblem};

use crate::structs::Job;
use body::{BlockReader, Schema, block_offset};
use decode::Decoder;
use error::SourceFile;
use eval::{Evaluator, one_line};

/// What a job file is parsed with besides its text.
#[derive(Clone, Debug, Default)]
pub struct ParseConfig {
    /// `-var name=value` flags, in the order given; later ones win.
    pub vars: Vec<(String, String)>,
    /// `-var-file` paths: HCL files of `name = value` lines, in the order given.
    pub var_files: Vec<PathBuf>,
    /// The environment, as `(name, value)` pairs; `NOMAD_VAR_<name>` entries set variables.
    pub env: Vec<(String, String)>,
}

impl ParseConfig {
    /// Splits a `-var` flag's argument, `name=value`, at the first `=`.
    pub fn parse_var_flag(flag: &str) -> Result<(String, String), String> {
        match flag.split_once('=') {
            Some((name, value)) if !name.trim().is_empty() => {
                Ok((name.trim().to_owned(), value.to_owned()))
            }
            _ => Err(format!(
                "invalid -var {flag:?}: expected name=value, e.g. -var 'image=redis:7'"
            )),
        }
    }

    /// This configuration with the process's environment, as Nomad's CLI reads it.
    pub fn with_process_env(mut self) -> Self {
        self.env = std::env::vars().collect();
        self
    }
}

const FILE_SCHEMA: Schema<'static> = Schema {
    arguments: &[],
    blocks: &["job", "locals", "variable", "variables"],
};

/// Whether a parse also validates the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Validate {
    No,
    Yes,
}

/// Parses the job file at `path` without validating it; errors name the path as given.
pub fn parse_file(path: impl AsRef<Path>, config: &ParseConfig) -> Result<Job, JobspecError> {
    parse_file_with(path.as_ref(), config, Validate::No)
}

/// [`parse_file`], then validates the job as the server would, every problem located in the file.
pub fn parse_file_validated(
    path: impl AsRef<Path>,
    config: &ParseConfig,
) -> Result<Job, JobspecError> {
    parse_file_with(path.as_ref(), config, Validate::Yes)
}

fn parse_file_with(
    path: &Path,
    config: &ParseConfig,
    validate: Validate,
) -> Result<Job, JobspecError> {
    let source = std::fs::read_to_string(path).map_err(|source| JobspecError::Io {
        path: path.to_owned(),
        source,
    })?;
    let var_file_texts = read_var_files(config)?;
    let base = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let access = file_function::FileAccess {
        base: base.to_owned(),
        home: config
            .env
            .iter()
            .find(|(name, _)| name == "HOME")
            .map(|(_, home)| home.clone()),
    };
    file_function::with_file_access(access, || {
        parse_with(
            &source,
            &path.display().to_string(),
            config,
            &var_file_texts,
            validate,
        )
    })
}

fn read_var_files(config: &ParseConfig) -> Result<Vec<(String, String)>, JobspecError> {
    let mut var_file_texts = Vec::new();
    for path in &config.var_files {
        let text = std::fs::read_to_string(path).map_err(|source| JobspecError::Io {
            path: path.clone(),
            source,
        })?;
        var_file_texts.push((path.display().to_string(), text));
    }
    Ok(var_file_texts)
}

/// Parses a job file's text into a job with Nomad's defaults applied, without validating it (as
/// Nomad's parser: a job without groups parses). `filename` names the source in error messages.
///
/// ```
/// use caravan::jobspec::{ParseConfig, parse};
///
/// let source = r#"
/// variable "image" { default = "redis:7" }
///
/// job "cache" {
///   group "cache" {
///     task "redis" {
///       driver = "docker"
///       config { image = var.image }
///     }
///   }
/// }
/// "#;
/// let config = ParseConfig {
///     vars: vec![("image".to_owned(), "valkey:8".to_owned())],
///     ..ParseConfig::default()
/// };
/// let job = parse(source, "cache.nomad.hcl", &config)?;
/// assert_eq!(job.task_groups[0].count, 1); // Nomad's default
/// assert_eq!(job.task_groups[0].tasks[0].config["image"], "valkey:8");
///
/// let error = parse("job \"cache\" {\n  cuont = 3\n}\n", "bad.nomad.hcl", &ParseConfig::default())
///     .unwrap_err();
/// assert!(error.to_string().starts_with("bad.nomad.hcl:2:3: unsupported argument \"cuont\""));
/// # Ok::<(), caravan::jobspec::JobspecError>(())
/// ```
pub fn parse(source: &str, filename: &str, config: &ParseConfig) -> Result<Job, JobspecError> {
    let var_file_texts = read_var_files(config)?;
    parse_with(source, filename, config, &var_file_texts, Validate::No)
}

/// [`parse`] with the var files already read, as `(name, text)` pairs (the HTTP API's
/// `/v1/jobs/parse` receives them as text).
///
/// Evaluation runs under the default [`Budget`]: a file whose expressions would make too much,
/// or take too long, fails at the expression that crossed the limit.
pub fn parse_with_var_files(
    source: &str,
    filename: &str,
    config: &ParseConfig,
    var_file_texts: &[(String, String)],
) -> Result<Job, JobspecError> {
    parse_with(source, filename, config, var_file_texts, Validate::No)
}

/// [`parse_with_var_files`], then validates the job as the server would (`Job::validate`), every
/// problem located at the block or argument that set the field.
pub fn parse_validated(
    source: &str,
    filename: &str,
    config: &ParseConfig,
    var_file_texts: &[(String, String)],
) -> Result<Job, JobspecError> {
    parse_with(source, filename, config, var_file_texts, Validate::Yes)
}

fn parse_with(
    source: &str,
    filename: &str,
    config: &ParseConfig,
    var_file_texts: &[(String, String)],
    validate: Validate,
) -> Result<Job, JobspecError> {
    budget::with_budget(Budget::default(), || {
        parse_within_budget(
            source,
            filename,
            config,
            var_file_texts,
            |submission, decoder| {
                let job = submission.into_job();
                if validate == Validate::No {
                    return Ok(job);
                }
                job.validate().map_err(|errors| JobspecError::Validation {
                    problems: errors
                        .errors
                        .into_iter()
                        .map(|error| ValidationProblem {
                            location: decoder.location_of(&error.path),
                            path: error.printable_path(),
                            message: error.message,
                        })
                        .collect(),
                })?;
                Ok(job)
            },
        )
    })
}

/// The job file as written, before Nomad's defaults: what the tests compare with the same job
/// sent as API JSON.
#[cfg(test)]
pub(crate) fn parse_submission(
    source: &str,
    filename: &str,
) -> Result<crate::structs::JobSubmission, JobspecError> {
    budget::with_budget(Budget::default(), || {
        parse_within_budget(
            source,
            filename,
            &ParseConfig::default(),
            &[],
            |submission, _| Ok(submission),
        )
    })
}

fn parse_within_budget<T>(
    source: &str,
    filename: &str,
    config: &ParseConfig,
    var_file_texts: &[(String, String)],
    finish: impl FnOnce(crate::structs::JobSubmission, &Decoder<'_>) -> Result<T, JobspecError>,
) -> Result<T, JobspecError> {
    let body = hcl::edit::parser::parse_body(source).map_err(|error| JobspecError::Syntax {
        location: Location {
            file: filename.to_owned(),
            line: error.location().line(),
            column: error.location().column(),
        },
        message: one_line(error.message()),
    })?;
    let source_file = SourceFile {
        name: filename,
        text: source,
    };
    let mut decoder = Decoder::new(Evaluator::new(source_file.clone()));
    let resolved = {
        let file = BlockReader::new(
            &decoder,
            &body,
            0,
            "the job file".to_owned(),
            "<file>".to_owned(),
            FILE_SCHEMA,
        )?;
        variables::resolve(&file, config, var_file_texts)?
    };
    decoder.eval.set_variables(resolved.vars, resolved.locals);
    let file = BlockReader::new(
        &decoder,
        &body,
        0,
        "the job file".to_owned(),
        "<file>".to_owned(),
        FILE_SCHEMA,
    )?;
    let mut job_blocks = body.get_blocks("job");
    let Some(job_block) = job_blocks.next() else {
        return Err(source_file.error(
            0,
            "no job block found; a job file needs one job \"<name>\" { ... } block",
        ));
    };
    if let Some(second) = job_blocks.next() {
        let first = source_file.location(block_offset(job_block));
        return Err(source_file.error(
            block_offset(second),
            format!(
                "only one job block is allowed per file (the first is at {}:{})",
                first.line, first.column
            ),
        ));
    }
    let submission = decode::decode_job(&file, job_block)?;
    finish(submission, &decoder)
}
