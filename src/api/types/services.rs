//! The native service catalog's messages: a client's sync of its allocations' registrations
//! (Nomad: `ServiceRegistrationUpsertRequest` and `ServiceRegistrationDeleteByIDRequest`, one
//! request here), and the catalog's read shapes, which are the model's
//! ([`ServiceRegistration`], [`ServiceRegistrationListStub`]).

use serde::{Deserialize, Serialize};

pub use crate::structs::{ServiceRegistration, ServiceRegistrationListStub};

/// `PUT /v1/internal/node/:id/services`: registrations to write and IDs to remove, all of the
/// node's own allocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default, deny_unknown_fields)]
pub struct ServiceSyncRequest {
    pub upserts: Vec<ServiceRegistration>,
    pub deletes: Vec<String>,
}

/// The answer to a [`ServiceSyncRequest`] (Nomad: `structs.GenericResponse`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ServiceSyncResponse {
    pub index: u64,
}
