//! What the operator sets once for every node: the trust store and the
//! catalogues residents install from.
//!
//! - Bucket `domicile-trust`, key `trust`: the bytes of the trust store
//!   (`trust.json`) every node keeps a copy of; changed by compare-and-set
//!   on the key's revision, so that two nodes changing it at once cannot
//!   both succeed. Each version is sealed with a time later than the one
//!   it replaces, and a node refuses one older than the newest it has
//!   seen: a genuine old trust store put back (to undo a revocation) is
//!   refused by every node that saw the newer one, before or after a
//!   restart (the time of the newest is kept in the node's home).
//! - Key `catalogues`: the list of the cluster's catalogues. Each one's
//!   files (the signed index and the packages it lists) are in the object
//!   store `domicile-catalogues`, under the SHA-256 of its index, from which
//!   every node copies them to its own disk. A node verifies a catalogue
//!   against its trust store as it would one on its disk: the cluster
//!   holds bytes, never trust.
//! - Keys `campaign.ID`: each campaign of the cluster, as its organiser
//!   signed it (the file and its signature). A node checks the signature
//!   with the keys it trusts for campaigns before it keeps one, as it
//!   would a campaign an operator gave it.

use std::path::{Path, PathBuf};

use async_nats::jetstream::{kv, object_store};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::bucket::Bucket;
use crate::newest::Newest;
use crate::{decode, nats, refuse, ClusterError, Result};

pub(crate) const SHARED: &str = "domicile-trust";
pub(crate) const CATALOGUE_FILES: &str = "domicile-catalogues";
const TRUST_KEY: &str = "trust";
const CATALOGUES_KEY: &str = "catalogues";
/// Bounds on what a catalogue of the cluster may be: its files (the index,
/// its signature, and a package each at most), each file's size (a package
/// holds a component of 64 MiB at most) and name.
const MAX_CATALOGUE_FILES: usize = 1_000;
const MAX_CATALOGUE_FILE_BYTES: u64 = 65 * 1024 * 1024;
const MAX_FILE_NAME_BYTES: usize = 255;

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

/// The keys of the campaigns: `campaign.` and the campaign's id.
const CAMPAIGN_PREFIX: &str = "campaign.";
/// A campaign's file is at most 64 KiB, its signature 128 hex digits: an
/// entry longer than this is refused before it is decoded.
const MAX_CAMPAIGN_ENTRY_BYTES: usize = 2 * 64 * 1024;

/// A campaign of the cluster, as its organiser signed it: what nodes pass
/// one another, never believed before its signature is checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedCampaign {
    /// Its id, as the key names it.
    #[serde(skip)]
    pub id: String,
    /// The campaign's file (JSON).
    pub campaign: String,
    /// The organiser's signature of it (hexadecimal).
    pub signature: String,
}

impl SharedCampaign {
    /// The campaign an entry `campaign.ID` holds (`value`, opened), or why
    /// it is refused: not a campaign's id, too long, or not such a record.
    pub(crate) fn decode(id: &str, value: &[u8]) -> std::result::Result<SharedCampaign, String> {
        if !is_campaign_id(id) {
            return Err(format!("{:?} is not a campaign's id", truncated(id)));
        }
        if value.len() > MAX_CAMPAIGN_ENTRY_BYTES {
            return Err(format!("{} bytes, more than a campaign may be", value.len()));
        }
        let campaign: SharedCampaign = serde_json::from_slice(value).map_err(|e| e.to_string())?;
        Ok(SharedCampaign { id: id.to_owned(), ..campaign })
    }

    /// The campaign's id an entry's `key` names, if it is a campaign's.
    pub(crate) fn id_of(key: &str) -> Option<&str> {
        key.strip_prefix(CAMPAIGN_PREFIX)
    }
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
    pub(crate) kv: Bucket,
    pub(crate) newest_trust: Newest,
    pub(crate) files: object_store::ObjectStore,
}

impl Shared {
    /// The cluster's trust store, if a node put one.
    pub(crate) async fn trust(&self) -> Result<Option<Versioned<Vec<u8>>>> {
        let Some(entry) = self.kv.entry(TRUST_KEY, "read the trust store").await? else { return Ok(None) };
        if entry.written_ms < self.newest_trust.saw(entry.written_ms, None) {
            return Err(refuse(
                &format!("{SHARED}/{TRUST_KEY}"),
                "older than a trust store this node already saw: an earlier version put back",
            ));
        }
        Ok(Some(Versioned { value: entry.value, revision: entry.revision }))
    }

    /// Puts the trust store: created if `after` is `None`, else changed from
    /// that revision. `Changed` when another node changed it first.
    pub(crate) async fn put_trust(&self, bytes: Vec<u8>, after: Option<u64>) -> Result<u64> {
        // Later than the version it replaces, whatever this node's clock says.
        let written_ms = self.newest_trust.next_ms();
        let revision = put(&self.kv, TRUST_KEY, &bytes, after, written_ms, "keep the trust store").await?;
        self.newest_trust.saw(written_ms, None);
        Ok(revision)
    }

    /// See [`crate::Cluster::heal_trust`].
    pub(crate) async fn heal_trust(&self, bytes: Vec<u8>) -> Result<u64> {
        let raw = self.kv.kv.entry(TRUST_KEY).await.map_err(|e| nats("read the trust store", e))?;
        self.put_trust(bytes, raw.map(|e| e.revision)).await
    }

    pub(crate) async fn catalogues(&self) -> Result<Versioned<Vec<SharedCatalogue>>> {
        let entry = self.kv.entry(CATALOGUES_KEY, "read the catalogues").await?;
        match entry {
            Some(e) => {
                let key = format!("{SHARED}/{CATALOGUES_KEY}");
                let listed: Vec<SharedCatalogue> = decode(&key, &e.value)?;
                // What NATS names is untrusted: an entry naming a path
                // outside its folder, or past the bounds, is refused alone.
                let value = listed
                    .into_iter()
                    .filter(|c| match c.check() {
                        Ok(()) => true,
                        Err(detail) => {
                            refuse(&key, &detail);
                            false
                        }
                    })
                    .collect();
                Ok(Versioned { value, revision: e.revision })
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
            let bytes = serde_json::to_vec(&list).expect("catalogues serialise");
            let after = (listed.revision > 0).then_some(listed.revision);
            match put(&self.kv, CATALOGUES_KEY, &bytes, after, crate::now_ms(), "list a catalogue").await {
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
        let key = format!("{CATALOGUE_FILES}/{}", catalogue.index_sha256);
        catalogue.check().map_err(|detail| refuse(&key, &detail))?;
        for (n, file) in catalogue.files.iter().enumerate() {
            let relative = safe_relative(file).ok_or_else(|| refuse(&key, &format!("the file name {file:?}")))?;
            let object = format!("{}/{file}", catalogue.index_sha256);
            let reader = self.files.get(object.as_str()).await.map_err(|e| nats("fetch a catalogue file", e))?;
            let mut bytes = Vec::new();
            reader
                .take(MAX_CATALOGUE_FILE_BYTES + 1)
                .read_to_end(&mut bytes)
                .await
                .map_err(|e| nats("fetch a catalogue file", e))?;
            if bytes.len() as u64 > MAX_CATALOGUE_FILE_BYTES {
                return Err(refuse(&key, &format!("{file:?} is over {MAX_CATALOGUE_FILE_BYTES} bytes")));
            }
            // The index is the one the catalogue is named by, or it is
            // not this catalogue (its signature is checked by the node).
            if n == 0 && hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)) != catalogue.index_sha256 {
                return Err(refuse(&key, "its index does not have the SHA-256 it is listed under"));
            }
            let path = into.join(relative);
            if let Some(parent) = path.parent() {
                tokio::fs::create_dir_all(parent).await.map_err(|e| nats("write a catalogue file", e))?;
            }
            tokio::fs::write(&path, bytes).await.map_err(|e| nats("write a catalogue file", e))?;
        }
        Ok(())
    }

    /// The campaigns of the cluster whose entries open (sealed by a node)
    /// and decode; those that do not are refused, counted and left out.
    pub(crate) async fn campaigns(&self) -> Result<Vec<SharedCampaign>> {
        let mut keys = self.kv.kv.keys().await.map_err(|e| nats("list the campaigns", e))?;
        let mut ids = Vec::new();
        while let Some(key) = futures::StreamExt::next(&mut keys).await {
            let key = key.map_err(|e| nats("list the campaigns", e))?;
            if let Some(id) = SharedCampaign::id_of(&key) {
                ids.push(id.to_owned());
            }
        }
        ids.sort();
        let mut campaigns = Vec::new();
        for id in ids {
            let key = format!("{CAMPAIGN_PREFIX}{id}");
            let Some(entry) = self.kv.genuine_entry(&key, "read a campaign").await? else { continue };
            match SharedCampaign::decode(&id, &entry.value) {
                Ok(campaign) => campaigns.push(campaign),
                Err(detail) => {
                    refuse(&format!("{SHARED}/{key}"), &detail);
                }
            }
        }
        Ok(campaigns)
    }

    /// Puts a campaign its organiser signed (checked by this node) in the
    /// cluster, in place of any of the same id.
    pub(crate) async fn share_campaign(&self, campaign: &SharedCampaign) -> Result<()> {
        if !is_campaign_id(&campaign.id) {
            return Err(refuse(&format!("{SHARED}/{CAMPAIGN_PREFIX}"), "not a campaign's id"));
        }
        let bytes = serde_json::to_vec(campaign).expect("a campaign serialises");
        self.kv.put(&format!("{CAMPAIGN_PREFIX}{}", campaign.id), &bytes, "share a campaign").await?;
        Ok(())
    }

    /// The shared settings as they change from now on.
    pub(crate) async fn watch(&self) -> Result<SharedWatch> {
        self.kv.kv.watch_all().await.map(SharedWatch).map_err(|e| nats("watch the trust store and catalogues", e))
    }
}

impl SharedCatalogue {
    /// Whether what the entry names stays within bounds: a SHA-256 for a
    /// folder name, a name for people, and files under that folder.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        let hex = |s: &str| s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !hex(&self.index_sha256) {
            return Err(format!("a catalogue's index digest {:?} is not a SHA-256", truncated(&self.index_sha256)));
        }
        if self.name.is_empty() || self.name.len() > 200 || self.name.chars().any(char::is_control) {
            return Err(format!(
                "a catalogue's name {:?} is empty, too long or has control characters",
                truncated(&self.name)
            ));
        }
        if self.files.is_empty() || self.files.len() > MAX_CATALOGUE_FILES {
            return Err(format!("a catalogue lists {} files (1 to {MAX_CATALOGUE_FILES})", self.files.len()));
        }
        match self.files.iter().find(|f| f.len() > MAX_FILE_NAME_BYTES || safe_relative(f).is_none()) {
            Some(file) => {
                Err(format!("a catalogue's file name {:?} leaves its folder or is too long", truncated(file)))
            }
            None => Ok(()),
        }
    }
}

/// What a campaign's id may be (as `domicile_campaign` says): 3 to 100
/// lowercase letters, digits, dots and hyphens, which a key may hold.
fn is_campaign_id(id: &str) -> bool {
    (3..=100).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// At most 80 characters of what an entry said, for a message.
fn truncated(text: &str) -> String {
    text.chars().take(80).collect()
}

/// A relative path of plain names (no `..`, no root, no backslash, no
/// control character): what a catalogue's files may be called.
fn safe_relative(file: &str) -> Option<PathBuf> {
    let path = Path::new(file);
    let plain = !file.is_empty() && !file.contains('\\') && !file.chars().any(char::is_control);
    (plain && path.components().all(|c| matches!(c, std::path::Component::Normal(_)))).then(|| path.to_owned())
}

async fn put(store: &Bucket, key: &str, value: &[u8], after: Option<u64>, at: u64, what: &str) -> Result<u64> {
    let moved = || ClusterError::Changed { what: key.to_owned() };
    match after {
        None => match store.create_at(key, value, at).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Err(moved()),
            Err(e) => Err(nats(what, e)),
        },
        Some(revision) => match store.update_at(key, value, revision, at).await {
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
    Campaigns,
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
                Ok(entry) if SharedCampaign::id_of(&entry.key).is_some() => return Some(SharedChange::Campaigns),
                Ok(_) => continue,
                Err(e) => tracing::warn!(error = %e, "watching the trust store and catalogues"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(index_sha256: &str, files: &[&str]) -> SharedCatalogue {
        SharedCatalogue {
            name: "a catalogue".into(),
            index_sha256: index_sha256.into(),
            files: files.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn a_catalogue_may_name_only_files_under_its_digest() {
        let digest = "ab".repeat(32);
        assert!(listed(&digest, &["index.json", "index.sig", "packages/a-1.0.0.dpkg"]).check().is_ok());
        for (index_sha256, files) in [
            ("../../../../tmp/planted", vec!["index.json"]),
            ("/etc", vec!["index.json"]),
            (&*digest.to_uppercase(), vec!["index.json"]),
            (&digest[..62], vec!["index.json"]),
            (&*digest, vec!["../../../.ssh/authorized_keys"]),
            (&*digest, vec!["/root/.ssh/authorized_keys"]),
            (&*digest, vec!["packages/../../x"]),
            (&*digest, vec!["packages\\..\\x"]),
            (&*digest, vec!["index\njson"]),
            (&*digest, vec![""]),
            (&*digest, vec![]),
        ] {
            let entry = listed(index_sha256, &files);
            assert!(entry.check().is_err(), "{entry:?} passed");
        }
        let too_many: Vec<String> = (0..=MAX_CATALOGUE_FILES).map(|n| format!("p{n}")).collect();
        let entry = SharedCatalogue { files: too_many, ..listed(&digest, &[]) };
        assert!(entry.check().is_err());
        let named = SharedCatalogue { name: "\u{1b}[2J".into(), ..listed(&digest, &["index.json"]) };
        assert!(named.check().is_err(), "a terminal escape in a name");
    }
}
