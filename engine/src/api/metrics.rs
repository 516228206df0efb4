//! `GET /metrics`: Prometheus text exposition, for a Prometheus or VictoriaMetrics scraping
//! the house. Open like every read.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use hearth_proto::Timestamp;
use hearth_proto::agents::AgentKind;

use super::{ApiError, AppState};
use crate::control::Decision;
use crate::metrics::Exposition;
use crate::store::from_millis;

fn enum_label<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn decision(e: &mut Exposition, d: &Decision) {
    e.family("hearth_heat_demand", "gauge", "1 when the current decision calls for heat.");
    e.sample("hearth_heat_demand", &[], f64::from(u8::from(d.heat)));
    e.family("hearth_cool_demand", "gauge", "1 when the current decision calls for cooling.");
    e.sample("hearth_cool_demand", &[], f64::from(u8::from(d.cool)));
    if let Some(t) = d.effective_temp_c {
        e.family("hearth_effective_temperature_celsius", "gauge", "The temperature decided on.");
        e.sample("hearth_effective_temperature_celsius", &[], t);
    }
    e.family("hearth_setpoint_celsius", "gauge", "The setpoints in force.");
    e.sample("hearth_setpoint_celsius", &[("system", "heat")], d.heat_setpoint_c);
    e.sample("hearth_setpoint_celsius", &[("system", "cool")], d.cool_setpoint_c);
    e.family("hearth_decision_info", "gauge", "The current decision's reason, rule and mode.");
    let (code, mode) = (enum_label(&d.reason_code), enum_label(&d.mode));
    let labels = [
        ("reason_code", code.as_str()),
        ("rule", d.rule.name.as_str()),
        ("algorithm", d.algorithm.as_str()),
        ("mode", mode.as_str()),
    ];
    e.sample("hearth_decision_info", &labels, 1.0);
}

/// A counter family (name, help) with one sample per value of `label`.
fn labelled_counter(
    e: &mut Exposition,
    (name, help): (&str, &str),
    label: &str,
    samples: &[(&str, &std::sync::atomic::AtomicU64)],
) {
    e.family(name, "counter", help);
    for (value, n) in samples {
        e.sample(name, &[(label, value)], n.load(std::sync::atomic::Ordering::Relaxed) as f64);
    }
}

/// Counters since start, the current decision, every sensor's newest value and age, every relay
/// output's state, every agent's last contact.
pub(super) async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let s = &state.inner;
    let now = Timestamp::now();
    let mut e = Exposition::default();
    e.family("hearth_build_info", "gauge", "The engine's version.");
    e.sample("hearth_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    e.family(
        "hearth_storage_healthy",
        "gauge",
        "1 when the database stores; 0 during a storage fault (readings refused, GET /v1/status says why).",
    );
    e.sample("hearth_storage_healthy", &[], f64::from(u8::from(s.store.health().is_healthy())));
    let c = &s.counters;
    e.counter(
        "hearth_readings_committed_total",
        "Readings in committed ingest batches.",
        &c.readings_committed,
    );
    e.counter("hearth_ingest_commits_total", "Ingest transactions committed.", &c.ingest_commits);
    e.counter("hearth_ingest_failures_total", "Ingest transactions failed.", &c.ingest_failures);
    e.counter("hearth_decisions_recorded_total", "Decisions recorded.", &c.decisions_recorded);
    labelled_counter(
        &mut e,
        ("hearth_relay_commands_total", "Relay commands by outcome."),
        "outcome",
        &[
            ("done", &c.relay_commands_done),
            ("refused", &c.relay_commands_refused),
            ("failed", &c.relay_commands_failed),
        ],
    );
    labelled_counter(
        &mut e,
        (
            "hearth_retention_deleted_rows_total",
            "Rows retention deleted since start: raw readings and per-minute rollups past their age.",
        ),
        "table",
        &[
            ("readings", &c.retention_deleted_readings),
            ("readings_minute", &c.retention_deleted_minutes),
        ],
    );
    if let Some(oldest) = s.store.oldest_reading().await? {
        e.family(
            "hearth_oldest_reading_age_seconds",
            "gauge",
            "Age of the oldest raw reading kept (retention deletes past --keep-raw-days).",
        );
        let age = now.duration_since(from_millis(oldest)).as_secs_f64();
        e.sample("hearth_oldest_reading_age_seconds", &[], age);
    }
    e.family(
        "hearth_stored_rows_unreadable_total",
        "counter",
        "Stored settings and decision rows this engine cannot read (each logged with its id).",
    );
    e.sample("hearth_stored_rows_unreadable_total", &[], s.store.unreadable_rows() as f64);
    if let Some(d) = s.controller.latest() {
        decision(&mut e, &d);
    }

    let sensors = s.store.sensors().await?;
    // What GET /v1/sensors says: calibrated, under the name people gave the sensor.
    e.family(
        "hearth_sensor_temperature_celsius",
        "gauge",
        "Each sensor's newest value, calibrated.",
    );
    for r in &sensors {
        if let Some(v) = r.latest() {
            let labels = [("sensor", r.id.as_str()), ("name", r.display_name())];
            e.sample("hearth_sensor_temperature_celsius", &labels, v);
        }
    }
    e.family("hearth_sensor_reading_age_seconds", "gauge", "Age of each sensor's newest reading.");
    for r in &sensors {
        if let Some(ts) = r.last_ts {
            let age = now.duration_since(from_millis(ts)).as_secs_f64();
            e.sample("hearth_sensor_reading_age_seconds", &[("sensor", &r.id)], age);
        }
    }
    let relays = s.store.relays().await?;
    e.family("hearth_relay_on", "gauge", "1 when a relay output reports on.");
    for r in &relays {
        let function = r.effective_function().map(|f| enum_label(&f)).unwrap_or_default();
        let labels = [
            ("host", r.host_id.as_str()),
            ("output", r.output_id.as_str()),
            ("function", &function),
        ];
        e.sample("hearth_relay_on", &labels, f64::from(u8::from(r.state.is_on())));
    }
    e.family(
        "hearth_relay_state_age_seconds",
        "gauge",
        "Age of each relay output's last reported state (grows while its agent does not answer).",
    );
    for r in &relays {
        let age = now.duration_since(from_millis(r.updated)).as_secs_f64().max(0.0);
        let labels = [("host", r.host_id.as_str()), ("output", r.output_id.as_str())];
        e.sample("hearth_relay_state_age_seconds", &labels, age);
    }
    // During a storage fault the agents' contacts may not be readable; the rest still is.
    let agents = s.store.agents().await.unwrap_or_default();
    e.family("hearth_agent_last_seen_seconds", "gauge", "Seconds since each agent was heard.");
    for a in &agents {
        let age = now.duration_since(from_millis(a.last_seen)).as_secs_f64();
        let kind = enum_label(&a.kind);
        e.sample("hearth_agent_last_seen_seconds", &[("host", &a.host_id), ("kind", &kind)], age);
    }
    let relay_agents = || agents.iter().filter(|a| a.kind == AgentKind::Relay);
    e.family(
        "hearth_relay_agent_reachable",
        "gauge",
        "0 while the engine's calls to a relay agent (renewals, commands) get no answer.",
    );
    for a in relay_agents() {
        let reachable = f64::from(u8::from(a.unreachable_since.is_none()));
        e.sample("hearth_relay_agent_reachable", &[("host", &a.host_id)], reachable);
    }
    e.family(
        "hearth_relay_agent_info",
        "gauge",
        "Each relay agent's hardware backend (\"simulated\" switches no equipment).",
    );
    for a in relay_agents() {
        let backend = a.backend.as_deref().unwrap_or("unknown");
        e.sample("hearth_relay_agent_info", &[("host", &a.host_id), ("backend", backend)], 1.0);
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], e.finish()))
}
