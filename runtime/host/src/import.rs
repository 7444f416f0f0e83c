//! What an import is given and what it gives back, shared by the runtime
//! that runs importers and the host calls they make: how a file with broken
//! records is treated ([`ImportMode`]), how far it has got
//! ([`ImportProgress`]), and its outcome ([`Imported`], the records
//! [`LeftOut`]).

use serde::Serialize;

/// How far an import is, for a resident watching it: the documents the
/// importer has written so far (staged, not yet committed). Shared with
/// whoever shows it; the import only adds to it.
#[derive(Debug, Default)]
pub struct ImportProgress {
    documents: std::sync::atomic::AtomicU64,
    saving: std::sync::atomic::AtomicBool,
}

impl ImportProgress {
    /// The documents written so far.
    pub fn documents(&self) -> u64 {
        self.documents.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the importer is done and its documents are being saved
    /// (committed with their indexes, all or nothing).
    pub fn saving(&self) -> bool {
        self.saving.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The importer is done: its documents are being saved (the runtime says so).
    pub fn saves(&self) {
        self.saving.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// One more document written (the runtime counts them).
    pub fn wrote(&self) {
        self.documents.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// At most this many records left out of one file: past it the file is
/// not what the importer reads, and the import fails.
pub const MAX_LEFT_OUT: usize = 10_000;

/// How an import treats a file with broken records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImportMode {
    /// One broken record refuses the whole file (the default).
    #[default]
    AllOrNothing,
    /// The valid records are imported, and every broken one is listed.
    ValidRecords,
}

/// A record the importer left out: where it is in the file, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftOut {
    pub location: String,
    pub reason: String,
}

/// What an import gave: the importer's JSON summary, and the records it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub summary: String,
    pub left_out: Vec<LeftOut>,
}
