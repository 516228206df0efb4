//! `GET /metrics`: the relay agent in Prometheus text (format 0.0.4). Output states, leases,
//! switch counts and fallbacks are read from the controller at scrape time (one source of
//! truth); only the refusals are counted here, where the API refuses.

use std::collections::BTreeMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use hearth_common::metrics::{CONTENT_TYPE, Exposition};
use hearth_proto::relays::RelayState;

use crate::api::AppState;

/// Refused relay commands since start, by error code (`interlock`, `short_cycle`,
/// `forbidden`, ...).
#[derive(Debug, Default)]
pub struct Counters {
    refusals: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Count one refusal with this error code.
    pub(crate) fn refused(&self, code: hearth_proto::ErrorCode) {
        let code = match serde_json::to_value(code) {
            Ok(serde_json::Value::String(s)) => s,
            _ => "unknown".to_owned(),
        };
        *self.refusals.lock().unwrap_or_else(|e| e.into_inner()).entry(code).or_default() += 1;
    }
}

/// The exposition text.
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text(&state))
}

fn text(state: &AppState) -> String {
    let controller = state.controller();
    let outputs = controller.outputs();
    let mut e = Exposition::default();
    let per_output = [
        ("hearth_relay_agent_output_on", "gauge", "1 while the output is energised, else 0."),
        (
            "hearth_relay_agent_output_lease_remaining_seconds",
            "gauge",
            "Seconds left on the output's lease (0 without one).",
        ),
        (
            "hearth_relay_agent_output_switched_on_total",
            "counter",
            "Times the output was switched on since the agent started.",
        ),
    ];
    for (name, kind, help) in per_output {
        e.family(name, kind, help);
        for o in &outputs {
            let value = match name {
                "hearth_relay_agent_output_on" => f64::from(u8::from(o.state == RelayState::On)),
                "hearth_relay_agent_output_lease_remaining_seconds" => {
                    o.lease_remaining_s.unwrap_or(0.0)
                }
                _ => o.cycles as f64,
            };
            e.sample(name, &[("output", &o.id)], value);
        }
    }
    let fallbacks = *controller.subscribe_fallbacks().borrow();
    e.family(
        "hearth_relay_agent_fallbacks_total",
        "counter",
        "Outputs returned to their safe state by the agent itself (lease ran out, maximum on time).",
    );
    e.sample("hearth_relay_agent_fallbacks_total", &[], fallbacks as f64);
    let name = "hearth_relay_agent_refusals_total";
    e.family(name, "counter", "Relay commands refused since the agent started, by error code.");
    let refusals = state.metrics().refusals.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for (code, n) in &refusals {
        e.sample(name, &[("code", code)], *n as f64);
    }
    let contact = controller.since_engine_contact().map_or(f64::NAN, |d| d.as_secs_f64());
    let name = "hearth_relay_agent_engine_contact_age_seconds";
    e.family(name, "gauge", "Seconds since the engine last commanded (NaN: never).");
    e.sample(name, &[], contact);
    e.finish()
}
