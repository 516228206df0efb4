//! Zones and plants: a house of several rooms, each with its own decision, sharing heating and
//! cooling equipment.
//!
//! Pure, like `control`: no I/O, no clock (time comes in as a value). The live loop and the
//! simulator (`sim::zones`) build the same inputs and call the same functions:
//!
//! 1. [`check_house`] refuses a configuration that cannot work, naming the zone, plant or relay;
//! 2. [`decide_zone`], per zone: the real `control::propose` (target, fusion, safety,
//!    algorithm) with the zone's settings, sensors and schedule, and the zone's equipment as
//!    its valves and plants REPORT it. No equipment protection here: the minimum on/off times,
//!    changeover and maximum run belong to the plant;
//! 3. [`plan`]: every valve open or closed, every plant on or off, each with a reason code and
//!    text, from the zones' calls and the relays' reports (`EquipmentState`), never from the
//!    planner's own last command.
//!
//! The single-zone house of today is one zone and one plant without valves (or one zone with
//! its own heat/cool relays): its zone decision and plant outcome are `control::decide`'s, bit
//! for bit (`tests.rs` checks it).

pub(crate) mod check;
pub(crate) mod live;
pub(crate) mod plan;
pub(crate) mod resolve;
pub(crate) mod status;

use std::collections::BTreeMap;

use crate::control::Settings;
use hearth_proto::Timestamp;
use hearth_proto::history::Run;
use hearth_proto::schedules::Segment;
use serde::{Deserialize, Serialize};

use crate::control::{self, Equipment, Inputs, Learned, Proposed, Running, SensorSnapshot};

pub(crate) use check::check_house;
pub(crate) use plan::{PlantCode, plan, plant_equipment};

/// A plant's valve delay and overrun bounds: the contract's.
pub(crate) use hearth_proto::zones::{OVERRUN_S, VALVE_DELAY_S};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub(crate) struct $name(pub(crate) String);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A zone's id (stable; its name may change).
    ZoneId
);
id_type!(
    /// A plant's id.
    PlantId
);
id_type!(
    /// A relay output's id, as the relay agents register it.
    RelayId
);

/// One zone: a room or a group of rooms with its own sensors, schedule and decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZoneConfig {
    pub(crate) id: ZoneId,
    /// For people and reason texts ("bedroom calls for heat").
    pub(crate) name: String,
    /// The sensors the zone decides from (fusion, exclusions and reasons as today).
    pub(crate) sensors: Vec<String>,
    /// Mode, frost floor, max ceiling, algorithm and its parameters, sensor-loss duty: as the
    /// house's control settings carry them today. Its minimum on/off and changeover times
    /// protect only the zone's own relays; a plant has its own.
    pub(crate) settings: Settings,
    pub(crate) outputs: ZoneOutputs,
}

/// What opens a zone to heat or cold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZoneOutputs {
    /// Zone valves or dampers: opened together. None: the zone is always open to its plants.
    #[serde(default)]
    pub(crate) valves: Vec<RelayId>,
    /// The zone's own heating (an electric radiator, a room's own furnace): a plant of its own
    /// serving only this zone, protected by the zone's settings.
    #[serde(default)]
    pub(crate) heat_relay: Option<RelayId>,
    /// The zone's own cooling (a split air conditioner).
    #[serde(default)]
    pub(crate) cool_relay: Option<RelayId>,
}

/// What a plant can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PlantKind {
    Heat,
    Cool,
    HeatCool,
}

/// Heating or cooling equipment behind relay outputs, serving one or more zones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PlantConfig {
    pub(crate) id: PlantId,
    /// For people and reason texts ("boiler on: bedroom, bath calling").
    pub(crate) name: String,
    pub(crate) kind: PlantKind,
    #[serde(default)]
    pub(crate) heat_relay: Option<RelayId>,
    #[serde(default)]
    pub(crate) cool_relay: Option<RelayId>,
    /// Once on, it stays on at least this long unless every zone stops for safety, seconds.
    pub(crate) min_on_s: u32,
    /// Once off, it stays off at least this long, seconds.
    pub(crate) min_off_s: u32,
    /// Between heating ending and cooling starting (and back), seconds.
    pub(crate) changeover_s: u32,
    /// It stops after running this long without a break, seconds (None: no limit).
    #[serde(default)]
    pub(crate) max_run_s: Option<u32>,
    /// The zones it serves.
    pub(crate) zones: Vec<ZoneId>,
    /// How long a zone valve must have been reported open before the plant fires for it,
    /// seconds.
    #[serde(default)]
    pub(crate) valve_delay_s: u32,
    /// How long the pump or fan runs on after the plant stops, seconds: the valves that were
    /// open stay open until it ends.
    #[serde(default)]
    pub(crate) overrun_s: u32,
    /// How many zones must call before it runs (a safety call — frost floor, sensor-loss duty —
    /// counts alone).
    #[serde(default = "one")]
    pub(crate) min_calling_zones: u32,
    /// A zone whose valves are opened when the plant must run and no other valve is open (a
    /// towel rail, a bathroom): somewhere for the heat to go.
    #[serde(default)]
    pub(crate) bypass_zone: Option<ZoneId>,
}

fn one() -> u32 {
    1
}

impl PlantConfig {
    /// A plant on `(heat, cool)` relays serving `zone` alone, protected by `settings`' times,
    /// with no valve delay, overrun or bypass; None without any relay.
    pub(crate) fn alone(
        id: PlantId,
        name: String,
        (heat_relay, cool_relay): (Option<RelayId>, Option<RelayId>),
        settings: &Settings,
        zone: ZoneId,
    ) -> Option<Self> {
        let kind = match (&heat_relay, &cool_relay) {
            (None, None) => return None,
            (Some(_), None) => PlantKind::Heat,
            (None, Some(_)) => PlantKind::Cool,
            (Some(_), Some(_)) => PlantKind::HeatCool,
        };
        Some(Self {
            id,
            name,
            kind,
            heat_relay,
            cool_relay,
            min_on_s: settings.min_on_s,
            min_off_s: settings.min_off_s,
            changeover_s: settings.changeover_s,
            max_run_s: None,
            zones: vec![zone],
            valve_delay_s: 0,
            overrun_s: 0,
            min_calling_zones: 1,
            bypass_zone: None,
        })
    }
}

/// A house: its zones and its plants (many to many).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct House {
    pub(crate) zones: Vec<ZoneConfig>,
    pub(crate) plants: Vec<PlantConfig>,
}

impl House {
    /// Today's house: one zone with every sensor, one plant without valves, protected by the
    /// settings' minimum on/off and changeover times.
    #[cfg(test)]
    pub(crate) fn single(
        settings: &Settings,
        sensors: Vec<String>,
        heat_relay: Option<RelayId>,
        cool_relay: Option<RelayId>,
    ) -> Self {
        let zone = ZoneId::from("house");
        let plant = PlantConfig::alone(
            PlantId::from("plant"),
            "plant".to_owned(),
            (heat_relay, cool_relay),
            settings,
            zone.clone(),
        );
        Self {
            zones: vec![ZoneConfig {
                id: zone,
                name: "house".to_owned(),
                sensors,
                settings: settings.clone(),
                outputs: ZoneOutputs::default(),
            }],
            plants: plant.into_iter().collect(),
        }
    }

    pub(crate) fn zone(&self, id: &ZoneId) -> Option<&ZoneConfig> {
        self.zones.iter().find(|z| &z.id == id)
    }

    /// Every plant the planner drives: the configured ones, then one per zone with relays of
    /// its own (serving only it, protected by its settings, id `zone:<id>`).
    pub(crate) fn all_plants(&self) -> Vec<PlantConfig> {
        let mut plants = self.plants.clone();
        for z in &self.zones {
            let relays = (z.outputs.heat_relay.clone(), z.outputs.cool_relay.clone());
            let id = PlantId(format!("zone:{}", z.id));
            plants.extend(PlantConfig::alone(
                id,
                z.name.clone(),
                relays,
                &z.settings,
                z.id.clone(),
            ));
        }
        plants
    }
}

/// What the relays report, by relay id: on or off, since when, when it last stopped after
/// running. A relay never reported is off since an unknown time (nothing held).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct EquipmentState {
    pub(crate) relays: BTreeMap<RelayId, Running>,
}

impl EquipmentState {
    pub(crate) fn get(&self, relay: Option<&RelayId>) -> Running {
        relay.and_then(|r| self.relays.get(r)).copied().unwrap_or(Running::OFF_UNKNOWN)
    }
}

/// What one zone's decision is made from, besides its configuration: as `control::Inputs`.
#[derive(Debug, Clone)]
pub(crate) struct ZoneInputs<'a> {
    pub(crate) now: Timestamp,
    /// The zone's own timeline (its rules and overrides), as `control::Inputs::segments`.
    pub(crate) segments: &'a [Segment],
    /// Every known sensor: the zone decides from those it names.
    pub(crate) sensors: &'a [SensorSnapshot],
    pub(crate) stale_after: jiff::SignedDuration,
    pub(crate) learned: &'a Learned,
    pub(crate) runs: &'a [Run],
}

/// One zone's call: its decision before any equipment protection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ZoneCall {
    pub(crate) zone: ZoneId,
    pub(crate) proposed: Proposed,
}

impl ZoneCall {
    pub(crate) fn heat(&self) -> bool {
        self.proposed.proposal.heat
    }

    /// Cool, unless heat is asked too (a proposal never asks both; if one did, heat wins).
    pub(crate) fn cool(&self) -> bool {
        self.proposed.proposal.cool && !self.proposed.proposal.heat
    }
}

/// One zone's decision: the real `control::propose`, with the zone's settings and sensors, and
/// its equipment as reported ([`zone_equipment`]).
pub(crate) fn decide_zone(
    house: &House,
    zone: &ZoneConfig,
    inputs: &ZoneInputs<'_>,
    equipment: &EquipmentState,
) -> ZoneCall {
    // A set, not a scan of the zone's list per sensor: the default zone names every sensor no
    // other zone does, and the loop decides on every arrival of readings (a thousand sensors
    // made this the engine's hottest code in `cargo xtask bench ingest`).
    let named: std::collections::HashSet<String> =
        zone.sensors.iter().map(|id| id.to_ascii_lowercase()).collect();
    let sensors: Vec<SensorSnapshot> = inputs
        .sensors
        .iter()
        .filter(|s| named.contains(&s.id.to_ascii_lowercase()))
        .cloned()
        .collect();
    let proposed = control::propose(&Inputs {
        now: inputs.now,
        settings: &zone.settings,
        segments: inputs.segments,
        sensors: &sensors,
        stale_after: inputs.stale_after,
        equipment: zone_equipment(house, zone, equipment),
        learned: inputs.learned,
        runs: inputs.runs,
    });
    ZoneCall { zone: zone.id.clone(), proposed }
}

/// Whether a zone's outlet is open as reported: any of its valves on (a zone without valves is
/// always open), and since when (None: unknown, or always).
fn outlet(zone: &ZoneConfig, eq: &EquipmentState) -> (bool, Option<Timestamp>) {
    if zone.outputs.valves.is_empty() {
        return (true, None);
    }
    let open = zone.outputs.valves.iter().map(|v| eq.get(Some(v))).filter(|r| r.on);
    let mut any = false;
    let mut since: Option<Timestamp> = None;
    for r in open {
        any = true;
        since = match (since, r.since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    (any, since)
}

/// A zone's heating and cooling as reported: on when a plant serving it reports that system
/// on and the zone's outlet is open. A zone whose only plant serves it alone through no valve
/// sees that plant's relays exactly (today's house).
pub(crate) fn zone_equipment(house: &House, zone: &ZoneConfig, eq: &EquipmentState) -> Equipment {
    let plants: Vec<PlantConfig> =
        house.all_plants().into_iter().filter(|p| p.zones.contains(&zone.id)).collect();
    let (open, open_since) = outlet(zone, eq);
    if let [p] = plants.as_slice()
        && zone.outputs.valves.is_empty()
    {
        return plant_equipment(p, eq);
    }
    let system = |pick: fn(&Equipment) -> Running| {
        let reports: Vec<Running> = plants.iter().map(|p| pick(&plant_equipment(p, eq))).collect();
        let on = reports.iter().find(|r| r.on);
        match on {
            Some(r) if open => Running {
                on: true,
                since: match (r.since, open_since) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                },
                ran_until: r.ran_until,
            },
            _ => Running {
                on: false,
                since: None,
                ran_until: reports.iter().filter_map(|r| r.ran_until).max(),
            },
        }
    };
    Equipment { heat: system(|e| e.heat), cool: system(|e| e.cool) }
}

#[cfg(test)]
mod tests;
