//! Go `text/template` rendering with the functions of consul-template that caravan can serve, as
//! Nomad renders a task's `template` blocks (Nomad: `client/allocrunner/taskrunner/template/`).
//!
//! The engine is the `gotmpl` crate (a port of Go's `text/template`: pipelines, variables, `if`,
//! `with`, `range`, `define`/`template`/`block`, whitespace trimming, custom delimiters, Go's
//! built-ins `printf`, `index`, `len`, `eq`, ...); [`funcs`] adds consul-template's functions:
//! the task's environment (`env`), Nomad's native services (`nomadService`, `nomadServices`),
//! variables (`nomadVar`) and
//! the string, encoding, JSON, number and time helpers. A function caravan does not have (Consul's
//! `key` or `service`, Vault's `secret`, ...) is a parse error naming it, so a job relying on it
//! fails visibly instead of rendering wrong.
//!
//! Rendering is pure: what the template reads of the outside world comes in [`Inputs`], and the
//! [`Output`] says what it read ([`Dependencies`]), so the caller watches those and renders again
//! when they change. Like consul-template, a render that reads data not fetched yet completes with
//! empty data for it and names it in [`Dependencies::missing`]; the caller fetches it and renders
//! again, and writes only a render with nothing missing.
//!
//! Untrusted input: the template comes from the job submitter. Output is capped at
//! [`MAX_OUTPUT_BYTES`], `range` iterations at [`MAX_RANGE_ITERATIONS`]; errors never panic.

pub mod format;
pub mod funcs;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use crate::structs::{ServiceRegistration, ServiceRegistrationStub};

/// Largest rendered output.
pub const MAX_OUTPUT_BYTES: usize = 8 << 20;
/// Most `range` iterations one render may run (all ranges together).
pub const MAX_RANGE_ITERATIONS: u64 = 1_000_000;

/// Why a template did not render.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A parse or execution error of the engine, or one a function returned (with the template's
    /// line and column where the engine knows them).
    #[error("{0}")]
    Template(#[from] gotmpl::TemplateError),
    /// A function caravan does not have (the engine finds them when the render reaches them).
    #[error(
        "unknown template function {0:?}: caravan serves env, nomadService, nomadServices, nomadVar and \
         consul-template's string, encoding, JSON, number and time functions, not Consul's or \
         Vault's"
    )]
    UnknownFunction(String),
    /// The output grew past [`MAX_OUTPUT_BYTES`].
    #[error("rendered output exceeds {MAX_OUTPUT_BYTES} bytes")]
    TooLarge,
}

/// What a render may read of the outside world.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    /// The task's environment (`NOMAD_*` included): what `env` reads.
    pub env: BTreeMap<String, String>,
    /// The instances of each service known so far, by service name (in the task's namespace).
    /// A name absent here has not been fetched: reading it records it as missing.
    pub services: BTreeMap<String, Vec<ServiceRegistration>>,
    /// The services of the namespace (`nomadServices`); `None`: not fetched yet.
    pub service_list: Option<Vec<ServiceRegistrationStub>>,
    /// The items of each variable fetched so far, by path (in the task's namespace).
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
}

/// What a render read, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependencies {
    /// The service names `nomadService` read.
    pub services: BTreeSet<String>,
    /// Whether `nomadServices` was called.
    pub service_list: bool,
    /// The variable paths `nomadVar` read.
    pub variables: BTreeSet<String>,
    /// Whether it read data [`Inputs`] did not hold yet (then its output is not to be used).
    pub missing: bool,
}

/// A finished render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub text: String,
    pub dependencies: Dependencies,
}

/// Renders `source` (named `name` in errors) with the delimiters `left`/`right` (Go's `{{`/`}}`
/// when empty).
pub fn render(
    name: &str,
    source: &str,
    left: &str,
    right: &str,
    inputs: &Inputs,
) -> Result<Output, RenderError> {
    let recorder = Arc::new(Mutex::new(Dependencies::default()));
    let inputs = Arc::new(inputs.clone());
    let left = if left.is_empty() { "{{" } else { left };
    let right = if right.is_empty() { "}}" } else { right };
    let template = gotmpl::Template::new(name)
        .delims(left, right)
        .max_range_iters(MAX_RANGE_ITERATIONS)
        .funcs(funcs::function_map(&inputs, &recorder))
        .parse(source)
        .map_err(|err| match err {
            gotmpl::TemplateError::UndefinedFunction(name) => RenderError::UnknownFunction(name),
            err => RenderError::Template(err),
        })?;
    let mut out = Capped::default();
    match template.execute(&mut out, &gotmpl::Value::Nil) {
        Ok(()) => {}
        Err(_) if out.overflowed => return Err(RenderError::TooLarge),
        Err(gotmpl::TemplateError::UndefinedFunction(name)) => {
            return Err(RenderError::UnknownFunction(name));
        }
        Err(err) => return Err(err.into()),
    }
    let text = String::from_utf8(out.bytes)
        .map_err(|_| gotmpl::TemplateError::Exec("rendered output is not UTF-8".to_owned()))?;
    let dependencies = recorder
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(Output { text, dependencies })
}

/// A writer that refuses to grow past [`MAX_OUTPUT_BYTES`].
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > MAX_OUTPUT_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("rendered output too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
