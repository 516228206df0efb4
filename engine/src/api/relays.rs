//! Relay registration, the relay registry, function assignment, and the agent list.

use axum::extract::{Path, State};
use hearth_proto::agents::{AgentInfo, AgentKind};
use hearth_proto::fallback::{FallbackProgram, OutputFallbackChoice, OutputProgram, SensorSource};
use hearth_proto::relays::{
    FunctionAssignment, MAX_OUTPUT_NAME_CHARS, MAX_OUTPUTS, MAX_URL_CHARS, RelayInfo, RelayPath,
    RelayRegistration, RelayRegistrationAck, SIMULATED_BACKEND,
};
use hearth_proto::{ErrorBody, Timestamp};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body};
use crate::store::{Registration, RelayRow, from_millis, millis};

/// A relay agent announces its URL and outputs (on start and whenever it finds the engine).
#[utoipa::path(post, path = "/v1/relays/register", operation_id = "register_relay_agent", tag = "relays",
    request_body = RelayRegistration,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Registered", body = RelayRegistrationAck),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Wrong credential, another host's, or a device key that \
            may not register relays (a sensor key)", body = ErrorBody),
        (status = 422, description = "A field is missing or invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn register(
    State(state): State<AppState>,
    caller: Caller,
    Body(reg): Body<RelayRegistration>,
) -> Result<axum::Json<RelayRegistrationAck>, ApiError> {
    hearth_common::host_id::validate(&reg.host_id)
        .map_err(|e| ApiError::invalid(format!("host_id field: {e}")))?;
    let url_ok = (reg.url.starts_with("http://") || reg.url.starts_with("https://"))
        && reg.url.chars().count() <= MAX_URL_CHARS
        && !reg.url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !url_ok {
        return Err(ApiError::invalid(format!(
            "url field must be an http:// or https:// URL of at most {MAX_URL_CHARS} characters"
        )));
    }
    if reg.outputs.is_empty() || reg.outputs.len() > MAX_OUTPUTS {
        return Err(ApiError::invalid(format!(
            "outputs field must list 1 to {MAX_OUTPUTS} outputs"
        )));
    }
    for o in &reg.outputs {
        if hearth_common::host_id::validate(&o.id).is_err()
            || o.name.chars().count() > MAX_OUTPUT_NAME_CHARS
        {
            return Err(ApiError::invalid(format!(
                "output id {:?} must be 1 to {} of [A-Za-z0-9_-], name at most \
                 {MAX_OUTPUT_NAME_CHARS} characters",
                o.id,
                hearth_proto::agents::MAX_HOST_ID_CHARS
            )));
        }
    }
    if let Some(backend) = &reg.backend
        && (backend.is_empty()
            || backend.len() > 32
            || !backend.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(ApiError::invalid(
            "backend field must be 1 to 32 of [A-Za-z0-9_-], e.g. \"rppal\" or \"simulated\"",
        ));
    }
    let key_role = caller.require_agent(&state, &reg.host_id, AgentKind::Relay)?;
    let now = Timestamp::now();
    let offset = reg.agent_time.map(|t| t.duration_since(now));
    if let Some(offset) = offset {
        // Logged when the agent's clock becomes and stops being wrong, like a sensor agent's.
        state.inner.clock.observe_relay(&reg.host_id, offset);
    }
    let before = state.inner.store.relays().await?;
    state
        .inner
        .store
        .register_relays(&Registration {
            host_id: &reg.host_id,
            url: reg.url.trim_end_matches('/'),
            backend: reg.backend.as_deref(),
            outputs: &reg.outputs,
            now: millis(now),
            clock_offset_ms: offset.map(|o| o.as_millis() as i64),
            key_role,
        })
        .await?;
    tracing::info!(host_id = %reg.host_id, url = %reg.url, outputs = reg.outputs.len(),
        backend = reg.backend.as_deref().unwrap_or("unknown"), "relay agent registered");
    if reg.backend.as_deref() == Some(SIMULATED_BACKEND) {
        tracing::warn!(host_id = %reg.host_id,
            "this relay agent's outputs are SIMULATED: commanding them switches no equipment");
    }
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
    if state.inner.controller.fallbacks.note(&reg.host_id, reg.fallback.as_ref(), now) {
        state.inner.events.changed(hearth_proto::events::Topic::Relays);
    }
    state.inner.controller.relays_changed();
    let outputs: Vec<_> = reg.outputs.iter().map(|o| (o.id.as_str(), o.function_hint)).collect();
    let fallback = crate::fallback::program_for(
        &state.inner.store,
        &state.inner.site,
        &state.inner.controller.settings(),
        state.inner.controller.lease_s(),
        &reg.host_id,
        &outputs,
    )
    .await;
    Ok(axum::Json(RelayRegistrationAck {
        status: "ok".into(),
        engine_id: state.inner.engine_id.clone(),
        fallback: Some(fallback),
        pending: super::manage::pending(&state, &reg.host_id, AgentKind::Relay).await,
    }))
}

/// What each output does in its agent's fallback program, for [`info`].
type InForce = std::collections::HashMap<(String, String), (OutputProgram, bool)>;

async fn in_force(state: &AppState, relays: &[RelayRow]) -> InForce {
    let settings = state.inner.controller.settings();
    let lease_s = state.inner.controller.lease_s();
    crate::fallback::in_force(&state.inner.store, &settings, lease_s, relays).await
}

fn info(state: &AppState, r: RelayRow, now: Timestamp, in_force: &InForce) -> RelayInfo {
    let updated_at = from_millis(r.updated);
    let fallback = in_force.get(&(r.host_id.clone(), r.output_id.clone())).cloned();
    RelayInfo {
        fallback_chosen: fallback.as_ref().is_some_and(|f| f.1),
        fallback_program: fallback.map(|f| f.0),
        agent_fallback: state.inner.controller.fallbacks.get(&r.host_id),
        function: r.effective_function(),
        host_id: r.host_id,
        output_id: r.output_id,
        name: r.name,
        url: r.url.unwrap_or_default(),
        function_hint: r.function_hint,
        state: r.state,
        updated_at,
        reported: r.status,
        command_error: r.command_error,
        age_s: now.duration_since(updated_at).as_secs_f64().max(0.0),
        agent_reachable: r.unreachable_since.is_none(),
        agent_unreachable_since: r.unreachable_since.map(from_millis),
        simulated: r.backend.as_deref() == Some(SIMULATED_BACKEND),
        backend: r.backend,
    }
}

/// Every registered relay output.
#[utoipa::path(get, path = "/v1/relays", operation_id = "list_relays", tag = "relays",
    responses(
        (status = 200, description = "Every registered output", body = Vec<RelayInfo>),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
) -> Result<axum::Json<Vec<RelayInfo>>, ApiError> {
    let now = Timestamp::now();
    let relays = state.inner.store.relays().await?;
    let in_force = in_force(&state, &relays).await;
    Ok(axum::Json(relays.into_iter().map(|r| info(&state, r, now, &in_force)).collect()))
}

/// Assign what an output drives (admin). `null` falls back to the agent's hint.
#[utoipa::path(put, path = "/v1/relays/{host_id}/{output_id}/function", operation_id = "assign_relay_function", tag = "relays",
    params(RelayPath),
    request_body = FunctionAssignment,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The output with its new function", body = RelayInfo),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such output", body = ErrorBody),
        (status = 422, description = "Unknown function", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
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
        return Err(no_output(&path));
    }
    state.inner.controller.relays_changed();
    let relays = store.relays().await?;
    let in_force = in_force(&state, &relays).await;
    let row = relays
        .into_iter()
        .find(|r| r.host_id == path.host_id && r.output_id == path.output_id)
        .ok_or_else(|| ApiError::not_found("output removed meanwhile"))?;
    Ok(axum::Json(info(&state, row, Timestamp::now(), &in_force)))
}

fn no_output(path: &RelayPath) -> ApiError {
    ApiError::not_found(format!("no output {:?} on relay agent {:?}", path.output_id, path.host_id))
}

/// Choose what an output does in its relay agent's fallback program (admin): `frost` (a
/// setpoint from a sensor the agent reads itself, with a blind duty while it reads nothing),
/// `blind_duty`, or `off`; `null` returns to the default (heat: frost at the frost floor; the
/// rest off). A frost program may read a sensor agent of the site on the LAN
/// (`{"kind": "sensor_agent", "url": "http://10.0.0.5:8082", "host": "hall", "id": "28-…"}`,
/// its status listener): the engine fills in that sensor agent's read token and refuses one
/// sent by the client. Answers the agent's whole program as it now stands (read tokens
/// withheld); the control loop hands it to the agent at its next lease renewal.
#[utoipa::path(put, path = "/v1/relays/{host_id}/{output_id}/fallback", operation_id = "set_relay_fallback", tag = "relays",
    params(RelayPath),
    request_body = OutputFallbackChoice,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The agent's fallback program with the choice", body = FallbackProgram),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 404, description = "No such output", body = ErrorBody),
        (status = 422, description = "A field is missing or out of range (named, e.g. \
            `program.blind.period_s`); a `sensor_agent` sensor with a URL that is not plain \
            http or has user info (`program.sensor.url`), a sensor its host does not report \
            (`program.sensor.id`), or a token (`program.sensor.token`)", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn set_fallback(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<RelayPath>,
    Body(body): Body<OutputFallbackChoice>,
) -> Result<axum::Json<FallbackProgram>, ApiError> {
    caller.require_admin()?;
    let store = &state.inner.store;
    if let Some(program) = &body.program {
        program.check("program").map_err(ApiError::invalid)?;
        if *program == OutputProgram::On {
            let relays = store.relays().await?;
            let row =
                relays.iter().find(|r| r.host_id == path.host_id && r.output_id == path.output_id);
            let function = row.and_then(crate::store::RelayRow::effective_function);
            // Held on without a thermostat is safe for a valve, never for a boiler or a fan.
            if row.is_some() && function != Some(hearth_proto::relays::RelayFunction::Valve) {
                return Err(ApiError::invalid(
                    "program.mode: on is only for outputs whose function is valve (a zone \
                     valve or damper held open)",
                ));
            }
        }
        if let OutputProgram::Frost {
            sensor: Some(SensorSource::SensorAgent { host, id, token, .. }),
            ..
        } = program
        {
            check_sensor_agent(store, host, id, token.is_some()).await?;
        }
    }
    if !store.set_relay_fallback(&path.host_id, &path.output_id, body.program.as_ref()).await? {
        return Err(no_output(&path));
    }
    state.inner.controller.relays_changed();
    let relays = store.relays().await?;
    let outputs: Vec<_> = relays
        .iter()
        .filter(|r| r.host_id == path.host_id)
        .map(|r| (r.output_id.as_str(), r.function_hint))
        .collect();
    let program = crate::fallback::program_for(
        store,
        &state.inner.site,
        &state.inner.controller.settings(),
        state.inner.controller.lease_s(),
        &path.host_id,
        &outputs,
    )
    .await;
    Ok(axum::Json(crate::fallback::without_tokens(program)))
}

/// A `sensor_agent` source of an admin's choice: no token (the engine derives it), and a sensor
/// its host reports, so a typo is a 422 now rather than a blind duty when the engine is lost.
async fn check_sensor_agent(
    store: &crate::store::Store,
    host: &str,
    id: &str,
    token: bool,
) -> Result<(), ApiError> {
    if token {
        return Err(ApiError::invalid(
            "program.sensor.token must be left out: the engine fills in the sensor agent's \
             read token",
        ));
    }
    let sensors = store.sensors().await?;
    if !sensors.iter().any(|s| s.host_id == host && s.id.eq_ignore_ascii_case(id)) {
        // Both were checked against [A-Za-z0-9._-] by `check`: safe to quote in a message.
        return Err(ApiError::invalid(format!(
            "program.sensor.id: sensor agent {host:?} reports no sensor {id:?}"
        )));
    }
    Ok(())
}

/// Every agent the engine has heard from, with online state, clock offset and the role of its
/// device key (`untyped`: re-issue the key with a role).
#[utoipa::path(get, path = "/v1/agents", operation_id = "list_agents", tag = "agents",
    responses(
        (status = 200, description = "Every agent heard from", body = Vec<AgentInfo>),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
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
                let fallback = (a.kind == AgentKind::Relay)
                    .then(|| state.inner.controller.fallbacks.get(&a.host_id))
                    .flatten();
                AgentInfo {
                    fallback,
                    host_id: a.host_id,
                    kind: a.kind,
                    url: a.url,
                    // A relay agent that stopped answering is offline at once: its outputs
                    // are out of the engine's hands, whatever the time limit says.
                    online: now.duration_since(last_seen) <= offline_after
                        && a.unreachable_since.is_none(),
                    last_seen,
                    clock_offset_s: a.clock_offset_ms.map(|ms| ms as f64 / 1000.0),
                    clock_skewed: a
                        .clock_offset_ms
                        .is_some_and(|ms| state.inner.clock.is_skewed_ms(ms)),
                    unreachable_since: a.unreachable_since.map(from_millis),
                    contact_error: a.contact_error,
                    backend: a.backend,
                    key_role: a.key_role,
                    misdated_readings: u64::try_from(a.misdated).unwrap_or(0),
                    last_misdated: a.misdated_at.map(from_millis),
                }
            })
            .collect(),
    ))
}
