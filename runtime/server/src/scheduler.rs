//! Apps' triggers, run in the background while the server runs. Every tick
//! the residents are visited in turn, starting after the one the last tick
//! started with; a resident gets at most one trigger run at a time, taken
//! from the same per-resident allowance as their own runs and imports, so
//! one resident's triggers can neither starve another's nor crowd out the
//! resident's own requests. A resident's triggers wait until their writes
//! have settled (no new change for a whole tick), so a burst of writes
//! makes one run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::State;

/// How often due triggers are looked for.
const TICK: Duration = Duration::from_secs(1);

/// Runs due triggers until `stopping` turns true.
pub(crate) async fn run(state: Arc<State>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let mut turn = 0usize;
    // Per resident: the newest change seen at the last tick.
    let mut last_seen: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let Ok(residents) = state.home.store().residents() else { continue };
        if residents.is_empty() {
            continue;
        }
        turn = (turn + 1) % residents.len();
        for name in residents.iter().cycle().skip(turn).take(residents.len()) {
            let Ok(space) = state.home.resident(Some(name.as_str())) else { continue };
            let newest = space.last_seq();
            let settled = last_seen.insert(name.to_string(), newest) == Some(newest);
            if !settled || state.home.trigger_running(&space) {
                continue;
            }
            let due = match state.home.due_triggers(&space) {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "triggers of a resident could not be checked");
                    continue;
                }
            };
            let Some(first) = due.into_iter().next() else { continue };
            // Counted with the resident's runs; when they are all taken,
            // the trigger waits for a later tick.
            let Ok(permit) = state.heavy_work_permit(name) else { continue };
            let state = state.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let outcome = match state.home.run_trigger(&space, first).await {
                    Ok(run) if run.outcome.is_ok() => "ok",
                    Ok(_) => "failed",
                    Err(e) => {
                        tracing::warn!(error = %e, "a trigger's state could not be recorded");
                        "error"
                    }
                };
                state.metrics.trigger_run(outcome, started.elapsed());
                drop(permit);
            });
        }
    }
}
