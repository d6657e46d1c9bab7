//! The ACL tables: policies by name, tokens by accessor ID and by the hash of their secret, and
//! the bootstrap's reset index. Nomad: `state_store.go` `UpsertACLPolicies`, `UpsertACLTokens`,
//! `BootstrapACLTokens`.
//!
//! Invariant: `acl_tokens_by_secret_hash` holds exactly one entry per token, the SHA-256 of its
//! secret; every write goes through [`Tables::insert_acl_token`] and
//! [`Tables::remove_acl_token`].

use std::sync::Arc;

use super::error::{ApplyError, ObjectKind};
use super::tables::Tables;
use crate::structs::{AclPolicy, AclToken};

/// The key a token is found by from its secret: the hex SHA-256 of the secret.
pub use crate::acl::secret_hash;

impl Tables {
    pub(super) fn insert_acl_token(&mut self, token: Arc<AclToken>) {
        if let Some(previous) = self.acl_tokens.get(&token.accessor_id) {
            self.acl_tokens_by_secret_hash
                .remove(&secret_hash(&previous.secret_id));
        }
        self.acl_tokens_by_secret_hash
            .insert(secret_hash(&token.secret_id), token.accessor_id.clone());
        self.acl_tokens.insert(token.accessor_id.clone(), token);
    }

    fn remove_acl_token(&mut self, accessor_id: &str) {
        if let Some(token) = self.acl_tokens.remove(accessor_id) {
            self.acl_tokens_by_secret_hash
                .remove(&secret_hash(&token.secret_id));
        }
    }

    /// The token whose secret hashes to `hash`, if any.
    pub fn acl_token_by_secret_hash(&self, hash: &str) -> Option<&Arc<AclToken>> {
        self.acl_tokens_by_secret_hash
            .get(hash)
            .and_then(|accessor_id| self.acl_tokens.get(accessor_id))
    }

    /// The first management token, once.
    pub(super) fn apply_acl_bootstrap(
        &mut self,
        index: u64,
        token: &Arc<AclToken>,
    ) -> Result<(), ApplyError> {
        if self.acl_bootstrap_index != 0 {
            return Err(ApplyError::AclBootstrapped {
                reset_index: self.acl_bootstrap_index,
            });
        }
        let mut token = (**token).clone();
        token.create_index = index;
        token.modify_index = index;
        self.insert_acl_token(Arc::new(token));
        self.acl_bootstrap_index = index;
        self.indexes.acl_tokens = index;
        Ok(())
    }

    pub(super) fn apply_acl_policy_upsert(&mut self, index: u64, policies: &[Arc<AclPolicy>]) {
        for policy in policies {
            let mut policy = (**policy).clone();
            policy.create_index = self
                .acl_policies
                .get(&policy.name)
                .map_or(index, |existing| existing.create_index);
            policy.modify_index = index;
            self.acl_policies
                .insert(policy.name.clone(), Arc::new(policy));
        }
        self.indexes.acl_policies = index;
    }

    pub(super) fn apply_acl_policy_delete(
        &mut self,
        index: u64,
        names: &[String],
    ) -> Result<(), ApplyError> {
        if let Some(missing) = names
            .iter()
            .find(|name| !self.acl_policies.contains_key(*name))
        {
            return Err(ApplyError::not_found(ObjectKind::AclPolicy, missing));
        }
        for name in names {
            self.acl_policies.remove(name);
        }
        self.indexes.acl_policies = index;
        Ok(())
    }

    /// Creates or updates tokens; an update keeps the token's secret, type and create index.
    pub(super) fn apply_acl_token_upsert(
        &mut self,
        index: u64,
        tokens: &[Arc<AclToken>],
    ) -> Result<(), ApplyError> {
        for token in tokens {
            let mut token = (**token).clone();
            match self.acl_tokens.get(&token.accessor_id) {
                Some(existing) => {
                    token.secret_id = existing.secret_id.clone();
                    token.create_index = existing.create_index;
                    token.create_time = existing.create_time.clone();
                }
                None => token.create_index = index,
            }
            token.modify_index = index;
            self.insert_acl_token(Arc::new(token));
        }
        self.indexes.acl_tokens = index;
        Ok(())
    }

    pub(super) fn apply_acl_token_delete(
        &mut self,
        index: u64,
        accessor_ids: &[String],
    ) -> Result<(), ApplyError> {
        if let Some(missing) = accessor_ids
            .iter()
            .find(|accessor_id| !self.acl_tokens.contains_key(*accessor_id))
        {
            return Err(ApplyError::not_found(ObjectKind::AclToken, missing));
        }
        for accessor_id in accessor_ids {
            self.remove_acl_token(accessor_id);
        }
        self.indexes.acl_tokens = index;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(accessor_id: &str, secret_id: &str) -> Arc<AclToken> {
        Arc::new(AclToken {
            accessor_id: accessor_id.to_owned(),
            secret_id: secret_id.to_owned(),
            token_type: "management".to_owned(),
            ..AclToken::default()
        })
    }

    #[test]
    fn bootstrap_happens_once_and_names_its_reset_index() {
        let mut tables = Tables::default();
        tables
            .apply_acl_bootstrap(7, &token("a1", "s1"))
            .expect("first bootstrap");
        assert_eq!(tables.acl_bootstrap_index, 7);
        assert_eq!(
            tables.apply_acl_bootstrap(9, &token("a2", "s2")),
            Err(ApplyError::AclBootstrapped { reset_index: 7 })
        );
        assert!(tables.acl_tokens.get("a2").is_none());
        let found = tables
            .acl_token_by_secret_hash(&secret_hash("s1"))
            .expect("found by its secret");
        assert_eq!(found.create_index, 7);
    }

    #[test]
    fn an_update_keeps_the_secret_and_a_delete_forgets_it() {
        let mut tables = Tables::default();
        tables
            .apply_acl_token_upsert(3, &[token("a1", "s1")])
            .expect("create");
        let mut renamed = (*token("a1", "forged")).clone();
        renamed.name = "renamed".to_owned();
        tables
            .apply_acl_token_upsert(4, &[Arc::new(renamed)])
            .expect("update");
        let stored = tables.acl_tokens.get("a1").expect("stored");
        assert_eq!(
            (stored.secret_id.as_str(), stored.name.as_str()),
            ("s1", "renamed")
        );
        assert_eq!((stored.create_index, stored.modify_index), (3, 4));
        assert!(
            tables
                .acl_token_by_secret_hash(&secret_hash("forged"))
                .is_none()
        );
        assert_eq!(
            tables.apply_acl_token_delete(5, &["a1".to_owned(), "nope".to_owned()]),
            Err(ApplyError::not_found(ObjectKind::AclToken, "nope")),
        );
        assert!(
            tables.acl_tokens.contains_key("a1"),
            "a refused delete deletes nothing"
        );
        tables
            .apply_acl_token_delete(6, &["a1".to_owned()])
            .expect("delete");
        assert!(
            tables
                .acl_token_by_secret_hash(&secret_hash("s1"))
                .is_none()
        );
        assert!(tables.acl_tokens_by_secret_hash.is_empty());
    }
}
