//! Agents managed from the engine: desired settings per host, what each agent applied or
//! refused, and remote commands with their results (`/v1/agents/{host_id}/…`).
//!
//! Agents pull (see `hearth_proto::manage`): people set and ask with the admin credential, the
//! agent fetches, applies within its own local limits and reports back with its device
//! credential. The engine never pushes settings or commands to an agent, so the same design
//! serves the sensor agent (a client with no open port) and the relay agent. A sensor agent
//! learns that work waits from the `pending` field of the answer to its report, a relay agent
//! from the answer to its registration and, within seconds of a change, from a nudge
//! (`POST /v1/manage/pending` on the agent, [`nudge`]) that carries only that summary; [`Board`]
//! keeps it in memory so the ingest path pays no query for it (one query per agent per change).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_proto::agents::AgentKind;
use hearth_proto::manage::{
    AgentSettings, AgentSettingsState, AppliedSettings, COMMANDS_LIMIT, Command, CommandReport,
    CommandState, CommandsQuery, DEFAULT_COMMANDS_LIMIT, MAX_MESSAGE_CHARS, MAX_REFUSALS,
    MAX_RESULT_BYTES, NewCommand, Pending,
};
use hearth_proto::{ErrorBody, ErrorCode, Timestamp};

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Body, Query, bounded, parse_json};
use crate::store::manage::OutcomeError;
use crate::store::{from_millis, millis};

/// Per host and agent kind, what waits for the agent; filled on the first ask after a change.
#[derive(Debug, Default)]
pub(crate) struct Board {
    inner: Mutex<BoardInner>,
}

#[derive(Debug, Default)]
struct BoardInner {
    pending: HashMap<(String, AgentKind), Pending>,
    /// Bumped by every change: a summary read from the database before a change must not be
    /// kept after it (it would say the old revision until the next change).
    changes: u64,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, BoardInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, host_id: &str) {
        let mut inner = self.lock();
        inner.changes += 1;
        inner.pending.retain(|(h, _), _| h != host_id);
    }

    /// The cached summary of `key`, or the change count to read it under.
    fn cached(&self, key: &(String, AgentKind)) -> Result<Pending, u64> {
        let inner = self.lock();
        inner.pending.get(key).copied().ok_or(inner.changes)
    }

    /// Keep `p`, read from the database when the change count was `read_at`, unless something
    /// changed since (then the next ask reads again).
    fn keep(&self, key: (String, AgentKind), p: Pending, read_at: u64) -> bool {
        let mut inner = self.lock();
        let current = inner.changes == read_at;
        if current {
            inner.pending.insert(key, p);
        }
        current
    }
}

/// The `pending` field of an answer to `host_id`'s agent of kind `agent` (a sensor report, a
/// relay registration): None when nothing was ever set or asked, or when the store cannot say
/// (the request is served anyway; the agent asks again with its next one).
pub(super) async fn pending(state: &AppState, host_id: &str, agent: AgentKind) -> Option<Pending> {
    let board = &state.inner.manage;
    let key = (host_id.to_owned(), agent);
    let pending = match board.cached(&key) {
        Ok(p) => p,
        Err(read_at) => {
            let store = &state.inner.store;
            let revision = store.desired_settings(host_id).await.ok()?.revision;
            let commands =
                store.pending_commands(host_id, agent, millis(Timestamp::now())).await.ok()?;
            let p = Pending { settings_revision: revision, commands };
            board.keep(key, p, read_at);
            p
        }
    };
    (pending != Pending::default()).then_some(pending)
}

/// Tell `host_id`'s relay agent, if one is registered, that work waits, so it pulls within
/// seconds instead of at its next registration. On a task of its own: the admin's request does
/// not wait for the agent. A failure is logged and otherwise ignored: the agent also learns it
/// from the answer to its next registration (an agent that predates the nudge answers 404).
fn nudge(state: &AppState, host_id: &str) {
    let state = state.clone();
    let host_id = host_id.to_owned();
    tokio::spawn(async move {
        let relays = match state.inner.store.relays().await {
            Ok(relays) => relays,
            Err(e) => {
                tracing::warn!(%host_id, error = %e, "cannot read relay agents to nudge");
                return;
            }
        };
        let Some((url, role)) = relays
            .iter()
            .find(|r| r.host_id == host_id)
            .and_then(|r| Some((r.url.clone()?, r.key_role)))
        else {
            return;
        };
        let pending = pending(&state, &host_id, AgentKind::Relay).await.unwrap_or_default();
        let role = role.unwrap_or(hearth_proto::agents::KeyRole::Untyped);
        let credential = state.inner.site.device_key(&host_id, role).engine_credential();
        let client = hearth_proto::client::RelayAgentClient::new(&url, Some(credential));
        match client.manage_pending(&pending).await {
            Ok(_) => tracing::info!(%host_id, revision = pending.settings_revision,
                commands = pending.commands, "relay agent told that work waits"),
            Err(e) => tracing::warn!(%host_id, error = %e,
                "cannot tell the relay agent that work waits; it learns at its next registration"),
        }
    });
}

/// The engine's own bounds of a settings document (`prefix`: where it sits in the body), the
/// field named by its path (`relay.outputs.boiler.min_on_s`). What an agent reports running
/// with is held to the same bounds: the engine serves it back under the same schema, which
/// says them (a report beyond them is refused with the field named; the agent logs it).
fn settings_ok(prefix: &str, settings: &AgentSettings) -> Result<(), ApiError> {
    let invalid = |e: hearth_proto::manage::Invalid| ApiError::invalid(format!("{prefix}{e}"));
    settings.check().map_err(invalid)
}

/// A settings document from JSON. Where serde would only say "invalid type ... at line 1
/// column 40", the protection times of the relay section are checked first, by path, so the
/// 422 names the field (`relay.outputs.boiler.min_on_s must be ...`).
fn parse_settings(value: serde_json::Value) -> Result<AgentSettings, ApiError> {
    if let Some(outputs) = value.get("relay").and_then(|r| r.get("outputs"))
        && let Some(outputs) = outputs.as_object()
    {
        for (id, protection) in outputs {
            let Some(fields) = protection.as_object() else {
                return Err(ApiError::invalid(format!(
                    "relay.outputs.{} must be an object of min_on_s, min_off_s, max_on_s",
                    escaped(id)
                )));
            };
            for (name, v) in fields {
                if !v.is_null() && v.as_u64().is_none_or(|n| n > u64::from(u32::MAX)) {
                    return Err(ApiError::invalid(format!(
                        "relay.outputs.{}.{} must be a whole number of seconds, got {v}",
                        escaped(id),
                        escaped(name)
                    )));
                }
            }
        }
    }
    let sent = value.clone();
    let read: AgentSettings = serde_json::from_value(value).map_err(|e| {
        let code = if e.to_string().contains("missing field") {
            ErrorCode::MissingField
        } else {
            ErrorCode::InvalidField
        };
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string())
    })?;
    super::error::objects_stayed_objects(&sent, &read)?;
    Ok(read)
}

/// A key from a request, for a message: control characters escaped, at most 64 characters.
fn escaped(key: &str) -> String {
    key.chars().take(64).flat_map(char::escape_default).collect()
}

fn host(host_id: &str) -> Result<(), ApiError> {
    hearth_common::host_id::validate(host_id)
        .map_err(|e| ApiError::invalid(format!("host_id: {e}")))
}

/// A text for people: bounded, no control characters (it reaches logs and the dashboard).
fn message(field: &str, text: &str) -> Result<(), ApiError> {
    if text.chars().count() > MAX_MESSAGE_CHARS || text.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{field} must be at most {MAX_MESSAGE_CHARS} characters without control characters"
        )));
    }
    Ok(())
}

async fn settings_state(state: &AppState, host_id: &str) -> Result<AgentSettingsState, ApiError> {
    let store = &state.inner.store;
    let desired = store.desired_settings(host_id).await?;
    let applied = store.applied_settings(host_id).await?;
    Ok(AgentSettingsState {
        host_id: host_id.to_owned(),
        revision: desired.revision,
        desired: desired.desired,
        set_at: desired.set_at.map(from_millis),
        set_by: desired.set_by,
        applied,
    })
}

/// The settings people want the agents of a host to run with, and what each agent reported
/// applying or refusing (its local limits are the ceiling). Revision 0: nothing set.
#[utoipa::path(get, path = "/v1/agents/{host_id}/settings", operation_id = "get_agent_settings",
    tag = "agents",
    params(("host_id" = String, Path, description = "The agent's host id")),
    responses(
        (status = 200, description = "Desired and applied settings", body = AgentSettingsState),
        (status = 422, description = "Not a host id", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn get_settings(
    State(state): State<AppState>,
    Path(host_id): Path<String>,
) -> Result<axum::Json<AgentSettingsState>, ApiError> {
    host(&host_id)?;
    Ok(axum::Json(settings_state(&state, &host_id).await?))
}

/// Set what the agents of a host should run with (admin). Replaces the whole document and
/// bumps its revision; the agents pick it up without a restart. The engine checks its own
/// bounds; each agent refuses what lies outside its local limits and says why (shown in
/// `applied[].refused`).
#[utoipa::path(put, path = "/v1/agents/{host_id}/settings", operation_id = "set_agent_settings",
    tag = "agents",
    params(("host_id" = String, Path, description = "The agent's host id")),
    request_body = AgentSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored", body = AgentSettingsState),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn set_settings(
    State(state): State<AppState>,
    caller: Caller,
    Path(host_id): Path<String>,
    body: Bytes,
) -> Result<axum::Json<AgentSettingsState>, ApiError> {
    caller.require_admin()?;
    host(&host_id)?;
    let desired = parse_settings(parse_json(&body)?)?;
    settings_ok("", &desired)?;
    let now = millis(Timestamp::now());
    let revision = state
        .inner
        .store
        .set_desired_settings(&host_id, &desired, hearth_common::auth::ADMIN_PRINCIPAL, now)
        .await?;
    state.inner.manage.forget(&host_id);
    tracing::info!(%host_id, revision, asked_by = hearth_common::auth::ADMIN_PRINCIPAL,
        desired = %serde_json::to_string(&desired).unwrap_or_default(), "agent settings set");
    nudge(&state, &host_id);
    Ok(axum::Json(settings_state(&state, &host_id).await?))
}

/// An agent reports what it runs with after reading a revision of its settings, and what it
/// refused and why (its device credential; the report replaces its previous one).
#[utoipa::path(put, path = "/v1/agents/{host_id}/settings/applied",
    operation_id = "report_applied_settings", tag = "agents",
    params(("host_id" = String, Path, description = "The agent's host id")),
    request_body = AppliedSettings,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored", body = AgentSettingsState),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not this host's agent of that kind", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn report_applied(
    State(state): State<AppState>,
    caller: Caller,
    Path(host_id): Path<String>,
    Body(applied): Body<AppliedSettings>,
) -> Result<axum::Json<AgentSettingsState>, ApiError> {
    host(&host_id)?;
    caller.require_agent(&state, &host_id, applied.agent)?;
    settings_ok("in_force.", &applied.in_force)?;
    if let Some(local) = &applied.local {
        settings_ok("local.", local)?;
    }
    if applied.refused.len() > MAX_REFUSALS {
        return Err(ApiError::invalid(format!("refused must list at most {MAX_REFUSALS} items")));
    }
    for (i, r) in applied.refused.iter().enumerate() {
        message(&format!("refused[{i}].field"), &r.field)?;
        message(&format!("refused[{i}].reason"), &r.reason)?;
    }
    // A revision the engine never gave out (or one beyond what the database holds) is a
    // confused or forged report: refused, so the stored state never claims one.
    let current = state.inner.store.desired_settings(&host_id).await?.revision;
    if applied.revision > current {
        return Err(ApiError::invalid(format!(
            "revision must be at most {current}, the host's current settings revision, got {}",
            applied.revision
        )));
    }
    let now = millis(Timestamp::now());
    state.inner.store.set_applied_settings(&host_id, &applied, now).await?;
    state.inner.manage.forget(&host_id);
    for r in &applied.refused {
        tracing::warn!(%host_id, agent = ?applied.agent, revision = applied.revision,
            field = %r.field, reason = %r.reason, "the agent refused a setting");
    }
    tracing::info!(%host_id, agent = ?applied.agent, revision = applied.revision,
        refused = applied.refused.len(), "agent settings applied");
    Ok(axum::Json(settings_state(&state, &host_id).await?))
}

/// Ask an agent to do something (admin): `identify`, `rescan`, `diagnostics`, `restart`. A
/// sensor agent fetches it with its next report, a relay agent when the engine tells it (at
/// once, or at its next registration); the agent carries it out and reports the result; one
/// not finished within 10 minutes expires. None of them switches a relay.
#[utoipa::path(post, path = "/v1/agents/{host_id}/commands", operation_id = "create_agent_command",
    tag = "agents",
    params(("host_id" = String, Path, description = "The agent's host id")),
    request_body = NewCommand,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Queued", body = Command),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not the admin credential", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn create_command(
    State(state): State<AppState>,
    caller: Caller,
    Path(host_id): Path<String>,
    Body(new): Body<NewCommand>,
) -> Result<(StatusCode, axum::Json<Command>), ApiError> {
    caller.require_admin()?;
    host(&host_id)?;
    let by = hearth_common::auth::ADMIN_PRINCIPAL;
    let now = millis(Timestamp::now());
    let command =
        state.inner.store.create_command(&host_id, new.agent, new.command, by, now).await?;
    state.inner.manage.forget(&host_id);
    tracing::info!(%host_id, id = command.id, agent = ?new.agent,
        command = new.command.as_str(), asked_by = by, "agent command queued");
    if new.agent == AgentKind::Relay {
        nudge(&state, &host_id);
    }
    Ok((StatusCode::CREATED, axum::Json(command)))
}

/// The commands of a host, newest first, with their state and result. An agent asks for its
/// own `pending` ones.
#[utoipa::path(get, path = "/v1/agents/{host_id}/commands", operation_id = "list_agent_commands",
    tag = "agents",
    params(("host_id" = String, Path, description = "The agent's host id"), CommandsQuery),
    responses(
        (status = 200, description = "Commands, newest first", body = [Command]),
        (status = 422, description = "A parameter is invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn list_commands(
    State(state): State<AppState>,
    Path(host_id): Path<String>,
    Query(q): Query<CommandsQuery>,
) -> Result<axum::Json<Vec<Command>>, ApiError> {
    host(&host_id)?;
    let limit = bounded("limit", q.limit, DEFAULT_COMMANDS_LIMIT, &COMMANDS_LIMIT)?;
    let now = millis(Timestamp::now());
    let commands = state.inner.store.commands(&host_id, q.agent, q.state, limit, now).await?;
    Ok(axum::Json(commands))
}

/// An agent reports progress on one of its commands (its device credential): `delivered`
/// when it starts, then `done` with the result or `failed` with why. A final state does not
/// change again (409).
#[utoipa::path(put, path = "/v1/agents/{host_id}/commands/{id}",
    operation_id = "report_command_outcome", tag = "agents",
    params(
        ("host_id" = String, Path, description = "The agent's host id"),
        ("id" = i64, Path, description = "The command's id"),
    ),
    request_body = CommandReport,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored", body = Command),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "No credential", body = ErrorBody),
        (status = 403, description = "Not this host's agent of the command's kind", body = ErrorBody),
        (status = 404, description = "No such command of this host", body = ErrorBody),
        (status = 409, description = "The command is already final", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub(super) async fn report_outcome(
    State(state): State<AppState>,
    caller: Caller,
    Path((host_id, id)): Path<(String, i64)>,
    Body(outcome): Body<CommandReport>,
) -> Result<axum::Json<Command>, ApiError> {
    host(&host_id)?;
    let role = match &caller {
        Caller::Agent(h, role) if *h == host_id => *role,
        _ => {
            return Err(ApiError::forbidden(
                "only the host's own agent may report on its commands",
            ));
        }
    };
    if !matches!(outcome.state, CommandState::Delivered | CommandState::Done | CommandState::Failed)
    {
        return Err(ApiError::invalid("state must be delivered, done or failed"));
    }
    if let Some(m) = &outcome.message {
        message("message", m)?;
    }
    if let Some(r) = &outcome.result
        && r.to_string().len() > MAX_RESULT_BYTES
    {
        return Err(ApiError::invalid(format!(
            "result must be at most {MAX_RESULT_BYTES} bytes of JSON"
        )));
    }
    let now = millis(Timestamp::now());
    let command = match state.inner.store.command_outcome(&host_id, id, role, &outcome, now).await {
        Ok(command) => command,
        Err(OutcomeError::Unknown) => {
            return Err(ApiError::not_found(format!("no command {id} of host {host_id:?}")));
        }
        Err(OutcomeError::Forbidden(agent)) => {
            // Through require_agent for its message and its untyped-key warning.
            caller.require_agent(&state, &host_id, agent)?;
            return Err(ApiError::forbidden("this key may not act for that agent"));
        }
        Err(OutcomeError::Final(s)) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                format!("command {id} is already {}", s.as_str()),
            ));
        }
        Err(OutcomeError::Db(e)) => return Err(e.into()),
    };
    state.inner.manage.forget(&host_id);
    tracing::info!(%host_id, id, agent = ?command.agent, command = command.command.as_str(),
        asked_by = %command.asked_by, state = outcome.state.as_str(),
        message = outcome.message.as_deref().unwrap_or(""), "agent command outcome");
    Ok(axum::Json(command))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A report's answer read from the database while an admin's change lands must not stay
    /// cached after the change: the agent would be told the old revision at every report
    /// until the next change (seen as a sensor agent that never fetched a new revision).
    #[test]
    fn a_summary_read_before_a_change_is_not_kept_after_it() {
        let board = Board::default();
        let key = ("hall".to_owned(), AgentKind::Sensor);
        let old = Pending { settings_revision: 1, commands: 0 };
        let Err(read_at) = board.cached(&key) else { panic!("nothing cached yet") };
        // The admin's change commits and forgets while the report's reads are in flight.
        board.forget("hall");
        assert!(!board.keep(key.clone(), old, read_at), "a stale summary was kept");
        assert!(board.cached(&key).is_err(), "the next report reads the database again");
        // Read after the change: kept.
        let Err(read_at) = board.cached(&key) else { panic!("nothing cached") };
        let new = Pending { settings_revision: 2, commands: 0 };
        assert!(board.keep(key.clone(), new, read_at));
        assert_eq!(board.cached(&key), Ok(new));
    }
}
