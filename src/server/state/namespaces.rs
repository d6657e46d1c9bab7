//! The namespaces table. Nomad: `state_store.go` `UpsertNamespaces`, `DeleteNamespaces`.
//!
//! Invariant: `default` is always answered ([`Tables::namespace`]) and never deleted; a
//! namespace is deleted only once every job in it is terminal and it holds no variable.

use std::sync::Arc;

use super::error::{ApplyError, ObjectKind};
use super::tables::Tables;
use crate::structs::{JobStatus, Namespace};

impl Tables {
    /// The namespace `name`: the stored one, or `default` as it is before anyone wrote it.
    pub fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        match self.namespaces.get(name) {
            Some(namespace) => Some(namespace.clone()),
            None if name == Namespace::DEFAULT => Some(Arc::new(Namespace::default_namespace())),
            None => None,
        }
    }

    /// Every namespace in name order, `default` included.
    pub fn all_namespaces(&self) -> Vec<Arc<Namespace>> {
        let mut namespaces: Vec<Arc<Namespace>> = self.namespaces.values().cloned().collect();
        if !self.namespaces.contains_key(Namespace::DEFAULT) {
            namespaces.push(Arc::new(Namespace::default_namespace()));
            namespaces.sort_by(|left, right| left.name.cmp(&right.name));
        }
        namespaces
    }

    pub(super) fn apply_namespace_upsert(&mut self, index: u64, namespaces: &[Arc<Namespace>]) {
        for namespace in namespaces {
            let mut namespace = (**namespace).clone();
            namespace.create_index = self
                .namespaces
                .get(&namespace.name)
                .map_or(index, |existing| existing.create_index);
            namespace.modify_index = index;
            self.namespaces
                .insert(namespace.name.clone(), Arc::new(namespace));
        }
        self.indexes.namespaces = index;
    }

    pub(super) fn apply_namespace_delete(
        &mut self,
        index: u64,
        names: &[String],
    ) -> Result<(), ApplyError> {
        for name in names {
            if name == Namespace::DEFAULT {
                return Err(ApplyError::NamespaceInUse(
                    "default namespace can not be deleted".to_owned(),
                ));
            }
            if !self.namespaces.contains_key(name) {
                return Err(ApplyError::not_found(ObjectKind::Namespace, name));
            }
            let live_job = self
                .jobs
                .range((name.clone(), crate::structs::JobId::from(""))..)
                .take_while(|((namespace, _), _)| namespace == name)
                .find(|(_, job)| job.status != JobStatus::Dead);
            if let Some(((_, job_id), _)) = live_job {
                return Err(ApplyError::NamespaceInUse(format!(
                    "namespace {name:?} contains at least one non-terminal job {:?}. All jobs \
                     must be terminal in namespace before it can be deleted",
                    job_id.to_string()
                )));
            }
            let variable = self
                .variables
                .range((name.clone(), String::new())..)
                .next()
                .filter(|((namespace, _), _)| namespace == name);
            if let Some(((_, path), _)) = variable {
                return Err(ApplyError::NamespaceInUse(format!(
                    "namespace {name:?} contains at least one variable {path:?}. All variables \
                     must be deleted before namespace can be deleted"
                )));
            }
        }
        for name in names {
            self.namespaces.remove(name);
        }
        self.indexes.namespaces = index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structs::{Job, JobId};

    fn namespace(name: &str) -> Arc<Namespace> {
        Arc::new(Namespace {
            name: name.to_owned(),
            ..Namespace::default()
        })
    }

    #[test]
    fn default_always_exists_and_is_never_deleted() {
        let mut tables = Tables::default();
        assert!(tables.namespace("default").is_some());
        assert!(tables.namespace("web").is_none());
        assert_eq!(
            tables.apply_namespace_delete(2, &["default".to_owned()]),
            Err(ApplyError::NamespaceInUse(
                "default namespace can not be deleted".to_owned()
            ))
        );
        tables.apply_namespace_upsert(3, &[namespace("web")]);
        let names: Vec<String> = tables
            .all_namespaces()
            .iter()
            .map(|namespace| namespace.name.clone())
            .collect();
        assert_eq!(names, ["default", "web"]);
    }

    #[test]
    fn a_namespace_with_a_live_job_is_kept() {
        let mut tables = Tables::default();
        tables.apply_namespace_upsert(3, &[namespace("web")]);
        let job = Job {
            id: JobId::from("site"),
            namespace: "web".to_owned(),
            ..Job::default()
        };
        tables
            .jobs
            .insert(("web".to_owned(), job.id.clone()), Arc::new(job.clone()));
        let refused = tables
            .apply_namespace_delete(4, &["web".to_owned()])
            .expect_err("refused");
        assert!(
            refused
                .to_string()
                .contains("contains at least one non-terminal job \"site\""),
            "{refused}"
        );
        let mut dead = job;
        dead.status = JobStatus::Dead;
        tables
            .jobs
            .insert(("web".to_owned(), dead.id.clone()), Arc::new(dead));
        tables
            .apply_namespace_delete(5, &["web".to_owned()])
            .expect("deleted once its jobs are dead");
        assert!(tables.namespace("web").is_none());
        assert_eq!(
            tables.apply_namespace_delete(6, &["web".to_owned()]),
            Err(ApplyError::not_found(ObjectKind::Namespace, "web"))
        );
    }
}
