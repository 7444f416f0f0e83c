//! Host side of the `egress` and `notify` interfaces: the only ways an app
//! reaches beyond the resident's data.
//!
//! An egress request never leaves the machine from here: it is checked
//! against the destinations the manifest declares, stored in the
//! resident's outbox with its exact payload, and audited. Sending is the
//! resident's act (`domicile approve`), not the app's.

use domicile_manifest::World;
use domicile_store::{
    AuditEntry, Notification, Operation, OutboxItem, OutboxStatus, Outcome, MAX_NOTIFICATION_BODY,
    MAX_NOTIFICATION_TITLE, MAX_PAYLOAD_BYTES,
};

use wasmtime::component::Linker;

use crate::bindings::{egress, notify, types};
use crate::shared::{reply, Refusal, Reply, Shared};

/// Requests and notifications one invocation may make.
const MAX_EGRESS_REQUESTS: usize = 100;
const MAX_NOTIFICATIONS: usize = 20;

/// What an invocation asked to send, and the notifications it left
/// (stored when it ends, if it succeeds).
#[derive(Default)]
pub(crate) struct OutboundState {
    egress_requests: usize,
    pub(crate) notifications: Vec<Notification>,
}

/// The outbound state, as the `egress` and `notify` interfaces see it.
pub(crate) struct OutboundView<'a> {
    pub(crate) state: &'a mut OutboundState,
    pub(crate) shared: &'a mut Shared,
}

crate::shared::served_by!(OutboundCapability, OutboundView);

/// Links `egress` and `notify`, each call reaching the state `view` gives.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> OutboundView<'_>,
) -> wasmtime::Result<()> {
    egress::add_to_linker::<T, OutboundCapability>(linker, view)?;
    notify::add_to_linker::<T, OutboundCapability>(linker, view)
}

impl OutboundView<'_> {
    fn egress_audit(&self, destination: &str, outcome: Outcome) -> AuditEntry {
        let mut entry = self.shared.audit_entry(Operation::Egress, "", 0, outcome);
        entry.destination = Some(destination.chars().take(500).collect());
        entry
    }

    /// Refuses a request to `destination`, audited.
    fn refuse(&mut self, destination: &str, reason: String) -> Result<String, Refusal> {
        let entry = self.egress_audit(destination, Outcome::Denied);
        self.shared.record_audit(&[entry])?;
        Err(types::Error::Denied(reason).into())
    }

    fn request_egress(&mut self, destination: &str, payload: &str, purpose: &str) -> Result<String, Refusal> {
        if self.shared.app.manifest.world == World::Importer {
            return self.refuse(destination, "importers cannot send data out of the space".into());
        }
        if !self.shared.app.manifest.declares_destination(destination) {
            return self.refuse(destination, format!(
                "the app's manifest does not declare the destination `{}`: add it to `destinations` in the manifest's `[egress]`; the resident is asked to approve it when they install or update the app",
                destination.chars().take(200).collect::<String>()
            ));
        }
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(types::Error::Limit(format!(
                "the payload is {} bytes, over the limit of {MAX_PAYLOAD_BYTES}",
                payload.len()
            ))
            .into());
        }
        if let Err(e) = serde_json::from_str::<serde_json::Value>(payload) {
            return Err(types::Error::Invalid(format!("the payload is not JSON: {e}")).into());
        }
        let purpose = purpose.trim();
        if purpose.chars().count() < 8 || purpose.chars().count() > 500 {
            return Err(
                types::Error::Invalid("say in 8 to 500 characters why the resident should send this".into()).into()
            );
        }
        if self.state.egress_requests >= MAX_EGRESS_REQUESTS {
            return Err(types::Error::Limit(format!("at most {MAX_EGRESS_REQUESTS} requests per run")).into());
        }
        self.state.egress_requests += 1;
        let shared = &self.shared;
        let item = OutboxItem {
            id: 0,
            at_ms: shared.clock.now_ms(),
            app: shared.app.manifest.id.clone(),
            app_version: shared.app.manifest.version.to_string(),
            destination: destination.to_owned(),
            purpose: purpose.to_owned(),
            payload: payload.to_owned(),
            status: OutboxStatus::Pending,
            campaign: None,
        };
        let id = shared.space.queue_egress(&item, &self.egress_audit(destination, Outcome::Allowed))?;
        Ok(id.to_string())
    }

    fn leave_notification(&mut self, title: &str, body: &str) -> Result<(), Refusal> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > MAX_NOTIFICATION_TITLE {
            return Err(types::Error::Invalid(format!("a title is 1 to {MAX_NOTIFICATION_TITLE} characters")).into());
        }
        if body.chars().count() > MAX_NOTIFICATION_BODY {
            return Err(types::Error::Invalid(format!("a body is at most {MAX_NOTIFICATION_BODY} characters")).into());
        }
        if self.state.notifications.len() >= MAX_NOTIFICATIONS {
            return Err(types::Error::Limit(format!("at most {MAX_NOTIFICATIONS} notifications per run")).into());
        }
        self.state.notifications.push(Notification {
            seq: 0,
            at_ms: self.shared.clock.now_ms(),
            app: self.shared.app.manifest.id.clone(),
            title: title.to_owned(),
            body: body.to_owned(),
        });
        Ok(())
    }
}

impl egress::Host for OutboundView<'_> {
    fn request(&mut self, destination: String, payload: String, purpose: String) -> Reply<String> {
        self.shared.limiter.charge_call()?;
        reply(self.request_egress(&destination, &payload, &purpose))
    }
}

impl notify::Host for OutboundView<'_> {
    fn send(&mut self, title: String, body: String) -> Reply<()> {
        self.shared.limiter.charge_call()?;
        reply(self.leave_notification(&title, &body))
    }
}
