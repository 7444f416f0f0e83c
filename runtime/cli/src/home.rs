//! Opening the home a command acts on (saying on stderr when it is being
//! upgraded), and the clock apps see.

use std::path::Path;

use anyhow::{Context, Result};
use domicile_home::{Home, OpenEvent};
use domicile_host::Clock;

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

pub fn create(dir: &Path, first: &domicile_store::ResidentName) -> Result<Home> {
    Ok(Home::create(dir, first, clock_from_env()?)?)
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
