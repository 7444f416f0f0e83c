//! The trust store and catalogues of a node of a cluster, kept the same as
//! the cluster's (see `domicile_cluster`'s `shared` module): an operator
//! trusts a key, revokes one or adds a catalogue through any node, and
//! every node follows.
//!
//! - A node joining takes the cluster's trust store (the first node to
//!   join gives its own), shares the catalogues it has that the cluster
//!   has not, and copies those it has not from the cluster to its disk
//!   (`HOME/cluster-catalogues/INDEX_SHA256/`), verifying each against its
//!   trust store as it would any catalogue.
//! - A change through a node is made there, then put in the cluster by
//!   compare-and-set: when another node changed the trust store at the same
//!   time, this node takes theirs back and the operator is asked to try again.
//! - Every node watches the cluster's copy, and takes each change: the apps
//!   signed by a key revoked elsewhere are held on every node.
//! - Campaigns the same way: one added through any node (or that a node
//!   joining has) is put in the cluster as its organiser signed it, and
//!   every node keeps it once it verifies there with the keys trusted for
//!   campaigns (looked at again whenever the trust store changes). The
//!   nodes vouch for their residents' reports with one attester key,
//!   derived from the cluster's, so that a campaign's leaders trust one
//!   key for the whole cluster.

use std::sync::Arc;
use std::time::Duration;

use domicile_cluster::{ClusterError, SharedCampaign, SharedChange, Versioned};

use crate::cluster::{unless_stopping, ClusterNode};
use crate::error::ApiError;
use crate::State;

/// Joins this node's trust store and catalogues to the cluster's, then
/// follows the cluster's changes until the server stops.
pub(crate) async fn run(state: Arc<State>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    let Some(node) = &state.cluster else { return };
    loop {
        // Watching first, so that no change between the look and the watch is missed.
        let watch = node.cluster.watch_shared().await;
        if let Err(e) = follow(&state, node).await {
            tracing::warn!(error = %e, "cannot take the cluster's trust store and catalogues");
        }
        let mut watch = match watch {
            Ok(watch) => watch,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow the cluster's trust store and catalogues; trying again");
                match unless_stopping(&mut stopping, tokio::time::sleep(Duration::from_secs(1))).await {
                    Some(()) => continue,
                    None => return,
                }
            }
        };
        loop {
            let Some(changed) = unless_stopping(&mut stopping, watch.next()).await else { return };
            let Some(changed) = changed else { break };
            // A new trust store may make a catalogue verify: both are looked at.
            let taken = match changed {
                SharedChange::Trust => follow(&state, node).await,
                SharedChange::Catalogues => follow_catalogues(&state, node).await,
                SharedChange::Campaigns => follow_campaigns(&state, node).await,
            };
            if let Err(e) = taken {
                tracing::warn!(error = %e, "cannot take a change of the cluster's trust store or catalogues");
            }
        }
    }
}

/// Takes the cluster's trust store (or gives it this node's, when it has
/// none yet), then its catalogues.
async fn follow(state: &Arc<State>, node: &ClusterNode) -> Result<(), ApiError> {
    let shared = match node.cluster.shared_trust().await {
        // Refused (and counted): this node's own trust store is put over
        // it, so that the cluster has a genuine one again.
        Err(ClusterError::Corrupt { .. }) => {
            let local = read_trust(state).await?;
            match node.cluster.heal_trust(local).await {
                Ok(revision) => node.set_trust_revision(revision),
                Err(ClusterError::Changed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            follow_catalogues(state, node).await?;
            return follow_campaigns(state, node).await;
        }
        shared => shared?,
    };
    match shared {
        Some(shared) => take_trust(state, node, shared).await?,
        None => {
            let local = read_trust(state).await?;
            match node.cluster.put_trust(local, None).await {
                Ok(revision) => node.set_trust_revision(revision),
                Err(ClusterError::Changed { .. }) => {
                    if let Some(shared) = node.cluster.shared_trust().await? {
                        take_trust(state, node, shared).await?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    follow_catalogues(state, node).await?;
    follow_campaigns(state, node).await
}

async fn read_trust(state: &State) -> Result<Vec<u8>, ApiError> {
    let path = state.home.trust_path();
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(br#"{"keys":[]}"#.to_vec()),
        Err(e) => Err(ApiError::Internal(format!("cannot read {}: {e}", path.display()))),
    }
}

/// Replaces this node's trust store with the cluster's, unless it has that
/// revision already; holds the apps of keys it newly revokes.
async fn take_trust(state: &Arc<State>, node: &ClusterNode, shared: Versioned<Vec<u8>>) -> Result<(), ApiError> {
    if node.trust_revision() == Some(shared.revision) {
        return Ok(());
    }
    let worker = state.clone();
    let held = tokio::task::spawn_blocking(move || worker.home.replace_trust(&shared.value)).await??;
    node.set_trust_revision(shared.revision);
    if !held.is_empty() {
        tracing::warn!(apps = held.len(), "a key was revoked through another node: its apps are held here too");
    }
    Ok(())
}

/// After the operator changed the trust store through this node: puts it
/// in the cluster. When another node changed it meanwhile, this node takes
/// theirs back (its own change is undone) and the operator is told to try
/// again. Does nothing on a single node.
pub(crate) async fn trust_changed(state: &Arc<State>) -> Result<(), ApiError> {
    let Some(node) = &state.cluster else { return Ok(()) };
    let local = read_trust(state).await?;
    match node.cluster.put_trust(local, node.trust_revision()).await {
        Ok(revision) => {
            node.set_trust_revision(revision);
            Ok(())
        }
        Err(e) => {
            if let Some(shared) = node.cluster.shared_trust().await? {
                node.clear_trust_revision();
                take_trust(state, node, shared).await?;
            }
            Err(e.into())
        }
    }
}

/// Shares the catalogues this node has that the cluster has not, and copies
/// the cluster's that this node has not; each is verified here before use.
pub(crate) async fn follow_catalogues(state: &Arc<State>, node: &ClusterNode) -> Result<(), ApiError> {
    let worker = state.clone();
    // This node's catalogues that verify, by the SHA-256 of their index.
    let local = tokio::task::spawn_blocking(move || -> Result<Vec<_>, ApiError> {
        let trust = worker.home.trust()?;
        let mut local = Vec::new();
        for (source, opened) in worker.home.catalogue_sources()?.open_all(&trust) {
            let Ok(catalogue) = opened else { continue };
            let index_file = catalogue.files().swap_remove(0);
            let index = std::fs::read(source.dir.join(index_file))
                .map_err(|e| ApiError::Internal(format!("cannot read {}: {e}", source.dir.display())))?;
            local.push((hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&index)), catalogue));
        }
        Ok(local)
    })
    .await??;
    let shared = node.cluster.shared_catalogues().await?;
    for (sha256, catalogue) in &local {
        if !shared.iter().any(|c| &c.index_sha256 == sha256) {
            node.cluster.share_catalogue(&catalogue.index().name, catalogue.dir(), &catalogue.files()).await?;
        }
    }
    for missing in shared.iter().filter(|c| !local.iter().any(|(sha256, _)| sha256 == &c.index_sha256)) {
        let dir = state.home.dir().join("cluster-catalogues").join(&missing.index_sha256);
        // Copied before but not verified then (its key was not trusted yet): not copied again.
        if !dir.is_dir() {
            let fetching = dir.with_extension("fetching");
            let _ = tokio::fs::remove_dir_all(&fetching).await;
            // One catalogue the cluster cannot give whole (or that is not
            // what it is listed as) does not keep the others away.
            if let Err(e) = node.cluster.fetch_catalogue(missing, &fetching).await {
                tracing::warn!(name = %missing.name, error = %e, "cannot take a catalogue of the cluster");
                let _ = tokio::fs::remove_dir_all(&fetching).await;
                continue;
            }
            tokio::fs::rename(&fetching, &dir)
                .await
                .map_err(|e| ApiError::Internal(format!("cannot keep a catalogue in {}: {e}", dir.display())))?;
        }
        let worker = state.clone();
        match tokio::task::spawn_blocking(move || worker.home.add_catalogue_source(&dir)).await? {
            Ok(catalogue) => tracing::info!(name = %catalogue.index().name, "took a catalogue of the cluster"),
            // Not trusted here (yet): looked at again when the trust store changes.
            Err(e) => {
                tracing::warn!(name = %missing.name, error = %e, "a catalogue of the cluster does not verify here")
            }
        }
    }
    Ok(())
}

/// Shares the campaigns this node has that the cluster has not, and keeps
/// the cluster's that this node has not, or has otherwise (replaced
/// since), once each verifies here.
pub(crate) async fn follow_campaigns(state: &Arc<State>, node: &ClusterNode) -> Result<(), ApiError> {
    let shared = node.cluster.shared_campaigns().await?;
    let worker = state.clone();
    // This node's campaigns that verify, as their organisers signed them.
    let local = tokio::task::spawn_blocking(move || -> Result<Vec<SharedCampaign>, ApiError> {
        let mut local = Vec::new();
        for listed in worker.home.campaigns()? {
            if listed.campaign.is_some() {
                let (bytes, signature) = worker.home.signed_campaign(&listed.id)?;
                let campaign = String::from_utf8_lossy(&bytes).into_owned();
                local.push(SharedCampaign { id: listed.id, campaign, signature });
            }
        }
        Ok(local)
    })
    .await??;
    for mine in local.iter().filter(|mine| !shared.iter().any(|c| c.id == mine.id)) {
        node.cluster.share_campaign(mine).await?;
        tracing::info!(campaign = %mine.id, "shared a campaign of this node with the cluster");
    }
    for theirs in shared.into_iter().filter(|c| !local.contains(c)) {
        let worker = state.clone();
        let id = theirs.id.clone();
        let kept = tokio::task::spawn_blocking(move || {
            worker.home.add_campaign(theirs.campaign.as_bytes(), &theirs.signature)
        })
        .await?;
        match kept {
            Ok(campaign) if campaign.id == id => tracing::info!(campaign = %id, "took a campaign of the cluster"),
            Ok(campaign) => {
                tracing::warn!(listed = %id, campaign = %campaign.id, "a campaign of the cluster is listed under another id")
            }
            // Not trusted here (yet): looked at again when the trust store changes.
            Err(e) => tracing::warn!(campaign = %id, error = %e, "a campaign of the cluster does not verify here"),
        }
    }
    Ok(())
}

/// After the operator added a campaign through this node: puts it in the
/// cluster for every node. Does nothing on a single node.
pub(crate) async fn campaign_added(state: &State, campaign: SharedCampaign) -> Result<(), ApiError> {
    let Some(node) = &state.cluster else { return Ok(()) };
    Ok(node.cluster.share_campaign(&campaign).await?)
}

/// Makes this node's campaign attester the cluster's (derived from the
/// cluster's key), saying so when it changed.
pub(crate) async fn use_cluster_attester(state: &Arc<State>) -> Result<(), ApiError> {
    let Some(node) = &state.cluster else { return Ok(()) };
    let seed = node.cluster.campaign_attester_seed();
    let worker = state.clone();
    if tokio::task::spawn_blocking(move || worker.home.use_campaign_attester(seed)).await?? {
        tracing::warn!("this node's campaign attester is now the cluster's, the same on every node: give the leaders of running campaigns the key `domicile campaign attester` shows");
    }
    Ok(())
}

impl ClusterNode {
    fn trust_revision(&self) -> Option<u64> {
        *self.trust_revision.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set_trust_revision(&self, revision: u64) {
        *self.trust_revision.lock().unwrap_or_else(|p| p.into_inner()) = Some(revision);
    }

    fn clear_trust_revision(&self) {
        *self.trust_revision.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
