//! Apps' triggers, run in the background while the server runs. Every tick
//! the residents are visited in turn, starting after the one the last tick
//! started with; a resident gets at most one trigger run at a time, taken
//! from the same per-resident allowance as their own runs and imports, so
//! one resident's triggers can neither starve another's nor crowd out the
//! resident's own requests. A resident's triggers wait until their writes
//! have settled (no new change for a whole tick), so a burst of writes
//! makes one run.
//!
//! A node of thousands of residents must not open every database every
//! second: a tick looks only at residents whose database is open or was
//! closed after writes since the last tick (only they can have new
//! documents) and at those whose next schedule or back-off has come. After a start, every resident is looked at once, a
//! few per tick, for the events and missed schedules of the time it was
//! down.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::State;

/// How often due triggers are looked for.
const TICK: Duration = Duration::from_secs(1);
/// Closed databases a tick opens at most (the first looks after a start).
const OPENS_PER_TICK: usize = 32;

/// What the scheduler knows of one resident between ticks.
#[derive(Default)]
struct Watch {
    /// The newest change seen at the last look.
    seen: Option<u64>,
    /// The newest change when its triggers were last checked (nothing new
    /// since: nothing to check).
    checked: Option<u64>,
    /// When its triggers next need a look without a write (`None`: not
    /// looked at since the start; `u64::MAX`: only on a write).
    wake_at: Option<u64>,
}

/// Runs due triggers until `stopping` turns true.
pub(crate) async fn run(state: Arc<State>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let mut turn = 0usize;
    let mut watched: HashMap<String, Watch> = HashMap::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let store = state.home.store();
        let Ok(residents) = store.residents() else { continue };
        if residents.is_empty() {
            continue;
        }
        // Those whose documents may have changed since the last tick.
        let open: HashSet<String> =
            store.open_residents().iter().chain(&store.take_closed_with_changes()).map(|r| r.to_string()).collect();
        let now = state.home.now_ms();
        let mut opened = 0;
        turn = (turn + 1) % residents.len();
        for name in residents.iter().cycle().skip(turn).take(residents.len()) {
            let watch = watched.entry(name.to_string()).or_default();
            let scheduled = watch.wake_at.is_none_or(|at| at <= now);
            if !open.contains(name.as_str()) {
                if !scheduled || opened == OPENS_PER_TICK {
                    continue;
                }
                opened += 1;
            }
            let Ok(space) = state.home.resident(Some(name.as_str())) else { continue };
            let newest = space.last_seq();
            let settled = watch.seen.replace(newest) == Some(newest);
            let news = watch.checked != Some(newest);
            if !settled || !(news || scheduled) || state.home.trigger_running(&space) {
                continue;
            }
            watch.checked = Some(newest);
            let due = match state.home.due_triggers(&space) {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "triggers of a resident could not be checked");
                    continue;
                }
            };
            // Due triggers this tick does not run (one a tick, or the
            // resident's permits all taken) are looked at again next tick.
            watch.wake_at = Some(if due.is_empty() {
                state.home.next_trigger_check(&space).ok().flatten().unwrap_or(u64::MAX)
            } else {
                now
            });
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
