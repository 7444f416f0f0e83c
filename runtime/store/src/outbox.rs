//! The outbox (what apps asked to send out of the space) and the
//! notifications apps left for the resident.
//!
//! An app never sends anything itself: its request is stored here, with the
//! exact payload, and waits for the resident to approve or deny it. The
//! request and its fate are also written to the audit log.

use domicile_manifest::AppId;
use serde::{Deserialize, Serialize};
use sled::Transactional;

use crate::audit::{append_chained, AuditEntry};
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

impl ResidentSpace {
    /// Stores a request in the outbox with its audit entry, durably;
    /// returns its id.
    pub fn queue_egress(&self, item: &OutboxItem, audit: &AuditEntry) -> Result<u64> {
        let id = self.next_seq()?;
        let stored = encode(&OutboxItem { id, status: OutboxStatus::Pending, ..item.clone() });
        let _writing = self.writing();
        (&self.outbox, &self.meta, &self.audit).transaction(|(outbox, meta, log)| {
            outbox.insert(&id.to_be_bytes(), stored.as_slice())?;
            append_chained(meta, log, std::slice::from_ref(audit))
        })?;
        self.flush()?;
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
        let _writing = self.writing();
        (&self.outbox, &self.meta, &self.audit).transaction(|(outbox, meta, log)| {
            outbox.insert(&id.to_be_bytes(), stored.as_slice())?;
            append_chained(meta, log, audit.map(std::slice::from_ref).unwrap_or_default())
        })?;
        self.flush()?;
        Ok(item)
    }

    /// Stores notifications; durable with the next flush (the host flushes
    /// at the end of every invocation).
    pub fn notify(&self, notifications: &[Notification]) -> Result<()> {
        for n in notifications {
            let seq = self.next_seq()?;
            self.notifications.insert(seq.to_be_bytes(), encode(&Notification { seq, ..n.clone() }))?;
        }
        Ok(())
    }

    /// Every notification, oldest first.
    pub fn notifications(&self) -> Result<Vec<Notification>> {
        self.notifications.iter().values().map(|v| decode("a notification", &v?)).collect()
    }
}
