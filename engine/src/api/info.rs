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
use crate::store::StorageHealth;

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

/// Service health: 200 when the database stores, 503 with the reason and since when it has
/// not. During a storage fault (a full disk, a filesystem turned read-only, I/O errors)
/// readings are refused with 503, so agents keep them queued, and control goes on from what
/// the engine holds in memory; the engine checks every second whether it can store again.
#[utoipa::path(get, path = "/v1/status", tag = "service",
    responses(
        (status = 200, description = "Healthy", body = ServiceStatus),
        (status = 503, description = "The database cannot store (or answer): `checks` say why \
and since when", body = ServiceStatus),
    ))]
pub(super) async fn status(
    State(state): State<AppState>,
) -> (StatusCode, axum::Json<ServiceStatus>) {
    let store = &state.inner.store;
    let check =
        |ok, detail: String, since| HealthCheck { name: "database".into(), ok, detail, since };
    // A store that believes itself healthy is asked as well; a fault found here is a fault
    // like any other.
    let healthy = match store.health() {
        StorageHealth::Healthy => store.ping().await.map_err(|e| e.to_string()),
        StorageHealth::Degraded { .. } => Err(String::new()),
    };
    let db = match (healthy, store.health()) {
        (Ok(()), _) => check(true, "stores and answers".into(), None),
        (Err(_), StorageHealth::Degraded { reason, since }) => check(
            false,
            format!(
                "cannot store: {reason}; readings are refused (503) and stay queued at the \
                 agents, control goes on from memory"
            ),
            Some(since),
        ),
        (Err(e), StorageHealth::Healthy) => check(false, e, None),
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
#[utoipa::path(get, path = "/v1/auth", tag = "service",
    security((), ("bearer" = [])),
    responses(
        (status = 200, body = Identity),
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
