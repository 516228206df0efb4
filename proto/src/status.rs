//! `GET /v1/status`: service health, used by the engine and the relay agent.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Health of a service and of each dependency it needs. Served with 200 when `healthy` is true,
/// 503 otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceStatus {
    /// The service name, e.g. `hearth-engine`.
    pub service: String,
    /// The service's version.
    pub version: String,
    /// True when every check passed.
    pub healthy: bool,
    /// One entry per dependency (database, hardware backend, ...).
    pub checks: Vec<HealthCheck>,
}

/// The health of one dependency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthCheck {
    /// What was checked, e.g. `database`.
    pub name: String,
    /// True when the dependency works.
    pub ok: bool,
    /// Details: what was found or what failed.
    pub detail: String,
    /// Since when the dependency has been failing; absent while it works (and from services
    /// that do not track it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<crate::Timestamp>,
}

/// Who the engine takes the caller for (`GET /v1/auth`): lets a front end check a credential
/// someone typed without changing anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Identity {
    /// What the credential allows.
    pub role: Role,
    /// The agent's host id, for the `agent` role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_id: Option<String>,
    /// What the agent's device key allows, for the `agent` role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_role: Option<crate::agents::KeyRole>,
}

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// No credential: reads only.
    Anonymous,
    /// A sensor or relay agent: reports for its own host.
    Agent,
    /// A person (or the web UI on their behalf): everything that changes the house.
    Admin,
}
