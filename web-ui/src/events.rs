//! `GET /api/events`: the engine's event stream, relayed to every open dashboard.
//!
//! One upstream connection to the engine, however many browsers listen: a task follows the
//! engine's `/v1/events` (reconnecting, with discovery re-checking a silent engine) and
//! re-publishes each event on a broadcast channel. Whenever the upstream (re)connects, a
//! `lagged` event tells dashboards to re-read, since events may have been missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use hearth_common::sse::EventBus;
use hearth_proto::events::Event;

use crate::AppState;
use crate::engine::Engine;

/// Events buffered per slow browser before it is told it lagged.
const CAPACITY: usize = 256;

/// Start following the engine's events: the bus every browser's stream reads, and the task
/// that fills it.
pub(crate) fn spawn(engine: Arc<Engine>) -> (EventBus, tokio::task::JoinHandle<()>) {
    let hub = EventBus::new(CAPACITY);
    let task = tokio::spawn(follow(engine, hub.clone()));
    (hub, task)
}

async fn follow(engine: Arc<Engine>, hub: EventBus) {
    const MAX_BACKOFF: Duration = Duration::from_secs(10);
    let mut backoff = Duration::from_millis(500);
    loop {
        let client = engine.wait_client().await;
        match client.events().await {
            Ok(mut stream) => {
                tracing::info!(engine = client.base(), "following the engine's events");
                backoff = Duration::from_millis(500);
                hub.publish(Event::Lagged { missed: 0 });
                loop {
                    match stream.next().await {
                        Some(Ok(event)) => hub.publish(event),
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

/// The stream for one browser: the engine's events, same names and data as `/v1/events`.
pub(crate) async fn stream(State(state): State<AppState>) -> impl IntoResponse {
    state.hub().sse()
}
