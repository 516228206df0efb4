//! The house as the loop last planned it: every zone's decision and valves, every plant.

use axum::extract::State;
use axum::http::StatusCode;
use hearth_proto::zones::HouseStatus;
use hearth_proto::{ErrorBody, ErrorCode};

use super::AppState;
use super::error::ApiError;

/// The latest house plan: per zone its decision, what it calls for and its valves (open or
/// closed, and why); per plant whether it heats or cools, why, and until when a protection
/// holds it. Published as the `house` event whenever any of it changes.
#[utoipa::path(get, path = "/v1/house", operation_id = "get_house", tag = "control",
    responses(
        (status = 200, description = "The latest house plan", body = HouseStatus),
        (status = 503, description = "The loop has not planned yet (moments after a start)", body = ErrorBody),
    ))]
pub(super) async fn view(
    State(state): State<AppState>,
) -> Result<axum::Json<HouseStatus>, ApiError> {
    state.inner.controller.house().map(axum::Json).ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            "the decision loop has not planned the house yet; try again in a moment",
        )
    })
}
