//! `GET /v1/agents`: the sensor and relay agents the engine has heard from.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;

/// Longest host id, characters. A host id (and an output id in the engine's registry) is
/// letters, digits, `-` and `_`: it appears in URLs and credentials.
pub const MAX_HOST_ID_CHARS: usize = 64;
/// The characters of a host id ([`is_host_id_char`]), as a JSON Schema pattern.
pub const HOST_ID_PATTERN: &str = "^[A-Za-z0-9_-]+$";

/// True for a character a host id may hold: what [`HOST_ID_PATTERN`] says.
pub fn is_host_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// What an agent does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Reports temperatures with `PUT /v1/sensors/update`.
    Sensor,
    /// Switches outputs; registers with `POST /v1/relays/register`.
    Relay,
}

/// An agent as the engine knows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentInfo {
    /// The agent's host id.
    pub host_id: String,
    /// What the agent does. A host running both agents appears twice.
    pub kind: AgentKind,
    /// The agent's own API base URL (relay agents), if it has one.
    pub url: Option<String>,
    /// The last time the engine heard from (or successfully reached) the agent.
    pub last_seen: Timestamp,
    /// True when `last_seen` is within the engine's offline limit.
    pub online: bool,
    /// Agent clock minus engine clock at the last contact, in seconds, when the agent reported
    /// its clock. Pi Zeros have no RTC and boot with a wrong clock until NTP syncs.
    pub clock_offset_s: Option<f64>,
    /// True when `clock_offset_s` is beyond the engine's limit (`--clock-skew-max-s`). The engine
    /// then re-times the agent's live readings by the offset, so control and charts see them at
    /// the right time; fix the agent's clock (NTP) anyway.
    #[serde(default)]
    pub clock_skewed: bool,
}
