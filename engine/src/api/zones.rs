//! The house's configuration: its zones and plants (`/v1/zones`, `/v1/plants/{plant_id}`), and
//! the `zone` every per-zone route takes (absent: the default zone).
//!
//! A change is checked field by field here (names, ids, relay ids, bounds), then whole by
//! `zones::check_house` in `Zones`: a house that cannot work is 422 `invalid_house` naming every
//! problem, and nothing changes.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_proto::events::Topic;
use hearth_proto::sensors::MAX_SENSOR_ID_CHARS;
use hearth_proto::zones::{
    DeleteZoneQuery, HouseConfig, MAX_ID_CHARS, MAX_NAME_CHARS, MAX_PLANTS, MAX_RUN_S, MAX_VALVES,
    MAX_ZONE_SENSORS, MAX_ZONES, NewPlant, NewZone, Plant, PlantKind as WireKind, Zone,
};
use hearth_proto::{ErrorBody, ErrorCode, Timestamp};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body, Query};
use crate::store::millis;
use crate::zones::live::ZoneError;
use crate::zones::{PlantConfig, PlantId, PlantKind, RelayId, ZoneConfig, ZoneId, ZoneOutputs};

impl From<ZoneError> for ApiError {
    fn from(e: ZoneError) -> Self {
        let message = e.to_string();
        match e {
            ZoneError::NotFound(_) => Self::not_found(message),
            ZoneError::DefaultZone => Self::new(StatusCode::CONFLICT, ErrorCode::Conflict, message),
            ZoneError::NotEmpty(_) => {
                Self::new(StatusCode::CONFLICT, ErrorCode::ZoneNotEmpty, message)
            }
            ZoneError::Problems(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidHouse, message)
            }
            ZoneError::Invalid(_) => Self::invalid(message),
            ZoneError::Storage(e) => e.into(),
        }
    }
}

/// The zone a request names (`?zone=` or a body's `zone`): the default zone when absent; 404
/// naming it when no such zone exists.
pub(super) fn zone(state: &AppState, raw: Option<&str>) -> Result<ZoneId, ApiError> {
    let Some(raw) = raw else { return Ok(ZoneId::default_zone()) };
    let id = ZoneId::from(raw);
    match state.inner.zones.stored().zone(&id) {
        Some(_) => Ok(id),
        None => Err(ApiError::not_found(format!("zone {raw:?} does not exist"))),
    }
}

/// `raw` as a zone or plant id, or 422 naming `field`.
fn id(raw: &str, field: &str) -> Result<String, ApiError> {
    let ok = (1..=MAX_ID_CHARS).contains(&raw.len())
        && raw.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "{field} must be 1 to {MAX_ID_CHARS} characters of a-z, 0-9, _ and -, starting with \
             a letter or a digit, got {raw:?}"
        )))
    }
}

fn name(raw: &str) -> Result<String, ApiError> {
    let chars = raw.chars().count();
    if !(1..=MAX_NAME_CHARS).contains(&chars) || raw.trim().is_empty() {
        return Err(ApiError::invalid(format!(
            "name field must be 1 to {MAX_NAME_CHARS} characters, not blank"
        )));
    }
    if raw.chars().any(char::is_control) {
        return Err(ApiError::invalid("name field must not hold control characters"));
    }
    Ok(raw.to_owned())
}

/// A relay id: `function:<function>` or `host_id/output_id`.
fn relay(raw: &str, field: &str) -> Result<RelayId, ApiError> {
    let part = |s: &str| {
        (1..=64).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let id = RelayId::from(raw);
    let ok = id.as_group().is_some()
        || raw.split_once('/').is_some_and(|(host, output)| part(host) && part(output));
    if ok {
        Ok(id)
    } else {
        Err(ApiError::invalid(format!(
            "{field} field must be a relay id (host_id/output_id, or function:heat, \
             function:cool, ...), got {raw:?}"
        )))
    }
}

fn opt_relay(raw: Option<&String>, field: &str) -> Result<Option<RelayId>, ApiError> {
    raw.map(|r| relay(r, field)).transpose()
}

/// A list of at most `max` items, none twice (compared as `key` says).
fn items<T>(
    items: &[String],
    field: &str,
    max: usize,
    key: impl Fn(&str) -> String,
    each: impl Fn(&str, &str) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    if items.len() > max {
        return Err(ApiError::invalid(format!(
            "{field} field holds {} items, at most {max} allowed",
            items.len()
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{field}[{i}]");
        if !seen.insert(key(item)) {
            return Err(ApiError::invalid(format!("{path} names {item:?} a second time")));
        }
        out.push(each(item, &path)?);
    }
    Ok(out)
}

fn sensor(raw: &str, path: &str) -> Result<String, ApiError> {
    if (1..=MAX_SENSOR_ID_CHARS).contains(&raw.chars().count())
        && !raw.chars().any(char::is_control)
    {
        Ok(raw.to_owned())
    } else {
        Err(ApiError::invalid(format!(
            "{path} field must be a sensor id of 1 to {MAX_SENSOR_ID_CHARS} characters"
        )))
    }
}

fn zone_answer(z: &ZoneConfig, rules: u64, overrides: u64) -> Zone {
    let text = |r: &Option<RelayId>| r.as_ref().map(|r| r.0.clone());
    Zone {
        id: z.id.0.clone(),
        name: z.name.clone(),
        sensors: z.sensors.clone(),
        valves: z.outputs.valves.iter().map(|v| v.0.clone()).collect(),
        heat_relay: text(&z.outputs.heat_relay),
        cool_relay: text(&z.outputs.cool_relay),
        default: z.id.is_default(),
        rules,
        overrides,
    }
}

fn plant_answer(p: &PlantConfig) -> Plant {
    let text = |r: &Option<RelayId>| r.as_ref().map(|r| r.0.clone());
    Plant {
        id: p.id.0.clone(),
        name: p.name.clone(),
        kind: match p.kind {
            PlantKind::Heat => WireKind::Heat,
            PlantKind::Cool => WireKind::Cool,
            PlantKind::HeatCool => WireKind::HeatCool,
        },
        heat_relay: text(&p.heat_relay),
        cool_relay: text(&p.cool_relay),
        zones: p.zones.iter().map(|z| z.0.clone()).collect(),
        min_on_s: p.min_on_s,
        min_off_s: p.min_off_s,
        changeover_s: p.changeover_s,
        max_run_s: p.max_run_s,
        valve_delay_s: p.valve_delay_s,
        overrun_s: p.overrun_s,
        min_calling_zones: p.min_calling_zones,
        bypass_zone: p.bypass_zone.as_ref().map(|z| z.0.clone()),
    }
}

async fn zone_with_counts(state: &AppState, z: &ZoneConfig) -> Result<Zone, ApiError> {
    let held = state.inner.store.zone_contents(&z.id, millis(Timestamp::now())).await?;
    Ok(zone_answer(z, held.rules, held.overrides))
}

/// The house as configured: every zone (the default one first) with how many rules and
/// overrides it has, and every plant.
#[utoipa::path(get, path = "/v1/zones", operation_id = "get_zones", tag = "zones",
    responses(
        (status = 200, description = "The zones and plants", body = HouseConfig),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<axum::Json<HouseConfig>, ApiError> {
    let house = state.inner.zones.stored();
    // One query for every zone's counts, however many zones.
    let held = state.inner.store.zones_contents(millis(Timestamp::now())).await?;
    let zones = house
        .zones
        .iter()
        .map(|z| {
            let counts = held.get(&z.id).copied().unwrap_or_default();
            zone_answer(z, counts.rules, counts.overrides)
        })
        .collect();
    Ok(axum::Json(HouseConfig { zones, plants: house.plants.iter().map(plant_answer).collect() }))
}

/// Create or replace a zone (admin). A new zone gets the default zone's control settings and
/// default target, no rules, and is served by the plants that serve the default zone unless it
/// has relays of its own (a zone must be served, and a plant cannot name a zone before it
/// exists). The whole resulting house is checked: any problem is 422 `invalid_house` naming
/// each, and nothing changes.
#[utoipa::path(put, path = "/v1/zones/{zone_id}", operation_id = "put_zone", tag = "zones",
    params(("zone_id" = String, Path, description = "The zone id")),
    request_body = NewZone,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Zone),
        (status = 201, description = "Created", body = Zone),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 409, description = "The house has the most zones it may have", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid (`invalid_field`, \
            `missing_field`), or the resulting house cannot work (`invalid_house`, naming every \
            problem)", body = ErrorBody,
            example = json!({"status": "error", "code": "invalid_house",
                "error": "valve demo-relay/valve-1 is assigned to zones Living and Bedroom"})),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn put_zone(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Body(body): Body<NewZone>,
) -> Result<(StatusCode, axum::Json<Zone>), ApiError> {
    caller.require_admin()?;
    let zone_id = ZoneId(id(&raw, "zone_id")?);
    let name = name(&body.name)?;
    let sensors =
        items(&body.sensors, "sensors", MAX_ZONE_SENSORS, str::to_ascii_lowercase, sensor)?;
    let outputs = ZoneOutputs {
        valves: items(&body.valves, "valves", MAX_VALVES, str::to_owned, relay)?,
        heat_relay: opt_relay(body.heat_relay.as_ref(), "heat_relay")?,
        cool_relay: opt_relay(body.cool_relay.as_ref(), "cool_relay")?,
    };
    let house = state.inner.zones.stored();
    if house.zone(&zone_id).is_none() && house.zones.len() >= MAX_ZONES {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            format!("a house has at most {MAX_ZONES} zones"),
        ));
    }
    let created = state.inner.zones.put_zone(zone_id.clone(), name, sensors, outputs).await?;
    // A new zone has a schedule (its default target) from now on.
    state.inner.schedules.reload().await?;
    tracing::info!(zone = %zone_id, created, "zone stored");
    let house = state.inner.zones.stored();
    let z = house.zone(&zone_id).ok_or_else(|| ZoneError::NotFound(zone_id.to_string()))?;
    let answer = zone_with_counts(&state, z).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(answer)))
}

/// Delete a zone (admin); the plants that served it no longer do. A zone that still has valves
/// is refused (422 `invalid_house`, naming them): move them to another zone or unassign them
/// first. A zone that still has rules or overrides is deleted only with `move_to`, which moves
/// them (not its valves) to that zone in the same transaction.
#[utoipa::path(delete, path = "/v1/zones/{zone_id}", operation_id = "delete_zone", tag = "zones",
    params(("zone_id" = String, Path, description = "The zone id"), DeleteZoneQuery),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such zone, or no zone `move_to`", body = ErrorBody),
        (status = 409, description = "The default zone (`conflict`), or a zone that still has \
            rules or overrides and no `move_to` (`zone_not_empty`, naming the counts)",
            body = ErrorBody),
        (status = 422, description = "`move_to` names the zone deleted (`invalid_field`), the \
            zone still has valves (`invalid_house`, naming them: move or unassign them first), or \
            the rest of the house cannot work (`invalid_house`: a plant would serve no zone, or \
            bypass through it)", body = ErrorBody,
            example = json!({"status": "error", "code": "invalid_house",
                "error": "zone Bath still has valves demo-relay/valve-3: move them to another \
                    zone or unassign them first: deleting a zone never moves its valves"})),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn delete_zone(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Query(q): Query<DeleteZoneQuery>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let zone_id = ZoneId::from(raw.as_str());
    let move_to = q.move_to.as_deref().map(ZoneId::from);
    match state.inner.zones.delete_zone(&zone_id, move_to.as_ref()).await {
        Err(ZoneError::NotEmpty(held)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::ZoneNotEmpty,
                format!(
                    "zone {raw:?} still has {} rules and {} overrides: name a zone to move \
                     them to (move_to)",
                    held.rules, held.overrides
                ),
            ));
        }
        other => other?,
    }
    state.inner.schedules.reload().await?;
    if move_to.is_some() {
        state.inner.events.changed(Topic::Schedules);
        state.inner.events.changed(Topic::Overrides);
    }
    tracing::info!(zone = %zone_id, move_to = ?move_to.map(|z| z.0), "zone deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Create or replace a plant (admin). The whole resulting house is checked: any problem is 422
/// `invalid_house` naming each, and nothing changes.
#[utoipa::path(put, path = "/v1/plants/{plant_id}", operation_id = "put_plant", tag = "zones",
    params(("plant_id" = String, Path, description = "The plant id")),
    request_body = NewPlant,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replaced", body = Plant),
        (status = 201, description = "Created", body = Plant),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 409, description = "The house has the most plants it may have", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid (`invalid_field`, \
            `missing_field`), or the resulting house cannot work (`invalid_house`, naming every \
            problem: a plant serving no zone or an unknown one, a relay used twice, ...)",
            body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn put_plant(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    Body(body): Body<NewPlant>,
) -> Result<(StatusCode, axum::Json<Plant>), ApiError> {
    caller.require_admin()?;
    let plant_id = PlantId(id(&raw, "plant_id")?);
    let zones = items(&body.zones, "zones", MAX_ZONES, str::to_owned, |z, path| {
        id(z, &format!("{path} field")).map(ZoneId)
    })?;
    if let Some(max) = body.max_run_s.filter(|m| !MAX_RUN_S.contains(m)) {
        return Err(ApiError::invalid(format!(
            "max_run_s field must be between {} and {} or null, got {max}",
            MAX_RUN_S.start(),
            MAX_RUN_S.end()
        )));
    }
    if !(1..=MAX_ZONES).contains(&(body.min_calling_zones as usize)) {
        return Err(ApiError::invalid(format!(
            "min_calling_zones field must be between 1 and {MAX_ZONES}, got {}",
            body.min_calling_zones
        )));
    }
    let plant = PlantConfig {
        id: plant_id.clone(),
        name: name(&body.name)?,
        kind: match body.kind {
            WireKind::Heat => PlantKind::Heat,
            WireKind::Cool => PlantKind::Cool,
            WireKind::HeatCool => PlantKind::HeatCool,
        },
        heat_relay: opt_relay(body.heat_relay.as_ref(), "heat_relay")?,
        cool_relay: opt_relay(body.cool_relay.as_ref(), "cool_relay")?,
        min_on_s: body.min_on_s,
        min_off_s: body.min_off_s,
        changeover_s: body.changeover_s,
        max_run_s: body.max_run_s,
        zones,
        valve_delay_s: body.valve_delay_s,
        overrun_s: body.overrun_s,
        min_calling_zones: body.min_calling_zones,
        bypass_zone: body
            .bypass_zone
            .as_deref()
            .map(|z| id(z, "bypass_zone field"))
            .transpose()?
            .map(ZoneId),
    };
    let house = state.inner.zones.stored();
    if !house.plants.iter().any(|p| p.id == plant_id) && house.plants.len() >= MAX_PLANTS {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            format!("a house has at most {MAX_PLANTS} plants"),
        ));
    }
    let created = state.inner.zones.put_plant(plant.clone()).await?;
    tracing::info!(plant = %plant_id, created, "plant stored");
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(plant_answer(&plant))))
}

/// Delete a plant (admin). The last plant serving a zone may go only if the zone has relays of
/// its own (else 422 `invalid_house`: the zone would be served by nothing).
#[utoipa::path(delete, path = "/v1/plants/{plant_id}", operation_id = "delete_plant", tag = "zones",
    params(("plant_id" = String, Path, description = "The plant id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such plant", body = ErrorBody),
        (status = 422, description = "The rest of the house cannot work (`invalid_house`)",
            body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn delete_plant(
    State(state): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let plant_id = PlantId::from(raw.as_str());
    state.inner.zones.delete_plant(&plant_id).await?;
    tracing::info!(plant = %plant_id, "plant deleted");
    Ok(StatusCode::NO_CONTENT)
}
