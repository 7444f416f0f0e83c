//! Moves of a resident from the node holding them to another, as records
//! in the bucket `domicile-moves` (one key per resident) that the operator
//! creates (`domicile cluster move`) and the two nodes carry forward, each
//! change a compare-and-set on the key's revision:
//!
//! 1. `requested` (the operator): the resident and the node to move to.
//! 2. `copying` (the holder): the record names it and the placement's
//!    revision; the resident carries on as before.
//! 3. `copied` (the new node): it rebuilt a copy of the space from the
//!    resident's log, through the position the record gives.
//! 4. `stopped` (the holder): it no longer writes the resident (their
//!    writes get 503 and are retried).
//! 5. `done` (the new node): it claimed the resident's log, brought its
//!    copy up to the claim with the writes since the copy, and changed the
//!    placement from that revision to itself. The old holder then drops
//!    its copy. The resident's writes wait only for this last step.
//!
//! A move is `failed`, with the reason, when a node refuses it, or when the
//! holder gives up waiting: it then takes the placement back (a
//! compare-and-set too), so that exactly one of the two nodes ends up
//! holding the resident. The bucket forgets records an hour after their
//! last change.

use std::time::Duration;

use async_nats::jetstream::kv;
use domicile_store::ResidentName;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::bucket::Bucket;
use crate::{decode, nats, now_ms, ClusterError, NodeName, Result};

pub(crate) const MOVES: &str = "domicile-moves";
/// A move no node carried forward for this long is abandoned (longer than
/// the nodes wait for each other: 15 min for a copy, 2 min after a stop).
const ABANDONED_AFTER: Duration = Duration::from_secs(20 * 60);
/// How long a finished or abandoned move's record stays readable.
pub(crate) const MOVE_RECORD_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MoveState {
    Requested,
    Copying,
    Copied,
    Stopped,
    Done,
    Failed,
}

impl MoveState {
    pub fn finished(self) -> bool {
        matches!(self, MoveState::Done | MoveState::Failed)
    }
}

/// A move as its record says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRecord {
    pub to: NodeName,
    pub state: MoveState,
    pub requested_ms: u64,
    pub updated_ms: u64,
    /// The holder that stopped writing the resident (from `stopped` on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NodeName>,
    /// The placement's revision the new node changes (from `stopped` on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement_revision: Option<u64>,
    /// How far the new node's copy is (from `copied` on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copied_through: Option<u64>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A move's record, with the revision its next change must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub resident: ResidentName,
    pub record: MoveRecord,
    pub revision: u64,
}

fn encode(record: &MoveRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("a move record serialises")
}

/// Asks for a move of `resident` to `to`; refused while another move of
/// theirs is under way.
pub(crate) async fn request(moves: &Bucket, resident: &ResidentName, to: &NodeName) -> Result<Move> {
    let now = now_ms();
    let record = MoveRecord {
        to: to.clone(),
        state: MoveState::Requested,
        requested_ms: now,
        updated_ms: now,
        from: None,
        placement_revision: None,
        copied_through: None,
        reason: None,
    };
    let created = match get(moves, resident).await? {
        // Under way, unless nothing moved it on for longer than any node
        // waits (its nodes stopped meanwhile): then it is abandoned.
        Some(earlier)
            if !earlier.record.state.finished()
                && now.saturating_sub(earlier.record.updated_ms) < ABANDONED_AFTER.as_millis() as u64 =>
        {
            return Err(ClusterError::MoveUnderWay { resident: resident.clone(), to: earlier.record.to })
        }
        Some(earlier) => {
            moves.update(resident.as_str(), &encode(&record), earlier.revision).await.map_err(|e| e.to_string())
        }
        None => moves.create(resident.as_str(), &encode(&record)).await.map_err(|e| e.to_string()),
    };
    match created {
        Ok(revision) => Ok(Move { resident: resident.clone(), record, revision }),
        // Another request came first.
        Err(_) => match get(moves, resident).await? {
            Some(other) => Err(ClusterError::MoveUnderWay { resident: resident.clone(), to: other.record.to }),
            None => Err(nats("ask for a move", "its record vanished")),
        },
    }
}

pub(crate) async fn get(moves: &Bucket, resident: &ResidentName) -> Result<Option<Move>> {
    let Some(entry) = moves.entry(resident.as_str(), "read a move").await? else { return Ok(None) };
    Ok(Some(Move {
        resident: resident.clone(),
        record: decode(&format!("{MOVES}/{resident}"), &entry.value)?,
        revision: entry.revision,
    }))
}

/// Carries a move forward to `record`, if nobody changed it since `from`
/// was read (`Moved` otherwise).
pub(crate) async fn advance(moves: &Bucket, from: &Move, mut record: MoveRecord) -> Result<Move> {
    record.updated_ms = now_ms();
    match moves.update(from.resident.as_str(), &encode(&record), from.revision).await {
        Ok(revision) => Ok(Move { resident: from.resident.clone(), record, revision }),
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
            Err(ClusterError::Moved { resident: from.resident.clone() })
        }
        Err(e) => Err(nats("carry a move forward", e)),
    }
}

/// Every move the bucket still has.
pub(crate) async fn all(moves: &Bucket) -> Result<Vec<Move>> {
    let mut all = Vec::new();
    for entry in moves.latest().await? {
        let Ok(resident) = entry.key.parse::<ResidentName>() else { continue };
        let record = decode(&format!("{MOVES}/{}", entry.key), &entry.value)?;
        all.push(Move { resident, record, revision: entry.revision });
    }
    Ok(all)
}

/// The moves changed from now on, as they change.
pub struct MoveWatch {
    watch: kv::Watch,
    moves: Bucket,
}

impl MoveWatch {
    pub(crate) async fn start(moves: &Bucket) -> Result<MoveWatch> {
        let watch = moves.kv.watch_all().await.map_err(|e| nats("watch the moves", e))?;
        Ok(MoveWatch { watch, moves: moves.clone() })
    }

    /// The next change of a move; `None` when the watch ended (NATS went
    /// away for good). Records that cannot be read are skipped.
    pub async fn next(&mut self) -> Option<Move> {
        loop {
            let entry = match self.watch.next().await? {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(error = %e, "watching the moves");
                    continue;
                }
            };
            if entry.operation != kv::Operation::Put {
                continue;
            }
            // Refused and counted when it does not open.
            let Ok(opened) = self.moves.open(&entry.key, &entry.value, entry.revision, entry.created) else { continue };
            let (Ok(resident), Ok(record)) =
                (entry.key.parse::<ResidentName>(), serde_json::from_slice::<MoveRecord>(&opened.value))
            else {
                continue;
            };
            return Some(Move { resident, record, revision: entry.revision });
        }
    }
}

/// Waits until the move of `resident` requested at `requested_ms` is in
/// one of `states` (or finished), `patience` at most.
pub(crate) async fn wait_for(
    moves: &Bucket,
    resident: &ResidentName,
    requested_ms: Option<u64>,
    states: &[MoveState],
    patience: Duration,
) -> Result<Move> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut watch = moves.kv.watch(resident.as_str()).await.map_err(|e| nats("watch a move", e))?;
    loop {
        if let Some(now) = get(moves, resident).await? {
            let this_move = requested_ms.is_none_or(|ms| ms == now.record.requested_ms);
            if this_move && (now.record.state.finished() || states.contains(&now.record.state)) {
                return Ok(now);
            }
        }
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Some(_)) => continue,
            Ok(None) => return Err(nats("watch a move", "the watch ended")),
            Err(_) => return Err(ClusterError::MoveTimedOut { resident: resident.clone(), waited: patience }),
        }
    }
}
