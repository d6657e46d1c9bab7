//! Node identity: a client proves it is the node it speaks for with the node's `SecretID`.
//!
//! A client makes its secret at first registration and keeps it in its data dir; the servers
//! store it with the node through Raft (`Command::NodeRegister`). Every later call of that node
//! (heartbeat, allocation watch and pull, allocation updates, service sync) carries the secret,
//! and the servers answer it only when the secret matches the one registered for the node ID in
//! the path:
//!
//! | call                                   | secret missing or wrong                                   |
//! |----------------------------------------|-----------------------------------------------------------|
//! | register a known node ID               | 403 `node secret ID does not match. Not registering node.` |
//! | heartbeat, watch, pull, update, sync   | 403 `Permission denied`                                   |
//! | any of those for an unknown node ID    | 404 `node "<id>" not found`                               |
//!
//! Secrets are compared in constant time ([`subtle`]) and never logged nor put in an error.
//! A node stored without a secret (state written before secrets were required) may register
//! again with one, as Nomad allows; until then no call proves it is that node.
//!
//! Nomad: `nomad/node_endpoint.go` (`Register`'s "Check if the SecretID has been tampered
//! with"; the other `Node.*` RPCs authenticate the node secret through `ResolveClientOrACL`).

use subtle::ConstantTimeEq;

use super::Server;
use super::endpoints::ServerError;
use super::state::ObjectKind;
use crate::structs::{Node, NodeId};

/// Nomad's answer to a re-registration under a known node ID with another secret.
pub const REGISTER_SECRET_MISMATCH: &str = "node secret ID does not match. Not registering node.";

/// Nomad's `structs.ErrPermissionDenied`.
pub use crate::acl::PERMISSION_DENIED;

/// Whether `offered` is `registered`, in time independent of where they differ.
fn secrets_match(registered: &str, offered: &str) -> bool {
    bool::from(registered.as_bytes().ct_eq(offered.as_bytes()))
}

/// Refuses a registration without a secret, or one under a node ID already registered with
/// another secret.
pub(super) fn check_registration(previous: Option<&Node>, node: &Node) -> Result<(), ServerError> {
    if node.secret_id.is_empty() {
        return Err(ServerError::Invalid(
            "missing node secret ID for client registration".to_owned(),
        ));
    }
    match previous {
        Some(previous)
            if !previous.secret_id.is_empty()
                && !secrets_match(&previous.secret_id, &node.secret_id) =>
        {
            Err(ServerError::Forbidden(REGISTER_SECRET_MISMATCH.to_owned()))
        }
        _ => Ok(()),
    }
}

/// Refuses `secret` as proof of being `node` unless it is the node's registered secret.
pub(super) fn check_secret(node: &Node, secret: Option<&str>) -> Result<(), ServerError> {
    match secret {
        Some(secret) if !node.secret_id.is_empty() && secrets_match(&node.secret_id, secret) => {
            Ok(())
        }
        _ => Err(ServerError::Forbidden(PERMISSION_DENIED.to_owned())),
    }
}

impl Server {
    /// Checks that the caller holding `secret` is the registered node `node_id` (Nomad:
    /// `ResolveClientOrACL` on a client RPC).
    pub fn authenticate_node(
        &self,
        node_id: &NodeId,
        secret: Option<&str>,
    ) -> Result<(), ServerError> {
        let snapshot = self.store.snapshot();
        let Some(node) = snapshot.tables().nodes.get(node_id) else {
            return Err(ServerError::not_found(ObjectKind::Node, node_id));
        };
        check_secret(node, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(secret: &str) -> Node {
        Node {
            id: NodeId::from("00000000-0000-4000-8000-000000000001".to_owned()),
            secret_id: secret.to_owned(),
            ..Node::default()
        }
    }

    fn refusal(result: Result<(), ServerError>) -> Option<String> {
        match result {
            Ok(()) => None,
            Err(ServerError::Forbidden(message)) => Some(format!("403 {message}")),
            Err(ServerError::Invalid(message)) => Some(format!("400 {message}")),
            Err(other) => Some(format!("other {other}")),
        }
    }

    #[test]
    fn registration_needs_a_secret_and_keeps_the_first_one() {
        let registered = node("first-secret");
        let cases: [(Option<&Node>, &str, Option<&str>); 5] = [
            (None, "first-secret", None),
            (Some(&registered), "first-secret", None),
            (
                Some(&registered),
                "other-secret",
                Some("403 node secret ID does not match. Not registering node."),
            ),
            (
                None,
                "",
                Some("400 missing node secret ID for client registration"),
            ),
            // A node stored without a secret takes the one it registers with next.
            (Some(&node("")), "new-secret", None),
        ];
        for (previous, offered, expected) in cases {
            assert_eq!(
                refusal(check_registration(previous, &node(offered))).as_deref(),
                expected,
                "register with {offered:?} over {:?}",
                previous.map(|node| &node.secret_id)
            );
        }
    }

    #[test]
    fn a_call_proves_the_node_only_with_its_own_secret() {
        let cases: [(&str, Option<&str>, bool); 7] = [
            ("the-secret", Some("the-secret"), true),
            ("the-secret", Some("the-secreT"), false),
            ("the-secret", Some("the-secret-and-more"), false),
            ("the-secret", Some("the"), false),
            ("the-secret", Some(""), false),
            ("the-secret", None, false),
            // No secret registered: nothing proves the caller is that node.
            ("", Some(""), false),
        ];
        for (registered, offered, accepted) in cases {
            let result = refusal(check_secret(&node(registered), offered));
            let expected = (!accepted).then(|| "403 Permission denied".to_owned());
            assert_eq!(result, expected, "{offered:?} against {registered:?}");
        }
    }
}
