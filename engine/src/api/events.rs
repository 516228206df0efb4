//! `GET /v1/events`: the live event stream as Server-Sent Events (the bus and its stream are
//! `hearth_common::sse`, shared with the dashboard's relay of this stream).

use axum::extract::State;
use axum::response::IntoResponse;
use hearth_proto::events::Event;

use super::AppState;

/// Live events: readings as they are stored, decisions, house plans, relay changes, and
/// `changed` notices after schedules, overrides, the default target, settings, sensors or
/// relays change. Each message's `event` is the event's `type` and its `data` the event as
/// JSON. Open to read like every GET. A comment line is sent every 15 s so proxies and phones
/// keep the connection; a client that falls behind gets a `lagged` event.
#[utoipa::path(get, path = "/v1/events", operation_id = "stream_events", tag = "service",
    responses((status = 200, description = "An endless `text/event-stream`",
        content_type = "text/event-stream", body = Event)))]
pub(super) async fn stream(State(state): State<AppState>) -> impl IntoResponse {
    state.inner.events.sse()
}
