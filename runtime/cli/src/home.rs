//! Opening the home a command acts on (saying on stderr when it is being
//! upgraded), the clock apps see, and the server's settings from the
//! home's config over the server's defaults.

use std::path::Path;

use anyhow::{Context, Result};
use domicile_home::{Home, OpenEvent};
use domicile_host::Clock;
use domicile_server::ServerConfig;

/// Says what opening the home did besides opening it.
fn report(event: OpenEvent) {
    match event {
        OpenEvent::UpgradeStarted => {
            eprintln!("upgrading this home to one database per resident (domicile 0.1 kept every resident in one)...")
        }
        OpenEvent::MovingResident { index, total } => tracing::info!("upgrade: moving resident {index} of {total}"),
        OpenEvent::Upgraded(report) => eprintln!(
            "upgraded: {} resident(s) moved ({} entries){}",
            report.residents_moved + report.residents_already_moved,
            report.entries,
            if report.residents_already_moved > 0 { ", finishing an upgrade that was interrupted" } else { "" }
        ),
        OpenEvent::Tightened { entries } => eprintln!(
            "domicile: this home was readable by other users of this machine; its {entries} files and folders are now yours alone (folders 0700, files 0600)"
        ),
    }
}

pub fn open(dir: &Path) -> Result<Home> {
    Ok(Home::open(dir, clock_from_env()?, &mut report)?)
}

pub fn open_or_create(dir: &Path) -> Result<Home> {
    Ok(Home::open_or_create(dir, clock_from_env()?, &mut report)?)
}

/// Installs a package in `space`, verified against the home's trust store,
/// with everything its manifest asks granted: for the homes the CLI makes
/// itself (benchmarks, load tests, development homes), never a resident's.
pub fn install_granting_all(home: &Home, space: &domicile_store::ResidentSpace, package: Vec<u8>) -> Result<()> {
    let runtime = home.runtime()?;
    let prepared = runtime.prepare_install(space, &home.trust()?, package, None)?;
    let grants = domicile_manifest::Grants::all(prepared.manifest());
    let app = runtime.install(space, prepared, grants)?;
    home.set_up_triggers(space, &app)?;
    Ok(())
}

pub fn create(dir: &Path, first: &domicile_store::ResidentName) -> Result<Home> {
    Ok(Home::create(dir, first, clock_from_env()?)?)
}

/// `[server]` of config.toml over the defaults.
pub fn server_config(home: &Home) -> Result<ServerConfig> {
    let s = home.config()?.server;
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
