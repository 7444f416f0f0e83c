//! `domicile triggers`: apps' triggers listed with their state, switched on
//! or off, and run when due (`run-due`, for cron or a systemd timer); and
//! the on-change triggers a command's own write made due, run before the
//! command ends (a home without a server has no one else to run them).

use anyhow::Result;
use domicile_home::{format_ms, Home, TriggerRun};
use domicile_manifest::AppId;
use domicile_store::ResidentSpace;

use crate::answer::{lines, say};
use crate::terminal::safe;

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct TriggersArgs {
    #[command(subcommand)]
    pub action: Option<TriggersCommand>,
}

#[derive(clap::Subcommand, serde::Serialize, serde::Deserialize)]
pub enum TriggersCommand {
    /// Run every trigger that is due now, for every resident (or the one
    /// --resident names): run it from cron or a systemd timer when no
    /// `domicile serve` runs the schedules.
    RunDue,
    /// Switch an app's trigger N (as `domicile triggers` numbers them), or all of them, back on.
    On { app: String, number: Option<usize> },
    /// Switch an app's trigger N, or all of them, off: it no longer runs on its own.
    Off { app: String, number: Option<usize> },
}

/// `domicile triggers [run-due|on|off]`.
pub async fn command(home: &Home, resident: Option<&str>, args: TriggersArgs, json: bool) -> Result<()> {
    match args.action {
        None => list(home, &home.resident(resident)?, json),
        Some(TriggersCommand::RunDue) => {
            let spaces = match resident {
                Some(_) => vec![home.resident(resident)?],
                None => home
                    .store()
                    .residents()?
                    .iter()
                    .map(|r| home.resident(Some(r.as_str())))
                    .collect::<Result<_, _>>()?,
            };
            let mut ran = 0;
            for space in &spaces {
                let runs = home.run_due_triggers(space).await?;
                ran += runs.len();
                report(space, &runs, json, spaces.len() > 1);
            }
            if !json {
                errln!("{ran} trigger run(s)");
            }
            Ok(())
        }
        Some(switch) => {
            let (app, number, enabled) = match switch {
                TriggersCommand::On { app, number } => (app, number, true),
                TriggersCommand::Off { app, number } => (app, number, false),
                TriggersCommand::RunDue => unreachable!("handled above"),
            };
            let id: AppId = app.parse()?;
            let space = home.resident(resident)?;
            let switched = home.set_triggers_enabled(&space, &id, number, enabled)?;
            let answer = serde_json::json!({ "app": id.as_str(), "enabled": enabled, "triggers": switched });
            say(json, &answer, |_| {
                let will = if enabled { "will again" } else { "will no longer" };
                lines(switched.iter().map(|when| format!("{id} {will} run on its own {when}")))
            })
        }
    }
}

fn list(home: &Home, space: &ResidentSpace, json: bool) -> Result<()> {
    say(json, &home.triggers(space, None)?, |triggers| {
        if triggers.is_empty() {
            return "no installed app runs on its own".into();
        }
        lines(triggers.iter().map(|t| {
            let state = match (&t.state.last_outcome, t.state.failures) {
                (_, 0) if !t.enabled => "switched off".to_owned(),
                (None, _) => "not run yet".to_owned(),
                (Some(ok), 0) if ok == "ok" => format!("ran {} time(s)", t.state.runs),
                (Some(why), 0) => safe(why).into_owned(),
                (Some(why), n) => format!("failing ({n} in a row): {}", safe(why)),
            };
            let last = t.state.last_run_ms.map(format_ms).unwrap_or_else(|| "never".into());
            let next = match (t.enabled, t.next_run_ms, t.state.retry_after_ms) {
                (false, _, _) => "off: `domicile triggers on APP N` switches it back on".to_owned(),
                (true, Some(next), _) => format_ms(next),
                (true, None, Some(retry)) => format!("on the next change, not before {}", format_ms(retry)),
                (true, None, None) => "on the next change".to_owned(),
            };
            format!(
                "{} #{}: runs {}\n  why: {}\n  state: {state}; last run: {last}; next: {next}",
                t.app, t.number, t.when, t.purpose
            )
        }))
    })
}

/// Prints what trigger runs did (to stderr: a command's own output stays clean).
pub fn report(space: &ResidentSpace, runs: &[TriggerRun], json: bool, name_resident: bool) {
    for run in runs {
        let who = if name_resident { format!("{}: ", space.resident()) } else { String::new() };
        if json {
            let outcome = match &run.outcome {
                Ok(_) => serde_json::json!({ "ok": true }),
                Err(why) => serde_json::json!({ "ok": false, "error": why }),
            };
            errln!(
                "{}",
                serde_json::json!({ "resident": space.resident().as_str(), "app": run.app.as_str(), "when": run.when, "outcome": outcome })
            );
        } else {
            match &run.outcome {
                Ok(_) => errln!("{who}trigger: {} ran on its own ({})", run.app, run.when),
                Err(why) => errln!("{who}trigger: {} failed ({}): {}", run.app, run.when, safe(why)),
            }
        }
    }
}

/// Runs the on-change triggers a command's write made due, before it ends
/// (schedules are `run-due`'s or the server's), unless `--no-triggers`.
pub async fn after_write(home: &Home, space: &ResidentSpace, json: bool, deferred: bool) -> Result<()> {
    if deferred {
        return Ok(());
    }
    let mut runs = Vec::new();
    for due in home.due_triggers(space)?.into_iter().filter(|d| d.on_change) {
        runs.push(home.run_trigger(space, due).await?);
    }
    report(space, &runs, json, false);
    Ok(())
}
