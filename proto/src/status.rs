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
}
