//! The plant planner: from the zones' calls and what the relays report, every valve open or
//! closed and every plant on or off, each with a reason.
//!
//! Everything is judged from REPORTS (`EquipmentState`): the valve delay counts from when a
//! valve was reported open, the overrun from when the plant was reported stopped, the
//! protections from the plant relays' switch times (`control::protect`, as for today's house).
//! The planner keeps no state, so an engine restart plans the same.
//!
//! What it never does: start a plant without an outlet open for at least its valve delay,
//! close the last open valve of a plant reported running (or in overrun), open a zone to heat
//! and cold at once.

use std::collections::BTreeMap;

use hearth_proto::Timestamp;
use hearth_proto::control::{ReasonCode, System};
use serde::{Deserialize, Serialize};

use super::{
    EquipmentState, House, PlantConfig, PlantId, PlantKind, RelayId, ZoneCall, ZoneConfig,
};
use super::{ZoneId, outlet};
use crate::control::{
    Decision, Equipment, Held, Proposal, Running, Settings, is_safety, protect, span,
};

// The codes are the wire's: `GET /v1/house` shows them as they are.
pub(crate) use hearth_proto::zones::{PlantCode, ValveCode};

/// One valve's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ValvePlan {
    pub(crate) relay: RelayId,
    pub(crate) zone: ZoneId,
    pub(crate) open: bool,
    pub(crate) code: ValveCode,
    /// "bedroom valve open: bedroom calls for heat".
    pub(crate) reason: String,
}

/// One plant's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PlantPlan {
    pub(crate) plant: PlantId,
    pub(crate) heat: bool,
    pub(crate) cool: bool,
    pub(crate) code: PlantCode,
    /// "boiler on: bedroom, bath calling".
    pub(crate) reason: String,
    /// When a protection's hold ends, as `Decision::held_until`.
    pub(crate) held_until: Option<Timestamp>,
}

/// One zone's decision as it stands after planning: for a zone that is its plant's only zone
/// and has no valve (today's house), protected by the plant exactly as `control::decide`
/// protects; otherwise its call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ZoneOutcome {
    pub(crate) zone: ZoneId,
    pub(crate) decision: Decision,
    /// "bedroom calls for heat: heat on: bedroom 18.9 °C < 20.0 − 0.3 °C".
    pub(crate) text: String,
}

/// Everything to command, with its reasons.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HousePlan {
    pub(crate) valves: Vec<ValvePlan>,
    pub(crate) plants: Vec<PlantPlan>,
    pub(crate) zones: Vec<ZoneOutcome>,
    /// Every valve and plant relay: on (open, running) or off.
    pub(crate) relays: BTreeMap<RelayId, bool>,
}

impl HousePlan {
    pub(crate) fn plant(&self, id: &PlantId) -> Option<&PlantPlan> {
        self.plants.iter().find(|p| &p.plant == id)
    }

    #[cfg(test)]
    pub(crate) fn valve(&self, relay: &RelayId) -> Option<&ValvePlan> {
        self.valves.iter().find(|v| &v.relay == relay)
    }
}

/// A plant's relays as reported.
pub(crate) fn plant_equipment(p: &PlantConfig, eq: &EquipmentState) -> Equipment {
    Equipment { heat: eq.get(p.heat_relay.as_ref()), cool: eq.get(p.cool_relay.as_ref()) }
}

/// `control::protect` reads only the protection times of the settings it is given: a plant's.
fn protection(p: &PlantConfig) -> Settings {
    Settings {
        min_on_s: p.min_on_s,
        min_off_s: p.min_off_s,
        changeover_s: p.changeover_s,
        ..Settings::default()
    }
}

fn word(system: System) -> &'static str {
    match system {
        System::Heat => "heat",
        System::Cool => "cooling",
    }
}

fn other(system: System) -> System {
    match system {
        System::Heat => System::Cool,
        System::Cool => System::Heat,
    }
}

fn can(p: &PlantConfig, system: System) -> bool {
    match system {
        System::Heat => p.kind != PlantKind::Cool && p.heat_relay.is_some(),
        System::Cool => p.kind != PlantKind::Heat && p.cool_relay.is_some(),
    }
}

fn on(e: &Equipment, system: System) -> bool {
    match system {
        System::Heat => e.heat.on,
        System::Cool => e.cool.on,
    }
}

/// Whether a plant's pump or fan still runs on after `r` stopped.
fn in_overrun(p: &PlantConfig, r: Running, now: Timestamp) -> bool {
    !r.on
        && p.overrun_s > 0
        && r.ran_until.is_some_and(|t| now.duration_since(t).as_secs() < i64::from(p.overrun_s))
}

/// What the planner knows of one zone of one plant.
struct Served<'a> {
    zone: &'a ZoneConfig,
    call: Option<&'a ZoneCall>,
    /// What the zone calls for.
    wants: Option<System>,
    /// Its outlet reported open.
    open: bool,
    /// Seconds until it has been open for the valve delay (0: ready).
    left_s: i64,
}

impl Served<'_> {
    /// Open for the valve delay (a closed valve is never ready, even with no delay).
    fn ready(&self) -> bool {
        self.open && self.left_s == 0
    }

    fn code(&self) -> Option<ReasonCode> {
        self.call.map(|c| c.proposed.proposal.code)
    }
}

/// Names for texts: "bedroom, bath".
fn names(zones: &[&Served<'_>]) -> String {
    zones.iter().map(|s| s.zone.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// A valve intent: the zone opened for this system, why.
type Intent = (System, ValveCode, String);

/// Plan the house from the zones' calls and the relays' reports.
pub(crate) fn plan(
    house: &House,
    calls: &[ZoneCall],
    eq: &EquipmentState,
    now: Timestamp,
) -> HousePlan {
    let plants = house.all_plants();
    let call_of = |z: &ZoneId| calls.iter().find(|c| &c.zone == z);
    let equipment: Vec<Equipment> = plants.iter().map(|p| plant_equipment(p, eq)).collect();
    // Whether a plant other than `me` serving `zone` runs `system` as reported.
    let others_run = |me: usize, zone: &ZoneId, system: System| {
        plants
            .iter()
            .zip(&equipment)
            .enumerate()
            .any(|(i, (q, e))| i != me && q.zones.contains(zone) && on(e, system))
    };

    let mut intents: BTreeMap<ZoneId, Vec<Intent>> = BTreeMap::new();
    let mut plans: Vec<PlantPlan> = Vec::new();
    let mut verbatim: BTreeMap<ZoneId, Held> = BTreeMap::new();
    // Zones that call for what a plant serving them cannot give now (it gives the other).
    let mut kept_closed: std::collections::BTreeSet<ZoneId> = Default::default();

    for (pi, p) in plants.iter().enumerate() {
        let e = equipment[pi];
        let served: Vec<Served<'_>> = p
            .zones
            .iter()
            .filter_map(|id| house.zone(id))
            .map(|zone| {
                let call = call_of(&zone.id);
                let wants = call.and_then(|c| {
                    if c.heat() { Some(System::Heat) } else { c.cool().then_some(System::Cool) }
                });
                let (open, since) = outlet(zone, eq);
                let delay = i64::from(p.valve_delay_s);
                let left_s = match (open, since) {
                    (false, _) => delay,
                    (true, None) => 0,
                    (true, Some(s)) => (delay - now.duration_since(s).as_secs()).max(0),
                };
                Served { zone, call, wants, open, left_s }
            })
            .collect();
        // A zone counts for `system` when it asks for it and no other plant gives it the other.
        let calling = |system: System| -> Vec<&Served<'_>> {
            served
                .iter()
                .filter(|s| s.wants == Some(system) && !others_run(pi, &s.zone.id, other(system)))
                .collect()
        };
        let need = p.min_calling_zones.max(1) as usize;
        let wanted = |system: System| {
            let ready: Vec<&Served<'_>> =
                calling(system).into_iter().filter(|s| s.ready()).collect();
            let safety = ready.iter().any(|s| s.code().is_some_and(is_safety));
            can(p, system) && (ready.len() >= need || safety)
        };
        let running = [System::Heat, System::Cool].into_iter().find(|m| on(&e, *m));
        let chosen = running
            .filter(|m| wanted(*m))
            .or_else(|| [System::Heat, System::Cool].into_iter().find(|m| wanted(*m)));

        // What the plant would do, and why, before its protections.
        let (mut code, mut text) = match chosen {
            Some(m) => {
                let ready: Vec<&Served<'_>> =
                    calling(m).into_iter().filter(|s| s.ready()).collect();
                (PlantCode::Calling, format!("{} on: {} calling", p.name, names(&ready)))
            }
            None => waiting(
                p,
                &[(System::Heat, calling(System::Heat)), (System::Cool, calling(System::Cool))],
                need,
            ),
        };
        // Today's house: its one zone's proposal is the plant's, untouched.
        let single = match served.as_slice() {
            [s] if s.zone.outputs.valves.is_empty() => s.call,
            _ => None,
        };
        let proposal = match single {
            Some(call) => call.proposed.proposal.clone(),
            None => {
                let first_code =
                    |m: System| calling(m).iter().find(|s| s.ready()).and_then(|s| s.code());
                let codes: Vec<ReasonCode> = served.iter().filter_map(|s| s.code()).collect();
                // Stopping at once only when every zone stops for safety.
                let stop = codes
                    .iter()
                    .find(|c| !is_safety(**c))
                    .or(codes.first())
                    .copied()
                    .unwrap_or(ReasonCode::ModeOff);
                let code = chosen.and_then(first_code).unwrap_or(stop);
                Proposal::new(
                    chosen == Some(System::Heat),
                    chosen == Some(System::Cool),
                    code,
                    text.clone(),
                )
            }
        };
        let held = protect(&protection(p), now, e, &proposal);
        let mut run = [held.heat && can(p, System::Heat), held.cool && can(p, System::Cool)];
        let mut until = held.until;
        let protected = match held.code {
            ReasonCode::MinOnTime => Some(PlantCode::MinOnTime),
            ReasonCode::MinOffTime => Some(PlantCode::MinOffTime),
            ReasonCode::Changeover => Some(PlantCode::Changeover),
            _ => None,
        };
        // Safety stops at once what runs (as `control::decide` does), minimum on time or not.
        let safety_stop =
            is_safety(proposal.code) && ((e.heat.on && !held.heat) || (e.cool.on && !held.cool));
        if safety_stop {
            code = PlantCode::SafetyStop;
            text = format!("{} stops at once for safety: {}", p.name, held.reason);
        } else if let Some(c) = protected {
            code = c;
            text = format!("{}: {}", p.name, held.reason);
        }
        for (i, m) in [System::Heat, System::Cool].into_iter().enumerate() {
            let r = if i == 0 { e.heat } else { e.cool };
            if let (true, true, Some(max), Some(since)) = (run[i], r.on, p.max_run_s, r.since)
                && now.duration_since(since).as_secs() >= i64::from(max)
            {
                run[i] = false;
                until = None;
                code = PlantCode::MaxRun;
                text =
                    format!("{} off: max {} run of {} reached", p.name, word(m), span(max.into()));
            }
        }
        if let Some(s) = single {
            verbatim.insert(s.zone.clone(), held.clone());
        }

        // Where the heat goes.
        let final_mode = if run[0] {
            Some(System::Heat)
        } else if run[1] {
            Some(System::Cool)
        } else {
            None
        };
        let mut open = |zone: &ZoneId, system: System, code: ValveCode, why: String| {
            intents.entry(zone.clone()).or_default().push((system, code, why));
        };
        // Zones calling what the plant can give, unless it gives the other system now: their
        // valves open so that the delay runs while the plant waits.
        let overrun = |r: Running| in_overrun(p, r, now);
        for m in [System::Heat, System::Cool] {
            let r_other = if m == System::Heat { e.cool } else { e.heat };
            if final_mode == Some(other(m)) || r_other.on || overrun(r_other) {
                for s in calling(m) {
                    kept_closed.insert(s.zone.id.clone());
                }
                continue;
            }
            if !can(p, m) {
                continue;
            }
            for s in calling(m) {
                if s.zone.outputs.valves.is_empty() {
                    continue;
                }
                let why = format!("{} calls for {}", s.zone.name, word(m));
                open(&s.zone.id, m, ValveCode::Calling, why);
            }
        }
        // A plant that runs, is reported running or runs on with no calling zone ready keeps
        // the valves that are open, or opens its bypass.
        for m in [System::Heat, System::Cool] {
            let r = if m == System::Heat { e.heat } else { e.cool };
            let in_overrun = overrun(r);
            let runs = final_mode == Some(m) || r.on;
            if !runs && !in_overrun {
                continue;
            }
            let carriers =
                calling(m).into_iter().filter(|s| s.ready() && final_mode == Some(m)).count();
            if carriers > 0 {
                continue;
            }
            let (vcode, why) = if runs {
                (ValveCode::HeldForPlant, format!("{} still runs {}", p.name, word(m)))
            } else {
                let left = i64::from(p.overrun_s)
                    - r.ran_until.map_or(0, |t| now.duration_since(t).as_secs());
                (ValveCode::Overrun, format!("{} overrun, {} more", p.name, span(left)))
            };
            let bypass =
                p.bypass_zone.as_ref().and_then(|b| served.iter().find(|s| &s.zone.id == b));
            let bypass_ready = bypass.is_some_and(|b| b.ready());
            if let Some(b) = bypass {
                open(&b.zone.id, m, ValveCode::Bypass, format!("{why}, bypass"));
            }
            let mut held_open: Vec<&Served<'_>> = Vec::new();
            if !bypass_ready {
                for s in &served {
                    if s.open
                        && !s.zone.outputs.valves.is_empty()
                        && !others_run(pi, &s.zone.id, other(m))
                    {
                        open(&s.zone.id, m, vcode, why.clone());
                        held_open.push(s);
                    }
                }
            }
            if in_overrun && code != PlantCode::MinOffTime && code != PlantCode::Changeover {
                code = PlantCode::Overrun;
                let held_names = if bypass_ready { "bypass".to_owned() } else { names(&held_open) };
                text = format!(
                    "{} overrun: pump runs {} more, {} valve held open",
                    p.name,
                    span(
                        i64::from(p.overrun_s)
                            - r.ran_until.map_or(0, |t| now.duration_since(t).as_secs())
                    ),
                    held_names
                );
            }
        }
        plans.push(PlantPlan {
            plant: p.id.clone(),
            heat: run[0],
            cool: run[1],
            code,
            reason: text,
            held_until: until,
        });
    }

    // A zone is open to one system only. A plant reported running (or running on) claims the
    // zones it serves for its system: they open for nothing else. Otherwise the first asked
    // wins; a zone claimed for both stays closed.
    let claims = |zone: &ZoneId| -> Vec<System> {
        let mut claimed = Vec::new();
        for (q, e) in plants.iter().zip(&equipment) {
            if !q.zones.contains(zone) {
                continue;
            }
            for m in [System::Heat, System::Cool] {
                let r = if m == System::Heat { e.heat } else { e.cool };
                if (r.on || in_overrun(q, r, now)) && !claimed.contains(&m) {
                    claimed.push(m);
                }
            }
        }
        claimed
    };
    let mut open_for: BTreeMap<ZoneId, Intent> = BTreeMap::new();
    for (zone, list) in &intents {
        let chosen = match claims(zone).as_slice() {
            [] => list.first(),
            [m] => list.iter().find(|i| i.0 == *m),
            _ => None,
        };
        if let Some(intent) = chosen {
            open_for.insert(zone.clone(), intent.clone());
        }
    }
    // A plant runs only with an outlet open for its system (open for the valve delay when it
    // starts), and starts only when no zone it serves is open for the other system.
    for ((p, plan), e) in plants.iter().zip(plans.iter_mut()).zip(&equipment) {
        for m in [System::Heat, System::Cool] {
            let wants = if m == System::Heat { plan.heat } else { plan.cool };
            if !wants {
                continue;
            }
            let reported = on(e, m);
            let served = || p.zones.iter().filter_map(|id| house.zone(id));
            let has_outlet = served().any(|z| {
                if z.outputs.valves.is_empty() {
                    return true;
                }
                let (open, since) = outlet(z, eq);
                let ready = reported
                    || since.is_none_or(|s| {
                        now.duration_since(s).as_secs() >= i64::from(p.valve_delay_s)
                    });
                open && ready && open_for.get(&z.id).is_some_and(|o| o.0 == m)
            });
            let crossed = !reported
                && served().any(|z| {
                    open_for.get(&z.id).is_some_and(|o| o.0 == other(m))
                        || (outlet(z, eq).0 && claims(&z.id).contains(&other(m)))
                });
            if !has_outlet || crossed {
                plan.heat &= m != System::Heat;
                plan.cool &= m != System::Cool;
                plan.code = PlantCode::NoOutlet;
                plan.held_until = None;
                plan.reason = if crossed {
                    format!("{} off: a zone it serves is open for the other system", p.name)
                } else {
                    format!("{} off: no valve of its zones is open for {}", p.name, word(m))
                };
            }
        }
    }

    let mut valves = Vec::new();
    let mut relays = BTreeMap::new();
    for z in &house.zones {
        for v in &z.outputs.valves {
            let (open, code, reason) = match open_for.get(&z.id) {
                Some((_, code, why)) => (true, *code, format!("{} valve open: {why}", z.name)),
                None if intents.contains_key(&z.id) || kept_closed.contains(&z.id) => (
                    false,
                    ValveCode::OtherSystem,
                    format!("{} valve closed: a plant serving it runs the other system", z.name),
                ),
                None => (false, ValveCode::Closed, format!("{} valve closed: no call", z.name)),
            };
            relays.insert(v.clone(), open);
            valves.push(ValvePlan { relay: v.clone(), zone: z.id.clone(), open, code, reason });
        }
    }
    for (p, plan) in plants.iter().zip(&plans) {
        if let Some(r) = &p.heat_relay {
            relays.insert(r.clone(), plan.heat);
        }
        if let Some(r) = &p.cool_relay {
            relays.insert(r.clone(), plan.cool);
        }
    }
    let zones = calls
        .iter()
        .filter_map(|c| {
            let zone = house.zone(&c.zone)?;
            let decision = match verbatim.get(&c.zone) {
                Some(held) => c.proposed.clone().held(held),
                None => c.proposed.decision.clone(),
            };
            let head = if c.heat() {
                format!("{} calls for heat", zone.name)
            } else if c.cool() {
                format!("{} calls for cooling", zone.name)
            } else {
                zone.name.clone()
            };
            let text = format!("{head}: {}", decision.reason);
            Some(ZoneOutcome { zone: c.zone.clone(), decision, text })
        })
        .collect();
    HousePlan { valves, plants: plans, zones, relays }
}

/// Why a plant that nothing makes run is off: zones calling but valves opening, too few
/// calling, or none.
fn waiting(
    p: &PlantConfig,
    calls: &[(System, Vec<&Served<'_>>)],
    need: usize,
) -> (PlantCode, String) {
    for (m, zones) in calls {
        let m = *m;
        if !can(p, m) || zones.is_empty() {
            continue;
        }
        let safety: Vec<i64> =
            zones.iter().filter(|s| s.code().is_some_and(is_safety)).map(|s| s.left_s).collect();
        if zones.len() >= need || !safety.is_empty() {
            let mut left: Vec<i64> = zones.iter().map(|s| s.left_s).collect();
            left.sort_unstable();
            let nth = left.get(need - 1).copied().unwrap_or(i64::MAX);
            let left = safety.into_iter().min().map_or(nth, |s| s.min(nth));
            return (
                PlantCode::ValveDelay,
                format!(
                    "{} waits: valve delay {} left ({} calling for {})",
                    p.name,
                    span(left),
                    names(zones),
                    word(m)
                ),
            );
        }
        return (
            PlantCode::TooFewZones,
            format!(
                "{} off: {} of {need} zones needed calling for {} ({})",
                p.name,
                zones.len(),
                word(m),
                names(zones)
            ),
        );
    }
    (PlantCode::Idle, format!("{} off: no zone calls", p.name))
}
