//! The personal data store of domicile, on sled.
//!
//! One sled database per home; inside it, each resident has their own set of
//! trees (documents, indexes, change feed, counters, installed apps, audit
//! log, app log, outbox, notifications), named after the resident. A [`ResidentSpace`] is opened
//! for one resident and has no way to name another's trees, so isolation
//! does not depend on every caller remembering a prefix.
//!
//! Durability contract: a write is acknowledged (the function returns `Ok`)
//! only after sled has flushed it to disk. A document write, its index
//! entries, its change-feed record, the usage counters and its audit entry
//! are committed in one transaction.
//!
//! Documents are checked against their doctype's JSON Schema
//! ([`Vocabulary`]) before anything is written.

mod apps;
mod audit;
mod check;
mod docs;
mod export;
mod field;
mod import;
mod index;
mod names;
mod outbox;
mod query;
mod restore;
mod selector;
mod vocabulary;

use std::path::Path;
use std::sync::Arc;

pub use apps::{Hold, InstalledApp, PackageBytes};
pub use audit::{AppLogEntry, AuditCheck, AuditEntry, AuditFilter, AuditSummary, Operation, Outcome};
pub use check::CheckReport;
pub use docs::{Author, Change, ChangeOp, ChangeRecord, DocId, Document, Meta, Quota, Usage, MAX_DOC_BYTES};
pub use export::{ExportSummary, EXPORT_FORMAT_VERSION};
pub use field::FieldPath;
pub use import::{Import, Staged};
pub use names::ResidentName;
pub use outbox::{
    Notification, OutboxItem, OutboxStatus, MAX_NOTIFICATION_BODY, MAX_NOTIFICATION_TITLE, MAX_PAYLOAD_BYTES,
};
pub use query::{Query, QueryCursor, Sort};
pub use restore::{AppNote, AppRefusal, PackageVetting, RestoreReport, VettedApp};
pub use selector::Selector;
pub use vocabulary::{DoctypeDef, Vocabulary};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("the store {0} is in use by another domicile process (an app still running, or a server); try again when it has finished")]
    InUse(String),
    #[error("the store holds a record it cannot read ({0}); it may have been modified outside domicile")]
    Corrupt(String),
    #[error("no resident named `{0}` in this home; list them with `domicile resident list`")]
    UnknownResident(String),
    #[error("resident `{0}` already exists")]
    ResidentExists(String),
    #[error("no app `{0}` is installed; see `domicile apps`")]
    UnknownApp(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Limit(String),
    #[error("the import is committed but could not be fully written ({0}); it will be completed the next time the home is opened")]
    PublishInterrupted(Box<StoreError>),
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

const RESIDENTS_TREE: &str = "residents";
/// The value of a resident in the residents tree.
const RESIDENT: &[u8] = b"{}";
/// The value of a resident whose restore has not finished.
const RESTORING: &[u8] = b"{\"restoring\":true}";
const RESIDENT_TREES: [&str; 10] =
    ["docs", "index", "changes", "meta", "apps", "packages", "audit", "app-log", "outbox", "notifications"];

fn tree_name(resident: &ResidentName, kind: &str) -> String {
    format!("resident/{resident}/{kind}")
}

/// Imports' staging trees are `resident/NAME/staging/N`.
const STAGING: &str = "/staging/";

fn is_staging_tree(name: &[u8]) -> bool {
    name.windows(STAGING.len()).any(|w| w == STAGING.as_bytes())
}

/// The start of the name of every staging tree of a resident's imports.
fn staging_prefix(resident: &ResidentName) -> String {
    tree_name(resident, &STAGING[1..])
}

/// A home's database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    vocabulary: Arc<Vocabulary>,
    app_cache: Arc<apps::AppCache>,
}

impl Store {
    /// Opens (or creates) the database in `dir`, checking documents against
    /// `vocabulary`.
    pub fn open(dir: &Path, vocabulary: Arc<Vocabulary>) -> Result<Store> {
        let db = sled::Config::new().path(dir).open().map_err(|e| match e {
            // sled 0.34 holds an exclusive lock on the database while it is
            // open, and reports a taken lock only in the message of an
            // `Other` I/O error.
            sled::Error::Io(io)
                if io.kind() == std::io::ErrorKind::WouldBlock
                    || io.to_string().starts_with("could not acquire lock") =>
            {
                StoreError::InUse(dir.display().to_string())
            }
            other => StoreError::Sled(other),
        })?;
        let store = Store { db, vocabulary, app_cache: Arc::default() };
        store.remove_unfinished_restores()?;
        store.recover_imports()?;
        Ok(store)
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// Makes every write of every resident so far durable.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// Finishes the imports a crash interrupted, in every resident's space.
    /// Only at open: sled's lock guarantees no import of another process is
    /// running, and none of this process has started yet.
    fn recover_imports(&self) -> Result<()> {
        // An interrupted import always left its staging tree (a marker is
        // removed before its tree), so a home without one has nothing to
        // recover and opens no resident's trees here.
        let staging: Vec<sled::IVec> = self.db.tree_names().into_iter().filter(|t| is_staging_tree(t)).collect();
        if staging.is_empty() {
            return Ok(());
        }
        for name in self.residents()? {
            if !staging.iter().any(|t| t.starts_with(staging_prefix(&name).as_bytes())) {
                continue;
            }
            let (published, discarded) = self.space(&name)?.recover_imports()?;
            if published + discarded > 0 {
                tracing::warn!(
                    published,
                    discarded,
                    "imports interrupted by a crash: the committed ones were completed, the others discarded"
                );
            }
        }
        Ok(())
    }

    pub fn create_resident(&self, name: &ResidentName) -> Result<ResidentSpace> {
        self.register_resident(name, RESIDENT)
    }

    /// A resident being restored: removed at the next open if the restore
    /// does not finish (a crash must not leave half of an archive behind).
    fn create_resident_for_restore(&self, name: &ResidentName) -> Result<ResidentSpace> {
        self.register_resident(name, RESTORING)
    }

    fn finish_restore(&self, name: &ResidentName) -> Result<()> {
        self.db.open_tree(RESIDENTS_TREE)?.insert(name.as_str(), RESIDENT)?;
        self.db.flush()?;
        Ok(())
    }

    fn register_resident(&self, name: &ResidentName, state: &[u8]) -> Result<ResidentSpace> {
        let residents = self.db.open_tree(RESIDENTS_TREE)?;
        let created = residents.compare_and_swap(name.as_str(), None as Option<&[u8]>, Some(state))?;
        if created.is_err() {
            return Err(StoreError::ResidentExists(name.to_string()));
        }
        self.db.flush()?;
        self.space(name)
    }

    /// Removes the residents whose restore a crash interrupted. Only at
    /// open, for the same reason as [`recover_imports`](Self::recover_imports).
    fn remove_unfinished_restores(&self) -> Result<()> {
        let residents = self.db.open_tree(RESIDENTS_TREE)?;
        let unfinished: Vec<sled::IVec> = residents
            .iter()
            .filter_map(|item| item.ok().filter(|(_, state)| state.as_ref() == RESTORING).map(|(name, _)| name))
            .collect();
        for name in unfinished {
            let name: ResidentName = std::str::from_utf8(&name)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError::Corrupt("a resident name".into()))?;
            tracing::warn!("a restore was interrupted by a crash: the half-restored resident was removed");
            self.remove_resident(&name)?;
        }
        Ok(())
    }

    pub fn residents(&self) -> Result<Vec<ResidentName>> {
        let residents = self.db.open_tree(RESIDENTS_TREE)?;
        residents
            .iter()
            .keys()
            .map(|k| {
                let k = k?;
                std::str::from_utf8(&k)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt("a resident name".into()))
            })
            .collect()
    }

    /// Opens an existing resident's space.
    pub fn resident(&self, name: &ResidentName) -> Result<ResidentSpace> {
        if !self.db.open_tree(RESIDENTS_TREE)?.contains_key(name.as_str())? {
            return Err(StoreError::UnknownResident(name.to_string()));
        }
        self.space(name)
    }

    /// Deletes a resident and everything of theirs.
    pub fn remove_resident(&self, name: &ResidentName) -> Result<()> {
        for kind in RESIDENT_TREES {
            self.db.drop_tree(tree_name(name, kind))?;
        }
        let staging = staging_prefix(name);
        for tree in self.db.tree_names().into_iter().filter(|t| t.starts_with(staging.as_bytes())) {
            self.db.drop_tree(tree)?;
        }
        self.db.open_tree(RESIDENTS_TREE)?.remove(name.as_str())?;
        self.db.flush()?;
        Ok(())
    }

    fn space(&self, name: &ResidentName) -> Result<ResidentSpace> {
        let tree = |kind: &str| self.db.open_tree(tree_name(name, kind));
        Ok(ResidentSpace {
            name: name.clone(),
            db: self.db.clone(),
            vocabulary: self.vocabulary.clone(),
            app_cache: self.app_cache.clone(),
            docs: tree("docs")?,
            index: tree("index")?,
            changes: tree("changes")?,
            meta: tree("meta")?,
            apps: tree("apps")?,
            packages: tree("packages")?,
            audit: tree("audit")?,
            app_log: tree("app-log")?,
            outbox: tree("outbox")?,
            notifications: tree("notifications")?,
        })
    }
}

/// One resident's data. Every method acts on this resident only.
#[derive(Clone)]
pub struct ResidentSpace {
    name: ResidentName,
    db: sled::Db,
    vocabulary: Arc<Vocabulary>,
    app_cache: Arc<apps::AppCache>,
    docs: sled::Tree,
    index: sled::Tree,
    changes: sled::Tree,
    /// Counters: the sequence, usage, quota.
    meta: sled::Tree,
    apps: sled::Tree,
    packages: sled::Tree,
    audit: sled::Tree,
    app_log: sled::Tree,
    /// What apps asked to send out, and what became of it.
    outbox: sled::Tree,
    notifications: sled::Tree,
}

impl ResidentSpace {
    pub fn resident(&self) -> &ResidentName {
        &self.name
    }

    /// Makes every write so far durable (reads' audit entries included).
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// The next number of this resident's sequence (new ids, audit log,
    /// change feed): strictly increasing, and carried over by export/restore.
    fn next_seq(&self) -> Result<u64> {
        self.reserve_seqs(1)
    }

    /// `n` consecutive numbers of the sequence; returns the first.
    fn reserve_seqs(&self, n: u64) -> Result<u64> {
        let corrupt = || StoreError::Corrupt("the sequence counter".into());
        let next = self.meta.update_and_fetch(docs::SEQ_KEY, |old| {
            let last = old.and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes);
            Some(last.saturating_add(n).to_be_bytes().to_vec())
        })?;
        let bytes = next.ok_or_else(corrupt)?;
        let last = u64::from_be_bytes(bytes.as_ref().try_into().map_err(|_| corrupt())?);
        Ok(last + 1 - n)
    }

    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("store records always serialise")
}

#[cfg(test)]
mod tests;
