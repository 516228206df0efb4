//! `GET /metrics`: hearth-web in Prometheus text (format 0.0.4): live sessions, requests
//! relayed to the engine by the status they got, and the browsers on the live event stream.
//! Sessions and stream clients are read at scrape time; only the relayed requests are counted.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use hearth_common::metrics::{CONTENT_TYPE, Exposition};

use crate::AppState;

/// Requests under `/api/v1/` since start, by the status answered.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    relayed: Mutex<BTreeMap<u16, u64>>,
}

/// Counts a relayed request's answer (a response layer on the relay route).
pub(crate) async fn count_relayed(State(state): State<AppState>, response: Response) -> Response {
    let status = response.status().as_u16();
    *state
        .metrics()
        .relayed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(status)
        .or_default() += 1;
    response
}

/// The exposition text.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut e = Exposition::default();
    let name = "hearth_web_sessions";
    e.family(name, "gauge", "Live dashboard sessions.");
    e.sample(name, &[], state.sessions().live() as f64);
    let name = "hearth_web_event_stream_clients";
    e.family(name, "gauge", "Browsers connected to the live event stream.");
    e.sample(name, &[], state.hub().subscribers() as f64);
    let name = "hearth_web_relayed_requests_total";
    e.family(name, "counter", "Requests relayed to the engine since start, by answered status.");
    let relayed = state.metrics().relayed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (status, n) in &relayed {
        e.sample(name, &[("status", &status.to_string())], *n as f64);
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], e.finish())
}
