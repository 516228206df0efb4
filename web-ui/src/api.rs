//! `/api`: the login and the relay of the dashboard's requests to the engine.
//!
//! Every change goes through [`guard`]: a live session (else 401), its CSRF token in
//! `X-Hearth-CSRF` (else 403), and no cross-site `Origin`/`Sec-Fetch-Site` (else 403). Only
//! then is the request relayed, with the session's admin credential, to the engine, whose
//! status and body come back unchanged, validation messages included.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hearth_common::auth::ADMIN_PRINCIPAL;
use hearth_proto::client::ClientError;
use hearth_proto::status::Role;
use hearth_proto::{ErrorBody, ErrorCode};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::routes::{Access, Lookup, lookup};
use crate::session::{self, CSRF_HEADER, Grant};

/// An error answer in the engine's format.
pub(crate) fn error(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    (status, axum::Json(ErrorBody::new(code, message))).into_response()
}

fn engine_error(e: &ClientError) -> Response {
    match e {
        ClientError::Api { status, body } => {
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY);
            (status, axum::Json(body.clone())).into_response()
        }
        ClientError::Transport(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            format!("the engine does not answer: {e}"),
        ),
    }
}

fn no_engine() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        "no engine found yet (looking for it by mDNS)",
    )
}

/// `GET /api/session` and the body of a successful login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionView {
    /// True when the browser's cookie names a live session.
    pub authenticated: bool,
    /// The session's CSRF token, to send as `X-Hearth-CSRF` with every change.
    pub csrf: Option<String>,
    /// When the session ends if it is not used before.
    pub expires_at: Option<jiff::Timestamp>,
}

impl SessionView {
    fn of(grant: Option<&Grant>) -> Self {
        match grant {
            None => Self { authenticated: false, csrf: None, expires_at: None },
            Some(g) => Self {
                authenticated: true,
                csrf: Some(g.csrf.clone()),
                expires_at: jiff::SignedDuration::try_from(g.remaining)
                    .ok()
                    .and_then(|d| jiff::Timestamp::now().checked_add(d).ok()),
            },
        }
    }
}

fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).and_then(session::from_cookie_header)
}

/// `GET /api/session`: whether this browser is logged in, and its CSRF token. Only a page of
/// this origin can read the answer (no CORS headers), so the token stays with the dashboard.
pub(crate) async fn get_session(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let grant = session_id(&headers).and_then(|id| state.sessions().touch(id));
    axum::Json(SessionView::of(grant.as_ref())).into_response()
}

/// Is the request from a page of this very origin (or from no browser at all)? Browsers send
/// `Origin` on every cross-origin request and on same-origin POST/PUT/DELETE, and
/// `Sec-Fetch-Site` on everything.
fn same_origin(headers: &HeaderMap) -> bool {
    let fetch_site_ok = headers
        .get("sec-fetch-site")
        .is_none_or(|v| matches!(v.as_bytes(), b"same-origin" | b"none"));
    let origin_ok = match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            let (origin, host) = (origin.as_bytes(), host.as_bytes());
            [&b"http://"[..], b"https://"]
                .iter()
                .any(|scheme| origin.strip_prefix(*scheme).is_some_and(|rest| rest == host))
        }
        (Some(_), None) => false,
    };
    fetch_site_ok && origin_ok
}

/// Why a change was refused.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    NoSession,
    CrossSite,
    BadCsrf,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::NoSession => error(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "log in first: changes need the admin login (or it has expired)",
            ),
            Self::CrossSite => {
                error(StatusCode::FORBIDDEN, ErrorCode::Forbidden, "cross-site request refused")
            }
            Self::BadCsrf => error(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                "missing or wrong X-Hearth-CSRF header (reload the page)",
            ),
        }
    }
}

/// The session behind a change, or the refusal.
fn guard(state: &AppState, headers: &HeaderMap) -> Result<Grant, Refusal> {
    let grant =
        session_id(headers).and_then(|id| state.sessions().touch(id)).ok_or(Refusal::NoSession)?;
    if !same_origin(headers) {
        return Err(Refusal::CrossSite);
    }
    let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !grant.csrf_matches(csrf) {
        return Err(Refusal::BadCsrf);
    }
    Ok(grant)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    token: String,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(';').next().is_some_and(|t| t.trim() == "application/json"))
}

/// `POST /api/login {"token": "<admin token>"}`: check the token with the engine
/// (`GET /v1/auth`), then start a session. JSON only: a cross-site form cannot send it
/// without a CORS preflight, which this server never grants.
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !same_origin(&headers) {
        return Refusal::CrossSite.into_response();
    }
    if !is_json(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unsupported,
            "send the login as application/json",
        );
    }
    let login: Login = match serde_json::from_slice(&body) {
        Ok(l) => l,
        Err(e) => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorCode::InvalidField,
                format!("expected {{\"token\": \"...\"}}: {e}"),
            );
        }
    };
    // People paste either the token or the whole `admin.<token>` credential.
    let token = login.token.trim();
    let token = token.strip_prefix("admin.").unwrap_or(token);
    let wrong = || error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "wrong admin token");
    if token.is_empty() || token.len() > 128 || !token.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return wrong();
    }
    let credential = format!("{ADMIN_PRINCIPAL}.{token}");
    let Some(client) = state.engine().client() else { return no_engine() };
    match client.with_credential(Some(credential.clone())).whoami().await {
        Ok(id) if id.role == Role::Admin => {}
        Ok(_) => return wrong(),
        Err(ClientError::Api { status: 401 | 403, .. }) => return wrong(),
        Err(e) => return engine_error(&e),
    }
    let (id, grant) = match state.sessions().create(credential) {
        Ok(created) => created,
        Err(e) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, e.to_string());
        }
    };
    tracing::info!("admin login");
    let cookie = format!(
        "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        session::COOKIE,
        state.sessions().max().as_secs()
    );
    let mut resp = axum::Json(SessionView::of(Some(&grant))).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `POST /api/logout`: end the session (a change like any other: session and CSRF token).
pub(crate) async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(refused) = guard(&state, &headers) {
        return refused.into_response();
    }
    if let Some(id) = session_id(&headers) {
        state.sessions().remove(id);
    }
    let clear = format!("{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0", session::COOKIE);
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

/// `/api/v1/...`: relay to the engine's route of the same path, if the table has it.
pub(crate) async fn relay(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix("/api").unwrap_or(uri.path());
    let credential = match lookup(&method, path) {
        Lookup::NotFound => {
            return error(StatusCode::NOT_FOUND, ErrorCode::NotFound, format!("no route {path}"));
        }
        Lookup::WrongMethod => {
            return error(
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::Unsupported,
                format!("{method} is not allowed on {path}"),
            );
        }
        Lookup::Found(Access::Read) => None,
        Lookup::Found(Access::Change) => match guard(&state, &headers) {
            Ok(grant) => Some(grant.credential),
            Err(refused) => return refused.into_response(),
        },
    };
    let json = if body.is_empty() {
        None
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::MalformedJson,
                    format!("body is not valid JSON: {e}"),
                );
            }
        }
    };
    let Some(client) = state.engine().client() else { return no_engine() };
    let path_and_query = uri.query().map_or_else(|| path.to_owned(), |q| format!("{path}?{q}"));
    match client.with_credential(credential).relay(method, &path_and_query, json.as_ref()).await {
        Ok((status, body)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            match body {
                // The engine's bytes as they are (key order included).
                Some(body) => {
                    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
                }
                None => status.into_response(),
            }
        }
        Err(e) => {
            if e.is_unreachable() {
                state.engine().unreachable();
            }
            engine_error(&e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_this_origin_counts_as_same_origin() {
        assert!(same_origin(&headers(&[("host", "pi:8088")])), "no Origin: not a browser");
        assert!(same_origin(&headers(&[("host", "pi:8088"), ("origin", "http://pi:8088")])));
        assert!(!same_origin(&headers(&[("host", "pi:8088"), ("origin", "http://evil:8088")])));
        assert!(!same_origin(&headers(&[("host", "pi:8088"), ("origin", "http://pi:8088.evil")])));
        assert!(!same_origin(&headers(&[("host", "pi:8088"), ("origin", "null")])));
        assert!(!same_origin(&headers(&[("host", "pi:8088"), ("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&headers(&[("host", "pi:8088"), ("sec-fetch-site", "same-site")])));
        assert!(same_origin(&headers(&[("host", "pi:8088"), ("sec-fetch-site", "same-origin")])));
    }
}
