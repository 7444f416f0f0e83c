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
//! again is checked byte for byte.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::audit::{check_chain, ChainHead, AUDIT_HEAD_KEY};
use crate::docs::{feed_key, Quota, StoredDoc, Usage, QUOTA_KEY, SEQ_KEY, USAGE_KEY};
use crate::{
    decode, encode, index, AppLogEntry, AuditEntry, ChangeRecord, Document, InstalledApp, Notification, OutboxItem,
    ResidentName, ResidentSpace, Result, Store, StoreError,
};

pub const EXPORT_FORMAT_VERSION: u32 = 1;
const ROOT: &str = "domicile-export";
/// Archives larger than this are refused on restore rather than read into memory.
const MAX_ENTRY_BYTES: u64 = 4 * 1024 * 1024 * 1024;

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
struct ArchiveManifest {
    format: String,
    version: u32,
    resident: ResidentName,
    exported_at_ms: u64,
    sequence: u64,
    counts: ExportSummary,
    quota: Quota,
    /// Hex hash of the last audit entry (see `audit.rs`).
    #[serde(default)]
    audit_head: String,
}

#[derive(Serialize, Deserialize)]
struct LoggedLine {
    seq: u64,
    #[serde(flatten)]
    entry: AppLogEntry,
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

fn corrupt_archive(what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("not a valid domicile export: {what}"))
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

    fn current_seq(&self) -> Result<u64> {
        Ok(self.meta.get(SEQ_KEY)?.and_then(|b| b.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes))
    }
}

impl Store {
    /// Rebuilds a resident's space from an export, under its own name or
    /// `as_name`. The resident must not exist in this home yet; if the
    /// archive is invalid, nothing is left behind.
    pub fn restore<R: Read>(&self, input: R, as_name: Option<&ResidentName>) -> Result<(ResidentSpace, ExportSummary)> {
        let files = read_archive(input)?;
        let file = |name: &str| files.get(name).ok_or_else(|| corrupt_archive(format!("it has no {name}")));
        let manifest: ArchiveManifest = serde_json::from_slice(file("manifest.json")?)
            .map_err(|e| corrupt_archive(format!("manifest.json: {e}")))?;
        if manifest.format != ROOT || manifest.version != EXPORT_FORMAT_VERSION {
            return Err(corrupt_archive(format!(
                "format {} version {}, this runtime reads {ROOT} version {EXPORT_FORMAT_VERSION}",
                manifest.format, manifest.version
            )));
        }
        let name = as_name.unwrap_or(&manifest.resident);
        let space = self.create_resident(name)?;
        match self.fill(&space, &manifest, &files) {
            Ok(summary) => Ok((space, summary)),
            Err(e) => {
                self.remove_resident(name)?;
                Err(e)
            }
        }
    }

    fn fill(
        &self,
        space: &ResidentSpace,
        manifest: &ArchiveManifest,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<ExportSummary> {
        let mut summary = ExportSummary::default();
        let mut usage = Usage::default();
        let mut docs = sled::Batch::default();
        let mut entries = sled::Batch::default();
        for doc in records::<Document>(files, "documents.jsonl")? {
            crate::docs::check_body(&doc.body)?;
            let stored = encode(&StoredDoc { body: doc.body.clone(), meta: doc.meta });
            usage.documents += 1;
            usage.bytes += stored.len() as u64;
            for entry in index::entries(&doc.doctype, self.vocabulary.indexes(&doc.doctype), doc.id.as_str(), &doc.body)
            {
                entries.insert(entry, doc.id.as_str().as_bytes());
            }
            docs.insert(crate::docs::doc_key(&doc.doctype, &doc.id), stored);
            summary.documents += 1;
        }
        let changes: Vec<ChangeRecord> = records(files, "changes.jsonl")?;
        let audit_entries: Vec<AuditEntry> = records(files, "audit.jsonl")?;
        // The audit log travels with its chain: an archive whose log was
        // edited is refused rather than restored as if it were true.
        let (_, last, problems) = check_chain(audit_entries.iter().map(|e| (e.seq, e)));
        if let Some(problem) = problems.first() {
            return Err(corrupt_archive(format!("its audit log was altered: {problem}")));
        }
        if !manifest.audit_head.is_empty() && manifest.audit_head != hex::encode(last) {
            return Err(corrupt_archive("its audit log does not end where its manifest says"));
        }
        let head = ChainHead { seq: audit_entries.last().map_or(0, |e| e.seq), hash: last };
        let app_log: Vec<LoggedLine> = records(files, "app-log.jsonl")?;
        let outbox: Vec<OutboxItem> = records(files, "outbox.jsonl")?;
        let notifications: Vec<Notification> = records(files, "notifications.jsonl")?;
        let apps: Vec<InstalledApp> = records(files, "apps.jsonl")?;
        summary.changes = changes.len() as u64;
        summary.audit_entries = audit_entries.len() as u64;
        summary.app_log_entries = app_log.len() as u64;
        summary.outbox = outbox.len() as u64;
        summary.notifications = notifications.len() as u64;
        summary.apps = apps.len() as u64;
        if summary != manifest.counts {
            return Err(corrupt_archive(format!(
                "its manifest counts {:?} but it holds {:?}",
                manifest.counts, summary
            )));
        }
        for app in &apps {
            let package = files
                .get(&format!("packages/{}.dpkg", app.id()))
                .ok_or_else(|| corrupt_archive(format!("the package of {} is missing", app.id())))?;
            space.put_app(app, package)?;
        }
        space.docs.apply_batch(docs)?;
        space.index.apply_batch(entries)?;
        space.changes.apply_batch(batch(&changes, |r| feed_key(&r.doctype, r.seq), encode))?;
        space.audit.apply_batch(batch(&audit_entries, |e| e.seq.to_be_bytes().to_vec(), encode))?;
        space.app_log.apply_batch(batch(&app_log, |l| l.seq.to_be_bytes().to_vec(), |l| encode(&l.entry)))?;
        space.outbox.apply_batch(batch(&outbox, |i| i.id.to_be_bytes().to_vec(), encode))?;
        space.notifications.apply_batch(batch(&notifications, |n| n.seq.to_be_bytes().to_vec(), encode))?;
        space.meta.insert(SEQ_KEY, &manifest.sequence.to_be_bytes())?;
        if head.seq > 0 {
            space.meta.insert(AUDIT_HEAD_KEY, encode(&head))?;
        }
        space.meta.insert(USAGE_KEY, encode(&usage))?;
        space.meta.insert(QUOTA_KEY, encode(&manifest.quota))?;
        space.flush()?;
        Ok(summary)
    }
}

/// The records of one JSON-lines file of the archive.
fn records<T: serde::de::DeserializeOwned>(files: &BTreeMap<String, Vec<u8>>, name: &str) -> Result<Vec<T>> {
    let bytes = files.get(name).ok_or_else(|| corrupt_archive(format!("it has no {name}")))?;
    bytes
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(n, line)| {
            serde_json::from_slice(line).map_err(|e| corrupt_archive(format!("{name} line {}: {e}", n + 1)))
        })
        .collect()
}

fn batch<T>(items: &[T], key: impl Fn(&T) -> Vec<u8>, value: impl Fn(&T) -> Vec<u8>) -> sled::Batch {
    let mut batch = sled::Batch::default();
    for item in items {
        batch.insert(key(item), value(item));
    }
    batch
}

/// Reads every file under `domicile-export/` into memory.
fn read_archive<R: Read>(input: R) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = tar::Archive::new(input);
    let mut files = BTreeMap::new();
    let entries = archive.entries().map_err(|e| corrupt_archive(format!("not a tar archive ({e})")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt_archive(format!("unreadable tar entry ({e})")))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path().map_err(corrupt_archive)?.to_string_lossy().into_owned();
        let Some(name) = path.strip_prefix(&format!("{ROOT}/")) else { continue };
        if entry.size() > MAX_ENTRY_BYTES {
            return Err(corrupt_archive(format!("{name} is too large")));
        }
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry.read_to_end(&mut bytes).map_err(|e| corrupt_archive(format!("{name}: {e}")))?;
        files.insert(name.to_owned(), bytes);
    }
    Ok(files)
}
