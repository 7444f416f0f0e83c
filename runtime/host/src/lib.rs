//! Runs domicile apps: the wasmtime engine, the host side of the WIT
//! interfaces, and the sandbox around every invocation.
//!
//! [`Runtime`] owns the one `Engine` of the process. Installing verifies the
//! package signature first, then parses the manifest, then compiles the
//! component once and caches the native artifact; a run only loads that
//! artifact. Each run gets a fresh `Store` whose data is the app's view of
//! one resident's space: the grants decide every data call, memory and CPU
//! are capped, and a trap or a limit ends that run with a clear error while
//! the runtime carries on.
//!
//! `lifecycle` installs, updates and uninstalls apps (verify, compile,
//! check, record); `invoke` runs them (a service, an importer).

mod app_log;
mod bindings;
mod clock;
mod cursor;
mod data;
mod dev_source;
mod engine;
mod import;
mod invoke;
mod lifecycle;
mod limits;
mod outbound;
mod report;
mod restore;
mod sandbox;
mod shared;
mod wasi;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use domicile_manifest::{AppId, ManifestError, World};
use domicile_package::PackageError;
use domicile_store::StoreError;
use wasmtime::component::{InstancePre, Linker};
use wasmtime::Engine;

pub use clock::Clock;
pub use data::MAX_BATCH;
pub use dev_source::DevSources;
pub use engine::{engine_config, EPOCH_TICK};
pub use import::{ImportMode, ImportProgress, Imported, LeftOut, MAX_LEFT_OUT};
pub use lifecycle::{PreparedInstall, PreparedUpdate};
pub use limits::{Cap, LimitCaps, LimitKind, Resolved as ResolvedLimits};
pub use restore::ArchiveVetting;

use engine::{ArtifactCache, EpochTicker};
use sandbox::Invocation;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Package(#[from] PackageError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the package's component is not a valid WebAssembly component: {0}")]
    InvalidComponent(String),
    #[error("the component does not implement the `{world}` world its manifest declares: {detail}")]
    WrongExports { world: World, detail: String },
    #[error("the component imports what domicile does not offer: {} (apps may import domicile:app and the standard WASI 0.2 interfaces, nothing else)", .imports.join(", "))]
    ForbiddenImports { imports: Vec<String> },
    #[error("{app} {version} is already installed; uninstall it first")]
    AlreadyInstalled { app: AppId, version: String },
    #[error("{app} is a runner of `domicile dev`: it runs only under `domicile dev` in its project (`domicile build` makes the package to install)")]
    DevRunner { app: AppId },
    #[error("{app} is an app of the `{actual}` world: {}", if *.actual == World::Service { "run it, it imports nothing" } else { "it imports files, it does not run on its own" })]
    WrongWorld { app: AppId, actual: World },
    #[error("{app} is on hold: {reason}; uninstall it or, if you still trust this version, keep it")]
    Held { app: AppId, reason: String },
    #[error("{app} is published by {installed}; this package is signed by {offered}: an app's publisher cannot change, so it is not installed")]
    PublisherChanged { app: AppId, installed: String, offered: String },
    #[error("{app} {installed} is installed; {offered} is not newer{}", if .offered < .installed { " (a downgrade is refused)" } else { "" })]
    NotNewer { app: AppId, installed: semver::Version, offered: semver::Version },
    #[error("the package is {offered}, not an update of {app}")]
    OtherApp { app: AppId, offered: AppId },
    #[error("{app} changes from the `{from}` world to `{to}`: install it as a new app instead")]
    WorldChanged { app: AppId, from: World, to: World },
    #[error("{0} was changed by someone else while the update was prepared; run the update again")]
    ChangedMeanwhile(AppId),
    #[error("{app} failed: {message}")]
    AppFailed { app: AppId, message: String },
    #[error("{app} crashed: {message}{}{}",
        match .logged { 0 => String::new(), n => format!("; it wrote {n} line(s) to its log before") },
        .last_error.as_ref().map(|line| format!(", the last error: {line}")).unwrap_or_default())]
    Trap {
        app: AppId,
        message: String,
        logged: usize,
        /// The last line the app logged as an error or to stderr (an SDK's
        /// panic message, the end of a traceback), shortened.
        last_error: Option<String>,
    },
    #[error("{app} was stopped: it exceeded its {kind} limit ({detail})")]
    Limit { app: AppId, kind: LimitKind, detail: String },
    #[error("wasmtime engine error: {0}")]
    Engine(String),
    #[error("cannot prepare the app's scratch directory: {0}")]
    Scratch(String),
}

/// What the artifact cache holds at most unless the operator says (2 GiB:
/// the thirteen sample apps take 76 MB).
pub const DEFAULT_CACHE_MAX_BYTES: u64 = 2 << 30;

/// Operator settings: where things live, the caps on what apps ask for,
/// and how many invocations may run at once.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub cache_dir: PathBuf,
    /// The most the artifact cache may hold: past it, the artifacts used
    /// least recently are removed (they are compiled again when needed).
    pub cache_max_bytes: u64,
    pub scratch_dir: PathBuf,
    pub clock: Clock,
    pub limits: LimitCaps,
    /// Invocations running at once; more wait for a free slot (the
    /// instance pool is sized for this many).
    pub max_concurrent: u32,
    /// Whether compiling reuses the machine code of functions this runtime
    /// compiled before (see `[engine] reuse-compiled-functions`).
    pub reuse_compiled_functions: bool,
    /// Set by `domicile dev` only: the project's sources, offered to its
    /// runner as `domicile:app/dev-source` (see `dev_source`).
    pub dev_sources: Option<DevSources>,
}

impl RuntimeConfig {
    pub fn new(cache_dir: PathBuf, scratch_dir: PathBuf) -> RuntimeConfig {
        RuntimeConfig {
            cache_dir,
            cache_max_bytes: DEFAULT_CACHE_MAX_BYTES,
            scratch_dir,
            clock: Clock::System,
            limits: LimitCaps::default(),
            max_concurrent: 16,
            reuse_compiled_functions: false,
            dev_sources: None,
        }
    }
}

/// The runtime of one process: engine, linker, compiled apps.
pub struct Runtime {
    engine: Engine,
    linker: Linker<Invocation>,
    cache: ArtifactCache,
    config: RuntimeConfig,
    instances: Mutex<HashMap<String, InstancePre<Invocation>>>,
    /// One permit per slot of the instance pool.
    slots: tokio::sync::Semaphore,
    /// Accesses refused to apps since the runtime started (for metrics).
    denials: std::sync::atomic::AtomicU64,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Runtime, HostError> {
        let max_memory = config.limits.memory_mib.max.saturating_mul(1024 * 1024);
        let engine = engine::new_engine(config.max_concurrent.max(1), max_memory, config.reuse_compiled_functions)?;
        let mut linker = Linker::<Invocation>::new(&engine);
        Invocation::link(&mut linker, config.dev_sources.as_ref()).map_err(|e| HostError::Engine(e.to_string()))?;
        Ok(Runtime {
            cache: ArtifactCache::new(&config.cache_dir, config.cache_max_bytes, &engine),
            _ticker: EpochTicker::start(&engine),
            engine,
            linker,
            slots: tokio::sync::Semaphore::new(config.max_concurrent.max(1) as usize),
            config,
            instances: Mutex::new(HashMap::new()),
            denials: Default::default(),
        })
    }

    /// Accesses refused to apps (missing grants, undeclared destinations)
    /// since this runtime started.
    pub fn denials_total(&self) -> u64 {
        self.denials.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Invocations running now (each holds one slot of the instance pool).
    pub fn running(&self) -> usize {
        (self.config.max_concurrent.max(1) as usize).saturating_sub(self.slots.available_permits())
    }
}
