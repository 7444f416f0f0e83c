//! Sends what the resident approved, and nothing else.
//!
//! Apps only ever put requests in the outbox (see the host's `egress`
//! interface). This crate is the other half: when the resident approves an
//! item, its exact stored payload is POSTed to its destination, once, with
//! no redirects followed (a redirect could take the data somewhere the
//! resident did not approve), no cookies, no proxy from the environment.
//! The outcome is recorded on the item and in the audit log.

use std::time::Duration;

use domicile_manifest::Destination;
use domicile_store::{Operation, OutboxItem, OutboxStatus, Outcome, ResidentSpace, StoreError};

/// How long one delivery may take, connection included.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("outbox item {id} was already {state}; nothing was sent")]
    AlreadyDecided { id: u64, state: &'static str },
    #[error("outbox item {id} has a destination that is not allowed ({reason}); nothing was sent")]
    BadDestination { id: u64, reason: String },
    #[error("outbox item {id} was asked by {app}, which is not installed, or whose manifest no longer lists that destination; nothing was sent (deny it instead)")]
    NotDeclared { id: u64, app: String },
    #[error("outbox item {id} is not a report to campaign `{campaign}`'s leader, nor a withdrawal from it, as the signed campaign names it; nothing was sent")]
    NotCampaigns { id: u64, campaign: String },
    #[error("could not deliver outbox item {id} to {destination}: {reason}; it stays in the outbox and can be approved again")]
    Delivery { id: u64, destination: String, reason: String },
}

/// Sends an item the resident approved; returns it with its new status.
/// A pending or previously failed item can be approved.
#[tracing::instrument(skip(space))]
pub fn approve(space: &ResidentSpace, id: u64, at_ms: u64) -> Result<OutboxItem, EgressError> {
    let item = undecided(space, id)?;
    // Only where the app's signed manifest says it may send: an item that
    // came in some other way (an edited archive) is not sent anywhere.
    let declared = item.campaign.is_none()
        && match space.app(&item.app) {
            Ok(app) => app.manifest.declares_destination(&item.destination),
            Err(StoreError::UnknownApp(_)) => false,
            Err(e) => return Err(e.into()),
        };
    if !declared {
        return Err(EgressError::NotDeclared { id, app: item.app.to_string() });
    }
    deliver(space, item, at_ms)
}

/// Sends a campaign's item (a report, a withdrawal) the resident agreed
/// to by joining or leaving the campaign: only to one of `allowed`, the
/// endpoints of the campaign's leader as the signed campaign names it.
#[tracing::instrument(skip(space, allowed))]
pub fn send_for_campaign(
    space: &ResidentSpace,
    id: u64,
    at_ms: u64,
    campaign: &str,
    allowed: &[String],
) -> Result<OutboxItem, EgressError> {
    let item = undecided(space, id)?;
    if item.campaign.as_deref() != Some(campaign) || !allowed.contains(&item.destination) {
        return Err(EgressError::NotCampaigns { id, campaign: campaign.to_owned() });
    }
    deliver(space, item, at_ms)
}

/// POSTs an item checked for its destination, and records the outcome.
fn deliver(space: &ResidentSpace, item: OutboxItem, at_ms: u64) -> Result<OutboxItem, EgressError> {
    let id = item.id;
    let destination: Destination =
        item.destination.parse().map_err(|e| EgressError::BadDestination { id, reason: format!("{e}") })?;
    let audit = item.audit_entry(Operation::Send, at_ms, Outcome::Allowed);
    match post(&destination, &item.payload) {
        Ok(http_status) if (200..300).contains(&http_status) => {
            tracing::info!(http_status, "delivered");
            Ok(space.set_outbox_status(id, OutboxStatus::Sent { at_ms, http_status }, Some(&audit))?)
        }
        outcome => {
            let reason = match outcome {
                Ok(status) => format!("the destination answered HTTP {status}"),
                Err(e) => e,
            };
            // Not a warning of the runtime's: the resident gets the error.
            tracing::info!("delivery failed");
            let status = OutboxStatus::Failed { at_ms, error: reason.clone() };
            space.set_outbox_status(id, status, Some(&audit))?;
            Err(EgressError::Delivery { id, destination: item.destination, reason })
        }
    }
}

/// Discards an item: it will never be sent.
pub fn deny(space: &ResidentSpace, id: u64, at_ms: u64) -> Result<OutboxItem, EgressError> {
    let item = undecided(space, id)?;
    let audit = item.audit_entry(Operation::Send, at_ms, Outcome::Denied);
    Ok(space.set_outbox_status(id, OutboxStatus::Denied { at_ms }, Some(&audit))?)
}

fn undecided(space: &ResidentSpace, id: u64) -> Result<OutboxItem, EgressError> {
    let item = space.outbox_item(id)?;
    match item.status {
        OutboxStatus::Pending | OutboxStatus::Failed { .. } => Ok(item),
        OutboxStatus::Sent { .. } => Err(EgressError::AlreadyDecided { id, state: "sent" }),
        OutboxStatus::Denied { .. } => Err(EgressError::AlreadyDecided { id, state: "denied" }),
    }
}

/// POSTs the payload; returns the HTTP status, or why nothing came back.
fn post(destination: &Destination, payload: &str) -> Result<u16, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(DELIVERY_TIMEOUT))
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .user_agent(concat!("domicile/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let response = agent
        .post(destination.as_str())
        .header("Content-Type", "application/json")
        .send(payload.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}
