//! The decision loop's settings, its algorithms and its decisions.

use axum::extract::State;
use hearth_proto::ErrorBody;
use hearth_proto::control::{
    ControlSettings, ControlView, DECISIONS_LIMIT, DEFAULT_DECISIONS_LIMIT, Decision,
    DecisionsQuery, PluginInfo,
};

use hearth_proto::zones::ZoneQuery;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body, Query, bounded};
use super::zones::zone;
use crate::control::{self, Settings};

/// A zone's settings in force and its current decision: what runs, why, on which sensors,
/// toward which target set by which rule.
#[utoipa::path(get, path = "/v1/control", operation_id = "get_control", tag = "control",
    params(ZoneQuery),
    responses(
        (status = 200, description = "The settings and the latest decision", body = ControlView),
        (status = 404, description = "No such zone", body = ErrorBody),
    ))]
pub(super) async fn view(
    State(state): State<AppState>,
    Query(q): Query<ZoneQuery>,
) -> Result<axum::Json<ControlView>, ApiError> {
    let zone = zone(&state, q.zone.as_deref())?;
    let settings = state.inner.zones.settings(&zone).unwrap_or_default();
    let decision = state.inner.controller.latest_in(&zone);
    Ok(axum::Json(ControlView { settings: settings.into(), decision: decision.map(Into::into) }))
}

/// Change a zone's settings (admin): mode, algorithm and its parameters, safety limits,
/// protection times. Fields left out take their defaults; the algorithm's parameters are
/// checked against its schema (`GET /v1/plugins`). The loop decides with them at once. The
/// default zone's protection times are the default plant's too; another zone's protect only
/// its own relays.
#[utoipa::path(put, path = "/v1/control/settings", operation_id = "set_control_settings", tag = "control",
    params(ZoneQuery),
    request_body = ControlSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored and in force, parameter defaults filled in", body = ControlSettings),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such zone", body = ErrorBody),
        (status = 422, description = "A field is out of range, an unknown algorithm or parameter", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn set_settings(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ZoneQuery>,
    Body(settings): Body<ControlSettings>,
) -> Result<axum::Json<ControlSettings>, ApiError> {
    caller.require_admin()?;
    let zone = zone(&state, q.zone.as_deref())?;
    let settings = control::check_settings(settings.into()).map_err(ApiError::invalid)?;
    if !state.inner.controller.set_settings(&zone, settings.clone()).await? {
        return Err(ApiError::not_found(format!("zone {:?} does not exist", zone.0)));
    }
    tracing::info!(zone = %zone, ?settings, "control settings changed");
    Ok(axum::Json(settings.into()))
}

/// The decision algorithms this engine offers, each with the JSON Schema of its parameters.
#[utoipa::path(get, path = "/v1/plugins", operation_id = "list_plugins", tag = "control",
    responses((status = 200, description = "The algorithms on offer", body = Vec<PluginInfo>)))]
pub(super) async fn plugins() -> axum::Json<Vec<PluginInfo>> {
    axum::Json(control::plugins())
}

/// A zone's recorded decisions, newest first. One is recorded whenever the outcome, its reason
/// code or the winning rule changes.
#[utoipa::path(get, path = "/v1/control/decisions", operation_id = "list_decisions", tag = "control",
    params(DecisionsQuery),
    responses(
        (status = 200, description = "The decisions, newest first", body = Vec<Decision>),
        (status = 404, description = "No such zone", body = ErrorBody),
        (status = 422, description = "`limit` out of range, or `from` not before `to`", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn decisions(
    State(state): State<AppState>,
    Query(q): Query<DecisionsQuery>,
) -> Result<axum::Json<Vec<Decision>>, ApiError> {
    let zone = zone(&state, q.zone.as_deref())?;
    let limit = bounded("limit", q.limit, DEFAULT_DECISIONS_LIMIT, &DECISIONS_LIMIT)?;
    if let (Some(from), Some(to)) = (q.from, q.to)
        && from >= to
    {
        return Err(ApiError::invalid("from must be before to"));
    }
    let decisions = state.inner.store.decisions(&zone, q.from, q.to, limit).await?;
    Ok(axum::Json(decisions.into_iter().map(Into::into).collect()))
}

// The engine's settings and decisions are its own types (`control/model.rs`); these are the
// only conversions to and from the contract's. Their fields are the same today: each pair is
// converted field by field, both ways, from one list.
macro_rules! same_fields {
    ($a:ty, $b:ty, $($field:ident),+ $(,)?) => {
        impl From<$a> for $b {
            fn from(x: $a) -> Self {
                Self { $($field: x.$field),+ }
            }
        }
        impl From<$b> for $a {
            fn from(x: $b) -> Self {
                Self { $($field: x.$field),+ }
            }
        }
    };
}

same_fields!(
    Settings,
    ControlSettings,
    mode,
    algorithm,
    params,
    frost_floor_c,
    max_ceiling_c,
    min_on_s,
    min_off_s,
    changeover_s,
    auto_deadband_c,
    outlier_c,
    sensor_loss_duty_pct,
);

same_fields!(
    control::Decision,
    Decision,
    at,
    mode,
    algorithm,
    heat,
    cool,
    effective_temp_c,
    heat_setpoint_c,
    cool_setpoint_c,
    rule,
    reason_code,
    reason,
    sensor_source,
    sensors,
    expected_at,
    outlook,
    held_until,
);
