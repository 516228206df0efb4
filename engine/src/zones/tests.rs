//! Zones and plants end to end through the real `control::propose` and the real planner:
//! table-driven cases for every rule, today's house bit for bit, configuration checks, and a
//! property test over thousands of random sequences with a relay layer that reports back.

use std::collections::BTreeMap;

use hearth_proto::control::{Mode, ReasonCode, System};

use super::check::{ProblemCode, check_house};
use super::plan::{HousePlan, PlantCode, ValveCode, plan, plant_equipment};
use super::*;
use crate::control::tests::{NOW, at, segment};
use crate::control::{Running, decide};
use crate::sim::Rng;

/// One segment around `now`, deciding on every sensor by its weight.
fn segments(now: Timestamp, heat_c: f64, cool_c: f64) -> Vec<Segment> {
    let (start, end) =
        (now - jiff::SignedDuration::from_hours(1), now + jiff::SignedDuration::from_hours(25));
    vec![Segment { sensors: Vec::new(), ..segment(start, end, heat_c, cool_c) }]
}

/// A probe of `zone` reading `temp` now; None: its last reading is 14 min old (stale).
fn probe(zone: &str, temp: Option<f64>, now: Timestamp) -> SensorSnapshot {
    let at = if temp.is_some() { now } else { now - jiff::SignedDuration::from_mins(14) };
    SensorSnapshot {
        id: format!("28-{zone}"),
        name: Some(zone.to_owned()),
        value: Some(temp.unwrap_or(20.0)),
        at: Some(at),
        value_since: None,
        weight: 1.0,
        offset_c: 0.0,
    }
}

fn zone(id: &str, mode: Mode, valves: &[&str]) -> ZoneConfig {
    ZoneConfig {
        id: ZoneId::from(id),
        name: id.to_owned(),
        sensors: vec![format!("28-{id}")],
        settings: Settings { mode, ..Settings::default() },
        outputs: ZoneOutputs {
            valves: valves.iter().map(|v| RelayId::from(*v)).collect(),
            heat_relay: None,
            cool_relay: None,
        },
    }
}

fn boiler(zones: &[&str]) -> PlantConfig {
    PlantConfig {
        id: PlantId::from("boiler"),
        name: "boiler".to_owned(),
        kind: PlantKind::Heat,
        heat_relay: Some(RelayId::from("boiler")),
        cool_relay: None,
        min_on_s: 180,
        min_off_s: 180,
        changeover_s: 300,
        max_run_s: None,
        zones: zones.iter().map(|z| ZoneId::from(*z)).collect(),
        valve_delay_s: 60,
        overrun_s: 120,
        min_calling_zones: 1,
        bypass_zone: None,
    }
}

/// Bedroom, bath and living room on one boiler, each behind its valve `v-<zone>`.
fn radiators() -> House {
    House {
        zones: ["bedroom", "bath", "living"]
            .iter()
            .map(|z| zone(z, Mode::Heat, &[&format!("v-{z}")]))
            .collect(),
        plants: vec![boiler(&["bedroom", "bath", "living"])],
    }
}

/// A heat pump that heats and cools the bedroom and the living room.
fn heat_pump() -> House {
    let mut house = House {
        zones: vec![
            zone("bedroom", Mode::Heat, &["v-bedroom"]),
            zone("living", Mode::Cool, &["v-living"]),
        ],
        plants: vec![boiler(&["bedroom", "living"])],
    };
    let p = &mut house.plants[0];
    p.id = PlantId::from("hp");
    p.name = "heat pump".to_owned();
    p.kind = PlantKind::HeatCool;
    p.heat_relay = Some(RelayId::from("hp-heat"));
    p.cool_relay = Some(RelayId::from("hp-cool"));
    p.overrun_s = 0;
    house
}

/// A relay report: on or off since `since_s_ago`; an off one last ran until then.
fn report(on: bool, since_s_ago: i64) -> Running {
    let since = Some(at(-since_s_ago));
    Running { on, since, ran_until: since.filter(|_| !on) }
}

/// One planning pass: every zone decides from its temperature (None: stale), then the plan.
fn pass(
    house: &House,
    temps: &[(&str, Option<f64>)],
    eq: &EquipmentState,
    now: Timestamp,
) -> HousePlan {
    let sensors: Vec<SensorSnapshot> = temps.iter().map(|(z, t)| probe(z, *t, now)).collect();
    let learned = Learned::default();
    let timeline = segments(now, 20.0, 25.0);
    let calls: Vec<ZoneCall> = house
        .zones
        .iter()
        .map(|z| {
            let inputs = ZoneInputs {
                now,
                segments: &timeline,
                sensors: &sensors,
                stale_after: jiff::SignedDuration::from_secs(120),
                learned: &learned,
                runs: &[],
            };
            decide_zone(house, z, &inputs, eq)
        })
        .collect();
    plan(house, &calls, eq, now)
}

/// A table case.
struct Case {
    name: &'static str,
    house: House,
    temps: Vec<(&'static str, Option<f64>)>,
    reports: Vec<(&'static str, Running)>,
    plant: &'static str,
    /// Expected plant heat, cool and code.
    expect: (bool, bool, PlantCode),
    /// The valves expected open (every other one closed).
    open: Vec<&'static str>,
    /// Part of the plant's reason.
    reason: &'static str,
}

fn with<T>(mut v: T, f: impl FnOnce(&mut T)) -> T {
    f(&mut v);
    v
}

#[test]
fn plant_and_valve_decisions() {
    use PlantCode::*;
    let cold_bed = vec![("bedroom", Some(18.9)), ("bath", Some(21.0)), ("living", Some(21.0))];
    let cold_bed_bath = vec![("bedroom", Some(18.9)), ("bath", Some(18.5)), ("living", Some(21.0))];
    let warm = vec![("bedroom", Some(21.0)), ("bath", Some(21.0)), ("living", Some(21.0))];
    let two = |h: House| with(h, |h| h.plants[0].min_calling_zones = 2);
    let cases = vec![
        Case {
            name: "one zone calls: its valve opens, the boiler waits for it",
            house: radiators(),
            temps: cold_bed.clone(),
            reports: vec![],
            plant: "boiler",
            expect: (false, false, ValveDelay),
            open: vec!["v-bedroom"],
            reason: "boiler waits: valve delay 1 min left (bedroom calling for heat)",
        },
        Case {
            name: "a closed valve is never ready, even without a valve delay",
            house: with(radiators(), |h| h.plants[0].valve_delay_s = 0),
            temps: cold_bed.clone(),
            reports: vec![],
            plant: "boiler",
            expect: (false, false, ValveDelay),
            open: vec!["v-bedroom"],
            reason: "boiler waits: valve delay 0 s left (bedroom calling for heat)",
        },
        Case {
            name: "a zone's own heater is a plant of its own, protected by the zone's times",
            house: with(radiators(), |h| {
                let mut studio = zone("studio", Mode::Heat, &[]);
                studio.outputs.heat_relay = Some(RelayId::from("studio heater"));
                h.zones.push(studio);
            }),
            temps: vec![
                ("studio", Some(21.0)),
                ("bedroom", Some(21.0)),
                ("bath", Some(21.0)),
                ("living", Some(21.0)),
            ],
            reports: vec![("studio heater", report(true, 100))],
            plant: "zone:studio",
            expect: (true, false, MinOnTime),
            open: vec![],
            reason: "studio: heat held on: min on time, 2 min left",
        },
        Case {
            name: "the valve delay counts from the reported open time",
            house: radiators(),
            temps: cold_bed.clone(),
            reports: vec![("v-bedroom", report(true, 20))],
            plant: "boiler",
            expect: (false, false, ValveDelay),
            open: vec!["v-bedroom"],
            reason: "valve delay 40 s left",
        },
        Case {
            name: "any zone calling with its valve open fires the boiler",
            house: radiators(),
            temps: cold_bed.clone(),
            reports: vec![("v-bedroom", report(true, 60))],
            plant: "boiler",
            expect: (true, false, Calling),
            open: vec!["v-bedroom"],
            reason: "boiler on: bedroom calling",
        },
        Case {
            name: "a zone that does not call keeps its valve closed while the boiler runs",
            house: radiators(),
            temps: cold_bed.clone(),
            reports: vec![
                ("v-bedroom", report(true, 600)),
                ("v-living", report(true, 600)),
                ("boiler", report(true, 500)),
            ],
            plant: "boiler",
            expect: (true, false, Calling),
            open: vec!["v-bedroom"],
            reason: "boiler on: bedroom calling",
        },
        Case {
            name: "N-zone threshold: one of two calling is not enough",
            house: two(radiators()),
            temps: cold_bed.clone(),
            reports: vec![("v-bedroom", report(true, 600))],
            plant: "boiler",
            expect: (false, false, TooFewZones),
            open: vec!["v-bedroom"],
            reason: "boiler off: 1 of 2 zones needed calling for heat (bedroom)",
        },
        Case {
            name: "N-zone threshold: two ready zones fire it",
            house: two(radiators()),
            temps: cold_bed_bath.clone(),
            reports: vec![("v-bedroom", report(true, 600)), ("v-bath", report(true, 60))],
            plant: "boiler",
            expect: (true, false, Calling),
            open: vec!["v-bedroom", "v-bath"],
            reason: "boiler on: bedroom, bath calling",
        },
        Case {
            name: "N-zone threshold: the second valve still opening",
            house: two(radiators()),
            temps: cold_bed_bath.clone(),
            reports: vec![("v-bedroom", report(true, 600)), ("v-bath", report(true, 15))],
            plant: "boiler",
            expect: (false, false, ValveDelay),
            open: vec!["v-bedroom", "v-bath"],
            reason: "boiler waits: valve delay 45 s left (bedroom, bath calling for heat)",
        },
        Case {
            name: "frost floor per zone in OFF mode: counts alone against the threshold",
            house: with(two(radiators()), |h| {
                for z in &mut h.zones {
                    z.settings.mode = Mode::Off;
                }
            }),
            temps: vec![("bedroom", Some(5.0)), ("bath", Some(21.0)), ("living", Some(21.0))],
            reports: vec![("v-bedroom", report(true, 600))],
            plant: "boiler",
            expect: (true, false, Calling),
            open: vec!["v-bedroom"],
            reason: "boiler on: bedroom calling",
        },
        Case {
            name: "frost floor in OFF mode: the valve opens first",
            house: with(radiators(), |h| h.zones[0].settings.mode = Mode::Off),
            temps: vec![("bedroom", Some(5.0)), ("bath", Some(21.0)), ("living", Some(21.0))],
            reports: vec![],
            plant: "boiler",
            expect: (false, false, ValveDelay),
            open: vec!["v-bedroom"],
            reason: "boiler waits",
        },
        Case {
            name: "overrun: the valves that were open stay open while the pump runs on",
            house: radiators(),
            temps: warm.clone(),
            reports: vec![("v-bedroom", report(true, 900)), ("boiler", report(false, 60))],
            plant: "boiler",
            expect: (false, false, Overrun),
            open: vec!["v-bedroom"],
            reason: "boiler overrun: pump runs 1 min more, bedroom valve held open",
        },
        Case {
            name: "after the overrun the valves close",
            house: radiators(),
            temps: warm.clone(),
            reports: vec![("v-bedroom", report(true, 900)), ("boiler", report(false, 120))],
            plant: "boiler",
            expect: (false, false, Idle),
            open: vec![],
            reason: "boiler off: no zone calls",
        },
        Case {
            name: "min on time holds the boiler, the open valve stays open for it",
            house: radiators(),
            temps: warm.clone(),
            reports: vec![("v-bedroom", report(true, 900)), ("boiler", report(true, 60))],
            plant: "boiler",
            expect: (true, false, MinOnTime),
            open: vec!["v-bedroom"],
            reason: "boiler: heat held on: min on time, 2 min left",
        },
        Case {
            name: "bypass: opened when the boiler must run with no zone calling; the zone valve \
                   stays open until the bypass is",
            house: with(radiators(), |h| h.plants[0].bypass_zone = Some(ZoneId::from("bath"))),
            temps: warm.clone(),
            reports: vec![("v-bedroom", report(true, 900)), ("boiler", report(true, 60))],
            plant: "boiler",
            expect: (true, false, MinOnTime),
            open: vec!["v-bedroom", "v-bath"],
            reason: "min on time",
        },
        Case {
            name: "bypass open: the zone valve closes",
            house: with(radiators(), |h| h.plants[0].bypass_zone = Some(ZoneId::from("bath"))),
            temps: warm.clone(),
            reports: vec![
                ("v-bedroom", report(true, 900)),
                ("v-bath", report(true, 60)),
                ("boiler", report(true, 60)),
            ],
            plant: "boiler",
            expect: (true, false, MinOnTime),
            open: vec!["v-bath"],
            reason: "min on time",
        },
        Case {
            name: "never on with every valve closed: a running boiler whose valves were \
                   reported closed stops",
            house: radiators(),
            temps: warm.clone(),
            reports: vec![("boiler", report(true, 60))],
            plant: "boiler",
            expect: (false, false, NoOutlet),
            open: vec![],
            reason: "boiler off: no valve of its zones is open for heat",
        },
        Case {
            name: "a zone's sensor loss leaves the others unaffected",
            house: radiators(),
            temps: vec![("bedroom", None), ("bath", Some(18.5)), ("living", Some(21.0))],
            reports: vec![("v-bedroom", report(true, 600)), ("v-bath", report(true, 600))],
            plant: "boiler",
            expect: (true, false, Calling),
            open: vec!["v-bedroom", "v-bath"],
            reason: "boiler on: bedroom, bath calling",
        },
        Case {
            name: "changeover on a shared plant: the running system keeps the plant, the zone \
                   calling the other stays closed",
            house: heat_pump(),
            temps: vec![("bedroom", Some(18.9)), ("living", Some(27.0))],
            reports: vec![("v-bedroom", report(true, 600)), ("hp-heat", report(true, 300))],
            plant: "hp",
            expect: (true, false, Calling),
            open: vec!["v-bedroom"],
            reason: "heat pump on: bedroom calling",
        },
        Case {
            name: "changeover delay: cooling waits after heat stopped",
            house: heat_pump(),
            temps: vec![("bedroom", Some(21.0)), ("living", Some(27.0))],
            reports: vec![("v-living", report(true, 600)), ("hp-heat", report(false, 60))],
            plant: "hp",
            expect: (false, false, Changeover),
            open: vec!["v-living"],
            reason: "heat pump: cool held off: changeover from heat, 4 min left",
        },
        Case {
            name: "changeover passed: cooling runs",
            house: heat_pump(),
            temps: vec![("bedroom", Some(21.0)), ("living", Some(27.0))],
            reports: vec![("v-living", report(true, 600)), ("hp-heat", report(false, 400))],
            plant: "hp",
            expect: (false, true, Calling),
            open: vec!["v-living"],
            reason: "heat pump on: living calling",
        },
        Case {
            name: "max run stops the plant",
            house: with(radiators(), |h| h.plants[0].max_run_s = Some(3600)),
            temps: cold_bed.clone(),
            reports: vec![("v-bedroom", report(true, 4000)), ("boiler", report(true, 3600))],
            plant: "boiler",
            expect: (false, false, MaxRun),
            open: vec!["v-bedroom"],
            reason: "boiler off: max heat run of 60 min reached",
        },
    ];
    for c in cases {
        let eq = EquipmentState {
            relays: c.reports.iter().map(|(r, s)| (RelayId::from(*r), *s)).collect(),
        };
        let plan = pass(&c.house, &c.temps, &eq, NOW);
        let p =
            plan.plant(&PlantId::from(c.plant)).unwrap_or_else(|| panic!("{}: no plant", c.name));
        assert_eq!((p.heat, p.cool, p.code), c.expect, "{}: {p:?}\n{plan:#?}", c.name);
        assert!(p.reason.contains(c.reason), "{}: {:?}", c.name, p.reason);
        let open: Vec<&str> =
            plan.valves.iter().filter(|v| v.open).map(|v| v.relay.0.as_str()).collect();
        let mut want = c.open.clone();
        want.sort_unstable();
        let mut got = open.clone();
        got.sort_unstable();
        assert_eq!(got, want, "{}: {:#?}", c.name, plan.valves);
        for v in &plan.valves {
            assert_eq!(plan.relays.get(&v.relay), Some(&v.open), "{}", c.name);
        }
    }
}

#[test]
fn zone_texts_and_sensor_loss_per_zone() {
    let plan = pass(
        &radiators(),
        &[("bedroom", None), ("bath", Some(18.9)), ("living", Some(21.0))],
        &EquipmentState::default(),
        NOW,
    );
    let code = |z: &str| {
        plan.zones
            .iter()
            .find(|o| o.zone.0 == z)
            .map(|o| (o.decision.reason_code, o.text.clone()))
            .unwrap_or_else(|| panic!("no zone {z}"))
    };
    assert_eq!(code("bedroom").0, ReasonCode::SensorLossDuty);
    assert_eq!(
        code("bath"),
        (
            ReasonCode::HeatBelowBand,
            "bath calls for heat: heat on: bath 18.9 °C < 20.0 − 0.3 °C".to_owned()
        )
    );
    assert_eq!(code("living").0, ReasonCode::HeatAboveBand);
    let valve = plan.valve(&RelayId::from("v-bath")).map(|v| (v.open, v.code, v.reason.clone()));
    assert_eq!(
        valve,
        Some((true, ValveCode::Calling, "bath valve open: bath calls for heat".to_owned()))
    );
    let closed = plan.valve(&RelayId::from("v-living")).map(|v| (v.open, v.code));
    assert_eq!(closed, Some((false, ValveCode::Closed)));
}

#[test]
fn a_zone_calling_the_other_system_is_kept_closed_with_its_reason() {
    let eq = EquipmentState {
        relays: [("v-bedroom", report(true, 600)), ("hp-heat", report(true, 300))]
            .into_iter()
            .map(|(r, s)| (RelayId::from(r), s))
            .collect(),
    };
    let plan = pass(&heat_pump(), &[("bedroom", Some(18.9)), ("living", Some(27.0))], &eq, NOW);
    let v = plan.valve(&RelayId::from("v-living")).map(|v| (v.open, v.code));
    assert_eq!(v, Some((false, ValveCode::OtherSystem)));
}

/// Today's house (one zone, one plant without valves) decides exactly as `control::decide`:
/// random temperatures, modes, algorithms, relay states and protection times.
#[test]
fn the_single_zone_house_decides_as_today() {
    let mut rng = Rng::new(5);
    for i in 0..3000 {
        let mode = [Mode::Heat, Mode::Cool, Mode::Auto, Mode::Off][(rng.next_u64() % 4) as usize];
        let algorithm = ["hysteresis", "predictive"][(rng.next_u64() % 2) as usize];
        let settings = Settings {
            mode,
            algorithm: algorithm.to_owned(),
            min_on_s: (rng.next_u64() % 600) as u32,
            min_off_s: (rng.next_u64() % 600) as u32,
            changeover_s: (rng.next_u64() % 900) as u32,
            ..Settings::default()
        };
        let mut house = House::single(
            &settings,
            vec!["28-house".to_owned()],
            Some(RelayId::from("heat")),
            Some(RelayId::from("cool")),
        );
        house.zones[0].id = ZoneId::from("house");
        let temp = (rng.uniform() < 0.9).then(|| 3.0 + rng.uniform() * 30.0);
        let relay = |rng: &mut Rng| {
            let on = rng.uniform() < 0.4;
            let since = (rng.uniform() < 0.9).then(|| at(-((rng.uniform() * 900.0) as i64)));
            let ran_until = (!on && rng.uniform() < 0.5).then_some(since).flatten();
            Running { on, since, ran_until }
        };
        let (heat, cool) = (relay(&mut rng), relay(&mut rng));
        let cool = if heat.on { Running { on: false, ..cool } } else { cool };
        let eq = EquipmentState {
            relays: BTreeMap::from([(RelayId::from("heat"), heat), (RelayId::from("cool"), cool)]),
        };
        let now = at((rng.uniform() * 3600.0) as i64);
        let sensors = [probe("house", temp, now)];
        let timeline = segments(now, 20.0 + rng.uniform() * 2.0, 24.0 + rng.uniform() * 2.0);
        let learned = Learned::default();
        let today = decide(&Inputs {
            now,
            settings: &settings,
            segments: &timeline,
            sensors: &sensors,
            stale_after: jiff::SignedDuration::from_secs(120),
            equipment: Equipment { heat, cool },
            learned: &learned,
            runs: &[],
        });
        let inputs = ZoneInputs {
            now,
            segments: &timeline,
            sensors: &sensors,
            stale_after: jiff::SignedDuration::from_secs(120),
            learned: &learned,
            runs: &[],
        };
        let call = decide_zone(&house, &house.zones[0], &inputs, &eq);
        let plan = plan(&house, &[call], &eq, now);
        assert_eq!(plan.zones[0].decision, today, "case {i}");
        let p = &plan.plants[0];
        if p.code != PlantCode::NoOutlet {
            assert_eq!((p.heat, p.cool), (today.heat, today.cool), "case {i}: {p:?}");
        }
        assert_eq!(plan.relays.get(&RelayId::from("heat")), Some(&p.heat));
    }
}

#[test]
fn bad_houses_are_refused_naming_the_problem() {
    use ProblemCode::*;
    let ok = radiators();
    assert_eq!(check_house(&ok), Ok(()));
    assert_eq!(check_house(&heat_pump()), Ok(()));
    let single = House::single(&Settings::default(), vec!["28-1".into()], Some("h".into()), None);
    assert_eq!(check_house(&single), Ok(()));
    let cases: Vec<(House, ProblemCode, &str)> = vec![
        (
            with(radiators(), |h| h.zones[1].outputs.valves.push(RelayId::from("v-bedroom"))),
            ValveInTwoZones,
            "valve v-bedroom is assigned to zones bedroom and bath",
        ),
        (
            with(radiators(), |h| {
                h.plants.push(with(boiler(&[]), |p| {
                    p.id = PlantId::from("b2");
                    p.name = "spare boiler".to_owned();
                    p.heat_relay = Some(RelayId::from("b2"));
                }))
            }),
            PlantServesNoZone,
            "plant spare boiler serves no zone",
        ),
        (
            with(radiators(), |h| h.zones[2].outputs.valves = vec![RelayId::from("boiler")]),
            ZoneOutputsBelongToPlant,
            "every output of zone living belongs to another plant: boiler (plant boiler)",
        ),
        (
            with(radiators(), |h| {
                for z in &mut h.zones {
                    z.outputs.valves.clear();
                }
            }),
            PlantValvesUnassigned,
            "plant boiler serves zones bedroom, bath, living and none of them has a valve",
        ),
        (
            with(radiators(), |h| h.zones[1].sensors.clear()),
            ZoneWithoutSensors,
            "zone bath has no sensors",
        ),
        (
            with(radiators(), |h| h.plants[0].bypass_zone = Some(ZoneId::from("attic"))),
            NowhereForHeat,
            "plant boiler's bypass zone attic is not a zone it serves",
        ),
        (
            with(radiators(), |h| h.plants[0].zones.push(ZoneId::from("attic"))),
            PlantUnknownZone,
            "plant boiler serves zone attic, which does not exist",
        ),
        (
            with(radiators(), |h| h.plants[0].heat_relay = None),
            PlantWithoutRelay,
            "plant boiler has no heat relay",
        ),
        (
            with(radiators(), |h| h.plants[0].zones.retain(|z| z.0 != "living")),
            ZoneUnserved,
            "zone living is served by no plant and has no relay of its own",
        ),
        (
            with(radiators(), |h| h.plants[0].min_calling_zones = 4),
            PlantSettings,
            "plant boiler: min_calling_zones must be between 1 and the 3 zones it serves, got 4",
        ),
        (
            with(radiators(), |h| h.plants[0].max_run_s = Some(60)),
            PlantSettings,
            "plant boiler: max_run_s (60) must be at least min_on_s (180)",
        ),
        (
            with(radiators(), |h| h.plants[0].valve_delay_s = 601),
            PlantSettings,
            "plant boiler: valve_delay_s must be between 0 and 600, got 601",
        ),
        (
            with(radiators(), |h| h.zones[0].settings.frost_floor_c = 40.0),
            ZoneSettings,
            "zone bedroom: frost_floor_c field must be between",
        ),
        (
            with(heat_pump(), |h| {
                h.zones[0].outputs.valves.clear();
                h.zones[0].outputs.heat_relay = Some(RelayId::from("radiator"));
                h.plants[0].zones.push(ZoneId::from("bath"));
                h.zones.push(zone("bath", Mode::Heat, &["v-bath"]));
            }),
            HeatAndCoolUnvalved,
            "zone bedroom has no valve and is served by a heating and another cooling plant",
        ),
        (
            with(radiators(), |h| h.zones.push(zone("bath", Mode::Heat, &["v-2"]))),
            DuplicateId,
            "zone id bath is used twice",
        ),
    ];
    for (house, code, message) in cases {
        let problems = check_house(&house).err().unwrap_or_default();
        assert!(
            problems.iter().any(|p| p.code == code && p.message.contains(message)),
            "{code:?} {message:?}: {problems:#?}"
        );
    }
}

#[test]
fn a_house_reads_back_from_json() {
    let house = heat_pump();
    let json = serde_json::to_string(&house).unwrap_or_default();
    let back: Result<House, _> = serde_json::from_str(&json);
    assert_eq!(back.ok(), Some(house));
    let code = serde_json::to_value(PlantCode::ValveDelay).ok();
    assert_eq!(code, Some(serde_json::json!("valve_delay")));
}

// ----- the property test -----

/// A relay layer that reports back what was commanded: each command lands with a chance (an
/// agent that did not answer this time), and the switch time is when it landed.
struct Relays {
    state: BTreeMap<RelayId, Running>,
}

impl Relays {
    fn apply(
        &mut self,
        commands: &BTreeMap<RelayId, bool>,
        now: Timestamp,
        rng: &mut Rng,
    ) -> Vec<(RelayId, bool)> {
        let mut switched = Vec::new();
        for (relay, want) in commands {
            let cur = self.state.get(relay).copied().unwrap_or(Running::OFF_UNKNOWN);
            if cur.on == *want || rng.uniform() < 0.1 {
                continue;
            }
            let ran_until = if *want { cur.ran_until } else { Some(now) };
            self.state.insert(relay.clone(), Running { on: *want, since: Some(now), ran_until });
            switched.push((relay.clone(), *want));
        }
        switched
    }

    fn equipment(&self) -> EquipmentState {
        EquipmentState { relays: self.state.clone() }
    }
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[(rng.next_u64() % items.len() as u64) as usize]
}

/// One of four houses with random times.
fn random_house(rng: &mut Rng) -> House {
    let mut house = match rng.next_u64() % 4 {
        0 => radiators(),
        1 => with(radiators(), |h| {
            h.plants[0].min_calling_zones = 2;
            h.plants[0].bypass_zone = Some(ZoneId::from("bath"));
            h.plants[0].max_run_s = Some(1800);
        }),
        2 => with(heat_pump(), |h| {
            let mut bath = zone("bath", Mode::Heat, &[]);
            bath.outputs.heat_relay = Some(RelayId::from("towel rail"));
            h.zones.push(bath);
            h.plants[0].overrun_s = 90;
        }),
        _ => House::single(
            &Settings { mode: Mode::Auto, ..Settings::default() },
            vec!["28-house".to_owned()],
            Some(RelayId::from("heat")),
            Some(RelayId::from("cool")),
        ),
    };
    for p in &mut house.plants {
        p.min_on_s = pick(rng, &[0, 60, 180, 600]);
        p.min_off_s = pick(rng, &[0, 60, 180, 600]);
        p.changeover_s = pick(rng, &[0, 300]);
        p.valve_delay_s = if house.zones.iter().any(|z| !z.outputs.valves.is_empty()) {
            pick(rng, &[0, 30, 90, 180])
        } else {
            0
        };
        p.overrun_s = pick(rng, &[0, 60, 300]);
        if let Some(max) = p.max_run_s {
            p.max_run_s = Some(max.max(p.min_on_s));
        }
    }
    for z in &mut house.zones {
        z.settings.algorithm = pick(rng, &["hysteresis", "predictive"]).to_owned();
        z.settings.min_on_s = pick(rng, &[0, 120]);
        z.settings.min_off_s = pick(rng, &[0, 120]);
    }
    house
}

#[test]
fn random_sequences_keep_the_invariants() {
    let mut rng = Rng::new(2026);
    let (mut sequences, mut plant_starts, mut valve_moves) = (0, 0, 0);
    for seq in 0..2000 {
        let house = random_house(&mut rng);
        assert_eq!(check_house(&house), Ok(()), "sequence {seq}");
        let plants = house.all_plants();
        let mut relays = Relays { state: BTreeMap::new() };
        let mut temps: Vec<Option<f64>> =
            house.zones.iter().map(|_| Some(15.0 + rng.uniform() * 12.0)).collect();
        let mut setpoints: Vec<(f64, f64)> = house.zones.iter().map(|_| (20.0, 25.0)).collect();
        let mut house = house;
        // When each plant relay last switched, and the plant code of the plan that switched it.
        let mut last_switch: BTreeMap<RelayId, (Timestamp, bool)> = BTreeMap::new();
        let mut now = at(rng.next_u64() as i64 % 86_400);
        for step in 0..120 {
            // Readings: drift, jumps, losses; schedule and mode changes.
            for (i, z) in house.zones.iter_mut().enumerate() {
                let r = rng.uniform();
                temps[i] = match temps[i] {
                    _ if r < 0.02 => None,
                    None if r < 0.3 => None,
                    _ if r < 0.05 => Some(rng.uniform() * 35.0),
                    Some(t) => Some(t + rng.normal() * 0.2),
                    None => Some(15.0 + rng.uniform() * 12.0),
                };
                if rng.uniform() < 0.02 {
                    setpoints[i] =
                        (pick(&mut rng, &[17.0, 19.0, 21.0, 23.0]), pick(&mut rng, &[24.0, 26.0]));
                }
                if rng.uniform() < 0.01 {
                    z.settings.mode =
                        pick(&mut rng, &[Mode::Heat, Mode::Cool, Mode::Auto, Mode::Off]);
                }
            }
            let eq = relays.equipment();
            let sensors: Vec<SensorSnapshot> =
                house.zones.iter().zip(&temps).map(|(z, t)| probe(&z.id.0, *t, now)).collect();
            let learned = Learned::default();
            let mut calls = Vec::new();
            for (z, (heat_c, cool_c)) in house.zones.iter().zip(&setpoints) {
                let timeline = segments(now, *heat_c, *cool_c);
                let inputs = ZoneInputs {
                    now,
                    segments: &timeline,
                    sensors: &sensors,
                    stale_after: jiff::SignedDuration::from_secs(120),
                    learned: &learned,
                    runs: &[],
                };
                let call = decide_zone(&house, z, &inputs, &eq);
                assert!(
                    !(call.proposed.decision.heat && call.proposed.decision.cool),
                    "seq {seq} step {step}: a zone asks heat and cool"
                );
                calls.push(call);
            }
            let plan = plan(&house, &calls, &eq, now);
            let switched = relays.apply(&plan.relays, now, &mut rng);
            let after = relays.equipment();
            valve_moves += switched
                .iter()
                .filter(|(r, _)| {
                    plants.iter().all(|p| {
                        p.heat_relay.as_ref() != Some(r) && p.cool_relay.as_ref() != Some(r)
                    })
                })
                .count();

            for (p, pp) in plants.iter().zip(&plan.plants) {
                let e = plant_equipment(p, &after);
                assert!(
                    !(e.heat.on && e.cool.on),
                    "seq {seq} step {step}: {} heats and cools",
                    p.name
                );
                for (relay, r) in [(&p.heat_relay, e.heat), (&p.cool_relay, e.cool)] {
                    let Some(relay) = relay else { continue };
                    // Never on with every outlet closed; at a start, one open for the delay.
                    if r.on {
                        let starting = switched.iter().any(|(s, on)| s == relay && *on);
                        let outlet_ok = p.zones.iter().filter_map(|id| house.zone(id)).any(|z| {
                            let (open, since) = outlet(z, &after);
                            let before = outlet(z, &eq);
                            let delay = jiff::SignedDuration::from_secs(p.valve_delay_s.into());
                            open && (!starting
                                || z.outputs.valves.is_empty()
                                || (before.0
                                    && before.1.is_none_or(|s| s + delay <= now)
                                    && since == before.1))
                        });
                        assert!(
                            outlet_ok,
                            "seq {seq} step {step}: {} on, no outlet ready: {plan:#?} {after:#?}",
                            p.name
                        );
                    }
                    // Minimum on/off times from the switch log.
                    if let Some((_, on)) = switched.iter().find(|(s, _)| s == relay) {
                        plant_starts += usize::from(*on);
                        if let Some((t, was_on)) = last_switch.get(relay) {
                            let held = now.duration_since(*t).as_secs();
                            let excused =
                                matches!(pp.code, PlantCode::SafetyStop | PlantCode::MaxRun);
                            if *was_on && !on && !excused {
                                assert!(
                                    held >= i64::from(p.min_on_s),
                                    "seq {seq} step {step}: {} ran {held} s < min on {}: {pp:?} {house:#?} {eq:#?} {plan:#?}",
                                    p.name,
                                    p.min_on_s
                                );
                            }
                            if !was_on && *on {
                                assert!(
                                    held >= i64::from(p.min_off_s),
                                    "seq {seq} step {step}: {} rested {held} s < min off {}: {pp:?}",
                                    p.name,
                                    p.min_off_s
                                );
                            }
                        }
                        last_switch.insert(relay.clone(), (now, *on));
                    }
                }
            }
            // No zone gets heat and cold at once.
            for z in &house.zones {
                let (open, _) = outlet(z, &after);
                let gets = |system: System| {
                    open && plants.iter().any(|p| {
                        let e = plant_equipment(p, &after);
                        p.zones.contains(&z.id)
                            && if system == System::Heat { e.heat.on } else { e.cool.on }
                    })
                };
                assert!(
                    !(gets(System::Heat) && gets(System::Cool)),
                    "seq {seq} step {step}: zone {} heated and cooled",
                    z.name
                );
            }
            now += jiff::SignedDuration::from_secs(30);
        }
        sequences += 1;
    }
    // The sequences did exercise the plants and valves.
    assert!(
        plant_starts > 1000 && valve_moves > 1000,
        "{sequences} sequences, {plant_starts} starts, {valve_moves} valve moves"
    );
}
