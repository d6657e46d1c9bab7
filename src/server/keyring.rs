//! The servers' keyring: the root keys that seal variables' items (AES-256-GCM), kept out of the
//! replicated state. Nomad: `nomad/encrypter.go` and its keystore.
//!
//! ```text
//!   var put ─► leader: active root key (made on first need: 32 random bytes,
//!              │        data_dir/server/keystore/<key id>.json, 0600; its ID through Raft)
//!              └─► seal(items) = nonce ‖ AES-256-GCM(items JSON, aad = namespace \0 path)
//!                  ─► Raft: VariableUpsert { KeyID, Data }   (never the items, never the key)
//! ```
//!
//! Invariant: a key is only ever in memory and in its keystore file (mode 0600, in a 0700
//! directory): the Raft log, snapshots and the state hold the key's ID and sealed items only.
//! The associated data binds a sealed value to its namespace and path, so a value copied to
//! another path does not open.
//!
//! High availability (Nomad's keyring replication): the keys' metadata (ID, algorithm, create
//! time, active or inactive) goes through Raft; the key material does not. Every server runs a
//! replicator ([`super::keyring_replication`]) that fetches the keys named in the state that its
//! keystore lacks from a peer, over `GET /v1/internal/server/keyring/<id>` — answered only to a
//! caller presenting the cluster's server certificate (`server.<region>.nomad`, mutual TLS), so
//! without `tls.rpc` keys are not replicated and a server lacking one says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};

/// The algorithm of every key this build makes (Nomad's name for it).
pub const ALGORITHM: &str = "aes256-gcm";

const NONCE_BYTES: usize = 12;

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("root key {0:?} is not in this server's keystore")]
    MissingKey(String),
    #[error("variable data does not decrypt with root key {0:?}")]
    Corrupt(String),
    #[error("keystore {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("keystore file {path}: {message}")]
    BadKeyFile { path: PathBuf, message: String },
}

/// A key as written to the keystore and sent to a peer server (no `Debug`: never logged).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyFile {
    #[serde(rename = "KeyID")]
    pub key_id: String,
    pub algorithm: String,
    /// Base64 of the 32 key bytes.
    pub key: String,
}

impl KeyFile {
    fn new(key_id: &str, key: &[u8; 32]) -> Self {
        Self {
            key_id: key_id.to_owned(),
            algorithm: ALGORITHM.to_owned(),
            key: base64::engine::general_purpose::STANDARD.encode(key),
        }
    }

    /// The key's 32 bytes, or why the file does not hold one.
    pub fn bytes(&self) -> Result<[u8; 32], String> {
        if self.algorithm != ALGORITHM {
            return Err(format!("unknown algorithm {:?}", self.algorithm));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.key.as_bytes())
            .map_err(|error| error.to_string())?;
        bytes.try_into().map_err(|_| "a key is 32 bytes".to_owned())
    }
}

/// The keys this server holds, by key ID.
pub struct Keyring {
    /// `data_dir/server/keystore`; `None` (dev): keys live in memory only.
    dir: Option<PathBuf>,
    keys: Mutex<BTreeMap<String, [u8; 32]>>,
    /// Held while a key is made, so two writes do not make two.
    pub(super) making: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self.lock().keys().cloned().collect();
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .field("key_ids", &ids)
            .finish()
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> KeyringError + '_ {
    move |error| KeyringError::Io {
        path: path.to_path_buf(),
        error,
    }
}

impl Keyring {
    /// A keyring in memory only.
    pub fn in_memory() -> Self {
        Self {
            dir: None,
            keys: Mutex::new(BTreeMap::new()),
            making: tokio::sync::Mutex::new(()),
        }
    }

    /// Opens the keystore at `dir`, creating it (0700), and reads every key file in it.
    pub fn open(dir: &Path) -> Result<Self, KeyringError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_error(dir))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_error(dir))?;
        let mut keys = BTreeMap::new();
        for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
            let path = entry.map_err(io_error(dir))?.path();
            if path.extension().is_none_or(|extension| extension != "json") {
                continue;
            }
            let bad = |message: String| KeyringError::BadKeyFile {
                path: path.clone(),
                message,
            };
            let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
            let file: KeyFile =
                serde_json::from_str(&text).map_err(|error| bad(error.to_string()))?;
            let key = file.bytes().map_err(bad)?;
            keys.insert(file.key_id, key);
        }
        Ok(Self {
            dir: Some(dir.to_path_buf()),
            keys: Mutex::new(keys),
            making: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, [u8; 32]>> {
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn has_key(&self, key_id: &str) -> bool {
        self.lock().contains_key(key_id)
    }

    /// Makes a key named `key_id` from the OS's random source and stores it (file 0600).
    pub fn make_key(&self, key_id: &str) -> Result<(), KeyringError> {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        self.store_key(key_id, key)
    }

    /// Stores `key` as `key_id` (a key a peer sent): its file (0600) first, then in memory.
    pub fn store_key(&self, key_id: &str, key: [u8; 32]) -> Result<(), KeyringError> {
        if let Some(dir) = &self.dir {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let path = dir.join(format!("{key_id}.json"));
            let text = serde_json::to_string(&KeyFile::new(key_id, &key)).map_err(|error| {
                KeyringError::BadKeyFile {
                    path: path.clone(),
                    message: error.to_string(),
                }
            })?;
            // Written beside, then renamed: a crash leaves no half key file.
            let partial = dir.join(format!(".{key_id}.partial"));
            let _ = std::fs::remove_file(&partial);
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&partial)
                .map_err(io_error(&partial))?;
            out.write_all(text.as_bytes()).map_err(io_error(&partial))?;
            out.sync_all().map_err(io_error(&partial))?;
            std::fs::rename(&partial, &path).map_err(io_error(&path))?;
        }
        self.lock().insert(key_id.to_owned(), key);
        Ok(())
    }

    /// The key `key_id` as sent to a peer server, if this server holds it.
    pub fn key_file(&self, key_id: &str) -> Option<KeyFile> {
        self.lock().get(key_id).map(|key| KeyFile::new(key_id, key))
    }

    fn cipher(&self, key_id: &str) -> Result<Aes256Gcm, KeyringError> {
        let keys = self.lock();
        let key = keys
            .get(key_id)
            .ok_or_else(|| KeyringError::MissingKey(key_id.to_owned()))?;
        Aes256Gcm::new_from_slice(key).map_err(|_| KeyringError::Corrupt(key_id.to_owned()))
    }

    /// Seals `plaintext` with key `key_id`, bound to `associated` (namespace and path): a fresh
    /// random nonce, then the ciphertext.
    pub fn seal(
        &self,
        key_id: &str,
        plaintext: &[u8],
        associated: &[u8],
    ) -> Result<Vec<u8>, KeyringError> {
        let cipher = self.cipher(key_id)?;
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: associated,
                },
            )
            .map_err(|_| KeyringError::Corrupt(key_id.to_owned()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens what [`Keyring::seal`] sealed with the same key and associated data.
    pub fn open_sealed(
        &self,
        key_id: &str,
        sealed: &[u8],
        associated: &[u8],
    ) -> Result<Vec<u8>, KeyringError> {
        let cipher = self.cipher(key_id)?;
        if sealed.len() < NONCE_BYTES {
            return Err(KeyringError::Corrupt(key_id.to_owned()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated,
                },
            )
            .map_err(|_| KeyringError::Corrupt(key_id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_items_open_only_with_their_key_and_path() -> Result<(), KeyringError> {
        let dir = tempfile::tempdir().map_err(io_error(Path::new("tmp")))?;
        let keystore = dir.path().join("keystore");
        let keyring = Keyring::open(&keystore)?;
        keyring.make_key("k1")?;
        let sealed = keyring.seal("k1", b"{\"k\":\"secret-value\"}", b"default\0app")?;
        assert!(
            !sealed.windows(12).any(|window| window == b"secret-value"),
            "sealed bytes hold no plain text"
        );
        assert_eq!(
            keyring.open_sealed("k1", &sealed, b"default\0app")?,
            b"{\"k\":\"secret-value\"}"
        );
        assert!(matches!(
            keyring.open_sealed("k1", &sealed, b"default\0other"),
            Err(KeyringError::Corrupt(_))
        ));
        assert!(matches!(
            keyring.open_sealed("k2", &sealed, b"default\0app"),
            Err(KeyringError::MissingKey(_))
        ));
        // The key file is the owner's alone, and a reopened keystore reads it back.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keystore.join("k1.json"))
            .map_err(io_error(&keystore))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let reopened = Keyring::open(&keystore)?;
        assert_eq!(
            reopened.open_sealed("k1", &sealed, b"default\0app")?,
            b"{\"k\":\"secret-value\"}"
        );
        Ok(())
    }
}
