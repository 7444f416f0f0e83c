//! Durable document writes in one write cycle.
//!
//! A write touches five trees (documents, indexes, change feed, counters,
//! audit log). As a sled transaction followed by a flush it costs two
//! write-and-sync cycles, since sled writes a batch manifest as its own I/O
//! before the transaction's writes. Here a write is computed first, as the
//! list of key changes it makes, under the space's write lock (so that no
//! other read-modify-write of these trees interleaves); that list is
//! inserted as one record of the `journal` tree and flushed: from then on
//! the write is durable. Its changes are then applied to the trees, and the
//! record removed, without waiting for the disk: the next flush carries
//! them. sled's log is recovered as a prefix, so when a record's removal is
//! on disk all its changes are; a record still there at open is applied
//! again (every change is absolute, so applying twice is applying once) and
//! removed: see [`ResidentSpace::replay_journal`].
//!
//! Every other write of a space's trees is computed the same way
//! ([`ResidentSpace::write`]), so that in a cluster each one can be copied
//! to the cluster as its list of key changes (see [`crate::shipping`])
//! before it is acknowledged. Writes that need not be durable at once
//! (reads' audit entries, app logs) are applied in one sled transaction and
//! travel with the next durable write or flush.

use std::cell::RefCell;
use std::collections::HashMap;

use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::IVec;

use sled::Transactional;

use crate::docs::{abort, decode_seq, persist_seq, Abort, SEQ_KEY};
use crate::{ResidentSpace, Result, StoreError};

/// Where a change goes, by tree.
pub(crate) const DOCS: u8 = 0;
pub(crate) const INDEX: u8 = 1;
pub(crate) const CHANGES: u8 = 2;
pub(crate) const META: u8 = 3;
pub(crate) const AUDIT: u8 = 4;
pub(crate) const APPS: u8 = 5;
pub(crate) const PACKAGES: u8 = 6;
pub(crate) const APP_LOG: u8 = 7;
pub(crate) const OUTBOX: u8 = 8;
pub(crate) const NOTIFICATIONS: u8 = 9;
/// Every tree a write may change, by id.
pub(crate) const TREE_IDS: [u8; 10] =
    [DOCS, INDEX, CHANGES, META, AUDIT, APPS, PACKAGES, APP_LOG, OUTBOX, NOTIFICATIONS];

/// Reading and writing one tree: inside a sled transaction, or staged for
/// the journal.
pub(crate) trait Kv {
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, Abort>;
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), Abort>;
    fn remove(&self, key: &[u8]) -> Result<(), Abort>;
}

impl Kv for TransactionalTree {
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, Abort> {
        Ok(TransactionalTree::get(self, key)?)
    }
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        TransactionalTree::insert(self, key, value)?;
        Ok(())
    }
    fn remove(&self, key: &[u8]) -> Result<(), Abort> {
        TransactionalTree::remove(self, key)?;
        Ok(())
    }
}

/// One key change of a journaled write: `None` removes the key.
pub(crate) struct Op {
    pub(crate) tree: u8,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
}

/// A tree as a journaled write sees it: its own changes first, then the
/// tree; changes are recorded, not written.
pub(crate) struct Staged<'a> {
    tree: &'a sled::Tree,
    id: u8,
    ops: &'a RefCell<Vec<Op>>,
    own: RefCell<HashMap<Vec<u8>, Option<Vec<u8>>>>,
}

impl<'a> Staged<'a> {
    pub(crate) fn new(tree: &'a sled::Tree, id: u8, ops: &'a RefCell<Vec<Op>>) -> Self {
        Staged { tree, id, ops, own: RefCell::default() }
    }

    fn record(&self, key: &[u8], value: Option<Vec<u8>>) {
        self.own.borrow_mut().insert(key.to_vec(), value.clone());
        self.ops.borrow_mut().push(Op { tree: self.id, key: key.to_vec(), value });
    }
}

impl Kv for Staged<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<IVec>, Abort> {
        if let Some(value) = self.own.borrow().get(key) {
            return Ok(value.as_deref().map(IVec::from));
        }
        self.tree.get(key).map_err(|e| abort(StoreError::Sled(e)))
    }
    fn insert(&self, key: &[u8], value: &[u8]) -> Result<(), Abort> {
        self.record(key, Some(value.to_vec()));
        Ok(())
    }
    fn remove(&self, key: &[u8]) -> Result<(), Abort> {
        self.record(key, None);
        Ok(())
    }
}

/// A space's trees as one write sees them: staged, recorded in order.
pub(crate) struct Trees<'a> {
    pub(crate) meta: Staged<'a>,
    pub(crate) audit: Staged<'a>,
    pub(crate) apps: Staged<'a>,
    pub(crate) packages: Staged<'a>,
    pub(crate) app_log: Staged<'a>,
    pub(crate) outbox: Staged<'a>,
    pub(crate) notifications: Staged<'a>,
}

/// When a write must be on disk (and, in a cluster, copied) before it is
/// acknowledged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// Before the write returns.
    Now,
    /// With the next durable write or flush; applied atomically meanwhile.
    NextFlush,
}

/// The error a staged computation ended with.
pub(crate) fn aborted(e: Abort) -> StoreError {
    match e {
        ConflictableTransactionError::Abort(e) => e,
        ConflictableTransactionError::Storage(e) => StoreError::Sled(e),
        // Only sled transactions conflict.
        ConflictableTransactionError::Conflict => {
            StoreError::Corrupt("a write conflicted outside a transaction".into())
        }
    }
}

pub(crate) fn encode_ops(ops: &[Op]) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        out.push(op.tree);
        out.extend_from_slice(&(op.key.len() as u32).to_be_bytes());
        out.extend_from_slice(&op.key);
        match &op.value {
            Some(value) => {
                out.push(1);
                out.extend_from_slice(&(value.len() as u32).to_be_bytes());
                out.extend_from_slice(value);
            }
            None => out.push(0),
        }
    }
    out
}

pub(crate) fn decode_ops(mut bytes: &[u8]) -> Result<Vec<Op>> {
    let corrupt = || StoreError::Corrupt("a journal record".into());
    let mut take = |n: usize| -> Result<&[u8]> {
        let (head, rest) = bytes.split_at_checked(n).ok_or_else(corrupt)?;
        bytes = rest;
        Ok(head)
    };
    let mut ops = Vec::new();
    loop {
        let Ok(tree) = take(1) else { break };
        let tree = tree[0];
        let len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| corrupt())?) as usize;
        let key = take(len)?.to_vec();
        let value = match take(1)?[0] {
            0 => None,
            1 => {
                let len = u32::from_be_bytes(take(4)?.try_into().map_err(|_| corrupt())?) as usize;
                Some(take(len)?.to_vec())
            }
            _ => return Err(corrupt()),
        };
        ops.push(Op { tree, key, value });
    }
    Ok(ops)
}

impl ResidentSpace {
    pub(crate) fn tree_of(&self, id: u8) -> Result<&sled::Tree> {
        Ok(match id {
            DOCS => &self.docs,
            INDEX => &self.index,
            CHANGES => &self.changes,
            META => &self.meta,
            AUDIT => &self.audit,
            APPS => &self.apps,
            PACKAGES => &self.packages,
            APP_LOG => &self.app_log,
            OUTBOX => &self.outbox,
            NOTIFICATIONS => &self.notifications,
            _ => return Err(StoreError::Corrupt("a journal record names no tree".into())),
        })
    }

    pub(crate) fn apply(&self, ops: &[Op]) -> Result<()> {
        for op in ops {
            let tree = self.tree_of(op.tree)?;
            match &op.value {
                // The counter only grows.
                Some(value) if op.tree == META && op.key == SEQ_KEY.as_bytes() => {
                    self.raise_stored_seq(decode_seq(Some(value)))?;
                }
                Some(value) => {
                    tree.insert(&op.key, value.as_slice())?;
                }
                None => {
                    tree.remove(&op.key)?;
                }
            }
        }
        Ok(())
    }

    /// Computes a write on the space's trees under its write lock, then
    /// makes it happen: durably now (one journal record and one flush, and
    /// in a cluster a copy the cluster acknowledged first), or atomically
    /// and durably with the next flush. An `Err` from `compute` writes
    /// nothing.
    pub(crate) fn write<T>(
        &self,
        durability: Durability,
        compute: impl FnOnce(&Trees<'_>) -> Result<T, Abort>,
    ) -> Result<T> {
        let _writing = self.writing();
        let ops = RefCell::new(Vec::new());
        let staged = |tree, id| Staged::new(tree, id, &ops);
        let trees = Trees {
            meta: staged(&self.meta, META),
            audit: staged(&self.audit, AUDIT),
            apps: staged(&self.apps, APPS),
            packages: staged(&self.packages, PACKAGES),
            app_log: staged(&self.app_log, APP_LOG),
            outbox: staged(&self.outbox, OUTBOX),
            notifications: staged(&self.notifications, NOTIFICATIONS),
        };
        let value = compute(&trees).map_err(aborted)?;
        drop(trees);
        match durability {
            Durability::Now => self.journal_and_apply(ops.into_inner())?,
            Durability::NextFlush => self.apply_atomically(ops.into_inner())?,
        }
        Ok(value)
    }

    /// Applies a computed write in one sled transaction (atomic, durable
    /// with the next flush); in a cluster it is copied with the next
    /// durable write or flush. Called with the space's write lock held.
    fn apply_atomically(&self, ops: Vec<Op>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let trees: Vec<&sled::Tree> = TREE_IDS.iter().map(|id| self.tree_of(*id)).collect::<Result<_>>()?;
        trees.as_slice().transaction(|t| {
            for op in &ops {
                let tree = &t[usize::from(op.tree)];
                match &op.value {
                    Some(value) if op.tree == META && op.key == SEQ_KEY.as_bytes() => {
                        persist_seq(tree, decode_seq(Some(value)))?;
                    }
                    Some(value) => {
                        tree.insert(op.key.as_slice(), value.as_slice())?;
                    }
                    None => {
                        tree.remove(op.key.as_slice())?;
                    }
                }
            }
            Ok::<_, Abort>(())
        })?;
        self.keep_unshipped(ops);
        Ok(())
    }

    /// Makes a computed write durable (one record, one flush), then applies
    /// it. In a cluster the write is copied to the cluster first, and not
    /// made at all when the cluster does not take it. Called with the
    /// space's write lock held.
    pub(crate) fn journal_and_apply(&self, mut ops: Vec<Op>) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        if let Some(position) = self.ship(&ops)? {
            ops.push(crate::shipping::shipped_op(position));
        }
        let key = self.open.journal_seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst).to_be_bytes();
        self.open.journal.insert(key, encode_ops(&ops))?;
        self.sync()?;
        // Durable from here: a failure now is finished at the next open.
        self.apply(&ops)
            .and_then(|()| Ok(self.open.journal.remove(key).map(drop)?))
            .map_err(|e| StoreError::ApplyInterrupted(Box::new(e)))
    }

    /// Applies the writes a crash left in the journal, oldest first. Only
    /// when the database is opened: no write of this process has started.
    pub(crate) fn replay_journal(&self) -> Result<usize> {
        let mut replayed = 0;
        for item in self.open.journal.iter() {
            let (key, record) = item?;
            self.apply(&decode_ops(&record)?)?;
            self.open.journal.remove(key)?;
            replayed += 1;
        }
        if replayed > 0 {
            self.sync()?;
            // The counter this process keeps was read before the replay
            // moved the stored one on.
            let stored = decode_seq(self.meta.get(SEQ_KEY)?.as_deref());
            self.open.seq.fetch_max(stored, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(replayed)
    }

    /// The space's write lock: every read-modify-write of the documents,
    /// indexes, feed, counters or audit log holds it, so a journaled write
    /// computes on a state nobody changes before it is applied. Each
    /// write marks the resident for a look at their triggers, before and
    /// after it (see [`crate::wakes`]).
    pub(crate) fn writing(&self) -> Writing<'_> {
        let guard = self.write_lock();
        self.open.wakes.mark(&self.name);
        Writing { space: self, _guard: guard }
    }

    /// The write lock alone, without a mark.
    pub(crate) fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.open.writing.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The space's write lock while a write is under way: see
/// [`ResidentSpace::writing`].
pub(crate) struct Writing<'a> {
    space: &'a ResidentSpace,
    _guard: std::sync::MutexGuard<'a, ()>,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.space.open.writes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Again once written: a look that settled the mark between the
        // two did not see this write.
        self.space.open.wakes.mark(&self.space.name);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::import::tests::audit;
    use crate::{Author, Change, Store, Vocabulary};

    fn trip(day: u32) -> serde_json::Value {
        json!({
            "start": format!("2026-03-{day:02}T08:00:00Z"), "end": format!("2026-03-{day:02}T09:00:00Z"),
            "date": format!("2026-03-{day:02}"), "month": "2026-03",
            "distance_m": 1000 * day, "duration_s": 600, "mode": "bike",
        })
    }

    fn put(day: u32) -> Change {
        Change::Put {
            doctype: "io.domicile.mobility.trip".parse().unwrap(),
            id: format!("t{day}").parse().unwrap(),
            body: trip(day),
        }
    }

    /// A write whose record reached the disk is there after a crash,
    /// whether none, some or all of its changes were applied: replaying it
    /// at open is idempotent, and the store checks out.
    #[test]
    fn a_write_on_disk_is_completed_at_open_however_far_it_was_applied() {
        for applied in [0usize, 3, usize::MAX] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            {
                let store = Store::open(&path, Arc::new(Vocabulary::builtin())).unwrap();
                let me = store.create_resident(&"me".parse().unwrap()).unwrap();
                me.commit(&[put(1)], &Author::Resident, 5, &[]).unwrap();
                let _writing = me.writing();
                let ops = me.compute_commit(&[put(2), put(3)], &Author::Resident, 6, &[audit(2)]).unwrap();
                // The process dies after the record is durable and `applied`
                // of its changes are written.
                me.open.journal.insert(9u64.to_be_bytes(), encode_ops(&ops)).unwrap();
                me.apply(&ops[..applied.min(ops.len())]).unwrap();
                me.flush().unwrap();
            }
            let store = Store::open(&path, Arc::new(Vocabulary::builtin())).unwrap();
            let me = store.resident(&"me".parse().unwrap()).unwrap();
            assert_eq!(me.open.journal.len(), 0, "replayed and removed");
            assert_eq!(me.doctype_counts().unwrap(), vec![("io.domicile.mobility.trip".to_owned(), 3)], "{applied}");
            assert!(me.verify().unwrap().is_consistent(), "indexes and usage are right ({applied} applied)");
            let chain = me.verify_audit().unwrap();
            assert!(chain.is_intact() && chain.entries == 1, "{:?}", chain.problems);
            let feed = me.changes_since(&"io.domicile.mobility.trip".parse().unwrap(), 0, 10).unwrap();
            assert_eq!(feed.iter().map(|c| c.seq).collect::<Vec<_>>(), [1, 2, 3]);
            // And the space carries on from there.
            me.commit(&[put(4)], &Author::Resident, 8, &[]).unwrap();
            assert_eq!(me.changes_since(&"io.domicile.mobility.trip".parse().unwrap(), 3, 10).unwrap()[0].seq, 4);
        }
    }

    #[test]
    fn a_corrupt_journal_record_is_reported_not_applied() {
        assert!(decode_ops(&[DOCS, 0, 0, 0, 9, b'k']).is_err());
        assert!(decode_ops(&[DOCS, 0, 0, 0, 1, b'k', 7]).is_err());
        assert_eq!(decode_ops(&encode_ops(&[Op { tree: META, key: b"k".to_vec(), value: None }])).unwrap().len(), 1);
    }
}
