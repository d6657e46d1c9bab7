//! The namespace endpoints (Nomad: `nomad/namespace_endpoint.go`): every write is one Raft
//! command, checked first; the state refuses deleting `default` or a namespace in use.

use std::sync::Arc;

use super::Server;
use super::endpoints::ServerError;
use super::raft::Command;
use crate::structs::Namespace;

impl Server {
    /// Creates or updates a namespace.
    pub async fn namespace_upsert(&self, namespace: Namespace) -> Result<u64, ServerError> {
        namespace.validate().map_err(ServerError::Invalid)?;
        let response = self
            .write_checked(Command::NamespaceUpsert {
                namespaces: vec![Arc::new(namespace)],
            })
            .await?;
        Ok(response.index)
    }

    /// Deletes a namespace.
    pub async fn namespace_delete(&self, name: &str) -> Result<u64, ServerError> {
        let response = self
            .write_checked(Command::NamespaceDelete {
                names: vec![name.to_owned()],
            })
            .await?;
        Ok(response.index)
    }

    /// Refuses an object of `kind` (`job "web"`, `variable "app"`) in a namespace that does not
    /// exist, in Nomad's words.
    pub fn check_namespace_exists(&self, what: &str, namespace: &str) -> Result<(), ServerError> {
        if self
            .store
            .snapshot()
            .tables()
            .namespace(namespace)
            .is_some()
        {
            Ok(())
        } else {
            Err(ServerError::Invalid(format!(
                "{what} is in nonexistent namespace {namespace:?}"
            )))
        }
    }
}
