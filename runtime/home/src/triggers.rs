//! Apps that run on their own: the `[[triggers]]` of their manifests.
//!
//! A schedule is due once its latest slot (in the home's time zone) is newer
//! than the one it last ran for, so a schedule missed while nothing was
//! running runs once, not once per missed slot. An on-change trigger is due
//! when the change feed of its doctype holds changes made by someone else
//! than the app since its cursor; an import of 10,000 documents is one
//! commit, and so one run (the server also waits for writes to settle).
//!
//! A run is recorded as under way, durably, before it starts, and settled
//! after: a run a crash stopped is found at the next check and not repeated
//! (its changes or slot count as handled; the app's log says so), while an
//! event whose run never started runs after the restart. A failing run is
//! tried again later, backing off from a minute to six hours, and each
//! failure goes to the app's log. Every run is an ordinary service run:
//! audited, within the app's limits and the resident's grants, and counted
//! per resident.

use std::collections::BTreeSet;
use std::sync::Mutex;

use domicile_manifest::{AppId, Schedule, Trigger};
use domicile_store::{AppLogEntry, Author, Claim, InstalledApp, ResidentSpace, TriggerState};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use serde_json::json;

use crate::{Home, HomeError, Result};

/// The first wait after a failure; it doubles with each failure in a row.
const FIRST_BACKOFF_MS: u64 = 60_000;
const MAX_BACKOFF_MS: u64 = 6 * 3600 * 1000;
/// The most changes an on-change run reports counting (it says "at least").
const MAX_COUNTED_CHANGES: usize = 100_000;

/// One trigger of an installed app, as the resident sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TriggerInfo {
    pub app: AppId,
    /// 1-based position in the app's manifest (`domicile triggers off APP N`).
    pub number: usize,
    pub key: String,
    /// When it runs, in words.
    pub when: String,
    pub purpose: String,
    pub enabled: bool,
    pub state: TriggerState,
    /// The next time a schedule is due (Unix ms); `None` for on-change.
    pub next_run_ms: Option<u64>,
}

/// A trigger that is due, with the input its run gets.
#[derive(Debug, Clone)]
pub struct Due {
    pub app: AppId,
    pub key: String,
    pub when: String,
    /// Due because of new data (not a schedule).
    pub on_change: bool,
    pub input: serde_json::Value,
    claim: Claim,
}

/// What a trigger run did.
#[derive(Debug, Clone)]
pub struct TriggerRun {
    pub app: AppId,
    pub when: String,
    /// The run's output, or why it failed.
    pub outcome: std::result::Result<String, String>,
}

/// The triggers this process is running (resident, app, key): a claim
/// found for anything else was left by a process that stopped.
#[derive(Default)]
pub(crate) struct InFlight(Mutex<BTreeSet<(String, String, String)>>);

impl InFlight {
    fn key(space: &ResidentSpace, app: &AppId, trigger: &str) -> (String, String, String) {
        (space.resident().to_string(), app.to_string(), trigger.to_owned())
    }

    fn contains(&self, space: &ResidentSpace, app: &AppId, trigger: &str) -> bool {
        self.0.lock().expect("in-flight lock").contains(&Self::key(space, app, trigger))
    }

    /// Whether the resident has a trigger running in this process.
    pub(crate) fn any_of(&self, space: &ResidentSpace) -> bool {
        let name = space.resident().to_string();
        self.0.lock().expect("in-flight lock").iter().any(|(r, _, _)| r == &name)
    }
}

impl Home {
    /// The time zone schedules are read in: `[triggers] time-zone` of
    /// config.toml, else the system's, else UTC.
    pub fn time_zone(&self) -> Result<TimeZone> {
        match self.config()?.triggers.time_zone {
            Some(name) => TimeZone::get(&name).map_err(|e| HomeError::Config {
                path: self.dir().join("config.toml"),
                message: format!("[triggers] time-zone `{name}` is not a time zone such as Europe/Paris ({e})"),
            }),
            None => Ok(TimeZone::try_system().unwrap_or(TimeZone::UTC)),
        }
    }

    /// Sets up the triggers of `app` that have no state yet (after an
    /// install or an update): a schedule starts from its current slot, an
    /// on-change trigger from the newest change, so nothing runs for what
    /// happened before the resident agreed to it.
    pub fn set_up_triggers(&self, space: &ResidentSpace, app: &InstalledApp) -> Result<()> {
        for trigger in &app.manifest.triggers {
            if space.trigger_state(app.id(), &trigger.key())?.is_none() {
                self.start_trigger_from_now(space, app.id(), trigger)?;
            }
        }
        Ok(())
    }

    /// A trigger's state as of now: its current slot, or the newest change.
    fn start_trigger_from_now(&self, space: &ResidentSpace, app: &AppId, trigger: &Trigger) -> Result<()> {
        let state = match trigger.schedule {
            Some(s) => TriggerState {
                last_slot_ms: Some(latest_slot(s, self.now_ms(), &self.time_zone()?)?),
                ..Default::default()
            },
            None => TriggerState { cursor: space.last_seq(), ..Default::default() },
        };
        Ok(space.set_trigger_state(app, &trigger.key(), &state)?)
    }

    /// Every trigger of the resident's apps (or of `only` that app), with its state.
    pub fn triggers(&self, space: &ResidentSpace, only: Option<&AppId>) -> Result<Vec<TriggerInfo>> {
        let tz = self.time_zone()?;
        let mut out = Vec::new();
        for app in space.apps()?.into_iter().filter(|a| only.is_none_or(|o| a.id() == o)) {
            for (i, trigger) in app.manifest.triggers.iter().enumerate() {
                let key = trigger.key();
                let state = space.trigger_state(app.id(), &key)?.unwrap_or_default();
                let next_run_ms = match trigger.schedule {
                    Some(s) => Some(next_slot(s, state.last_slot_ms.unwrap_or(self.now_ms()), &tz)?),
                    None => None,
                }
                .map(|next| next.max(state.retry_after_ms.unwrap_or(0)));
                out.push(TriggerInfo {
                    app: app.id().clone(),
                    number: i + 1,
                    enabled: !app.triggers_off.contains(&key),
                    when: trigger.when(),
                    purpose: trigger.purpose.to_string(),
                    key,
                    state,
                    next_run_ms,
                });
            }
        }
        Ok(out)
    }

    /// Switches trigger `number` (1-based, as listed) of `app` on or off,
    /// or all of its triggers when `number` is `None`; returns their words.
    pub fn set_triggers_enabled(
        &self,
        space: &ResidentSpace,
        app: &AppId,
        number: Option<usize>,
        enabled: bool,
    ) -> Result<Vec<String>> {
        let installed = space.app(app)?;
        let triggers = &installed.manifest.triggers;
        let chosen: Vec<&Trigger> = match number {
            None => triggers.iter().collect(),
            Some(n) => vec![triggers.get(n.wrapping_sub(1)).ok_or_else(|| {
                HomeError::BadInput(format!("{app} has {} trigger(s); `domicile triggers` lists them", triggers.len()))
            })?],
        };
        if chosen.is_empty() {
            return Err(HomeError::BadInput(format!("{app} has no triggers")));
        }
        for t in &chosen {
            space.set_trigger_enabled(app, &t.key(), enabled)?;
            if enabled {
                // Switched back on: from now, not for what happened while off.
                self.start_trigger_from_now(space, app, t)?;
            }
        }
        Ok(chosen.iter().map(|t| t.when()).collect())
    }

    /// The resident's triggers that are due now. Settles the runs a stopped
    /// process left under way.
    pub fn due_triggers(&self, space: &ResidentSpace) -> Result<Vec<Due>> {
        let tz = self.time_zone()?;
        let now = self.now_ms();
        let mut due = Vec::new();
        for app in space.apps()? {
            if app.held.is_some() {
                continue;
            }
            for trigger in &app.manifest.triggers {
                let key = trigger.key();
                if app.triggers_off.contains(&key) || self.in_flight.contains(space, app.id(), &key) {
                    continue;
                }
                let Some(mut state) = space.trigger_state(app.id(), &key)? else {
                    self.set_up_triggers(space, &app)?;
                    continue;
                };
                if let Some(claim) = state.running.take() {
                    settle_interrupted(space, app.id(), &key, &mut state, claim, now)?;
                    continue;
                }
                if state.retry_after_ms.is_some_and(|t| t > now) {
                    continue;
                }
                let found = match (trigger.schedule, &trigger.on_change) {
                    (Some(schedule), _) => {
                        let slot = latest_slot(schedule, now, &tz)?;
                        let last = state.last_slot_ms.unwrap_or(slot);
                        (slot > last).then(|| {
                            let input = json!({ "trigger": {
                                "kind": "schedule",
                                "schedule": schedule.to_string(),
                                "slot": rfc3339(slot),
                                "since": rfc3339(last),
                            }});
                            (input, Claim { since_ms: now, cursor: state.cursor, slot_ms: Some(slot) })
                        })
                    }
                    (None, Some(doctype)) => {
                        let changes = space.changes_since(doctype, state.cursor, MAX_COUNTED_CHANGES)?;
                        let mine = |by: &Author| matches!(by, Author::App { id, .. } if id == app.id().as_str());
                        let others: Vec<_> = changes.iter().filter(|c| !mine(&c.by)).collect();
                        let newest = changes.last().map_or(state.cursor, |c| c.seq);
                        match (others.first(), others.last()) {
                            (Some(first), Some(_)) => {
                                let input = json!({ "trigger": {
                                    "kind": "on-change",
                                    "doctype": doctype.as_str(),
                                    "changes": others.len(),
                                    "at_least": changes.len() == MAX_COUNTED_CHANGES,
                                    "since": rfc3339(first.at_ms),
                                }});
                                Some((input, Claim { since_ms: now, cursor: newest, slot_ms: state.last_slot_ms }))
                            }
                            (None, _) if newest > state.cursor => {
                                // Only the app's own writes: move past them quietly.
                                state.cursor = newest;
                                space.set_trigger_state(app.id(), &key, &state)?;
                                None
                            }
                            _ => None,
                        }
                    }
                    (None, None) => None,
                };
                if let Some((input, claim)) = found {
                    let on_change = trigger.on_change.is_some();
                    due.push(Due { app: app.id().clone(), key, when: trigger.when(), on_change, input, claim });
                }
            }
        }
        Ok(due)
    }

    /// Runs one due trigger: marks it under way, runs the app with the
    /// trigger's input, and records the outcome (backing off on failure).
    pub async fn run_trigger(&self, space: &ResidentSpace, due: Due) -> Result<TriggerRun> {
        let Due { app, key, when, input, claim, .. } = due;
        let mut state = space.trigger_state(&app, &key)?.unwrap_or_default();
        state.running = Some(claim);
        space.set_trigger_state(&app, &key, &state)?;
        let flight = InFlight::key(space, &app, &key);
        self.in_flight.0.lock().expect("in-flight lock").insert(flight.clone());
        let outcome = self.run(space, &app, &input.to_string()).await;
        self.in_flight.0.lock().expect("in-flight lock").remove(&flight);
        let now = self.now_ms();
        state.running = None;
        state.last_run_ms = Some(now);
        let outcome = match outcome {
            Ok(output) => {
                state.cursor = claim.cursor;
                state.last_slot_ms = claim.slot_ms.or(state.last_slot_ms);
                state.failures = 0;
                state.retry_after_ms = None;
                state.last_outcome = Some("ok".into());
                state.runs += 1;
                Ok(output)
            }
            Err(e) => {
                let why = format!("{e:#}");
                state.failures += 1;
                let wait = (FIRST_BACKOFF_MS << (state.failures - 1).min(20)).min(MAX_BACKOFF_MS);
                state.retry_after_ms = Some(now + wait);
                state.last_outcome = Some(why.chars().take(500).collect());
                let line = format!(
                    "trigger `{key}` failed ({} in a row; next try after {}): {why}",
                    state.failures,
                    rfc3339(now + wait)
                );
                space.append_app_log(&[AppLogEntry {
                    at_ms: now,
                    app: app.clone(),
                    level: "error".into(),
                    message: line,
                }])?;
                Err(why)
            }
        };
        space.set_trigger_state(&app, &key, &state)?;
        Ok(TriggerRun { app, when, outcome })
    }

    /// Runs every trigger of the resident that is due, one after another.
    pub async fn run_due_triggers(&self, space: &ResidentSpace) -> Result<Vec<TriggerRun>> {
        let mut runs = Vec::new();
        for due in self.due_triggers(space)? {
            runs.push(self.run_trigger(space, due).await?);
        }
        Ok(runs)
    }

    /// When the resident's triggers next need a look that no write of
    /// theirs prompts (Unix ms): the next slot of a schedule, the end of a
    /// back-off, now for a run a stopped process left under way. `None`:
    /// only new data can make one due.
    pub fn next_trigger_check(&self, space: &ResidentSpace) -> Result<Option<u64>> {
        let mut next: Option<u64> = None;
        for t in self.triggers(space, None)?.into_iter().filter(|t| t.enabled) {
            let at = if t.state.running.is_some() {
                Some(0)
            } else {
                t.next_run_ms.or(t.state.retry_after_ms.filter(|_| t.state.failures > 0))
            };
            next = match (next, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(next)
    }

    /// Whether the resident has a trigger running in this process (the
    /// server runs one at a time per resident).
    pub fn trigger_running(&self, space: &ResidentSpace) -> bool {
        self.in_flight.any_of(space)
    }
}

/// A run a stopped process left under way: counted as handled, not run
/// again, and said in the app's log.
fn settle_interrupted(
    space: &ResidentSpace,
    app: &AppId,
    key: &str,
    state: &mut TriggerState,
    claim: Claim,
    now: u64,
) -> Result<()> {
    state.cursor = claim.cursor;
    state.last_slot_ms = claim.slot_ms.or(state.last_slot_ms);
    state.last_outcome = Some("interrupted: domicile stopped during the run, which is not repeated".into());
    let message = format!(
        "trigger `{key}`: the run started at {} was interrupted (domicile stopped); it is not repeated",
        rfc3339(claim.since_ms)
    );
    space.append_app_log(&[AppLogEntry { at_ms: now, app: app.clone(), level: "warn".into(), message }])?;
    space.set_trigger_state(app, key, state)?;
    Ok(())
}

fn rfc3339(ms: u64) -> String {
    Timestamp::from_millisecond(ms as i64).map(|t| t.to_string()).unwrap_or_default()
}

fn bad_time(e: jiff::Error) -> HomeError {
    HomeError::BadInput(format!("a schedule's time cannot be computed: {e}"))
}

/// The start (Unix ms) of the newest slot of `schedule` at or before `now`.
pub fn latest_slot(schedule: Schedule, now_ms: u64, tz: &TimeZone) -> Result<u64> {
    let now = Timestamp::from_millisecond(now_ms as i64).map_err(bad_time)?;
    let slot = match schedule {
        Schedule::Every { minutes } => {
            let period = i64::from(minutes) * 60_000;
            now_ms as i64 - (now_ms as i64).rem_euclid(period)
        }
        Schedule::Daily { minute_of_day } => {
            let today = now.to_zoned(tz.clone()).date();
            let at = at_minute(today, minute_of_day, tz)?;
            if at <= now_ms as i64 {
                at
            } else {
                at_minute(today.yesterday().map_err(bad_time)?, minute_of_day, tz)?
            }
        }
        Schedule::Weekly { weekday, minute_of_day } => {
            let today = now.to_zoned(tz.clone()).date();
            let back = (i64::from(today.weekday().to_monday_zero_offset()) - i64::from(weekday)).rem_euclid(7);
            let day = today.checked_sub(Span::new().days(back)).map_err(bad_time)?;
            let at = at_minute(day, minute_of_day, tz)?;
            if at <= now_ms as i64 {
                at
            } else {
                at_minute(day.checked_sub(Span::new().days(7)).map_err(bad_time)?, minute_of_day, tz)?
            }
        }
    };
    Ok(slot.max(0) as u64)
}

/// The start of the slot after the one starting at `slot_ms`.
pub fn next_slot(schedule: Schedule, slot_ms: u64, tz: &TimeZone) -> Result<u64> {
    let latest = latest_slot(schedule, slot_ms, tz)?;
    let next = match schedule {
        Schedule::Every { minutes } => latest as i64 + i64::from(minutes) * 60_000,
        Schedule::Daily { minute_of_day } | Schedule::Weekly { minute_of_day, .. } => {
            let days = if matches!(schedule, Schedule::Daily { .. }) { 1 } else { 7 };
            let date = Timestamp::from_millisecond(latest as i64).map_err(bad_time)?.to_zoned(tz.clone()).date();
            at_minute(date.checked_add(Span::new().days(days)).map_err(bad_time)?, minute_of_day, tz)?
        }
    };
    Ok(next.max(0) as u64)
}

/// `minute_of_day` of `date` in `tz`, as Unix ms (a time a clock change
/// skips is taken as the moment after the gap).
fn at_minute(date: jiff::civil::Date, minute_of_day: u32, tz: &TimeZone) -> Result<i64> {
    let time = date.at((minute_of_day / 60) as i8, (minute_of_day % 60) as i8, 0, 0);
    Ok(time.to_zoned(tz.clone()).map_err(bad_time)?.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u64 {
        text.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    #[test]
    fn slots_follow_the_time_zone_across_clock_changes() {
        let paris = TimeZone::get("Europe/Paris").unwrap();
        let daily: Schedule = "daily 07:00".parse().unwrap();
        // Winter: 07:00 in Paris is 06:00 UTC; before it, the slot is yesterday's.
        assert_eq!(latest_slot(daily, ms("2026-03-02T06:30:00Z"), &paris).unwrap(), ms("2026-03-02T06:00:00Z"));
        assert_eq!(latest_slot(daily, ms("2026-03-02T05:59:00Z"), &paris).unwrap(), ms("2026-03-01T06:00:00Z"));
        // The night clocks go forward (29 March 2026), the next slot is 05:00 UTC.
        assert_eq!(next_slot(daily, ms("2026-03-28T06:00:00Z"), &paris).unwrap(), ms("2026-03-29T05:00:00Z"));
        let weekly: Schedule = "weekly mon 08:00".parse().unwrap();
        // 2026-03-05 is a Thursday: the slot is Monday 2 March, 08:00 Paris.
        assert_eq!(latest_slot(weekly, ms("2026-03-05T12:00:00Z"), &paris).unwrap(), ms("2026-03-02T07:00:00Z"));
        assert_eq!(next_slot(weekly, ms("2026-03-02T07:00:00Z"), &paris).unwrap(), ms("2026-03-09T07:00:00Z"));
        // A Monday before 08:00 still belongs to the week before.
        assert_eq!(latest_slot(weekly, ms("2026-03-09T06:00:00Z"), &paris).unwrap(), ms("2026-03-02T07:00:00Z"));
        let every: Schedule = "every 6h".parse().unwrap();
        assert_eq!(latest_slot(every, ms("2026-03-02T13:10:00Z"), &paris).unwrap(), ms("2026-03-02T12:00:00Z"));
        assert_eq!(next_slot(every, ms("2026-03-02T12:00:00Z"), &paris).unwrap(), ms("2026-03-02T18:00:00Z"));
    }
}
