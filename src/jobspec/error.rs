//! The jobspec's errors: every one names a file, a line and a column, and reads as one line.
//!
//! Invariant: `Display` of every variant is a single line (`file:line:col: what went wrong`), so the
//! CLI can print it as is and tests can compare it verbatim.

use std::fmt;
use std::path::PathBuf;

/// A position in a source file, 1-based, columns counted in characters as HCL counts them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One problem `Job::validate` found, with its field path and, where the decoder knows which
/// block or argument set the field, its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationProblem {
    pub location: Location,
    pub path: String,
    pub message: String,
}

impl fmt::Display for ValidationProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.path, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobspecError {
    /// The job file or a variable file could not be read.
    #[error("failed to read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The text is not HCL; the position is the HCL parser's own.
    #[error("{location}: syntax error: {message}")]
    Syntax { location: Location, message: String },
    /// The HCL is well formed but does not describe a job: an unknown argument or block, a value
    /// of the wrong type, a bad duration, a missing label, an undefined variable...
    /// Control characters in it (a name the file chose, quoted back) are shown escaped.
    #[error("{location}: {}", one_line(message))]
    Decode { location: Location, message: String },
    /// The job decoded but is not valid; every problem is listed.
    #[error("{}", join_problems(problems))]
    Validation { problems: Vec<ValidationProblem> },
}

/// `text` with its control characters escaped (`\n` as `\\n`), so an error stays one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn join_problems(problems: &[ValidationProblem]) -> String {
    let texts: Vec<String> = problems.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

impl JobspecError {
    /// Where the (first) problem is.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Self::Io { .. } => None,
            Self::Syntax { location, .. } | Self::Decode { location, .. } => Some(location),
            Self::Validation { problems } => problems.first().map(|problem| &problem.location),
        }
    }
}

/// Maps byte offsets of one source text to lines and columns.
#[derive(Clone, Debug)]
pub(crate) struct SourceFile<'src> {
    pub name: &'src str,
    pub text: &'src str,
}

impl SourceFile<'_> {
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        // Step back to a character boundary so slicing can never panic.
        let mut boundary = offset;
        while !self.text.is_char_boundary(boundary) {
            boundary -= 1;
        }
        let before = &self.text[..boundary];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |newline_idx| newline_idx + 1);
        let column = before[line_start..].chars().count() + 1;
        Location {
            file: self.name.to_owned(),
            line,
            column,
        }
    }

    pub fn error(&self, offset: usize, message: impl Into<String>) -> JobspecError {
        JobspecError::Decode {
            location: self.location(offset),
            message: message.into(),
        }
    }
}
