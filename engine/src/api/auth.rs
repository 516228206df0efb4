//! Who is calling: credentials are checked before anything else about a request.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use hearth_common::auth::{ADMIN_PRINCIPAL, ENGINE_PRINCIPAL, ct_eq, parse_bearer};
use hearth_proto::ErrorCode;
use hearth_proto::agents::{AgentKind, KeyRole};

use super::AppState;
use super::error::ApiError;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Caller {
    /// A sensor or relay agent, by host id, with what its device key allows.
    Agent(String, KeyRole),
    /// A person or the web UI.
    Admin,
}

impl Caller {
    /// Only the agent `host_id`, with a key that allows acting as a `kind` agent, may do this.
    /// An untyped key (printed before keys had roles) is accepted for both kinds, as before,
    /// and warned about once per agent.
    pub(crate) fn require_agent(
        &self,
        state: &AppState,
        host_id: &str,
        kind: AgentKind,
    ) -> Result<KeyRole, ApiError> {
        let (h, role) = match self {
            Self::Agent(h, role) if h == host_id => (h, *role),
            Self::Agent(h, _) => {
                return Err(ApiError::forbidden(format!(
                    "the credential of host {h:?} cannot act for host {host_id:?}"
                )));
            }
            Self::Admin => return Err(ApiError::forbidden("only the agent itself may do this")),
        };
        let what = match kind {
            AgentKind::Sensor => "report readings",
            AgentKind::Relay => "register relay outputs",
        };
        if !role.allows(kind) {
            tracing::warn!(host_id = %h, key_role = role.as_str(), "refused: {what} with a {} key", role.as_str());
            return Err(ApiError::forbidden(format!(
                "the device key of host {h:?} is a {} key: it cannot {what}. Print a key for \
                 this with `hearth-engine device-key --role {} {h}` (or `--role both` for a host \
                 that runs both agents)",
                role.as_str(),
                kind_role(kind).as_str(),
            )));
        }
        if role == KeyRole::Untyped {
            state.inner.untyped.warn_once(h, kind);
        }
        Ok(role)
    }

    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Self::Admin => Ok(()),
            Self::Agent(..) => Err(ApiError::forbidden("this needs the admin credential")),
        }
    }
}

/// The key role made for an agent of `kind`.
fn kind_role(kind: AgentKind) -> KeyRole {
    match kind {
        AgentKind::Sensor => KeyRole::Sensor,
        AgentKind::Relay => KeyRole::Relay,
    }
}

/// Agents seen with an untyped device key, each warned about once (per engine run and kind).
#[derive(Debug, Default)]
pub(crate) struct UntypedKeys {
    /// False (`--allow-untyped-keys false`): untyped keys are refused like wrong ones.
    pub(crate) allowed: bool,
    warned: std::sync::Mutex<std::collections::HashSet<(String, AgentKind)>>,
}

impl UntypedKeys {
    pub(crate) fn new(allowed: bool) -> Self {
        Self { allowed, warned: Default::default() }
    }

    fn warn_once(&self, host_id: &str, kind: AgentKind) {
        // A poisoned lock only means another request panicked mid-insert: warn again then.
        let first =
            self.warned.lock().map(|mut w| w.insert((host_id.to_owned(), kind))).unwrap_or(true);
        if first {
            tracing::warn!(
                %host_id,
                kind = kind_role(kind).as_str(),
                "this agent uses an untyped device key (printed before keys had roles); it is \
                 accepted as before, but any agent's key could then act for it. Re-issue it: \
                 `hearth-engine device-key --role {} {host_id}` (`--role both` if the host runs \
                 both agents), install it on the agent and restart the agent",
                kind_role(kind).as_str(),
            );
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
            host if hearth_common::host_id::validate(host).is_ok() => {
                match site.agent_key_role(host, token) {
                    Some(KeyRole::Untyped) if !state.inner.untyped.allowed => {
                        tracing::warn!(host_id = %host, "refused an untyped device key");
                        return Err(ApiError::forbidden(format!(
                            "untyped device key refused (the engine runs with \
                             --allow-untyped-keys false): print one with a role, \
                             `hearth-engine device-key --role sensor|relay|both {host}`"
                        )));
                    }
                    role => role.map(|role| Self::Agent(host.to_owned(), role)),
                }
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
