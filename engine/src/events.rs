//! The live event bus behind `GET /v1/events`: readings as they are stored, decisions as they are
//! recorded, relay outputs as they change, and "re-read this" notices after settings changes.
//!
//! A broadcast channel: publishing never blocks or fails (the decision loop must not wait for a
//! slow browser), and a subscriber that falls behind by more than the capacity learns how many
//! events it missed instead of holding memory for them.

use std::sync::Arc;

use hearth_proto::events::Event;
use tokio::sync::{broadcast, watch};

/// Events a subscriber may fall behind by before it is told it lagged.
const CAPACITY: usize = 1024;

/// The bus; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    tx: broadcast::Sender<Event>,
    /// True once the engine stops: open streams end, so a graceful shutdown does not wait
    /// forever for subscribers (a dashboard holds one all the time).
    closed: Arc<watch::Sender<bool>>,
}

impl Events {
    pub(crate) fn new() -> Self {
        Self { tx: broadcast::Sender::new(CAPACITY), closed: Arc::new(watch::Sender::new(false)) }
    }

    /// End every stream (shutdown).
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Resolves once [`Events::close`] was called.
    pub(crate) fn closed(&self) -> impl std::future::Future<Output = ()> + Send + use<> {
        let mut rx = self.closed.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }

    /// Send to every current subscriber; nobody listening is fine.
    pub(crate) fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// "Re-read `what`" (`schedules`, `overrides`, `default`, `settings`, `sensors`, `relays`).
    pub(crate) fn changed(&self, what: &str) {
        self.publish(Event::Changed { what: what.to_owned() });
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
