//! What every host capability of an invocation shares, and nothing more:
//! whose space it runs in, which app it is, its clock, the limits it
//! charges each call to, and the audit trail each access is written to.
//! How a host call answers (an app's error, or a trap) is here too.
//!
//! Each capability (`data`, `outbound`, `report`, `app_log`, `wasi`,
//! `dev_source`) keeps its own state and sees this one beside it, as
//! Spin's factors see their runtime's: no capability reaches into
//! another's state.

use std::sync::Arc;

use domicile_store::{AuditEntry, Author, InstalledApp, Operation, Outcome, ResidentSpace, StoreError};

use crate::bindings::types;
use crate::limits::Limiter;
use crate::Clock;

/// The part of an invocation every capability sees.
pub(crate) struct Shared {
    pub(crate) space: ResidentSpace,
    pub(crate) app: Arc<InstalledApp>,
    pub(crate) clock: Clock,
    pub(crate) limiter: Limiter,
    /// Whether audit entries were recorded that are not yet flushed.
    unflushed_audit: bool,
    /// Accesses refused to the app (grants, undeclared destinations).
    denials: u64,
}

impl Shared {
    pub(crate) fn new(space: ResidentSpace, app: Arc<InstalledApp>, clock: Clock, limiter: Limiter) -> Shared {
        Shared { space, app, clock, limiter, unflushed_audit: false, denials: 0 }
    }

    pub(crate) fn audit_entry(
        &self,
        operation: Operation,
        doctype: &str,
        documents: u64,
        outcome: Outcome,
    ) -> AuditEntry {
        AuditEntry {
            seq: 0,
            at_ms: self.clock.now_ms(),
            app: self.app.manifest.id.clone(),
            app_version: self.app.manifest.version.to_string(),
            operation,
            doctype: doctype.chars().take(200).collect(),
            documents,
            outcome,
            destination: None,
            hash: String::new(),
        }
    }

    pub(crate) fn author(&self) -> Author {
        Author::App { id: self.app.manifest.id.to_string(), version: self.app.manifest.version.to_string() }
    }

    /// Appends audit entries of accesses that wrote nothing (reads,
    /// denials); the invocation flushes them when it ends.
    pub(crate) fn record_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.unflushed_audit = true;
        self.denials += entries.iter().filter(|e| e.outcome == Outcome::Denied).count() as u64;
        self.space.record_audit(entries)
    }

    /// How many accesses were refused to the app in this invocation.
    pub(crate) fn denials(&self) -> u64 {
        self.denials
    }

    /// Whether the end of the invocation must flush the store.
    pub(crate) fn has_unflushed_audit(&self) -> bool {
        self.unflushed_audit
    }
}

/// Declares `$marker`, the type bindgen's `add_to_linker` takes to know
/// that a capability's interfaces are served by its view `$view<'a>`.
macro_rules! served_by {
    ($marker:ident, $view:ident) => {
        struct $marker;

        impl wasmtime::component::HasData for $marker {
            type Data<'a> = $view<'a>;
        }
    };
}
pub(crate) use served_by;

pub(crate) type Reply<T> = wasmtime::Result<Result<T, types::Error>>;

/// Why a host call did not succeed: because of the app (it receives a WIT
/// error and carries on) or because of the host (storage failure: a trap).
#[derive(Debug)]
pub(crate) enum Refusal {
    App(types::Error),
    Host(wasmtime::Error),
}

impl From<types::Error> for Refusal {
    fn from(e: types::Error) -> Self {
        Refusal::App(e)
    }
}

impl From<wasmtime::Error> for Refusal {
    fn from(e: wasmtime::Error) -> Self {
        Refusal::Host(e)
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Refusal::App(types::Error::NotFound(m)),
            StoreError::Invalid(m) => Refusal::App(types::Error::Invalid(m)),
            StoreError::Limit(m) => Refusal::App(types::Error::Limit(m)),
            other => Refusal::Host(wasmtime::Error::msg(format!("storage failure: {other}"))),
        }
    }
}

/// The shape bindgen wants: app errors inside, host errors outside.
pub(crate) fn reply<T>(result: Result<T, Refusal>) -> Reply<T> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(Refusal::App(e)) => Ok(Err(e)),
        Err(Refusal::Host(e)) => Err(e),
    }
}
