//! Validation errors that name the field they are about.

use std::fmt;

/// One problem found by validation: the field's path (`TaskGroups[web].Tasks[redis].Driver`) and
/// what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
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
        match self.errors.as_slice() {
            [] => f.write_str("no errors"),
            [only] => write!(f, "{}: {}", only.path, only.message),
            many => {
                write!(f, "{} errors occurred:", many.len())?;
                for error in many {
                    write!(f, "\n\t* {}: {}", error.path, error.message)?;
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
