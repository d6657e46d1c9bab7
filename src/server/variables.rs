//! The variable endpoints (Nomad: `nomad/variables_endpoint.go`): items are sealed with the
//! active root key ([`super::keyring`]) before the write enters Raft, and opened on read.
//!
//! A task reads variables through its client, which asks with its node secret on behalf of an
//! allocation it runs ([`Server::workload_variable`]): the allocation must be on that node and
//! running, and the path one of its job's implicit paths in its own namespace (Nomad's workload
//! identity implicit policy, [`workload_variable_paths`]).

use std::sync::Arc;

use super::Server;
use super::endpoints::ServerError;
use super::keyring::ALGORITHM;
use super::raft::Command;
use super::state::ObjectKind;
use crate::acl::PERMISSION_DENIED;
use crate::structs::{
    AllocId, NodeId, ROOT_KEY_ACTIVE, RootKeyMeta, Variable, VariableEncrypted, VariableMetadata,
    new_uuid, workload_variable_paths,
};

/// What a sealed value is bound to: its namespace and path.
fn associated_data(namespace: &str, path: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(namespace.len() + path.len() + 1);
    data.extend_from_slice(namespace.as_bytes());
    data.push(0);
    data.extend_from_slice(path.as_bytes());
    data
}

fn denied() -> ServerError {
    ServerError::Forbidden(PERMISSION_DENIED.to_owned())
}

impl Server {
    /// The ID of the key new variables are sealed with: the active one in the state (fetched
    /// from a peer if this server lacks it), else a new one.
    async fn active_root_key(&self) -> Result<String, ServerError> {
        let _making = self.keyring.making.lock().await;
        let active = self.store.snapshot().tables().active_root_key().cloned();
        if let Some(active) = active
            && (self.keyring.has_key(&active.key_id) || self.fetch_root_key(&active.key_id).await?)
        {
            return Ok(active.key_id.clone());
        }
        self.make_root_key().await
    }

    /// Makes a root key (its file written first, then its ID through Raft as the active key:
    /// apply makes the others inactive); answers its ID.
    async fn make_root_key(&self) -> Result<String, ServerError> {
        let key_id = new_uuid();
        self.keyring.make_key(&key_id)?;
        tracing::info!(key_id = %key_id, "made a root key for variables");
        self.write_checked(Command::RootKeyUpsert {
            key: Arc::new(RootKeyMeta {
                key_id: key_id.clone(),
                algorithm: ALGORITHM.to_owned(),
                create_time: super::now_unix_nanos(),
                state: ROOT_KEY_ACTIVE.to_owned(),
                ..RootKeyMeta::default()
            }),
        })
        .await?;
        Ok(key_id)
    }

    /// `operator root keyring rotate` (Nomad: `Keyring.Rotate`): a new active key; variables
    /// sealed with older keys stay readable with them.
    pub async fn root_key_rotate(&self) -> Result<(Arc<RootKeyMeta>, u64), ServerError> {
        let _making = self.keyring.making.lock().await;
        let key_id = self.make_root_key().await?;
        let snapshot = self.store.snapshot();
        let key = snapshot
            .tables()
            .root_keys
            .get(&key_id)
            .cloned()
            .ok_or_else(|| ServerError::not_found(ObjectKind::RootKey, &key_id))?;
        Ok((key, snapshot.tables().indexes.root_keys))
    }

    /// A stored variable with its items opened.
    pub fn variable_open(&self, sealed: &VariableEncrypted) -> Result<Variable, ServerError> {
        let meta = &sealed.meta;
        let plaintext = self.keyring.open_sealed(
            &sealed.key_id,
            &sealed.data,
            &associated_data(&meta.namespace, &meta.path),
        )?;
        let items = serde_json::from_slice(&plaintext)
            .map_err(|_| super::keyring::KeyringError::Corrupt(sealed.key_id.clone()))?;
        Ok(Variable {
            namespace: meta.namespace.clone(),
            path: meta.path.clone(),
            create_index: meta.create_index,
            modify_index: meta.modify_index,
            create_time: meta.create_time,
            modify_time: meta.modify_time,
            items,
        })
    }

    /// The variable at `path` in `namespace`, opened; `None` if there is none.
    pub fn variable_read(
        &self,
        namespace: &str,
        path: &str,
    ) -> Result<Option<Variable>, ServerError> {
        let snapshot = self.store.snapshot();
        snapshot
            .tables()
            .variable(namespace, path)
            .map(|sealed| self.variable_open(sealed))
            .transpose()
    }

    /// Writes a variable (Nomad: `Variables.Apply` set / check-and-set); answers it as stored.
    pub async fn variable_upsert(
        &self,
        variable: Variable,
        cas: Option<u64>,
    ) -> Result<Variable, ServerError> {
        variable.validate().map_err(ServerError::Invalid)?;
        self.check_namespace_exists(
            &format!("variable {:?}", variable.path),
            &variable.namespace,
        )?;
        let key_id = self.active_root_key().await?;
        let plaintext = serde_json::to_vec(&variable.items)
            .map_err(|error| ServerError::Invalid(error.to_string()))?;
        let data = self.keyring.seal(
            &key_id,
            &plaintext,
            &associated_data(&variable.namespace, &variable.path),
        )?;
        let now = super::now_unix_nanos();
        let sealed = VariableEncrypted {
            meta: VariableMetadata {
                namespace: variable.namespace.clone(),
                path: variable.path.clone(),
                create_time: now,
                modify_time: now,
                ..VariableMetadata::default()
            },
            key_id,
            data,
        };
        self.write_checked(Command::VariableUpsert {
            variable: Arc::new(sealed),
            cas,
        })
        .await?;
        self.variable_read(&variable.namespace, &variable.path)?
            .ok_or_else(|| ServerError::not_found(ObjectKind::Variable, &variable.path))
    }

    /// Deletes a variable (Nomad: `Variables.Apply` delete / check-and-set delete).
    pub async fn variable_delete(
        &self,
        namespace: &str,
        path: &str,
        cas: Option<u64>,
    ) -> Result<u64, ServerError> {
        let response = self
            .write_checked(Command::VariableDelete {
                namespace: namespace.to_owned(),
                path: path.to_owned(),
                cas,
            })
            .await?;
        Ok(response.index)
    }

    /// The variable at `path` for task `task` of allocation `alloc_id`, asked by the node that
    /// runs it: refused unless the allocation is that node's and still running, and the path is
    /// one of its job's implicit paths; read in the allocation's namespace.
    pub fn workload_variable(
        &self,
        node_id: &NodeId,
        secret: Option<&str>,
        alloc_id: &AllocId,
        task: &str,
        path: &str,
    ) -> Result<Variable, ServerError> {
        self.authenticate_node(node_id, secret)?;
        let snapshot = self.store.snapshot();
        let alloc = snapshot
            .alloc(alloc_id)
            .filter(|alloc| alloc.node_id == *node_id && !alloc.is_client_terminal())
            .ok_or_else(denied)?;
        let job = alloc.job.as_ref().ok_or_else(denied)?;
        let runs_task = job
            .task_groups
            .iter()
            .filter(|group| group.name == alloc.task_group)
            .any(|group| group.tasks.iter().any(|candidate| candidate.name == task));
        if !runs_task {
            return Err(denied());
        }
        // Nomad: a dispatched or periodic child reads its parent's paths.
        let job_id = if job.parent_id.is_empty() {
            job.id.to_string()
        } else {
            job.parent_id.clone()
        };
        let allowed = workload_variable_paths(&job_id, &alloc.task_group, task);
        if !allowed.iter().any(|allowed| allowed == path) {
            return Err(denied());
        }
        self.variable_read(&alloc.namespace, path)?
            .ok_or_else(|| ServerError::not_found(ObjectKind::Variable, path))
    }
}
