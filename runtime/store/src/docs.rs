//! Documents: JSON objects stored under `doctype NUL id`, with provenance.
//!
//! Every write goes through [`ResidentSpace::commit`], which first checks
//! each body against its doctype's schema, then in one sled transaction
//! updates the documents, their index entries, the change feed, the
//! resident's usage counters (refusing what would exceed the quota) and the
//! audit log, then flushes. So an acknowledged write is on disk with everything that
//! describes it, and an index never points at a document that is not there.

use domicile_manifest::Doctype;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::ConflictableTransactionError;

use crate::audit::AuditEntry;
use crate::journal::{aborted, Kv, Staged, AUDIT, CHANGES, DOCS, INDEX, META};
use crate::{decode, encode, index, ResidentSpace, Result, StoreError};

/// The largest document body accepted, as JSON text.
pub const MAX_DOC_BYTES: usize = 1024 * 1024;

domicile_manifest::checked_string!(
    /// A document id: 1 to 200 characters, no control characters.
    DocId, StoreError, |s| {
        if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "invalid document id `{}`: use 1 to 200 characters without control characters",
                s.chars().take(40).collect::<String>().escape_debug()
            )));
        }
        Ok(())
    }
);

/// Who wrote a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Author {
    /// An installed app, at a version.
    App { id: String, version: String },
    /// The resident, through the CLI or the web UI.
    Resident,
}

/// Provenance of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub created_at_ms: u64,
    pub created_by: Author,
    pub updated_at_ms: u64,
    pub updated_by: Author,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub doctype: Doctype,
    pub id: DocId,
    pub body: Value,
    pub meta: Meta,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct StoredDoc {
    pub(crate) body: Value,
    pub(crate) meta: Meta,
}

/// One write of a set committed together.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Put { doctype: Doctype, id: DocId, body: Value },
    Delete { doctype: Doctype, id: DocId },
}

/// One entry of a doctype's change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub seq: u64,
    pub doctype: Doctype,
    pub id: DocId,
    pub op: ChangeOp,
    pub at_ms: u64,
    pub by: Author,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeOp {
    Put,
    Delete,
}

/// How much a resident stores, and how much they may.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub documents: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub max_documents: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl Quota {
    /// Whether `after` may follow `before`. A quota only stops growth:
    /// deleting stays possible over quota.
    pub(crate) fn admits(&self, before: &Usage, after: &Usage) -> Result<()> {
        if let Some(max) = self.max_documents.filter(|&m| after.documents > m && after.documents > before.documents) {
            return Err(StoreError::Limit(format!(
                "quota exceeded: this would make {} documents, over the resident's limit of {max}; nothing was written",
                after.documents
            )));
        }
        if let Some(max) = self.max_bytes.filter(|&m| after.bytes > m && after.bytes > before.bytes) {
            return Err(StoreError::Limit(format!(
                "quota exceeded: this would store {} bytes, over the resident's limit of {max}; nothing was written",
                after.bytes
            )));
        }
        Ok(())
    }
}

pub(crate) const USAGE_KEY: &str = "usage";
pub(crate) const QUOTA_KEY: &str = "quota";
pub(crate) const SEQ_KEY: &str = "seq";

/// The stored sequence counter (the last number taken), 0 when none.
pub(crate) fn decode_seq(stored: Option<&[u8]>) -> u64 {
    stored.and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
}

/// Records, with the write that took them, that the sequence reached `last`.
pub(crate) fn persist_seq(meta: &dyn Kv, last: u64) -> std::result::Result<(), Abort> {
    if decode_seq(meta.get(SEQ_KEY.as_bytes())?.as_deref()) < last {
        meta.insert(SEQ_KEY.as_bytes(), &last.to_be_bytes())?;
    }
    Ok(())
}

pub(crate) fn doc_key(doctype: &Doctype, id: &DocId) -> Vec<u8> {
    let mut k = Vec::with_capacity(doctype.as_str().len() + 1 + id.as_str().len());
    k.extend_from_slice(doctype.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

pub(crate) fn doc_prefix(doctype: &Doctype) -> Vec<u8> {
    let mut p = doctype.as_str().as_bytes().to_vec();
    p.push(0);
    p
}

pub(crate) fn feed_key(doctype: &Doctype, seq: u64) -> Vec<u8> {
    [&doc_prefix(doctype)[..], &seq.to_be_bytes()].concat()
}

/// The trees one change writes (in a transaction, or staged for the journal).
pub(crate) struct Written<'t> {
    pub(crate) docs: &'t dyn Kv,
    pub(crate) index: &'t dyn Kv,
    pub(crate) feed: &'t dyn Kv,
}

/// The stored form of a document put by `author` at `at_ms`: its body and
/// provenance, keeping the creator of the document it replaces.
pub(crate) fn stored_doc(replaced: Option<Meta>, body: &Value, author: &Author, at_ms: u64) -> Vec<u8> {
    let (created_at_ms, created_by) = match replaced {
        Some(old) => (old.created_at_ms, old.created_by),
        None => (at_ms, author.clone()),
    };
    let meta = Meta { created_at_ms, created_by, updated_at_ms: at_ms, updated_by: author.clone() };
    encode(&StoredDoc { body: body.clone(), meta })
}

/// Checks a body before anything is written: a JSON object, not too large.
/// Returns it as JSON text.
pub(crate) fn check_body(body: &Value) -> Result<Vec<u8>> {
    if !body.is_object() {
        return Err(StoreError::Invalid("a document body must be a JSON object".into()));
    }
    let json = serde_json::to_vec(body).map_err(|e| StoreError::Invalid(format!("a document body: {e}")))?;
    if json.len() > MAX_DOC_BYTES {
        return Err(StoreError::Limit(format!("document is {} bytes, over the limit of {MAX_DOC_BYTES}", json.len())));
    }
    Ok(json)
}

pub(crate) type Abort = ConflictableTransactionError<StoreError>;

pub(crate) fn abort(e: StoreError) -> Abort {
    ConflictableTransactionError::Abort(e)
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned + Default>(
    tree: &dyn Kv,
    key: &str,
) -> std::result::Result<T, Abort> {
    match tree.get(key.as_bytes())? {
        Some(bytes) => decode(key, &bytes).map_err(abort),
        None => Ok(T::default()),
    }
}

impl ResidentSpace {
    /// A new document id: time-ordered and unique in this space.
    pub fn new_doc_id(&self) -> Result<DocId> {
        Ok(DocId(format!("{:016x}", self.next_seq()?)))
    }

    /// The id for a new document: its natural key when its doctype has one
    /// (so the same record imported twice is one document), else a new id.
    pub fn id_for(&self, doctype: &Doctype, body: &Value) -> Result<DocId> {
        match self.vocabulary.natural_id(doctype, body) {
            Some(id) => id.parse(),
            None => self.new_doc_id(),
        }
    }

    pub fn get(&self, doctype: &Doctype, id: &DocId) -> Result<Option<Document>> {
        self.docs
            .get(doc_key(doctype, id))?
            .map(|bytes| {
                let stored: StoredDoc = decode("a document", &bytes)?;
                Ok(Document { doctype: doctype.clone(), id: id.clone(), body: stored.body, meta: stored.meta })
            })
            .transpose()
    }

    /// Checks that a body may be written: shape, size, and its doctype's schema.
    pub fn check(&self, doctype: &Doctype, body: &Value) -> Result<()> {
        check_body(body)?;
        self.vocabulary.validate(doctype, body)
    }

    /// Applies `changes` and appends `audit` atomically and durably (see
    /// [`crate::journal`]): when this returns `Ok`, all of it is on disk;
    /// on `Err`, none of it is.
    pub fn commit(&self, changes: &[Change], author: &Author, at_ms: u64, audit: &[AuditEntry]) -> Result<()> {
        let _writing = self.writing();
        let ops = self.compute_commit(changes, author, at_ms, audit)?;
        self.journal_and_apply(ops)
    }

    /// What [`commit`](Self::commit) writes, key by key, computed on the
    /// space as it is: with the write lock held, nothing changes it before
    /// the write is applied.
    pub(crate) fn compute_commit(
        &self,
        changes: &[Change],
        author: &Author,
        at_ms: u64,
        audit: &[AuditEntry],
    ) -> Result<Vec<crate::journal::Op>> {
        for change in changes {
            if let Change::Put { doctype, body, .. } = change {
                self.check(doctype, body)?;
            }
        }
        let first_seq = self.reserve_seqs_in_memory(changes.len() as u64);
        let last_seq = first_seq + changes.len() as u64 - 1;
        let ops = std::cell::RefCell::new(Vec::new());
        let staged = |tree, id| Staged::new(tree, id, &ops);
        let (docs, index, feed) =
            (staged(&self.docs, DOCS), staged(&self.index, INDEX), staged(&self.changes, CHANGES));
        let (meta, log) = (staged(&self.meta, META), staged(&self.audit, AUDIT));
        let computed = (|| -> std::result::Result<(), Abort> {
            let written = Written { docs: &docs, index: &index, feed: &feed };
            let mut usage: Usage = read_json(&meta, USAGE_KEY)?;
            let before = usage;
            for (change, seq) in changes.iter().zip(first_seq..) {
                if !self.apply_change(&written, &mut usage, change, seq, author, at_ms)? {
                    let (Change::Put { doctype, id, .. } | Change::Delete { doctype, id }) = change;
                    return Err(abort(StoreError::NotFound(format!("no document `{id}` of type `{doctype}`"))));
                }
            }
            let quota: Quota = read_json(&meta, QUOTA_KEY)?;
            quota.admits(&before, &usage).map_err(abort)?;
            meta.insert(USAGE_KEY.as_bytes(), &encode(&usage))?;
            persist_seq(&meta, last_seq)?;
            crate::audit::append_chained(&meta, &log, audit)
        })();
        computed.map_err(aborted)?;
        drop((docs, index, feed, meta, log));
        Ok(ops.into_inner())
    }

    /// Applies one change inside a transaction: the document, its index
    /// entries, its change-feed record and the usage counters. Returns
    /// false, having written nothing, for a delete of a document that is
    /// not there.
    pub(crate) fn apply_change(
        &self,
        written: &Written<'_>,
        usage: &mut Usage,
        change: &Change,
        seq: u64,
        author: &Author,
        at_ms: u64,
    ) -> std::result::Result<bool, Abort> {
        let (doctype, id, op) = match change {
            Change::Put { doctype, id, .. } => (doctype, id, ChangeOp::Put),
            Change::Delete { doctype, id } => (doctype, id, ChangeOp::Delete),
        };
        let key = doc_key(doctype, id);
        let fields = self.vocabulary.indexes(doctype);
        let old = written.docs.get(&key)?;
        let old_doc: Option<StoredDoc> = old.as_ref().map(|b| decode("a document", b)).transpose().map_err(abort)?;
        if old_doc.is_none() && op == ChangeOp::Delete {
            return Ok(false);
        }
        if let Some(old_doc) = &old_doc {
            for entry in index::entries(doctype, fields, id.as_str(), &old_doc.body) {
                written.index.remove(&entry)?;
            }
            usage.documents = usage.documents.saturating_sub(1);
            usage.bytes = usage.bytes.saturating_sub(old.as_ref().map_or(0, |b| b.len() as u64));
        }
        match change {
            Change::Put { body, .. } => {
                let stored = stored_doc(old_doc.map(|o| o.meta), body, author, at_ms);
                usage.documents += 1;
                usage.bytes += stored.len() as u64;
                written.docs.insert(&key, &stored)?;
                for entry in index::entries(doctype, fields, id.as_str(), body) {
                    written.index.insert(&entry, id.as_str().as_bytes())?;
                }
            }
            Change::Delete { .. } => {
                written.docs.remove(&key)?;
            }
        }
        let record = ChangeRecord { seq, doctype: doctype.clone(), id: id.clone(), op, at_ms, by: author.clone() };
        written.feed.insert(&feed_key(doctype, seq), &encode(&record))?;
        Ok(true)
    }

    /// Every doctype that has documents, with its count.
    pub fn doctype_counts(&self) -> Result<Vec<(String, u64)>> {
        let mut counts: Vec<(String, u64)> = Vec::new();
        for k in self.docs.iter().keys() {
            let k = k?;
            let end = k.iter().position(|&b| b == 0).unwrap_or(k.len());
            let doctype = String::from_utf8_lossy(&k[..end]).into_owned();
            match counts.last_mut() {
                Some((d, n)) if *d == doctype => *n += 1,
                _ => counts.push((doctype, 1)),
            }
        }
        Ok(counts)
    }

    /// Changes to a doctype after sequence number `after`, oldest first.
    pub fn changes_since(&self, doctype: &Doctype, after: u64, max: usize) -> Result<Vec<ChangeRecord>> {
        let start = feed_key(doctype, after.saturating_add(1));
        let end = feed_key(doctype, u64::MAX);
        self.changes.range(start..=end).take(max).map(|item| decode("a change record", &item?.1)).collect()
    }

    pub fn usage(&self) -> Result<Usage> {
        Ok(self.meta.get(USAGE_KEY)?.map(|b| decode("usage", &b)).transpose()?.unwrap_or_default())
    }

    pub fn quota(&self) -> Result<Quota> {
        Ok(self.meta.get(QUOTA_KEY)?.map(|b| decode("quota", &b)).transpose()?.unwrap_or_default())
    }

    pub fn set_quota(&self, quota: &Quota) -> Result<()> {
        self.write(crate::journal::Durability::Now, |t| t.meta.insert(QUOTA_KEY.as_bytes(), &encode(quota)))
    }

    /// Deletes every document an app created (uninstall `--purge-data`),
    /// with its index entries; returns how many.
    pub fn purge_created_by(&self, app: &domicile_manifest::AppId, at_ms: u64) -> Result<u64> {
        let mut doomed = Vec::new();
        for item in self.docs.iter() {
            let (key, value) = item?;
            let stored: StoredDoc = decode("a document", &value)?;
            if matches!(&stored.meta.created_by, Author::App { id, .. } if id == app.as_str()) {
                doomed.push(parse_doc_key(&key)?);
            }
        }
        let changes: Vec<Change> = doomed.into_iter().map(|(doctype, id)| Change::Delete { doctype, id }).collect();
        // One transaction per thousand documents keeps memory bounded.
        for chunk in changes.chunks(1000) {
            self.commit(chunk, &Author::Resident, at_ms, &[])?;
        }
        Ok(changes.len() as u64)
    }
}

pub(crate) fn parse_doc_key(key: &[u8]) -> Result<(Doctype, DocId)> {
    let split = key.iter().position(|&b| b == 0).ok_or_else(|| StoreError::Corrupt("a document key".into()))?;
    let doctype = std::str::from_utf8(&key[..split]).ok().and_then(|s| s.parse().ok());
    let id = std::str::from_utf8(&key[split + 1..]).ok().and_then(|s| s.parse().ok());
    match (doctype, id) {
        (Some(d), Some(i)) => Ok((d, i)),
        _ => Err(StoreError::Corrupt("a document key".into())),
    }
}
