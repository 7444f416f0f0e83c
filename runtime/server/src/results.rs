//! Campaign results brought home without asking: every so often
//! (`[server] campaign-results-every-s`, 5 minutes by default), for each
//! campaign past its deadline that residents of this node joined, the
//! server fetches the released results once from the campaign's leader,
//! checks both aggregators' signatures once, and keeps the result in each
//! participant's space (`domicile_home`'s `deliver_campaign_results`). A
//! campaign whose result is not out yet is asked again next time. On a
//! node of a cluster, only the residents it holds are written; a
//! participant moved since brings the result home from the campaign's page
//! or with `domicile campaign result`.

use std::collections::BTreeSet;
use std::sync::Arc;

use domicile_store::ResidentName;

use crate::State;

/// Looks for results until the server stops.
pub(crate) async fn run(state: Arc<State>, mut stopping: tokio::sync::watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(state.config.campaign_results_every) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        deliver_all(&state).await;
    }
}

/// One look at every campaign of the home.
async fn deliver_all(state: &Arc<State>) {
    let worker = state.clone();
    let campaigns = match tokio::task::spawn_blocking(move || worker.home.campaigns()).await {
        Ok(Ok(campaigns)) => campaigns,
        Ok(Err(e)) => return tracing::warn!(error = %e, "cannot list the campaigns to bring their results home"),
        Err(e) => return tracing::warn!(error = %e, "listing the campaigns"),
    };
    let held: Option<BTreeSet<ResidentName>> = match &state.cluster {
        Some(node) => match crate::cluster::held_here(node).await {
            Ok(held) => Some(held),
            Err(e) => return tracing::warn!(error = %e, "cannot tell which residents this node holds"),
        },
        None => None,
    };
    let held = Arc::new(held);
    for campaign in campaigns.into_iter().filter_map(|listed| listed.campaign) {
        // Each participant's space is opened and written: off the
        // threads that serve requests.
        let (worker, held, runtime, id) =
            (state.clone(), held.clone(), tokio::runtime::Handle::current(), campaign.id.clone());
        let delivering = tokio::task::spawn_blocking(move || {
            let holds = |resident: &ResidentName| held.as_ref().as_ref().is_none_or(|held| held.contains(resident));
            runtime.block_on(worker.home.deliver_campaign_results(&id, holds))
        });
        let Ok(delivered) = delivering.await else { continue };
        match delivered {
            Ok(delivered) if delivered.kept > 0 || delivered.failed > 0 => tracing::info!(
                campaign = %campaign.id,
                kept = delivered.kept,
                failed = delivered.failed,
                waiting = delivered.waiting,
                "brought a campaign's result into its participants' spaces"
            ),
            Ok(_) => {}
            // Most often: not released yet. Asked again next time.
            Err(e) => tracing::debug!(campaign = %campaign.id, error = %e, "no campaign result to bring home yet"),
        }
    }
}
