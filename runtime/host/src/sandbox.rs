//! The state of one app invocation (the `T` of its wasmtime `Store`):
//! each host capability's own state side by side, and what they all share
//! ([`Shared`]: the space, the app, the clock, the limits, the audit
//! trail). The walls around it are the capabilities' (deny by default)
//! and the limiter's (memory, tables, host calls, documents); the CPU and
//! wall-clock budgets are the runner's (`invoke`).
//!
//! [`Invocation::link`] links every capability's interfaces, each given
//! the view of its own state: no capability reaches another's.

use std::path::Path;
use std::sync::Arc;

use domicile_store::{AppLogEntry, InstalledApp, ResidentSpace};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

use crate::app_log::{AppLog, AppLogView};
use crate::data::{DataView, Writes};
use crate::limits::Limiter;
use crate::outbound::{OutboundState, OutboundView};
use crate::report::{ReportState, ReportView};
use crate::shared::Shared;
use crate::wasi::WasiState;
use crate::{Clock, DevSources, HostError, ResolvedLimits};

pub(crate) struct Invocation {
    pub(crate) shared: Shared,
    /// The data capability's: where writes go.
    pub(crate) writes: Writes,
    pub(crate) outbound: OutboundState,
    pub(crate) report: ReportState,
    pub(crate) log: AppLog,
    wasi: WasiState,
    /// The resources of the invocation (WASI's streams, the data
    /// capability's cursors), one table as the component model has it.
    table: ResourceTable,
}

impl Invocation {
    pub(crate) fn new(
        space: ResidentSpace,
        app: Arc<InstalledApp>,
        writes: Writes,
        clock: Clock,
        limits: &ResolvedLimits,
        scratch_root: &Path,
    ) -> Result<Invocation, HostError> {
        let wasi = WasiState::new(&space, &app, clock, scratch_root)?;
        Ok(Invocation {
            shared: Shared::new(space, app, clock, Limiter::new(limits)),
            writes,
            outbound: OutboundState::default(),
            report: ReportState::default(),
            log: AppLog::default(),
            wasi,
            table: ResourceTable::new(),
        })
    }

    /// Links every capability's interfaces (`dev-source` only for a
    /// runtime made for `domicile dev`).
    pub(crate) fn link(linker: &mut Linker<Invocation>, dev_sources: Option<&DevSources>) -> wasmtime::Result<()> {
        crate::data::add_to_linker(linker, Invocation::data)?;
        crate::outbound::add_to_linker(linker, Invocation::outbound)?;
        crate::report::add_to_linker(linker, Invocation::report)?;
        crate::app_log::add_to_linker(linker, Invocation::app_log, |invocation| &mut invocation.shared)?;
        crate::wasi::add_to_linker(linker)?;
        if let Some(sources) = dev_sources {
            crate::dev_source::add_to_linker(linker, sources.clone())?;
        }
        Ok(())
    }

    fn data(&mut self) -> DataView<'_> {
        DataView { writes: &mut self.writes, table: &mut self.table, shared: &mut self.shared }
    }

    fn outbound(&mut self) -> OutboundView<'_> {
        OutboundView { state: &mut self.outbound, shared: &mut self.shared }
    }

    fn report(&mut self) -> ReportView<'_> {
        ReportView { state: &mut self.report, shared: &mut self.shared }
    }

    fn app_log(&mut self) -> AppLogView<'_> {
        AppLogView { log: &mut self.log, shared: &mut self.shared }
    }

    /// The app log of this invocation, what it printed included.
    pub(crate) fn take_log(&mut self) -> Vec<AppLogEntry> {
        for (level, line) in self.wasi.take_output() {
            self.log.push(&self.shared, level, &line);
        }
        self.log.take(&self.shared)
    }
}

impl WasiView for Invocation {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx(&mut self.table)
    }
}

impl WasiHttpView for Invocation {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.wasi.http(&mut self.table)
    }
}
