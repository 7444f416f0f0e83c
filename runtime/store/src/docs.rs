//! Documents: JSON objects stored under `doctype NUL id`, with provenance.
//!
//! Every write goes through [`ResidentSpace::commit`], which first checks
//! each body against its doctype's schema, then in one sled transaction
//! updates the documents, their index entries, the change feed, the
//! resident's usage counters (refusing what would exceed the quota) and the
//! audit log, then flushes. So an acknowledged write is on disk with everything that
//! describes it, and an index never points at a document that is not there.

use std::fmt;
use std::str::FromStr;

use domicile_manifest::Doctype;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use crate::audit::AuditEntry;
use crate::{decode, encode, index, ResidentSpace, Result, StoreError};

/// The largest document body accepted, as JSON text.
pub const MAX_DOC_BYTES: usize = 1024 * 1024;

/// A document id: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocId(String);

impl DocId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DocId {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!(
                "invalid document id `{}`: use 1 to 200 characters without control characters",
                s.chars().take(40).collect::<String>().escape_debug()
            )));
        }
        Ok(DocId(s.to_owned()))
    }
}

impl TryFrom<String> for DocId {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<DocId> for String {
    fn from(d: DocId) -> String {
        d.0
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

/// A change whose body passed its doctype's schema. Only
/// [`ResidentSpace::check_change`] makes one, so a body is validated once.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedChange(Change);

impl CheckedChange {
    pub fn change(&self) -> &Change {
        &self.0
    }
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

pub(crate) const USAGE_KEY: &str = "usage";
pub(crate) const QUOTA_KEY: &str = "quota";
pub(crate) const SEQ_KEY: &str = "seq";

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

/// Checks a body before anything is written: a JSON object, not too large.
pub(crate) fn check_body(body: &Value) -> Result<()> {
    if !body.is_object() {
        return Err(StoreError::Invalid("a document body must be a JSON object".into()));
    }
    let len = serde_json::to_vec(body).map(|v| v.len()).unwrap_or(usize::MAX);
    if len > MAX_DOC_BYTES {
        return Err(StoreError::Limit(format!("document is {len} bytes, over the limit of {MAX_DOC_BYTES}")));
    }
    Ok(())
}

type Abort = ConflictableTransactionError<StoreError>;

fn abort(e: StoreError) -> Abort {
    ConflictableTransactionError::Abort(e)
}

fn read_json<T: serde::de::DeserializeOwned + Default>(
    tree: &TransactionalTree,
    key: &str,
) -> std::result::Result<T, Abort> {
    match tree.get(key)? {
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

    /// Checks a change against its doctype's schema once, for a later
    /// [`commit_checked`](Self::commit_checked) (an importer's staged writes).
    pub fn check_change(&self, change: Change) -> Result<CheckedChange> {
        if let Change::Put { doctype, body, .. } = &change {
            self.check(doctype, body)?;
        }
        Ok(CheckedChange(change))
    }

    /// Applies `changes` and appends `audit` atomically, then flushes:
    /// when this returns `Ok`, all of it is on disk; on `Err`, none of it is.
    pub fn commit(&self, changes: &[Change], author: &Author, at_ms: u64, audit: &[AuditEntry]) -> Result<()> {
        for change in changes {
            if let Change::Put { doctype, body, .. } = change {
                self.check(doctype, body)?;
            }
        }
        self.apply(&changes.iter().collect::<Vec<_>>(), author, at_ms, audit)
    }

    /// [`commit`](Self::commit) for changes already checked.
    pub fn commit_checked(
        &self,
        changes: &[CheckedChange],
        author: &Author,
        at_ms: u64,
        audit: &[AuditEntry],
    ) -> Result<()> {
        self.apply(&changes.iter().map(|c| &c.0).collect::<Vec<_>>(), author, at_ms, audit)
    }

    fn apply(&self, changes: &[&Change], author: &Author, at_ms: u64, audit: &[AuditEntry]) -> Result<()> {
        // Sequence numbers are taken before the transaction, which may retry.
        let feed_seqs: Vec<u64> = changes.iter().map(|_| self.next_seq()).collect::<Result<_>>()?;
        let trees = [&self.docs, &self.index, &self.changes, &self.meta, &self.audit];
        trees.as_slice().transaction(|t| {
            let (docs, index, feed, meta, log) = (&t[0], &t[1], &t[2], &t[3], &t[4]);
            let mut usage: Usage = read_json(meta, USAGE_KEY)?;
            let before = usage;
            for (change, seq) in changes.iter().zip(&feed_seqs) {
                let (doctype, id, op) = match change {
                    Change::Put { doctype, id, .. } => (doctype, id, ChangeOp::Put),
                    Change::Delete { doctype, id } => (doctype, id, ChangeOp::Delete),
                };
                let key = doc_key(doctype, id);
                let fields = self.vocabulary.indexes(doctype);
                let old = docs.get(&key)?;
                let old_doc: Option<StoredDoc> = old.as_ref().map(|b| decode("a document", b)).transpose().map_err(abort)?;
                if let Some(old_doc) = &old_doc {
                    for entry in index::entries(doctype, fields, id.as_str(), &old_doc.body) {
                        index.remove(entry)?;
                    }
                    usage.documents = usage.documents.saturating_sub(1);
                    usage.bytes = usage.bytes.saturating_sub(old.as_ref().map_or(0, |b| b.len() as u64));
                }
                match change {
                    Change::Put { body, .. } => {
                        let (created_at_ms, created_by) = match old_doc {
                            Some(o) => (o.meta.created_at_ms, o.meta.created_by),
                            None => (at_ms, author.clone()),
                        };
                        let meta = Meta { created_at_ms, created_by, updated_at_ms: at_ms, updated_by: author.clone() };
                        let stored = encode(&StoredDoc { body: body.clone(), meta });
                        usage.documents += 1;
                        usage.bytes += stored.len() as u64;
                        docs.insert(key, stored)?;
                        for entry in index::entries(doctype, fields, id.as_str(), body) {
                            index.insert(entry, id.as_str().as_bytes())?;
                        }
                    }
                    Change::Delete { .. } => {
                        if old_doc.is_none() {
                            return Err(abort(StoreError::NotFound(format!("no document `{id}` of type `{doctype}`"))));
                        }
                        docs.remove(key)?;
                    }
                }
                let record = ChangeRecord { seq: *seq, doctype: doctype.clone(), id: id.clone(), op, at_ms, by: author.clone() };
                feed.insert(feed_key(doctype, *seq), encode(&record))?;
            }
            let quota: Quota = read_json(meta, QUOTA_KEY)?;
            // A quota only stops growth: deleting stays possible over quota.
            if let Some(max) = quota.max_documents.filter(|&m| usage.documents > m && usage.documents > before.documents) {
                return Err(abort(StoreError::Limit(format!(
                    "quota exceeded: this would make {} documents, over the resident's limit of {max}; nothing was written",
                    usage.documents
                ))));
            }
            if let Some(max) = quota.max_bytes.filter(|&m| usage.bytes > m && usage.bytes > before.bytes) {
                return Err(abort(StoreError::Limit(format!(
                    "quota exceeded: this would store {} bytes, over the resident's limit of {max}; nothing was written",
                    usage.bytes
                ))));
            }
            meta.insert(USAGE_KEY, encode(&usage))?;
            crate::audit::append_chained(meta, log, audit)
        })?;
        self.flush()
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
        self.meta.insert(QUOTA_KEY, encode(quota))?;
        self.flush()
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
