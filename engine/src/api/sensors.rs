//! `PUT /v1/sensors/update` (the seed contract), `PUT /v1/sensors/backlog` (replayed readings)
//! and the sensor list (a sensor's history is in `history.rs`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_proto::events::Event;
use hearth_proto::sensors::{
    MAX_BACKLOG_UPDATES, MAX_SENSOR_NAME, MAX_SENSOR_OFFSET_C, MAX_SENSOR_WEIGHT, Reading,
    SensorBacklog, SensorBacklogAck, SensorInfo, SensorReport, SensorSettings, SensorUpdate,
    SensorUpdateAck,
};
use hearth_proto::{ErrorBody, Timestamp};
use serde_json::Value;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body, parse_json};
use crate::store::{NewReading, NewReport, from_millis, millis};

/// Longest sensor id accepted (1-Wire ids are 15 characters; leave room for others).
const MAX_ID_LEN: usize = 64;
/// Longest alias or extra string accepted.
const MAX_TEXT_LEN: usize = 256;
/// A reading may be timestamped at most this far ahead of the engine's clock.
const MAX_FUTURE: jiff::SignedDuration = jiff::SignedDuration::from_secs(600);
/// Most readings one backlog request may carry (all updates together).
const MAX_BACKLOG_READINGS: usize = 20_000;

/// Report readings. The body is validated field by field so each mistake gets its own message
/// (`host_id field is missing`), as the seed contract promises; nothing is stored unless the
/// whole report is valid. When `agent_time` shows the agent's clock off by more than the
/// engine's limit (`--clock-skew-max-s`), the readings' timestamps are re-timed by that offset
/// (stored at `timestamp − (agent_time − engine time)`), and the agent is flagged in
/// `GET /v1/agents`.
#[utoipa::path(put, path = "/v1/sensors/update", tag = "sensors",
    request_body = SensorUpdate,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored (after commit)", body = SensorUpdateAck),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Wrong credential, or another host's", body = ErrorBody),
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
    let mut update = validate(&value)?;
    caller.require_host(&update.host_id)?;

    let now = Timestamp::now();
    let offset = update.agent_time.map(|t| t.duration_since(now));
    let skewed = offset.is_some_and(|o| state.inner.clock.observe(&update.host_id, o));
    if let (true, Some(offset)) = (skewed, offset) {
        // A live reading was taken moments ago by the agent's clock: the offset measured now
        // is the best correction there is (see clock.rs).
        for r in update.sensors.values_mut() {
            r.timestamp = Some(r.timestamp.map_or(now, |t| t.checked_sub(offset).unwrap_or(now)));
        }
    }
    check_not_future(&update, now, "")?;
    let ids: Vec<String> = update.sensors.keys().cloned().collect();
    let report = NewReport {
        host_id: update.host_id,
        received: millis(now),
        clock_offset_ms: offset.map(|o| o.as_millis() as i64),
        readings: update.sensors.into_iter().map(|(id, r)| new_reading(id, r, now)).collect(),
    };
    let events: Vec<Event> = {
        // A poisoned lock only means a settings handler panicked mid-insert; the map is still
        // a usable cache.
        let offsets = state.inner.offsets.read().unwrap_or_else(|e| e.into_inner());
        report
            .readings
            .iter()
            .map(|r| Event::Reading {
                sensor_id: r.sensor_id.clone(),
                at: from_millis(r.ts),
                value: r.value.map(|v| v + offsets.get(&r.sensor_id).copied().unwrap_or(0.0)),
            })
            .collect()
    };
    state.inner.ingest.submit(report).await.map_err(ApiError::not_stored)?;
    // Only after the commit: a subscriber that re-reads the API finds what it was told about.
    for event in events {
        state.inner.events.publish(event);
    }
    Ok((StatusCode::CREATED, axum::Json(SensorUpdateAck { status: "ok".into(), ids })))
}

/// Replay readings an agent could not deliver when it took them, oldest first. Every update is
/// validated like `PUT /v1/sensors/update` (errors are prefixed with `updates[i]: `), every
/// reading needs its `timestamp`, and the timestamps are stored as sent (never re-timed). All
/// updates are stored in one commit; sending the same backlog again stores nothing new.
#[utoipa::path(put, path = "/v1/sensors/backlog", tag = "sensors",
    request_body = SensorBacklog,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored (after commit)", body = SensorBacklogAck),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Wrong credential, or another host's", body = ErrorBody),
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
    caller.require_host(&host_id)?;

    let now = Timestamp::now();
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
        check_not_future(&update, now, &format!("updates[{i}]: "))?;
        count += update.sensors.len();
        if count > MAX_BACKLOG_READINGS {
            return Err(ApiError::invalid(format!(
                "a backlog may carry at most {MAX_BACKLOG_READINGS} readings"
            )));
        }
        backlog.updates.push(update);
    }
    let offset = backlog.agent_time.map(|t| t.duration_since(now));
    if let Some(o) = offset {
        // Flagged and logged like a live report, but the backlog is not re-timed (clock.rs).
        state.inner.clock.observe(&backlog.host_id, o);
    }
    let updates = backlog.updates.len();
    let report = NewReport {
        host_id: backlog.host_id,
        received: millis(now),
        clock_offset_ms: offset.map(|o| o.as_millis() as i64),
        readings: backlog
            .updates
            .into_iter()
            .flat_map(|u| u.sensors)
            .map(|(id, r)| new_reading(id, r, now))
            .collect(),
    };
    state.inner.ingest.submit(report).await.map_err(ApiError::not_stored)?;
    let ack = SensorBacklogAck { status: "ok".into(), updates, readings: count };
    Ok((StatusCode::CREATED, axum::Json(ack)))
}

/// A reading timestamped ahead of the engine's clock (beyond a margin) cannot be right.
fn check_not_future(update: &SensorUpdate, now: Timestamp, prefix: &str) -> Result<(), ApiError> {
    for (id, r) in &update.sensors {
        if let Some(ts) = r.timestamp
            && ts.duration_since(now) > MAX_FUTURE
        {
            return Err(ApiError::invalid(format!(
                "{prefix}sensors.{id}.timestamp {ts} is in the future (is the agent's clock wrong?)"
            )));
        }
    }
    Ok(())
}

fn new_reading(sensor_id: String, r: SensorReport, now: Timestamp) -> NewReading {
    NewReading {
        sensor_id,
        kind: r.kind,
        alias: r.alias,
        extra: r.extra,
        ts: millis(r.timestamp.unwrap_or(now)),
        value: r.value,
    }
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
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(|c| c.is_control() || c == '/')
        {
            return Err(ApiError::invalid(format!(
                "sensor id {id:?} must be 1 to {MAX_ID_LEN} characters without '/' or control characters"
            )));
        }
        let field = |name: &str| format!("sensors.{id}.{name}");
        let r = reading
            .as_object()
            .ok_or_else(|| ApiError::invalid(format!("sensors.{id} must be an object")))?;
        let kind = match r.get("type") {
            None | Some(Value::Null) => return Err(ApiError::missing(&field("type"))),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID_LEN => s.clone(),
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
            Some(Value::Number(n)) => n.as_f64(),
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
        Some(Value::String(s)) if s.len() <= MAX_TEXT_LEN => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!(
            "{field} field must be a string of at most {MAX_TEXT_LEN} bytes"
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
#[utoipa::path(get, path = "/v1/sensors", tag = "sensors",
    responses((status = 200, body = Vec<SensorInfo>), (status = 503, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<SensorInfo>>, ApiError> {
    let now = Timestamp::now();
    let stale_after = state.inner.stale_after;
    let rows = state.inner.store.sensors().await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|s| {
                let latest = s.last_ts.map(|ts| Reading {
                    at: from_millis(ts),
                    value: s.last_value.map(|v| v + s.offset_c),
                });
                let stale = latest.as_ref().is_none_or(|r| now.duration_since(r.at) > stale_after);
                SensorInfo {
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
#[utoipa::path(put, path = "/v1/sensors/{id}/settings", tag = "sensors",
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
    let name = match body.name.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(n) if n.chars().count() > MAX_SENSOR_NAME => {
            return Err(ApiError::invalid(format!(
                "name field must be at most {MAX_SENSOR_NAME} characters"
            )));
        }
        Some(n) if n.chars().any(char::is_control) => {
            return Err(ApiError::invalid("name field must not contain control characters"));
        }
        Some(n) => Some(n.to_owned()),
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
    let store = &state.inner.store;
    if !store.set_sensor_settings(&id, name.as_deref(), body.weight, body.offset_c).await? {
        return Err(ApiError::not_found(format!("no sensor {id:?}")));
    }
    {
        let mut offsets = state.inner.offsets.write().unwrap_or_else(|e| e.into_inner());
        if body.offset_c == 0.0 {
            offsets.remove(&id);
        } else {
            offsets.insert(id.clone(), body.offset_c);
        }
    }
    // The effective temperature may have moved: decide again, and tell the dashboards.
    state.inner.controller.sensors_changed();
    state.inner.events.changed("sensors");
    let axum::Json(all) = list(State(state)).await?;
    all.into_iter()
        .find(|s| s.id == id)
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("no sensor {id:?}")))
}
