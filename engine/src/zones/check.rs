//! Which houses cannot work: each problem named, with the zone, plant or relay it is about.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{House, OVERRUN_S, PlantKind, RelayId, VALVE_DELAY_S, ZoneId};
use crate::control;

/// What is wrong with a house (a stable code for machines; [`Problem::message`] for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProblemCode {
    /// Two zones, or two plants, have one id.
    DuplicateId,
    /// A zone names no sensor: it could only ever run its sensor-loss duty.
    ZoneWithoutSensors,
    /// A zone's settings are out of range (as the control settings' checks say).
    ZoneSettings,
    /// One valve (or damper) is assigned to two zones, or twice to one.
    ValveInTwoZones,
    /// A relay is both a zone's output and a plant's (or two plants') heat or cool relay.
    RelayUsedTwice,
    /// Every output of a zone is another plant's heat or cool relay: opening the zone would
    /// fire that plant.
    ZoneOutputsBelongToPlant,
    /// A plant serves no zone.
    PlantServesNoZone,
    /// A plant names a zone that does not exist.
    PlantUnknownZone,
    /// A plant has no relay for what its kind says it does.
    PlantWithoutRelay,
    /// A plant serves several zones and none has a valve: no zone could be heated alone.
    PlantValvesUnassigned,
    /// Nowhere for the heat (or cold) to go: a bypass zone the plant does not serve or that
    /// has no valve to open.
    NowhereForHeat,
    /// A zone without valves served by a heating and a different cooling plant: it would get
    /// heat and cold at once.
    HeatAndCoolUnvalved,
    /// No zone is served by any plant or relay of its own.
    ZoneUnserved,
    /// A zone to delete still has valves (or dampers): deleted with it they would be left in
    /// no zone, never opened again, and `move_to` moves rules and overrides, not valves.
    ZoneHasValves,
    /// A plant's times or thresholds are out of range (min calling zones more than the zones
    /// it serves, a maximum run shorter than the minimum on time, ...).
    PlantSettings,
}

/// One problem of a house.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Problem {
    pub(crate) code: ProblemCode,
    /// Names the zone, plant or relay: "valve v1 is assigned to zones bedroom and bath".
    pub(crate) message: String,
}

fn problem(code: ProblemCode, message: String) -> Problem {
    Problem { code, message }
}

/// Every problem of `house`, or Ok. Reports them all at once, so one answer lists everything to
/// fix.
pub(crate) fn check_house(house: &House) -> Result<(), Vec<Problem>> {
    use ProblemCode::*;
    let mut out = Vec::new();
    let zone_name = |id: &ZoneId| house.zone(id).map_or_else(|| id.0.clone(), |z| z.name.clone());

    let mut seen = BTreeSet::new();
    for z in &house.zones {
        if !seen.insert(&z.id) {
            out.push(problem(DuplicateId, format!("zone id {} is used twice", z.id)));
        }
    }
    let mut seen = BTreeSet::new();
    for p in &house.plants {
        if !seen.insert(&p.id) {
            out.push(problem(DuplicateId, format!("plant id {} is used twice", p.id)));
        }
    }

    // Which relay is what: valves by zone, plant relays by plant (a zone's own relays count as
    // its plant's).
    let mut valve_zone: BTreeMap<&RelayId, &ZoneId> = BTreeMap::new();
    for z in &house.zones {
        if z.sensors.is_empty() {
            out.push(problem(ZoneWithoutSensors, format!("zone {} has no sensors", z.name)));
        }
        if let Err(e) = control::check_settings(z.settings.clone()) {
            out.push(problem(ZoneSettings, format!("zone {}: {e}", z.name)));
        }
        for v in &z.outputs.valves {
            if let Some(other) = valve_zone.insert(v, &z.id) {
                out.push(problem(
                    ValveInTwoZones,
                    format!("valve {v} is assigned to zones {} and {}", zone_name(other), z.name),
                ));
            }
        }
    }
    let plants = house.all_plants();
    let mut plant_relay: BTreeMap<&RelayId, &str> = BTreeMap::new();
    for p in &plants {
        for r in p.heat_relay.iter().chain(&p.cool_relay) {
            if let Some(other) = plant_relay.insert(r, &p.name) {
                out.push(problem(
                    RelayUsedTwice,
                    format!("relay {r} is a relay of plant {other} and of plant {}", p.name),
                ));
            }
        }
    }
    for z in &house.zones {
        let valves = &z.outputs.valves;
        let taken: Vec<(&RelayId, &str)> =
            valves.iter().filter_map(|v| plant_relay.get(v).map(|p| (v, *p))).collect();
        if !valves.is_empty() && taken.len() == valves.len() {
            let list: Vec<String> = taken.iter().map(|(v, p)| format!("{v} (plant {p})")).collect();
            out.push(problem(
                ZoneOutputsBelongToPlant,
                format!(
                    "every output of zone {} belongs to another plant: {}",
                    z.name,
                    list.join(", ")
                ),
            ));
        } else {
            for (v, p) in taken {
                out.push(problem(
                    RelayUsedTwice,
                    format!("relay {v} is a valve of zone {} and a relay of plant {p}", z.name),
                ));
            }
        }
    }

    for p in &plants {
        let name = &p.name;
        if p.zones.is_empty() {
            out.push(problem(PlantServesNoZone, format!("plant {name} serves no zone")));
        }
        for id in &p.zones {
            if house.zone(id).is_none() {
                out.push(problem(
                    PlantUnknownZone,
                    format!("plant {name} serves zone {id}, which does not exist"),
                ));
            }
        }
        let (heat, cool) = match p.kind {
            PlantKind::Heat => (true, false),
            PlantKind::Cool => (false, true),
            PlantKind::HeatCool => (true, true),
        };
        for (needed, relay, what) in [(heat, &p.heat_relay, "heat"), (cool, &p.cool_relay, "cool")]
        {
            if needed && relay.is_none() {
                out.push(problem(PlantWithoutRelay, format!("plant {name} has no {what} relay")));
            }
        }
        let served: Vec<_> = p.zones.iter().filter_map(|id| house.zone(id)).collect();
        if served.len() > 1 && served.iter().all(|z| z.outputs.valves.is_empty()) {
            let names: Vec<&str> = served.iter().map(|z| z.name.as_str()).collect();
            out.push(problem(
                PlantValvesUnassigned,
                format!(
                    "plant {name} serves zones {} and none of them has a valve: every zone \
                     would be heated whenever one calls",
                    names.join(", ")
                ),
            ));
        }
        if let Some(b) = &p.bypass_zone {
            if !p.zones.contains(b) {
                out.push(problem(
                    NowhereForHeat,
                    format!("plant {name}'s bypass zone {} is not a zone it serves", zone_name(b)),
                ));
            } else if house.zone(b).is_some_and(|z| z.outputs.valves.is_empty()) {
                out.push(problem(
                    NowhereForHeat,
                    format!("plant {name}'s bypass zone {} has no valve to open", zone_name(b)),
                ));
            }
        }
        let mut bad =
            |what: String| out.push(problem(PlantSettings, format!("plant {name}: {what}")));
        let range = |field: &str, v: u32, r: &std::ops::RangeInclusive<u32>| {
            (!r.contains(&v))
                .then(|| format!("{field} must be between {} and {}, got {v}", r.start(), r.end()))
        };
        let checks = [
            range("min_on_s", p.min_on_s, &hearth_proto::control::MIN_ON_S),
            range("min_off_s", p.min_off_s, &hearth_proto::control::MIN_OFF_S),
            range("changeover_s", p.changeover_s, &hearth_proto::control::CHANGEOVER_S),
            range("valve_delay_s", p.valve_delay_s, &VALVE_DELAY_S),
            range("overrun_s", p.overrun_s, &OVERRUN_S),
        ];
        for what in checks.into_iter().flatten() {
            bad(what);
        }
        if p.min_calling_zones == 0 || p.min_calling_zones as usize > p.zones.len().max(1) {
            bad(format!(
                "min_calling_zones must be between 1 and the {} zones it serves, got {}",
                p.zones.len(),
                p.min_calling_zones
            ));
        }
        if let Some(max) = p.max_run_s
            && max < p.min_on_s.max(1)
        {
            bad(format!("max_run_s ({max}) must be at least min_on_s ({})", p.min_on_s));
        }
    }

    for z in &house.zones {
        let serving: Vec<_> = plants.iter().filter(|p| p.zones.contains(&z.id)).collect();
        if serving.is_empty() {
            out.push(problem(
                ZoneUnserved,
                format!("zone {} is served by no plant and has no relay of its own", z.name),
            ));
        }
        let heats = serving.iter().filter(|p| p.kind != PlantKind::Cool).count();
        let cools = serving.iter().filter(|p| p.kind != PlantKind::Heat).count();
        let one_both = serving.len() == 1;
        if z.outputs.valves.is_empty() && heats > 0 && cools > 0 && !one_both {
            out.push(problem(
                HeatAndCoolUnvalved,
                format!(
                    "zone {} has no valve and is served by a heating and another cooling \
                     plant: it would get heat and cold at once",
                    z.name
                ),
            ));
        }
    }

    if out.is_empty() { Ok(()) } else { Err(out) }
}
