//! The trust store: the publisher keys a home accepts packages from.
//! A JSON file, replaced atomically on every change.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::PublicKey;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read or write the trust store {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "the trust store {path} is corrupt ({source}); restore it from a backup or remove it and add your keys again"
    )]
    Corrupt { path: String, source: serde_json::Error },
    #[error("key {0} is already trusted")]
    AlreadyTrusted(PublicKey),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    pub key: PublicKey,
    /// A label chosen by whoever trusted the key ("Sample publisher").
    pub name: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustFile {
    keys: Vec<TrustedKey>,
}

/// The keys a home trusts, backed by one file.
#[derive(Debug)]
pub struct TrustStore {
    path: PathBuf,
    file: TrustFile,
}

impl TrustStore {
    /// Opens the store at `path`; a missing file is an empty store.
    pub fn open(path: impl Into<PathBuf>) -> Result<TrustStore, TrustError> {
        let path = path.into();
        let shown = path.display().to_string();
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|source| TrustError::Corrupt { path: shown, source })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TrustFile::default(),
            Err(source) => return Err(TrustError::Io { path: shown, source }),
        };
        Ok(TrustStore { path, file })
    }

    pub fn find(&self, key: &PublicKey) -> Option<&TrustedKey> {
        self.file.keys.iter().find(|k| &k.key == key)
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.file.keys
    }

    pub fn add(&mut self, key: PublicKey, name: &str) -> Result<(), TrustError> {
        if self.find(&key).is_some() {
            return Err(TrustError::AlreadyTrusted(key));
        }
        self.file.keys.push(TrustedKey { key, name: name.to_owned() });
        self.save()
    }

    /// Write to a temporary file, sync, then rename over the old one: a crash
    /// leaves either the old or the new store, never half of one.
    fn save(&self) -> Result<(), TrustError> {
        let io = |source| TrustError::Io { path: self.path.display().to_string(), source };
        let tmp = tmp_path(&self.path);
        let bytes = serde_json::to_vec_pretty(&self.file).expect("trust file serialises");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(&bytes).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}
