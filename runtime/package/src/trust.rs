//! The trust store: the keys a home accepts packages and catalogues from.
//! A JSON file, replaced atomically on every change.
//!
//! A key is trusted for one or both roles: `publisher` (it signs packages)
//! and `catalogue` (it signs catalogue indexes, and so vouches for the
//! publishers its catalogue lists). A revoked key stays in the file, marked
//! with the time of revocation, so that the apps it signed can be found and
//! held until the resident decides what to do with them.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{write_atomically, PublicKey};

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read or write the trust store {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "the trust store {path} is corrupt ({source}); restore it from a backup or remove it and add your keys again"
    )]
    Corrupt { path: String, source: serde_json::Error },
    #[error("key {0} is already trusted for that")]
    AlreadyTrusted(PublicKey),
    #[error("key {0} is not in the trust store")]
    UnknownKey(PublicKey),
    #[error("key {0} is already revoked")]
    AlreadyRevoked(PublicKey),
}

/// What a key is trusted to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// App packages.
    Publisher,
    /// Catalogue indexes (and, through them, the publishers they list).
    Catalogue,
    /// Campaigns: questions residents may answer together (their organisers).
    Campaign,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Publisher => "publisher",
            Role::Catalogue => "catalogue",
            Role::Campaign => "campaign",
        })
    }
}

fn publisher_only() -> BTreeSet<Role> {
    [Role::Publisher].into()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedKey {
    pub key: PublicKey,
    /// A label chosen by whoever trusted the key ("Sample publisher").
    pub name: String,
    #[serde(default = "publisher_only")]
    pub roles: BTreeSet<Role>,
    /// When the key was revoked (ms since the epoch); it is trusted for nothing since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<u64>,
}

impl TrustedKey {
    pub fn trusted_as(&self, role: Role) -> bool {
        self.revoked_at_ms.is_none() && self.roles.contains(&role)
    }
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

    /// A store read from `bytes` (as a file at `path` would hold them),
    /// to be written there; refused when they are not a trust store.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: &[u8]) -> Result<TrustStore, TrustError> {
        let path = path.into();
        let file = serde_json::from_slice(bytes)
            .map_err(|source| TrustError::Corrupt { path: path.display().to_string(), source })?;
        Ok(TrustStore { path, file })
    }

    /// The record of a key, trusted or revoked.
    pub fn find(&self, key: &PublicKey) -> Option<&TrustedKey> {
        self.file.keys.iter().find(|k| &k.key == key)
    }

    /// The key, if it is trusted (and not revoked) for `role`.
    pub fn trusted_as(&self, key: &PublicKey, role: Role) -> Option<&TrustedKey> {
        self.find(key).filter(|k| k.trusted_as(role))
    }

    pub fn is_revoked(&self, key: &PublicKey) -> bool {
        self.find(key).is_some_and(|k| k.revoked_at_ms.is_some())
    }

    pub fn keys(&self) -> &[TrustedKey] {
        &self.file.keys
    }

    /// Trusts `key` for `roles`. Adding a revoked key trusts it again.
    pub fn add(&mut self, key: PublicKey, name: &str, roles: &[Role]) -> Result<(), TrustError> {
        let roles: BTreeSet<Role> = if roles.is_empty() { publisher_only() } else { roles.iter().copied().collect() };
        match self.file.keys.iter_mut().find(|k| k.key == key) {
            Some(existing) if existing.revoked_at_ms.is_none() && roles.is_subset(&existing.roles) => {
                return Err(TrustError::AlreadyTrusted(key));
            }
            Some(existing) => {
                if existing.revoked_at_ms.take().is_some() {
                    existing.roles = roles;
                } else {
                    existing.roles.extend(roles);
                }
                if !name.is_empty() {
                    existing.name = name.to_owned();
                }
            }
            None => self.file.keys.push(TrustedKey { key, name: name.to_owned(), roles, revoked_at_ms: None }),
        }
        self.save()
    }

    /// Stops trusting `key` for anything, from `at_ms` on.
    pub fn revoke(&mut self, key: &PublicKey, at_ms: u64) -> Result<(), TrustError> {
        let entry = self.file.keys.iter_mut().find(|k| &k.key == key).ok_or(TrustError::UnknownKey(*key))?;
        if entry.revoked_at_ms.is_some() {
            return Err(TrustError::AlreadyRevoked(*key));
        }
        entry.revoked_at_ms = Some(at_ms);
        self.save()
    }

    fn save(&self) -> Result<(), TrustError> {
        let bytes = serde_json::to_vec_pretty(&self.file).expect("trust file serialises");
        write_atomically(&self.path, &bytes)
            .map_err(|source| TrustError::Io { path: self.path.display().to_string(), source })
    }
}
