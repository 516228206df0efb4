//! `GET /v1/events`: the live event stream as Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use hearth_proto::events::Event;
use tokio::sync::broadcast::error::RecvError;

use super::AppState;

fn sse(event: &Event) -> SseEvent {
    let data = serde_json::to_string(event).unwrap_or_else(|_| "{}".to_owned());
    SseEvent::default().event(event.name()).data(data)
}

/// Live events: readings as they are stored, decisions, relay changes, and `changed` notices
/// after schedules or settings change. Each message's `event` is the event's `type` and its
/// `data` the event as JSON. Open to read like every GET. A comment line is sent every 15 s so
/// proxies and phones keep the connection; a client that falls behind gets a `lagged` event.
#[utoipa::path(get, path = "/v1/events", operation_id = "stream_events", tag = "service",
    responses((status = 200, description = "An endless `text/event-stream`",
        content_type = "text/event-stream", body = Event)))]
pub(super) async fn stream(
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = state.inner.events.subscribe();
    let closed = Box::pin(state.inner.events.closed());
    let events = futures_util::stream::unfold((rx, closed), |(mut rx, mut closed)| async move {
        let event = tokio::select! {
            received = rx.recv() => match received {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => Event::Lagged { missed },
                Err(RecvError::Closed) => return None,
            },
            // The engine is shutting down: end the stream so the server can stop.
            () = &mut closed => return None,
        };
        Some((Ok(sse(&event)), (rx, closed)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
