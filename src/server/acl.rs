//! The ACL endpoints (Nomad: `nomad/acl_endpoint.go`) and token resolution (Nomad:
//! `nomad/acl.go` `ResolveToken`).
//!
//! Every write is one Raft command; accessor IDs, secrets (random v4 UUIDs) and times are made
//! here, before Raft. A token is found by the SHA-256 of the offered secret and then confirmed
//! by comparing secrets in constant time; secrets are never logged nor put in an error.
//!
//! ```text
//!   secret ─► none ──────────────► the "anonymous" policy, or nothing
//!          ─► unknown ───────────► 403 ACL token not found
//!          ─► expired ───────────► 403 ACL token expired
//!          ─► management token ──► everything
//!          ─► client token ──────► its existing policies, merged
//! ```

use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

use super::Server;
use super::endpoints::ServerError;
use super::raft::Command;
use super::state::{ObjectKind, StateSnapshot, secret_hash};
use crate::acl::{Acl, Policy};
use crate::api::types::node::TokenGrant;
use crate::structs::{
    ANONYMOUS_POLICY, AclPolicy, AclToken, TOKEN_TYPE_CLIENT, TOKEN_TYPE_MANAGEMENT, new_uuid,
};

/// Why a token does not resolve (Nomad's `structs.ErrTokenNotFound`, `ErrTokenExpired`).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("ACL token not found")]
    NotFound,
    #[error("ACL token expired")]
    Expired,
}

/// A resolved caller: its token (none for anonymous) and what it may do.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub token: Option<Arc<AclToken>>,
    pub acl: Arc<Acl>,
}

/// An RFC 3339 time from Unix nanoseconds.
fn rfc3339(unix_nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(unix_nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Whether a token expiring at `expiration` (RFC 3339) has expired at `now` (Unix nanoseconds).
fn expired(expiration: Option<&str>, now: i64) -> bool {
    expiration
        .and_then(|expiration| chrono::DateTime::parse_from_rfc3339(expiration).ok())
        .and_then(|expiration| expiration.timestamp_nanos_opt())
        .is_some_and(|expiration| expiration <= now)
}

/// Nomad's policy and token names: `^[a-zA-Z0-9-]{1,128}$` for policies.
fn check_policy_name(name: &str) -> Result<(), ServerError> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || character == '-');
    if valid {
        Ok(())
    } else {
        Err(ServerError::Invalid(format!(
            "invalid name {name:?}: use 1 to 128 letters, digits and dashes"
        )))
    }
}

/// The merged ACL of `policies` that exist in `snapshot` (a deleted policy grants nothing).
fn acl_of_policies(snapshot: &StateSnapshot, policies: &[String]) -> Acl {
    let tables = snapshot.tables();
    let parsed: Vec<Policy> = policies
        .iter()
        .filter_map(|name| tables.acl_policies.get(name))
        .filter_map(|policy| match Policy::parse(&policy.rules) {
            Ok(parsed) => Some(parsed),
            Err(error) => {
                // Rules are checked before they are stored; a stored one that no longer parses
                // (written by another version) grants nothing.
                tracing::warn!(policy = %policy.name, error = %error, "stored ACL policy does not parse");
                None
            }
        })
        .collect();
    Acl::from_policies(&parsed)
}

/// The live token whose secret is `secret` (none for an anonymous caller).
fn find_token(
    snapshot: &StateSnapshot,
    secret: Option<&str>,
) -> Result<Option<Arc<AclToken>>, TokenError> {
    let Some(secret) = secret else {
        return Ok(None);
    };
    let token = snapshot
        .tables()
        .acl_token_by_secret_hash(&secret_hash(secret))
        .filter(|token| bool::from(token.secret_id.as_bytes().ct_eq(secret.as_bytes())))
        .cloned()
        .ok_or(TokenError::NotFound)?;
    if expired(token.expiration_time.as_deref(), super::now_unix_nanos()) {
        return Err(TokenError::Expired);
    }
    Ok(Some(token))
}

impl Server {
    /// Whether this server enforces ACLs (`acl { enabled = true }`).
    pub fn acl_enabled(&self) -> bool {
        self.options.acl_enabled
    }

    /// Resolves a request's secret into what the caller may do.
    pub fn resolve_token(&self, secret: Option<&str>) -> Result<Resolved, TokenError> {
        let snapshot = self.store.snapshot();
        let token = find_token(&snapshot, secret)?;
        let acl = match &token {
            None => acl_of_policies(&snapshot, &[ANONYMOUS_POLICY.to_owned()]),
            Some(token) if token.is_management() => Acl::management(),
            Some(token) => acl_of_policies(&snapshot, &token.policies),
        };
        Ok(Resolved {
            token,
            acl: Arc::new(acl),
        })
    }

    /// What a secret grants, as the stored policies a client agent compiles itself to check
    /// calls to its own routes (Nomad: a client's `ACL.ResolveToken` and `ACL.GetPolicies`).
    /// With ACLs off here every secret grants everything.
    pub fn token_grant(&self, secret: Option<&str>) -> Result<TokenGrant, TokenError> {
        if !self.acl_enabled() {
            return Ok(TokenGrant {
                management: true,
                ..TokenGrant::default()
            });
        }
        let snapshot = self.store.snapshot();
        let token = find_token(&snapshot, secret)?;
        let names = match &token {
            None => vec![ANONYMOUS_POLICY.to_owned()],
            Some(token) if token.is_management() => Vec::new(),
            Some(token) => token.policies.clone(),
        };
        let tables = snapshot.tables();
        Ok(TokenGrant {
            accessor_id: token.as_ref().map(|token| token.accessor_id.clone()),
            management: token.as_ref().is_some_and(|token| token.is_management()),
            policies: names
                .iter()
                .filter_map(|name| {
                    tables
                        .acl_policies
                        .get(name)
                        .map(|policy| (**policy).clone())
                })
                .collect(),
        })
    }

    /// `acl bootstrap`: the first management token, once (Nomad: `ACL.Bootstrap`).
    pub async fn acl_bootstrap(&self) -> Result<Arc<AclToken>, ServerError> {
        let reset_index = self.store.snapshot().tables().acl_bootstrap_index;
        if reset_index != 0 {
            return Err(ServerError::State(
                super::state::ApplyError::AclBootstrapped { reset_index },
            ));
        }
        let token = AclToken {
            accessor_id: new_uuid(),
            secret_id: new_uuid(),
            name: "Bootstrap Token".to_owned(),
            token_type: TOKEN_TYPE_MANAGEMENT.to_owned(),
            global: true,
            create_time: rfc3339(super::now_unix_nanos()),
            ..AclToken::default()
        };
        let accessor_id = token.accessor_id.clone();
        self.write_checked(Command::AclBootstrap {
            token: Arc::new(token),
        })
        .await?;
        self.stored_token(&accessor_id)
    }

    fn stored_token(&self, accessor_id: &str) -> Result<Arc<AclToken>, ServerError> {
        self.store
            .snapshot()
            .tables()
            .acl_tokens
            .get(accessor_id)
            .cloned()
            .ok_or_else(|| ServerError::not_found(ObjectKind::AclToken, accessor_id))
    }

    /// Creates or replaces a policy; its rules must parse (Nomad: `ACL.UpsertPolicies`).
    pub async fn acl_policy_upsert(&self, policy: AclPolicy) -> Result<u64, ServerError> {
        check_policy_name(&policy.name)?;
        Policy::parse(&policy.rules)
            .map_err(|error| ServerError::Invalid(format!("policy {:?}: {error}", policy.name)))?;
        let response = self
            .write_checked(Command::AclPolicyUpsert {
                policies: vec![Arc::new(policy)],
            })
            .await?;
        Ok(response.index)
    }

    pub async fn acl_policy_delete(&self, name: &str) -> Result<u64, ServerError> {
        let response = self
            .write_checked(Command::AclPolicyDelete {
                names: vec![name.to_owned()],
            })
            .await?;
        Ok(response.index)
    }

    /// Creates a token (no `AccessorID`) or updates one (Nomad: `ACL.UpsertTokens`): a client
    /// token names at least one existing policy, a management token none; `ExpirationTTL` sets
    /// the expiration from now. An update keeps the secret and the type.
    pub async fn acl_token_upsert(
        &self,
        mut token: AclToken,
    ) -> Result<Arc<AclToken>, ServerError> {
        let snapshot = self.store.snapshot();
        let tables = snapshot.tables();
        let now = super::now_unix_nanos();
        if token.accessor_id.is_empty() {
            token.accessor_id = new_uuid();
            token.secret_id = new_uuid();
            token.create_time = rfc3339(now);
            if token.token_type.is_empty() {
                token.token_type = TOKEN_TYPE_CLIENT.to_owned();
            }
            if token.expiration_ttl > Duration::ZERO {
                let ttl = i64::try_from(token.expiration_ttl.as_nanos()).unwrap_or(i64::MAX);
                token.expiration_time = Some(rfc3339(now.saturating_add(ttl)));
            }
        } else {
            let Some(existing) = tables.acl_tokens.get(&token.accessor_id) else {
                return Err(ServerError::not_found(
                    ObjectKind::AclToken,
                    &token.accessor_id,
                ));
            };
            if !token.token_type.is_empty() && token.token_type != existing.token_type {
                return Err(ServerError::Invalid("cannot change token type".to_owned()));
            }
            token.token_type = existing.token_type.clone();
            token.expiration_time = existing.expiration_time.clone();
            token.expiration_ttl = existing.expiration_ttl;
        }
        match token.token_type.as_str() {
            TOKEN_TYPE_CLIENT if token.policies.is_empty() => {
                return Err(ServerError::Invalid(
                    "client token missing policies or roles".to_owned(),
                ));
            }
            TOKEN_TYPE_CLIENT => {}
            TOKEN_TYPE_MANAGEMENT if !token.policies.is_empty() => {
                return Err(ServerError::Invalid(
                    "management token cannot be associated with policies or roles".to_owned(),
                ));
            }
            TOKEN_TYPE_MANAGEMENT => {}
            other => {
                return Err(ServerError::Invalid(format!(
                    "token type must be client or management, not {other:?}"
                )));
            }
        }
        if let Some(missing) = token
            .policies
            .iter()
            .find(|policy| !tables.acl_policies.contains_key(*policy))
        {
            return Err(ServerError::Invalid(format!(
                "cannot find policy {missing}"
            )));
        }
        let accessor_id = token.accessor_id.clone();
        self.write_checked(Command::AclTokenUpsert {
            tokens: vec![Arc::new(token)],
        })
        .await?;
        self.stored_token(&accessor_id)
    }

    pub async fn acl_token_delete(&self, accessor_id: &str) -> Result<u64, ServerError> {
        let response = self
            .write_checked(Command::AclTokenDelete {
                accessor_ids: vec![accessor_id.to_owned()],
            })
            .await?;
        Ok(response.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_expires_at_its_expiration_time() {
        let now = 1_700_000_000_000_000_000;
        let past = rfc3339(now - 1);
        let future = rfc3339(now + 1_000_000_000);
        assert!(expired(Some(&past), now));
        assert!(expired(Some(&rfc3339(now)), now));
        assert!(!expired(Some(&future), now));
        assert!(!expired(None, now));
    }

    #[test]
    fn policy_names_are_nomads() {
        assert!(check_policy_name("web-readers-2").is_ok());
        for bad in ["", "with space", "dots.no", &"x".repeat(129)] {
            assert!(check_policy_name(bad).is_err(), "{bad:?}");
        }
    }
}
