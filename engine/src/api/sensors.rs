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
use serde::Deserialize;
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
    let update = match read_valid(&body) {
        Some(update) => update,
        None => validate(&parse_json(&body)?)?,
    };
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

/// A sensor id: 1 to [`MAX_SENSOR_ID_CHARS`] characters, none of them '/' (it is a path
/// segment) or a control character.
fn sensor_id_ok(id: &str) -> bool {
    (1..=MAX_SENSOR_ID_CHARS).contains(&id.chars().count())
        && !id.chars().any(|c| c.is_control() || c == '/')
}

/// A sensor type: 1 to [`MAX_SENSOR_TYPE_CHARS`] characters.
fn sensor_type_ok(kind: &str) -> bool {
    (1..=MAX_SENSOR_TYPE_CHARS).contains(&kind.chars().count())
}

/// A value a probe can physically report: an impossible one is not a reading, and a sum of a
/// few of them would overflow the history's rollups.
fn reading_ok(value: f64) -> bool {
    (MIN_READING_C..=MAX_READING_C).contains(&value)
}

/// An alias or an extra: at most [`MAX_REPORT_TEXT_CHARS`] characters.
fn report_text_ok(text: &str) -> bool {
    text.chars().count() <= MAX_REPORT_TEXT_CHARS
}

/// An update as an agent sends it, its strings borrowed from the body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpdate<'a> {
    host_id: &'a str,
    #[serde(borrow)]
    sensors: BTreeMap<&'a str, RawReport<'a>>,
    #[serde(default)]
    agent_time: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReport<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    /// Present, as a number or null: `deserialize_with` keeps serde from taking a missing
    /// field for null, as it does for an `Option`.
    #[serde(deserialize_with = "Option::deserialize")]
    value: Option<f64>,
    #[serde(default)]
    alias: Option<&'a str>,
    #[serde(default)]
    extra: Option<&'a str>,
    #[serde(default)]
    timestamp: Option<&'a str>,
}

/// A valid update read straight into its types, or `None` for any body [`validate`] must
/// read field by field. Nearly every update an agent sends is valid, and reading it untyped
/// first (a map and its strings for every reading, then their copies) cost the engine a
/// fifth to a quarter of its CPU time per reading under load (the ingest benchmark, the two
/// ways alternated). It takes only what `validate` takes, and gives what it gives (the test
/// `a_valid_update_is_read_as_validate_reads_it`); every error is `validate`'s. A string with
/// an escape in it cannot be borrowed: that body goes the field-by-field way too.
fn read_valid(body: &[u8]) -> Option<SensorUpdate> {
    let raw: RawUpdate<'_> = serde_json::from_slice(body).ok()?;
    hearth_common::host_id::validate(raw.host_id).ok()?;
    // The outer `None`: not valid; the inner: not given (or null).
    let time = |t: Option<&str>| match t {
        None => Some(None),
        Some(t) => t.parse::<Timestamp>().ok().map(Some),
    };
    let text = |t: Option<&str>| match t {
        Some(t) if !report_text_ok(t) => None,
        t => Some(t.map(str::to_owned)),
    };
    let mut sensors = BTreeMap::new();
    for (id, r) in raw.sensors {
        if !sensor_id_ok(id) || !sensor_type_ok(r.kind) || !r.value.is_none_or(reading_ok) {
            return None;
        }
        let report = SensorReport {
            kind: r.kind.to_owned(),
            value: r.value,
            alias: text(r.alias)?,
            extra: text(r.extra)?,
            timestamp: time(r.timestamp)?,
        };
        sensors.insert(id.to_owned(), report);
    }
    Some(SensorUpdate {
        host_id: raw.host_id.to_owned(),
        sensors,
        agent_time: time(raw.agent_time)?,
    })
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
        if !sensor_id_ok(id) {
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
            Some(Value::String(s)) if sensor_type_ok(s) => s.clone(),
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
            Some(Value::Number(n)) => match n.as_f64() {
                Some(v) if reading_ok(v) => Some(v),
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
        Some(Value::String(s)) if report_text_ok(s) => Ok(Some(s.clone())),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_valid` reads a body only when `validate` takes it, and then as `validate` does;
    /// the bodies an agent sends (the first ones) it reads itself.
    #[test]
    fn a_valid_update_is_read_as_validate_reads_it() {
        let id_too_long = "x".repeat(MAX_SENSOR_ID_CHARS + 1);
        let text_too_long = "x".repeat(MAX_REPORT_TEXT_CHARS + 1);
        let longest = "x".repeat(MAX_REPORT_TEXT_CHARS);
        let read_itself = [
            r#"{"host_id":"pi-1","sensors":{"28-1":{"type":"DS18B20","value":21.5}}}"#.to_owned(),
            r#"{"host_id":"pi-1","sensors":{"28-1":{"type":"DS18B20","value":null,"alias":"hall",
                "extra":"{}","timestamp":"2026-12-05T10:00:00Z"},"28-2":{"type":"DS18B20",
                "value":-55,"alias":null,"extra":null,"timestamp":null}},
                "agent_time":"2026-12-05T10:00:01.5+01:00"}"#
                .to_owned(),
            r#"{"sensors":{},"host_id":"pi-1","agent_time":null}"#.to_owned(),
            // A duplicate sensor: the last one counts, on both ways.
            r#"{"host_id":"pi-1","sensors":{"a":{"type":"t","value":1},"a":{"type":"u","value":2}}}"#
                .to_owned(),
            format!(
                r#"{{"host_id":"pi","sensors":{{"28-1":{{"type":"t","value":125,"alias":"{longest}"}}}}}}"#
            ),
        ];
        let others = [
            // Escapes: valid, read field by field.
            r#"{"host_id":"pi-1","sensors":{"28-\u0031":{"type":"DS18B20","value":21.5}}}"#
                .to_owned(),
            r#"{"host_id":"pi-1","sensors":{"28-1":{"type":"DS\"18","value":21.5}}}"#.to_owned(),
            // Duplicate fields: the last counts in `validate`.
            r#"{"host_id":"pi-1","host_id":"pi-2","sensors":{}}"#.to_owned(),
            r#"{"host_id":"pi-1","sensors":{"a":{"type":"t","value":200,"value":20}}}"#.to_owned(),
            // Refused.
            r#"{"sensors":{}}"#.to_owned(),
            r#"{"host_id":null,"sensors":{}}"#.to_owned(),
            r#"{"host_id":"pi 1","sensors":{}}"#.to_owned(),
            r#"{"host_id":"","sensors":{}}"#.to_owned(),
            r#"{"host_id":7,"sensors":{}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":null}"#.to_owned(),
            r#"{"host_id":"pi","sensors":[]}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{},"extra":1}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{},"agent_time":"yesterday"}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{},"agent_time":5}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"value":20}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":null,"value":20}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"","value":20}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"t"}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"t","value":"20"}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"t","value":125.0001}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"t","value":-127}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"t","value":1e400}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"t","value":1,"unit":"C"}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"t","value":1,"alias":3}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":{"type":"t","value":1,"timestamp":"noon"}}}"#
                .to_owned(),
            r#"{"host_id":"pi","sensors":{"":{"type":"t","value":1}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a/b":{"type":"t","value":1}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a\nb":{"type":"t","value":1}}}"#.to_owned(),
            r#"{"host_id":"pi","sensors":{"a":7}}"#.to_owned(),
            format!(r#"{{"host_id":"pi","sensors":{{"{id_too_long}":{{"type":"t","value":1}}}}}}"#),
            format!(
                r#"{{"host_id":"pi","sensors":{{"a":{{"type":"t","value":1,"extra":"{text_too_long}"}}}}}}"#
            ),
            r#"[]"#.to_owned(),
            r#"{"host_id":"pi","sensors":{}} trailing"#.to_owned(),
        ];
        let slow = |body: &str| parse_json(body.as_bytes()).and_then(|v| validate(&v)).ok();
        for body in &read_itself {
            let fast = read_valid(body.as_bytes());
            assert!(fast.is_some(), "read without the untyped way: {body}");
            assert_eq!(fast, slow(body), "{body}");
        }
        for body in &others {
            let fast = read_valid(body.as_bytes());
            assert!(fast.is_none() || fast == slow(body), "{body}");
        }
        // The corpus holds both: some of the others are valid, most are not.
        let valid = others.iter().filter(|b| slow(b).is_some()).count();
        assert_eq!(valid, 4, "the escapes and the duplicate fields");
    }
}
