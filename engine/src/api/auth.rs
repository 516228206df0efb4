//! Who is calling: credentials are checked before anything else about a request.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use hearth_common::auth::{ADMIN_PRINCIPAL, ENGINE_PRINCIPAL, ct_eq, parse_bearer};
use hearth_proto::ErrorCode;

use super::AppState;
use super::error::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A sensor or relay agent, by host id.
    Agent(String),
    /// A person or the web UI.
    Admin,
}

impl Caller {
    /// Only the agent `host_id` may speak for `host_id`.
    pub(crate) fn require_host(&self, host_id: &str) -> Result<(), ApiError> {
        match self {
            Self::Agent(h) if h == host_id => Ok(()),
            Self::Agent(h) => Err(ApiError::forbidden(format!(
                "the credential of host {h:?} cannot act for host {host_id:?}"
            ))),
            Self::Admin => Err(ApiError::forbidden("only the agent itself may do this")),
        }
    }

    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Agent(_) => Err(ApiError::forbidden("this needs the admin credential")),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let unauthorized =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, m);
        let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(unauthorized(
                "credential required: Authorization: Bearer <principal>.<token>",
            ));
        };
        let (principal, token) = value.to_str().ok().and_then(parse_bearer).ok_or_else(|| {
            unauthorized("malformed credential: expected Bearer <principal>.<token>")
        })?;
        let site = &state.inner.site;
        let caller = match principal {
            ADMIN_PRINCIPAL if ct_eq(token.as_bytes(), site.admin_token().as_bytes()) => {
                Some(Self::Admin)
            }
            ADMIN_PRINCIPAL | ENGINE_PRINCIPAL => None,
            host if hearth_common::host_id::validate(host).is_ok()
                && ct_eq(token.as_bytes(), site.device_key(host).agent_token().as_bytes()) =>
            {
                Some(Self::Agent(host.to_owned()))
            }
            _ => None,
        };
        caller.ok_or_else(|| {
            // Log who was refused, never the token.
            tracing::warn!(%principal, path = %parts.uri.path(), "refused a wrong credential");
            ApiError::forbidden("wrong credential")
        })
    }
}
