//! The variables and root key tables. Nomad: `state_store_variables.go` (`VarSet`, `VarDelete`
//! with their check-and-set forms), `state_store.go` `UpsertRootKeyMeta`.
//!
//! Invariant: the tables hold only sealed items ([`VariableEncrypted`]) and key IDs; what the
//! items say never reaches the state, the Raft log nor a snapshot.

use std::sync::Arc;

use super::error::ApplyError;
use super::tables::Tables;
use crate::structs::{ROOT_KEY_ACTIVE, ROOT_KEY_INACTIVE, RootKeyMeta, VariableEncrypted};

impl Tables {
    /// The stored variable at `path` in `namespace`.
    pub fn variable(&self, namespace: &str, path: &str) -> Option<&Arc<VariableEncrypted>> {
        self.variables.get(&(namespace.to_owned(), path.to_owned()))
    }

    /// The variables of `namespace` (every namespace for `*`) whose path starts with `prefix`,
    /// in namespace and path order.
    pub fn variables_with_prefix<'a>(
        &'a self,
        namespace: &'a str,
        prefix: &'a str,
    ) -> impl Iterator<Item = &'a Arc<VariableEncrypted>> + 'a {
        self.variables
            .iter()
            .filter(move |((variable_namespace, path), _)| {
                (namespace == "*" || variable_namespace == namespace) && path.starts_with(prefix)
            })
            .map(|(_, variable)| variable)
    }

    fn check_variable_cas(
        &self,
        namespace: &str,
        path: &str,
        cas: Option<u64>,
    ) -> Result<(), ApplyError> {
        let Some(expected) = cas else {
            return Ok(());
        };
        let actual = self
            .variable(namespace, path)
            .map_or(0, |stored| stored.meta.modify_index);
        if expected == actual {
            Ok(())
        } else {
            Err(ApplyError::VariableCas { expected, actual })
        }
    }

    pub(super) fn apply_variable_upsert(
        &mut self,
        index: u64,
        variable: &Arc<VariableEncrypted>,
        cas: Option<u64>,
    ) -> Result<(), ApplyError> {
        let (namespace, path) = (&variable.meta.namespace, &variable.meta.path);
        self.check_variable_cas(namespace, path, cas)?;
        let mut variable = (**variable).clone();
        match self.variable(namespace, path) {
            Some(existing) => {
                variable.meta.create_index = existing.meta.create_index;
                variable.meta.create_time = existing.meta.create_time;
            }
            None => variable.meta.create_index = index,
        }
        variable.meta.modify_index = index;
        let key = (variable.meta.namespace.clone(), variable.meta.path.clone());
        self.variables.insert(key, Arc::new(variable));
        self.indexes.variables = index;
        Ok(())
    }

    /// Deletes a variable; deleting one that does not exist (without `cas`) changes nothing.
    pub(super) fn apply_variable_delete(
        &mut self,
        index: u64,
        namespace: &str,
        path: &str,
        cas: Option<u64>,
    ) -> Result<(), ApplyError> {
        self.check_variable_cas(namespace, path, cas)?;
        if self
            .variables
            .remove(&(namespace.to_owned(), path.to_owned()))
            .is_some()
        {
            self.indexes.variables = index;
        }
        Ok(())
    }

    pub(super) fn apply_root_key_upsert(&mut self, index: u64, key: &Arc<RootKeyMeta>) {
        let mut key = (**key).clone();
        key.create_index = self
            .root_keys
            .get(&key.key_id)
            .map_or(index, |existing| existing.create_index);
        key.modify_index = index;
        // One key is active: a new active key makes every other one inactive.
        if key.state == ROOT_KEY_ACTIVE {
            let others: Vec<Arc<RootKeyMeta>> = self
                .root_keys
                .values()
                .filter(|other| other.key_id != key.key_id && other.state != ROOT_KEY_INACTIVE)
                .cloned()
                .collect();
            for other in others {
                let mut other = (*other).clone();
                other.state = ROOT_KEY_INACTIVE.to_owned();
                other.modify_index = index;
                self.root_keys.insert(other.key_id.clone(), Arc::new(other));
            }
        }
        self.root_keys.insert(key.key_id.clone(), Arc::new(key));
        self.indexes.root_keys = index;
    }

    /// The key new variables are sealed with: the newest not rotated out.
    pub fn active_root_key(&self) -> Option<&Arc<RootKeyMeta>> {
        self.root_keys
            .values()
            .filter(|key| key.state != ROOT_KEY_INACTIVE)
            .max_by_key(|key| key.create_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::VariableMetadata;

    fn sealed(path: &str) -> Arc<VariableEncrypted> {
        Arc::new(VariableEncrypted {
            meta: VariableMetadata {
                namespace: "default".to_owned(),
                path: path.to_owned(),
                create_time: 10,
                modify_time: 10,
                ..VariableMetadata::default()
            },
            key_id: "k1".to_owned(),
            data: vec![1, 2, 3],
        })
    }

    #[test]
    fn check_and_set_guards_writes_and_deletes() {
        let mut tables = Tables::default();
        tables
            .apply_variable_upsert(5, &sealed("app"), Some(0))
            .expect("cas 0 creates");
        assert_eq!(
            tables.apply_variable_upsert(6, &sealed("app"), Some(0)),
            Err(ApplyError::VariableCas {
                expected: 0,
                actual: 5
            })
        );
        tables
            .apply_variable_upsert(7, &sealed("app"), Some(5))
            .expect("cas at the stored index");
        let stored = tables.variable("default", "app").expect("stored");
        assert_eq!((stored.meta.create_index, stored.meta.modify_index), (5, 7));
        assert_eq!(
            tables.apply_variable_delete(8, "default", "app", Some(5)),
            Err(ApplyError::VariableCas {
                expected: 5,
                actual: 7
            })
        );
        tables
            .apply_variable_delete(9, "default", "app", Some(7))
            .expect("deleted");
        assert!(tables.variable("default", "app").is_none());
    }

    #[test]
    fn prefixes_and_namespaces_select_variables() {
        let mut tables = Tables::default();
        for path in ["app/a", "app/b", "other"] {
            tables
                .apply_variable_upsert(3, &sealed(path), None)
                .expect("written");
        }
        let paths: Vec<&str> = tables
            .variables_with_prefix("default", "app/")
            .map(|variable| variable.meta.path.as_str())
            .collect();
        assert_eq!(paths, ["app/a", "app/b"]);
        assert_eq!(tables.variables_with_prefix("*", "").count(), 3);
        assert_eq!(tables.variables_with_prefix("web", "").count(), 0);
    }
}
