//! Zones and plants on the wire: the house's status (`GET /v1/house`, the `house` event).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;
use crate::control::{Decision, System};

/// The house as the loop last planned it (`GET /v1/house`, the `house` event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HouseStatus {
    /// When the plan was made.
    pub at: Timestamp,
    /// Every zone, in the configured order.
    pub zones: Vec<ZoneStatus>,
    /// Every plant, the configured ones first, then one per zone with relays of its own.
    pub plants: Vec<PlantStatus>,
}

/// One zone's decision and valves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ZoneStatus {
    /// The zone's id.
    pub id: String,
    /// The zone's name.
    pub name: String,
    /// The zone's decision.
    pub decision: Decision,
    /// What the zone calls for before the plants' protections.
    pub calling: Option<System>,
    /// The zone's call in words.
    pub text: String,
    /// The zone's valves.
    pub valves: Vec<ValveStatus>,
}

/// One valve's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ValveStatus {
    /// The valve's relay id (`host/output`).
    pub relay: String,
    /// Open (commanded on).
    pub open: bool,
    /// Why.
    pub code: ValveCode,
    /// Why, in words.
    pub reason: String,
}

/// Why a valve is open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValveCode {
    /// Open: its zone calls.
    Calling,
    /// Open: its plant still runs.
    HeldForPlant,
    /// Open: its plant's pump or fan runs on.
    Overrun,
    /// Open: the bypass zone of a plant that must run.
    Bypass,
    /// Closed: its zone does not call.
    Closed,
    /// Closed: a plant serving the zone runs the other system.
    OtherSystem,
}

/// One plant's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlantStatus {
    /// The plant's id.
    pub id: String,
    /// The plant's name.
    pub name: String,
    /// Heating commanded on.
    pub heat: bool,
    /// Cooling commanded on.
    pub cool: bool,
    /// Why.
    pub code: PlantCode,
    /// Why, in words.
    pub reason: String,
    /// When a protection's hold ends.
    pub held_until: Option<Timestamp>,
}

/// Why a plant is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlantCode {
    /// On: enough zones call and their valves are open.
    Calling,
    /// Off: zones call, their valves are still opening.
    ValveDelay,
    /// Off: fewer zones call than the plant needs.
    TooFewZones,
    /// Off: no zone calls.
    Idle,
    /// Off: its pump or fan runs on.
    Overrun,
    /// Held on: the minimum on time.
    MinOnTime,
    /// Held off: the minimum off time.
    MinOffTime,
    /// Held off: the other system ran too recently.
    Changeover,
    /// Off: its maximum run reached.
    MaxRun,
    /// Off: no valve of its zones is open for it.
    NoOutlet,
    /// Off at once: every zone it serves stops for safety.
    SafetyStop,
}
