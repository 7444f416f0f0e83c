//! `HOME/config.toml`: what the operator allows apps at most, how many may
//! run at once, and the server's settings.

use domicile_host::{Cap, RuntimeConfig};
use serde::Deserialize;

use crate::{Home, HomeError, Result};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HomeConfig {
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default)]
    pub server: ServerSettings,
    #[serde(default)]
    pub triggers: TriggerSettings,
}

/// `[triggers]`: how apps' schedules are read.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TriggerSettings {
    /// The IANA time zone of schedules (`Europe/Paris`); default: the system's.
    pub time_zone: Option<String>,
}

/// `[server]`: what `domicile serve` allows each request and resident. The
/// server applies them over its defaults.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerSettings {
    /// The largest upload (an export file to import), MiB.
    pub max_upload_mib: Option<u64>,
    /// Requests still running after this many seconds are cancelled.
    pub request_timeout_s: Option<u64>,
    /// Runs, imports, installs and exports one resident may have at once.
    pub runs_per_resident: Option<usize>,
    /// How long a browser stays signed in, hours.
    pub session_hours: Option<u64>,
    /// Seconds in-flight requests get to finish after Ctrl-C or SIGTERM.
    pub shutdown_grace_s: Option<u64>,
    /// Session cookies only over HTTPS (behind a TLS proxy).
    pub secure_cookies: Option<bool>,
    /// Sign-in attempts one client address may make per minute (0: no cap).
    pub sign_ins_per_client_per_minute: Option<u32>,
    /// How often, in seconds, the results of campaigns past their deadline
    /// are looked for and brought into their participants' spaces.
    pub campaign_results_every_s: Option<u64>,
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
    /// Where compiled apps are kept (default: see [`Home::artifact_cache`]).
    /// Homes of one operator may share one: an app is compiled once for
    /// all of them.
    artifact_cache: Option<std::path::PathBuf>,
    /// The most the artifact cache holds, in MiB (default 2048); past it,
    /// the artifacts used least recently are removed.
    artifact_cache_max_mib: Option<u64>,
    /// Keeps the machine code of every function this process compiles, so
    /// that an app rebuilt with a small change recompiles only the
    /// functions that changed (the 12-18 MB components of Python and
    /// JavaScript apps differ in their data, not their interpreter's
    /// code). Memory grows with each distinct function: meant for
    /// development homes (`domicile dev` sets it), off by default.
    reuse_compiled_functions: Option<bool>,
}

/// A default for `[engine] artifact-cache`, for every home a process opens
/// that does not set it (a test suite's homes, an operator's).
pub const ARTIFACT_CACHE_ENV: &str = "DOMICILE_ARTIFACT_CACHE";

/// The user's cache folder for compiled apps, when the platform has one.
fn user_artifact_cache() -> Option<std::path::PathBuf> {
    Some(directories::BaseDirs::new()?.cache_dir().join("domicile").join("artifacts"))
}

fn set(cap: &mut Cap, default: Option<u64>, max: Option<u64>) {
    cap.default = default.unwrap_or(cap.default);
    cap.max = max.unwrap_or(cap.max);
}

impl Home {
    /// `config.toml`, or the defaults when there is none.
    pub fn config(&self) -> Result<HomeConfig> {
        let path = self.dir.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|e| HomeError::Config { path, message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HomeConfig::default()),
            Err(source) => Err(HomeError::Io { path, source }),
        }
    }

    /// Where this home keeps compiled apps: `[engine] artifact-cache`, else
    /// `DOMICILE_ARTIFACT_CACHE`, else `HOME/cache` when the home already
    /// has one (homes made before the cache was shared), else the user's
    /// cache folder, shared by their homes (`$XDG_CACHE_HOME/domicile/artifacts`
    /// or `~/.cache/domicile/artifacts` on Linux), so that an app compiled
    /// for one home (a demo made anew) is not compiled again for the next.
    fn artifact_cache(&self, config: &HomeConfig) -> std::path::PathBuf {
        let own = self.dir.join("cache");
        config
            .engine
            .artifact_cache
            .clone()
            .or_else(|| std::env::var_os(ARTIFACT_CACHE_ENV).filter(|v| !v.is_empty()).map(Into::into))
            .or_else(|| (!own.exists()).then(user_artifact_cache).flatten())
            .unwrap_or(own)
    }

    pub(crate) fn runtime_config(&self) -> Result<RuntimeConfig> {
        let path = self.dir.join("config.toml");
        let config = self.config()?;
        let mut rc = RuntimeConfig::new(self.artifact_cache(&config), self.dir.join("scratch"));
        if let Some(mib) = config.engine.artifact_cache_max_mib {
            if mib == 0 {
                return Err(HomeError::Config { path, message: "artifact-cache-max-mib must be at least 1".into() });
            }
            rc.cache_max_bytes = mib.saturating_mul(1 << 20);
        }
        rc.clock = self.clock;
        let (l, caps) = (config.limits, &mut rc.limits);
        set(&mut caps.memory_mib, l.default_memory_mib, l.max_memory_mib);
        set(&mut caps.cpu_ms, l.default_cpu_ms, l.max_cpu_ms);
        set(&mut caps.wall_ms, l.default_wall_ms, l.max_wall_ms);
        set(&mut caps.host_calls, l.default_host_calls, l.max_host_calls);
        set(&mut caps.documents, l.default_documents, l.max_documents);
        set(&mut caps.output_kib, l.default_output_kib, l.max_output_kib);
        rc.reuse_compiled_functions = config.engine.reuse_compiled_functions.unwrap_or(false);
        if let Some(n) = config.engine.max_concurrent_invocations {
            if !(1..=1024).contains(&n) {
                return Err(HomeError::Config { path, message: "max-concurrent-invocations must be 1 to 1024".into() });
            }
            rc.max_concurrent = n;
        }
        Ok(rc)
    }
}
