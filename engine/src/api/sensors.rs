//! `PUT /v1/sensors/update` (the seed contract), `PUT /v1/sensors/backlog` (replayed readings)
//! and the sensor list (a sensor's history is in `history.rs`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_proto::agents::AgentKind;
use hearth_proto::control::Exclusion;
use hearth_proto::events::Topic;
use hearth_proto::sensors::{
    MAX_BACKLOG_READINGS, MAX_BACKLOG_UPDATES, MAX_READING_C, MAX_REPORT_TEXT_CHARS,
    MAX_SENSOR_ID_CHARS, MAX_SENSOR_NAME, MAX_SENSOR_OFFSET_C, MAX_SENSOR_TYPE_CHARS,
    MAX_SENSOR_WEIGHT, MIN_READING_C, Reading, SensorBacklog, SensorBacklogAck, SensorInfo,
    SensorReport, SensorSettings, SensorUpdate, SensorUpdateAck,
};
use hearth_proto::{ErrorBody, Timestamp};
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body, known, parse_json};
use crate::clock::Kind;
use crate::readings::Report;
use crate::store::from_millis;

/// Report readings. The body is validated field by field so each mistake gets its own message
/// (`host_id field is missing`), as the seed contract promises; nothing is stored unless the
/// whole report is valid. A value must be a temperature a probe can report (−55 to 125 °C) or
/// null (a failed reading).
///
/// No reading is refused for its time. When `agent_time` shows the agent's clock off by more
/// than the engine's limit (`--clock-skew-max-s`), a reading stamped consistently with it (read
/// at most 10 minutes before `agent_time`) is re-timed by the offset (stored at `timestamp −
/// (agent_time − engine time)`), and the agent is flagged in `GET /v1/agents`. Any other
/// reading is stored at its own timestamp; one the engine cannot place in time (inconsistent
/// with a wrong clock, or stamped after its receipt by more than the limit) is counted in the
/// agent's `misdated_readings`, and one stamped after its receipt never becomes the sensor's
/// latest.
#[utoipa::path(put, path = "/v1/sensors/update", operation_id = "update_sensors", tag = "sensors",
    request_body = SensorUpdate,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored (after commit)", body = SensorUpdateAck),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Wrong credential, another host's, or a device key that \
            may not report readings (a relay key)", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody,
            example = json!({"status": "error", "code": "missing_field", "error": "host_id field is missing"})),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn update(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<SensorUpdateAck>), ApiError> {
    let value = parse_json(&body)?;
    let update = validate(&value)?;
    let key_role = caller.require_agent(&state, &update.host_id, AgentKind::Sensor)?;

    let ids: Vec<String> = update.sensors.keys().cloned().collect();
    let host_id = update.host_id.clone();
    let report = Report {
        host_id: update.host_id,
        key_role,
        agent_time: update.agent_time,
        kind: Kind::Live,
        readings: update.sensors.into_iter().collect(),
    };
    state.inner.readings.submit(report).await.map_err(ApiError::not_stored)?;
    let pending = super::manage::pending(&state, &host_id, AgentKind::Sensor).await;
    Ok((StatusCode::CREATED, axum::Json(SensorUpdateAck { status: "ok".into(), ids, pending })))
}

/// Replay readings an agent could not deliver when it took them, oldest first. Every update is
/// validated like `PUT /v1/sensors/update` (errors are prefixed with `updates[i]: `) and every
/// reading needs its `timestamp`. All updates are stored in one commit; sending the same
/// backlog again stores nothing new.
///
/// No reading is refused for its time. While the agent's clock is off by more than the limit
/// (by `agent_time`), a reading that the offset places before its receipt (and within a year
/// of it) is re-timed by that offset: a clock that was ahead during the outage and still is
/// gets its readings back where they belong. Any other reading is stored at its own timestamp;
/// one stamped after its receipt by more than the limit (read while the clock was ahead, which
/// has been corrected since) or inconsistent with a wrong clock is counted in the agent's
/// `misdated_readings`. A backlog reading never becomes the sensor's latest if it is stamped
/// after its receipt.
#[utoipa::path(put, path = "/v1/sensors/backlog", operation_id = "replay_backlog", tag = "sensors",
    request_body = SensorBacklog,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored (after commit)", body = SensorBacklogAck),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Wrong credential, another host's, or a device key that \
            may not report readings (a relay key)", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody,
            example = json!({"status": "error", "code": "missing_field",
                "error": "updates[3]: sensors.28-0316a2797bff.timestamp field is missing"})),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn backlog(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<SensorBacklogAck>), ApiError> {
    let value = parse_json(&body)?;
    let obj = value.as_object().ok_or_else(|| ApiError::invalid("body must be a JSON object"))?;
    known(obj, "", &["host_id", "updates", "agent_time"], &[])?;
    let host_id = host_id_field(obj)?;
    let items = match obj.get("updates") {
        None | Some(Value::Null) => return Err(ApiError::missing("updates")),
        Some(Value::Array(items)) if (1..=MAX_BACKLOG_UPDATES).contains(&items.len()) => items,
        Some(_) => {
            return Err(ApiError::invalid(format!(
                "updates field must be an array of 1 to {MAX_BACKLOG_UPDATES} sensor updates"
            )));
        }
    };
    let agent_time = optional_time(obj.get("agent_time"), "agent_time")?;
    let key_role = caller.require_agent(&state, &host_id, AgentKind::Sensor)?;

    let prefixed = |i: usize, mut e: ApiError| {
        e.body.error = format!("updates[{i}]: {}", e.body.error);
        e
    };
    let mut backlog = SensorBacklog { host_id, updates: Vec::new(), agent_time };
    let mut count = 0;
    for (i, item) in items.iter().enumerate() {
        let update = validate(item).map_err(|e| prefixed(i, e))?;
        if update.host_id != backlog.host_id {
            return Err(prefixed(i, ApiError::invalid("host_id must be the backlog's host_id")));
        }
        if let Some((id, _)) = update.sensors.iter().find(|(_, r)| r.timestamp.is_none()) {
            return Err(prefixed(i, ApiError::missing(&format!("sensors.{id}.timestamp"))));
        }
        count += update.sensors.len();
        if count > MAX_BACKLOG_READINGS {
            return Err(ApiError::invalid(format!(
                "a backlog may carry at most {MAX_BACKLOG_READINGS} readings"
            )));
        }
        backlog.updates.push(update);
    }
    let updates = backlog.updates.len();
    let report = Report {
        host_id: backlog.host_id,
        key_role,
        agent_time: backlog.agent_time,
        kind: Kind::Backlog,
        readings: backlog.updates.into_iter().flat_map(|u| u.sensors).collect(),
    };
    state.inner.readings.submit(report).await.map_err(ApiError::not_stored)?;
    let ack = SensorBacklogAck { status: "ok".into(), updates, readings: count };
    Ok((StatusCode::CREATED, axum::Json(ack)))
}

fn host_id_field(obj: &serde_json::Map<String, Value>) -> Result<String, ApiError> {
    let host_id = match obj.get("host_id") {
        None | Some(Value::Null) => return Err(ApiError::missing("host_id")),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ApiError::invalid("host_id field must be a string")),
    };
    hearth_common::host_id::validate(&host_id)
        .map_err(|e| ApiError::invalid(format!("host_id field: {e}")))?;
    Ok(host_id)
}

fn validate(value: &Value) -> Result<SensorUpdate, ApiError> {
    let obj = value.as_object().ok_or_else(|| ApiError::invalid("body must be a JSON object"))?;
    known(obj, "", &["host_id", "sensors", "agent_time"], &[])?;
    let host_id = host_id_field(obj)?;
    let sensors = match obj.get("sensors") {
        None | Some(Value::Null) => return Err(ApiError::missing("sensors")),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(ApiError::invalid(
                "sensors field must be an object of sensor id to reading",
            ));
        }
    };
    let agent_time = optional_time(obj.get("agent_time"), "agent_time")?;
    let mut out = BTreeMap::new();
    for (id, reading) in sensors {
        let chars = id.chars().count();
        if !(1..=MAX_SENSOR_ID_CHARS).contains(&chars)
            || id.chars().any(|c| c.is_control() || c == '/')
        {
            return Err(ApiError::invalid(format!(
                "sensor id {id:?} must be 1 to {MAX_SENSOR_ID_CHARS} characters without '/' or control characters"
            )));
        }
        let field = |name: &str| format!("sensors.{id}.{name}");
        let r = reading
            .as_object()
            .ok_or_else(|| ApiError::invalid(format!("sensors.{id} must be an object")))?;
        let fields = ["type", "value", "alias", "extra", "timestamp"];
        known(r, &format!("sensors.{id}"), &fields, &[])?;
        let kind = match r.get("type") {
            None | Some(Value::Null) => return Err(ApiError::missing(&field("type"))),
            Some(Value::String(s)) if (1..=MAX_SENSOR_TYPE_CHARS).contains(&s.chars().count()) => {
                s.clone()
            }
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "{} field must be a short string",
                    field("type")
                )));
            }
        };
        let value = match r.get("value") {
            None => return Err(ApiError::missing(&field("value"))),
            Some(Value::Null) => None,
            // Only what a probe can physically report is stored: an impossible value is not a
            // reading, and a sum of a few of them would overflow the history's rollups.
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if (MIN_READING_C..=MAX_READING_C).contains(&v) => Some(v),
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{} field must be {MIN_READING_C} to {MAX_READING_C} °C (the DS18B20's \
                         range), or null for a failed reading; got {n}",
                        field("value")
                    )));
                }
            },
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "{} field must be a number (°C) or null",
                    field("value")
                )));
            }
        };
        out.insert(
            id.clone(),
            SensorReport {
                kind,
                value,
                alias: optional_text(r.get("alias"), &field("alias"))?,
                extra: optional_text(r.get("extra"), &field("extra"))?,
                timestamp: optional_time(r.get("timestamp"), &field("timestamp"))?,
            },
        );
    }
    Ok(SensorUpdate { host_id, sensors: out, agent_time })
}

fn optional_text(v: Option<&Value>, field: &str) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_REPORT_TEXT_CHARS => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!(
            "{field} field must be a string of at most {MAX_REPORT_TEXT_CHARS} characters"
        ))),
    }
}

fn optional_time(v: Option<&Value>, field: &str) -> Result<Option<Timestamp>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse::<Timestamp>().map(Some).map_err(|_| {
            ApiError::invalid(format!(
                "{field} field must be an RFC 3339 time, e.g. 2026-11-21T06:55:00Z"
            ))
        }),
        Some(_) => Err(ApiError::invalid(format!("{field} field must be an RFC 3339 time string"))),
    }
}

/// Every sensor with its newest reading.
#[utoipa::path(get, path = "/v1/sensors", operation_id = "list_sensors", tag = "sensors",
    responses(
        (status = 200, description = "Every sensor with its newest reading", body = Vec<SensorInfo>),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<SensorInfo>>, ApiError> {
    let now = Timestamp::now();
    let readings = &state.inner.readings;
    let rows = state.inner.store.sensors().await?;
    // The loop's verdict, so the list and the decision cannot disagree about a stuck probe.
    let decision = state.inner.controller.latest();
    let stuck = |id: &str| {
        decision.as_ref().is_some_and(|d| {
            d.sensors.iter().any(|i| i.id == id && i.excluded == Some(Exclusion::Stuck))
        })
    };
    Ok(axum::Json(
        rows.into_iter()
            .map(|s| {
                let latest = s.last_ts.map(|ts| Reading { at: from_millis(ts), value: s.latest() });
                let stale = readings.is_stale(now, latest.as_ref().map(|r| r.at));
                SensorInfo {
                    stuck: stuck(&s.id),
                    value_since: s.value_since.map(from_millis),
                    id: s.id,
                    host_id: s.host_id,
                    kind: s.kind,
                    alias: s.alias,
                    extra: s.extra,
                    name: s.name,
                    weight: s.weight,
                    offset_c: s.offset_c,
                    latest,
                    stale,
                }
            })
            .collect(),
    ))
}

/// Name a sensor, set its default weight and its calibration offset (admin). The whole set is
/// replaced. Readings stay stored as measured: the offset applies to what the engine uses and
/// serves from now on, past readings included.
#[utoipa::path(put, path = "/v1/sensors/{id}/settings", operation_id = "set_sensor_settings", tag = "sensors",
    params(("id" = String, Path, description = "The sensor id")),
    request_body = SensorSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sensor with its new settings", body = SensorInfo),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such sensor", body = ErrorBody),
        (status = 422, description = "A field is missing or out of range", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Body(body): Body<SensorSettings>,
) -> Result<axum::Json<SensorInfo>, ApiError> {
    caller.require_admin()?;
    // Checked as sent, then trimmed: what the schema says (`maxLength`, no control
    // characters) is exactly what is refused.
    let name = match body.name.as_deref() {
        Some(n) if n.chars().count() > MAX_SENSOR_NAME => {
            return Err(ApiError::invalid(format!(
                "name field must be at most {MAX_SENSOR_NAME} characters"
            )));
        }
        Some(n) if n.chars().any(char::is_control) => {
            return Err(ApiError::invalid("name field must not contain control characters"));
        }
        Some(n) if !n.trim().is_empty() => Some(n.trim().to_owned()),
        _ => None,
    };
    if !(0.0..=MAX_SENSOR_WEIGHT).contains(&body.weight) {
        return Err(ApiError::invalid(format!(
            "weight field must be 0 to {MAX_SENSOR_WEIGHT}, got {}",
            body.weight
        )));
    }
    if !(-MAX_SENSOR_OFFSET_C..=MAX_SENSOR_OFFSET_C).contains(&body.offset_c) {
        return Err(ApiError::invalid(format!(
            "offset_c field must be -{MAX_SENSOR_OFFSET_C} to {MAX_SENSOR_OFFSET_C} °C, got {}",
            body.offset_c
        )));
    }
    let readings = &state.inner.readings;
    let settings = SensorSettings { name, ..body };
    if !readings.set_settings(&id, &settings).await? {
        return Err(ApiError::not_found(format!("no sensor {id:?}")));
    }
    // The effective temperature may have moved: decide again, and tell the dashboards.
    state.inner.controller.sensors_changed();
    state.inner.events.changed(Topic::Sensors);
    let axum::Json(all) = list(State(state)).await?;
    all.into_iter()
        .find(|s| s.id == id)
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("no sensor {id:?}")))
}
