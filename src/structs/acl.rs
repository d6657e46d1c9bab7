//! ACL policies and tokens as Nomad's API and state hold them (Nomad: `structs.ACLPolicy`,
//! `structs.ACLToken` and their list stubs).
//!
//! A token's `SecretID` is its bearer credential: it is served only when the token is made
//! (bootstrap, create) and to the token itself (`/v1/acl/token/self`) or a management token;
//! list stubs never carry it. Times are RFC 3339 strings stamped by the servers before Raft.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

/// `Type` of a token that may do everything.
pub const TOKEN_TYPE_MANAGEMENT: &str = "management";
/// `Type` of a token limited to its policies.
pub const TOKEN_TYPE_CLIENT: &str = "client";
/// The policy that applies to requests without a token.
pub const ANONYMOUS_POLICY: &str = "anonymous";

/// A named set of rules in Nomad's policy language.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicy {
    pub name: String,
    pub description: String,
    /// The rules, HCL (`crate::acl::policy`).
    pub rules: String,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `GET /v1/acl/policies`: a policy without its rules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclPolicyListStub {
    pub name: String,
    pub description: String,
    pub create_index: u64,
    pub modify_index: u64,
}

impl AclPolicy {
    pub fn stub(&self) -> AclPolicyListStub {
        AclPolicyListStub {
            name: self.name.clone(),
            description: self.description.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}

/// A bearer token: `SecretID` authenticates, `AccessorID` names it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclToken {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    #[serde(rename = "SecretID")]
    pub secret_id: String,
    pub name: String,
    /// `client` or `management`.
    #[serde(rename = "Type")]
    pub token_type: String,
    pub policies: Vec<String>,
    pub global: bool,
    /// RFC 3339.
    pub create_time: String,
    /// RFC 3339; the token is refused from then on.
    pub expiration_time: Option<String>,
    /// Asked at creation: the expiration is the creation time plus this (nanoseconds).
    #[serde(rename = "ExpirationTTL", with = "duration::nanos")]
    pub expiration_ttl: Duration,
    pub create_index: u64,
    pub modify_index: u64,
}

/// `GET /v1/acl/tokens`: a token without its secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AclTokenListStub {
    #[serde(rename = "AccessorID")]
    pub accessor_id: String,
    pub name: String,
    #[serde(rename = "Type")]
    pub token_type: String,
    pub policies: Vec<String>,
    pub global: bool,
    pub create_time: String,
    pub expiration_time: Option<String>,
    pub create_index: u64,
    pub modify_index: u64,
}

impl AclToken {
    pub fn is_management(&self) -> bool {
        self.token_type == TOKEN_TYPE_MANAGEMENT
    }

    pub fn stub(&self) -> AclTokenListStub {
        AclTokenListStub {
            accessor_id: self.accessor_id.clone(),
            name: self.name.clone(),
            token_type: self.token_type.clone(),
            policies: self.policies.clone(),
            global: self.global,
            create_time: self.create_time.clone(),
            expiration_time: self.expiration_time.clone(),
            create_index: self.create_index,
            modify_index: self.modify_index,
        }
    }
}
