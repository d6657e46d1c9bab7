//! Loading driver components: compile once, cache the precompiled artifact on disk, check the
//! contract version.
//!
//! Cache layout: `<cache_dir>/drivers/<sha256 of the component>-<engine key>.cwasm`, where the
//! engine key hashes wasmtime's own compatibility hash (version, target, settings that change
//! code). A new caravan build with another wasmtime or other settings thus never reads a stale
//! artifact; a corrupt or incompatible file is recompiled and replaced.
//!
//! Boundary: this file holds the crate's one `unsafe`: `Component::deserialize`, which
//! wasmtime marks unsafe because it trusts the file to be its own output.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use crate::driver_host::error::{Error, Result};

/// The contract versions this host accepts (`^0.2`: any `0.2.x`, and no 0.1 driver: 0.2 moved
/// task identity and waits to the host).
pub const ACCEPTED_CONTRACT: &str = "^0.2";
const PLUGIN_EXPORT_PREFIX: &str = "caravan:driver/plugin@";

/// Compiles components, through the on-disk cache when there is one.
pub(crate) struct Loader {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    engine_key: String,
}

impl Loader {
    pub(crate) fn new(engine: Engine, cache_dir: Option<PathBuf>) -> Loader {
        let engine_key = engine_key(&engine);
        Loader {
            engine,
            cache_dir,
            engine_key,
        }
    }

    /// The cache file for a component's bytes.
    pub(crate) fn cache_path(&self, component: &[u8]) -> Option<PathBuf> {
        let dir = self.cache_dir.as_ref()?;
        Some(
            dir.join("drivers")
                .join(cache_file_name(component, &self.engine_key)),
        )
    }

    /// The compiled component, from the cache or freshly compiled (and then cached).
    pub(crate) fn load(&self, driver: &str, bytes: &[u8]) -> Result<Component> {
        let cache_path = self.cache_path(bytes);
        if let Some(path) = &cache_path
            && path.is_file()
        {
            match deserialize(&self.engine, path) {
                Ok(component) => return Ok(component),
                Err(err) => {
                    tracing::warn!(driver, path = %path.display(), error = %err, "discarding unusable precompiled driver")
                }
            }
        }
        let component =
            Component::new(&self.engine, bytes).map_err(|err| Error::InvalidComponent {
                driver: driver.to_owned(),
                reason: format!("{err:#}"),
            })?;
        if let Some(path) = &cache_path {
            // The cache is an optimisation: failing to write it is logged, never fatal.
            if let Err(err) = write_artifact(&component, path) {
                tracing::warn!(driver, path = %path.display(), error = %err, "cannot cache precompiled driver");
            }
        }
        Ok(component)
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Reads the artifact into memory rather than `deserialize_file`'s mmap: a file changed under a
/// mapping (an operator cleaning the cache, a second agent) would kill the agent with SIGBUS.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    let bytes = std::fs::read(path)?;
    // SAFETY: files in the cache directory are written only by `write_artifact` from
    // `Component::serialize` of this same engine configuration (the file name carries the engine's
    // compatibility hash), and wasmtime checks the header and version itself. The cache
    // directory belongs to the agent (like its data_dir), so nobody else writes there.
    unsafe { Component::deserialize(engine, &bytes) }
}

fn write_artifact(component: &Component, path: &Path) -> std::io::Result<()> {
    let bytes = component
        .serialize()
        .map_err(|err| std::io::Error::other(err.to_string()))?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // Write then rename: a reader never sees half a file.
    let temporary = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// `<sha256 of the component>-<engine key>.cwasm`.
pub(crate) fn cache_file_name(component: &[u8], engine_key: &str) -> String {
    format!(
        "{}-{engine_key}.cwasm",
        hex::encode(Sha256::digest(component))
    )
}

/// A short stable hash of wasmtime's compatibility hash of `engine`.
pub(crate) fn engine_key(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..8])
}

/// std's `Hasher` over SHA-256, so the key is the same in every process (unlike `DefaultHasher`
/// with random keys... and across Rust releases).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes([
            digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
        ])
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// The contract version a component implements, from its `caravan:driver/plugin@X` export.
pub(crate) fn contract_version(engine: &Engine, component: &Component) -> Option<String> {
    component
        .component_type()
        .exports(engine)
        .find_map(|(name, item)| {
            let version = name.strip_prefix(PLUGIN_EXPORT_PREFIX)?;
            matches!(item.ty, ComponentItem::ComponentInstance(_)).then(|| version.to_owned())
        })
}

/// Whether this host accepts a contract version.
pub(crate) fn accepts_contract(version: &str) -> bool {
    let Ok(requirement) = semver::VersionReq::parse(ACCEPTED_CONTRACT) else {
        return false;
    };
    semver::Version::parse(version).is_ok_and(|version| requirement.matches(&version))
}

/// The interfaces a component imports.
pub(crate) fn imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_follow_content_and_engine() {
        let a = cache_file_name(b"component a", "0011223344556677");
        assert_eq!(a, cache_file_name(b"component a", "0011223344556677"));
        assert_ne!(a, cache_file_name(b"component b", "0011223344556677"));
        assert_ne!(a, cache_file_name(b"component a", "8899aabbccddeeff"));
        assert!(a.ends_with("-0011223344556677.cwasm"));
    }

    #[test]
    fn engine_keys_are_stable_and_follow_settings() {
        let plain = Engine::default();
        assert_eq!(engine_key(&plain), engine_key(&Engine::default()));
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let interruptible = Engine::new(&config).expect("engine");
        assert_ne!(engine_key(&plain), engine_key(&interruptible));
    }

    #[test]
    fn contract_versions_follow_semver_for_zero_dot() {
        assert!(accepts_contract("0.2.0"));
        assert!(accepts_contract("0.2.7"));
        assert!(!accepts_contract("0.1.0"));
        assert!(!accepts_contract("0.3.0"));
        assert!(!accepts_contract("1.0.0"));
        assert!(!accepts_contract("not-a-version"));
    }
}
