//! The audit log (what apps did with the resident's data) and the app log
//! (what apps said). Both are append-only trees keyed by a sequence number.

use domicile_manifest::{AppId, Doctype};
use serde::{Deserialize, Serialize};

use crate::{decode, encode, ResidentSpace, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    Get,
    Put,
    Delete,
    Query,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Get => "get",
            Operation::Put => "put",
            Operation::Delete => "delete",
            Operation::Query => "query",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Allowed,
    Denied,
}

/// One data access by an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned when the entry is stored.
    #[serde(default)]
    pub seq: u64,
    pub at_ms: u64,
    pub app: AppId,
    pub app_version: String,
    pub operation: Operation,
    /// The doctype the app named; kept as text because a denied request may
    /// name something that is not a valid doctype.
    pub doctype: String,
    /// How many documents were returned, written or deleted.
    pub documents: u64,
    pub outcome: Outcome,
}

impl AuditEntry {
    pub(crate) fn sequenced(mut self, seq: u64) -> AuditEntry {
        self.seq = seq;
        self
    }
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub app: Option<AppId>,
    pub doctype: Option<Doctype>,
}

impl AuditFilter {
    fn keeps(&self, e: &AuditEntry) -> bool {
        self.app.as_ref().is_none_or(|a| a == &e.app) && self.doctype.as_ref().is_none_or(|d| d.as_str() == e.doctype)
    }
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
    /// Appends audit entries for accesses that wrote nothing (reads, denials).
    /// They become durable with the next flush; the host flushes at the end
    /// of every invocation.
    pub fn record_audit(&self, entries: &[AuditEntry]) -> Result<()> {
        for e in entries {
            let seq = self.next_seq()?;
            self.audit.insert(seq.to_be_bytes(), encode(&e.clone().sequenced(seq)))?;
        }
        Ok(())
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

    pub fn append_app_log(&self, entries: &[AppLogEntry]) -> Result<()> {
        for e in entries {
            self.app_log.insert(self.next_seq()?.to_be_bytes(), encode(e))?;
        }
        Ok(())
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
