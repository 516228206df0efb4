//! Relay registration, the relay registry, function assignment, and the agent list.

use axum::extract::{Path, State};
use hearth_proto::agents::AgentInfo;
use hearth_proto::relays::{
    FunctionAssignment, RelayInfo, RelayPath, RelayRegistration, RelayRegistrationAck,
};
use hearth_proto::{ErrorBody, Timestamp};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body};
use crate::store::{RelayRow, from_millis, millis};

/// Most outputs one relay agent may register.
const MAX_OUTPUTS: usize = 32;

/// A relay agent announces its URL and outputs (on start and whenever it finds the engine).
#[utoipa::path(post, path = "/v1/relays/register", tag = "relays",
    request_body = RelayRegistration,
    security(("bearer" = [])),
    responses(
        (status = 200, body = RelayRegistrationAck),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Wrong credential, or another host's", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
    ))]
pub(super) async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Body(reg): Body<RelayRegistration>,
) -> Result<axum::Json<RelayRegistrationAck>, ApiError> {
    hearth_common::host_id::validate(&reg.host_id)
        .map_err(|e| ApiError::invalid(format!("host_id field: {e}")))?;
    let url_ok = (reg.url.starts_with("http://") || reg.url.starts_with("https://"))
        && reg.url.len() <= 256
        && !reg.url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !url_ok {
        return Err(ApiError::invalid("url field must be an http:// or https:// URL"));
    }
    if reg.outputs.is_empty() || reg.outputs.len() > MAX_OUTPUTS {
        return Err(ApiError::invalid(format!(
            "outputs field must list 1 to {MAX_OUTPUTS} outputs"
        )));
    }
    for o in &reg.outputs {
        if hearth_common::host_id::validate(&o.id).is_err() || o.name.len() > 64 {
            return Err(ApiError::invalid(format!(
                "output id {:?} must be 1 to 64 of [A-Za-z0-9_-], name at most 64 bytes",
                o.id
            )));
        }
    }
    caller.require_host(&reg.host_id)?;
    let now = Timestamp::now();
    let offset = reg.agent_time.map(|t| t.duration_since(now).as_millis() as i64);
    let before = state.inner.store.relays().await?;
    state
        .inner
        .store
        .register_relays(
            &reg.host_id,
            reg.url.trim_end_matches('/'),
            &reg.outputs,
            millis(now),
            offset,
        )
        .await?;
    tracing::info!(host_id = %reg.host_id, url = %reg.url, outputs = reg.outputs.len(), "relay agent registered");
    for o in &reg.outputs {
        let was = before.iter().find(|r| r.host_id == reg.host_id && r.output_id == o.id);
        if was.map(|r| r.state) != Some(o.state) {
            state.inner.events.publish(hearth_proto::events::Event::Relay {
                host_id: reg.host_id.clone(),
                output_id: o.id.clone(),
                state: o.state,
            });
        }
    }
    // An agent registers at once after an output fell back to its safe state by itself: the
    // engine was silent (down, unreachable, wedged) for a whole lease. Say so.
    for o in &reg.outputs {
        if let Some(fallback) = &o.last_fallback {
            tracing::warn!(
                host_id = %reg.host_id,
                output = %o.id,
                reason = ?fallback.reason,
                s_ago = fallback.s_ago,
                "the relay agent returned this output to its safe state by itself"
            );
        }
    }
    state.inner.controller.relays_changed();
    Ok(axum::Json(RelayRegistrationAck {
        status: "ok".into(),
        engine_id: state.inner.engine_id.clone(),
    }))
}

fn info(r: RelayRow) -> RelayInfo {
    RelayInfo {
        function: r.effective_function(),
        host_id: r.host_id,
        output_id: r.output_id,
        name: r.name,
        url: r.url.unwrap_or_default(),
        function_hint: r.function_hint,
        state: r.state,
        updated_at: from_millis(r.updated),
        reported: r.status,
        command_error: r.command_error,
    }
}

/// Every registered relay output.
#[utoipa::path(get, path = "/v1/relays", tag = "relays",
    responses((status = 200, body = Vec<RelayInfo>), (status = 503, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<RelayInfo>>, ApiError> {
    Ok(axum::Json(state.inner.store.relays().await?.into_iter().map(info).collect()))
}

/// Assign what an output drives (admin). `null` falls back to the agent's hint.
#[utoipa::path(put, path = "/v1/relays/{host_id}/{output_id}/function", tag = "relays",
    params(RelayPath),
    request_body = FunctionAssignment,
    security(("bearer" = [])),
    responses(
        (status = 200, body = RelayInfo),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such output", body = ErrorBody),
        (status = 422, description = "Unknown function", body = ErrorBody),
    ))]
pub(super) async fn assign_function(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RelayPath>,
    Body(body): Body<FunctionAssignment>,
) -> Result<axum::Json<RelayInfo>, ApiError> {
    caller.require_admin()?;
    let store = &state.inner.store;
    if !store.set_relay_function(&path.host_id, &path.output_id, body.function).await? {
        return Err(ApiError::not_found(format!(
            "no output {:?} on relay agent {:?}",
            path.output_id, path.host_id
        )));
    }
    state.inner.controller.relays_changed();
    let row = store
        .relays()
        .await?
        .into_iter()
        .find(|r| r.host_id == path.host_id && r.output_id == path.output_id)
        .ok_or_else(|| ApiError::not_found("output removed meanwhile"))?;
    Ok(axum::Json(info(row)))
}

/// Every agent the engine has heard from, with online state and clock offset.
#[utoipa::path(get, path = "/v1/agents", tag = "agents",
    responses((status = 200, body = Vec<AgentInfo>), (status = 503, body = ErrorBody)))]
pub(super) async fn agents(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<AgentInfo>>, ApiError> {
    let now = Timestamp::now();
    let offline_after = state.inner.offline_after;
    let rows = state.inner.store.agents().await?;
    Ok(axum::Json(
        rows.into_iter()
            .map(|a| {
                let last_seen = from_millis(a.last_seen);
                AgentInfo {
                    host_id: a.host_id,
                    kind: a.kind,
                    url: a.url,
                    online: now.duration_since(last_seen) <= offline_after,
                    last_seen,
                    clock_offset_s: a.clock_offset_ms.map(|ms| ms as f64 / 1000.0),
                    clock_skewed: a
                        .clock_offset_ms
                        .is_some_and(|ms| state.inner.clock.is_skewed_ms(ms)),
                    misdated_readings: u64::try_from(a.misdated).unwrap_or(0),
                    last_misdated: a.misdated_at.map(from_millis),
                }
            })
            .collect(),
    ))
}
