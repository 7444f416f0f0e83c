//! Running an installed app: a service on an input, an importer on an
//! export file. Each invocation gets a fresh wasmtime `Store` over the
//! resident's space, within its limits; its writes are committed only when
//! it succeeds.

use std::sync::Arc;

use domicile_manifest::{AppId, World};
use domicile_package::PublicKey;
use domicile_store::{AppLogEntry, AuditEntry, InstalledApp, Operation, Outcome, ResidentSpace, StoreError};
use wasmtime::component::InstancePre;
use wasmtime::{Store, UpdateDeadline};

use crate::data::Writes;
use crate::sandbox::Invocation;
use crate::{
    bindings, HostError, ImportMode, ImportProgress, Imported, LimitKind, ResolvedLimits, Runtime, EPOCH_TICK,
};

/// How much of an app's last error line a crash's message quotes.
const LAST_ERROR_CHARS: usize = 300;

/// The input of one invocation, by world.
enum Call<'a> {
    Run { input: &'a str },
    Import { file_name: &'a str, bytes: &'a [u8], mode: ImportMode, progress: Arc<ImportProgress> },
}

impl Runtime {
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
        self.run_import(space, app, file_name, bytes, ImportMode::AllOrNothing, Default::default())
            .await
            .map(|done| done.summary)
    }

    /// Runs an importer over one export file, as `mode` says to treat its
    /// broken records; returns its JSON summary and the records it left out.
    /// `progress` counts the documents written as it goes, for a resident
    /// watching a long import.
    pub async fn run_import(
        &self,
        space: &ResidentSpace,
        app: &AppId,
        file_name: &str,
        bytes: &[u8],
        mode: ImportMode,
        progress: Arc<ImportProgress>,
    ) -> Result<Imported, HostError> {
        self.invoke(space, app, Call::Import { file_name, bytes, mode, progress }).await
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
            Call::Import { ref progress, .. } => Writes::Staged {
                import: Box::new(space.begin_import()?),
                counts: Default::default(),
                progress: progress.clone(),
            },
        };
        // Back-pressure: wait for a free slot of the instance pool rather
        // than fail when it is full.
        let _slot = self.slots.acquire().await.map_err(|_| HostError::Engine("the runtime is shutting down".into()))?;
        let mut state =
            Invocation::new(space.clone(), app.clone(), writes, self.config.clock, &limits, &self.config.scratch_dir)?;
        if let Call::Import { mode: ImportMode::ValidRecords, .. } = call {
            state.report.left_out = Some(Vec::new());
        }
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.shared.limiter);
        // The epoch advances every EPOCH_TICK; each tick spent in the guest
        // uses one unit of its CPU budget and yields to other tasks.
        let budget = limits.cpu_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1);
        let mut used = 0u64;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            used += 1;
            if used >= budget {
                ctx.data_mut().shared.limiter.exceeded = Some(LimitKind::Cpu);
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
        self.denials.fetch_add(state.shared.denials(), std::sync::atomic::Ordering::Relaxed);
        let outcome = outcome.unwrap_or_else(|_elapsed| {
            // Dropping the future cancelled the guest wherever it was.
            state.shared.limiter.exceeded = Some(LimitKind::WallTime);
            Err(wasmtime::Error::msg("wall-clock time limit exceeded"))
        });
        let log = state.take_log();
        let notifications = std::mem::take(&mut state.outbound.notifications);
        let app_id = app.manifest.id.clone();
        let result = match outcome {
            Err(trap) => Err(explain_trap(app_id, state.shared.limiter.exceeded, &limits, trap, &log)),
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
                // A view domicile would refuse to draw fails the run here,
                // whoever shows the output later (web UI, CLI, API client).
                Ok(value) => match domicile_view::check_output(&value) {
                    Err(refused) => Err(HostError::AppFailed { app: app_id, message: refused.to_string() }),
                    Ok(_) => without_stalling_other_tasks(|| commit_staged(state)).map(|()| Imported {
                        summary: output,
                        left_out: state.report.left_out.take().unwrap_or_default(),
                    }),
                },
            },
        };
        let notifications = if result.is_ok() { notifications } else { Vec::new() };
        // Writes flushed when they were made; what is left to make durable
        // is the audit of reads and denials, the log and notifications. An
        // invocation that left none of them costs no flush.
        if state.shared.has_unflushed_audit() || !log.is_empty() || !notifications.is_empty() {
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
        // A runner `domicile dev` installed, run by another command.
        if self.config.dev_sources.is_none()
            && component.component_type().imports(&self.engine).any(|(name, _)| crate::dev_source::is_dev_source(name))
        {
            return Err(HostError::DevRunner { app: app.manifest.id.clone() });
        }
        let pre = self.linker.instantiate_pre(&component).map_err(|e| HostError::Engine(format!("{e:#}")))?;
        self.instances.lock().expect("instance cache lock").insert(digest.clone(), pre.clone());
        Ok(pre)
    }
}

/// The error for a run that trapped: a limit it hit, or what went wrong in
/// it, how many lines it logged first and the last error among them (an
/// interpreter's traceback ends with the exception, the Rust SDK logs a
/// panic's message and location).
fn explain_trap(
    app: AppId,
    exceeded: Option<LimitKind>,
    limits: &ResolvedLimits,
    trap: wasmtime::Error,
    log: &[AppLogEntry],
) -> HostError {
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
    let last_error = log.iter().rev().find(|entry| matches!(entry.level.as_str(), "error" | "stderr")).map(|entry| {
        let line: String = entry.message.chars().take(LAST_ERROR_CHARS).collect();
        if entry.message.chars().count() > LAST_ERROR_CHARS {
            format!("{line}…")
        } else {
            line
        }
    });
    HostError::Trap { app, message, logged: log.len(), last_error }
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
    let Writes::Staged { import, counts, progress } = std::mem::replace(&mut state.writes, Writes::Durable) else {
        return Ok(());
    };
    progress.saves();
    let left_out = state.report.left_out.as_ref().map_or(0, Vec::len) as u64;
    if counts.is_empty() && left_out == 0 {
        return Ok(());
    }
    let mut audit: Vec<AuditEntry> = counts
        .into_iter()
        .map(|((doctype, operation), documents)| {
            state.shared.audit_entry(operation, doctype.as_str(), documents, Outcome::Allowed)
        })
        .collect();
    // A partial import says so in the audit log, with how many records it left out.
    if left_out > 0 {
        audit.push(state.shared.audit_entry(Operation::Skip, "", left_out, Outcome::Allowed));
    }
    let app = state.shared.app.manifest.id.clone();
    import.commit(&state.shared.author(), state.shared.clock.now_ms(), &audit).map_err(|e| match e {
        StoreError::NotFound(m) | StoreError::Invalid(m) | StoreError::Limit(m) => {
            HostError::AppFailed { app, message: format!("nothing was imported: {m}") }
        }
        other => HostError::Store(other),
    })
}
