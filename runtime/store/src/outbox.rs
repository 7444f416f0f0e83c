//! The outbox (what apps asked to send out of the space) and the
//! notifications apps left for the resident.
//!
//! An app never sends anything itself: its request is stored here, with the
//! exact payload, and waits for the resident to approve or deny it. The
//! request and its fate are also written to the audit log.

use domicile_manifest::AppId;
use serde::{Deserialize, Serialize};

use crate::audit::{append_chained, AuditEntry, Operation, Outcome};
use crate::docs::persist_seq;
use crate::journal::{Durability, Kv};
use crate::{decode, encode, ResidentSpace, Result, StoreError};

/// Largest payload an app may ask to send.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
pub const MAX_NOTIFICATION_TITLE: usize = 200;
pub const MAX_NOTIFICATION_BODY: usize = 4000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum OutboxStatus {
    /// Waiting for the resident.
    Pending,
    /// Approved and delivered: the destination answered `http_status`.
    Sent { at_ms: u64, http_status: u16 },
    /// The resident said no; nothing was sent.
    Denied { at_ms: u64 },
    /// Approved, but delivery failed; it can be approved again.
    Failed { at_ms: u64, error: String },
}

/// One request to send data out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Assigned when stored.
    #[serde(default)]
    pub id: u64,
    pub at_ms: u64,
    pub app: AppId,
    pub app_version: String,
    pub destination: String,
    /// The app's words for why, shown with the payload.
    pub purpose: String,
    /// Exactly the bytes that would be sent (JSON text).
    pub payload: String,
    pub status: OutboxStatus,
    /// The campaign this item is a report to, or a withdrawal from (the
    /// resident's consent is joining or leaving it); none for an app's
    /// request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

/// A message an app left for the resident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    #[serde(default)]
    pub seq: u64,
    pub at_ms: u64,
    pub app: AppId,
    pub title: String,
    pub body: String,
}

impl OutboxItem {
    /// The audit entry of what is done with this item at `at_ms`: asked
    /// for (`Egress`) or sent (`Send`), allowed or denied.
    pub fn audit_entry(&self, operation: Operation, at_ms: u64, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at_ms,
            app: self.app.clone(),
            app_version: self.app_version.clone(),
            operation,
            doctype: String::new(),
            documents: 0,
            outcome,
            destination: Some(self.destination.clone()),
            hash: String::new(),
        }
    }
}

impl ResidentSpace {
    /// Stores a request in the outbox with its audit entry, durably;
    /// returns its id.
    pub fn queue_egress(&self, item: &OutboxItem, audit: &AuditEntry) -> Result<u64> {
        let id = self.reserve_seqs_in_memory(1);
        let stored = encode(&OutboxItem { id, status: OutboxStatus::Pending, ..item.clone() });
        self.write(Durability::Now, |t| {
            t.outbox.insert(&id.to_be_bytes(), &stored)?;
            persist_seq(&t.meta, id)?;
            append_chained(&t.meta, &t.audit, std::slice::from_ref(audit))
        })?;
        Ok(id)
    }

    /// Every outbox item, oldest first.
    pub fn outbox(&self) -> Result<Vec<OutboxItem>> {
        self.outbox.iter().values().map(|v| decode("an outbox item", &v?)).collect()
    }

    pub fn outbox_item(&self, id: u64) -> Result<OutboxItem> {
        let bytes =
            self.outbox.get(id.to_be_bytes())?.ok_or_else(|| StoreError::NotFound(format!("no outbox item {id}")))?;
        decode("an outbox item", &bytes)
    }

    /// Records what became of an item, with its audit entry, durably.
    pub fn set_outbox_status(&self, id: u64, status: OutboxStatus, audit: Option<&AuditEntry>) -> Result<OutboxItem> {
        let mut item = self.outbox_item(id)?;
        item.status = status;
        let stored = encode(&item);
        self.write(Durability::Now, |t| {
            t.outbox.insert(&id.to_be_bytes(), &stored)?;
            append_chained(&t.meta, &t.audit, audit.map(std::slice::from_ref).unwrap_or_default())
        })?;
        Ok(item)
    }

    /// Stores notifications; durable with the next flush (the host flushes
    /// at the end of every invocation).
    pub fn notify(&self, notifications: &[Notification]) -> Result<()> {
        if notifications.is_empty() {
            return Ok(());
        }
        let first = self.reserve_seqs_in_memory(notifications.len() as u64);
        self.write(Durability::NextFlush, |t| {
            for (n, seq) in notifications.iter().zip(first..) {
                t.notifications.insert(&seq.to_be_bytes(), &encode(&Notification { seq, ..n.clone() }))?;
            }
            persist_seq(&t.meta, first + notifications.len() as u64 - 1)
        })
    }

    /// Every notification, oldest first.
    pub fn notifications(&self) -> Result<Vec<Notification>> {
        self.notifications.iter().values().map(|v| decode("a notification", &v?)).collect()
    }
}
