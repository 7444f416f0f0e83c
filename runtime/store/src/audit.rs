//! The audit log (what apps did with the resident's data) and the app log
//! (what apps said).
//!
//! The audit log is a hash chain: entry `n` carries
//! `sha256("domicile-audit-v1" || hash(n-1) || entry n without its hash)`,
//! entries are numbered 1, 2, 3… without gaps, and the space remembers the
//! number and hash of the last one (the head). Editing, deleting or
//! reordering an entry therefore breaks the chain, and
//! [`ResidentSpace::verify_audit`] says where. Whoever can rewrite the whole
//! store can rewrite the whole chain too: the head printed by
//! `domicile audit verify` is what a resident writes down (or exports) to
//! detect even that.
//!
//! Appends happen inside sled transactions that read and move the head, so
//! concurrent invocations cannot interleave two chains.

use std::collections::BTreeMap;

use domicile_manifest::{AppId, Doctype};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sled::transaction::ConflictableTransactionError;

use crate::journal::{Durability, Kv};

use crate::{decode, encode, ResidentSpace, Result, StoreError};

const CHAIN_DOMAIN: &[u8] = b"domicile-audit-v1";
pub(crate) const AUDIT_HEAD_KEY: &str = "audit-head";
/// The `hash` the first entry chains to.
const GENESIS: [u8; 32] = [0; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Get,
    Put,
    Delete,
    Query,
    /// The app asked to send data out (it went to the outbox).
    Egress,
    /// The resident approved an outbox item and it was sent.
    Send,
    /// The resident imported the valid records of a file with broken ones;
    /// the importer left that many out (`documents`).
    Skip,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Put => "put",
            Operation::Delete => "delete",
            Operation::Query => "query",
            Operation::Egress => "egress",
            Operation::Send => "send",
            Operation::Skip => "skip",
        }
    }

    /// The verb of a summary line ("read 1,204 documents").
    fn verb(self) -> &'static str {
        match self {
            Operation::Get | Operation::Query => "read",
            Operation::Put => "wrote",
            Operation::Delete => "deleted",
            Operation::Egress => "asked to send",
            Operation::Send => "sent",
            Operation::Skip => "left out",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Allowed,
    Denied,
}

/// One data access by an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Position in the log, from 1; assigned when the entry is stored.
    #[serde(default)]
    pub seq: u64,
    pub at_ms: u64,
    pub app: AppId,
    pub app_version: String,
    pub operation: Operation,
    /// The doctype the app named; kept as text because a denied request may
    /// name something that is not a valid doctype. For egress: the doctype
    /// is empty and `destination` says where.
    pub doctype: String,
    /// How many documents were returned, written or deleted.
    pub documents: u64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Hex chain hash; assigned when the entry is stored.
    #[serde(default)]
    pub hash: String,
}

/// The hash of `entry` (whose own `hash` is ignored) chained to `prev`.
fn chain_hash(prev: &[u8; 32], entry: &AuditEntry) -> [u8; 32] {
    let unhashed = AuditEntry { hash: String::new(), ..entry.clone() };
    let mut h = Sha256::new();
    h.update(CHAIN_DOMAIN);
    h.update(prev);
    h.update(encode(&unhashed));
    h.finalize().into()
}

/// The last entry of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChainHead {
    pub seq: u64,
    #[serde(with = "hex_bytes")]
    pub hash: [u8; 32],
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(&text)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| serde::de::Error::custom("expected 64 hex characters"))
    }
}

/// Appends `entries` to the chain inside a transaction over the meta and
/// audit trees; `seq` and `hash` of each entry are assigned here.
pub(crate) fn append_chained(
    meta: &dyn Kv,
    log: &dyn Kv,
    entries: &[AuditEntry],
) -> std::result::Result<(), ConflictableTransactionError<StoreError>> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut head = match meta.get(AUDIT_HEAD_KEY.as_bytes())? {
        Some(bytes) => decode::<ChainHead>("the audit head", &bytes).map_err(ConflictableTransactionError::Abort)?,
        None => ChainHead { seq: 0, hash: GENESIS },
    };
    for entry in entries {
        let mut entry = entry.clone();
        entry.seq = head.seq + 1;
        let hash = chain_hash(&head.hash, &entry);
        entry.hash = hex::encode(hash);
        log.insert(&entry.seq.to_be_bytes(), &encode(&entry))?;
        head = ChainHead { seq: entry.seq, hash };
    }
    meta.insert(AUDIT_HEAD_KEY.as_bytes(), &encode(&head))?;
    Ok(())
}

/// Checks entries as a chain, one at a time, so that a log of any length
/// is checked in constant memory (restore streams an archive's log).
pub(crate) struct ChainCheck {
    expected: u64,
    prev: [u8; 32],
    pub(crate) entries: u64,
    pub(crate) problems: Vec<String>,
}

impl Default for ChainCheck {
    fn default() -> Self {
        ChainCheck { expected: 1, prev: GENESIS, entries: 0, problems: Vec::new() }
    }
}

impl ChainCheck {
    /// Checks the next entry, stored at position `key`.
    pub(crate) fn push(&mut self, key: u64, entry: &AuditEntry) {
        self.entries += 1;
        if key != entry.seq {
            self.problems
                .push(format!("entry stored at position {key} says it is entry {}: entries were moved", entry.seq));
        }
        if entry.seq != self.expected {
            self.problems.push(format!(
                "entry {} follows entry {}: entries were deleted or reordered",
                entry.seq,
                self.expected.saturating_sub(1)
            ));
        }
        let hash = chain_hash(&self.prev, entry);
        if hex::encode(hash) != entry.hash {
            self.problems
                .push(format!("entry {} does not match its hash: it was edited, or an entry before it was", entry.seq));
        }
        // Follow the stored hash so that one edit is reported once, not for every later entry.
        self.prev = hex::decode(&entry.hash).ok().and_then(|v| v.try_into().ok()).unwrap_or(hash);
        self.expected = entry.seq.saturating_add(1);
    }

    /// The hash of the last entry (the genesis hash for an empty log).
    pub(crate) fn last_hash(&self) -> [u8; 32] {
        self.prev
    }
}

/// What `verify_audit` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditCheck {
    pub entries: u64,
    /// Hex hash of the last entry: write it down to detect a rewrite of the whole log.
    pub head: String,
    pub problems: Vec<String>,
}

impl AuditCheck {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub app: Option<AppId>,
    pub doctype: Option<Doctype>,
    /// Only entries at or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Only entries before this time.
    pub until_ms: Option<u64>,
}

impl AuditFilter {
    fn keeps(&self, e: &AuditEntry) -> bool {
        self.app.as_ref().is_none_or(|a| a == &e.app)
            && self.doctype.as_ref().is_none_or(|d| d.as_str() == e.doctype)
            && self.since_ms.is_none_or(|t| e.at_ms >= t)
            && self.until_ms.is_none_or(|t| e.at_ms < t)
    }
}

/// Audit entries grouped by app, what it did, to which doctype (or
/// destination), and whether it was allowed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditSummary {
    pub app: AppId,
    pub operation: Operation,
    pub doctype: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub outcome: Outcome,
    /// How many host calls.
    pub calls: u64,
    pub documents: u64,
    pub first_ms: u64,
    pub last_ms: u64,
}

impl AuditSummary {
    /// "org.example.app read 1,204 io.domicile.bank.operation documents (37 calls)".
    pub fn sentence(&self) -> String {
        let what = match (&self.destination, self.operation) {
            (Some(d), _) => format!("{} time(s) to {d}", group_thousands(self.calls)),
            (None, Operation::Skip) => format!(
                "{} broken record(s) in {} partial import(s), as the resident chose",
                group_thousands(self.documents),
                group_thousands(self.calls)
            ),
            (None, _) => {
                format!("{} {} document(s) in {} call(s)", group_thousands(self.documents), self.doctype, self.calls)
            }
        };
        match self.outcome {
            Outcome::Allowed => format!("{} {} {what}", self.app, self.operation.verb()),
            Outcome::Denied => format!("{} was DENIED {} {what}", self.app, self.operation.as_str()),
        }
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A line an app wrote to its log (WIT `log`, or WASI stdout/stderr).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppLogEntry {
    pub at_ms: u64,
    pub app: AppId,
    pub level: String,
    pub message: String,
}

impl ResidentSpace {
    /// Appends audit entries for accesses that wrote nothing (reads,
    /// denials). They become durable with the next flush; the host flushes
    /// at the end of every invocation.
    pub fn record_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        self.write(Durability::NextFlush, |t| append_chained(&t.meta, &t.audit, entries))
    }

    /// Audit entries in the order they happened.
    pub fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut out = Vec::new();
        for item in self.audit.iter().values() {
            let e: AuditEntry = decode("an audit entry", &item?)?;
            if filter.keeps(&e) {
                out.push(e);
            }
        }
        Ok(out)
    }

    /// The entries `filter` keeps, grouped (see [`AuditSummary`]).
    pub fn audit_summary(&self, filter: &AuditFilter) -> Result<Vec<AuditSummary>> {
        let mut groups: BTreeMap<(AppId, Operation, String, Option<String>, Outcome), AuditSummary> = BTreeMap::new();
        for e in self.audit(filter)? {
            let key = (e.app.clone(), e.operation, e.doctype.clone(), e.destination.clone(), e.outcome);
            let group = groups.entry(key).or_insert_with(|| AuditSummary {
                app: e.app.clone(),
                operation: e.operation,
                doctype: e.doctype.clone(),
                destination: e.destination.clone(),
                outcome: e.outcome,
                calls: 0,
                documents: 0,
                first_ms: e.at_ms,
                last_ms: e.at_ms,
            });
            group.calls += 1;
            group.documents += e.documents;
            group.first_ms = group.first_ms.min(e.at_ms);
            group.last_ms = group.last_ms.max(e.at_ms);
        }
        Ok(groups.into_values().collect())
    }

    /// Walks the whole audit log and checks its hash chain.
    pub fn verify_audit(&self) -> Result<AuditCheck> {
        let mut chain = ChainCheck::default();
        for item in self.audit.iter() {
            let (key, value) = item?;
            let key = u64::from_be_bytes(
                key.as_ref().try_into().map_err(|_| StoreError::Corrupt("an audit log key".into()))?,
            );
            match serde_json::from_slice::<AuditEntry>(&value) {
                Ok(entry) => chain.push(key, &entry),
                Err(e) => {
                    return Ok(AuditCheck {
                        entries: key,
                        head: String::new(),
                        problems: vec![format!("entry {key} is not a readable audit entry ({e}): it was edited")],
                    })
                }
            }
        }
        let head: Option<ChainHead> = match self.meta.get(AUDIT_HEAD_KEY)? {
            Some(bytes) => Some(decode("the audit head", &bytes)?),
            None => None,
        };
        let (n, last, mut problems) = (chain.entries, chain.last_hash(), chain.problems);
        let recorded = head.map_or((0, GENESIS), |h| (h.seq, h.hash));
        if recorded != (n, last) {
            problems.push(format!(
                "the log ends at entry {n} but the space recorded entry {} as its last: entries at the end were deleted, replaced or planted",
                recorded.0
            ));
        }
        Ok(AuditCheck { entries: n, head: hex::encode(last), problems })
    }

    /// Durable with the next flush, like reads' audit entries.
    pub fn append_app_log(&self, entries: &[AppLogEntry]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let first = self.reserve_seqs_in_memory(entries.len() as u64);
        self.write(Durability::NextFlush, |t| {
            for (e, seq) in entries.iter().zip(first..) {
                t.app_log.insert(&seq.to_be_bytes(), &encode(e))?;
            }
            crate::docs::persist_seq(&t.meta, first + entries.len() as u64 - 1)
        })
    }

    pub fn app_log(&self, app: Option<&AppId>) -> Result<Vec<AppLogEntry>> {
        let mut out = Vec::new();
        for item in self.app_log.iter().values() {
            let e: AppLogEntry = decode("an app log entry", &item?)?;
            if app.is_none_or(|a| a == &e.app) {
                out.push(e);
            }
        }
        Ok(out)
    }
}
