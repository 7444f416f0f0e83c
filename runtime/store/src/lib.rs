//! The personal data store of domicile, on sled.
//!
//! A home's store is a directory with one sled database per resident (see
//! [`Store`] for the layout), opened when the resident is first needed and
//! closed again when idle, so that a resident costs the same whatever the
//! number of others. A [`ResidentSpace`] holds one resident's database and
//! has no way to name another's, so isolation does not depend on every
//! caller remembering a prefix. [`Store::upgrade_single_database`] moves a
//! home of domicile 0.1 (one database holding every resident's trees) into
//! this layout.
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
mod journal;
mod names;
mod outbox;
mod query;
mod restore;
mod selector;
mod shipping;
mod spaces;
mod triggers;
mod upgrade;
mod vocabulary;
mod wakes;

use std::sync::Arc;

pub use apps::{Hold, InstalledApp, PackageBytes};
pub use audit::{AppLogEntry, AuditCheck, AuditEntry, AuditFilter, AuditSummary, Operation, Outcome};
pub use check::CheckReport;
pub use docs::{Author, Change, ChangeOp, ChangeRecord, DocId, Document, Meta, Quota, Usage, MAX_DOC_BYTES};
pub use export::{ExportSummary, EXPORT_FORMAT_VERSION};
pub use field::FieldPath;
pub use import::{Import, Staged};
pub use names::{is_short_name, ResidentName};
pub use outbox::{
    Notification, OutboxItem, OutboxStatus, MAX_NOTIFICATION_BODY, MAX_NOTIFICATION_TITLE, MAX_PAYLOAD_BYTES,
};
pub use query::{Query, QueryCursor, Sort};
pub use restore::{AppNote, AppRefusal, PackageVetting, RestoreReport, VettedApp};
pub use selector::Selector;
pub use shipping::Shipper;
pub use spaces::{space_config, Store, StoreOptions, SPACE_SEGMENT_BYTES};
pub use triggers::{Claim, TriggerLook, TriggerState};
pub use upgrade::UpgradeReport;
pub use vocabulary::{DoctypeDef, Vocabulary};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Sled(#[from] sled::Error),
    #[error("the store {0} is in use by another domicile process (an app still running, or a server); try again when it has finished")]
    InUse(String),
    #[error(
        "resident `{0}` is in use (an app is running or an export is being written); try again when it has finished"
    )]
    ResidentBusy(String),
    #[error("the store's directory {path} cannot be used: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the store holds a record it cannot read ({0}); it may have been modified outside domicile")]
    Corrupt(String),
    #[error("no resident named `{0}` in this home")]
    UnknownResident(String),
    #[error("resident `{0}` already exists")]
    ResidentExists(String),
    #[error("no app `{0}` is installed")]
    UnknownApp(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Limit(String),
    #[error("the import is committed but could not be fully written ({0}); it will be completed the next time the home is opened")]
    PublishInterrupted(Box<StoreError>),
    #[error("the cluster did not keep a copy of this write ({0}), so it was not made; try again in a moment")]
    NotShipped(String),
    #[error("the change is made on this node, but the cluster has no copy of it yet ({0}); it is copied with the space's next write")]
    SnapshotNotShipped(String),
    #[error("the write is on disk but could not be fully applied ({0}); it will be completed the next time the space is opened")]
    ApplyInterrupted(Box<StoreError>),
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

/// Imports' staging trees are `staging/N` in the resident's database; a
/// restore keeps its working tree there too.
const STAGING_PREFIX: &str = "staging/";

/// One resident's data. Every method acts on this resident only.
#[derive(Clone)]
pub struct ResidentSpace {
    name: ResidentName,
    vocabulary: Arc<Vocabulary>,
    app_cache: Arc<apps::AppCache>,
    /// Keeps the database open while this handle lives (see [`Store`]).
    open: Arc<spaces::OpenSpace>,
    db: sled::Db,
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

    /// Makes every write so far durable (reads' audit entries included),
    /// and in a cluster copies to it those not yet copied.
    pub fn flush(&self) -> Result<()> {
        self.ship_pending()?;
        self.sync()
    }

    /// Puts every write so far on this node's disk.
    pub(crate) fn sync(&self) -> Result<()> {
        self.db.flush()?;
        Ok(())
    }

    /// The next number of this resident's sequence (new ids, audit log,
    /// change feed): strictly increasing, and carried over by export/restore.
    fn next_seq(&self) -> Result<u64> {
        self.reserve_seqs(1)
    }

    /// `n` consecutive numbers of the sequence; returns the first. The
    /// counter is written to the store (durable with the next flush).
    fn reserve_seqs(&self, n: u64) -> Result<u64> {
        let first = self.reserve_seqs_in_memory(n);
        self.raise_stored_seq(first + n - 1)?;
        Ok(first)
    }

    /// Moves the stored counter on to `last`, never back: numbers taken
    /// meanwhile by another write are never taken back.
    fn raise_stored_seq(&self, last: u64) -> Result<()> {
        self.meta.fetch_and_update(docs::SEQ_KEY, |stored| {
            Some(docs::decode_seq(stored).max(last).to_be_bytes().to_vec())
        })?;
        // And the counter this process takes numbers from: a space brought
        // up to date from a cluster's log while open must not hand out
        // again the numbers its records took.
        self.open.seq.fetch_max(last, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// `n` consecutive numbers of the sequence, taken from the counter this
    /// process keeps for the open database. The caller writes the counter
    /// in the transaction that uses them ([`docs::persist_seq`]): a
    /// document write then costs one write cycle less, since sled writes
    /// whatever is pending as its own I/O before a transaction. Numbers
    /// taken by a write that fails are never used by anything durable, so
    /// reusing them after a restart is harmless.
    pub(crate) fn reserve_seqs_in_memory(&self, n: u64) -> u64 {
        self.open.seq.fetch_add(n, std::sync::atomic::Ordering::SeqCst) + 1
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
