//! Moves of residents from node to node (`domicile cluster move`), carried
//! out by the two nodes as the move's record in the cluster says (see
//! [`domicile_cluster::moves`]):
//!
//! - the new node rebuilds a copy of the space from the resident's log
//!   while the resident carries on as before;
//! - then the holder stops writing the resident (their writes here get
//!   503 with Retry-After) and says so;
//! - the new node claims the resident's log (the old holder can no longer
//!   write it), applies to its copy the writes made since it was made,
//!   changes the placement to itself by compare-and-set, and says the move
//!   is done;
//! - the old holder then drops its copy: only after the new one is in
//!   place and placed.
//!
//! No acknowledged write is lost: each was in the log before it was
//! acknowledged, and the new node's copy is brought up to its claim. A
//! move that fails, or that the new node does not finish in time, is
//! undone by the old holder taking the placement back (a compare-and-set
//! too): whichever of the two changes the placement first holds the
//! resident, and the other gives them up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domicile_cluster::{ClusterError, Move, MoveRecord, MoveState, NodeName, Placement};
use domicile_store::ResidentName;

use crate::cluster::{
    attach, bring_up_to_date, rebuild, release_if_stale, ship_snapshot, unless_stopping, ClusterNode,
};
use crate::error::ApiError;
use crate::State;

/// How long the old holder waits for the new node to finish a move before
/// taking the resident back. Their writes are refused meanwhile.
const PATIENCE: Duration = Duration::from_secs(120);
/// How long either node waits for the other to make or take a copy (the
/// resident is served meanwhile: a large space takes a while).
const COPY_PATIENCE: Duration = Duration::from_secs(900);

/// A move this node takes part in.
#[derive(Debug, Clone)]
pub(crate) enum Moving {
    /// Moving away, still served here while the new node copies them.
    Leaving,
    /// Moving away to `to`: this node no longer writes the resident.
    Out { to: NodeName },
    /// Moving here: the copy being built is not yet this node's to serve,
    /// nor a stale one to drop.
    In,
}

/// Follows the moves of the cluster until the server stops, and takes this
/// node's part in each that concerns it.
pub(crate) async fn run(state: Arc<State>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let Some(node) = &state.cluster else { return };
    loop {
        let mut watch = match node.cluster.watch_moves().await {
            Ok(watch) => watch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the cluster's moves; trying again");
                match unless_stopping(&mut stopping, tokio::time::sleep(Duration::from_secs(1))).await {
                    Some(()) => continue,
                    None => return,
                }
            }
        };
        loop {
            let Some(changed) = unless_stopping(&mut stopping, watch.next()).await else { return };
            match changed {
                Some(changed) => take_part(&state, node, changed).await,
                // The watch ended (NATS went away): watched again.
                None => break,
            }
        }
    }
}

/// Starts this node's part of a move, in its own task: moving a resident
/// it holds away when asked, copying one moving here once their holder
/// says so.
async fn take_part(state: &Arc<State>, node: &ClusterNode, changed: Move) {
    let starts = match changed.record.state {
        MoveState::Requested => match node.cluster.holder(&changed.resident).await {
            Ok(Some(held)) => held.node == *node.me(),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(resident = %changed.resident, error = %e, "cannot read whose a resident to move is");
                false
            }
        },
        MoveState::Copying => changed.record.to == *node.me(),
        MoveState::Copied | MoveState::Stopped | MoveState::Done | MoveState::Failed => false,
    };
    let this_move = changed.record.requested_ms;
    let part = match changed.record.state {
        MoveState::Requested => Moving::Leaving,
        _ => Moving::In,
    };
    // The watch may tell of a change twice; a later move of the same
    // resident (requested once this one finished) is another.
    if !starts || !node.mark_moving(&changed.resident, part, this_move) {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let resident = changed.resident.clone();
        let outcome = match changed.record.state {
            MoveState::Requested => move_out(&state, changed).await,
            _ => move_in(&state, changed).await,
        };
        if let Some(node) = &state.cluster {
            node.unmark_moving(&resident, this_move);
        }
        if let Err(e) = outcome {
            tracing::warn!(%resident, error = %e, "a move of this resident failed");
        }
    });
}

fn node(state: &State) -> &ClusterNode {
    state.cluster.as_ref().expect("moves are followed on a node of a cluster")
}

/// Marks the move failed, saying why (if nobody changed it meanwhile).
async fn fail(node: &ClusterNode, from: &Move, reason: String) {
    let record = MoveRecord { state: MoveState::Failed, reason: Some(reason), ..from.record.clone() };
    if let Err(e) = node.cluster.advance_move(from, record).await {
        tracing::debug!(resident = %from.resident, error = %e, "could not record a move's failure");
    }
}

/// The holder's part: let the new node copy, stop writing, wait for the
/// new node, then drop the copy (the move is done) or take the resident
/// back (it failed).
async fn move_out(state: &Arc<State>, requested: Move) -> Result<(), ApiError> {
    let node = node(state);
    let resident = &requested.resident;
    let to = requested.record.to.clone();
    let Some(held) = node.cluster.holder(resident).await?.filter(|held| held.node == *node.me()) else {
        return Ok(());
    };
    if to == *node.me() {
        fail(node, &requested, format!("node `{to}` already holds resident `{resident}`")).await;
        return Ok(());
    }
    if let Err(e) = node.cluster.live_node(&to).await {
        fail(node, &requested, e.to_string()).await;
        return Ok(());
    }
    let record = MoveRecord {
        state: MoveState::Copying,
        from: Some(node.me().clone()),
        placement_revision: Some(held.revision),
        ..requested.record.clone()
    };
    let copying = node.cluster.advance_move(&requested, record).await?;
    let copied = match node.cluster.wait_for_move(&copying, &[MoveState::Copied], COPY_PATIENCE).await {
        Ok(copied) if copied.record.state == MoveState::Copied => copied,
        // Failed: nothing was stopped, nothing to undo.
        Ok(_) => return Ok(()),
        Err(e) => {
            fail(node, &copying, format!("node `{to}` did not copy the space within {} s", COPY_PATIENCE.as_secs()))
                .await;
            return Err(e.into());
        }
    };
    let started = Instant::now();
    node.mark_stopped(resident, to.clone(), requested.record.requested_ms);
    node.cluster.logs().stop_writing(resident);
    let record = MoveRecord { state: MoveState::Stopped, ..copied.record.clone() };
    let stopped = match node.cluster.advance_move(&copied, record).await {
        Ok(stopped) => stopped,
        Err(e) => return take_back(state, &held).await.and(Err(e.into())),
    };
    match node.cluster.wait_for_move(&stopped, &[], PATIENCE).await {
        Ok(done) if done.record.state == MoveState::Done => {
            tracing::info!(%resident, %to, pause_ms = started.elapsed().as_millis() as u64, "moved a resident away");
            release_if_stale(state, node, resident).await
        }
        Ok(failed) => {
            tracing::warn!(%resident, %to, reason = ?failed.record.reason, "a move failed; this node keeps the resident");
            take_back(state, &held).await
        }
        Err(e) => {
            fail(node, &stopped, format!("node `{to}` did not finish it within {} s", PATIENCE.as_secs())).await;
            take_back(state, &held).await.and(Err(e.into()))
        }
    }
}

/// Undoes a move this node had stopped writing for: takes the placement
/// back (a compare-and-set on the revision the new node would change), and
/// writes the resident again, from their log. When the new node changed
/// the placement first, the move happened after all: the copy here goes.
async fn take_back(state: &Arc<State>, held: &Placement) -> Result<(), ApiError> {
    let node = node(state);
    match node.cluster.take_over(held).await {
        Ok(_) => attach(state, node, &held.resident).await,
        Err(ClusterError::Moved { .. }) => release_if_stale(state, node, &held.resident).await,
        Err(e) => Err(e.into()),
    }
}

/// The new node's part: copy the space while the holder serves, then,
/// once it stopped, claim the log, catch up, take the placement.
async fn move_in(state: &Arc<State>, copying: Move) -> Result<(), ApiError> {
    let node = node(state);
    let resident = &copying.resident;
    let (Some(from), Some(revision)) = (copying.record.from.clone(), copying.record.placement_revision) else {
        fail(node, &copying, "the move's record names no holder".into()).await;
        return Ok(());
    };
    let started = Instant::now();
    let held = Placement { resident: resident.clone(), node: from.clone(), revision };
    let moved = async {
        let copied = rebuild(state, node, resident).await?;
        let copied_through = copied.through;
        // Not written here before it is placed here.
        node.cluster.logs().stop_writing(resident);
        let record =
            MoveRecord { state: MoveState::Copied, copied_through: Some(copied_through), ..copying.record.clone() };
        let advanced = node.cluster.advance_move(&copying, record).await?;
        let copy_ms = started.elapsed().as_millis() as u64;
        let stopped = node.cluster.wait_for_move(&advanced, &[MoveState::Stopped], COPY_PATIENCE).await?;
        if stopped.record.state != MoveState::Stopped {
            return Err(ApiError::Unavailable(format!("the move was given up: {:?}", stopped.record.reason)));
        }
        let paused = Instant::now();
        node.cluster.logs().claim(resident).await?;
        let caught_up = bring_up_to_date(state, node, resident, copied_through).await?;
        node.cluster.take_over(&held).await?;
        if copied.in_clear || caught_up.in_clear {
            ship_snapshot(state, resident).await?;
        }
        Ok::<_, ApiError>((stopped, copy_ms, paused.elapsed().as_millis() as u64))
    }
    .await;
    let (stopped, copy_ms, pause_ms) = match moved {
        Ok(moved) => moved,
        Err(e) => {
            // Not this node's: its copy, if it got that far, goes.
            node.cluster.logs().stop_writing(resident);
            if state.home.store().has_resident(resident) {
                let (worker, name) = (state.clone(), resident.clone());
                tokio::task::spawn_blocking(move || worker.home.remove_resident(&name)).await??;
            }
            let now = node.cluster.move_of(resident).await?.unwrap_or(copying);
            fail(node, &now, e.to_string()).await;
            return Err(e);
        }
    };
    let done = MoveRecord { state: MoveState::Done, ..stopped.record.clone() };
    node.cluster.advance_move(&stopped, done).await?;
    tracing::info!(%resident, %from, copy_ms, pause_ms, "moved a resident here");
    Ok(())
}

impl ClusterNode {
    /// This node's part in a move of `resident`, if it takes part in one.
    pub(crate) fn moving(&self, resident: &ResidentName) -> Option<Moving> {
        self.moves.lock().unwrap_or_else(|p| p.into_inner()).get(resident).map(|(part, _)| part.clone())
    }

    /// Records this node's part in the move requested at `requested_ms`;
    /// false when it has that part already.
    fn mark_moving(&self, resident: &ResidentName, part: Moving, requested_ms: u64) -> bool {
        let mut moves = self.moves.lock().unwrap_or_else(|p| p.into_inner());
        if moves.get(resident).is_some_and(|(_, marked)| *marked == requested_ms) {
            return false;
        }
        moves.insert(resident.clone(), (part, requested_ms));
        true
    }

    /// This node, leaving, no longer writes the resident.
    fn mark_stopped(&self, resident: &ResidentName, to: NodeName, requested_ms: u64) {
        self.moves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(resident.clone(), (Moving::Out { to }, requested_ms));
    }

    /// Forgets this node's part in the move requested at `requested_ms`
    /// (not a later one's).
    fn unmark_moving(&self, resident: &ResidentName, requested_ms: u64) {
        let mut moves = self.moves.lock().unwrap_or_else(|p| p.into_inner());
        if moves.get(resident).is_some_and(|(_, marked)| *marked == requested_ms) {
            moves.remove(resident);
        }
    }
}
