//! Why the state refused a command: the typed error an apply returns. It crosses Raft in
//! [`CommandResponse`](crate::server::raft::CommandResponse), reaches the writer as
//! [`ServerError::State`](crate::server::ServerError), and is mapped to an HTTP status once, in
//! `api::error`. Callers branch on the variant, never on the message.
//!
//! Nomad: the refusals of `nomad/state/state_store.go` and `nomad/job_endpoint.go`
//! (`structs.RegisterEnforceIndexErrPrefix`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::api::error::ENFORCE_INDEX_ERR_PREFIX;
use crate::structs::NodeId;

/// The kind of object a request named.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectKind {
    Job,
    Node,
    Allocation,
    Evaluation,
    Deployment,
    JobVersion,
    Service,
    AclPolicy,
    AclToken,
    Namespace,
    Variable,
    NodePool,
    RootKey,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Job => "job",
            Self::Node => "node",
            Self::Allocation => "alloc",
            Self::Evaluation => "evaluation",
            Self::Deployment => "deployment",
            Self::JobVersion => "job version",
            Self::Service => "service registration",
            Self::AclPolicy => "ACL policy",
            Self::AclToken => "ACL token",
            Self::Namespace => "namespace",
            Self::Variable => "variable",
            Self::NodePool => "node pool",
            Self::RootKey => "root key",
        })
    }
}

/// Why the state refused a command. The command stays in the log and changed nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApplyError {
    /// The command names an object the state does not hold.
    #[error("{kind} {id:?} not found")]
    NotFound { kind: ObjectKind, id: String },
    /// A register with `EnforceIndex` whose expected job modify index is not the stored one
    /// (`actual` is `None` when no such job exists).
    #[error("{}", enforce_index_message(*expected, *actual))]
    EnforceIndex { expected: u64, actual: Option<u64> },
    /// A draining node cannot be made eligible: the drain must be removed first.
    #[error("can not set node's scheduling eligibility to eligible while it is draining")]
    NodeDraining { node_id: NodeId },
    /// A check-and-set of the scheduler configuration whose expected modify index is not the
    /// stored one (`actual` is `None` when none is stored).
    #[error("scheduler configuration check-and-set index {expected} does not match the stored one ({})", actual.map_or_else(|| "none".to_owned(), |actual| actual.to_string()))]
    SchedulerConfigCas { expected: u64, actual: Option<u64> },
    /// The ACL system was bootstrapped already, at `reset_index` (Nomad's wording and reset
    /// index: the bootstrap token's create index).
    #[error("ACL bootstrap already done (reset index: {reset_index})")]
    AclBootstrapped { reset_index: u64 },
    /// A namespace delete refused: `default`, or a namespace still in use (Nomad's words).
    #[error("{0}")]
    NamespaceInUse(String),
    /// A variable write or delete whose check-and-set index is not the stored variable's
    /// modify index (`actual` 0: no such variable).
    #[error(
        "cas error: variable check-and-set index {expected} does not match the stored one ({actual})"
    )]
    VariableCas { expected: u64, actual: u64 },
    /// `all` and `default` are built in (Nomad's wording).
    #[error("modifying node pool {name:?} is not allowed")]
    NodePoolBuiltin { name: String },
    /// A pool still holding nodes or live jobs stays (Nomad's wording).
    #[error("node pool {name:?} has {what} in regions: [global]")]
    NodePoolInUse { name: String, what: String },
}

impl ApplyError {
    pub fn not_found(kind: ObjectKind, id: impl fmt::Display) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

/// Nomad's wording of an enforce-index conflict (`nomad/job_endpoint.go` `Register`).
fn enforce_index_message(expected: u64, actual: Option<u64>) -> String {
    match actual {
        Some(_) if expected == 0 => format!("{ENFORCE_INDEX_ERR_PREFIX} 0: job already exists"),
        Some(actual) => format!(
            "{ENFORCE_INDEX_ERR_PREFIX} {expected}: job exists with conflicting job modify index: {actual}"
        ),
        None => format!("{ENFORCE_INDEX_ERR_PREFIX} {expected}: job does not exist"),
    }
}

/// Checks a register's `EnforceIndex` against the stored job's modify index (`None`: no job).
pub fn check_enforce_index(expected: u64, actual: Option<u64>) -> Result<(), ApplyError> {
    let conflict = match actual {
        Some(actual) => expected != actual,
        None => expected != 0,
    };
    if conflict {
        return Err(ApplyError::EnforceIndex { expected, actual });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enforce_index_accepts_the_stored_index_and_zero_for_a_new_job() {
        assert_eq!(check_enforce_index(7, Some(7)), Ok(()));
        assert_eq!(check_enforce_index(0, None), Ok(()));
    }

    #[test]
    fn enforce_index_refuses_every_mismatch_in_nomads_words() {
        let cases = [
            (
                5,
                Some(7),
                "Enforcing job modify index 5: job exists with conflicting job modify index: 7",
            ),
            (
                0,
                Some(7),
                "Enforcing job modify index 0: job already exists",
            ),
            (5, None, "Enforcing job modify index 5: job does not exist"),
        ];
        for (expected, actual, message) in cases {
            let error = check_enforce_index(expected, actual).expect_err("a conflict");
            assert_eq!(error, ApplyError::EnforceIndex { expected, actual });
            assert_eq!(error.to_string(), message);
            assert!(error.to_string().starts_with(ENFORCE_INDEX_ERR_PREFIX));
        }
    }

    #[test]
    fn an_apply_error_survives_the_raft_encoding() {
        let errors = [
            ApplyError::not_found(ObjectKind::Deployment, "d1"),
            ApplyError::EnforceIndex {
                expected: 3,
                actual: None,
            },
            ApplyError::NodeDraining {
                node_id: NodeId::from("n1"),
            },
            ApplyError::SchedulerConfigCas {
                expected: 4,
                actual: Some(9),
            },
        ];
        for error in errors {
            let bytes = serde_json::to_vec(&error).expect("encodes");
            let decoded: ApplyError = serde_json::from_slice(&bytes).expect("decodes");
            assert_eq!(decoded, error);
        }
    }
}
