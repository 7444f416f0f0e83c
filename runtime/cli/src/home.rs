//! A domicile home on disk, and choosing the resident a command acts for.
//!
//! ```text
//! HOME/spaces/       the residents' data, a sled database each (see domicile_store::Store)
//! HOME/trust.json    trusted keys (publishers, catalogues), revoked ones marked
//! HOME/catalogues.json  the catalogues apps are installed and updated from
//! HOME/config.toml   operator settings (optional): limits on apps, the server
//! HOME/accounts.json residents' password hashes and API tokens, the operator token
//! HOME/cache/        compiled components (rebuildable)
//! HOME/scratch/      apps' private scratch directories, per resident
//! ```

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use std::sync::Arc;

use domicile_host::{Cap, Clock, Runtime, RuntimeConfig};
use domicile_package::TrustStore;
use domicile_server::ServerConfig;
use domicile_store::{ResidentName, ResidentSpace, Store};
use serde::Deserialize;

pub struct Home {
    pub dir: PathBuf,
    pub store: Store,
    runtime: std::sync::OnceLock<Arc<Runtime>>,
}

/// `HOME/config.toml`: what the operator allows apps at most, and how many
/// may run at once.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct HomeConfig {
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default)]
    server: ServerSettings,
}

/// `[server]`: what `domicile serve` allows each request and resident.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ServerSettings {
    /// The largest upload (an export file to import), MiB.
    max_upload_mib: Option<u64>,
    /// Requests still running after this many seconds are cancelled.
    request_timeout_s: Option<u64>,
    /// Runs, imports, installs and exports one resident may have at once.
    runs_per_resident: Option<usize>,
    /// How long a browser stays signed in, hours.
    session_hours: Option<u64>,
    /// Seconds in-flight requests get to finish after Ctrl-C or SIGTERM.
    shutdown_grace_s: Option<u64>,
    /// Session cookies only over HTTPS (behind a TLS proxy).
    secure_cookies: Option<bool>,
    /// Sign-in attempts one client address may make per minute (0: no cap).
    sign_ins_per_client_per_minute: Option<u32>,
}

/// `default-X`: what an app gets when its manifest asks nothing; `max-X`:
/// the most it gets, whatever it asks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct LimitsConfig {
    default_memory_mib: Option<u64>,
    max_memory_mib: Option<u64>,
    default_cpu_ms: Option<u64>,
    max_cpu_ms: Option<u64>,
    default_wall_ms: Option<u64>,
    max_wall_ms: Option<u64>,
    default_host_calls: Option<u64>,
    max_host_calls: Option<u64>,
    default_documents: Option<u64>,
    max_documents: Option<u64>,
    default_output_kib: Option<u64>,
    max_output_kib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct EngineConfig {
    /// Invocations running at once (the instance pool's size); more wait.
    max_concurrent_invocations: Option<u32>,
}

fn set(cap: &mut Cap, default: Option<u64>, max: Option<u64>) {
    cap.default = default.unwrap_or(cap.default);
    cap.max = max.unwrap_or(cap.max);
}

impl Home {
    /// Creates a new home with its first resident.
    pub fn create(dir: &Path, resident: &ResidentName) -> Result<Home> {
        if is_home(dir) {
            bail!("{} is already a domicile home", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let home = Home::open_store(dir)?;
        home.store.create_resident(resident)?;
        Ok(home)
    }

    /// Opens a home, creating an empty one (no resident) if there is none.
    pub fn open_or_create(dir: &Path) -> Result<Home> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Home::open_store(dir)
    }

    /// Opens an existing home.
    pub fn open(dir: &Path) -> Result<Home> {
        if !is_home(dir) {
            bail!(
                "no domicile home at {}: create one with `domicile --home {} init`, or try `domicile demo`",
                dir.display(),
                dir.display()
            );
        }
        Home::open_store(dir)
    }

    fn open_store(dir: &Path) -> Result<Home> {
        let store = Store::open(&dir.join("spaces"), std::sync::Arc::new(domicile_store::Vocabulary::builtin()))
            .with_context(|| format!("cannot open the store in {}", dir.display()))?;
        let legacy = dir.join(LEGACY_STORE);
        if legacy.exists() {
            upgrade(&store, &legacy)?;
        }
        Ok(Home { dir: dir.to_owned(), store, runtime: std::sync::OnceLock::new() })
    }

    /// The resident a command acts for: the one named, or the only one.
    pub fn resident(&self, name: Option<&str>) -> Result<ResidentSpace> {
        if let Some(name) = name {
            return Ok(self.store.resident(&name.parse()?)?);
        }
        let residents = self.store.residents()?;
        match residents.as_slice() {
            [only] => Ok(self.store.resident(only)?),
            [] => bail!("this home has no resident yet: add one with `domicile resident add NAME`"),
            _ => bail!(
                "this home has {} residents ({}): say which with --resident NAME",
                residents.len(),
                residents.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    pub fn trust_path(&self) -> PathBuf {
        self.dir.join("trust.json")
    }

    pub fn catalogues_path(&self) -> PathBuf {
        self.dir.join("catalogues.json")
    }

    pub fn accounts_path(&self) -> PathBuf {
        self.dir.join("accounts.json")
    }

    pub fn trust(&self) -> Result<TrustStore> {
        Ok(TrustStore::open(self.trust_path())?)
    }

    /// The same home, as the HTTP server serves it (starts the runtime).
    pub fn served(&self) -> Result<domicile_server::Home> {
        Ok(domicile_server::Home {
            trust_file: self.trust_path(),
            catalogues_file: self.catalogues_path(),
            accounts_file: self.accounts_path(),
            store: self.store.clone(),
            runtime: self.runtime()?.clone(),
            clock: clock_from_env()?,
        })
    }

    /// The app runtime, started on first use (it owns a wasmtime engine).
    pub fn runtime(&self) -> Result<&Arc<Runtime>> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        let rt = Arc::new(Runtime::new(self.runtime_config()?)?);
        Ok(self.runtime.get_or_init(|| rt))
    }

    /// `[server]` of config.toml over the defaults.
    pub fn server_config(&self) -> Result<ServerConfig> {
        let s = self.config()?.server;
        let mut config = ServerConfig::default();
        let secs = std::time::Duration::from_secs;
        if let Some(mib) = s.max_upload_mib {
            config.max_upload_bytes = usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
        }
        config.request_timeout = s.request_timeout_s.map_or(config.request_timeout, secs);
        config.runs_per_resident = s.runs_per_resident.unwrap_or(config.runs_per_resident);
        config.session_ttl = s.session_hours.map_or(config.session_ttl, |h| secs(h.saturating_mul(3600)));
        config.shutdown_grace = s.shutdown_grace_s.map_or(config.shutdown_grace, secs);
        config.secure_cookies = s.secure_cookies.unwrap_or(config.secure_cookies);
        config.sign_ins_per_client_per_minute =
            s.sign_ins_per_client_per_minute.unwrap_or(config.sign_ins_per_client_per_minute);
        Ok(config)
    }

    fn config(&self) -> Result<HomeConfig> {
        let path = self.dir.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("invalid {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HomeConfig::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn runtime_config(&self) -> Result<RuntimeConfig> {
        let path = self.dir.join("config.toml");
        let config = self.config()?;
        let mut rc = RuntimeConfig::new(self.dir.join("cache"), self.dir.join("scratch"));
        rc.clock = clock_from_env()?;
        let (l, caps) = (config.limits, &mut rc.limits);
        set(&mut caps.memory_mib, l.default_memory_mib, l.max_memory_mib);
        set(&mut caps.cpu_ms, l.default_cpu_ms, l.max_cpu_ms);
        set(&mut caps.wall_ms, l.default_wall_ms, l.max_wall_ms);
        set(&mut caps.host_calls, l.default_host_calls, l.max_host_calls);
        set(&mut caps.documents, l.default_documents, l.max_documents);
        set(&mut caps.output_kib, l.default_output_kib, l.max_output_kib);
        if let Some(n) = config.engine.max_concurrent_invocations {
            anyhow::ensure!(
                (1..=1024).contains(&n),
                "{}: max-concurrent-invocations must be 1 to 1024",
                path.display()
            );
            rc.max_concurrent = n;
        }
        Ok(rc)
    }
}

/// Where domicile 0.1 kept every resident's data, in one database.
const LEGACY_STORE: &str = "store";

fn is_home(dir: &Path) -> bool {
    dir.join("spaces").is_dir() || dir.join(LEGACY_STORE).is_dir()
}

/// Moves a home of domicile 0.1 to a database per resident, saying so on
/// stderr (an interrupted upgrade resumes at the next command).
fn upgrade(store: &Store, legacy: &Path) -> Result<()> {
    eprintln!("upgrading this home to one database per resident (domicile 0.1 kept every resident in one)...");
    let report = store
        .upgrade_single_database(legacy, &mut |i, n| tracing::info!("upgrade: moving resident {} of {n}", i + 1))
        .with_context(|| {
            format!(
                "cannot upgrade the home's store {}; nothing was lost: the next command will try again",
                legacy.display()
            )
        })?;
    eprintln!(
        "upgraded: {} resident(s) moved ({} entries){}",
        report.residents_moved + report.residents_already_moved,
        report.entries,
        if report.residents_already_moved > 0 { ", finishing an upgrade that was interrupted" } else { "" }
    );
    Ok(())
}

/// `DOMICILE_CLOCK=2026-03-01T12:00:00Z` fixes the time apps see (tests,
/// demos); unset, they see the system clock.
pub fn clock_from_env() -> Result<Clock> {
    match std::env::var("DOMICILE_CLOCK") {
        Err(_) => Ok(Clock::System),
        Ok(text) if text.is_empty() => Ok(Clock::System),
        Ok(text) => {
            let t = time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339).with_context(
                || format!("DOMICILE_CLOCK `{text}` is not an RFC 3339 time such as 2026-03-01T12:00:00Z"),
            )?;
            Ok(Clock::Fixed((t.unix_timestamp_nanos() / 1_000_000) as u64))
        }
    }
}
