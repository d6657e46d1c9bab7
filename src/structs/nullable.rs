//! Deserialise JSON `null` as the type's default.
//!
//! Nomad's Go structs marshal nil slices and maps as `null`; clients echo them back. Every collection
//! field of the model is annotated with `deserialize_with = "nullable::default"` so that `null` and a
//! missing field both read as empty.

use serde::{Deserialize, Deserializer};

pub(crate) fn default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
