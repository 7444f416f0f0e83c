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

mod bindings;
mod clock;
mod data;
mod engine;
mod limits;
mod outbound;
mod report;
mod restore;
mod sandbox;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use domicile_manifest::{AppId, Grants, Manifest, ManifestError, World};
use domicile_package::{PackageError, PublicKey, TrustStore, VerifiedPackage};
use domicile_store::{AuditEntry, InstalledApp, Operation, Outcome, ResidentSpace, StoreError};
use wasmtime::component::{types::ComponentItem, Component, HasSelf, InstancePre, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

pub use clock::Clock;
pub use data::MAX_BATCH;
pub use engine::{engine_config, EPOCH_TICK};
pub use limits::{Cap, LimitCaps, LimitKind, Resolved as ResolvedLimits};
pub use report::{ImportMode, Imported, LeftOut, MAX_LEFT_OUT};
pub use restore::ArchiveVetting;

use engine::{ArtifactCache, EpochTicker};
use sandbox::{Invocation, Writes};

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
    #[error("the component imports what domicile does not offer: {}{}", .imports.join(", "), if *.needs_scratch { " (the filesystem is offered only to apps whose manifest has a [scratch] section)" } else { "" })]
    ForbiddenImports { imports: Vec<String>, needs_scratch: bool },
    #[error("{app} {version} is already installed; uninstall it first")]
    AlreadyInstalled { app: AppId, version: String },
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
    #[error("{app} crashed: {message}")]
    Trap { app: AppId, message: String },
    #[error("{app} was stopped: it exceeded its {kind} limit ({detail})")]
    Limit { app: AppId, kind: LimitKind, detail: String },
    #[error("wasmtime engine error: {0}")]
    Engine(String),
    #[error("compiled-component cache error: {0}")]
    Cache(String),
    #[error("cannot prepare the app's scratch directory: {0}")]
    Scratch(String),
}

/// Operator settings: where things live, the caps on what apps ask for,
/// and how many invocations may run at once.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub cache_dir: PathBuf,
    pub scratch_dir: PathBuf,
    pub clock: Clock,
    pub limits: LimitCaps,
    /// Invocations running at once; more wait for a free slot (the
    /// instance pool is sized for this many).
    pub max_concurrent: u32,
}

impl RuntimeConfig {
    pub fn new(cache_dir: PathBuf, scratch_dir: PathBuf) -> RuntimeConfig {
        RuntimeConfig { cache_dir, scratch_dir, clock: Clock::System, limits: LimitCaps::default(), max_concurrent: 16 }
    }
}

/// A package that verified, whose manifest parsed and whose component
/// compiled and passed the checks: all that is left is the resident's grants.
pub struct PreparedInstall {
    package: Vec<u8>,
    verified: VerifiedPackage,
    manifest: Manifest,
}

impl PreparedInstall {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    pub fn publisher(&self) -> &PublicKey {
        self.verified.publisher()
    }
}

/// A verified, compiled newer version of an installed app.
pub struct PreparedUpdate {
    install: PreparedInstall,
    current: InstalledApp,
    new_asks: Vec<String>,
}

impl PreparedUpdate {
    pub fn current(&self) -> &InstalledApp {
        &self.current
    }
    pub fn manifest(&self) -> &Manifest {
        &self.install.manifest
    }
    /// What the new version asks that the installed one did not, in words.
    /// When it is not empty, the update should wait for the resident's grant.
    pub fn new_asks(&self) -> &[String] {
        &self.new_asks
    }
}

/// The input of one invocation, by world.
enum Call<'a> {
    Run { input: &'a str },
    Import { file_name: &'a str, bytes: &'a [u8], mode: ImportMode },
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
        let engine = engine::new_engine(config.max_concurrent.max(1), max_memory)?;
        let mut linker = Linker::<Invocation>::new(&engine);
        let engine_err = |e: wasmtime::Error| HostError::Engine(e.to_string());
        bindings::service::Service::add_to_linker::<_, HasSelf<Invocation>>(&mut linker, |s| s).map_err(engine_err)?;
        bindings::importer::domicile::app::import_report::add_to_linker::<_, HasSelf<Invocation>>(&mut linker, |s| s)
            .map_err(engine_err)?;
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_err)?;
        Ok(Runtime {
            cache: ArtifactCache::new(&config.cache_dir, &engine),
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

    /// Verifies a package, then parses its manifest, then compiles and
    /// checks its component. Nothing is parsed before the signature
    /// verifies, and nobody is asked for grants for an app that could not
    /// be installed. The signing key must be trusted as a publisher, or be
    /// the one a trusted catalogue lists for the app (`vouched`).
    pub fn prepare_install(
        &self,
        space: &ResidentSpace,
        trust: &TrustStore,
        package: Vec<u8>,
        vouched: Option<&PublicKey>,
    ) -> Result<PreparedInstall, HostError> {
        let sealed = domicile_package::unseal(&package)?;
        let verified = match vouched {
            Some(key) => sealed.verify_vouched(trust, key, "the catalogue lists for this app")?,
            None => sealed.verify(trust)?,
        };
        let manifest = Manifest::from_bytes(verified.manifest_bytes())?;
        ensure_not_installed(space, &manifest)?;
        self.compile_checked(&verified, &manifest)?;
        Ok(PreparedInstall { package, verified, manifest })
    }

    fn compile_checked(&self, verified: &VerifiedPackage, manifest: &Manifest) -> Result<(), HostError> {
        let component =
            self.cache.compile(&self.engine, &verified.component_digest_hex(), verified.component_bytes())?;
        self.check_component(&component, manifest)
    }

    /// Prepares an update of an installed app: the package must be signed by
    /// the key the app was installed with (whoever else vouches for it),
    /// be a newer version of the same app and world, and compile. The
    /// result says what the new version asks that the old one did not.
    pub fn prepare_update(
        &self,
        space: &ResidentSpace,
        trust: &TrustStore,
        app: &AppId,
        package: Vec<u8>,
    ) -> Result<PreparedUpdate, HostError> {
        let current = space.app(app)?;
        let installed_key: PublicKey = current
            .publisher
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("the publisher key recorded for {app}")))?;
        let sealed = domicile_package::unseal(&package)?;
        if sealed.claimed_publisher() != &installed_key {
            return Err(HostError::PublisherChanged {
                app: app.clone(),
                installed: current.publisher.clone(),
                offered: sealed.claimed_publisher().to_string(),
            });
        }
        let verified = sealed.verify_vouched(trust, &installed_key, "this app was installed with")?;
        let manifest = Manifest::from_bytes(verified.manifest_bytes())?;
        if &manifest.id != app {
            return Err(HostError::OtherApp { app: app.clone(), offered: manifest.id });
        }
        if manifest.version <= current.manifest.version {
            return Err(HostError::NotNewer {
                app: app.clone(),
                installed: current.manifest.version.clone(),
                offered: manifest.version,
            });
        }
        if manifest.world != current.manifest.world {
            return Err(HostError::WorldChanged { app: app.clone(), from: current.manifest.world, to: manifest.world });
        }
        self.compile_checked(&verified, &manifest)?;
        let new_asks = manifest.new_asks_over(&current.manifest);
        Ok(PreparedUpdate { install: PreparedInstall { package, verified, manifest }, current, new_asks })
    }

    /// Replaces the installed version by the prepared one. The grants carried
    /// over are cut down to what the new version still asks; `added` are
    /// the resident's new grants (for what it newly asks).
    #[tracing::instrument(skip_all, fields(app = %update.current.manifest.id))]
    pub fn apply_update(
        &self,
        space: &ResidentSpace,
        update: PreparedUpdate,
        added: &Grants,
    ) -> Result<InstalledApp, HostError> {
        let PreparedUpdate { install: PreparedInstall { package, verified, manifest }, current, .. } = update;
        // Someone may have updated or removed it since it was prepared.
        if space.app(&current.manifest.id)? != current {
            return Err(HostError::Engine(format!(
                "{} changed while the update was prepared; try again",
                current.manifest.id
            )));
        }
        let mut grants = current.grants.within(&current.manifest, &manifest);
        grants.extend(added);
        let app = InstalledApp {
            manifest,
            publisher: current.publisher,
            component_digest: verified.component_digest_hex(),
            grants,
            installed_at_ms: current.installed_at_ms,
            held: None,
        };
        space.put_app(&app, &package)?;
        tracing::info!(version = %app.manifest.version, "updated");
        Ok(app)
    }

    /// Records the prepared app with the resident's grants.
    #[tracing::instrument(skip_all, fields(app = %prepared.manifest.id))]
    pub fn install(
        &self,
        space: &ResidentSpace,
        prepared: PreparedInstall,
        grants: Grants,
    ) -> Result<InstalledApp, HostError> {
        let PreparedInstall { package, verified, manifest } = prepared;
        ensure_not_installed(space, &manifest)?;
        let app = InstalledApp {
            manifest,
            publisher: verified.publisher().to_string(),
            component_digest: verified.component_digest_hex(),
            grants,
            installed_at_ms: self.config.clock.now_ms(),
            held: None,
        };
        space.put_app(&app, &package)?;
        tracing::info!("installed");
        Ok(app)
    }

    /// The component must import only what we offer, and export its world.
    fn check_component(&self, component: &Component, manifest: &Manifest) -> Result<(), HostError> {
        let ty = component.component_type();
        let scratch = manifest.scratch.is_some();
        let forbidden: Vec<String> = ty
            .imports(&self.engine)
            .map(|(name, _)| name)
            .filter(|name| !import_allowed(name, scratch))
            .map(str::to_owned)
            .collect();
        if !forbidden.is_empty() {
            let needs_scratch = !scratch && forbidden.iter().any(|i| i.starts_with("wasi:filesystem/"));
            return Err(HostError::ForbiddenImports { imports: forbidden, needs_scratch });
        }
        let export = match manifest.world {
            World::Service => "run",
            World::Importer => "import",
        };
        let exported = ty
            .exports(&self.engine)
            .any(|(name, item)| name == export && matches!(item.ty, ComponentItem::ComponentFunc(_)));
        if !exported {
            return Err(HostError::WrongExports {
                world: manifest.world,
                detail: format!("no exported function `{export}`"),
            });
        }
        // Type-checks every import against the linker now rather than at the first run.
        self.linker
            .instantiate_pre(component)
            .map_err(|e| HostError::WrongExports { world: manifest.world, detail: format!("{e:#}") })?;
        Ok(())
    }

    pub fn uninstall(&self, space: &ResidentSpace, app: &AppId) -> Result<(), HostError> {
        space.remove_app(app)?;
        Ok(())
    }

    /// Runs a service app with a JSON input; returns its JSON output.
    pub async fn run_service(&self, space: &ResidentSpace, app: &AppId, input: &str) -> Result<String, HostError> {
        self.invoke(space, app, Call::Run { input }).await.map(|done| done.summary)
    }

    /// Runs an importer over one export file; returns its JSON summary.
    /// Either every document it wrote is committed, or none is.
    pub async fn run_importer(
        &self,
        space: &ResidentSpace,
        app: &AppId,
        file_name: &str,
        bytes: &[u8],
    ) -> Result<String, HostError> {
        self.run_import(space, app, file_name, bytes, ImportMode::AllOrNothing).await.map(|done| done.summary)
    }

    /// Runs an importer over one export file, as `mode` says to treat its
    /// broken records; returns its JSON summary and the records it left out.
    pub async fn run_import(
        &self,
        space: &ResidentSpace,
        app: &AppId,
        file_name: &str,
        bytes: &[u8],
        mode: ImportMode,
    ) -> Result<Imported, HostError> {
        self.invoke(space, app, Call::Import { file_name, bytes, mode }).await
    }

    #[tracing::instrument(skip_all, fields(app = %app_id))]
    async fn invoke(&self, space: &ResidentSpace, app_id: &AppId, call: Call<'_>) -> Result<Imported, HostError> {
        let app = space.app_now(app_id)?;
        let expected = match call {
            Call::Run { .. } => World::Service,
            Call::Import { .. } => World::Importer,
        };
        if app.manifest.world != expected {
            return Err(HostError::WrongWorld { app: app.manifest.id.clone(), actual: app.manifest.world });
        }
        if let Some(hold) = &app.held {
            return Err(HostError::Held { app: app.manifest.id.clone(), reason: hold.reason.clone() });
        }
        let pre = self.instance_pre(space, &app)?;
        let limits = ResolvedLimits::of(&self.config.limits, &app.manifest.limits);
        let writes = match call {
            Call::Run { .. } => Writes::Durable,
            Call::Import { .. } => {
                Writes::Staged { import: Box::new(space.begin_import()?), counts: Default::default() }
            }
        };
        // Back-pressure: wait for a free slot of the instance pool rather
        // than fail when it is full.
        let _slot = self.slots.acquire().await.map_err(|_| HostError::Engine("the runtime is shutting down".into()))?;
        let mut state =
            Invocation::new(space.clone(), app.clone(), writes, self.config.clock, &limits, &self.config.scratch_dir)?;
        if let Call::Import { mode: ImportMode::ValidRecords, .. } = call {
            state.left_out = Some(Vec::new());
        }
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // The epoch advances every EPOCH_TICK; each tick spent in the guest
        // uses one unit of its CPU budget and yields to other tasks.
        let budget = limits.cpu_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1);
        let mut used = 0u64;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            used += 1;
            if used >= budget {
                ctx.data_mut().limiter.exceeded = Some(LimitKind::Cpu);
                return Err(wasmtime::Error::msg("CPU time limit exceeded"));
            }
            Ok(UpdateDeadline::Yield(1))
        });

        let wall = std::time::Duration::from_millis(limits.wall_ms);
        let outcome = match call {
            Call::Run { input } => {
                let run = async {
                    let instance = bindings::service::ServicePre::new(pre)?.instantiate_async(&mut store).await?;
                    instance.call_run(&mut store, input).await
                };
                tokio::time::timeout(wall, run).await
            }
            Call::Import { file_name, bytes, .. } => {
                let import = async {
                    let instance = bindings::importer::ImporterPre::new(pre)?.instantiate_async(&mut store).await?;
                    instance.call_import(&mut store, file_name, bytes).await
                };
                tokio::time::timeout(wall, import).await
            }
        };

        let state = store.data_mut();
        self.denials.fetch_add(state.denials(), std::sync::atomic::Ordering::Relaxed);
        let outcome = outcome.unwrap_or_else(|_elapsed| {
            // Dropping the future cancelled the guest wherever it was.
            state.limiter.exceeded = Some(LimitKind::WallTime);
            Err(wasmtime::Error::msg("wall-clock time limit exceeded"))
        });
        let log = state.take_log();
        let notifications = std::mem::take(&mut state.notifications);
        let app_id = app.manifest.id.clone();
        let result = match outcome {
            Err(trap) => Err(explain_trap(app_id, state.limiter.exceeded, &limits, trap)),
            Ok(Err(message)) => {
                Err(HostError::AppFailed { app: app_id, message: message.chars().take(2000).collect() })
            }
            Ok(Ok(output)) if output.len() as u64 > limits.output_kib * 1024 => Err(HostError::Limit {
                app: app_id,
                kind: LimitKind::Output,
                detail: format!("{} KiB; it returned {} KiB", limits.output_kib, output.len() / 1024),
            }),
            Ok(Ok(output)) => match serde_json::from_str::<serde_json::Value>(&output) {
                Err(e) => Err(HostError::AppFailed { app: app_id, message: format!("its output is not JSON ({e})") }),
                Ok(_) => without_stalling_other_tasks(|| commit_staged(state))
                    .map(|()| Imported { summary: output, left_out: state.left_out.take().unwrap_or_default() }),
            },
        };
        let notifications = if result.is_ok() { notifications } else { Vec::new() };
        // Writes flushed when they were made; what is left to make durable
        // is the audit of reads and denials, the log and notifications. An
        // invocation that left none of them costs no flush.
        if state.has_unflushed_audit() || !log.is_empty() || !notifications.is_empty() {
            space.append_app_log(&log)?;
            space.notify(&notifications)?;
            space.flush()?;
        }
        result
    }

    /// The ready-to-instantiate app: from memory, else from the artifact
    /// cache, else recompiled from the stored package after re-verifying it
    /// against the publisher key recorded at install.
    fn instance_pre(&self, space: &ResidentSpace, app: &InstalledApp) -> Result<InstancePre<Invocation>, HostError> {
        let digest = &app.component_digest;
        if let Some(pre) = self.instances.lock().expect("instance cache lock").get(digest) {
            return Ok(pre.clone());
        }
        let component = match self.cache.load(&self.engine, digest) {
            Some(c) => c,
            None => {
                let package = space.package(&app.manifest.id)?;
                let key: PublicKey =
                    app.publisher.parse().map_err(|_| StoreError::Corrupt("an app's publisher key".into()))?;
                let verified = domicile_package::unseal(&package)?.verify_with(&key)?;
                if &verified.component_digest_hex() != digest {
                    return Err(StoreError::Corrupt("an app's package does not match its record".into()).into());
                }
                self.cache.compile(&self.engine, digest, verified.component_bytes())?
            }
        };
        let pre = self.linker.instantiate_pre(&component).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        self.instances.lock().expect("instance cache lock").insert(digest.clone(), pre.clone());
        Ok(pre)
    }
}

/// The error for a run that trapped: a limit it hit, or what went wrong in it.
fn explain_trap(app: AppId, exceeded: Option<LimitKind>, limits: &ResolvedLimits, trap: wasmtime::Error) -> HostError {
    if let Some(kind) = exceeded {
        return HostError::Limit { app, kind, detail: limits.describe(kind) };
    }
    let message = match trap.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => "stack overflow (too deep recursion)".to_owned(),
        Some(wasmtime::Trap::UnreachableCodeReached) => "it hit `unreachable` (a panic or abort in the app)".to_owned(),
        Some(code) => code.to_string(),
        // The root cause, without the wasm backtrace the context adds.
        None => trap.root_cause().to_string(),
    };
    HostError::Trap { app, message }
}

fn ensure_not_installed(space: &ResidentSpace, manifest: &Manifest) -> Result<(), HostError> {
    match space.app(&manifest.id) {
        Ok(existing) => Err(HostError::AlreadyInstalled {
            app: existing.manifest.id,
            version: existing.manifest.version.to_string(),
        }),
        Err(StoreError::UnknownApp(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Runs long blocking work (publishing a large import takes seconds to
/// minutes) so that the tokio worker's other tasks move to another thread
/// meanwhile, as a server needs. Plain call outside a multi-threaded runtime.
fn without_stalling_other_tasks<R>(work: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(work)
        }
        _ => work(),
    }
}

/// Commits an importer's staged writes with their audit entries, atomically.
fn commit_staged(state: &mut Invocation) -> Result<(), HostError> {
    let Writes::Staged { import, counts } = std::mem::replace(&mut state.writes, Writes::Durable) else {
        return Ok(());
    };
    let left_out = state.left_out.as_ref().map_or(0, Vec::len) as u64;
    if counts.is_empty() && left_out == 0 {
        return Ok(());
    }
    let mut audit: Vec<AuditEntry> = counts
        .into_iter()
        .map(|((doctype, operation), documents)| {
            state.audit_entry(operation, doctype.as_str(), documents, Outcome::Allowed)
        })
        .collect();
    // A partial import says so in the audit log, with how many records it left out.
    if left_out > 0 {
        audit.push(state.audit_entry(Operation::Skip, "", left_out, Outcome::Allowed));
    }
    let app = state.app.manifest.id.clone();
    import.commit(&state.author(), state.clock.now_ms(), &audit).map_err(|e| match e {
        StoreError::NotFound(m) | StoreError::Invalid(m) | StoreError::Limit(m) => {
            HostError::AppFailed { app, message: format!("nothing was imported: {m}") }
        }
        other => HostError::Store(other),
    })
}

/// The imports a component may have: our interfaces and the WASI subset we
/// offer (no sockets, no HTTP; the filesystem only with a scratch dir).
fn import_allowed(name: &str, scratch: bool) -> bool {
    const ALWAYS: [&str; 5] = ["domicile:app/", "wasi:io/", "wasi:clocks/", "wasi:random/", "wasi:cli/"];
    ALWAYS.iter().any(|p| name.starts_with(p)) || (scratch && name.starts_with("wasi:filesystem/"))
}
