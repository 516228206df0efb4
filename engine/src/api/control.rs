//! The decision loop's settings and decisions.

use axum::extract::State;
use hearth_proto::ErrorBody;
use hearth_proto::control::{ControlSettings, ControlView, Decision};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body, Query};

/// The settings in force and the latest decision (with its reason).
#[utoipa::path(get, path = "/v1/control", tag = "control", responses((status = 200, body = ControlView)))]
pub(super) async fn view(State(state): State<AppState>) -> axum::Json<ControlView> {
    let c = &state.inner.controller;
    axum::Json(ControlView { settings: c.settings(), decision: c.latest() })
}

fn validate(s: &ControlSettings) -> Result<(), ApiError> {
    if !(0.0..=15.0).contains(&s.frost_floor_c) {
        return Err(ApiError::invalid("frost_floor_c field must be between 0 and 15 °C"));
    }
    if !(20.0..=45.0).contains(&s.max_ceiling_c) {
        return Err(ApiError::invalid("max_ceiling_c field must be between 20 and 45 °C"));
    }
    if s.min_on_s > 3600 || s.min_off_s > 3600 {
        return Err(ApiError::invalid(
            "min_on_s and min_off_s fields must be between 0 and 3600 s",
        ));
    }
    Ok(())
}

/// Change the settings (admin). The loop decides with them at once.
#[utoipa::path(put, path = "/v1/control/settings", tag = "control",
    request_body = ControlSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored and in force", body = ControlSettings),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 422, description = "A field is missing or out of range", body = ErrorBody),
    ))]
pub(super) async fn set_settings(
    State(state): State<AppState>,
    caller: Caller,
    Body(settings): Body<ControlSettings>,
) -> Result<axum::Json<ControlSettings>, ApiError> {
    caller.require_admin()?;
    validate(&settings)?;
    state.inner.controller.set_settings(settings.clone()).await?;
    tracing::info!(?settings, "control settings changed");
    Ok(axum::Json(settings))
}

/// Query of `GET /v1/control/decisions`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct DecisionsQuery {
    /// How many (1..=1000, default 50).
    limit: Option<u32>,
}

/// Recorded decisions, newest first (one is recorded whenever the outcome or its reason changes).
#[utoipa::path(get, path = "/v1/control/decisions", tag = "control",
    params(DecisionsQuery),
    responses((status = 200, body = Vec<Decision>), (status = 422, body = ErrorBody)))]
pub(super) async fn decisions(
    State(state): State<AppState>,
    Query(q): Query<DecisionsQuery>,
) -> Result<axum::Json<Vec<Decision>>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit must be between 1 and 1000"));
    }
    Ok(axum::Json(state.inner.store.decisions(None, None, limit).await?))
}
