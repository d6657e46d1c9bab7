//! Validation errors that name the field they are about.

use std::fmt;

/// One problem found by validation: the field's path (`TaskGroups[web].Tasks[redis].Driver`) and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl ValidationError {
    /// The path with control characters escaped: a path names user-given keys (task names...),
    /// and an error must stay on one line.
    pub fn printable_path(&self) -> String {
        self.path
            .chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect()
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.printable_path(), self.message)
        }
    }
}

/// Every problem validation found, in the order found.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors {
    pub errors: Vec<ValidationError>,
}

impl ValidationErrors {
    pub fn push(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(ValidationError {
            path: path.to_owned(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    pub fn into_result(self) -> Result<(), Self> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // go-multierror's wording, as Nomad's errors read, each problem with its field path.
        match self.errors.as_slice() {
            [] => f.write_str("no errors"),
            errors => {
                let plural = if errors.len() == 1 { "" } else { "s" };
                write!(f, "{} error{plural} occurred:", errors.len())?;
                for error in errors {
                    write!(f, "\n\t* {error}")?;
                }
                Ok(())
            }
        }
    }
}

/// Flags an empty name.
pub(crate) fn check_name(path: &str, name: &str, errors: &mut ValidationErrors) {
    if name.is_empty() {
        errors.push(path, "name must not be empty");
    }
}

/// The longest job ID, group or task name accepted, in bytes (Nomad's `maxLength` for
/// identifiers used in paths and DNS-like names).
pub const MAX_NAME_LENGTH: usize = 128;

/// Why `name` cannot be used as one component of a file path, if it cannot: names of jobs,
/// groups and tasks become directory and file names on clients (`<alloc>/<task>/`), so `..`,
/// `.`, separators, NUL and control characters are refused, as are names over
/// [`MAX_NAME_LENGTH`] bytes.
pub fn path_component_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if name == "." || name == ".." {
        return Some("is not allowed".to_owned());
    }
    if name.len() > MAX_NAME_LENGTH {
        return Some(format!(
            "is {} bytes long; the limit is {MAX_NAME_LENGTH}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| matches!(c, '/' | '\\') || c.is_control())
    {
        return Some(format!("must not contain {bad:?}"));
    }
    None
}

/// Flags a name that is not a safe path component (see [`path_component_problem`]).
pub(crate) fn check_path_name(path: &str, kind: &str, name: &str, errors: &mut ValidationErrors) {
    if let Some(problem) = path_component_problem(name) {
        let shown: String = name.chars().take(40).collect();
        let ellipsis = if shown.len() < name.len() { "..." } else { "" };
        errors.push(path, format!("{kind} {shown:?}{ellipsis} {problem}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_control_characters_prints_on_one_line() {
        let error = ValidationError {
            path: "TaskGroups[web].Tasks[a\nb]".to_owned(),
            message: "task name must not contain '\\n'".to_owned(),
        };
        assert_eq!(
            error.to_string(),
            "TaskGroups[web].Tasks[a\\nb]: task name must not contain '\\n'"
        );
    }

    #[test]
    fn path_components() {
        let longest = "x".repeat(MAX_NAME_LENGTH);
        for good in ["web", "redis-1", "a.b", "..a", "名前", longest.as_str()] {
            assert_eq!(path_component_problem(good), None, "{good}");
        }
        let long = "x".repeat(4096);
        let cases = [
            ("", "must not be empty"),
            (".", "is not allowed"),
            ("..", "is not allowed"),
            ("a/b", "must not contain '/'"),
            ("../etc", "must not contain '/'"),
            ("a\\b", "must not contain '\\\\'"),
            ("a\0b", "must not contain '\\0'"),
            ("a\nb", "must not contain '\\n'"),
            ("a\u{7f}", "must not contain '\\u{7f}'"),
            (long.as_str(), "is 4096 bytes long; the limit is 128"),
        ];
        for (name, expected) in cases {
            assert_eq!(
                path_component_problem(name).as_deref(),
                Some(expected),
                "{name:?}"
            );
        }
    }
}
