//! The outbox and notifications: what apps asked to send out, decided by
//! the resident, and the messages apps left.

use anyhow::Result;
use domicile_store::{OutboxStatus, ResidentSpace};

use crate::terminal::{indented, json as safe_json, safe};
use domicile_home::format_ms;
use domicile_home::Home;

pub fn list(space: &ResidentSpace, json: bool) -> Result<()> {
    let items = space.outbox()?;
    if json {
        outln!("{}", serde_json::to_string(&items)?);
        return Ok(());
    }
    if items.is_empty() {
        outln!("the outbox is empty: no app has asked to send anything");
    }
    for item in items {
        let state = match &item.status {
            OutboxStatus::Pending => "PENDING (approve or deny it)".to_owned(),
            OutboxStatus::Sent { at_ms, http_status } => format!("sent {} (HTTP {http_status})", format_ms(*at_ms)),
            OutboxStatus::Denied { at_ms } => format!("denied {}", format_ms(*at_ms)),
            OutboxStatus::Failed { at_ms, error } => {
                format!("delivery failed {} ({}); can be approved again", format_ms(*at_ms), safe(error))
            }
        };
        outln!(
            "#{}  {state}\n    asked   {} by {} {}\n    to      {}\n    why     {}\n    payload ({} bytes, exactly what would be sent):\n    {}",
            item.id,
            format_ms(item.at_ms),
            item.app,
            safe(&item.app_version),
            safe(&item.destination),
            safe(&item.purpose),
            item.payload.len(),
            safe_json(&item.payload)
        );
    }
    Ok(())
}

pub fn approve(home: &Home, space: &ResidentSpace, id: u64, json: bool) -> Result<()> {
    let item = home.approve_outbox(space, id)?;
    if json {
        outln!("{}", serde_json::to_string(&item)?);
    } else if let OutboxStatus::Sent { http_status, .. } = item.status {
        outln!("sent #{id} ({} bytes) to {} (HTTP {http_status})", item.payload.len(), safe(&item.destination));
    }
    Ok(())
}

pub fn deny(home: &Home, space: &ResidentSpace, id: u64, json: bool) -> Result<()> {
    let item = home.deny_outbox(space, id)?;
    if json {
        outln!("{}", serde_json::to_string(&item)?);
    } else {
        outln!("denied #{id}: it will never be sent to {}", safe(&item.destination));
    }
    Ok(())
}

pub fn notifications(space: &ResidentSpace, json: bool) -> Result<()> {
    let notes = space.notifications()?;
    if json {
        outln!("{}", serde_json::to_string(&notes)?);
        return Ok(());
    }
    if notes.is_empty() {
        outln!("no notifications");
    }
    for n in notes {
        outln!("{}  {}: {}", format_ms(n.at_ms), n.app, safe(&n.title));
        if !n.body.is_empty() {
            outln!("    {}", indented(&n.body, "    "));
        }
    }
    Ok(())
}
