//! Host side of the `data` interface: the resident's documents, as the
//! app's grants let it see them.
//!
//! Every data call is checked against the app's grants, read fresh from the
//! store so that a revocation takes effect at the app's next call, and is
//! written to the audit log whether it was allowed or denied. Reads are
//! projected onto the fields the manifest declared and the resident granted,
//! in the host: the app never receives the other fields.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use domicile_manifest::{Access, Doctype, FieldName, Grants};
use domicile_store::{
    Author, Change, DocId, Document, FieldPath, Import, Operation, Outcome, Query, Selector, Sort, Staged, StoreError,
};
use serde_json::Value;
use wasmtime::component::{Linker, Resource, ResourceTable};

use crate::bindings::{data, types};
use crate::cursor::CursorState;
use crate::shared::{reply, Refusal, Reply, Shared};

/// Where an invocation's writes go: the data capability's state.
pub(crate) enum Writes {
    /// Services: each write is committed and flushed before the call returns.
    Durable,
    /// Importers: writes are staged (on disk, not in memory) and committed
    /// together when the import succeeds, so a failed import leaves the
    /// store as it was.
    Staged { import: Box<Import>, counts: BTreeMap<(Doctype, Operation), u64>, progress: Arc<crate::ImportProgress> },
}

/// The data capability, as the `data` interface sees it: its writes, the
/// resource table its cursors live in, and what every capability shares.
pub(crate) struct DataView<'a> {
    pub(crate) writes: &'a mut Writes,
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) shared: &'a mut Shared,
}

crate::shared::served_by!(DataCapability, DataView);

/// Links `data` (and the `types` it uses), each call reaching the state
/// `view` gives.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> DataView<'_>,
) -> wasmtime::Result<()> {
    types::add_to_linker::<T, DataCapability>(linker, view)?;
    data::add_to_linker::<T, DataCapability>(linker, view)
}

/// Largest batch one `cursor.next` returns, whatever the app asks.
pub const MAX_BATCH: u32 = 1000;

/// An access the grants allow, and the fields a read may return.
pub(crate) struct Allowed {
    doctype: Doctype,
    fields: Option<BTreeSet<FieldName>>,
}

impl Allowed {
    /// The document as this app may see it now: only the granted fields.
    /// Done here, in the host: the app never receives the other fields.
    fn project(&self, doc: Document) -> types::Doc {
        let body = match (&self.fields, doc.body) {
            (Some(fields), Value::Object(mut map)) => {
                map.retain(|k, _| fields.iter().any(|f| f.as_str() == k));
                Value::Object(map)
            }
            (_, body) => body,
        };
        types::Doc { id: doc.id.to_string(), body: body.to_string() }
    }
}

impl DataView<'_> {
    /// Records a refused access, and returns the refusal for the app.
    fn deny(&mut self, operation: Operation, doctype: &str, reason: String) -> Refusal {
        let entry = self.shared.audit_entry(operation, doctype, 0, Outcome::Denied);
        match self.shared.record_audit(&[entry]) {
            Ok(()) => Refusal::App(types::Error::Denied(reason)),
            Err(e) => e.into(),
        }
    }

    /// Checks one access against the current grants; a denial is audited.
    /// Returns the doctype and, for reads, the fields the app may see now.
    fn authorize(&mut self, operation: Operation, doctype: &str, access: Access) -> Result<Allowed, Refusal> {
        let doctype_name = doctype;
        let doctype: Doctype = match doctype.parse() {
            Ok(d) => d,
            Err(e) => {
                self.shared.record_audit(&[self.shared.audit_entry(operation, doctype_name, 0, Outcome::Denied)])?;
                return Err(types::Error::Invalid(format!("{e}")).into());
            }
        };
        let current = match self.shared.space.app_now(&self.shared.app.manifest.id) {
            Ok(app) => Some(app),
            // Uninstalled while running: nothing is granted any more.
            Err(StoreError::UnknownApp(_)) => None,
            Err(e) => return Err(e.into()),
        };
        let no_grants = Grants::default();
        let grants = current.as_ref().map_or(&no_grants, |app| &app.grants);
        if grants.allows(&doctype, access) {
            let fields = grants.readable_fields(&self.shared.app.manifest, &doctype);
            return Ok(Allowed { doctype, fields });
        }
        let app = &self.shared.app.manifest.id;
        let reason = if self.shared.app.manifest.permission(&doctype).is_some_and(|p| p.access.contains(access)) {
            format!(
                "{access} access to `{doctype}` is not granted by the resident: they may grant it with `domicile grant {app} {doctype}:{access}`"
            )
        } else {
            format!(
                "the app's manifest does not declare {access} access to `{doctype}`: add it to a `[[permissions]]` of the manifest, with its purpose; the resident is asked to grant it when they install or update the app"
            )
        };
        Err(self.deny(operation, doctype.as_str(), reason))
    }

    /// Matching or ordering on a field the app may not read would leak it,
    /// one comparison at a time: such a query is denied (and audited).
    fn ensure_readable<'f>(
        &mut self,
        allowed: &Allowed,
        mut used: impl Iterator<Item = &'f str>,
    ) -> Result<(), Refusal> {
        let Some(fields) = &allowed.fields else { return Ok(()) };
        if let Some(hidden) = used.find(|f| !fields.iter().any(|v| v.as_str() == *f)) {
            let doctype = &allowed.doctype;
            let declared = self.shared.app.manifest.permission(doctype).and_then(|p| p.fields.as_ref());
            let fix = if declared.is_none_or(|declared| declared.iter().any(|d| d.as_str() == hidden)) {
                format!(
                    "the resident did not grant it; they may with `domicile grant {} {doctype}:read:{hidden}`",
                    self.shared.app.manifest.id
                )
            } else {
                format!(
                    "add it to the `fields` of the manifest's permission for `{doctype}`; the resident is asked to grant it when they install or update the app"
                )
            };
            let reason = format!("the query uses `{hidden}`, a field of `{doctype}` the app may not read: {fix}");
            return Err(self.deny(Operation::Query, doctype.as_str(), reason));
        }
        Ok(())
    }

    /// Applies one write: durably now (services) or staged (importers).
    fn write(&mut self, operation: Operation, change: Change, doctype: &Doctype) -> Result<(), Refusal> {
        match &mut *self.writes {
            Writes::Durable => {
                let audit = self.shared.audit_entry(operation, doctype.as_str(), 1, Outcome::Allowed);
                self.shared.space.commit(&[change], &self.shared.author(), self.shared.clock.now_ms(), &[audit])?;
            }
            Writes::Staged { import, counts, progress } => {
                // Checked now, so the app learns which document is invalid; not again at commit.
                import.stage(&change)?;
                *counts.entry((doctype.clone(), operation)).or_default() += 1;
                progress.wrote();
            }
        }
        Ok(())
    }

    /// A document as this invocation sees it: its own staged writes first.
    fn read(&self, doctype: &Doctype, id: &DocId) -> Result<Option<Document>, StoreError> {
        if let Writes::Staged { import, .. } = &*self.writes {
            if let Some(staged) = import.staged(doctype, id)? {
                return match staged {
                    Staged::Put(body) => {
                        let mut doc = self.shared.space.get(doctype, id)?.unwrap_or_else(|| Document {
                            doctype: doctype.clone(),
                            id: id.clone(),
                            body: Value::Null,
                            meta: staged_meta(self.shared.author(), self.shared.clock.now_ms()),
                        });
                        doc.body = body;
                        Ok(Some(doc))
                    }
                    Staged::Delete => Ok(None),
                };
            }
        }
        self.shared.space.get(doctype, id)
    }

    fn get_doc(&mut self, doctype: &str, id: &str) -> Result<types::Doc, Refusal> {
        let allowed = self.authorize(Operation::Get, doctype, Access::Read)?;
        let doctype = &allowed.doctype;
        let id = parse_id(id)?;
        let doc = self.read(doctype, &id)?;
        let entry = self.shared.audit_entry(Operation::Get, doctype.as_str(), doc.is_some() as u64, Outcome::Allowed);
        self.shared.record_audit(&[entry])?;
        match doc {
            Some(doc) => Ok(allowed.project(doc)),
            None => Err(types::Error::NotFound(format!("no document `{id}` of type `{doctype}`")).into()),
        }
    }

    fn put_doc(&mut self, doctype: &str, id: Option<&str>, body: &str) -> Result<String, Refusal> {
        let doctype = self.authorize(Operation::Put, doctype, Access::Write)?.doctype;
        let body: Value =
            serde_json::from_str(body).map_err(|e| types::Error::Invalid(format!("document body is not JSON: {e}")))?;
        let id = match id {
            Some(id) => parse_id(id)?,
            None => self.shared.space.id_for(&doctype, &body)?,
        };
        self.write(Operation::Put, Change::Put { doctype: doctype.clone(), id: id.clone(), body }, &doctype)?;
        Ok(id.to_string())
    }

    fn delete_doc(&mut self, doctype: &str, id: &str) -> Result<(), Refusal> {
        let doctype = self.authorize(Operation::Delete, doctype, Access::Delete)?.doctype;
        let id = parse_id(id)?;
        if self.read(&doctype, &id)?.is_none() {
            return Err(types::Error::NotFound(format!("no document `{id}` of type `{doctype}`")).into());
        }
        self.write(Operation::Delete, Change::Delete { doctype: doctype.clone(), id }, &doctype)
    }

    fn open_query(
        &mut self,
        doctype: &str,
        selector: &str,
        options: data::QueryOptions,
    ) -> Result<Resource<CursorState>, Refusal> {
        let allowed = self.authorize(Operation::Query, doctype, Access::Read)?;
        let selector = Selector::parse(selector)?;
        let sort = match options.sort {
            Some(order) => Some(Sort { field: FieldPath::parse(&order.field)?, descending: order.descending }),
            None => None,
        };
        let uses: Vec<String> =
            selector.top_level_fields().chain(sort.as_ref().map(|s| s.field.top())).map(str::to_owned).collect();
        self.ensure_readable(&allowed, uses.iter().map(String::as_str))?;
        let query = Query { doctype: allowed.doctype, selector, sort, limit: options.limit.map(u64::from) };
        let cursor = self.shared.space.query(query)?;
        self.table
            .push(CursorState { cursor, uses })
            .map_err(|_| types::Error::Limit("too many open cursors".into()).into())
    }

    fn next_batch(&mut self, cursor: &Resource<CursorState>, max: u32) -> Result<Vec<types::Doc>, Refusal> {
        let state = self.table.get(cursor).map_err(wasmtime::Error::from)?;
        let (doctype, uses) = (state.cursor.doctype().clone(), state.uses.clone());
        // Re-checked per batch: a revocation, or fewer granted fields, stops
        // a query already open.
        let allowed = self.authorize(Operation::Query, doctype.as_str(), Access::Read)?;
        self.ensure_readable(&allowed, uses.iter().map(String::as_str))?;
        let state = self.table.get_mut(cursor).map_err(wasmtime::Error::from)?;
        if state.cursor.is_done() {
            return Ok(Vec::new());
        }
        let docs = self.shared.space.next_page(&mut state.cursor, max.clamp(1, MAX_BATCH) as usize)?;
        let entry = self.shared.audit_entry(Operation::Query, doctype.as_str(), docs.len() as u64, Outcome::Allowed);
        self.shared.record_audit(&[entry])?;
        Ok(docs.into_iter().map(|d| allowed.project(d)).collect())
    }
}

fn staged_meta(author: Author, at_ms: u64) -> domicile_store::Meta {
    domicile_store::Meta { created_at_ms: at_ms, created_by: author.clone(), updated_at_ms: at_ms, updated_by: author }
}

fn parse_id(id: &str) -> Result<DocId, types::Error> {
    id.parse().map_err(|e: StoreError| types::Error::Invalid(e.to_string()))
}

impl types::Host for DataView<'_> {}

impl data::Host for DataView<'_> {
    fn get(&mut self, doctype: String, id: String) -> Reply<types::Doc> {
        self.shared.limiter.charge_call()?;
        let doc = reply(self.get_doc(&doctype, &id))?;
        if doc.is_ok() {
            self.shared.limiter.charge_documents(1)?;
        }
        Ok(doc)
    }

    fn put(&mut self, doctype: String, id: Option<String>, body: String) -> Reply<String> {
        self.shared.limiter.charge_call()?;
        reply(self.put_doc(&doctype, id.as_deref(), &body))
    }

    fn delete(&mut self, doctype: String, id: String) -> Reply<()> {
        self.shared.limiter.charge_call()?;
        reply(self.delete_doc(&doctype, &id))
    }

    fn query(
        &mut self,
        doctype: String,
        selector: String,
        options: data::QueryOptions,
    ) -> Reply<Resource<CursorState>> {
        self.shared.limiter.charge_call()?;
        reply(self.open_query(&doctype, &selector, options))
    }
}

impl data::HostCursor for DataView<'_> {
    fn next(&mut self, cursor: Resource<CursorState>, max: u32) -> Reply<Vec<types::Doc>> {
        self.shared.limiter.charge_call()?;
        let batch = reply(self.next_batch(&cursor, max))?;
        if let Ok(docs) = &batch {
            self.shared.limiter.charge_documents(docs.len() as u64)?;
        }
        Ok(batch)
    }

    fn drop(&mut self, cursor: Resource<CursorState>) -> wasmtime::Result<()> {
        self.table.delete(cursor)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use domicile_manifest::Manifest;
    use domicile_store::{InstalledApp, Store, Vocabulary};
    use serde_json::json;

    use super::*;
    use crate::limits::Limiter;
    use crate::{Clock, LimitCaps, ResolvedLimits};

    const IMPORTER: &str = r#"
manifest-version = 1
id = "org.example.test.notes"
name = "Notes importer (test)"
version = "0.1.0"
world = "importer"
description = "Test: writes notes."

[[permissions]]
doctype = "org.example.note"
access = ["read", "write", "delete"]
purpose = "Keep the notes found in the files you import"
"#;

    #[test]
    fn an_importer_reads_its_own_staged_writes_latest_first_and_the_store_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store"), Arc::new(Vocabulary::builtin())).unwrap();
        let space = store.create_resident(&"me".parse().unwrap()).unwrap();
        let note: Doctype = "org.example.note".parse().unwrap();
        let (a, b, c): (DocId, DocId, DocId) = ("a".parse().unwrap(), "b".parse().unwrap(), "c".parse().unwrap());
        let stored = Change::Put { doctype: note.clone(), id: c.clone(), body: json!({ "text": "on disk" }) };
        space.commit(&[stored], &Author::Resident, 0, &[]).unwrap();

        let manifest = Manifest::parse(IMPORTER).unwrap();
        let app = InstalledApp {
            grants: Grants::all(&manifest),
            manifest,
            publisher: String::new(),
            component_digest: String::new(),
            installed_at_ms: 0,
            held: None,
            triggers_off: Default::default(),
        };
        let writes = Writes::Staged {
            import: Box::new(space.begin_import().unwrap()),
            counts: Default::default(),
            progress: Default::default(),
        };
        let limits = ResolvedLimits::of(&LimitCaps::default(), &app.manifest.limits);
        let mut shared = Shared::new(space.clone(), Arc::new(app), Clock::Fixed(1), Limiter::new(&limits));
        let (mut writes, mut table) = (writes, ResourceTable::new());
        let mut inv = DataView { writes: &mut writes, table: &mut table, shared: &mut shared };
        let put = |id: &DocId, text: &str| Change::Put {
            doctype: note.clone(),
            id: id.clone(),
            body: json!({ "text": text }),
        };

        inv.write(Operation::Put, put(&a, "first"), &note).unwrap();
        inv.write(Operation::Put, put(&b, "other"), &note).unwrap();
        inv.write(Operation::Put, put(&a, "second"), &note).unwrap();
        assert_eq!(inv.read(&note, &a).unwrap().unwrap().body, json!({ "text": "second" }));
        assert_eq!(inv.read(&note, &b).unwrap().unwrap().body, json!({ "text": "other" }));
        assert_eq!(inv.read(&note, &c).unwrap().unwrap().body, json!({ "text": "on disk" }), "not staged: the store");
        inv.write(Operation::Delete, Change::Delete { doctype: note.clone(), id: c.clone() }, &note).unwrap();
        assert!(inv.read(&note, &c).unwrap().is_none(), "a staged delete hides the stored document");
        inv.write(Operation::Put, put(&c, "back"), &note).unwrap();
        assert_eq!(inv.read(&note, &c).unwrap().unwrap().body, json!({ "text": "back" }));
        assert_eq!(space.get(&note, &a).unwrap(), None, "nothing is in the store before the commit");
    }
}
