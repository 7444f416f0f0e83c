//! What an importer tells the resident about the file it reads (WIT
//! `import-report`): the records it left out of a partial import. Leaving
//! a record out is the resident's choice (`ImportMode::ValidRecords`);
//! without it, the importer is told no and fails with the record's error,
//! so a file with a broken record imports nothing.

use serde::Serialize;

use crate::bindings::importer::domicile::app::import_report;
use crate::bindings::types;
use crate::sandbox::Invocation;

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
const MAX_LOCATION: usize = 200;
const MAX_REASON: usize = 500;

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

impl import_report::Host for Invocation {
    fn skip(&mut self, location: String, reason: String) -> crate::data::Reply<()> {
        self.charge_call()?;
        let Some(left_out) = self.left_out.as_mut() else {
            return Ok(Err(types::Error::Denied(
                "the resident imports whole files: a broken record refuses the file".into(),
            )));
        };
        if left_out.len() >= MAX_LEFT_OUT {
            return Ok(Err(types::Error::Limit(format!(
                "more than {MAX_LEFT_OUT} broken records: this is not a file this importer reads"
            ))));
        }
        left_out.push(LeftOut {
            location: location.chars().take(MAX_LOCATION).collect(),
            reason: reason.chars().take(MAX_REASON).collect(),
        });
        Ok(Ok(()))
    }
}
