//! `GET /api/events`: the engine's event stream, relayed to every open dashboard.
//!
//! One upstream connection to the engine, however many browsers listen: a task follows the
//! engine's `/v1/events` (reconnecting, with discovery re-checking a silent engine) and
//! re-publishes each event on a broadcast channel. Whenever the upstream (re)connects, a
//! `lagged` event tells dashboards to re-read, since events may have been missed meanwhile.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use hearth_proto::events::Event;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

use crate::AppState;
use crate::engine::Engine;

/// Events buffered per slow browser before it is told it lagged.
const CAPACITY: usize = 256;

/// The relay's broadcast side.
#[derive(Debug, Clone)]
pub(crate) struct Hub {
    tx: broadcast::Sender<Event>,
    /// True once hearth-web stops: browser streams end, so the graceful shutdown does not wait
    /// for them forever.
    closed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Hub {
    /// Start following the engine's events.
    pub(crate) fn spawn(engine: Arc<Engine>) -> (Self, tokio::task::JoinHandle<()>) {
        let tx = broadcast::Sender::new(CAPACITY);
        let task = tokio::spawn(follow(engine, tx.clone()));
        (Self { tx, closed: Arc::new(tokio::sync::watch::Sender::new(false)) }, task)
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// End every browser's stream (shutdown).
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }
}

async fn follow(engine: Arc<Engine>, tx: broadcast::Sender<Event>) {
    const MAX_BACKOFF: Duration = Duration::from_secs(10);
    let mut backoff = Duration::from_millis(500);
    loop {
        let client = engine.wait_client().await;
        match client.events().await {
            Ok(mut stream) => {
                tracing::info!(engine = client.base(), "following the engine's events");
                backoff = Duration::from_millis(500);
                let _ = tx.send(Event::Lagged { missed: 0 });
                loop {
                    match stream.next().await {
                        Some(Ok(event)) => {
                            // Nobody listening is fine.
                            let _ = tx.send(event);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "the engine's event stream broke");
                            break;
                        }
                        None => {
                            tracing::info!("the engine ended its event stream");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot open the engine's event stream");
                if e.is_unreachable() {
                    engine.unreachable();
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

fn sse(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default().event(event.name()).data(data)
}

/// The stream for one browser: the engine's events, same names and data as `/v1/events`.
pub(crate) async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.hub().subscribe();
    let closed = state.hub().closed.subscribe();
    let events = futures_util::stream::unfold((rx, closed), |(mut rx, mut closed)| async move {
        let event = tokio::select! {
            received = rx.recv() => match received {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => Event::Lagged { missed },
                Err(RecvError::Closed) => return None,
            },
            // Shutting down: end the stream so the server can stop.
            _ = closed.wait_for(|c| *c) => return None,
        };
        Some((Ok(sse(&event)), (rx, closed)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
