//! Identifier newtypes, so an allocation ID is never passed where a node ID is expected.
//!
//! Each serialises as a bare JSON string. Job IDs are chosen by users; the others are UUIDs made
//! with [`new_uuid`] *before* a change enters Raft (apply is deterministic and makes no IDs).
//!
//! The text is shared (`Arc<str>`): the state store's persistent maps copy keys whenever a
//! snapshot shares the node being written, and a scheduler passes IDs around by the thousand, so
//! a clone must be a reference count, never an allocation.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A fresh random UUID in Nomad's textual form.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

macro_rules! id_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Arc<str>);

        impl $name {
            /// A new random ID.
            pub fn generate() -> Self {
                Self(new_uuid().into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The first eight characters, as Nomad's CLI shows IDs in tables.
            pub fn short(&self) -> &str {
                self.0.get(..8).unwrap_or(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self(value.into())
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self(value.into())
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_newtype!(
    /// A job's user-chosen ID, unique within a namespace.
    JobId
);
id_newtype!(
    /// An allocation's UUID.
    AllocId
);
id_newtype!(
    /// A node's UUID, chosen by the client and kept in its data dir.
    NodeId
);
id_newtype!(
    /// An evaluation's UUID.
    EvalId
);
id_newtype!(
    /// A deployment's UUID.
    DeploymentId
);
