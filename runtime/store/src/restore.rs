//! Restore of an export archive. An archive is untrusted input: a person
//! may have received it from elsewhere, or it may have been edited on a
//! shared drive. Restoring it gives it no more power than installing a
//! package gives a package:
//!
//! - every app's package is checked by the caller's [`PackageVetting`]
//!   (signature against *this* home's trust store, manifest parsed from the
//!   signed bytes, component compiled and checked); an app whose publisher
//!   this home does not trust is left out, one whose key this home revoked
//!   is restored on hold, and a package that does not verify refuses the
//!   archive. The app record's manifest, publisher and digest must be the
//!   package's; its grants are cut down to what that manifest asks;
//! - every document is checked like any write (shape, size, its doctype's
//!   schema), and its provenance must be the one its change-feed records;
//! - the audit log must be a whole chain from entry 1 to the head and the
//!   count the archive's manifest records;
//! - sequences and counters are recomputed from what was restored, never
//!   taken lower than what the archive holds;
//! - pending outbox items must go where their app's signed manifest says;
//! - entries are streamed: a line, a manifest or a package is bounded, an
//!   unknown or duplicated entry is refused before it is read, and memory
//!   does not grow with the archive.
//!
//! A refused archive restores nothing (the half-made resident is removed,
//! also after a crash: see [`Store::open`]) and the error names the first
//! problem found.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};

use domicile_manifest::{AppId, Doctype, Manifest};
use serde::Serialize;

use crate::audit::{ChainCheck, ChainHead, AUDIT_HEAD_KEY};
use crate::docs::{check_body, doc_key, feed_key, parse_doc_key, StoredDoc, Usage, QUOTA_KEY, SEQ_KEY, USAGE_KEY};
use crate::export::{ArchiveManifest, LoggedLine, EXPORT_FORMAT_VERSION, ROOT};
use crate::{
    decode, encode, index, AuditEntry, ChangeOp, ChangeRecord, Document, ExportSummary, Hold, InstalledApp,
    Notification, OutboxItem, OutboxStatus, ResidentName, ResidentSpace, Result, Store, StoreError,
    MAX_NOTIFICATION_BODY, MAX_NOTIFICATION_TITLE, MAX_PAYLOAD_BYTES,
};

/// `manifest.json` is a few hundred bytes.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// One JSON line: the largest document, outbox payload or app record, with room to spare.
const MAX_LINE_BYTES: usize = 2 * 1024 * 1024;
/// A package: the package format's own limits (a 64 KiB manifest, a 64 MiB component) and its framing.
const MAX_PACKAGE_BYTES: u64 = 64 * 1024 * 1024 + 128 * 1024;
/// A doctype's schema file (its content is not used: documents are checked
/// against this runtime's schemas).
const MAX_SCHEMA_BYTES: u64 = 1024 * 1024;
/// App records are held in memory until their packages arrive.
const MAX_APPS: usize = 1000;
/// Sequence numbers above this are not something a space reaches; refusing
/// them keeps every later `+ 1` far from overflowing.
const MAX_SEQUENCE: u64 = 1 << 53;
/// Records written per sled batch.
const BATCH: usize = 2000;

/// Checks the signed package of an app found in an archive, as installing
/// it would. The store cannot do this itself: it knows neither keys nor
/// components.
pub trait PackageVetting {
    /// `record` is the app id the archive's record claims for `package`.
    fn vet(&self, record: &AppId, package: &[u8]) -> std::result::Result<VettedApp, AppRefusal>;
}

/// What a package proved about itself.
#[derive(Debug, Clone)]
pub struct VettedApp {
    /// Parsed from the signed manifest bytes.
    pub manifest: Manifest,
    /// Hex key the signature verified with.
    pub publisher: String,
    /// Hex sha256 of the verified component.
    pub component_digest: String,
    /// Set when this home revoked the publisher's key.
    pub hold: Option<Hold>,
}

/// Why an archive's app is not restored.
#[derive(Debug, Clone)]
pub enum AppRefusal {
    /// The package is genuine but this home does not run it (its publisher
    /// is not trusted here, or it does not pass this runtime's checks): the
    /// resident is restored without the app.
    LeftOut(String),
    /// The package is not what it claims to be: the archive is refused.
    Altered(String),
}

/// An app the restore did not restore as it was, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppNote {
    pub app: AppId,
    pub reason: String,
}

/// What a restore did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestoreReport {
    /// What the archive held (equal to the counts its manifest records).
    pub summary: ExportSummary,
    /// Apps not restored (their documents, audit and outbox entries are).
    pub left_out: Vec<AppNote>,
    /// Apps restored on hold: they do not run until the resident decides.
    pub held: Vec<AppNote>,
}

fn refused(what: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("not a valid domicile export: {what}; nothing was restored"))
}

/// The entries of an archive, by name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Manifest,
    Documents,
    Changes,
    Audit,
    AppLog,
    Apps,
    Outbox,
    Notifications,
    Package(AppId),
    Schema(Doctype),
}

impl Part {
    fn of(path: &str) -> Option<Part> {
        let name = path.strip_prefix(ROOT)?.strip_prefix('/')?;
        Some(match name {
            "manifest.json" => Part::Manifest,
            "documents.jsonl" => Part::Documents,
            "changes.jsonl" => Part::Changes,
            "audit.jsonl" => Part::Audit,
            "app-log.jsonl" => Part::AppLog,
            "apps.jsonl" => Part::Apps,
            "outbox.jsonl" => Part::Outbox,
            "notifications.jsonl" => Part::Notifications,
            _ => {
                if let Some(id) = name.strip_prefix("packages/").and_then(|n| n.strip_suffix(".dpkg")) {
                    Part::Package(id.parse().ok()?)
                } else {
                    let doctype = name.strip_prefix("schemas/")?.strip_suffix(".json")?;
                    Part::Schema(doctype.parse().ok()?)
                }
            }
        })
    }

    const FIXED: [Part; 8] = [
        Part::Manifest,
        Part::Documents,
        Part::Changes,
        Part::Audit,
        Part::AppLog,
        Part::Apps,
        Part::Outbox,
        Part::Notifications,
    ];
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Manifest => f.write_str("manifest.json"),
            Part::Documents => f.write_str("documents.jsonl"),
            Part::Changes => f.write_str("changes.jsonl"),
            Part::Audit => f.write_str("audit.jsonl"),
            Part::AppLog => f.write_str("app-log.jsonl"),
            Part::Apps => f.write_str("apps.jsonl"),
            Part::Outbox => f.write_str("outbox.jsonl"),
            Part::Notifications => f.write_str("notifications.jsonl"),
            Part::Package(id) => write!(f, "packages/{id}.dpkg"),
            Part::Schema(doctype) => write!(f, "schemas/{doctype}.json"),
        }
    }
}

/// The JSON lines of one entry, each bounded, numbered from 1.
struct Lines<R> {
    input: BufReader<R>,
    part: Part,
    number: usize,
    line: Vec<u8>,
}

impl<R: Read> Lines<R> {
    fn new(input: R, part: Part) -> Self {
        Lines { input: BufReader::with_capacity(64 * 1024, input), part, number: 0, line: Vec::new() }
    }

    /// The next non-empty line, decoded.
    fn next<T: serde::de::DeserializeOwned>(&mut self) -> Result<Option<T>> {
        loop {
            self.line.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            let read = (&mut self.input)
                .take(limit)
                .read_until(b'\n', &mut self.line)
                .map_err(|e| refused(format!("{}: {e}", self.part)))?;
            if read == 0 {
                return Ok(None);
            }
            self.number += 1;
            if self.line.len() > MAX_LINE_BYTES {
                return Err(refused(format!(
                    "{} line {} is longer than {MAX_LINE_BYTES} bytes",
                    self.part, self.number
                )));
            }
            let text = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
            if text.is_empty() {
                continue;
            }
            return serde_json::from_slice(text)
                .map(Some)
                .map_err(|e| refused(format!("{} line {}: {e}", self.part, self.number)));
        }
    }

    fn at(&self) -> String {
        format!("{} line {}", self.part, self.number)
    }
}

/// Records of one tree, written in batches, whose keys must strictly
/// increase (as an export writes them): a duplicated or reordered record
/// is refused instead of silently overwriting another.
struct Ordered<'t> {
    tree: &'t sled::Tree,
    batch: sled::Batch,
    pending: usize,
    last: Option<Vec<u8>>,
}

impl<'t> Ordered<'t> {
    fn new(tree: &'t sled::Tree) -> Self {
        Ordered { tree, batch: sled::Batch::default(), pending: 0, last: None }
    }

    fn insert(&mut self, key: Vec<u8>, value: Vec<u8>, at: impl FnOnce() -> String) -> Result<()> {
        if self.last.as_ref().is_some_and(|last| &key <= last) {
            return Err(refused(format!("{}: a record repeats or is out of order", at())));
        }
        self.batch.insert(key.as_slice(), value);
        self.last = Some(key);
        self.pending += 1;
        if self.pending >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.tree.apply_batch(std::mem::take(&mut self.batch))?;
        self.pending = 0;
        Ok(())
    }
}

/// The highest sequence number the restored records use.
#[derive(Default)]
struct SeqFloor(u64);

impl SeqFloor {
    fn saw(&mut self, seq: u64, at: impl FnOnce() -> String) -> Result<()> {
        if seq > MAX_SEQUENCE {
            return Err(refused(format!("{}: sequence number {seq} is out of range", at())));
        }
        self.0 = self.0.max(seq);
        Ok(())
    }
}

/// The state of one restore, entry after entry.
struct Restoring<'a> {
    space: &'a ResidentSpace,
    vetting: &'a dyn PackageVetting,
    manifest: ArchiveManifest,
    /// The latest change-feed record of each document, to check provenance
    /// against (a tree, so that memory does not grow with the archive).
    latest: sled::Tree,
    seen: BTreeSet<Part>,
    counts: ExportSummary,
    usage: Usage,
    seq: SeqFloor,
    audit_head: Option<ChainHead>,
    /// App records waiting for their packages.
    apps: BTreeMap<AppId, InstalledApp>,
    /// Verified manifests of the restored apps (for the outbox check).
    restored: BTreeMap<AppId, Manifest>,
    report: RestoreReport,
}

impl Store {
    /// Rebuilds a resident's space from an export, under its own name or
    /// `as_name`, checking everything (see the module's documentation).
    /// The resident must not exist in this home yet; if the archive is
    /// refused, nothing is left behind.
    pub fn restore<R: Read>(
        &self,
        input: R,
        as_name: Option<&ResidentName>,
        vetting: &dyn PackageVetting,
    ) -> Result<(ResidentSpace, RestoreReport)> {
        let mut archive = tar::Archive::new(input);
        let mut entries = archive.entries().map_err(|e| refused(format!("it is not a tar archive ({e})")))?;
        let mut first = next_entry(&mut entries)?.ok_or_else(|| refused("it is empty"))?;
        if first.0 != Part::Manifest {
            return Err(refused(format!("it starts with {} instead of manifest.json", first.0)));
        }
        let manifest = read_manifest(&mut first.1)?;
        drop(first);
        let name = as_name.unwrap_or(&manifest.resident).clone();
        let name = &name;
        let space = self.begin_incoming(name)?;
        let outcome = (|| {
            let latest = space.db.open_tree(format!("{}restore", crate::STAGING_PREFIX))?;
            let mut restoring = Restoring {
                space: &space,
                vetting,
                manifest,
                latest,
                seen: BTreeSet::from([Part::Manifest]),
                counts: ExportSummary::default(),
                usage: Usage::default(),
                seq: SeqFloor::default(),
                audit_head: None,
                apps: BTreeMap::new(),
                restored: BTreeMap::new(),
                report: RestoreReport::default(),
            };
            while let Some((part, entry)) = next_entry(&mut entries)? {
                restoring.entry(part, entry)?;
            }
            restoring.finish()
        })();
        match outcome {
            Ok(report) => {
                let space = self.publish_incoming(space)?;
                // In a cluster a restore travels as a snapshot of the space.
                space.ship_snapshot_when_placed();
                Ok((space, report))
            }
            Err(e) => {
                self.discard_incoming(space)?;
                Err(e)
            }
        }
    }
}

type Entry<'a, R> = tar::Entry<'a, R>;

/// The next entry and what it is. Anything but a regular file of a known
/// name is refused before a byte of it is read.
fn next_entry<'a, R: Read>(entries: &mut tar::Entries<'a, R>) -> Result<Option<(Part, Entry<'a, R>)>> {
    let Some(entry) = entries.next() else { return Ok(None) };
    let entry = entry.map_err(|e| refused(format!("an unreadable tar entry ({e})")))?;
    let path = entry.path().map_err(|e| refused(format!("an entry with an unreadable name ({e})")))?;
    let path = path.to_string_lossy().into_owned();
    let shown: String = path.chars().take(120).collect::<String>().escape_debug().to_string();
    let part = Part::of(&path).ok_or_else(|| refused(format!("it holds `{shown}`, which no export contains")))?;
    if entry.header().entry_type() != tar::EntryType::Regular {
        return Err(refused(format!("{part} is not a regular file")));
    }
    Ok(Some((part, entry)))
}

fn read_manifest(entry: &mut impl Read) -> Result<ArchiveManifest> {
    let bytes = read_bounded(entry, &Part::Manifest, MAX_MANIFEST_BYTES)?;
    let manifest: ArchiveManifest =
        serde_json::from_slice(&bytes).map_err(|e| refused(format!("manifest.json: {e}")))?;
    if manifest.format != ROOT || manifest.version != EXPORT_FORMAT_VERSION {
        return Err(refused(format!(
            "format {} version {}, this runtime reads {ROOT} version {EXPORT_FORMAT_VERSION}",
            manifest.format, manifest.version
        )));
    }
    if manifest.sequence > MAX_SEQUENCE {
        return Err(refused(format!("manifest.json: sequence number {} is out of range", manifest.sequence)));
    }
    Ok(manifest)
}

/// Reads a whole entry of at most `max` bytes (checked before reading, and while reading).
fn read_bounded(entry: &mut impl Read, part: &Part, max: u64) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    entry.take(max + 1).read_to_end(&mut bytes).map_err(|e| refused(format!("{part}: {e}")))?;
    if bytes.len() as u64 > max {
        return Err(refused(format!("{part} is larger than {max} bytes")));
    }
    Ok(bytes)
}

impl Restoring<'_> {
    fn entry<R: Read>(&mut self, part: Part, mut entry: Entry<'_, R>) -> Result<()> {
        if self.seen.contains(&part) {
            return Err(refused(format!("{part} appears twice")));
        }
        let size = entry.size();
        match &part {
            Part::Manifest => unreachable!("seen first"),
            Part::Documents => self.documents(Lines::new(entry, part.clone()))?,
            Part::Changes => self.changes(Lines::new(entry, part.clone()))?,
            Part::Audit => self.audit(Lines::new(entry, part.clone()))?,
            Part::AppLog => self.app_log(Lines::new(entry, part.clone()))?,
            Part::Apps => self.app_records(Lines::new(entry, part.clone()))?,
            Part::Outbox => self.outbox(Lines::new(entry, part.clone()))?,
            Part::Notifications => self.notifications(Lines::new(entry, part.clone()))?,
            Part::Package(id) => {
                if size > MAX_PACKAGE_BYTES {
                    return Err(refused(format!("{part} is larger than {MAX_PACKAGE_BYTES} bytes")));
                }
                let Some(record) = self.apps.remove(id) else {
                    return Err(refused(format!("{part} belongs to no app of apps.jsonl (which comes before it)")));
                };
                let package = read_bounded(&mut entry, &part, MAX_PACKAGE_BYTES)?;
                self.package(record, &package)?;
            }
            Part::Schema(doctype) => {
                if size > MAX_SCHEMA_BYTES {
                    return Err(refused(format!("{part} is larger than {MAX_SCHEMA_BYTES} bytes")));
                }
                if self.space.vocabulary.get(doctype).is_none() {
                    return Err(refused(format!("{part} is the schema of a doctype this runtime does not know")));
                }
                // Documents are checked against this runtime's schema, not the archive's.
                std::io::copy(&mut entry, &mut std::io::sink()).map_err(|e| refused(format!("{part}: {e}")))?;
            }
        }
        self.seen.insert(part);
        Ok(())
    }

    fn documents(&mut self, mut lines: Lines<impl Read>) -> Result<()> {
        let space = self.space;
        let mut docs = Ordered::new(&space.docs);
        let mut index_entries = sled::Batch::default();
        while let Some(doc) = lines.next::<Document>()? {
            let at = || lines.at();
            check_body(&doc.body).map_err(|e| refused(format!("{}: {e}", at())))?;
            space.vocabulary.validate(&doc.doctype, &doc.body).map_err(|e| refused(format!("{}: {e}", at())))?;
            if doc.meta.created_at_ms > doc.meta.updated_at_ms {
                return Err(refused(format!("{}: the document was updated before it was created", at())));
            }
            if let Some(seq) = new_id_seq(doc.id.as_str()) {
                self.seq.0 = self.seq.0.max(seq);
            }
            let fields = space.vocabulary.indexes(&doc.doctype);
            for entry in index::entries(&doc.doctype, fields, doc.id.as_str(), &doc.body) {
                index_entries.insert(entry, doc.id.as_str().as_bytes());
            }
            let key = doc_key(&doc.doctype, &doc.id);
            let stored = encode(&StoredDoc { body: doc.body, meta: doc.meta });
            self.usage.documents += 1;
            self.usage.bytes += stored.len() as u64;
            docs.insert(key, stored, at)?;
            if docs.pending == 0 {
                space.index.apply_batch(std::mem::take(&mut index_entries))?;
            }
            self.counts.documents += 1;
        }
        docs.flush()?;
        space.index.apply_batch(index_entries)?;
        Ok(())
    }

    fn changes(&mut self, mut lines: Lines<impl Read>) -> Result<()> {
        let mut feed = Ordered::new(&self.space.changes);
        let mut latest = sled::Batch::default();
        while let Some(record) = lines.next::<ChangeRecord>()? {
            let at = || lines.at();
            self.seq.saw(record.seq, at)?;
            // Keys order a doctype's records by sequence: the last one seen of a document is its latest.
            latest.insert(doc_key(&record.doctype, &record.id), encode(&record));
            feed.insert(feed_key(&record.doctype, record.seq), encode(&record), at)?;
            if feed.pending == 0 {
                self.latest.apply_batch(std::mem::take(&mut latest))?;
            }
            self.counts.changes += 1;
        }
        feed.flush()?;
        self.latest.apply_batch(latest)?;
        Ok(())
    }

    fn audit(&mut self, mut lines: Lines<impl Read>) -> Result<()> {
        let mut log = Ordered::new(&self.space.audit);
        let mut chain = ChainCheck::default();
        while let Some(entry) = lines.next::<AuditEntry>()? {
            chain.push(self.counts.audit_entries + 1, &entry);
            if let Some(problem) = chain.problems.first() {
                return Err(refused(format!("{}: its audit log was altered: {problem}", lines.at())));
            }
            log.insert(entry.seq.to_be_bytes().to_vec(), encode(&entry), || lines.at())?;
            self.counts.audit_entries += 1;
        }
        log.flush()?;
        let last = chain.last_hash();
        if self.manifest.audit_head != hex::encode(last) {
            return Err(refused(format!(
                "its audit log ends at entry {} but manifest.json records another last entry: entries were removed or added",
                chain.entries
            )));
        }
        self.audit_head = (chain.entries > 0).then_some(ChainHead { seq: chain.entries, hash: last });
        Ok(())
    }

    fn app_log(&mut self, mut lines: Lines<impl Read>) -> Result<()> {
        let mut log = Ordered::new(&self.space.app_log);
        while let Some(line) = lines.next::<LoggedLine>()? {
            let at = || lines.at();
            self.seq.saw(line.seq, at)?;
            log.insert(line.seq.to_be_bytes().to_vec(), encode(&line.entry), at)?;
            self.counts.app_log_entries += 1;
        }
        log.flush()
    }

    fn app_records(&mut self, mut lines: Lines<impl Read>) -> Result<()> {
        while let Some(app) = lines.next::<InstalledApp>()? {
            if self.apps.len() >= MAX_APPS {
                return Err(refused(format!("{}: more than {MAX_APPS} apps", lines.at())));
            }
            if self.apps.insert(app.id().clone(), app).is_some() {
                return Err(refused(format!("{}: an app appears twice", lines.at())));
            }
            self.counts.apps += 1;
        }
        Ok(())
    }

    fn outbox(&mut self, mut lines: Lines<impl Read>) -> Result<()> {
        let mut outbox = Ordered::new(&self.space.outbox);
        while let Some(item) = lines.next::<OutboxItem>()? {
            let at = || lines.at();
            self.seq.saw(item.id, at)?;
            if item.payload.len() > MAX_PAYLOAD_BYTES {
                return Err(refused(format!("{}: the payload is over {MAX_PAYLOAD_BYTES} bytes", at())));
            }
            outbox.insert(item.id.to_be_bytes().to_vec(), encode(&item), at)?;
            self.counts.outbox += 1;
        }
        outbox.flush()
    }

    fn notifications(&mut self, mut lines: Lines<impl Read>) -> Result<()> {
        let mut notifications = Ordered::new(&self.space.notifications);
        while let Some(n) = lines.next::<Notification>()? {
            let at = || lines.at();
            self.seq.saw(n.seq, at)?;
            if n.title.chars().count() > MAX_NOTIFICATION_TITLE || n.body.chars().count() > MAX_NOTIFICATION_BODY {
                return Err(refused(format!("{}: a notification is longer than apps may write", at())));
            }
            notifications.insert(n.seq.to_be_bytes().to_vec(), encode(&n), at)?;
            self.counts.notifications += 1;
        }
        notifications.flush()
    }

    /// An app and its package: restored as the package proves it to be, left
    /// out, held, or the archive refused.
    fn package(&mut self, record: InstalledApp, package: &[u8]) -> Result<()> {
        let id = record.id().clone();
        let vetted = match self.vetting.vet(&id, package) {
            Ok(vetted) => vetted,
            Err(AppRefusal::LeftOut(reason)) => {
                self.report.left_out.push(AppNote { app: id, reason });
                return Ok(());
            }
            Err(AppRefusal::Altered(reason)) => return Err(refused(format!("the package of {id}: {reason}"))),
        };
        let matches = vetted.manifest == record.manifest
            && vetted.publisher == record.publisher
            && vetted.component_digest == record.component_digest;
        if !matches {
            return Err(refused(format!(
                "the record of {id} in apps.jsonl is not what its signed package says (manifest, publisher or digest were edited)"
            )));
        }
        let manifest = vetted.manifest;
        let held = match vetted.hold {
            Some(hold) => {
                self.report.held.push(AppNote { app: id.clone(), reason: hold.reason.clone() });
                Some(hold)
            }
            None => record.held,
        };
        let triggers_off =
            record.triggers_off.into_iter().filter(|k| manifest.triggers.iter().any(|t| &t.key() == k)).collect();
        let app = InstalledApp {
            grants: record.grants.restricted_to(&manifest),
            manifest,
            publisher: vetted.publisher,
            component_digest: vetted.component_digest,
            installed_at_ms: record.installed_at_ms,
            held,
            triggers_off,
        };
        self.space.put_app(&app, package)?;
        self.restored.insert(id, app.manifest);
        Ok(())
    }

    /// After the last entry: everything there, consistent, and counted as
    /// the manifest says; then the counters, recomputed.
    fn finish(mut self) -> Result<RestoreReport> {
        if let Some(missing) = Part::FIXED.iter().find(|p| !self.seen.contains(p)) {
            return Err(refused(format!("it has no {missing}")));
        }
        if let Some(id) = self.apps.keys().next() {
            return Err(refused(format!("the package of {id} is missing")));
        }
        if self.counts != self.manifest.counts {
            return Err(refused(format!(
                "manifest.json counts {:?} but it holds {:?}",
                self.manifest.counts, self.counts
            )));
        }
        self.check_provenance()?;
        self.check_outbox()?;
        let space = self.space;
        self.seq.saw(self.manifest.sequence, || "manifest.json".into())?;
        space.meta.insert(SEQ_KEY, &self.seq.0.to_be_bytes())?;
        if let Some(head) = self.audit_head {
            space.meta.insert(AUDIT_HEAD_KEY, encode(&head))?;
        }
        space.meta.insert(USAGE_KEY, encode(&self.usage))?;
        space.meta.insert(QUOTA_KEY, encode(&self.manifest.quota))?;
        space.db.drop_tree(self.latest.name())?;
        space.flush()?;
        self.report.summary = self.counts;
        Ok(self.report)
    }

    /// Each document's provenance must be what its latest change-feed record
    /// says, and every document the feed says exists must be there.
    fn check_provenance(&self) -> Result<()> {
        let mut docs = self.space.docs.iter().peekable();
        for item in self.latest.iter() {
            let (key, value) = item?;
            let record: ChangeRecord = decode("a change record", &value)?;
            // Documents before this key have no change record at all.
            if let Some(Ok((doc_key, _))) = docs.peek() {
                if doc_key.as_ref() < key.as_ref() {
                    let (doctype, _) = parse_doc_key(doc_key)?;
                    return Err(refused(format!(
                        "a document of `{doctype}` has no record in changes.jsonl: documents were added"
                    )));
                }
            }
            let here = match docs.peek() {
                Some(Ok((doc_key, _))) if doc_key.as_ref() == key.as_ref() => docs.next().transpose()?.map(|(_, v)| v),
                Some(Err(_)) => return Err(docs.next().expect("peeked").expect_err("peeked an error").into()),
                _ => None,
            };
            let doctype = &record.doctype;
            match (record.op, here) {
                (ChangeOp::Put, None) => {
                    return Err(refused(format!(
                        "a document of `{doctype}` that changes.jsonl says exists is missing: documents were removed"
                    )))
                }
                (ChangeOp::Delete, Some(_)) => {
                    return Err(refused(format!(
                        "a document of `{doctype}` that changes.jsonl says was deleted is there: documents were added"
                    )))
                }
                (ChangeOp::Put, Some(bytes)) => {
                    let stored: StoredDoc = decode("a document", &bytes)?;
                    if stored.meta.updated_at_ms != record.at_ms || stored.meta.updated_by != record.by {
                        return Err(refused(format!(
                            "a document of `{doctype}` says it was last written by someone or at a time its change record does not: its provenance was edited"
                        )));
                    }
                }
                (ChangeOp::Delete, None) => {}
            }
        }
        if let Some(item) = docs.next() {
            let (doc_key, _) = item?;
            let (doctype, _) = parse_doc_key(&doc_key)?;
            return Err(refused(format!(
                "a document of `{doctype}` has no record in changes.jsonl: documents were added"
            )));
        }
        Ok(())
    }

    /// A pending item may only go where its app's signed manifest says (an
    /// app cannot queue anything else). Items of apps left out stay, and
    /// cannot be approved while the app is not installed.
    fn check_outbox(&self) -> Result<()> {
        for value in self.space.outbox.iter().values() {
            let item: OutboxItem = decode("an outbox item", &value?)?;
            if item.status != OutboxStatus::Pending {
                continue;
            }
            if let Some(manifest) = self.restored.get(&item.app) {
                if !manifest.declares_destination(&item.destination) {
                    return Err(refused(format!(
                        "outbox item {} of {} goes to a destination its signed manifest does not declare",
                        item.id, item.app
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The sequence number in an id made by [`ResidentSpace::new_doc_id`], if
/// `id` is one and in range.
fn new_id_seq(id: &str) -> Option<u64> {
    if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u64::from_str_radix(id, 16).ok().filter(|&n| n <= MAX_SEQUENCE)
}
