//! `GET /` and `GET /v1/status`.

use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Html;
use hearth_proto::ErrorBody;
use hearth_proto::status::{HealthCheck, Identity, Role, ServiceStatus};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;

/// The info page: what this is and where to go next.
pub(super) async fn index(State(state): State<AppState>) -> Html<String> {
    let version = env!("CARGO_PKG_VERSION");
    let id = &state.inner.engine_id;
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Hearth engine</title><style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}</style></head>\
<body><h1>Hearth engine</h1><p>Version {version}, engine id <code>{id}</code>.</p>\
<ul><li><a href=\"/v1/status\">Status</a> (dependency health)</li>\
<li><a href=\"/v1/openapi.json\">API documentation</a> (OpenAPI 3.1)</li>\
<li><a href=\"/v1/control\">Current decision and settings</a></li>\
<li><a href=\"/v1/sensors\">Sensors</a></li><li><a href=\"/v1/relays\">Relays</a></li>\
<li><a href=\"/v1/agents\">Agents</a></li></ul></body></html>"
    ))
}

/// Service health: 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/v1/status", operation_id = "get_status", tag = "service",
    responses(
        (status = 200, description = "Healthy", body = ServiceStatus),
        (status = 503, description = "A dependency is unavailable", body = ServiceStatus),
    ))]
pub(super) async fn status(
    State(state): State<AppState>,
) -> (StatusCode, axum::Json<ServiceStatus>) {
    let db = match state.inner.store.ping().await {
        Ok(()) => HealthCheck { name: "database".into(), ok: true, detail: "answers".into() },
        Err(e) => HealthCheck { name: "database".into(), ok: false, detail: e.to_string() },
    };
    let healthy = db.ok;
    let body = ServiceStatus {
        service: "hearth-engine".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        healthy,
        checks: vec![db],
    };
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body))
}

/// Who the presented credential belongs to: `anonymous` without one, `admin` or `agent` with a
/// valid one, 403 with a wrong one. Changes nothing; the web UI checks a typed login with it.
#[utoipa::path(get, path = "/v1/auth", operation_id = "get_identity", tag = "service",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Whom the credential is for (`anonymous` without one)", body = Identity),
        (status = 401, description = "Malformed credential", body = ErrorBody),
        (status = 403, description = "Wrong credential", body = ErrorBody),
    ))]
pub(super) async fn whoami(
    State(state): State<AppState>,
    mut parts: Parts,
) -> Result<axum::Json<Identity>, ApiError> {
    if !parts.headers.contains_key(axum::http::header::AUTHORIZATION) {
        return Ok(axum::Json(Identity { role: Role::Anonymous, host_id: None }));
    }
    Ok(axum::Json(match Caller::from_request_parts(&mut parts, &state).await? {
        Caller::Admin => Identity { role: Role::Admin, host_id: None },
        Caller::Agent(host) => Identity { role: Role::Agent, host_id: Some(host) },
    }))
}
