//! The budget a job file's evaluation runs under: no value over [`Budget::max_value_bytes`], no
//! more than [`Budget::max_total_bytes`] made by functions and templates in all, and no longer
//! than [`Budget::max_time`]. A file over budget fails with an error at the expression that
//! crossed it, instead of taking the agent's memory and time (29 nested `replace(x, "a", "aa")`
//! would make gigabytes).
//!
//! HCL functions are plain `fn` pointers (hcl-rs), so the budget of the evaluation in progress
//! lives in a thread-local, installed by [`with_budget`] for the duration of one parse.
//!
//! Invariant: a function or template checks the size of what it would make before making it.

use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Limits on one job file's evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// The largest string or collection one expression may produce, in bytes.
    pub max_value_bytes: usize,
    /// Bytes all function calls and templates of the file may produce together.
    pub max_total_bytes: usize,
    /// Wall-clock time for the whole file.
    pub max_time: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            max_value_bytes: 1 << 20,
            max_total_bytes: 64 << 20,
            max_time: Duration::from_secs(2),
        }
    }
}

struct Spending {
    budget: Budget,
    spent: usize,
    deadline: Instant,
}

thread_local! {
    static CURRENT: RefCell<Option<Spending>> = const { RefCell::new(None) };
}

/// Runs `parse` with `budget` installed for this thread (nested calls keep the outer budget).
pub(crate) fn with_budget<R>(budget: Budget, parse: impl FnOnce() -> R) -> R {
    let installed = CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        if current.is_some() {
            return false;
        }
        *current = Some(Spending {
            budget,
            spent: 0,
            deadline: Instant::now() + budget.max_time,
        });
        true
    });
    struct Uninstall(bool);
    impl Drop for Uninstall {
        fn drop(&mut self) {
            if self.0 {
                CURRENT.with(|current| current.borrow_mut().take());
            }
        }
    }
    let _uninstall = Uninstall(installed);
    parse()
}

/// Accounts for a value of `bytes` about to be made; the error says which limit it crosses.
pub(crate) fn charge(bytes: usize) -> Result<(), String> {
    CURRENT.with(|current| {
        let mut current = current.borrow_mut();
        let Some(spending) = current.as_mut() else {
            return Ok(());
        };
        if bytes > spending.budget.max_value_bytes {
            return Err(format!(
                "value of {bytes} bytes is over the limit of {} bytes per value",
                spending.budget.max_value_bytes
            ));
        }
        spending.spent = spending.spent.saturating_add(bytes);
        if spending.spent > spending.budget.max_total_bytes {
            return Err(format!(
                "the job file's expressions made over {} bytes in all",
                spending.budget.max_total_bytes
            ));
        }
        check_time_of(spending)
    })
}

/// Checks that a value of `bytes` about to be made is within the per-value limit, without
/// charging it (a template checks as it grows, then charges what it made).
pub(crate) fn check_size(bytes: usize) -> Result<(), String> {
    CURRENT.with(|current| match current.borrow().as_ref() {
        Some(spending) if bytes > spending.budget.max_value_bytes => Err(format!(
            "value of {bytes} bytes is over the limit of {} bytes per value",
            spending.budget.max_value_bytes
        )),
        Some(spending) => check_time_of(spending),
        None => Ok(()),
    })
}

/// Fails once the evaluation has run past its time.
pub(crate) fn check_time() -> Result<(), String> {
    CURRENT.with(|current| match current.borrow().as_ref() {
        Some(spending) => check_time_of(spending),
        None => Ok(()),
    })
}

fn check_time_of(spending: &Spending) -> Result<(), String> {
    if Instant::now() > spending.deadline {
        return Err(format!(
            "evaluating the job file took over {} ms",
            spending.budget.max_time.as_millis()
        ));
    }
    Ok(())
}

/// About how many bytes `value` holds.
pub(crate) fn size_of(value: &hcl::Value) -> usize {
    match value {
        hcl::Value::Null | hcl::Value::Bool(_) | hcl::Value::Number(_) => 8,
        // Every value costs a word besides its bytes: a million empty strings are not free.
        hcl::Value::String(text) => text.len().saturating_add(8),
        hcl::Value::Array(items) => items.iter().map(size_of).fold(8, usize::saturating_add),
        hcl::Value::Object(map) => map
            .iter()
            .map(|(key, value)| key.len().saturating_add(8).saturating_add(size_of(value)))
            .fold(8, usize::saturating_add),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_are_limited_per_value_in_total_and_in_time() {
        let budget = Budget {
            max_value_bytes: 10,
            max_total_bytes: 25,
            max_time: Duration::from_secs(60),
        };
        with_budget(budget, || {
            assert_eq!(charge(10), Ok(()));
            assert_eq!(
                charge(11),
                Err("value of 11 bytes is over the limit of 10 bytes per value".to_owned())
            );
            assert_eq!(charge(10), Ok(()));
            assert_eq!(
                charge(10),
                Err("the job file's expressions made over 25 bytes in all".to_owned())
            );
        });
        assert_eq!(charge(1 << 40), Ok(()), "no budget outside a parse");
        let no_time = Budget {
            max_time: Duration::ZERO,
            ..budget
        };
        with_budget(no_time, || {
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!(
                check_time(),
                Err("evaluating the job file took over 0 ms".to_owned())
            );
        });
    }
}
