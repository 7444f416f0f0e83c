//! The app's log (WIT `log`), and its clock (WIT `clock`): what an
//! invocation leaves for the resident to read, and the time it sees.
//!
//! The log of one invocation holds what the app wrote through `log`, what
//! it printed (WASI stdout and stderr, handed over at the end by the
//! `wasi` capability) and the host's own notes about it, within bounds:
//! the lines past the limit are dropped with a note.

use domicile_store::AppLogEntry;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{clock, log};
use crate::shared::Shared;

/// How many log lines, and how long each, one invocation may leave.
const MAX_LOG_LINES: usize = 1000;
const MAX_LOG_LINE: usize = 4096;

/// The log lines of one invocation.
#[derive(Default)]
pub(crate) struct AppLog {
    lines: Vec<AppLogEntry>,
    dropped: usize,
}

/// The log, as the `log` interface sees it.
pub(crate) struct AppLogView<'a> {
    pub(crate) log: &'a mut AppLog,
    pub(crate) shared: &'a mut Shared,
}

crate::shared::served_by!(AppLogCapability, AppLogView);

/// Links `log` and `clock`, each call reaching the state `view` gives.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> AppLogView<'_>,
    shared: fn(&mut T) -> &mut Shared,
) -> wasmtime::Result<()> {
    log::add_to_linker::<T, AppLogCapability>(linker, view)?;
    clock::add_to_linker::<T, HasSelf<Shared>>(linker, shared)
}

impl AppLog {
    /// Adds a line, within the per-invocation bounds.
    pub(crate) fn push(&mut self, shared: &Shared, level: &str, message: &str) {
        if self.lines.len() >= MAX_LOG_LINES {
            self.dropped += 1;
            return;
        }
        let mut message: String = message.chars().take(MAX_LOG_LINE + 1).collect();
        if message.chars().count() > MAX_LOG_LINE {
            message = message.chars().take(MAX_LOG_LINE).collect();
            message.push('…');
        }
        self.lines.push(entry(shared, level, message));
    }

    /// The lines of the invocation, with a note of how many were dropped.
    pub(crate) fn take(&mut self, shared: &Shared) -> Vec<AppLogEntry> {
        if self.dropped > 0 {
            let note = format!("{} more log lines were dropped (limit {MAX_LOG_LINES})", self.dropped);
            self.lines.push(entry(shared, "warn", note));
            self.dropped = 0;
        }
        std::mem::take(&mut self.lines)
    }
}

fn entry(shared: &Shared, level: &str, message: String) -> AppLogEntry {
    AppLogEntry { at_ms: shared.clock.now_ms(), app: shared.app.manifest.id.clone(), level: level.to_owned(), message }
}

impl log::Host for AppLogView<'_> {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        self.shared.limiter.charge_call()?;
        let level = match level {
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        self.log.push(self.shared, level, &message);
        Ok(())
    }
}

impl clock::Host for Shared {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        self.limiter.charge_call()?;
        Ok(self.clock.now_ms())
    }
}
