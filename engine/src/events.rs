//! The live event bus behind `GET /v1/events`: readings as they are stored, decisions as they are
//! recorded, relay outputs as they change, and "re-read this" notices after settings changes.
//!
//! A broadcast channel: publishing never blocks or fails (the decision loop must not wait for a
//! slow browser), and a subscriber that falls behind by more than the capacity learns how many
//! events it missed instead of holding memory for them.

use hearth_proto::events::Event;
use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it is told it lagged.
const CAPACITY: usize = 1024;

/// The bus; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    tx: broadcast::Sender<Event>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Self { tx: broadcast::Sender::new(CAPACITY) }
    }

    /// Send to every current subscriber; nobody listening is fine.
    pub(crate) fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// "Re-read `what`" (`schedules`, `overrides`, `default`, `settings`).
    pub(crate) fn changed(&self, what: &str) {
        self.publish(Event::Changed { what: what.to_owned() });
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
