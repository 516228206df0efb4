//! A live event bus and its Server-Sent-Events stream (feature `http`): the engine's
//! `GET /v1/events` and the dashboard's `GET /api/events` both serve one of these, so the two
//! streams have the same names, data, keep-alives and endings.
//!
//! A broadcast channel: publishing never blocks or fails (the decision loop must not wait for a
//! slow browser), and a subscriber that falls behind by more than the capacity learns how many
//! events it missed (a `lagged` event) instead of holding memory for them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use hearth_proto::events::{Event, Topic};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};

/// How often an idle stream sends a comment line, so that proxies and phones keep the
/// connection open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The bus; cheap to clone.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// True once the server stops: open streams end, so a graceful shutdown does not wait
    /// forever for subscribers (a dashboard holds one all the time).
    closed: Arc<watch::Sender<bool>>,
}

impl EventBus {
    /// A bus on which a subscriber may fall behind by `capacity` events before it is told it
    /// lagged.
    pub fn new(capacity: usize) -> Self {
        Self { tx: broadcast::Sender::new(capacity), closed: Arc::new(watch::Sender::new(false)) }
    }

    /// Send to every current subscriber; nobody listening is fine.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    /// How many streams are open on the bus now.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Publish "re-read `what`" (an [`Event::Changed`]).
    pub fn changed(&self, what: Topic) {
        self.publish(Event::Changed { what });
    }

    /// End every stream (shutdown). Streams opened afterwards end at once.
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// The bus as one client's SSE stream, from now on: each message's `event` is the event's
    /// `type` and its `data` the event as JSON; a comment line every [`KEEP_ALIVE`]; a
    /// `lagged` event when the client fell behind. It ends when the bus is closed.
    pub fn sse(&self) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>> + Send + use<>> {
        let messages = self.stream().map(|event| Ok(message(&event)));
        Sse::new(messages).keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
    }

    /// The events from now on as one subscriber sees them, an [`Event::Lagged`] in place of
    /// those it fell too far behind for; it ends when the bus is closed.
    fn stream(&self) -> impl Stream<Item = Event> + Send + use<> {
        let rx = self.tx.subscribe();
        let closed = self.closed.subscribe();
        futures_util::stream::unfold((rx, closed), |(mut rx, mut closed)| async move {
            let event = tokio::select! {
                received = rx.recv() => match received {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => Event::Lagged { missed },
                    Err(RecvError::Closed) => return None,
                },
                // Shutting down: end the stream so the server can stop.
                _ = closed.wait_for(|closed| *closed) => return None,
            };
            Some((event, (rx, closed)))
        })
    }
}

fn message(event: &Event) -> SseEvent {
    // An `Event` is plain data (strings, numbers, enums): serialising it cannot fail.
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default().event(event.name()).data(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changed(what: Topic) -> Event {
        Event::Changed { what }
    }

    #[tokio::test]
    async fn a_subscriber_that_fell_behind_is_told_how_many_it_missed_and_goes_on() {
        let bus = EventBus::new(2);
        let mut events = Box::pin(bus.stream());
        use Topic::{Overrides, Relays, Schedules, Sensors, Settings};
        for what in [Schedules, Overrides, Topic::Default, Settings, Sensors] {
            bus.publish(changed(what));
        }
        assert_eq!(events.next().await, Some(Event::Lagged { missed: 3 }));
        assert_eq!(events.next().await, Some(changed(Settings)));
        assert_eq!(events.next().await, Some(changed(Sensors)));
        bus.changed(Relays);
        assert_eq!(events.next().await, Some(changed(Relays)));
    }

    #[tokio::test]
    async fn closing_the_bus_ends_every_stream_even_those_opened_later() {
        let bus = EventBus::new(8);
        let mut open = Box::pin(bus.stream());
        bus.close();
        assert_eq!(open.next().await, None);
        assert_eq!(Box::pin(bus.stream()).next().await, None);
        // Publishing to a closed bus, or with nobody listening, is fine.
        bus.publish(changed(Topic::Schedules));
    }
}
