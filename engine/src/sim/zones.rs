//! `hearth-engine simulate --zones N`: a house of N rooms on one boiler, each room behind a
//! valve, driven by the REAL zone decisions (`zones::decide_zone`, i.e. `control::propose`
//! per room) and the REAL plant planner (`zones::plan`) every 30 s of virtual time.
//!
//! Each room is the two-node model of `house.rs` scaled to its share of the house, exchanging
//! heat with its neighbours and outdoors; its radiator gets the boiler's water (which warms up
//! and cools down with a lag) through a thermal valve actuator that takes two minutes to open
//! or close. Each room has its own DS18B20-like probe and its own schedule, made from the
//! family's week. The relays obey at once and report what they did; the planner sees only
//! those reports.

use std::collections::BTreeMap;
use std::fmt;

use crate::control::Settings;
use hearth_proto::Timestamp;
use hearth_proto::history::Run;
use hearth_proto::schedules::{Segment, SensorWeight};

use super::house::{House as Room, Probe, Rng, Weather};
use super::plan::{COMFORT_C, day_plan};
use super::record::{self, Outdoor, on_seconds, read_probes, recent_runs, record_run};
use super::{DECIDE_S, STEP_S, violations};
use crate::control::{self, Learned, Running, SensorSnapshot};
use crate::zones::{
    self, EquipmentState, House, PlantCode, PlantConfig, PlantId, PlantKind, RelayId, ZoneConfig,
    ZoneId, ZoneInputs, ZoneOutputs,
};

/// The rooms a simulated house can have, in order: name, probe id, comfort and setback
/// setpoints (°C), share of the house's mass, losses and radiators.
const ROOMS: [(&str, &str, f64, f64, f64); 6] = [
    ("living", "28-0000000b0001", 21.0, 17.0, 0.35),
    ("bedroom", "28-0000000b0002", 19.0, 16.0, 0.25),
    ("bath", "28-0000000b0003", 22.0, 18.0, 0.12),
    ("kitchen", "28-0000000b0004", 20.0, 17.0, 0.18),
    ("study", "28-0000000b0005", 20.5, 16.5, 0.15),
    ("kids", "28-0000000b0006", 20.0, 17.0, 0.2),
];

/// How long a thermal valve actuator takes to open or close fully, seconds.
const VALVE_TRAVEL_S: f64 = 120.0;
/// How long the boiler waits for a valve reported open: longer than its travel.
const VALVE_DELAY_S: u32 = 150;
/// Time constant of the boiler's water warming up and cooling down, seconds.
const BOILER_TAU_S: f64 = 240.0;
/// Conductance between neighbouring rooms (inner walls, open doors), W/K.
const NEIGHBOUR_W_PER_K: f64 = 60.0;

/// What to simulate.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneSimOptions {
    /// Rooms, 2..=6.
    pub rooms: u32,
    pub days: u32,
    pub seed: u64,
    /// The algorithm every room decides with.
    pub algorithm: String,
}

/// One room's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneFigures {
    pub name: String,
    pub comfort_c: f64,
    pub setback_c: f64,
    /// Share of occupied time with the true room temperature within ±0.5 °C, 0..=1.
    pub comfort: f64,
    /// Share of occupied time more than 0.5 °C below, 0..=1.
    pub cold: f64,
    /// Kelvin-hours outside ±0.5 °C of the setpoint while occupied, per day.
    pub discomfort_kh_per_day: f64,
    /// Times its valve relay switched.
    pub valve_operations: u32,
}

/// What a zoned simulation measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneSimReport {
    pub options: ZoneSimOptions,
    /// The outdoor temperature's lowest, mean and highest, °C.
    pub outdoor_c: (f64, f64, f64),
    pub zones: Vec<ZoneFigures>,
    pub boiler_cycles: u32,
    pub boiler_on_h: f64,
    /// Decisions at which the boiler waited for a valve to open.
    pub valve_waits: u32,
    /// Boiler runs shorter than its minimum on time, pauses shorter than its minimum off time
    /// (from the relay switch log).
    pub min_on_violations: u32,
    pub min_off_violations: u32,
    /// Seconds the boiler fired with every valve physically closed.
    pub fired_closed_s: u32,
    /// Decisions where one room was asked for heat and cooling at once.
    pub heat_and_cool: u32,
}

impl ZoneSimReport {
    /// Every protection violation counted.
    pub fn violations(&self) -> u32 {
        self.min_on_violations + self.min_off_violations + self.fired_closed_s + self.heat_and_cool
    }
}

impl fmt::Display for ZoneSimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        let (min, mean, max) = self.outdoor_c;
        writeln!(
            f,
            "{} rooms, one boiler, {}: {} days, seed {} (outdoor {min:.1}..{max:.1} °C, mean \
             {mean:.1} °C)",
            o.rooms, o.algorithm, o.days, o.seed
        )?;
        for z in &self.zones {
            writeln!(
                f,
                "  {:<8} ({:.1}/{:.1} °C): occupied within ±0.5 °C {:.1} %, below {:.1} %, \
                 discomfort {:.2} K·h/day, valve operations {}",
                z.name,
                z.comfort_c,
                z.setback_c,
                z.comfort * 100.0,
                z.cold * 100.0,
                z.discomfort_kh_per_day,
                z.valve_operations
            )?;
        }
        let hours = f64::from(self.options.days) * 24.0;
        writeln!(
            f,
            "  boiler: {} cycles, {:.2} cycles/h, on {:.1} h ({:.0} % duty), waited for a \
             valve at {} decisions ({:.1} h)",
            self.boiler_cycles,
            f64::from(self.boiler_cycles) / hours,
            self.boiler_on_h,
            self.boiler_on_h / hours * 100.0,
            self.valve_waits,
            f64::from(self.valve_waits) * DECIDE_S as f64 / 3600.0
        )?;
        write!(
            f,
            "  protection violations: {} (min on {}, min off {}, fired with every valve closed \
             {} s, heat and cooling to one room {})",
            self.violations(),
            self.min_on_violations,
            self.min_off_violations,
            self.fired_closed_s,
            self.heat_and_cool
        )
    }
}

/// The simulated house's configuration: one zone per room, each behind its valve, one
/// boiler; the bath (a towel rail) is its bypass.
fn configure(rooms: usize, settings: &Settings) -> House {
    let zones: Vec<ZoneConfig> = ROOMS[..rooms]
        .iter()
        .map(|(name, probe, ..)| ZoneConfig {
            id: ZoneId::from(*name),
            name: (*name).to_owned(),
            sensors: vec![(*probe).to_owned()],
            settings: settings.clone(),
            outputs: ZoneOutputs {
                valves: vec![RelayId(format!("valve-{name}"))],
                ..ZoneOutputs::default()
            },
        })
        .collect();
    let bypass = zones.iter().find(|z| z.id.0 == "bath").map(|z| z.id.clone());
    let boiler = PlantConfig {
        id: PlantId::from("boiler"),
        name: "boiler".to_owned(),
        kind: PlantKind::Heat,
        heat_relay: Some(RelayId::from("boiler")),
        cool_relay: None,
        min_on_s: settings.min_on_s,
        min_off_s: settings.min_off_s,
        changeover_s: settings.changeover_s,
        max_run_s: None,
        zones: zones.iter().map(|z| z.id.clone()).collect(),
        valve_delay_s: VALVE_DELAY_S,
        overrun_s: 120,
        min_calling_zones: 1,
        bypass_zone: bypass,
    };
    House { zones, plants: vec![boiler] }
}

/// A room's own week: the family's blocks at its own comfort and setback setpoints, decided on
/// its own probe.
fn room_plan(week: &[Segment], probe: &str, comfort_c: f64, setback_c: f64) -> Vec<Segment> {
    let selection = vec![SensorWeight { sensor_id: probe.to_owned(), weight: 1.0 }];
    week.iter()
        .map(|s| Segment {
            heat_c: if s.heat_c == COMFORT_C { comfort_c } else { setback_c },
            sensors: selection.clone(),
            ..s.clone()
        })
        .collect()
}

/// Run a zoned simulation. Errors: rooms out of 2..=6, days out of 1..=3650, an unknown
/// algorithm, or a house the checks refuse.
pub fn simulate_zones(opts: &ZoneSimOptions) -> Result<ZoneSimReport, String> {
    let n = opts.rooms as usize;
    if !(2..=ROOMS.len()).contains(&n) {
        return Err(format!("zones must be between 2 and {}, got {}", ROOMS.len(), opts.rooms));
    }
    let settings = record::settings(opts.days, &opts.algorithm)?;
    let house = configure(n, &settings);
    zones::check_house(&house).map_err(|problems| {
        problems.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; ")
    })?;
    let boiler_relay = RelayId::from("boiler");
    let boiler_id = PlantId::from("boiler");

    let mut rng = Rng::new(opts.seed);
    let mut weather = Weather::winter();
    let total_share: f64 = ROOMS[..n].iter().map(|r| r.4).sum();
    let mut rooms: Vec<Room> = ROOMS[..n]
        .iter()
        .map(|r| {
            let f = r.4 / total_share;
            let mut room = Room::typical(18.0);
            room.c_air *= f;
            room.c_mass *= f;
            room.h_air_mass *= f;
            room.ua_air *= f;
            room.ua_mass *= f;
            room.gains_w *= f;
            room
        })
        .collect();
    // Each radiator is sized to its room's share of the house's 10 kW, 20 % over.
    let rated_w: Vec<f64> = rooms.iter().map(|r| r.heat_w * r.c_air / 2.5e6 * 1.2).collect();
    let mut probes: Vec<Probe> = ROOMS[..n].iter().map(|r| Probe::new(r.1, r.0, 0.0)).collect();
    let first_day = jiff::civil::date(2026, 1, 5); // a Monday
    let week = day_plan(first_day, opts.days + 2, &[]);
    let plans: Vec<Vec<Segment>> =
        ROOMS[..n].iter().map(|r| room_plan(&week, r.1, r.2, r.3)).collect();
    let start = week.first().map(|s| s.start).ok_or("empty plan")?;
    let end = start + jiff::SignedDuration::from_hours(24 * i64::from(opts.days));

    let mut relays: BTreeMap<RelayId, Running> = BTreeMap::new();
    let mut boiler_switches: Vec<(Timestamp, bool)> = Vec::new();
    let mut valve_ops = vec![0u32; n];
    let mut valve_pos = vec![0.0f64; n];
    let mut boiler_level = 0.0f64;
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); n];
    let mut learned: Vec<Learned> = vec![Learned::default(); n];
    let mut seg_idx = vec![0usize; n];
    let mut snapshots: Vec<SensorSnapshot> = Vec::new();
    let (mut occupied, mut comfy, mut cold) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    let mut discomfort_kh = vec![0.0f64; n];
    let mut outdoor_seen = Outdoor::new();
    let (mut fired_closed_s, mut heat_and_cool, mut valve_waits) = (0u32, 0u32, 0u32);

    let mut t = start;
    while t < end {
        let elapsed_s = t.as_second() - start.as_second();
        let second_of_day = elapsed_s.rem_euclid(86_400) as f64;
        if elapsed_s % DECIDE_S == 0 {
            if second_of_day == 0.0 {
                for (l, r) in learned.iter_mut().zip(&runs) {
                    *l = control::learn(r, t);
                }
            }
            snapshots = read_probes(&probes, t, &mut rng, &snapshots);
            let eq = EquipmentState { relays: relays.clone() };
            let mut calls = Vec::with_capacity(n);
            for (i, zone) in house.zones.iter().enumerate() {
                while plans[i].get(seg_idx[i]).is_some_and(|s| s.end <= t) {
                    seg_idx[i] += 1;
                }
                let inputs = ZoneInputs {
                    now: t,
                    segments: plans[i].get(seg_idx[i]..).unwrap_or(&[]),
                    sensors: &snapshots,
                    stale_after: jiff::SignedDuration::from_secs(120),
                    learned: &learned[i],
                    runs: recent_runs(&runs[i], t),
                };
                let call = zones::decide_zone(&house, zone, &inputs, &eq);
                heat_and_cool += u32::from(call.heat() && call.proposed.proposal.cool);
                // The zone's runs, as the loop would record them: while it gets heat.
                let gets = zones::zone_equipment(&house, zone, &eq).heat.on;
                let open_run = runs[i].last().is_some_and(|r| r.end.is_none());
                if gets != open_run {
                    record_run(&mut runs[i], gets, t, call.proposed.decision.effective_temp_c);
                }
                calls.push(call);
            }
            let plan = zones::plan(&house, &calls, &eq, t);
            let boiler_plan = plan.plant(&boiler_id);
            valve_waits += u32::from(boiler_plan.is_some_and(|p| p.code == PlantCode::ValveDelay));
            // The relays obey at once and report the switch.
            for (relay, want) in &plan.relays {
                let cur = relays.get(relay).copied().unwrap_or(Running::OFF_UNKNOWN);
                if cur.on == *want {
                    continue;
                }
                let ran_until = if *want { cur.ran_until } else { Some(t) };
                relays.insert(relay.clone(), Running { on: *want, since: Some(t), ran_until });
                if *relay == boiler_relay {
                    boiler_switches.push((t, *want));
                } else if let Some(i) =
                    house.zones.iter().position(|z| z.outputs.valves.contains(relay))
                {
                    valve_ops[i] += 1;
                }
            }
            for i in 0..n {
                let Some(seg) = plans[i].get(seg_idx[i]) else { continue };
                if seg.heat_c != ROOMS[i].2 {
                    continue;
                }
                occupied[i] += 1;
                let off = rooms[i].air_c - seg.heat_c;
                comfy[i] += u64::from(off.abs() <= 0.5);
                cold[i] += u64::from(off < -0.5);
                discomfort_kh[i] += (off.abs() - 0.5).max(0.0) * DECIDE_S as f64 / 3600.0;
            }
        }

        // Physics: the boiler's water, the valves' travel, the rooms and their neighbours.
        let dt = STEP_S as f64;
        weather.step(dt, &mut rng);
        let outdoor = weather.outdoor_c(second_of_day);
        outdoor_seen.add(outdoor);
        let firing = relays.get(&boiler_relay).is_some_and(|r| r.on);
        boiler_level += (f64::from(u8::from(firing)) - boiler_level) * (dt / BOILER_TAU_S).min(1.0);
        for (i, zone) in house.zones.iter().enumerate() {
            let open = zone.outputs.valves.iter().any(|v| relays.get(v).is_some_and(|r| r.on));
            let target = if open { 1.0 } else { 0.0 };
            let step = dt / VALVE_TRAVEL_S;
            valve_pos[i] += (target - valve_pos[i]).clamp(-step, step);
        }
        if firing && valve_pos.iter().all(|p| *p < 0.05) {
            fired_closed_s += STEP_S as u32;
        }
        let before: Vec<f64> = rooms.iter().map(|r| r.air_c).collect();
        for (i, room) in rooms.iter_mut().enumerate() {
            room.heat_w = rated_w[i] * valve_pos[i] * boiler_level;
            room.step(dt, outdoor, true, false);
            let mut exchange_w = 0.0;
            for j in [i.wrapping_sub(1), i + 1] {
                if let Some(other) = before.get(j) {
                    exchange_w += NEIGHBOUR_W_PER_K * (other - before[i]);
                }
            }
            room.air_c += exchange_w * dt / room.c_air;
        }
        for (p, room) in probes.iter_mut().zip(&rooms) {
            p.step(dt, room.air_c);
        }
        t += jiff::SignedDuration::from_secs(STEP_S);
    }

    let protection = Settings {
        min_on_s: house.plants[0].min_on_s,
        min_off_s: house.plants[0].min_off_s,
        ..Settings::default()
    };
    let (on_v, off_v) = violations(&boiler_switches, &protection);
    let on_s = on_seconds(&boiler_switches, end);
    let days = f64::from(opts.days);
    let zones = (0..n)
        .map(|i| ZoneFigures {
            name: ROOMS[i].0.to_owned(),
            comfort_c: ROOMS[i].2,
            setback_c: ROOMS[i].3,
            comfort: comfy[i] as f64 / occupied[i].max(1) as f64,
            cold: cold[i] as f64 / occupied[i].max(1) as f64,
            discomfort_kh_per_day: discomfort_kh[i] / days,
            valve_operations: valve_ops[i],
        })
        .collect();
    Ok(ZoneSimReport {
        options: ZoneSimOptions { algorithm: settings.algorithm.clone(), ..opts.clone() },
        outdoor_c: (outdoor_seen.min_c, outdoor_seen.mean_c(), outdoor_seen.max_c),
        zones,
        boiler_cycles: boiler_switches.iter().filter(|s| s.1).count() as u32,
        boiler_on_h: on_s as f64 / 3600.0,
        valve_waits,
        min_on_violations: on_v,
        min_off_violations: off_v,
        fired_closed_s,
        heat_and_cool,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_rooms_for_a_month_without_a_protection_violation() {
        let r = simulate_zones(&ZoneSimOptions {
            rooms: 3,
            days: 30,
            seed: 1,
            algorithm: "hysteresis".to_owned(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        println!("{r}");
        assert_eq!(r.violations(), 0, "{r}");
        assert!(r.boiler_cycles > 30, "{r}");
        for z in &r.zones {
            assert!(z.valve_operations > 30, "{r}");
            assert!(z.comfort > 0.3, "{r}");
        }
    }

    #[test]
    fn bad_options_are_refused() {
        let opts = |rooms, days, algorithm: &str| ZoneSimOptions {
            rooms,
            days,
            seed: 1,
            algorithm: algorithm.to_owned(),
        };
        let err = |o: ZoneSimOptions| simulate_zones(&o).err();
        assert_eq!(
            err(opts(1, 1, "hysteresis")),
            Some("zones must be between 2 and 6, got 1".into())
        );
        assert_eq!(
            err(opts(2, 0, "hysteresis")),
            Some("days must be between 1 and 3650, got 0".into())
        );
        assert!(err(opts(2, 1, "pid")).is_some_and(|e| e.starts_with("algorithm field")));
    }
}
