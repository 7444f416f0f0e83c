//! The standard WASI 0.2 interfaces, linked so that any toolchain's
//! components install but deny by default: no environment, no arguments,
//! no stdin, no sockets or name lookup, every outgoing HTTP request
//! refused; stdout and stderr captured for the app's log; files only in a
//! private scratch directory when the manifest declares one (else no
//! directory is preopened at all).

use std::future::Future;
use std::path::Path;

use domicile_store::{InstalledApp, ResidentSpace};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::{Clock, HostError};

/// How many bytes of stdout and of stderr one invocation may leave in the
/// app log; the rest is dropped.
const MAX_CAPTURED_OUTPUT: usize = 64 * 1024;

/// The WASI state of one invocation.
pub(crate) struct WasiState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    refused_http: RefuseHttp,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl WasiState {
    /// WASI for `app` in `space`, its clock `clock`, its scratch directory
    /// (if its manifest declares one) under `scratch_root`.
    pub(crate) fn new(
        space: &ResidentSpace,
        app: &InstalledApp,
        clock: Clock,
        scratch_root: &Path,
    ) -> Result<WasiState, HostError> {
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
            let dir = scratch_dir(scratch_root, space, app)?;
            wasi.preopened_dir(&dir, "/scratch", FsPerms::ReadWrite)
                .map_err(|e| HostError::Scratch(format!("{}: {e}", dir.display())))?;
        }
        Ok(WasiState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            refused_http: RefuseHttp::default(),
            stdout,
            stderr,
        })
    }

    /// WASI's view of this state, with the invocation's resource table.
    pub(crate) fn ctx<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiCtxView<'a> {
        WasiCtxView { ctx: &mut self.wasi, table }
    }

    /// `wasi:http`'s view of this state, with the invocation's resource table.
    pub(crate) fn http<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView { ctx: &mut self.http, table, hooks: &mut self.refused_http }
    }

    /// What the app left for its log: a note of the HTTP requests refused,
    /// then its stdout and stderr, line by line (level, line).
    pub(crate) fn take_output(&mut self) -> Vec<(&'static str, String)> {
        let mut lines = Vec::new();
        let refused = std::mem::take(&mut self.refused_http.refused);
        if refused > 0 {
            let message = format!(
                "{refused} outgoing HTTP request(s) refused: apps have no network; data leaves the space \
                 only through the egress interface, with the resident's approval"
            );
            lines.push(("warn", message));
        }
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            lines.extend(
                String::from_utf8_lossy(&bytes).lines().filter(|l| !l.is_empty()).map(|l| (stream, l.to_owned())),
            );
        }
        lines
    }
}

/// Links WASI 0.2 and `wasi:http`'s outgoing handler (which refuses).
pub(crate) fn add_to_linker<T: WasiView + WasiHttpView + 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
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
