//! The outbox and notifications: what apps asked to send out, decided by
//! the resident, and the messages apps left.

use anyhow::Result;
use domicile_store::{OutboxItem, OutboxStatus, ResidentSpace};

use domicile_home::{format_ms, Home};

use crate::answer::{lines, say};
use crate::terminal::{indented, json as safe_json, safe};

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct ApproveArgs {
    pub id: u64,
}

#[derive(clap::Args, serde::Serialize, serde::Deserialize)]
pub struct DenyArgs {
    pub id: u64,
}

pub fn list(space: &ResidentSpace, json: bool) -> Result<()> {
    say(json, &space.outbox()?, |items| {
        if items.is_empty() {
            return "the outbox is empty: no app has asked to send anything".into();
        }
        lines(items.iter().map(shown))
    })
}

/// An outbox item for a person: where it would go, why, and exactly what.
fn shown(item: &OutboxItem) -> String {
    let state = match &item.status {
        OutboxStatus::Pending => "PENDING (approve or deny it)".to_owned(),
        OutboxStatus::Sent { at_ms, http_status } => format!("sent {} (HTTP {http_status})", format_ms(*at_ms)),
        OutboxStatus::Denied { at_ms } => format!("denied {}", format_ms(*at_ms)),
        OutboxStatus::Failed { at_ms, error } => {
            format!("delivery failed {} ({}); can be approved again", format_ms(*at_ms), safe(error))
        }
    };
    format!(
            "#{}  {state}\n    asked   {} by {} {}\n    to      {}\n    why     {}\n    payload ({} bytes, exactly what would be sent):\n    {}",
            item.id,
            format_ms(item.at_ms),
            item.app,
            safe(&item.app_version),
            safe(&item.destination),
            safe(&item.purpose),
            item.payload.len(),
            safe_json(&item.payload)
        )
}

pub async fn approve(home: &Home, space: &ResidentSpace, args: ApproveArgs, json: bool) -> Result<()> {
    let id = args.id;
    let item = home.approve_outbox(space, id).await?;
    say(json, &item, |item| match item.status {
        OutboxStatus::Sent { http_status, .. } => {
            format!("sent #{id} ({} bytes) to {} (HTTP {http_status})", item.payload.len(), safe(&item.destination))
        }
        _ => String::new(),
    })
}

pub fn deny(home: &Home, space: &ResidentSpace, args: DenyArgs, json: bool) -> Result<()> {
    let id = args.id;
    let item = home.deny_outbox(space, id)?;
    say(json, &item, |item| format!("denied #{id}: it will never be sent to {}", safe(&item.destination)))
}

pub fn notifications(space: &ResidentSpace, json: bool) -> Result<()> {
    say(json, &space.notifications()?, |notes| {
        if notes.is_empty() {
            return "no notifications".into();
        }
        lines(notes.iter().map(|n| {
            let title = format!("{}  {}: {}", format_ms(n.at_ms), n.app, safe(&n.title));
            match n.body.is_empty() {
                true => title,
                false => format!("{title}\n    {}", indented(&n.body, "    ")),
            }
        }))
    })
}
