//! The decision loop: its settings, the decision algorithms (plugins) and the decisions it
//! makes (`/v1/control`, `/v1/control/settings`, `/v1/control/decisions`, `/v1/plugins`).
//!
//! Every decision goes through the same layers, in this order: the schedule gives the target;
//! the sensors of the winning rule give the effective temperature (weighted mean of the usable
//! ones); the selected algorithm proposes heat/cool; the frost floor and max ceiling override
//! it (in every mode, OFF included); the minimum on/off times and the heat↔cool changeover delay
//! hold the equipment's current state where switching would short-cycle it.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;
use crate::schedules::RuleRef;

/// What the system may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Heat towards the heating setpoint; never cool (except above the max ceiling).
    Heat,
    /// Cool towards the cooling setpoint; never heat (except below the frost floor).
    Cool,
    /// Heat below the heating setpoint, cool above the cooling setpoint, idle in between.
    Auto,
    /// Neither, except to hold the frost floor and the max ceiling.
    Off,
}

/// Heating or cooling equipment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum System {
    /// The heating relays (furnace, boiler, heat pump in heating).
    Heat,
    /// The cooling relays (air conditioner).
    Cool,
}

/// `ControlSettings::frost_floor_c`, °C.
pub const FROST_FLOOR_C: RangeInclusive<f64> = 0.0..=15.0;
/// `ControlSettings::max_ceiling_c`, °C.
pub const MAX_CEILING_C: RangeInclusive<f64> = 20.0..=45.0;
/// `ControlSettings::min_on_s`, seconds.
pub const MIN_ON_S: RangeInclusive<u32> = 0..=3600;
/// `ControlSettings::min_off_s`, seconds.
pub const MIN_OFF_S: RangeInclusive<u32> = 0..=3600;
/// `ControlSettings::changeover_s`, seconds.
pub const CHANGEOVER_S: RangeInclusive<u32> = 0..=7200;
/// `ControlSettings::auto_deadband_c`, °C.
pub const AUTO_DEADBAND_C: RangeInclusive<f64> = 0.5..=10.0;
/// `ControlSettings::outlier_c`, °C.
pub const OUTLIER_C: RangeInclusive<f64> = 1.0..=30.0;
/// `ControlSettings::sensor_loss_duty_pct`, percent.
pub const SENSOR_LOSS_DUTY_PCT: RangeInclusive<u32> = 0..=50;
/// The period the sensor-loss duty (`ControlSettings::sensor_loss_duty_pct`) runs in, seconds:
/// the engine's, and a relay agent's blind duty when nobody chose another.
pub const SENSOR_LOSS_PERIOD_S: u32 = 30 * 60;
/// `limit` of `GET /v1/control/decisions`.
pub const DECISIONS_LIMIT: RangeInclusive<u32> = 1..=1000;
/// `limit` when the query leaves it out.
pub const DEFAULT_DECISIONS_LIMIT: u32 = 50;

/// The decision loop's settings (`GET /v1/control`, `PUT /v1/control/settings`). Fields left
/// out of a `PUT` keep their defaults (shown in the example).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default)]
#[schema(example = json!({"mode": "heat", "algorithm": "hysteresis",
    "params": {"hysteresis_c": 0.3}, "frost_floor_c": 7.0, "max_ceiling_c": 30.0,
    "min_on_s": 180, "min_off_s": 180, "changeover_s": 300, "auto_deadband_c": 1.5,
    "outlier_c": 5.0, "sensor_loss_duty_pct": 10}))]
#[serde(deny_unknown_fields)]
pub struct ControlSettings {
    /// Heat, cool, auto or off.
    pub mode: Mode,
    /// The decision algorithm's id (see `GET /v1/plugins`).
    pub algorithm: String,
    /// The algorithm's parameters, checked against its JSON schema; missing ones take the
    /// schema's defaults.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    /// Below this effective temperature heat runs whatever the mode, schedule or algorithm,
    /// °C.
    pub frost_floor_c: f64,
    /// Above this effective temperature heat never runs, and cooling runs if there is any,
    /// whatever the mode, °C. Setpoints above it are clamped to it.
    pub max_ceiling_c: f64,
    /// Once on, heating or cooling stays on at least this long unless safety says off,
    /// seconds.
    pub min_on_s: u32,
    /// Once off, heating or cooling stays off at least this long, also against the frost floor,
    /// seconds.
    pub min_off_s: u32,
    /// Between heating ending and cooling starting (and back), seconds.
    pub changeover_s: u32,
    /// In auto mode, the cooling setpoint is kept at least this far above the heating
    /// setpoint, °C.
    pub auto_deadband_c: f64,
    /// With three or more usable sensors, a sensor further than this from their median is an
    /// outlier and drops out, °C.
    pub outlier_c: f64,
    /// Sensor-loss mode: with no usable sensor at all, heat runs this share of every 30 minutes
    /// (percent; 0 = heat stays off) in heat, auto and off mode; in cool mode nothing runs.
    /// The engine cannot see the frost floor without sensors, so a small duty keeps pipes from
    /// freezing; cooling stays off.
    pub sensor_loss_duty_pct: u32,
}

impl Default for ControlSettings {
    fn default() -> Self {
        Self {
            mode: Mode::Heat,
            algorithm: "hysteresis".to_owned(),
            params: serde_json::Value::Object(serde_json::Map::new()),
            frost_floor_c: 7.0,
            max_ceiling_c: 30.0,
            min_on_s: 180,
            min_off_s: 180,
            changeover_s: 300,
            auto_deadband_c: 1.5,
            outlier_c: 5.0,
            sensor_loss_duty_pct: 10,
        }
    }
}

/// A decision algorithm the engine offers (`GET /v1/plugins`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PluginInfo {
    /// The id to put in `ControlSettings.algorithm`.
    pub id: String,
    /// A short name for people.
    pub name: String,
    /// What it does, in a few sentences.
    pub description: String,
    /// JSON Schema (2020-12) of its parameters: an object schema whose properties carry
    /// `title`, `description`, `type`, `minimum`, `maximum` and `default`, so a UI can render a
    /// form from it.
    #[schema(value_type = Object)]
    pub params_schema: serde_json::Value,
}

/// Why the loop decided what it did: a stable code for machines, `reason` text for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// Heat on: the temperature is below `heat setpoint − hysteresis`.
    HeatBelowBand,
    /// Heat off: the temperature is above `heat setpoint + hysteresis`.
    HeatAboveBand,
    /// Heating: inside the band, the heat keeps its current state.
    HeatInBand,
    /// Cool on: the temperature is above `cool setpoint + hysteresis`.
    CoolAboveBand,
    /// Cool off: the temperature is below `cool setpoint − hysteresis`.
    CoolBelowBand,
    /// Cooling: inside the band, the cooling keeps its current state.
    CoolInBand,
    /// Auto mode: between the heating and cooling bands, neither runs.
    AutoDeadband,
    /// Predictive start: heat on early so the next segment's setpoint is reached when it begins.
    Preheat,
    /// Predictive start: cool on early for the next segment.
    Precool,
    /// Anticipation: heat off (or kept off) before the band says so, because the heat already
    /// in the heater and emitters will carry the room to its setpoint (learned rate and lag).
    HeatCoast,
    /// Held on: the minimum on time has not passed.
    MinOnTime,
    /// Held off: the minimum off time has not passed.
    MinOffTime,
    /// Held off: the other system ran too recently (heat↔cool changeover delay).
    Changeover,
    /// Neither runs: the mode is off.
    ModeOff,
    /// Heat on: below the frost floor (whatever the mode or algorithm).
    FrostFloor,
    /// Heat off (and cooling on if there is any): above the max ceiling.
    MaxCeiling,
    /// Sensor-loss mode: no usable sensor; heat runs its reduced duty share now.
    SensorLossDuty,
    /// Sensor-loss mode: no usable sensor; heat is off (outside the duty share, or duty 0).
    SensorLossOff,
}

/// Why a sensor did not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// It has never reported a reading.
    NoReading,
    /// Its newest reading is older than the staleness limit.
    Stale,
    /// Its newest reading was null (the sensor failed to read).
    Failed,
    /// Its newest value cannot be a room temperature (out of −40..85 °C, or the DS18B20
    /// power-on value 85 °C).
    Implausible,
    /// Its value has not moved while the heating or cooling ran for an hour in all: a probe
    /// stuck at one value looks like a steady room, and would keep the heat on (or off) without
    /// end. Used again as soon as its value changes.
    Stuck,
    /// Further than `outlier_c` from the median of the usable sensors.
    Outlier,
    /// Not selected by the rule in force (and not needed as a fallback).
    NotSelected,
}

/// Where the effective temperature came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SensorSource {
    /// The sensors of the rule in force.
    Selected,
    /// None of the selected sensors was usable: every other usable sensor, weight 1.
    Fallback,
    /// No usable sensor at all: sensor-loss mode.
    None,
}

/// One sensor's part in a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SensorInput {
    /// The sensor id.
    pub id: String,
    /// Its alias, if it has one (used in reason texts).
    pub name: Option<String>,
    /// Its newest value, °C, if any.
    pub value: Option<f64>,
    /// When that value was read.
    pub at: Option<Timestamp>,
    /// Its weight in the mean (0 when it is not selected).
    pub weight: f64,
    /// True when the rule in force selects it.
    pub selected: bool,
    /// True when it counted towards the effective temperature.
    pub used: bool,
    /// Why it did not count, when it did not.
    pub excluded: Option<Exclusion>,
    /// The exclusion in words, e.g. `stale: last reading 14 min ago`.
    pub detail: Option<String>,
}

/// Predictive start's view of the next target (present when it is considering one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Outlook {
    /// The system the next target needs.
    pub system: System,
    /// The next segment's setpoint, °C.
    pub target_c: f64,
    /// When the next segment begins.
    pub segment_start: Timestamp,
    /// The learned rate, °C per hour (rising for heat, falling for cool).
    pub rate_c_per_h: f64,
    /// How many recorded runs the rate was learned from (0: the configured default rate).
    pub samples: u32,
    /// How long before `segment_start` the system starts (bounded by the max lead time),
    /// seconds.
    pub lead_s: u64,
}

/// A decision of the loop (`GET /v1/control`, `GET /v1/control/decisions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// When it was made.
    pub at: Timestamp,
    /// The mode in force.
    pub mode: Mode,
    /// The algorithm that proposed it.
    pub algorithm: String,
    /// True when heat is called for.
    pub heat: bool,
    /// True when cooling is called for.
    pub cool: bool,
    /// The temperature decided on, °C; null in sensor-loss mode.
    pub effective_temp_c: Option<f64>,
    /// The heating setpoint in force, °C (after the max ceiling).
    pub heat_setpoint_c: f64,
    /// The cooling setpoint in force, °C.
    pub cool_setpoint_c: f64,
    /// The schedule rule (or override, or default) that set the target.
    pub rule: RuleRef,
    /// Why, as a stable code.
    pub reason_code: ReasonCode,
    /// Why, in words, e.g. `heat on: living room 19.2 °C < 20.5 − 0.3 °C`.
    pub reason: String,
    /// Where the effective temperature came from.
    pub sensor_source: SensorSource,
    /// Every known sensor and whether it counted.
    pub sensors: Vec<SensorInput>,
    /// When the running (or next) system is expected to reach its setpoint at the learned rate;
    /// null when idle and nothing is coming, or nothing is learned.
    pub expected_at: Option<Timestamp>,
    /// Predictive start's view of the next segment, if it looked at one.
    pub outlook: Option<Outlook>,
    /// When the protection holding the equipment lets it switch: the end of the minimum on
    /// time (`min_on_time`), of the minimum off time (`min_off_time`) or of the changeover
    /// delay (`changeover`); null when nothing holds it, or while the other system still runs.
    #[serde(default)]
    pub held_until: Option<Timestamp>,
}

/// `GET /v1/control`: the settings and the current decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ControlView {
    /// The settings in force.
    pub settings: ControlSettings,
    /// The latest decision; null until the loop has run once.
    pub decision: Option<Decision>,
}

/// Query of `GET /v1/control/decisions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DecisionsQuery {
    /// Only decisions at or after this instant.
    pub from: Option<Timestamp>,
    /// Only decisions before this instant.
    pub to: Option<Timestamp>,
    /// How many, newest first.
    pub limit: Option<u32>,
    /// The zone (id); absent: the default zone (`house`).
    pub zone: Option<String>,
}
