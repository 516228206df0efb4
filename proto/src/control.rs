//! The decision loop: its settings and the decisions it makes (`/v1/control`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;

/// What the system may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Heat towards the setpoint.
    Heat,
    /// Never heat.
    Off,
}

/// The decision loop's settings (`GET`/`PUT /v1/control/settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"mode": "heat", "setpoint_c": 20.5, "hysteresis_c": 0.3,
    "min_on_s": 180, "min_off_s": 180}))]
pub struct ControlSettings {
    /// Heat or off.
    pub mode: Mode,
    /// The wanted temperature, °C (5..=30).
    pub setpoint_c: f64,
    /// Half-width of the band around the setpoint, °C (0..=5): heat turns on below
    /// `setpoint − hysteresis` and off above `setpoint + hysteresis`.
    pub hysteresis_c: f64,
    /// Once on, heat stays on at least this long, seconds (0..=3600).
    pub min_on_s: u32,
    /// Once off, heat stays off at least this long, seconds (0..=3600).
    pub min_off_s: u32,
}

/// Why the loop decided what it did: a stable code for machines, `reason` text for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Heat on: the temperature is below `setpoint − hysteresis`.
    BelowBand,
    /// Heat off: the temperature is above `setpoint + hysteresis`.
    AboveBand,
    /// Inside the band: the heat keeps its current state.
    InBand,
    /// Heat held on: the minimum on time has not passed.
    MinOnTime,
    /// Heat held off: the minimum off time has not passed.
    MinOffTime,
    /// Heat off: no fresh sensor reading to decide on.
    NoSensors,
    /// Heat off: the mode is off.
    ModeOff,
}

/// One sensor's part in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SensorInput {
    /// The sensor id.
    pub id: String,
    /// Its newest value, °C, if any.
    pub value: Option<f64>,
    /// True when it counted towards the effective temperature.
    pub used: bool,
    /// Why it did not count (`stale`, `failed`), when it did not.
    pub excluded: Option<String>,
}

/// A decision of the loop (`GET /v1/control`, `GET /v1/control/decisions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// When it was made.
    pub at: Timestamp,
    /// True when heat is called for.
    pub heat: bool,
    /// The temperature decided on (mean of the fresh sensors), °C; null when there was none.
    pub effective_temp_c: Option<f64>,
    /// The setpoint in force, °C.
    pub setpoint_c: f64,
    /// Why, as a stable code.
    pub reason_code: ReasonCode,
    /// Why, in words, e.g. `heat on: 18.9 °C < 20.5 − 0.3 °C`.
    pub reason: String,
    /// Every known sensor and whether it counted.
    pub sensors: Vec<SensorInput>,
}

/// `GET /v1/control`: the settings and the current decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ControlView {
    /// The settings in force.
    pub settings: ControlSettings,
    /// The latest decision; null until the loop has run once.
    pub decision: Option<Decision>,
}
