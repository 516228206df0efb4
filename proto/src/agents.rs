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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentKind {
    /// Reports temperatures with `PUT /v1/sensors/update`.
    Sensor,
    /// Switches outputs; registers with `POST /v1/relays/register`.
    Relay,
}

/// What an agent's device key allows, chosen when the key is printed
/// (`hearth-engine device-key --role sensor|relay|both HOST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Report readings (`PUT /v1/sensors/update`, `/v1/sensors/backlog`).
    Sensor,
    /// Register relay outputs (`POST /v1/relays/register`) and obey the engine's commands.
    Relay,
    /// Both, for one host that runs a sensor agent and a relay agent.
    Both,
    /// A key printed before keys had roles. The engine accepts it for what it did before
    /// (reports and registrations) with a warning, unless started with
    /// `--allow-untyped-keys false`: re-issue it with a role.
    Untyped,
}

impl KeyRole {
    /// True when a key of this role may act as an agent of `kind`.
    pub fn allows(self, kind: AgentKind) -> bool {
        matches!(
            (self, kind),
            (Self::Both | Self::Untyped, _)
                | (Self::Sensor, AgentKind::Sensor)
                | (Self::Relay, AgentKind::Relay)
        )
    }

    /// The role's name as on the wire and on the command line (`sensor`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sensor => "sensor",
            Self::Relay => "relay",
            Self::Both => "both",
            Self::Untyped => "untyped",
        }
    }
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
    /// True when `last_seen` is within the engine's offline limit and, for a relay agent,
    /// the engine's calls to it get an answer (`unreachable_since` is null): a relay agent
    /// that stops answering its lease renewals is offline at the first failed renewal.
    pub online: bool,
    /// Agent clock minus engine clock at the last contact, in seconds, when the agent reported
    /// its clock (for a sensor agent: the offset the engine applies, kept while new
    /// measurements stay within 2 s of it). Pi Zeros have no RTC and boot with a wrong clock
    /// until NTP syncs.
    pub clock_offset_s: Option<f64>,
    /// True when `clock_offset_s` is beyond the engine's limit (`--clock-skew-max-s`). The engine
    /// then re-times the agent's readings that are consistent with the offset (live ones read
    /// shortly before `agent_time`, queued ones the offset places before their receipt), so
    /// control and charts see them at the right time; fix the agent's clock (NTP) anyway.
    #[serde(default)]
    pub clock_skewed: bool,
    /// Relay agents: when the engine's calls to the agent (lease renewals, commands, reads)
    /// started getting no answer (refused, timed out); null while it answers. Set at the first
    /// failed call, so within a quarter lease of the agent's death when it runs a heat or
    /// cool output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_since: Option<Timestamp>,
    /// Relay agents: why the engine's last call to the agent failed (no answer, or an error
    /// status other than a refusal); null when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_error: Option<String>,
    /// Relay agents: the latest time the agent ran its fallback program because it lost the
    /// engine (since when, why, and when the engine took over); null if never seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<crate::fallback::AgentFallback>,
    /// Relay agents: the hardware backend as registered (`rppal`, `gpio-cdev`, `simulated`);
    /// null for sensor agents and agents that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
    /// The role of the device key the agent last presented; null when it has not been heard
    /// from since the engine started recording it. `untyped`: a key printed before keys had
    /// roles; re-issue it (`hearth-engine device-key --role sensor|relay|both HOST`).
    #[serde(default)]
    pub key_role: Option<KeyRole>,
    /// Readings from this agent the engine stored at their own timestamps although it could
    /// not place them in time: stamped after their receipt by more than the skew limit (read
    /// while the agent's clock was ahead, corrected since), or inconsistent with a wrong clock.
    /// They are kept (none stamped after its receipt becomes a sensor's latest) and mean the
    /// agent's clock was wrong when it read them. Counted since the agent was first seen.
    #[serde(default)]
    pub misdated_readings: u64,
    /// When the engine last stored such a reading.
    #[serde(default)]
    pub last_misdated: Option<Timestamp>,
}
