//! Schedules, overrides, the default target and the timeline.
//!
//! Bodies are parsed from untyped JSON field by field (as in `sensors.rs`), so a mistake inside
//! the tagged `when`/`hold` objects gets a message naming its path (`when.days[1] field must be
//! a day of the week ...`) rather than serde's position-only text; the rules themselves are
//! checked by `schedule::check_*`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_proto::events::Topic;
use hearth_proto::schedules::{
    DEFAULT_TIMELINE_HOURS, DefaultTarget, Hold, NewOverride, NewRule, Override, OverridesEnded,
    Rule, SensorWeight, TIMELINE_HOURS, Timeline, TimelineQuery, Weekday, When,
};
use hearth_proto::zones::ZoneQuery;
use hearth_proto::{ErrorBody, Timestamp};
use jiff::SignedDuration;
use serde_json::{Map, Value};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Query, bounded, join, known, parse_json};
use super::zones::zone;
use crate::schedule::{Schedule, check_default, check_new_rule, check_override};
use crate::zones::ZoneId;

type Obj = Map<String, Value>;

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, ApiError> {
    v.as_object().ok_or_else(|| {
        ApiError::invalid(if path.is_empty() {
            "body must be a JSON object".to_owned()
        } else {
            format!("{path} field must be an object")
        })
    })
}

fn get<'a>(obj: &'a Obj, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// An optional field that has a default but is not nullable (`enabled`, `sensors`, a
/// sensor's `weight`): absent is the default, null is refused like any other wrong type, as
/// the schema says.
fn not_null<'a>(
    obj: &'a Obj,
    prefix: &str,
    key: &str,
    what: &str,
) -> Result<Option<&'a Value>, ApiError> {
    match obj.get(key) {
        Some(Value::Null) => {
            Err(ApiError::invalid(format!("{} field must be {what}, not null", join(prefix, key))))
        }
        v => Ok(v),
    }
}

fn string(obj: &Obj, prefix: &str, key: &str) -> Result<String, ApiError> {
    opt_string(obj, prefix, key)?.ok_or_else(|| ApiError::missing(&join(prefix, key)))
}

fn opt_string(obj: &Obj, prefix: &str, key: &str) -> Result<Option<String>, ApiError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ApiError::invalid(format!("{} field must be a string", join(prefix, key)))),
    }
}

fn opt_celsius(obj: &Obj, key: &str) -> Result<Option<f64>, ApiError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(ApiError::invalid(format!("{key} field must be a number (°C) or null"))),
    }
}

fn minutes(obj: &Obj, prefix: &str, key: &str) -> Result<u32, ApiError> {
    let path = join(prefix, key);
    match get(obj, key) {
        None => Err(ApiError::missing(&path)),
        Some(v) => v.as_u64().and_then(|n| u32::try_from(n).ok()).ok_or_else(|| {
            ApiError::invalid(format!("{path} field must be a whole number of minutes, got {v}"))
        }),
    }
}

fn opt_time(obj: &Obj, prefix: &str, key: &str) -> Result<Option<Timestamp>, ApiError> {
    let path = join(prefix, key);
    match opt_string(obj, prefix, key)? {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            ApiError::invalid(format!(
                "{path} field must be an RFC 3339 time, e.g. 2026-11-21T06:55:00Z, got {s:?}"
            ))
        }),
    }
}

fn sensors(obj: &Obj) -> Result<Vec<SensorWeight>, ApiError> {
    let items = match not_null(obj, "", "sensors", "an array")? {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid(
                "sensors field must be an array of {\"sensor_id\", \"weight\"} objects",
            ));
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("sensors[{i}]");
        let s = object(item, &path)?;
        known(s, &path, &["sensor_id", "weight"], &[])?;
        let weight = match not_null(s, &path, "weight", "a number")? {
            None => 1.0,
            Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
            Some(_) => {
                return Err(ApiError::invalid(format!("{path}.weight field must be a number")));
            }
        };
        out.push(SensorWeight { sensor_id: string(s, &path, "sensor_id")?, weight });
    }
    Ok(out)
}

fn weekday(v: &Value, path: &str) -> Result<Weekday, ApiError> {
    let day = v.as_str().and_then(|s| serde_json::from_value(Value::String(s.into())).ok());
    day.ok_or_else(|| {
        ApiError::invalid(format!(
            "{path} field must be a day of the week (monday, tuesday, ... sunday), got {v}"
        ))
    })
}

fn when(obj: &Obj) -> Result<When, ApiError> {
    let w = object(get(obj, "when").ok_or_else(|| ApiError::missing("when"))?, "when")?;
    let p = "when";
    let kind = string(w, p, "type")?;
    match kind.as_str() {
        "weekly" => {
            known(w, p, &["type", "days", "start", "end"], &[])?;
            let days = match get(w, "days") {
                None => return Err(ApiError::missing("when.days")),
                Some(Value::Array(days)) => days,
                Some(_) => {
                    return Err(ApiError::invalid(
                        "when.days field must be an array of days of the week",
                    ));
                }
            };
            let days = days
                .iter()
                .enumerate()
                .map(|(i, d)| weekday(d, &format!("when.days[{i}]")))
                .collect::<Result<_, _>>()?;
            Ok(When::Weekly { days, start: string(w, p, "start")?, end: string(w, p, "end")? })
        }
        "cron" => {
            known(w, p, &["type", "expr", "duration_min"], &[])?;
            Ok(When::Cron {
                expr: string(w, p, "expr")?,
                duration_min: minutes(w, p, "duration_min")?,
            })
        }
        "exception" => {
            known(w, p, &["type", "date", "start", "end"], &[])?;
            Ok(When::Exception {
                date: string(w, p, "date")?,
                start: opt_string(w, p, "start")?,
                end: opt_string(w, p, "end")?,
            })
        }
        "vacation" => {
            known(w, p, &["type", "start", "end"], &[])?;
            Ok(When::Vacation { start: string(w, p, "start")?, end: string(w, p, "end")? })
        }
        other => Err(ApiError::invalid(format!(
            "when.type field must be one of weekly, cron, exception, vacation, got {other:?}"
        ))),
    }
}

/// A rule from a request body, checked; its `zone` as sent (None when absent).
fn rule_body(body: &[u8]) -> Result<NewRule, ApiError> {
    let value = parse_json(body)?;
    let obj = object(&value, "")?;
    known(
        obj,
        "",
        &["name", "enabled", "when", "heat_c", "cool_c", "sensors", "zone"],
        &["id", "layer"],
    )?;
    let enabled = match not_null(obj, "", "enabled", "true or false")? {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("enabled field must be true or false")),
    };
    let rule = NewRule {
        name: string(obj, "", "name")?,
        enabled,
        when: when(obj)?,
        heat_c: opt_celsius(obj, "heat_c")?,
        cool_c: opt_celsius(obj, "cool_c")?,
        sensors: sensors(obj)?,
        zone: opt_string(obj, "", "zone")?,
    };
    check_new_rule(&rule).map_err(ApiError::invalid)?;
    Ok(rule)
}

fn hold(obj: &Obj) -> Result<Hold, ApiError> {
    let h = object(get(obj, "hold").ok_or_else(|| ApiError::missing("hold"))?, "hold")?;
    let p = "hold";
    match string(h, p, "type")?.as_str() {
        "until" => {
            known(h, p, &["type", "at"], &[])?;
            let at = opt_time(h, p, "at")?.ok_or_else(|| ApiError::missing("hold.at"))?;
            Ok(Hold::Until { at })
        }
        "for" => {
            known(h, p, &["type", "minutes"], &[])?;
            Ok(Hold::For { minutes: minutes(h, p, "minutes")? })
        }
        "next_change" => {
            known(h, p, &["type"], &[])?;
            Ok(Hold::NextChange)
        }
        "indefinite" => {
            known(h, p, &["type"], &[])?;
            Ok(Hold::Indefinite)
        }
        other => Err(ApiError::invalid(format!(
            "hold.type field must be one of until, for, next_change, indefinite, got {other:?}"
        ))),
    }
}

fn override_body(body: &[u8], now: Timestamp) -> Result<NewOverride, ApiError> {
    let value = parse_json(body)?;
    let obj = object(&value, "")?;
    known(obj, "", &["heat_c", "cool_c", "start", "hold", "sensors", "zone"], &[])?;
    let o = NewOverride {
        heat_c: opt_celsius(obj, "heat_c")?,
        cool_c: opt_celsius(obj, "cool_c")?,
        start: opt_time(obj, "", "start")?,
        hold: hold(obj)?,
        sensors: sensors(obj)?,
        zone: opt_string(obj, "", "zone")?,
    };
    check_override(&o, now).map_err(ApiError::invalid)?;
    Ok(o)
}

fn default_body(body: &[u8]) -> Result<DefaultTarget, ApiError> {
    let value = parse_json(body)?;
    let obj = object(&value, "")?;
    known(obj, "", &["heat_c", "cool_c", "sensors"], &[])?;
    let d = DefaultTarget {
        heat_c: opt_celsius(obj, "heat_c")?.ok_or_else(|| ApiError::missing("heat_c"))?,
        cool_c: opt_celsius(obj, "cool_c")?.ok_or_else(|| ApiError::missing("cool_c"))?,
        sensors: sensors(obj)?,
    };
    check_default(&d).map_err(ApiError::invalid)?;
    Ok(d)
}

/// A zone's schedule (the zone exists: `zone` checked it, and every zone has one; a zone added
/// this instant is read into the schedules before its answer).
fn schedule_of(state: &AppState, zone: &ZoneId) -> Result<std::sync::Arc<Schedule>, ApiError> {
    state
        .inner
        .schedules
        .zone_snapshot(zone)
        .ok_or_else(|| ApiError::not_found(format!("zone {:?} has no schedule", zone.0)))
}

/// An id from the path; one that is not a number names nothing.
fn id(raw: &str, what: &str) -> Result<i64, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found(format!("no {what} {raw:?}")))
}

/// A zone's schedule rules, enabled or not, by id.
#[utoipa::path(get, path = "/v1/schedules", operation_id = "list_rules", tag = "schedules",
    params(ZoneQuery),
    responses(
        (status = 200, description = "Every rule of the zone, by id", body = Vec<Rule>),
        (status = 404, description = "No such zone", body = ErrorBody),
    ))]
pub(super) async fn list_rules(
    State(state): State<AppState>,
    Query(q): Query<ZoneQuery>,
) -> Result<axum::Json<Vec<Rule>>, ApiError> {
    let zone = zone(&state, q.zone.as_deref())?;
    Ok(axum::Json(schedule_of(&state, &zone)?.rules().to_vec()))
}

/// Add a rule to a zone's schedule (admin; `zone` absent: the default zone). It is in force at
/// once; its layer follows from `when`.
#[utoipa::path(post, path = "/v1/schedules", operation_id = "create_rule", tag = "schedules",
    request_body = NewRule,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored and in force", body = Rule),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such zone", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody,
            example = json!({"status": "error", "code": "invalid_field",
                "error": "when.start field must be a time HH:MM (00:00 to 23:59), got \"25:00\""})),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn create_rule(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Rule>), ApiError> {
    caller.require_admin()?;
    let rule = rule_body(&body)?;
    let zone = zone(&state, rule.zone.as_deref())?;
    let rule = state.inner.schedules.create_rule(NewRule { zone: Some(zone.0), ..rule }).await?;
    tracing::info!(id = rule.id, name = %rule.rule.name, "schedule rule added");
    state.inner.events.changed(Topic::Schedules);
    Ok((StatusCode::CREATED, axum::Json(rule)))
}

/// One rule, of any zone.
#[utoipa::path(get, path = "/v1/schedules/{id}", operation_id = "get_rule", tag = "schedules",
    params(("id" = i64, Path, description = "The rule id")),
    responses(
        (status = 200, description = "The rule", body = Rule),
        (status = 404, description = "No such rule", body = ErrorBody),
    ))]
pub(super) async fn get_rule(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<axum::Json<Rule>, ApiError> {
    let id = id(&raw, "schedule rule")?;
    let rule = state.inner.schedules.rule(id);
    rule.map(axum::Json).ok_or_else(|| ApiError::not_found(format!("no schedule rule {id}")))
}

/// Replace a rule of any zone (admin); `id` and `layer` in the body are ignored. `zone` moves
/// it to that zone; absent, it stays in its zone.
#[utoipa::path(put, path = "/v1/schedules/{id}", operation_id = "replace_rule", tag = "schedules",
    params(("id" = i64, Path, description = "The rule id")),
    request_body = NewRule,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored and in force", body = Rule),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such rule, or no such zone", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn replace_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Rule>, ApiError> {
    caller.require_admin()?;
    let id = id(&raw, "schedule rule")?;
    let rule = rule_body(&body)?;
    let zone = match rule.zone.as_deref() {
        Some(z) => zone(&state, Some(z))?.0,
        None => match state.inner.schedules.rule(id) {
            Some(old) => old.rule.zone.unwrap_or_else(|| ZoneId::default_zone().0),
            None => return Err(ApiError::not_found(format!("no schedule rule {id}"))),
        },
    };
    match state.inner.schedules.replace_rule(id, NewRule { zone: Some(zone), ..rule }).await? {
        Some(rule) => {
            tracing::info!(id, name = %rule.rule.name, "schedule rule replaced");
            state.inner.events.changed(Topic::Schedules);
            Ok(axum::Json(rule))
        }
        None => Err(ApiError::not_found(format!("no schedule rule {id}"))),
    }
}

/// Delete a rule of any zone (admin).
#[utoipa::path(delete, path = "/v1/schedules/{id}", operation_id = "delete_rule", tag = "schedules",
    params(("id" = i64, Path, description = "The rule id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such rule", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn delete_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = id(&raw, "schedule rule")?;
    if !state.inner.schedules.delete_rule(id).await? {
        return Err(ApiError::not_found(format!("no schedule rule {id}")));
    }
    tracing::info!(id, "schedule rule deleted");
    state.inner.events.changed(Topic::Schedules);
    Ok(StatusCode::NO_CONTENT)
}

/// A zone's default target, in force whenever none of its rules is.
#[utoipa::path(get, path = "/v1/schedule/default", operation_id = "get_default_target", tag = "schedules",
    params(ZoneQuery),
    responses(
        (status = 200, description = "The default target", body = DefaultTarget),
        (status = 404, description = "No such zone", body = ErrorBody),
    ))]
pub(super) async fn get_default(
    State(state): State<AppState>,
    Query(q): Query<ZoneQuery>,
) -> Result<axum::Json<DefaultTarget>, ApiError> {
    let zone = zone(&state, q.zone.as_deref())?;
    Ok(axum::Json(schedule_of(&state, &zone)?.default_target().clone()))
}

/// Replace a zone's default target (admin). Its rules without a setpoint or sensors use it too.
#[utoipa::path(put, path = "/v1/schedule/default", operation_id = "set_default_target", tag = "schedules",
    params(ZoneQuery),
    request_body = DefaultTarget,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored and in force", body = DefaultTarget),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such zone", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn put_default(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ZoneQuery>,
    body: Bytes,
) -> Result<axum::Json<DefaultTarget>, ApiError> {
    caller.require_admin()?;
    let zone = zone(&state, q.zone.as_deref())?;
    let d = default_body(&body)?;
    state.inner.schedules.set_default(&zone, &d).await?;
    tracing::info!(zone = %zone, heat_c = d.heat_c, cool_c = d.cool_c, "default target changed");
    state.inner.events.changed(Topic::Default);
    Ok(axum::Json(d))
}

/// A zone's overrides in force now or still to come, by id.
#[utoipa::path(get, path = "/v1/overrides", operation_id = "list_overrides", tag = "schedules",
    params(ZoneQuery),
    responses(
        (status = 200, description = "Overrides in force or to come, by id", body = Vec<Override>),
        (status = 404, description = "No such zone", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn list_overrides(
    State(state): State<AppState>,
    Query(q): Query<ZoneQuery>,
) -> Result<axum::Json<Vec<Override>>, ApiError> {
    let zone = zone(&state, q.zone.as_deref())?;
    Ok(axum::Json(state.inner.schedules.overrides(Some(&zone), Timestamp::now()).await?))
}

/// Override a zone's schedule (admin; `zone` absent: the default zone), e.g. "make it 22 now"
/// until the schedule's next change:
/// `{"heat_c": 22, "hold": {"type": "next_change"}}`. The newest override wins over every
/// rule while it holds. `next_change` ends at the schedule's first change after the start
/// (overrides left out), with no change within 14 days it is refused; later edits of the rules
/// or the default target move that end to the next change as the schedule then stands.
#[utoipa::path(post, path = "/v1/overrides", operation_id = "create_override", tag = "schedules",
    request_body = NewOverride,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Stored and in force from its start", body = Override),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such zone", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid, or no schedule change \
            within 14 days for a next_change hold", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn create_override(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<Override>), ApiError> {
    caller.require_admin()?;
    let now = Timestamp::now();
    let o = override_body(&body, now)?;
    let zone = zone(&state, o.zone.as_deref())?;
    let start = o.start.unwrap_or(now);
    let end = match &o.hold {
        Hold::Until { at } => Some(*at),
        Hold::For { minutes } => Some(
            start
                .checked_add(SignedDuration::from_mins(i64::from(*minutes)))
                .map_err(|_| ApiError::invalid("hold.minutes field runs past the end of time"))?,
        ),
        Hold::NextChange => {
            Some(schedule_of(&state, &zone)?.next_change(start).ok_or_else(|| {
                ApiError::invalid("no schedule change within 14 days; use a duration or indefinite")
            })?)
        }
        Hold::Indefinite => None,
    };
    if let Some(end) = end.filter(|end| *end <= now) {
        // Only a start in the past gets here (`check_override` refused the other holds).
        return Err(ApiError::invalid(format!(
            "start field is too far in the past ({start}): the schedule changed at {end}, \
             before now, so the override would never hold"
        )));
    }
    let o = NewOverride { zone: Some(zone.0), ..o };
    let o = state.inner.schedules.create_override(o, start, end, now).await?;
    tracing::info!(id = o.id, zone = %o.zone, heat_c = ?o.heat_c, cool_c = ?o.cool_c, end = ?o.end, "override");
    state.inner.events.changed(Topic::Overrides);
    Ok((StatusCode::CREATED, axum::Json(o)))
}

/// Delete an override of any zone (admin), whether in force, future or ended.
#[utoipa::path(delete, path = "/v1/overrides/{id}", operation_id = "delete_override", tag = "schedules",
    params(("id" = i64, Path, description = "The override id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such override", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn delete_override(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let id = id(&raw, "override")?;
    if !state.inner.schedules.delete_override(id).await? {
        return Err(ApiError::not_found(format!("no override {id}")));
    }
    tracing::info!(id, "override deleted");
    state.inner.events.changed(Topic::Overrides);
    Ok(StatusCode::NO_CONTENT)
}

/// Resume a zone's schedule (admin): end every override of the zone in force now. Future ones
/// are kept.
#[utoipa::path(delete, path = "/v1/overrides", operation_id = "resume_schedule", tag = "schedules",
    params(ZoneQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many were ended", body = OverridesEnded),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such zone", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ZoneQuery>,
) -> Result<axum::Json<OverridesEnded>, ApiError> {
    caller.require_admin()?;
    let zone = zone(&state, q.zone.as_deref())?;
    let ended = state.inner.schedules.resume(&zone, Timestamp::now()).await?;
    tracing::info!(zone = %zone, ended, "schedule resumed");
    state.inner.events.changed(Topic::Overrides);
    Ok(axum::Json(OverridesEnded { ended }))
}

/// What will be in force in a zone from `from` (default now) for `hours`, and why: each segment
/// names the winning rule and the rules it beat.
#[utoipa::path(get, path = "/v1/schedule/timeline", operation_id = "get_timeline", tag = "schedules",
    params(TimelineQuery),
    responses(
        (status = 200, description = "The segments, in order", body = Timeline),
        (status = 404, description = "No such zone", body = ErrorBody),
        (status = 422, description = "`hours` out of range, or the range past the supported dates", body = ErrorBody),
    ))]
pub(super) async fn timeline(
    State(state): State<AppState>,
    Query(q): Query<TimelineQuery>,
) -> Result<axum::Json<Timeline>, ApiError> {
    let zone = zone(&state, q.zone.as_deref())?;
    let hours = bounded("hours", q.hours, DEFAULT_TIMELINE_HOURS, &TIMELINE_HOURS)?;
    let from = q.from.unwrap_or_else(Timestamp::now);
    let to = from
        .checked_add(SignedDuration::from_hours(i64::from(hours)))
        .map_err(|_| ApiError::invalid("from is too far in the future"))?;
    Ok(axum::Json(schedule_of(&state, &zone)?.timeline(from, to)))
}
