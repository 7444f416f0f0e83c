//! From domicile 0.1's single database to a database per resident.
//!
//! domicile 0.1 kept every resident's trees in one sled database (`HOME/store`),
//! named `resident/NAME/KIND`, with a `residents` tree listing them. The
//! upgrade copies each resident into a database of their own, tree by tree
//! and byte for byte (documents, provenance, the chained audit log, apps
//! and their packages, grants, outbox, notifications, counters), so exports
//! and audit heads are exactly what they were.
//!
//! It can be interrupted at any point (a crash, SIGKILL) and run again:
//! each resident's copy is built in `incoming/` and published by one rename
//! once flushed, so a resident is either wholly upgraded or not at all; the
//! residents already published are skipped; the old database is removed
//! only after every resident is published, and it is never written to.

use std::path::Path;

use serde::Serialize;

use crate::spaces::{io_error, is_lock_error, remove_any, sync_dir};
use crate::{ResidentName, ResidentSpace, Result, Store, StoreError, STAGING_PREFIX};

/// The trees each resident had in the single database, as named there.
const LEGACY_TREES: [&str; 10] =
    ["docs", "index", "changes", "meta", "apps", "packages", "audit", "app-log", "outbox", "notifications"];
/// The state of a resident whose restore had not finished: 0.1 removed such
/// residents at the next open, so the upgrade leaves them out.
const LEGACY_RESTORING: &[u8] = b"{\"restoring\":true}";
/// Keys of committed imports' publish markers in a resident's meta tree.
const PUBLISH_MARKER_PREFIX: &[u8] = b"publish/";
/// Entries written to sled at once while copying.
const BATCH: usize = 1000;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradeReport {
    /// Residents copied by this run.
    pub residents_moved: usize,
    /// Residents an interrupted earlier run had already moved.
    pub residents_already_moved: usize,
    /// Residents whose restore a crash had interrupted (removed, as 0.1 did).
    pub unfinished_restores_dropped: usize,
    /// Entries copied, all trees together.
    pub entries: u64,
}

impl Store {
    /// Moves every resident of domicile 0.1's single database in `legacy`
    /// into this store, then removes `legacy`. See the module's
    /// documentation for why an interrupted upgrade loses nothing.
    /// `progress` is told before each resident is copied (index, total).
    pub fn upgrade_single_database(
        &self,
        legacy: &Path,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<UpgradeReport> {
        let db = crate::spaces::open_sled(&sled::Config::new().path(legacy), legacy).map_err(|e| {
            if is_lock_error(&e) {
                StoreError::InUse(legacy.display().to_string())
            } else {
                StoreError::Sled(e)
            }
        })?;
        let mut report = UpgradeReport::default();
        let mut to_move = Vec::new();
        for item in db.open_tree("residents")?.iter() {
            let (name, state) = item?;
            let name: ResidentName = std::str::from_utf8(&name)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError::Corrupt("a resident name in the old database".into()))?;
            if state.as_ref() == LEGACY_RESTORING {
                report.unfinished_restores_dropped += 1;
            } else if self.has_resident(&name) {
                report.residents_already_moved += 1;
            } else {
                to_move.push(name);
            }
        }
        let total = to_move.len();
        for (i, name) in to_move.into_iter().enumerate() {
            progress(i, total);
            let space = self.begin_incoming(&name)?;
            match copy_resident(&db, &name, &space) {
                Ok(entries) => {
                    report.entries += entries;
                    drop(self.publish_incoming(space)?);
                    report.residents_moved += 1;
                }
                Err(e) => {
                    self.discard_incoming(space)?;
                    return Err(e);
                }
            }
        }
        drop(db);
        // Every resident is in its own database: the old one can go, in one
        // rename (a crash after it leaves the files to the next open).
        let removing = self.root().join("removing").join("store-of-domicile-0.1");
        std::fs::rename(legacy, &removing).map_err(io_error(legacy))?;
        if let Some(parent) = legacy.parent() {
            sync_dir(parent)?;
        }
        remove_any(&removing)?;
        Ok(report)
    }
}

/// Copies one resident's trees into `space`; returns how many entries.
fn copy_resident(db: &sled::Db, name: &ResidentName, space: &ResidentSpace) -> Result<u64> {
    let mut entries = 0;
    for kind in LEGACY_TREES {
        let from = db.open_tree(format!("resident/{name}/{kind}"))?;
        let to = space.db.open_tree(kind)?;
        entries += copy_tree(&from, &to, |key, value| {
            if kind == "meta" && key.starts_with(PUBLISH_MARKER_PREFIX) {
                rename_marker_tree(name, value)
            } else {
                Ok(value.to_vec())
            }
        })?;
    }
    // A committed import still being published (its marker, copied above,
    // names its staging tree): that tree comes along, and the next open
    // finishes it. Staging of imports that never committed would be
    // discarded: left behind.
    for marker in space.meta.scan_prefix(PUBLISH_MARKER_PREFIX).values() {
        let marker: serde_json::Value = crate::decode("an import's publish marker", &marker?)?;
        let tree = marker["tree"].as_str().ok_or_else(|| StoreError::Corrupt("an import's publish marker".into()))?;
        let legacy = db.open_tree(format!("resident/{name}/{tree}"))?;
        entries += copy_tree(&legacy, &space.db.open_tree(tree)?, |_, v| Ok(v.to_vec()))?;
    }
    Ok(entries)
}

fn copy_tree(from: &sled::Tree, to: &sled::Tree, value: impl Fn(&[u8], &[u8]) -> Result<Vec<u8>>) -> Result<u64> {
    let mut batch = sled::Batch::default();
    let (mut pending, mut copied) = (0, 0);
    for item in from.iter() {
        let (k, v) = item?;
        batch.insert(k.as_ref(), value(&k, &v)?);
        pending += 1;
        copied += 1;
        if pending == BATCH {
            to.apply_batch(std::mem::take(&mut batch))?;
            pending = 0;
        }
    }
    to.apply_batch(batch)?;
    Ok(copied)
}

/// A publish marker names its staging tree; in the resident's own database
/// the tree's name loses the `resident/NAME/` prefix.
fn rename_marker_tree(name: &ResidentName, value: &[u8]) -> Result<Vec<u8>> {
    let corrupt = || StoreError::Corrupt("an import's publish marker".into());
    let mut marker: serde_json::Value = serde_json::from_slice(value).map_err(|_| corrupt())?;
    let tree = marker["tree"].as_str().ok_or_else(corrupt)?;
    let number = tree.strip_prefix(&format!("resident/{name}/staging/")).ok_or_else(corrupt)?;
    marker["tree"] = format!("{STAGING_PREFIX}{number}").into();
    Ok(crate::encode(&marker))
}
