//! Imports: many documents written all or nothing, without holding them
//! all in memory or in one sled transaction.
//!
//! An [`Import`] stages its changes in a sled tree of its own
//! (`resident/NAME/staging/N`), keyed like the documents, so the latest
//! change of a document wins and memory stays flat whatever the file's
//! size. Nobody else reads that tree. [`Import::commit`] then:
//!
//! 1. flushes the staged changes to disk;
//! 2. in one transaction, checks the quota, appends the audit entries and
//!    writes a publish marker `publish/N` in the space's counters. This is
//!    the commit point;
//! 3. moves the staged changes into the documents, chunk by chunk, each
//!    chunk one transaction that also records in the marker how far
//!    publishing got (cheaper than removing each staged entry);
//! 4. removes the marker and the staging tree, and flushes.
//!
//! A crash before step 2 leaves a staging tree without marker: it is
//! dropped the next time the home is opened (nothing was imported). A crash
//! after step 2 leaves the marker: the next open finishes step 3 from where
//! it stopped (everything is imported). Dropping an `Import` without
//! committing it discards what it staged.
//!
//! While step 3 runs, another reader of the same space may see part of the
//! import; once `commit` returns, all of it is there.

use std::ops::Bound;

use domicile_manifest::Doctype;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::Transactional;

use crate::audit::AuditEntry;
use crate::docs::{
    abort, check_body, doc_key, parse_doc_key, read_json, stored_doc, Abort, Quota, StoredDoc, Usage, Written,
    QUOTA_KEY, USAGE_KEY,
};
use crate::{decode, encode, Author, Change, DocId, ResidentSpace, Result, StoreError};

/// Staged changes moved into the documents per transaction: large enough
/// to amortise a transaction, small enough to keep its write set modest.
const PUBLISH_CHUNK: usize = 2000;

const MARKER_PREFIX: &str = "publish/";
const PUT: u8 = b'P';
const DELETE: u8 = b'D';

/// What an import staged for one document.
#[derive(Debug, Clone, PartialEq)]
pub enum Staged {
    Put(Value),
    Delete,
}

/// The record of a committed import still being published.
#[derive(Clone, Serialize, Deserialize)]
struct PublishMarker {
    tree: String,
    author: Author,
    at_ms: u64,
    /// The last staged key already in the documents.
    #[serde(default)]
    published_through: Option<Vec<u8>>,
}

/// Changes staged for one atomic import into a resident's space.
pub struct Import {
    space: ResidentSpace,
    number: u64,
    staging: sled::Tree,
    committed: bool,
}

fn marker_key(number: u64) -> String {
    format!("{MARKER_PREFIX}{number:016x}")
}

impl ResidentSpace {
    /// Starts an import: changes staged in it are written to the documents
    /// only by [`Import::commit`], all of them or none.
    pub fn begin_import(&self) -> Result<Import> {
        let number = self.next_seq()?;
        let staging = self.db.open_tree(format!("{}{number:016x}", crate::STAGING_PREFIX))?;
        Ok(Import { space: self.clone(), number, staging, committed: false })
    }

    /// Finishes what a crash interrupted: publishes committed imports,
    /// discards the staging of uncommitted ones. Returns how many imports
    /// were finished and how many discarded.
    pub(crate) fn recover_imports(&self) -> Result<(usize, usize)> {
        let mut published = 0;
        for item in self.meta.scan_prefix(MARKER_PREFIX) {
            let (key, value) = item?;
            let mut marker: PublishMarker = decode("an import's publish marker", &value)?;
            let staging = self.db.open_tree(&marker.tree)?;
            self.publish(&staging, &key, &mut marker)?;
            self.finish_publish(&key, &marker.tree)?;
            published += 1;
        }
        // What is left was never committed.
        let mut discarded = 0;
        for name in self.staging_trees() {
            self.db.drop_tree(&name)?;
            discarded += 1;
        }
        if discarded > 0 {
            self.sync()?;
        }
        Ok((published, discarded))
    }

    /// Step 3: moves every change left in `staging` into the documents.
    fn publish(&self, staging: &sled::Tree, marker_key: &[u8], marker: &mut PublishMarker) -> Result<()> {
        while self.publish_chunk(staging, marker_key, marker)? {}
        Ok(())
    }

    /// Moves the next [`PUBLISH_CHUNK`] staged changes into the documents
    /// and records how far it got, in one transaction. Returns false once
    /// nothing is left.
    fn publish_chunk(&self, staging: &sled::Tree, marker_key: &[u8], marker: &mut PublishMarker) -> Result<bool> {
        let start = match &marker.published_through {
            Some(key) => Bound::Excluded(key.clone()),
            None => Bound::Unbounded,
        };
        let chunk: Vec<(sled::IVec, sled::IVec)> =
            staging.range((start, Bound::Unbounded)).take(PUBLISH_CHUNK).collect::<Result<_, _>>()?;
        let Some((last, _)) = chunk.last() else { return Ok(false) };
        let changes: Vec<Change> = chunk.iter().map(|(k, v)| staged_change(k, v)).collect::<Result<_>>()?;
        let first_seq = self.reserve_seqs_in_memory(changes.len() as u64);
        let last_seq = first_seq + changes.len() as u64 - 1;
        let progress = PublishMarker { published_through: Some(last.to_vec()), ..marker.clone() };
        let trees = [&self.docs, &self.index, &self.changes, &self.meta];
        let _writing = self.writing();
        trees.as_slice().transaction(|t| {
            let written = Written { docs: &t[0], index: &t[1], feed: &t[2] };
            let meta = &t[3];
            let mut usage: Usage = read_json(meta, USAGE_KEY)?;
            for (change, seq) in changes.iter().zip(first_seq..) {
                // A delete of a document that is gone (created and deleted
                // by this import, or deleted since) has nothing left to do.
                self.apply_change(&written, &mut usage, change, seq, &marker.author, marker.at_ms)?;
            }
            meta.insert(USAGE_KEY, encode(&usage))?;
            crate::docs::persist_seq(meta, last_seq)?;
            meta.insert(marker_key, encode(&progress))?;
            Ok::<_, Abort>(())
        })?;
        *marker = progress;
        Ok(true)
    }

    /// Step 4: the import is entirely in the documents.
    fn finish_publish(&self, marker_key: &[u8], tree: &str) -> Result<()> {
        self.meta.remove(marker_key)?;
        self.db.drop_tree(tree)?;
        self.sync()
    }
}

/// Decodes what was staged for one document.
fn decode_staged(value: &[u8]) -> Result<Staged> {
    match value.split_first() {
        Some((&PUT, body)) => Ok(Staged::Put(decode("a staged document", body)?)),
        Some((&DELETE, [])) => Ok(Staged::Delete),
        _ => Err(StoreError::Corrupt("a staged change".into())),
    }
}

/// Decodes one staged entry back into a change.
fn staged_change(key: &[u8], value: &[u8]) -> Result<Change> {
    let (doctype, id) = parse_doc_key(key)?;
    Ok(match decode_staged(value)? {
        Staged::Put(body) => Change::Put { doctype, id, body },
        Staged::Delete => Change::Delete { doctype, id },
    })
}

impl Import {
    /// Checks a change (a body against its doctype's schema) and stages it.
    /// A later change of the same document replaces this one.
    pub fn stage(&mut self, change: &Change) -> Result<()> {
        let (doctype, id, value) = match change {
            Change::Put { doctype, id, body } => {
                let json = check_body(body)?;
                self.space.vocabulary.validate(doctype, body)?;
                (doctype, id, [&[PUT], json.as_slice()].concat())
            }
            Change::Delete { doctype, id } => (doctype, id, vec![DELETE]),
        };
        self.staging.insert(doc_key(doctype, id), value)?;
        Ok(())
    }

    /// What this import staged for a document, if anything.
    pub fn staged(&self, doctype: &Doctype, id: &DocId) -> Result<Option<Staged>> {
        let Some(value) = self.staging.get(doc_key(doctype, id))? else { return Ok(None) };
        decode_staged(&value).map(Some)
    }

    /// Writes everything staged, with `audit`, as described in the module
    /// documentation. On `Err(Limit)` (the quota) nothing was written. An
    /// error after the commit point says so: the import will be completed
    /// when the home is next opened.
    pub fn commit(mut self, author: &Author, at_ms: u64, audit: &[AuditEntry]) -> Result<()> {
        let (key, mut marker) = self.mark_committed(author, at_ms, audit)?;
        let interrupted = |e: StoreError| StoreError::PublishInterrupted(Box::new(e));
        self.space.publish(&self.staging, key.as_bytes(), &mut marker).map_err(interrupted)?;
        self.space.finish_publish(key.as_bytes(), &marker.tree).map_err(interrupted)?;
        // In a cluster an import travels as a snapshot of the whole space.
        self.space.ship_snapshot()
    }

    /// Steps 1 and 2: after this, the import happens even if the process
    /// dies. Returns the marker and its key.
    fn mark_committed(&mut self, author: &Author, at_ms: u64, audit: &[AuditEntry]) -> Result<(String, PublishMarker)> {
        let space = &self.space;
        space.sync()?;
        let growth = match space.quota()? {
            Quota { max_documents: None, max_bytes: None } => None,
            _ => Some(self.growth(author, at_ms)?),
        };
        let tree = String::from_utf8_lossy(&self.staging.name()).into_owned();
        let marker = PublishMarker { tree, author: author.clone(), at_ms, published_through: None };
        let key = marker_key(self.number);
        let _writing = space.writing();
        (&space.meta, &space.audit).transaction(|(meta, log)| {
            if let Some((documents, bytes)) = growth {
                let usage: Usage = read_json(meta, USAGE_KEY)?;
                let quota: Quota = read_json(meta, QUOTA_KEY)?;
                let after = Usage {
                    documents: usage.documents.saturating_add_signed(documents),
                    bytes: usage.bytes.saturating_add_signed(bytes),
                };
                quota.admits(&usage, &after).map_err(abort)?;
            }
            meta.insert(key.as_bytes(), encode(&marker))?;
            crate::audit::append_chained(meta, log, audit)
        })?;
        space.sync()?;
        self.committed = true;
        Ok((key, marker))
    }

    /// How many documents and bytes the import would add (negative when it
    /// removes more than it adds), as `commit` will count them.
    fn growth(&self, author: &Author, at_ms: u64) -> Result<(i64, i64)> {
        let (mut documents, mut bytes) = (0i64, 0i64);
        for item in self.staging.iter() {
            let (key, value) = item?;
            let old = self.space.docs.get(&key)?;
            let old_meta = match &old {
                Some(b) => {
                    documents -= 1;
                    bytes -= b.len() as i64;
                    Some(decode::<StoredDoc>("a document", b)?.meta)
                }
                None => None,
            };
            if let Change::Put { body, .. } = staged_change(&key, &value)? {
                documents += 1;
                bytes += stored_doc(old_meta, &body, author, at_ms).len() as i64;
            }
        }
        Ok((documents, bytes))
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        if !self.committed {
            // Failing here leaves an orphan that the next open discards.
            let _ = self.space.db.drop_tree(self.staging.name());
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::{AuditEntry, Operation, Outcome, Store, Vocabulary};

    fn open(dir: &Path) -> Store {
        Store::open(&dir.join("db"), Arc::new(Vocabulary::builtin())).unwrap()
    }

    fn trip_type() -> Doctype {
        "io.domicile.mobility.trip".parse().unwrap()
    }

    fn trip(i: usize) -> Value {
        let (day, mode) = (1 + i % 28, ["walk", "bike", "car"][i % 3]);
        json!({
            "start": format!("2026-03-{day:02}T08:00:00Z"), "end": format!("2026-03-{day:02}T09:00:00Z"),
            "date": format!("2026-03-{day:02}"), "month": "2026-03",
            "distance_m": i as f64, "duration_s": 60, "mode": mode,
        })
    }

    fn put(i: usize) -> Change {
        Change::Put { doctype: trip_type(), id: format!("t{i:06}").parse().unwrap(), body: trip(i) }
    }

    /// An importer's write of `documents` trips, as the host audits it.
    pub(crate) fn audit(documents: u64) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at_ms: 7,
            app: "org.example.test.importer".parse().unwrap(),
            app_version: "1.0.0".into(),
            operation: Operation::Put,
            doctype: trip_type().to_string(),
            documents,
            outcome: Outcome::Allowed,
            destination: None,
            hash: String::new(),
        }
    }

    fn staging_trees(store: &Store) -> usize {
        let residents = store.residents().unwrap();
        residents.iter().map(|r| store.resident(r).unwrap().staging_trees().len()).sum()
    }

    fn count(space: &ResidentSpace) -> usize {
        space.doctype_counts().unwrap().iter().map(|(_, n)| *n as usize).sum()
    }

    /// More than two chunks, so publishing takes several transactions.
    const N: usize = 2 * PUBLISH_CHUNK + 123;

    #[test]
    fn an_import_is_invisible_until_committed_then_whole_with_the_latest_change_of_each_document() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let me = store.create_resident(&"me".parse().unwrap()).unwrap();
        me.commit(&[put(N + 1)], &Author::Resident, 1, &[]).unwrap();

        let mut import = me.begin_import().unwrap();
        for i in 0..N {
            import.stage(&put(i)).unwrap();
        }
        let again = Change::Put { doctype: trip_type(), id: "t000000".parse().unwrap(), body: trip(9) };
        import.stage(&again).unwrap();
        import.stage(&Change::Delete { doctype: trip_type(), id: "t000001".parse().unwrap() }).unwrap();
        import.stage(&Change::Delete { doctype: trip_type(), id: format!("t{:06}", N + 1).parse().unwrap() }).unwrap();
        let first: DocId = "t000000".parse().unwrap();
        assert_eq!(import.staged(&trip_type(), &first).unwrap(), Some(Staged::Put(trip(9))), "the latest wins");
        assert_eq!(import.staged(&trip_type(), &"t000001".parse().unwrap()).unwrap(), Some(Staged::Delete));
        assert_eq!(me.get(&trip_type(), &first).unwrap(), None, "nothing is visible before the commit");
        assert_eq!(count(&me), 1);

        import.commit(&Author::Resident, 5, &[audit(N as u64)]).unwrap();
        assert_eq!(count(&me), N - 1, "all puts, less the document put then deleted, less the deleted one");
        assert_eq!(me.get(&trip_type(), &first).unwrap().unwrap().body, trip(9));
        assert_eq!(me.get(&trip_type(), &"t000001".parse().unwrap()).unwrap(), None);
        let report = me.verify().unwrap();
        assert!(report.is_consistent(), "{:?}", report.problems);
        assert_eq!(me.changes_since(&trip_type(), 0, usize::MAX).unwrap().len(), 1 + N, "one put + N net changes");
        let log = me.verify_audit().unwrap();
        assert!(log.is_intact() && log.entries == 1, "{:?}", log.problems);
        assert_eq!(staging_trees(&store), 0);
        assert_eq!(me.meta.scan_prefix(MARKER_PREFIX).count(), 0);
    }

    #[test]
    fn an_import_dropped_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let me = store.create_resident(&"me".parse().unwrap()).unwrap();
        let mut import = me.begin_import().unwrap();
        for i in 0..100 {
            import.stage(&put(i)).unwrap();
        }
        let bad = Change::Put { doctype: trip_type(), id: "x".parse().unwrap(), body: json!({ "mode": 3 }) };
        assert!(matches!(import.stage(&bad), Err(StoreError::Invalid(_))), "checked when staged");
        assert_eq!(staging_trees(&store), 1);
        drop(import);
        assert_eq!(staging_trees(&store), 0);
        assert_eq!(count(&me), 0);
        assert_eq!(me.usage().unwrap(), Usage::default());
    }

    #[test]
    fn an_import_over_quota_writes_nothing_and_replacements_are_not_growth() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let me = store.create_resident(&"me".parse().unwrap()).unwrap();
        me.commit(&(0..5).map(put).collect::<Vec<_>>(), &Author::Resident, 1, &[]).unwrap();
        me.set_quota(&Quota { max_documents: Some(10), max_bytes: None }).unwrap();
        let usage = me.usage().unwrap();

        let mut import = me.begin_import().unwrap();
        (0..11).try_for_each(|i| import.stage(&put(i))).unwrap();
        let err = import.commit(&Author::Resident, 2, &[audit(11)]).unwrap_err();
        assert!(matches!(&err, StoreError::Limit(m) if m.contains("11 documents")), "{err}");
        assert_eq!((count(&me), me.usage().unwrap()), (5, usage), "nothing was written");
        assert_eq!(me.verify_audit().unwrap().entries, 0, "nor audited");
        assert_eq!(staging_trees(&store), 0);

        let mut import = me.begin_import().unwrap();
        (0..10).try_for_each(|i| import.stage(&put(i))).unwrap();
        import.commit(&Author::Resident, 2, &[audit(10)]).unwrap();
        assert_eq!(count(&me), 10, "five replaced, five added: exactly the quota");
        assert!(me.verify().unwrap().is_consistent());
    }

    #[test]
    fn a_crash_before_the_commit_point_discards_the_import_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            let me = store.create_resident(&"me".parse().unwrap()).unwrap();
            let mut import = me.begin_import().unwrap();
            (0..N).try_for_each(|i| import.stage(&put(i))).unwrap();
            me.flush().unwrap();
            // The process dies here: nothing cleans up after it.
            import.committed = true;
        }
        let store = open(dir.path());
        let me = store.resident(&"me".parse().unwrap()).unwrap();
        assert_eq!(staging_trees(&store), 0, "the orphan staging is dropped");
        assert_eq!(count(&me), 0);
        assert!(me.verify().unwrap().is_consistent());
    }

    #[test]
    fn a_crash_during_publishing_is_finished_at_the_next_open() {
        let dir = tempfile::tempdir().unwrap();
        let author = Author::App { id: "org.example.test.importer".into(), version: "1.0.0".into() };
        {
            let store = open(dir.path());
            let me = store.create_resident(&"me".parse().unwrap()).unwrap();
            // Another resident's interrupted import is theirs alone.
            store.create_resident(&"other".parse().unwrap()).unwrap();
            let mut import = me.begin_import().unwrap();
            (0..N).try_for_each(|i| import.stage(&put(i))).unwrap();
            let (key, mut marker) = import.mark_committed(&author, 9, &[audit(N as u64)]).unwrap();
            assert!(me.publish_chunk(&import.staging, key.as_bytes(), &mut marker).unwrap());
            me.flush().unwrap();
            assert_eq!(count(&me), PUBLISH_CHUNK, "one chunk is in when the process dies");
        }
        let store = open(dir.path());
        let me = store.resident(&"me".parse().unwrap()).unwrap();
        assert_eq!(count(&me), N, "the rest is published at open");
        let doc = me.get(&trip_type(), &format!("t{:06}", N - 1).parse().unwrap()).unwrap().unwrap();
        assert_eq!((doc.meta.created_by, doc.meta.created_at_ms), (author, 9), "with the import's provenance");
        assert!(me.verify().unwrap().is_consistent(), "indexes and usage are right");
        let log = me.verify_audit().unwrap();
        assert!(log.is_intact() && log.entries == 1, "audited once: {:?}", log.problems);
        assert_eq!(me.changes_since(&trip_type(), 0, usize::MAX).unwrap().len(), N);
        assert_eq!(staging_trees(&store), 0);
        assert_eq!(me.meta.scan_prefix(MARKER_PREFIX).count(), 0);
        let other = store.resident(&"other".parse().unwrap()).unwrap();
        assert_eq!(count(&other), 0);
    }
}
