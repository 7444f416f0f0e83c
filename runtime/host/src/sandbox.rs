//! The state of one app invocation (the `T` of its wasmtime `Store`) and
//! the walls around it: memory limiter, CPU budget, and the standard WASI
//! 0.2 interfaces, linked so that any toolchain's components install but
//! deny-by-default: no environment, no arguments, no stdin, no sockets or
//! name lookup, every outgoing HTTP request refused; stdout and stderr
//! captured into the app's log; files only in a private scratch directory
//! when the manifest declares one (else no directory is preopened at all).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use domicile_manifest::Doctype;
use domicile_store::{AppLogEntry, Import, InstalledApp, Notification, Operation, ResidentSpace};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::engine::MAX_TABLE_ELEMENTS;
use crate::{Clock, HostError, LimitKind, ResolvedLimits};

/// How many bytes of stdout/stderr, and how many log lines, one invocation
/// may leave in the app log; the rest is dropped with a note.
const MAX_CAPTURED_OUTPUT: usize = 64 * 1024;
const MAX_LOG_LINES: usize = 1000;
const MAX_LOG_LINE: usize = 4096;

/// Where an invocation's writes go.
pub(crate) enum Writes {
    /// Services: each write is committed and flushed before the call returns.
    Durable,
    /// Importers: writes are staged (on disk, not in memory) and committed
    /// together when the import succeeds, so a failed import leaves the
    /// store as it was.
    Staged { import: Box<Import>, counts: BTreeMap<(Doctype, Operation), u64>, progress: Arc<crate::ImportProgress> },
}

pub(crate) struct Invocation {
    pub(crate) space: ResidentSpace,
    pub(crate) app: Arc<InstalledApp>,
    pub(crate) writes: Writes,
    pub(crate) clock: Clock,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: Limiter,
    pub(crate) log: Vec<AppLogEntry>,
    /// Notifications of this invocation, stored when it ends.
    pub(crate) notifications: Vec<Notification>,
    /// Outbox requests made by this invocation.
    pub(crate) egress_requests: usize,
    /// The records an importer left out, when the resident allowed it
    /// (`None`: the import is all or nothing).
    pub(crate) left_out: Option<Vec<crate::import::LeftOut>>,
    host_calls_left: u64,
    documents_left: u64,
    /// Whether audit entries were recorded that are not yet flushed.
    unflushed_audit: std::cell::Cell<bool>,
    /// Accesses refused to the app (grants, undeclared destinations).
    denials: std::cell::Cell<u64>,
    dropped_log_lines: usize,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    refused_http: RefuseHttp,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
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
        let memory_bytes = usize::try_from(limits.memory_mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        let stdout = MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT);
        let stderr = MemoryOutputPipe::new(MAX_CAPTURED_OUTPUT);
        let mut wasi = WasiCtx::builder();
        wasi.stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(clock);
        if app.manifest.scratch.is_some() {
            let dir = scratch_dir(scratch_root, &space, &app)?;
            wasi.preopened_dir(&dir, "/scratch", FsPerms::ReadWrite)
                .map_err(|e| HostError::Scratch(format!("{}: {e}", dir.display())))?;
        }
        Ok(Invocation {
            space,
            app,
            writes,
            clock,
            table: ResourceTable::new(),
            limiter: Limiter { max_memory: memory_bytes, exceeded: None },
            log: Vec::new(),
            notifications: Vec::new(),
            egress_requests: 0,
            left_out: None,
            host_calls_left: limits.host_calls,
            documents_left: limits.documents,
            unflushed_audit: std::cell::Cell::new(false),
            denials: std::cell::Cell::new(0),
            dropped_log_lines: 0,
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            refused_http: RefuseHttp::default(),
            stdout,
            stderr,
        })
    }

    /// Appends audit entries of accesses that wrote nothing (reads,
    /// denials); the invocation flushes them when it ends.
    pub(crate) fn record_audit(
        &self,
        entries: &[domicile_store::AuditEntry],
    ) -> Result<(), domicile_store::StoreError> {
        self.unflushed_audit.set(true);
        let denied = entries.iter().filter(|e| e.outcome == domicile_store::Outcome::Denied).count() as u64;
        self.denials.set(self.denials.get() + denied);
        self.space.record_audit(entries)
    }

    /// How many accesses were refused to the app in this invocation.
    pub(crate) fn denials(&self) -> u64 {
        self.denials.get()
    }

    /// Whether the end of the invocation must flush the store.
    pub(crate) fn has_unflushed_audit(&self) -> bool {
        self.unflushed_audit.get()
    }

    /// Counts one call to a domicile interface; past the limit, the
    /// invocation ends (a trap naming the limit).
    pub(crate) fn charge_call(&mut self) -> wasmtime::Result<()> {
        self.charge(LimitKind::HostCalls, 1)
    }

    /// Counts documents handed to the app.
    pub(crate) fn charge_documents(&mut self, n: u64) -> wasmtime::Result<()> {
        self.charge(LimitKind::Documents, n)
    }

    fn charge(&mut self, kind: LimitKind, n: u64) -> wasmtime::Result<()> {
        let left = match kind {
            LimitKind::HostCalls => &mut self.host_calls_left,
            _ => &mut self.documents_left,
        };
        match left.checked_sub(n) {
            Some(rest) => {
                *left = rest;
                Ok(())
            }
            None => {
                self.limiter.exceeded = Some(kind);
                Err(wasmtime::Error::msg(format!("{kind} limit exceeded")))
            }
        }
    }

    /// Adds a line to the app log, within the per-invocation bounds.
    pub(crate) fn push_log(&mut self, level: &str, message: &str) {
        if self.log.len() >= MAX_LOG_LINES {
            self.dropped_log_lines += 1;
            return;
        }
        let mut message: String = message.chars().take(MAX_LOG_LINE + 1).collect();
        if message.chars().count() > MAX_LOG_LINE {
            message = message.chars().take(MAX_LOG_LINE).collect();
            message.push('…');
        }
        self.log.push(AppLogEntry {
            at_ms: self.clock.now_ms(),
            app: self.app.manifest.id.clone(),
            level: level.to_owned(),
            message,
        });
    }

    /// The app log of this invocation, stdout and stderr included.
    pub(crate) fn take_log(&mut self) -> Vec<AppLogEntry> {
        let refused = std::mem::take(&mut self.refused_http.refused);
        if refused > 0 {
            let message = format!(
                "{refused} outgoing HTTP request(s) refused: apps have no network; data leaves the space \
                 only through the egress interface, with the resident's approval"
            );
            self.push_log("warn", &message);
        }
        for (stream, pipe) in [("stdout", self.stdout.clone()), ("stderr", self.stderr.clone())] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines().filter(|l| !l.is_empty()) {
                self.push_log(stream, line);
            }
        }
        if self.dropped_log_lines > 0 {
            let note = format!("{} more log lines were dropped (limit {MAX_LOG_LINES})", self.dropped_log_lines);
            self.log.push(AppLogEntry {
                at_ms: self.clock.now_ms(),
                app: self.app.manifest.id.clone(),
                level: "warn".into(),
                message: note,
            });
            self.dropped_log_lines = 0;
        }
        std::mem::take(&mut self.log)
    }
}

impl WasiView for Invocation {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for Invocation {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.refused_http }
    }
}

/// `wasi:http`'s outgoing handler, for toolchains that import it whatever
/// the code does: every request is refused inside the app, when it is
/// handed over and before any connection or name lookup. It is refused
/// there (as a protocol the host does not support) rather than by failing
/// the response later: StarlingMonkey (componentize-js) aborts the whole
/// app when a request with a body fails after it was accepted.
#[derive(Default)]
struct RefuseHttp {
    refused: usize,
}

impl wasmtime_wasi_http::WasiHttpHooks for RefuseHttp {
    fn is_supported_scheme(&mut self, _scheme: &http::uri::Scheme) -> bool {
        self.refused += 1;
        false
    }

    fn default_scheme(&mut self) -> Option<http::uri::Scheme> {
        self.refused += 1;
        None
    }

    // Not reached (every scheme is refused first); refuses all the same.
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<dyn Future<Output = RefusedResponse> + Send> {
        self.refused += 1;
        Box::new(std::future::ready(Err(wasmtime_wasi_http::Error::HttpRequestDenied)))
    }
}

type RefusedResponse = wasmtime_wasi_http::Result<(
    http::Response<wasmtime_wasi_http::WasiBody>,
    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
)>;

/// Creates `<scratch_root>/<resident>/<app-id>` through a capability on the
/// scratch root: the path can only ever resolve beneath it.
fn scratch_dir(root: &Path, space: &ResidentSpace, app: &InstalledApp) -> Result<std::path::PathBuf, HostError> {
    let err = |e: std::io::Error| HostError::Scratch(format!("{}: {e}", root.display()));
    std::fs::create_dir_all(root).map_err(err)?;
    let root_dir = cap_std::fs::Dir::open_ambient_dir(root, cap_std::ambient_authority()).map_err(err)?;
    // Both parts are validated names (no `/`, no `..`).
    let relative = Path::new(space.resident().as_str()).join(app.manifest.id.as_str());
    root_dir.create_dir_all(&relative).map_err(err)?;
    Ok(root.join(relative))
}

/// Caps linear memory and tables; remembers which limit stopped the app.
pub(crate) struct Limiter {
    max_memory: usize,
    pub(crate) exceeded: Option<LimitKind>,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_memory {
            self.exceeded = Some(LimitKind::Memory);
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            self.exceeded = Some(LimitKind::Table);
            return Err(wasmtime::Error::msg("table limit exceeded"));
        }
        Ok(true)
    }
}
