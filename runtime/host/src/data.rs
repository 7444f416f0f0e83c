//! Host side of the `data`, `log` and `clock` interfaces.
//!
//! Every data call is checked against the app's grants, read fresh from the
//! store so that a revocation takes effect at the app's next call, and is
//! written to the audit log whether it was allowed or denied. Reads are
//! projected onto the fields the manifest declared, in the host: the app
//! never receives the other fields.

use domicile_manifest::{Access, Doctype};
use domicile_store::{
    AuditEntry, Author, Change, DocId, Document, Operation, Outcome, QueryPosition, Selector, StoreError,
};
use serde_json::Value;
use wasmtime::component::Resource;

use crate::bindings::{clock, data, log, types};
use crate::sandbox::{Invocation, Writes};

/// Largest batch one `cursor.next` returns, whatever the app asks.
pub const MAX_BATCH: u32 = 1000;

/// An open query of one invocation.
pub struct CursorState {
    doctype: Doctype,
    selector: Selector,
    position: QueryPosition,
    /// Documents the query may still return (its `limit`).
    remaining: u64,
    done: bool,
}

type Reply<T> = wasmtime::Result<Result<T, types::Error>>;

/// Storage failures are the host's problem, not the app's: they trap.
fn host_failure(e: StoreError) -> wasmtime::Error {
    wasmtime::Error::msg(format!("storage failure: {e}"))
}

/// An error the app caused, as the WIT error it receives.
fn app_error(e: StoreError) -> Result<types::Error, wasmtime::Error> {
    Ok(match e {
        StoreError::NotFound(m) => types::Error::NotFound(m),
        StoreError::Invalid(m) => types::Error::Invalid(m),
        StoreError::Limit(m) => types::Error::Limit(m),
        other => return Err(host_failure(other)),
    })
}

impl Invocation {
    fn audit_entry(&self, operation: Operation, doctype: &str, documents: u64, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at_ms: self.clock.now_ms(),
            app: self.app.manifest.id.clone(),
            app_version: self.app.manifest.version.to_string(),
            operation,
            doctype: doctype.chars().take(200).collect(),
            documents,
            outcome,
        }
    }

    fn author(&self) -> Author {
        Author::App { id: self.app.manifest.id.to_string(), version: self.app.manifest.version.to_string() }
    }

    /// Checks one access against the current grants; a denial is audited.
    fn authorize(&mut self, operation: Operation, doctype: &str, access: Access) -> Reply<Doctype> {
        let parsed: Result<Doctype, _> = doctype.parse();
        let granted = match &parsed {
            Ok(d) => match self.space.grants(&self.app.manifest.id) {
                Ok(grants) => grants.allows(d, access),
                // Uninstalled while running: nothing is granted any more.
                Err(StoreError::UnknownApp(_)) => false,
                Err(e) => return Err(host_failure(e)),
            },
            Err(_) => false,
        };
        if let (true, Ok(doctype)) = (granted, &parsed) {
            return Ok(Ok(doctype.clone()));
        }
        let entry = self.audit_entry(operation, doctype, 0, Outcome::Denied);
        self.space.record_audit(&[entry]).map_err(host_failure)?;
        let reason = match parsed {
            Err(e) => return Ok(Err(types::Error::Invalid(e.to_string()))),
            Ok(d) if self.app.manifest.permission(&d).is_some_and(|p| p.access.contains(access)) => {
                format!("{access} access to `{d}` is not granted by the resident")
            }
            Ok(d) => format!("the app's manifest does not declare {access} access to `{d}`"),
        };
        Ok(Err(types::Error::Denied(reason)))
    }

    /// The document as this app may see it: only the declared fields.
    fn project(&self, doc: Document) -> types::Doc {
        let fields = self.app.manifest.permission(&doc.doctype).and_then(|p| p.fields.as_ref());
        let body = match (fields, doc.body) {
            (Some(fields), Value::Object(mut map)) => {
                map.retain(|k, _| fields.iter().any(|f| f.as_str() == k));
                Value::Object(map)
            }
            (_, body) => body,
        };
        types::Doc { id: doc.id.to_string(), body: body.to_string() }
    }

    /// Applies one write: durably now (services) or staged (importers).
    fn write(&mut self, operation: Operation, change: Change, doctype: &Doctype) -> Reply<()> {
        match &mut self.writes {
            Writes::Durable => {
                let audit = self.audit_entry(operation, doctype.as_str(), 1, Outcome::Allowed);
                match self.space.commit(&[change], &self.author(), self.clock.now_ms(), &[audit]) {
                    Ok(()) => Ok(Ok(())),
                    Err(e) => Ok(Err(app_error(e)?)),
                }
            }
            Writes::Staged { changes, counts } => {
                if let Change::Put { body, .. } = &change {
                    if let Err(e) = domicile_store::check_body(body) {
                        return Ok(Err(app_error(e)?));
                    }
                }
                changes.push(change);
                *counts.entry((doctype.clone(), operation)).or_default() += 1;
                Ok(Ok(()))
            }
        }
    }

    /// A document as this invocation sees it: its own staged writes first.
    fn read(&self, doctype: &Doctype, id: &DocId) -> Result<Option<Document>, StoreError> {
        if let Writes::Staged { changes, .. } = &self.writes {
            for change in changes.iter().rev() {
                match change {
                    Change::Put { doctype: d, id: i, body } if d == doctype && i == id => {
                        let mut doc = self.space.get(doctype, id)?.unwrap_or_else(|| Document {
                            doctype: d.clone(),
                            id: i.clone(),
                            body: Value::Null,
                            meta: staged_meta(self.author(), self.clock.now_ms()),
                        });
                        doc.body = body.clone();
                        return Ok(Some(doc));
                    }
                    Change::Delete { doctype: d, id: i } if d == doctype && i == id => return Ok(None),
                    _ => {}
                }
            }
        }
        self.space.get(doctype, id)
    }
}

fn staged_meta(author: Author, at_ms: u64) -> domicile_store::Meta {
    domicile_store::Meta { created_at_ms: at_ms, created_by: author.clone(), updated_at_ms: at_ms, updated_by: author }
}

fn parse_id(id: &str) -> Result<DocId, types::Error> {
    id.parse().map_err(|e: StoreError| types::Error::Invalid(e.to_string()))
}

impl types::Host for Invocation {}

impl data::Host for Invocation {
    fn get(&mut self, doctype: String, id: String) -> Reply<types::Doc> {
        let doctype = match self.authorize(Operation::Get, &doctype, Access::Read)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let id = match parse_id(&id) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        let doc = self.read(&doctype, &id).map_err(host_failure)?;
        let entry = self.audit_entry(Operation::Get, doctype.as_str(), doc.is_some() as u64, Outcome::Allowed);
        self.space.record_audit(&[entry]).map_err(host_failure)?;
        Ok(match doc {
            Some(doc) => Ok(self.project(doc)),
            None => Err(types::Error::NotFound(format!("no document `{id}` of type `{doctype}`"))),
        })
    }

    fn put(&mut self, doctype: String, id: Option<String>, body: String) -> Reply<String> {
        let doctype = match self.authorize(Operation::Put, &doctype, Access::Write)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let id = match id.as_deref().map(parse_id) {
            Some(Ok(id)) => id,
            Some(Err(e)) => return Ok(Err(e)),
            None => self.space.new_doc_id().map_err(host_failure)?,
        };
        let body: Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(e) => return Ok(Err(types::Error::Invalid(format!("document body is not JSON: {e}")))),
        };
        let change = Change::Put { doctype: doctype.clone(), id: id.clone(), body };
        Ok(self.write(Operation::Put, change, &doctype)?.map(|()| id.to_string()))
    }

    fn delete(&mut self, doctype: String, id: String) -> Reply<()> {
        let doctype = match self.authorize(Operation::Delete, &doctype, Access::Delete)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let id = match parse_id(&id) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        if self.read(&doctype, &id).map_err(host_failure)?.is_none() {
            return Ok(Err(types::Error::NotFound(format!("no document `{id}` of type `{doctype}`"))));
        }
        self.write(Operation::Delete, Change::Delete { doctype: doctype.clone(), id }, &doctype)
    }

    fn query(
        &mut self,
        doctype: String,
        selector: String,
        options: data::QueryOptions,
    ) -> Reply<Resource<CursorState>> {
        let doctype = match self.authorize(Operation::Query, &doctype, Access::Read)? {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        let selector = match Selector::parse(&selector) {
            Ok(s) => s,
            Err(e) => return Ok(Err(app_error(e)?)),
        };
        // Matching on a field the app may not read would leak it, one
        // comparison at a time.
        let visible = self.app.manifest.permission(&doctype).and_then(|p| p.fields.as_ref());
        if let Some(fields) = visible {
            if let Some(hidden) = selector.top_level_fields().find(|f| !fields.iter().any(|v| v.as_str() == *f)) {
                let entry = self.audit_entry(Operation::Query, doctype.as_str(), 0, Outcome::Denied);
                self.space.record_audit(&[entry]).map_err(host_failure)?;
                return Ok(Err(types::Error::Denied(format!(
                    "the selector uses `{hidden}`, a field of `{doctype}` the app may not read"
                ))));
            }
        }
        let cursor = CursorState {
            doctype,
            selector,
            position: QueryPosition::default(),
            remaining: options.limit.map_or(u64::MAX, u64::from),
            done: false,
        };
        match self.table.push(cursor) {
            Ok(handle) => Ok(Ok(handle)),
            Err(_) => Ok(Err(types::Error::Limit("too many open cursors".into()))),
        }
    }
}

impl data::HostCursor for Invocation {
    fn next(&mut self, cursor: Resource<CursorState>, max: u32) -> Reply<Vec<types::Doc>> {
        let doctype = self.table.get(&cursor)?.doctype.clone();
        // Re-checked per batch: a revocation stops a query already open.
        if let Err(e) = self.authorize(Operation::Query, doctype.as_str(), Access::Read)? {
            return Ok(Err(e));
        }
        let state = self.table.get(&cursor)?;
        if state.done || state.remaining == 0 {
            return Ok(Ok(Vec::new()));
        }
        let max = u64::from(max.clamp(1, MAX_BATCH)).min(state.remaining) as usize;
        let (docs, position) =
            self.space.query_page(&state.doctype, &state.selector, &state.position, max).map_err(host_failure)?;
        let state = self.table.get_mut(&cursor)?;
        // A page stops early only at the end of the doctype.
        state.done = docs.len() < max;
        state.position = position;
        state.remaining -= docs.len() as u64;
        let entry = self.audit_entry(Operation::Query, doctype.as_str(), docs.len() as u64, Outcome::Allowed);
        self.space.record_audit(&[entry]).map_err(host_failure)?;
        Ok(Ok(docs.into_iter().map(|d| self.project(d)).collect()))
    }

    fn drop(&mut self, cursor: Resource<CursorState>) -> wasmtime::Result<()> {
        self.table.delete(cursor)?;
        Ok(())
    }
}

impl log::Host for Invocation {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.push_log(level, &message);
        Ok(())
    }
}

impl clock::Host for Invocation {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        Ok(self.clock.now_ms())
    }
}
