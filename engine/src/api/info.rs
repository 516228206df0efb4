//! `GET /` and `GET /v1/status`.

use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Html;
use hearth_proto::ErrorBody;
use hearth_proto::status::{HealthCheck, Identity, Role, ServiceStatus};

use super::AppState;
use super::auth::Caller;
use super::error::ApiError;
use crate::store::StorageHealth;

/// The port hearth-web listens on by default (its `--listen`).
const DASHBOARD_PORT: u16 = 8088;

/// The info page: what this is and where to go next, the dashboard first.
pub(super) async fn index(State(state): State<AppState>, headers: HeaderMap) -> Html<String> {
    let version = env!("CARGO_PKG_VERSION");
    let id = escape(&state.inner.engine_id);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let dashboard = match dashboard_url(state.inner.dashboard_url.as_deref(), host) {
        Some(url) => {
            format!("<p><a href=\"{0}\">Open the dashboard</a> (hearth-web, {0})</p>", escape(&url))
        }
        None => format!(
            "<p>The dashboard (hearth-web) listens on port {DASHBOARD_PORT} of its host by \
             default.</p>"
        ),
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>Hearth engine</title><style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}</style></head>\
<body><h1>Hearth engine</h1><p>Version {version}, engine id <code>{id}</code>.</p>{dashboard}\
<ul><li><a href=\"/v1/status\">Status</a> (dependency health)</li>\
<li><a href=\"/v1/openapi.json\">API documentation</a> (OpenAPI 3.1)</li>\
<li><a href=\"/v1/control\">Current decision and settings</a></li>\
<li><a href=\"/v1/sensors\">Sensors</a></li><li><a href=\"/v1/relays\">Relays</a></li>\
<li><a href=\"/v1/agents\">Agents</a></li></ul></body></html>"
    ))
}

/// The dashboard's URL: the configured one, else port [`DASHBOARD_PORT`] on the host the
/// browser asked for (its `Host` header, port dropped); `None` without a usable host. The
/// header is whatever the client sent: only a well-formed host is used, and the page escapes
/// it anyway.
pub(crate) fn dashboard_url(configured: Option<&str>, host: Option<&str>) -> Option<String> {
    if let Some(url) = configured {
        return Some(url.to_owned());
    }
    let authority: axum::http::uri::Authority = host?.parse().ok()?;
    let name = authority.host();
    // A DNS name or IPv4 address, or a bracketed IPv6 address; no user info.
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
    let ipv6 = name.starts_with('[')
        && name.ends_with(']')
        && name[1..name.len() - 1].chars().all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'));
    let ok =
        !name.is_empty() && !authority.as_str().contains('@') && (ipv6 || name.chars().all(plain));
    ok.then(|| format!("http://{name}:{DASHBOARD_PORT}/"))
}

/// Text for HTML, in element content and in quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Service health: 200 when the database stores, 503 with the reason and since when it has
/// not. During a storage fault (a full disk, a filesystem turned read-only, I/O errors)
/// readings are refused with 503, so agents keep them queued, and control goes on from what
/// the engine holds in memory; the engine checks every second whether it can store again.
/// Once it can, it writes again the readings and changes confirmed in the seconds before the
/// fault (a failing storage may lose its last commits), and the database check's detail says
/// so until the next restart.
#[utoipa::path(get, path = "/v1/status", operation_id = "get_status", tag = "service",
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
        (Ok(()), _) => {
            let mut detail = format!("{} stores and answers", store.backend());
            if let Some(r) = store.last_recovery() {
                detail.push_str(&format!(
                    "; recovered at {} from a fault found at {} ({}), and wrote again the \
                     {} readings and {} changes confirmed in the seconds before it",
                    r.at, r.since, r.fault, r.readings, r.changes
                ));
            }
            check(true, detail, None)
        }
        (Err(_), StorageHealth::Degraded { reason, since }) => check(
            false,
            format!(
                "{} cannot store: {reason}; readings are refused (503) and stay queued at the \
                 agents, control goes on from memory",
                store.backend()
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

/// Who the presented credential belongs to: `anonymous` without one, `admin` or `agent` (with
/// its host id and what its device key allows) with a valid one, 403 with a wrong one. Changes
/// nothing; the web UI checks a typed login with it, a third-party agent its credential.
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
        return Ok(axum::Json(Identity { role: Role::Anonymous, host_id: None, key_role: None }));
    }
    Ok(axum::Json(match Caller::from_request_parts(&mut parts, &state).await? {
        Caller::Admin => Identity { role: Role::Admin, host_id: None, key_role: None },
        Caller::Agent(host, key_role) => {
            Identity { role: Role::Agent, host_id: Some(host), key_role: Some(key_role) }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_is_on_port_8088_of_the_host_the_browser_used() {
        let cases = [
            (Some("thermostat.local:8080"), Some("http://thermostat.local:8088/")),
            (Some("192.168.1.20:8080"), Some("http://192.168.1.20:8088/")),
            (Some("hearth"), Some("http://hearth:8088/")),
            (Some("[fe80::1]:8080"), Some("http://[fe80::1]:8088/")),
            // Not a host: no link rather than a made-up one.
            (Some("evil\"><script>:80"), None),
            (Some("user@host:8080"), None),
            (Some(""), None),
            (None, None),
        ];
        for (host, want) in cases {
            assert_eq!(dashboard_url(None, host).as_deref(), want, "{host:?}");
        }
        // Configured: as it is, whatever the browser used.
        let url = "https://hearth.example/dash?a=1&b=2";
        assert_eq!(dashboard_url(Some(url), Some("x:1")).as_deref(), Some(url));
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(escape("a&b<c>\"d'"), "a&amp;b&lt;c&gt;&quot;d&#39;");
    }
}
