//! Zones and plants: a house of several rooms, each with its own sensors, schedule and
//! decision, sharing heating and cooling equipment (`/v1/zones`, `/v1/plants/{plant_id}`,
//! `/v1/house`).
//!
//! Every installation has the default zone [`DEFAULT_ZONE`] (the one an installation from before
//! zones opens as, and the one every route without `?zone=` means) and, from the upgrade, the
//! default plant [`DEFAULT_PLANT`] on the function groups `function:heat` and `function:cool`.
//! A configuration change is checked whole: a house that cannot work (a valve in two zones, a
//! plant serving no zone, ...) is refused with 422 `invalid_house` naming every problem, and
//! nothing changes.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;
use crate::control::{Decision, System};

/// The zone every installation has (`id`); it cannot be deleted.
pub const DEFAULT_ZONE: &str = "house";
/// The plant an installation from before zones opens with (`id`).
pub const DEFAULT_PLANT: &str = "house";
/// A zone's or a plant's id: lower-case letters, digits, `_` and `-`, starting with a letter or
/// a digit.
pub const ID_PATTERN: &str = "^[a-z0-9][a-z0-9_-]{0,31}$";
/// The longest zone or plant id, characters.
pub const MAX_ID_CHARS: usize = 32;
/// The longest zone or plant name, characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The most zones a house has.
pub const MAX_ZONES: usize = 32;
/// The most plants a house has.
pub const MAX_PLANTS: usize = 16;
/// The most sensors a zone names.
pub const MAX_ZONE_SENSORS: usize = 32;
/// The most valves a zone names.
pub const MAX_VALVES: usize = 16;
/// The longest relay id, characters (`host_id/output_id`).
pub const MAX_RELAY_CHARS: usize = 129;
/// A relay id: one registered output `host_id/output_id`, or a function group
/// (`function:heat`, every output of that function that no zone or other plant names).
pub const RELAY_PATTERN: &str =
    "^(function:(heat|cool|fan|aux|valve)|[A-Za-z0-9_-]{1,64}/[A-Za-z0-9_-]{1,64})$";
/// `NewPlant::valve_delay_s`, seconds (thermal actuators take up to 3 minutes).
pub const VALVE_DELAY_S: RangeInclusive<u32> = 0..=600;
/// `NewPlant::overrun_s`, seconds.
pub const OVERRUN_S: RangeInclusive<u32> = 0..=1800;
/// `NewPlant::max_run_s`, seconds.
pub const MAX_RUN_S: RangeInclusive<u32> = 1..=86_400;

/// A zone as sent (`PUT /v1/zones/{zone_id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Bedroom", "sensors": ["28-0000000000b1"],
    "valves": ["demo-relay/valve-2"], "heat_relay": null, "cool_relay": null}))]
#[serde(deny_unknown_fields)]
pub struct NewZone {
    /// For people and reason texts ("Bedroom calls for heat").
    pub name: String,
    /// The sensors the zone decides from. The default zone also decides from every sensor no
    /// other zone names.
    #[serde(default)]
    pub sensors: Vec<String>,
    /// Zone valves or dampers, opened together when the zone calls. None: the zone is always
    /// open to its plants.
    #[serde(default)]
    pub valves: Vec<String>,
    /// The zone's own heating (an electric radiator): a plant of its own, protected by the
    /// zone's control settings.
    #[serde(default)]
    pub heat_relay: Option<String>,
    /// The zone's own cooling (a split air conditioner).
    #[serde(default)]
    pub cool_relay: Option<String>,
}

impl NewZone {
    /// A zone deciding from `sensors`, opened by `valves`, with no heating or cooling of its
    /// own: a room of a house whose plants serve it.
    pub fn behind_valves(name: &str, sensors: Vec<String>, valves: Vec<String>) -> Self {
        Self { name: name.to_owned(), sensors, valves, heat_relay: None, cool_relay: None }
    }
}

/// A zone (`GET /v1/zones`, and the answer to `PUT /v1/zones/{zone_id}`): its id, the fields
/// of [`NewZone`] as stored, and what the delete dialog needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Zone {
    /// Its stable id.
    pub id: String,
    /// For people and reason texts.
    pub name: String,
    /// The sensors it names (the default zone also decides from every sensor no other zone
    /// names).
    pub sensors: Vec<String>,
    /// Its valves or dampers.
    pub valves: Vec<String>,
    /// Its own heating relay, if any.
    pub heat_relay: Option<String>,
    /// Its own cooling relay, if any.
    pub cool_relay: Option<String>,
    /// True for the default zone: the one routes without `?zone=` mean; it cannot be deleted.
    pub default: bool,
    /// How many schedule rules it has.
    pub rules: u64,
    /// How many overrides it has in force or to come.
    pub overrides: u64,
}

/// What a plant can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlantKind {
    /// Heating only (a boiler).
    Heat,
    /// Cooling only (an air conditioner).
    Cool,
    /// Both (a heat pump, a furnace with an air conditioner).
    HeatCool,
}

fn one() -> u32 {
    1
}

/// A plant as sent (`PUT /v1/plants/{plant_id}`): heating or cooling equipment behind relay
/// outputs, serving one or more zones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Boiler", "kind": "heat", "heat_relay": "demo-relay/boiler",
    "cool_relay": null, "zones": ["living", "bedroom"], "min_on_s": 180, "min_off_s": 300,
    "changeover_s": 600, "max_run_s": null, "valve_delay_s": 60, "overrun_s": 120,
    "min_calling_zones": 1, "bypass_zone": null}))]
#[serde(deny_unknown_fields)]
pub struct NewPlant {
    /// For people and reason texts ("Boiler on: Living, Bedroom calling").
    pub name: String,
    /// What it can do; it needs a relay for each.
    pub kind: PlantKind,
    /// The relay that runs its heating.
    #[serde(default)]
    pub heat_relay: Option<String>,
    /// The relay that runs its cooling.
    #[serde(default)]
    pub cool_relay: Option<String>,
    /// The zones it serves (ids).
    pub zones: Vec<String>,
    /// Once on, it stays on at least this long, seconds (safety stops at once).
    pub min_on_s: u32,
    /// Once off, it stays off at least this long, seconds.
    pub min_off_s: u32,
    /// Between heating ending and cooling starting (and back), seconds.
    pub changeover_s: u32,
    /// It stops after running this long without a break, seconds; null: no limit.
    #[serde(default)]
    pub max_run_s: Option<u32>,
    /// How long a zone valve must have been reported open before it fires, seconds.
    #[serde(default)]
    pub valve_delay_s: u32,
    /// How long its pump or fan runs on after it stops, seconds: the valves that were open stay
    /// open until then.
    #[serde(default)]
    pub overrun_s: u32,
    /// How many zones must call before it runs (a safety call counts alone).
    #[serde(default = "one")]
    pub min_calling_zones: u32,
    /// A zone whose valves open when it must run and no other valve is open.
    #[serde(default)]
    pub bypass_zone: Option<String>,
}

impl NewPlant {
    /// A boiler: heating only, on `heat_relay`, serving `zones`, with `protect_s` as its
    /// minimum on, off and changeover times, firing once a valve has been open `valve_delay_s`
    /// and running its pump on `overrun_s`; no maximum run, one calling zone enough, no bypass.
    pub fn boiler(
        name: &str,
        heat_relay: String,
        zones: Vec<String>,
        protect_s: u32,
        valve_delay_s: u32,
        overrun_s: u32,
    ) -> Self {
        Self {
            name: name.to_owned(),
            kind: PlantKind::Heat,
            heat_relay: Some(heat_relay),
            cool_relay: None,
            zones,
            min_on_s: protect_s,
            min_off_s: protect_s,
            changeover_s: protect_s,
            max_run_s: None,
            valve_delay_s,
            overrun_s,
            min_calling_zones: 1,
            bypass_zone: None,
        }
    }
}

/// A plant (`GET /v1/zones`, and the answer to `PUT /v1/plants/{plant_id}`): its id and the
/// fields of [`NewPlant`] as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Plant {
    /// Its stable id.
    pub id: String,
    /// For people and reason texts.
    pub name: String,
    /// What it can do.
    pub kind: PlantKind,
    /// The relay that runs its heating.
    pub heat_relay: Option<String>,
    /// The relay that runs its cooling.
    pub cool_relay: Option<String>,
    /// The zones it serves (ids).
    pub zones: Vec<String>,
    /// Minimum on time, seconds.
    pub min_on_s: u32,
    /// Minimum off time, seconds.
    pub min_off_s: u32,
    /// Changeover delay, seconds.
    pub changeover_s: u32,
    /// Maximum run, seconds; null: no limit.
    pub max_run_s: Option<u32>,
    /// Valve delay, seconds.
    pub valve_delay_s: u32,
    /// Pump or fan overrun, seconds.
    pub overrun_s: u32,
    /// How many zones must call before it runs.
    pub min_calling_zones: u32,
    /// Its bypass zone, if any.
    pub bypass_zone: Option<String>,
}

/// The house as configured (`GET /v1/zones`): zones in the order people see them, plants by
/// id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HouseConfig {
    /// Every zone, the default one first.
    pub zones: Vec<Zone>,
    /// Every plant.
    pub plants: Vec<Plant>,
}

/// `?zone=` of the per-zone routes: absent means the default zone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneQuery {
    /// The zone (id); absent: the default zone (`house`).
    pub zone: Option<String>,
}

/// Query of `DELETE /v1/zones/{zone_id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteZoneQuery {
    /// Move the zone's rules and overrides to this zone (id). Without it, a zone that has any
    /// is not deleted (409 `zone_not_empty`). Its valves never move: a zone that still has
    /// valves is not deleted, with or without it (422 `invalid_house`).
    pub move_to: Option<String>,
}

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlantCode {
    /// On: enough zones call and their valves are open.
    Calling,
    /// Off: enough zones call, their valves are still opening.
    ValveDelay,
    /// Off: fewer zones call than the plant needs.
    TooFewZones,
    /// Off: no zone calls.
    Idle,
    /// Off: its pump or fan runs on, the valves that were open stay open.
    Overrun,
    /// Held on: the minimum on time has not passed.
    MinOnTime,
    /// Held off: the minimum off time has not passed.
    MinOffTime,
    /// Held off: the other system ran too recently, or still runs.
    Changeover,
    /// Off: it ran its maximum run without a break.
    MaxRun,
    /// Off: no valve of its zones is open for it.
    NoOutlet,
    /// Off at once: every zone it serves stops for safety (mode off, max ceiling).
    SafetyStop,
}

/// Why a valve is open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValveCode {
    /// Open: its zone calls.
    Calling,
    /// Open: its plant still runs (minimum on time, or not yet reported off) and this is where
    /// the heat goes.
    HeldForPlant,
    /// Open: its plant's pump or fan runs on.
    Overrun,
    /// Open: the bypass zone of a plant that must run with no zone calling.
    Bypass,
    /// Closed: its zone does not call.
    Closed,
    /// Closed: a plant serving the zone runs the other system.
    OtherSystem,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zone's answer is the request's fields beside its id and counts, as the contract shows
    /// them; a plant's request fills in its defaults.
    #[test]
    fn answers_flatten_the_request() {
        let zone = Zone {
            id: "bedroom".into(),
            name: "Bedroom".into(),
            sensors: vec!["28-b1".into()],
            valves: vec!["r/v2".into()],
            heat_relay: None,
            cool_relay: None,
            default: false,
            rules: 3,
            overrides: 1,
        };
        let json = serde_json::to_value(&zone).ok();
        assert_eq!(
            json,
            Some(serde_json::json!({"id": "bedroom", "name": "Bedroom", "sensors": ["28-b1"],
                "valves": ["r/v2"], "heat_relay": null, "cool_relay": null, "default": false,
                "rules": 3, "overrides": 1}))
        );
        let plant: Result<NewPlant, _> = serde_json::from_value(serde_json::json!({
            "name": "Boiler", "kind": "heat", "heat_relay": "r/boiler", "zones": ["bedroom"],
            "min_on_s": 180, "min_off_s": 300, "changeover_s": 600}));
        assert_eq!(plant.map(|p| (p.min_calling_zones, p.valve_delay_s)).ok(), Some((1, 0)));
    }
}
