//! The relay agent's REST API (axum + utoipa-axum): the OpenAPI document is generated from the
//! same router the server runs, so the two cannot drift.
//!
//! Reads are open to anyone on the LAN (they reveal what the house equipment does, nothing
//! secret); commands require the engine's credential. Every error, including axum's own
//! extractor rejections and unknown routes, is a JSON [`ErrorBody`].

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hearth_common::auth::{DeviceCredential, ENGINE_PRINCIPAL, parse_bearer};
use hearth_proto::fallback::FallbackProgram;
use hearth_proto::manage::Pending;
use hearth_proto::relays::{
    CommandOutcome, OutputStatus, RelayAgentStatus, RelayCommand, RelayList,
};
use hearth_proto::status::{HealthCheck, ServiceStatus};
use hearth_proto::{ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi as _};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::fallback::ProgramStore;
use crate::relays::{Applied, CommandError, Controller};

/// The service name in `GET /v1/status`.
pub const SERVICE_NAME: &str = "hearth-relay-agent";

/// Commands are a few dozen bytes; refuse anything much larger before buffering it.
const BODY_LIMIT: usize = 16 * 1024;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    controller: Arc<Controller>,
    fallback: Arc<ProgramStore>,
    host_id: Arc<str>,
    credential: Arc<DeviceCredential>,
    metrics: Arc<crate::metrics::Counters>,
    /// What the engine last said waits for this agent (its nudge, or its answer to a
    /// registration); `crate::manage::Manager` follows it.
    pending: Arc<watch::Sender<Option<Pending>>>,
}

impl AppState {
    /// State for an agent with `host_id`, obeying the engine that holds `credential`'s engine
    /// token, switching relays through `controller`.
    pub fn new(
        host_id: impl Into<String>,
        credential: DeviceCredential,
        controller: Arc<Controller>,
    ) -> Self {
        let outputs = controller.outputs().into_iter().map(|o| o.id).collect();
        Self {
            controller,
            fallback: Arc::new(ProgramStore::in_memory(outputs)),
            host_id: Arc::from(host_id.into()),
            credential: Arc::new(credential),
            metrics: Arc::default(),
            pending: Arc::new(watch::Sender::new(None)),
        }
    }

    /// Where the engine's word that management work waits goes.
    pub fn pending(&self) -> &watch::Sender<Option<Pending>> {
        &self.pending
    }

    /// The same state with `store` as the fallback program's store.
    #[must_use]
    pub fn with_fallback(self, store: Arc<ProgramStore>) -> Self {
        Self { fallback: store, ..self }
    }

    /// The fallback program's store.
    pub fn fallback(&self) -> &Arc<ProgramStore> {
        &self.fallback
    }

    /// What `GET /metrics` counts here.
    pub(crate) fn metrics(&self) -> &crate::metrics::Counters {
        &self.metrics
    }

    /// The relay controller.
    pub fn controller(&self) -> &Arc<Controller> {
        &self.controller
    }

    /// This agent's host id.
    pub fn host_id(&self) -> &str {
        &self.host_id
    }
}

/// An error response: an HTTP status and a JSON [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
    /// Seconds for a `Retry-After` header, when waiting helps.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and a human `message`.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { status, body: ErrorBody::new(code, message), retry_after: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<CommandError> for ApiError {
    fn from(e: CommandError) -> Self {
        let (status, code) = match &e {
            CommandError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            CommandError::MissingLease => {
                (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::MissingField)
            }
            CommandError::InvalidLease(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField)
            }
            CommandError::Interlock { .. } => (StatusCode::CONFLICT, ErrorCode::Interlock),
            CommandError::ShortCycle { .. } => (StatusCode::CONFLICT, ErrorCode::ShortCycle),
            CommandError::ShuttingDown | CommandError::Hardware(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
            }
        };
        let mut error = Self::new(status, code, e.to_string());
        if let CommandError::ShortCycle { remaining, .. } = e {
            error.retry_after = Some(remaining.as_secs_f64().ceil() as u64);
        }
        error
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no output {id:?}"))
}

/// A JSON request body whose every failure is an [`ApiError`]: wrong content type → 415
/// `unsupported`, invalid JSON or not an object → 400 `malformed_json`, a missing field →
/// 422 `missing_field`, a wrong type or value → 422 `invalid_field`, each naming the field.
struct JsonBody<T>(T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::Unsupported,
                "expected a request body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(bytes_error)?;
        // Validity first, on its own: serde_json reports some type errors (a number where an
        // enum is expected) as syntax errors, so "not JSON" and "wrong field" are told apart
        // here and not from the typed parse.
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            ));
        }
        // Valid JSON that is an array, a string, a number...: not a command at all (serde would
        // even accept a struct written as an array, `["off"]`).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                "the body must be a JSON object",
            ));
        }
        Json::<T>::from_bytes(&bytes).map(|Json(v)| Self(v)).map_err(json_error)
    }
}

/// `application/json` or `application/<anything>+json`, parameters (charset) allowed.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    mime == "application/json"
        || mime.strip_prefix("application/").is_some_and(|sub| sub.ends_with("+json"))
}

fn bytes_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooLarge,
            format!("request body larger than {BODY_LIMIT} bytes"),
        )
    } else {
        // The body could not be read (client went away mid-body): still the caller's side.
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, e.body_text())
    }
}

/// A typed parse of a valid JSON object failed: a field is missing or wrong. axum's messages
/// start with a generic sentence; the rest names the field (e.g. `lease_s: invalid type: ...`).
fn json_error(e: JsonRejection) -> ApiError {
    let text = e.body_text();
    let text = text.split_once(": ").map_or(text.as_str(), |(_, rest)| rest);
    match missing_field(text) {
        Some(field) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::MissingField,
            format!("{field} field is missing"),
        ),
        None => {
            // serde_json says only "expected value" for, e.g., a number where `state` wants a
            // string: say what that means.
            let message = match text.split_once(": expected value") {
                Some((field, _)) => format!("{field}: wrong type or value"),
                None => text.to_owned(),
            };
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, message)
        }
    }
}

/// The field named by serde's "missing field `x`" message.
fn missing_field(text: &str) -> Option<&str> {
    let rest = text.split_once("missing field `")?.1;
    Some(rest.split_once('`')?.0)
}

fn path_error(e: PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidField, e.body_text())
}

/// Check the engine's credential: `Authorization: Bearer engine.<token>`.
fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), (ApiError, &'static str)> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err((
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "commands need the engine's credential: Authorization: Bearer engine.<token>",
            ),
            "no credential",
        ));
    };
    let Some((principal, token)) = value.to_str().ok().and_then(parse_bearer) else {
        return Err((
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "the Authorization header must be `Bearer engine.<token>`",
            ),
            "unreadable credential",
        ));
    };
    if principal != ENGINE_PRINCIPAL {
        return Err((
            ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "only the engine may command relays",
            ),
            "not the engine principal",
        ));
    }
    if !state.credential.verify_engine_token(token) {
        return Err((
            ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "wrong engine token for this agent",
            ),
            "wrong engine token",
        ));
    }
    Ok(())
}

/// The principal of an `Authorization` header, for logs (never the token).
fn principal_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    parse_bearer(value).map(|(principal, _)| principal.chars().take(64).collect())
}

/// List every output.
#[utoipa::path(
    get,
    path = "/v1/relays",
    operation_id = "list_relays",
    tag = "relays",
    responses(
        (status = 200, description = "Every output, in configuration order.", body = RelayList),
    )
)]
async fn list_relays(State(state): State<AppState>) -> Json<RelayList> {
    Json(RelayList {
        host_id: state.host_id.to_string(),
        outputs: state.controller.outputs(),
        fallback: crate::fallback::status(&state.controller, &state.fallback),
    })
}

/// One output's state and lease.
#[utoipa::path(
    get,
    path = "/v1/relays/{id}",
    operation_id = "get_relay",
    tag = "relays",
    params(("id" = String, Path, description = "The output id, e.g. `heat`.")),
    responses(
        (status = 200, description = "The output.", body = OutputStatus),
        (status = 404, description = "`not_found`: no output has this id.", body = ErrorBody),
    )
)]
async fn get_relay(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<OutputStatus>, ApiError> {
    let Path(id) = id.map_err(path_error)?;
    state.controller.output(&id).map(Json).ok_or_else(|| not_found(&id))
}

/// Switch one output (engine only).
///
/// `{"state": "on", "lease_s": N}` turns the output on, or renews its lease, for N seconds;
/// without a renewal it then returns to its safe state. `{"state": "off"}` turns it off and
/// clears the lease.
///
/// The agent protects the equipment whatever the engine says: an `on` is refused (409) while an
/// interlocked output is on (`interlock`) or before the output's minimum off time has passed
/// (`short_cycle`, with `Retry-After`); an `off` before the minimum on time has passed is
/// deferred until it has (202, `pending_off_in_s` says when); a lease that runs out during the
/// minimum on time ends with it; an output on for its maximum on time returns to its safe state.
/// A refused command changes nothing.
#[utoipa::path(
    post,
    path = "/v1/relays/{id}",
    operation_id = "command_relay",
    tag = "relays",
    params(("id" = String, Path, description = "The output id, e.g. `heat`.")),
    request_body = RelayCommand,
    security(("engine" = [])),
    responses(
        (status = 200, description = "Done; the output's new status.", body = OutputStatus),
        (status = 202, body = OutputStatus,
            description = "An `off` deferred by the minimum on time; the output is still on \
                until `pending_off_in_s`."),
        (status = 400, body = ErrorBody,
            description = "`malformed_json`: the body is not valid JSON, or not a JSON object."),
        (status = 401, description = "`unauthorized`: no credential.", body = ErrorBody),
        (status = 403, body = ErrorBody,
            description = "`forbidden`: not the engine's credential for this agent."),
        (status = 404, description = "`not_found`: no output has this id.", body = ErrorBody),
        (status = 409, body = ErrorBody,
            description = "`interlock`: an output interlocked with this one is on; or \
                `short_cycle`: the minimum off time has not passed (see `Retry-After`). Nothing \
                changed."),
        (status = 413, body = ErrorBody,
            description = "`too_large`: the body is larger than the agent takes."),
        (status = 415, body = ErrorBody,
            description = "`unsupported`: the body is not `application/json`."),
        (status = 422, body = ErrorBody,
            description = "`missing_field` or `invalid_field`: e.g. `on` without `lease_s`, or \
                `lease_s` out of range (for `off` too)."),
        (status = 503, body = ErrorBody,
            description = "`unavailable`: the hardware failed or the agent is shutting down."),
    )
)]
async fn command_relay(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<JsonBody<RelayCommand>, ApiError>,
) -> Result<(StatusCode, Json<OutputStatus>), ApiError> {
    let Path(id) = id.map_err(path_error)?;
    let refuse = |error: ApiError, reason: &str| {
        // Never the token: the principal is a name (e.g. a host id), the reason says why.
        tracing::warn!(
            output = %id,
            principal = ?principal_of(&headers),
            status = error.status.as_u16(),
            reason,
            "refused relay command"
        );
        state.metrics.refused(error.body.code);
        error
    };
    // Credential first, so that nothing about the outputs is revealed to strangers through
    // the errors of a command; then the output, then the body.
    authorize(&state, &headers).map_err(|(error, reason)| refuse(error, reason))?;
    if state.controller.output(&id).is_none() {
        return Err(refuse(not_found(&id), "unknown output"));
    }
    let JsonBody(command) = body.map_err(|e| {
        let reason = e.body.error.clone();
        refuse(e, &reason)
    })?;
    match state.controller.command(&id, &command) {
        Ok(Applied { outcome: CommandOutcome::Deferred, status }) => {
            Ok((StatusCode::ACCEPTED, Json(status)))
        }
        Ok(Applied { status, .. }) => Ok((StatusCode::OK, Json(status))),
        Err(e) => {
            let reason = e.to_string();
            Err(refuse(e.into(), &reason))
        }
    }
}

/// The fallback program this agent holds: what it does by itself when the engine is lost.
#[utoipa::path(
    get,
    path = "/v1/fallback",
    operation_id = "get_fallback",
    tag = "fallback",
    responses(
        (status = 200, description = "The program held.", body = FallbackProgram),
        (status = 404, body = ErrorBody,
            description = "`not_found`: no program yet: when the engine is lost, every output \
                stays in its safe state."),
    )
)]
async fn get_fallback(State(state): State<AppState>) -> Result<Json<FallbackProgram>, ApiError> {
    state.fallback.get().map(Json).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no fallback program yet")
    })
}

/// Replace the fallback program (engine only; the engine also hands it over in its answer to
/// each registration). Checked against this agent's outputs and every bound; a refused program
/// leaves the one held in place. Stored in the agent's state directory, so it survives a
/// restart without the engine.
#[utoipa::path(
    put,
    path = "/v1/fallback",
    operation_id = "put_fallback",
    tag = "fallback",
    request_body = FallbackProgram,
    security(("engine" = [])),
    responses(
        (status = 200, description = "Held (and stored).", body = FallbackProgram),
        (status = 400, body = ErrorBody,
            description = "`malformed_json`: the body is not valid JSON, or not a JSON object."),
        (status = 401, description = "`unauthorized`: no credential.", body = ErrorBody),
        (status = 403, body = ErrorBody,
            description = "`forbidden`: not the engine's credential for this agent."),
        (status = 413, body = ErrorBody,
            description = "`too_large`: the body is larger than the agent takes."),
        (status = 415, body = ErrorBody,
            description = "`unsupported`: the body is not `application/json`."),
        (status = 422, body = ErrorBody,
            description = "`missing_field` or `invalid_field`, naming the field (e.g. \
                `outputs.heat.blind.period_s`); the program held is kept."),
    )
)]
async fn put_fallback(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<FallbackProgram>, ApiError>,
) -> Result<Json<FallbackProgram>, ApiError> {
    let program = from_engine(&state, &headers, body, "fallback program")?;
    state.fallback.set(program.clone()).map_err(|e| {
        let error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, &e);
        refused(&headers, "fallback program", error, &e)
    })?;
    Ok(Json(program))
}

/// A refusal of an engine-only request, logged with the principal and the reason (never the
/// token).
fn refused(headers: &HeaderMap, what: &str, error: ApiError, reason: &str) -> ApiError {
    tracing::warn!(principal = ?principal_of(headers), status = error.status.as_u16(), reason,
        "refused {what}");
    error
}

/// The body of an engine-only request: the engine's credential first, then the body; each
/// refusal logged ([`refused`]).
fn from_engine<T>(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<JsonBody<T>, ApiError>,
    what: &str,
) -> Result<T, ApiError> {
    authorize(state, headers).map_err(|(error, reason)| refused(headers, what, error, reason))?;
    body.map(|JsonBody(value)| value).map_err(|e| {
        let reason = e.body.error.clone();
        refused(headers, what, e, &reason)
    })
}

/// The engine says that management work waits for this agent (engine only): its settings'
/// revision and how many commands. The agent fetches them from the engine with its own
/// credential, at once, and answers without waiting for that. Carries no settings and no
/// command itself, so nothing the engine sends here can change an output.
#[utoipa::path(
    post,
    path = "/v1/manage/pending",
    operation_id = "manage_pending",
    tag = "manage",
    request_body = Pending,
    security(("engine" = [])),
    responses(
        (status = 202, description = "Taken: the agent pulls what waits.", body = Pending),
        (status = 400, body = ErrorBody,
            description = "`malformed_json`: the body is not valid JSON, or not a JSON object."),
        (status = 401, description = "`unauthorized`: no credential.", body = ErrorBody),
        (status = 403, body = ErrorBody,
            description = "`forbidden`: not the engine's credential for this agent."),
        (status = 413, body = ErrorBody,
            description = "`too_large`: the body is larger than the agent takes."),
        (status = 415, body = ErrorBody,
            description = "`unsupported`: the body is not `application/json`."),
        (status = 422, body = ErrorBody,
            description = "`missing_field` or `invalid_field`, naming the field."),
    )
)]
async fn manage_pending(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<JsonBody<Pending>, ApiError>,
) -> Result<(StatusCode, Json<Pending>), ApiError> {
    let pending = from_engine(&state, &headers, body, "word of pending management work")?;
    if pending.settings_revision > hearth_proto::manage::MAX_REVISION {
        let e = format!(
            "settings_revision must be at most {}, got {}",
            hearth_proto::manage::MAX_REVISION,
            pending.settings_revision
        );
        let error = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::InvalidField, &e);
        return Err(refused(&headers, "word of pending management work", error, &e));
    }
    tracing::info!(
        revision = pending.settings_revision,
        commands = pending.commands,
        "the engine says management work waits"
    );
    state.pending.send_replace(Some(pending));
    Ok((StatusCode::ACCEPTED, Json(pending)))
}

/// Health of the agent and its hardware backend.
#[utoipa::path(
    get,
    path = "/v1/status",
    operation_id = "get_status",
    tag = "status",
    responses(
        (status = 200, description = "Healthy.", body = RelayAgentStatus),
        (status = 503, description = "The hardware backend is failing; `checks` say why.",
            body = RelayAgentStatus),
    )
)]
async fn status(State(state): State<AppState>) -> (StatusCode, Json<RelayAgentStatus>) {
    let controller = &state.controller;
    let hardware = match controller.healthy() {
        Ok(()) => HealthCheck {
            name: "hardware".to_owned(),
            ok: true,
            detail: format!("{} backend ok", controller.backend()),
            since: None,
        },
        Err(e) => HealthCheck {
            name: "hardware".to_owned(),
            ok: false,
            detail: format!("{} backend: {e}", controller.backend()),
            since: None,
        },
    };
    let healthy = hardware.ok;
    let body = RelayAgentStatus {
        service: ServiceStatus {
            service: SERVICE_NAME.to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            healthy,
            checks: vec![hardware],
        },
        host_id: state.host_id.to_string(),
        backend: controller.backend().to_owned(),
        outputs: controller.outputs(),
        since_engine_contact_s: controller.since_engine_contact().map(|d| d.as_secs_f64()),
        fallback: crate::fallback::status(controller, &state.fallback),
    };
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body))
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "get_openapi",
    tag = "meta",
    responses(
        (status = 200, description = "The OpenAPI document of this API.",
            content_type = "application/json"),
    ),
)]
async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOC.get_or_init(openapi).clone())
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route {method} {}", uri.path()),
    )
}

async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::Unsupported,
        format!("method {method} is not allowed on {}", uri.path()),
    )
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Hearth relay agent API",
        description = "Switches the relays of one Hearth relay agent on the engine's leased \
            commands.\n\nReads (`GET`) are open to anyone who can reach the agent. Commands \
            (`POST /v1/relays/{id}`) require the engine's credential for this agent: \
            `Authorization: Bearer engine.<token>`. A command turns an output on for a bounded \
            lease; when the engine stops renewing it, the output returns to its safe state.\n\n\
            Every error is a JSON `ErrorBody` with a stable `code`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    modifiers(&EngineAuth),
    tags(
        (name = "relays", description = "The outputs and their commands."),
        (name = "status", description = "Service health."),
        (name = "fallback", description = "What the agent does by itself when the engine is lost."),
        (name = "meta", description = "The API description."),
    )
)]
struct ApiDoc;

/// Declares the `engine` bearer scheme the command route requires.
struct EngineAuth;

impl Modify for EngineAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some(
            "The engine's credential for this agent: `engine.<token>`, where the token is the \
             lower-case hex of HMAC-SHA256 keyed with this agent's device key (the 32 bytes \
             written as the 64 hex digits after the dot of `<site id>.<64 hex digits>`) and \
             applied to the ASCII string `engine`. Nothing else commands an output: not the \
             agent's own credential, not another device's."
                .to_owned(),
        );
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("engine", SecurityScheme::Http(http));
    }
}

fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(list_relays))
        .routes(routes!(get_relay, command_relay))
        .routes(routes!(status))
        .routes(routes!(get_fallback, put_fallback))
        .routes(routes!(manage_pending))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of the API [`app`] serves (generated from the same router), with the
/// bounds the handlers check and the refusals every route may answer with.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = router().into_openapi();
    let misplaced = hearth_proto::limits::document(&mut doc);
    if !misplaced.is_empty() {
        // A renamed field; the test `every_bound_finds_its_field` fails first.
        tracing::error!(?misplaced, "request bounds without their field in the API document");
    }
    hearth_common::http::document_rejections(&mut doc, BODY_LIMIT, &["command_relay"]);
    doc
}

/// The API, ready to serve.
pub fn app(state: AppState) -> axum::Router {
    let (router, _) = router().split_for_parts();
    router
        .route("/metrics", axum::routing::get(crate::metrics::metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Whatever refuses a request (an extractor, the router), the answer is an ErrorBody.
        .layer(axum::middleware::map_response(|r| hearth_common::http::json_errors(r, BODY_LIMIT)))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let check = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_str(v).unwrap_or(HeaderValue::from_static("")),
            );
            is_json(&h)
        };
        assert!(check("application/json"));
        assert!(check("Application/JSON; charset=utf-8"));
        assert!(check("application/vnd.hearth+json"));
        assert!(!check("text/plain"));
        assert!(!check("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }

    /// The relay agent's request bounds (`lease_s`) found their field.
    #[test]
    fn every_bound_finds_its_field() {
        let mut doc = router().into_openapi();
        assert_eq!(hearth_proto::limits::document(&mut doc), Vec::<String>::new());
        let lease =
            serde_json::to_value(&doc).unwrap_or_default()["components"]["schemas"]["RelayCommand"]
                ["properties"]["lease_s"]
                .clone();
        assert_eq!(lease["maximum"], *hearth_proto::relays::LEASE_S.end());
        assert_eq!(lease["minimum"], *hearth_proto::relays::LEASE_S.start());
    }

    #[test]
    fn missing_field_names() {
        assert_eq!(missing_field("missing field `state` at line 1 column 2"), Some("state"));
        assert_eq!(missing_field("invalid type"), None);
    }
}
