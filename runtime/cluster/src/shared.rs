//! What the operator sets once for every node: the trust store and the
//! catalogues residents install from.
//!
//! - Bucket `domicile-trust`, key `trust`: the bytes of the trust store
//!   (`trust.json`) every node keeps a copy of; changed by compare-and-set
//!   on the key's revision, so that two nodes changing it at once cannot
//!   both succeed.
//! - Key `catalogues`: the list of the cluster's catalogues. Each one's
//!   files (the signed index and the packages it lists) are in the object
//!   store `domicile-catalogues`, under the SHA-256 of its index, from which
//!   every node copies them to its own disk. A node verifies a catalogue
//!   against its trust store as it would one on its disk: the cluster
//!   holds bytes, never trust.

use std::path::{Path, PathBuf};

use async_nats::jetstream::{kv, object_store};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::{decode, nats, ClusterError, Result};

pub(crate) const SHARED: &str = "domicile-trust";
pub(crate) const CATALOGUE_FILES: &str = "domicile-catalogues";
const TRUST_KEY: &str = "trust";
const CATALOGUES_KEY: &str = "catalogues";

/// A catalogue of the cluster: where its files are, and what they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedCatalogue {
    /// The catalogue's name, as its index gives it.
    pub name: String,
    /// The SHA-256 (hex) of its index: the folder of its files in the
    /// object store, and on each node's disk.
    pub index_sha256: String,
    /// Its files, relative to its folder (the index, its signature, the
    /// packages it lists).
    pub files: Vec<String>,
}

/// A shared value and the revision its next change must match.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: u64,
}

/// The cluster's shared settings, as one node reads and changes them.
#[derive(Clone)]
pub(crate) struct Shared {
    pub(crate) kv: kv::Store,
    pub(crate) files: object_store::ObjectStore,
}

impl Shared {
    /// The cluster's trust store, if a node put one.
    pub(crate) async fn trust(&self) -> Result<Option<Versioned<Vec<u8>>>> {
        let entry = self.kv.entry(TRUST_KEY).await.map_err(|e| nats("read the trust store", e))?;
        Ok(entry
            .filter(|e| e.operation == kv::Operation::Put)
            .map(|e| Versioned { value: e.value.to_vec(), revision: e.revision }))
    }

    /// Puts the trust store: created if `after` is `None`, else changed from
    /// that revision. `Changed` when another node changed it first.
    pub(crate) async fn put_trust(&self, bytes: Vec<u8>, after: Option<u64>) -> Result<u64> {
        put(&self.kv, TRUST_KEY, bytes.into(), after, "keep the trust store").await
    }

    pub(crate) async fn catalogues(&self) -> Result<Versioned<Vec<SharedCatalogue>>> {
        let entry = self.kv.entry(CATALOGUES_KEY).await.map_err(|e| nats("read the catalogues", e))?;
        match entry.filter(|e| e.operation == kv::Operation::Put) {
            Some(e) => {
                Ok(Versioned { value: decode(&format!("{SHARED}/{CATALOGUES_KEY}"), &e.value)?, revision: e.revision })
            }
            None => Ok(Versioned { value: Vec::new(), revision: 0 }),
        }
    }

    /// Copies the files of the catalogue in `dir` (the index, its signature
    /// and `packages`, relative paths the node checked) to the object store,
    /// and lists it, unless the cluster has it already.
    pub(crate) async fn share_catalogue(&self, name: &str, dir: &Path, files: &[String]) -> Result<SharedCatalogue> {
        let index = tokio::fs::read(dir.join(files.first().map_or("index.json", String::as_str)))
            .await
            .map_err(|e| nats("read a catalogue's index", e))?;
        let index_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&index));
        let shared = SharedCatalogue { name: name.to_owned(), index_sha256, files: files.to_vec() };
        loop {
            let listed = self.catalogues().await?;
            if listed.value.iter().any(|c| c.index_sha256 == shared.index_sha256) {
                return Ok(shared);
            }
            for file in files {
                let mut bytes =
                    tokio::fs::File::open(dir.join(file)).await.map_err(|e| nats("read a catalogue file", e))?;
                let object = format!("{}/{file}", shared.index_sha256);
                self.files.put(object.as_str(), &mut bytes).await.map_err(|e| nats("keep a catalogue file", e))?;
            }
            let mut list = listed.value.clone();
            // A newer version of a catalogue of the same name replaces it.
            list.retain(|c| c.name != shared.name);
            list.push(shared.clone());
            let bytes: Bytes = serde_json::to_vec(&list).expect("catalogues serialise").into();
            let after = (listed.revision > 0).then_some(listed.revision);
            match put(&self.kv, CATALOGUES_KEY, bytes, after, "list a catalogue").await {
                Ok(_) => return Ok(shared),
                // Another node listed one at the same time: list again.
                Err(ClusterError::Changed { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Copies a catalogue's files from the object store into `into` (a new
    /// folder); its paths were checked by the node that shared it, and are
    /// checked again here.
    pub(crate) async fn fetch_catalogue(&self, catalogue: &SharedCatalogue, into: &Path) -> Result<()> {
        for file in &catalogue.files {
            let relative = safe_relative(file).ok_or_else(|| ClusterError::Corrupt {
                key: format!("{SHARED}/{CATALOGUES_KEY}"),
                detail: format!("the file name {file:?}"),
            })?;
            let object = format!("{}/{file}", catalogue.index_sha256);
            let mut reader = self.files.get(object.as_str()).await.map_err(|e| nats("fetch a catalogue file", e))?;
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).await.map_err(|e| nats("fetch a catalogue file", e))?;
            let path = into.join(relative);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|e| nats("write a catalogue file", e))?;
            }
            tokio::fs::write(&path, bytes).await.map_err(|e| nats("write a catalogue file", e))?;
        }
        Ok(())
    }

    /// The shared settings as they change from now on.
    pub(crate) async fn watch(&self) -> Result<SharedWatch> {
        self.kv.watch_all().await.map(SharedWatch).map_err(|e| nats("watch the trust store and catalogues", e))
    }
}

/// A relative path of plain names (no `..`, no root): what a catalogue's
/// files may be called.
fn safe_relative(file: &str) -> Option<PathBuf> {
    let path = Path::new(file);
    path.components().all(|c| matches!(c, std::path::Component::Normal(_))).then(|| path.to_owned())
}

async fn put(store: &kv::Store, key: &str, value: Bytes, after: Option<u64>, what: &str) -> Result<u64> {
    let moved = || ClusterError::Changed { what: key.to_owned() };
    match after {
        None => match store.create(key, value).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Err(moved()),
            Err(e) => Err(nats(what, e)),
        },
        Some(revision) => match store.update(key, value, revision).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(moved()),
            Err(e) => Err(nats(what, e)),
        },
    }
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedChange {
    Trust,
    Catalogues,
}

/// The changes of the shared settings, as they happen.
pub struct SharedWatch(kv::Watch);

impl SharedWatch {
    /// The next change; `None` when the watch ended (NATS went away).
    pub async fn next(&mut self) -> Option<SharedChange> {
        loop {
            match futures::StreamExt::next(&mut self.0).await? {
                Ok(entry) if entry.key == TRUST_KEY => return Some(SharedChange::Trust),
                Ok(entry) if entry.key == CATALOGUES_KEY => return Some(SharedChange::Catalogues),
                Ok(_) => continue,
                Err(e) => tracing::warn!(error = %e, "watching the trust store and catalogues"),
            }
        }
    }
}
