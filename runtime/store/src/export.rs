//! Export and restore of a resident's whole space (GDPR art. 20).
//!
//! The archive is a tar file of JSON lines, readable with ordinary tools:
//!
//! ```text
//! domicile-export/manifest.json     format, version, resident, time, sequence, counts, quota
//! domicile-export/documents.jsonl   {"doctype", "id", "body", "meta"} per document
//! domicile-export/changes.jsonl     the change feed, oldest first
//! domicile-export/audit.jsonl       the audit log, oldest first
//! domicile-export/app-log.jsonl     what apps logged: {"seq", "at_ms", "app", "level", "message"}
//! domicile-export/apps.jsonl        installed apps: manifest, publisher, grants
//! domicile-export/outbox.jsonl      what apps asked to send out, and what became of it
//! domicile-export/notifications.jsonl  messages apps left for the resident
//! domicile-export/packages/APP.dpkg the signed package of each installed app
//! domicile-export/schemas/DOCTYPE.json  the JSON Schema of each doctype the runtime knows
//! ```
//!
//! Entries are written in a fixed order with fixed metadata, so exporting
//! the same space at the same time gives the same bytes: restore then export
//! again is checked byte for byte. Restoring (`restore.rs`) treats an
//! archive as untrusted input.

use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::docs::{Quota, StoredDoc, SEQ_KEY};
use crate::{
    decode, encode, AppLogEntry, AuditEntry, ChangeRecord, Document, ResidentName, ResidentSpace, Result, StoreError,
};

pub const EXPORT_FORMAT_VERSION: u32 = 1;
pub(crate) const ROOT: &str = "domicile-export";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSummary {
    pub documents: u64,
    pub changes: u64,
    pub audit_entries: u64,
    pub app_log_entries: u64,
    pub apps: u64,
    #[serde(default)]
    pub outbox: u64,
    #[serde(default)]
    pub notifications: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveManifest {
    pub(crate) format: String,
    pub(crate) version: u32,
    pub(crate) resident: ResidentName,
    pub(crate) exported_at_ms: u64,
    pub(crate) sequence: u64,
    pub(crate) counts: ExportSummary,
    pub(crate) quota: Quota,
    /// Hex hash of the last audit entry (see `audit.rs`); 64 zeros for an empty log.
    pub(crate) audit_head: String,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct LoggedLine {
    pub(crate) seq: u64,
    #[serde(flatten)]
    pub(crate) entry: AppLogEntry,
}

fn jsonl<T: Serialize>(items: impl IntoIterator<Item = T>) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut n = 0;
    for item in items {
        out.extend(encode(&item));
        out.push(b'\n');
        n += 1;
    }
    (out, n)
}

impl ResidentSpace {
    /// Writes the resident's whole space as a tar archive.
    pub fn export<W: Write>(&self, out: W, exported_at_ms: u64) -> Result<ExportSummary> {
        let io = |e: std::io::Error| StoreError::Invalid(format!("cannot write the export: {e}"));
        let mut documents = Vec::new();
        for item in self.docs.iter() {
            let (key, value) = item?;
            let (doctype, id) = crate::docs::parse_doc_key(&key)?;
            let stored: StoredDoc = decode("a document", &value)?;
            documents.push(Document { doctype, id, body: stored.body, meta: stored.meta });
        }
        let changes: Vec<ChangeRecord> =
            self.changes.iter().values().map(|v| decode("a change record", &v?)).collect::<Result<_>>()?;
        let audit: Vec<AuditEntry> = self.audit(&Default::default())?;
        let app_log: Vec<LoggedLine> = self
            .app_log
            .iter()
            .map(|item| {
                let (k, v) = item?;
                let seq = u64::from_be_bytes(
                    k.as_ref().try_into().map_err(|_| StoreError::Corrupt("an app log key".into()))?,
                );
                Ok(LoggedLine { seq, entry: decode("an app log entry", &v)? })
            })
            .collect::<Result<_>>()?;
        let apps = self.apps()?;

        let (documents_file, n_docs) = jsonl(&documents);
        let (changes_file, n_changes) = jsonl(&changes);
        let (audit_file, n_audit) = jsonl(&audit);
        let (log_file, n_log) = jsonl(&app_log);
        let (apps_file, n_apps) = jsonl(&apps);
        let (outbox_file, n_outbox) = jsonl(&self.outbox()?);
        let (notifications_file, n_notifications) = jsonl(&self.notifications()?);
        let counts = ExportSummary {
            documents: n_docs,
            changes: n_changes,
            audit_entries: n_audit,
            app_log_entries: n_log,
            apps: n_apps,
            outbox: n_outbox,
            notifications: n_notifications,
        };
        let manifest = ArchiveManifest {
            format: ROOT.into(),
            version: EXPORT_FORMAT_VERSION,
            resident: self.name.clone(),
            exported_at_ms,
            sequence: self.current_seq()?,
            counts: counts.clone(),
            quota: self.quota()?,
            audit_head: self.verify_audit()?.head,
        };

        let mut tar = tar::Builder::new(out);
        let mut add = |path: String, bytes: &[u8]| -> Result<()> {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(exported_at_ms / 1000);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, format!("{ROOT}/{path}"), bytes).map_err(io)
        };
        add("manifest.json".into(), &serde_json::to_vec_pretty(&manifest).expect("manifest serialises"))?;
        add("documents.jsonl".into(), &documents_file)?;
        add("changes.jsonl".into(), &changes_file)?;
        add("audit.jsonl".into(), &audit_file)?;
        add("app-log.jsonl".into(), &log_file)?;
        add("apps.jsonl".into(), &apps_file)?;
        add("outbox.jsonl".into(), &outbox_file)?;
        add("notifications.jsonl".into(), &notifications_file)?;
        for app in &apps {
            add(format!("packages/{}.dpkg", app.id()), &self.package(app.id())?)?;
        }
        for def in self.vocabulary.iter() {
            add(format!("schemas/{}.json", def.doctype), def.schema_text.as_bytes())?;
        }
        tar.into_inner().map_err(io)?.flush().map_err(io)?;
        Ok(counts)
    }

    pub(crate) fn current_seq(&self) -> Result<u64> {
        Ok(self.meta.get(SEQ_KEY)?.and_then(|b| b.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
    }
}
