//! `GET /v1/agents`: the sensor and relay agents the engine has heard from.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;

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
