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
//! documents) and at those whose next schedule or back-off has come. What
//! each look found is kept beside the spaces (`domicile_store`'s wakes),
//! so that after a start only the residents written since their last look
//! (by any process) and those whose time has come are opened, a few per
//! tick: not every space of the home.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domicile_store::ResidentName;

use crate::State;

/// How often due triggers are looked for.
const TICK: Duration = Duration::from_secs(1);
/// Closed databases a tick opens at most (the first looks after a start,
/// a schedule many residents share)...
const OPENS_PER_TICK: usize = 32;
/// ...and the time a tick may spend on them, past which the rest wait for
/// the next tick: such looks take at most about this share of a core.
const OPENING_BUDGET: Duration = Duration::from_millis(40);

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
    let mut watched: HashMap<ResidentName, Watch> = HashMap::new();
    let mut listed: Option<Arc<[ResidentName]>> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let store = state.home.store();
        let Ok(residents) = store.residents_listed() else { continue };
        if residents.is_empty() {
            continue;
        }
        if listed.is_none() {
            // Unreadable, every resident gets a look (a resident without a
            // wake is looked at once).
            match store.trigger_wakes() {
                Ok(wakes) => {
                    let wakes: HashMap<ResidentName, u64> = wakes.into_iter().collect();
                    for name in residents.iter() {
                        let at = wakes.get(name).copied().unwrap_or(u64::MAX);
                        watched.insert(name.clone(), Watch { wake_at: Some(at), ..Default::default() });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the residents' trigger wakes could not be read: looking at each"),
            }
        }
        if !listed.as_ref().is_some_and(|l| Arc::ptr_eq(l, &residents)) {
            // Someone added (looked at once) or removed.
            for name in residents.iter() {
                watched.entry(name.clone()).or_default();
            }
            watched.retain(|name, _| residents.binary_search(name).is_ok());
            listed = Some(residents.clone());
        }
        // Those whose documents may have changed since the last tick.
        let open: HashSet<ResidentName> =
            store.open_residents().into_iter().chain(store.take_closed_with_changes()).collect();
        let (now, tick) = (state.home.now_ms(), Instant::now());
        let (mut opened, mut waiting) = (0, 0);
        turn = (turn + 1) % residents.len();
        for name in residents.iter().cycle().skip(turn).take(residents.len()) {
            let Some(watch) = watched.get_mut(name) else { continue };
            let scheduled = watch.wake_at.is_none_or(|at| at <= now);
            let was_open = open.contains(name);
            if !was_open {
                if !scheduled {
                    continue;
                }
                if opened == OPENS_PER_TICK || tick.elapsed() >= OPENING_BUDGET {
                    waiting += 1;
                    continue;
                }
                opened += 1;
            }
            let Ok(space) = state.home.resident(Some(name.as_str())) else { continue };
            let newest = space.last_seq();
            // A space that was closed has no write under way to wait for.
            let settled = watch.seen.replace(newest) == Some(newest) || !was_open;
            let news = watch.checked != Some(newest);
            if !settled {
                waiting += usize::from(scheduled);
                continue;
            }
            if !(news || scheduled) || state.home.trigger_running(&space) {
                continue;
            }
            watch.checked = Some(newest);
            // A write from here on may not be in what this look finds (its
            // own settling of runs a stopped process left included: the
            // next look then settles the mark).
            let look = space.trigger_look_started();
            let due = match state.home.due_triggers(&space) {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "triggers of a resident could not be checked");
                    continue;
                }
            };
            // Due triggers this tick does not run (one a tick, or the
            // resident's permits all taken) are looked at again next tick.
            let wake_at = if due.is_empty() {
                match state.home.next_trigger_check(&space) {
                    Ok(next) => next.unwrap_or(u64::MAX),
                    Err(e) => {
                        tracing::warn!(error = %e, "the next look at a resident's triggers could not be worked out");
                        now
                    }
                }
            } else {
                now
            };
            watch.wake_at = Some(wake_at);
            if let Err(e) = space.settle_trigger_look(look, (wake_at != u64::MAX).then_some(wake_at)) {
                tracing::warn!(error = %e, "when a resident's triggers next need a look could not be kept");
            }
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
        state.metrics.trigger_looks_due(waiting);
    }
}
