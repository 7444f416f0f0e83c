//! Documents: JSON objects stored under `doctype NUL id`, with provenance.

use std::fmt;
use std::str::FromStr;

use domicile_manifest::Doctype;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sled::transaction::{ConflictableTransactionError, Transactional};

use crate::audit::AuditEntry;
use crate::{decode, encode, ResidentSpace, Result, Selector, StoreError};

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
struct StoredDoc {
    body: Value,
    meta: Meta,
}

/// One write of a set committed together.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Put { doctype: Doctype, id: DocId, body: Value },
    Delete { doctype: Doctype, id: DocId },
}

/// Where a paged query stopped: the last key it returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryPosition(Option<Vec<u8>>);

fn key(doctype: &Doctype, id: &DocId) -> Vec<u8> {
    let mut k = Vec::with_capacity(doctype.as_str().len() + 1 + id.as_str().len());
    k.extend_from_slice(doctype.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

fn prefix(doctype: &Doctype) -> Vec<u8> {
    let mut p = doctype.as_str().as_bytes().to_vec();
    p.push(0);
    p
}

/// Checks a body before anything is written: a JSON object, not too large.
pub fn check_body(body: &Value) -> Result<()> {
    if !body.is_object() {
        return Err(StoreError::Invalid("a document body must be a JSON object".into()));
    }
    let len = serde_json::to_vec(body).map(|v| v.len()).unwrap_or(usize::MAX);
    if len > MAX_DOC_BYTES {
        return Err(StoreError::Limit(format!("document is {len} bytes, over the limit of {MAX_DOC_BYTES}")));
    }
    Ok(())
}

impl ResidentSpace {
    /// A new document id: time-ordered and unique in this home.
    pub fn new_doc_id(&self) -> Result<DocId> {
        Ok(DocId(format!("{:016x}", self.next_id()?)))
    }

    pub fn get(&self, doctype: &Doctype, id: &DocId) -> Result<Option<Document>> {
        self.docs
            .get(key(doctype, id))?
            .map(|bytes| {
                let stored: StoredDoc = decode("a document", &bytes)?;
                Ok(Document { doctype: doctype.clone(), id: id.clone(), body: stored.body, meta: stored.meta })
            })
            .transpose()
    }

    /// Applies `changes` and appends `audit` atomically, then flushes:
    /// when this returns `Ok`, all of it is on disk; on `Err`, none of it is.
    pub fn commit(&self, changes: &[Change], author: &Author, at_ms: u64, audit: &[AuditEntry]) -> Result<()> {
        for change in changes {
            if let Change::Put { body, .. } = change {
                check_body(body)?;
            }
        }
        let audit: Vec<(u64, Vec<u8>)> = audit
            .iter()
            .map(|e| Ok((self.next_id()?, e)))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .map(|(seq, e)| (seq, encode(&e.clone().sequenced(seq))))
            .collect();
        (&self.docs, &self.audit).transaction(|(docs, log)| {
            for change in changes {
                match change {
                    Change::Put { doctype, id, body } => {
                        let k = key(doctype, id);
                        let created = match docs.get(&k)? {
                            Some(old) => {
                                let old: StoredDoc =
                                    decode("a document", &old).map_err(ConflictableTransactionError::Abort)?;
                                (old.meta.created_at_ms, old.meta.created_by)
                            }
                            None => (at_ms, author.clone()),
                        };
                        let meta = Meta {
                            created_at_ms: created.0,
                            created_by: created.1,
                            updated_at_ms: at_ms,
                            updated_by: author.clone(),
                        };
                        docs.insert(k, encode(&StoredDoc { body: body.clone(), meta }))?;
                    }
                    Change::Delete { doctype, id } => {
                        if docs.remove(key(doctype, id))?.is_none() {
                            return Err(ConflictableTransactionError::Abort(StoreError::NotFound(format!(
                                "no document `{id}` of type `{doctype}`"
                            ))));
                        }
                    }
                }
            }
            for (seq, entry) in &audit {
                log.insert(&seq.to_be_bytes(), entry.as_slice())?;
            }
            Ok(())
        })?;
        self.flush()
    }

    /// The next page of at most `max` documents of `doctype` matching
    /// `selector`, after `from`. Because the position is a key, not an
    /// offset, a page is never skipped or repeated while others write.
    pub fn query_page(
        &self,
        doctype: &Doctype,
        selector: &Selector,
        from: &QueryPosition,
        max: usize,
    ) -> Result<(Vec<Document>, QueryPosition)> {
        let prefix = prefix(doctype);
        let start = match &from.0 {
            Some(last) => std::ops::Bound::Excluded(last.clone()),
            None => std::ops::Bound::Included(prefix.clone()),
        };
        let mut page = Vec::new();
        let mut last = from.0.clone();
        for item in self.docs.range((start, std::ops::Bound::Unbounded)) {
            if page.len() >= max {
                break;
            }
            let (k, v) = item?;
            if !k.starts_with(&prefix) {
                break;
            }
            last = Some(k.to_vec());
            let stored: StoredDoc = decode("a document", &v)?;
            if selector.matches(&stored.body) {
                let id = std::str::from_utf8(&k[prefix.len()..])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt("a document key".into()))?;
                page.push(Document { doctype: doctype.clone(), id, body: stored.body, meta: stored.meta });
            }
        }
        Ok((page, QueryPosition(last)))
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
}
