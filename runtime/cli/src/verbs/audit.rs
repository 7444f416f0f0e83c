//! What apps did with a resident's data: `audit` (every access, or a
//! summary), `audit verify` (the hash chain) and `logs` (what apps wrote).

use anyhow::{bail, Context, Result};
use domicile_home::format_ms;
use domicile_manifest::AppId;
use domicile_store::{AuditFilter, ResidentSpace};

use crate::answer::{lines, say};
use crate::terminal::safe;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: Option<AuditAction>,
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    #[arg(long, value_name = "DOCTYPE")]
    pub doctype: Option<String>,
    /// From this time on (2026-03-01, or 2026-03-01T12:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// One line per app, operation and doctype, with totals.
    #[arg(long)]
    pub summary: bool,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct LogsArgs {
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
}

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum AuditAction {
    /// Check the audit log's hash chain: any edited, deleted or reordered entry is reported.
    Verify,
}

/// `domicile audit [verify]`.
pub fn audit(space: &ResidentSpace, args: AuditArgs, json: bool) -> Result<()> {
    let AuditArgs { action, app, doctype, since, until, summary } = args;
    if let Some(AuditAction::Verify) = action {
        return audit_verify(space, json);
    }
    let filter = AuditFilter {
        app: app.map(|a| a.parse()).transpose()?,
        doctype: doctype.map(|d| d.parse()).transpose()?,
        since_ms: since.as_deref().map(parse_time).transpose()?,
        until_ms: until.as_deref().map(parse_time).transpose()?,
    };
    entries(space, &filter, summary, json)
}

/// `domicile logs [--app APP]`: one entry per line.
pub fn logs(space: &ResidentSpace, args: LogsArgs, json: bool) -> Result<()> {
    let app: Option<AppId> = args.app.map(|a| a.parse()).transpose()?;
    for e in space.app_log(app.as_ref())? {
        say(json, &e, |e| format!("{}  {:<5}  {}  {}", format_ms(e.at_ms), safe(&e.level), e.app, safe(&e.message)))?;
    }
    Ok(())
}

fn entries(space: &ResidentSpace, filter: &AuditFilter, summary: bool, json: bool) -> Result<()> {
    if summary {
        return say(json, &space.audit_summary(filter)?, |groups| {
            if groups.is_empty() {
                return "no app has accessed your data in that period".into();
            }
            lines(
                groups.iter().map(|g| {
                    format!("{}  ({} to {})", safe(&g.sentence()), format_ms(g.first_ms), format_ms(g.last_ms))
                }),
            )
        });
    }
    say(json, &space.audit(filter)?, |entries| {
        if entries.is_empty() {
            return "no app has accessed your data".into();
        }
        lines(entries.iter().map(|e| {
            let outcome = match e.outcome {
                domicile_store::Outcome::Allowed => "allowed",
                domicile_store::Outcome::Denied => "DENIED",
            };
            let what = match &e.destination {
                Some(d) => format!("to {}", safe(d)),
                None => format!("{}  {} doc(s)", safe(&e.doctype), e.documents),
            };
            format!(
                "{:>5}  {}  {:<7}  {}@{}  {:<6}  {what}",
                e.seq,
                format_ms(e.at_ms),
                outcome,
                e.app,
                safe(&e.app_version),
                e.operation.as_str()
            )
        }))
    })
}

fn audit_verify(space: &ResidentSpace, json: bool) -> Result<()> {
    let check = space.verify_audit()?;
    // With --json the check is the answer, intact or not; then the failure.
    if json || check.is_intact() {
        say(json, &check, |check| {
            format!(
                "the audit log is intact: {} entries, each chained to the one before\nlast entry's hash: {}\n(note it down: if it ever changes for entries you have seen, the log was rewritten)",
                check.entries,
                check.head
            )
        })?;
    }
    if !check.is_intact() {
        bail!("the audit log was tampered with: {}", check.problems.join("; "));
    }
    Ok(())
}

/// `2026-03-01` (midnight UTC) or an RFC 3339 time, as ms since the epoch.
fn parse_time(text: &str) -> Result<u64> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    let t = match time::OffsetDateTime::parse(text, rfc3339) {
        Ok(t) => t,
        Err(_) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            time::Date::parse(text, &format)
                .with_context(|| {
                    format!("`{text}` is not a date (2026-03-01) or an RFC 3339 time (2026-03-01T12:00:00Z)")
                })?
                .midnight()
                .assume_utc()
        }
    };
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).with_context(|| format!("`{text}` is before 1970"))
}
