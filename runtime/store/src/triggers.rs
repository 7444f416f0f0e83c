//! What the trigger engine remembers of each app's triggers, durably, in
//! the space's `meta` tree (one record per app and trigger key): how far
//! an on-change trigger has read the change feed, which schedule slot ran
//! last, the last outcome, failures and when to try again, and whether a
//! run is under way. A run is marked under way, durably, before it starts;
//! a mark found by a process that did not make it means a crash stopped
//! that run, which is then not repeated.

use domicile_manifest::AppId;
use serde::{Deserialize, Serialize};

use crate::journal::{Durability, Kv};
use crate::{decode, encode, ResidentSpace, Result};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerState {
    /// On-change: the change-feed sequence up to which changes were handled.
    #[serde(default)]
    pub cursor: u64,
    /// Schedule: the start (Unix ms) of the last slot it ran for, or was
    /// set up at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_slot_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_ms: Option<u64>,
    /// `ok`, or why the last run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_outcome: Option<String>,
    /// Failures in a row; reset by a success.
    #[serde(default)]
    pub failures: u32,
    /// After failures: not before this time (Unix ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// A run under way: what it handles, recorded before it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Claim>,
    #[serde(default)]
    pub runs: u64,
}

/// A run under way: since when, and the cursor or slot it settles once done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub since_ms: u64,
    pub cursor: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot_ms: Option<u64>,
}

fn key(app: &AppId, trigger: &str) -> Vec<u8> {
    format!("trigger\0{app}\0{trigger}").into_bytes()
}

impl ResidentSpace {
    /// The state of one trigger; `None` before it was first set up.
    pub fn trigger_state(&self, app: &AppId, trigger: &str) -> Result<Option<TriggerState>> {
        self.meta.get(key(app, trigger))?.map(|b| decode("a trigger's state", &b)).transpose()
    }

    /// Records a trigger's state and makes it durable before returning.
    pub fn set_trigger_state(&self, app: &AppId, trigger: &str, state: &TriggerState) -> Result<()> {
        self.write(Durability::Now, |t| t.meta.insert(&key(app, trigger), &encode(state)))
    }

    /// The keys of the state of every trigger of `app`.
    pub(crate) fn trigger_keys(&self, app: &AppId) -> Result<Vec<sled::IVec>> {
        Ok(self.meta.scan_prefix(format!("trigger\0{app}\0").as_bytes()).keys().collect::<Result<_, _>>()?)
    }

    /// The sequence number of the newest change of the space (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.open.seq.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Where a look at the resident's triggers starts: give it to
    /// [`Self::settle_trigger_look`] once the look is done.
    pub fn trigger_look_started(&self) -> TriggerLook {
        TriggerLook(self.open.writes.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// Records, for the next start of the server, when the resident's
    /// triggers next need a look that no write prompts (`None`: only a
    /// write can make one due), as the look begun at `look` found; unless
    /// the space was written since, which leaves them marked for a look at
    /// once (see [`crate::wakes`]).
    pub fn settle_trigger_look(&self, look: TriggerLook, next: Option<u64>) -> Result<()> {
        let _writing = self.write_lock();
        let written_since = self.open.writes.load(std::sync::atomic::Ordering::SeqCst) != look.0;
        self.open.wakes.settle(&self.name, written_since, next)
    }
}

/// The start of a look at a resident's triggers: see
/// [`ResidentSpace::trigger_look_started`].
#[derive(Debug, Clone, Copy)]
pub struct TriggerLook(u64);
