//! Relay ids resolved against the outputs the relay agents registered: which outputs a relay
//! id stands for (one output, or a function group's), and what they report, as the planner
//! reads it (`EquipmentState`) and as the runs are kept (one `Equipment` for the house).
//!
//! A function group (`function:heat`) is every registered output of that function that no
//! zone or plant names explicitly: the outputs the engine commanded before zones, so the
//! default house resolves to exactly them.

use std::collections::BTreeSet;

use hearth_proto::Timestamp;
use hearth_proto::control::System;
use hearth_proto::history::Run;
use hearth_proto::relays::RelayFunction;
use jiff::SignedDuration;

use super::{EquipmentState, House, RelayId};
use crate::control::{Equipment, Running};
use crate::store::{RelayRow, from_millis};

/// The registered outputs, seen through a house's relay ids.
pub(crate) struct Outputs<'a> {
    relays: &'a [RelayRow],
    /// Every single output (not a group) the house names: no group holds these.
    named: BTreeSet<RelayId>,
    /// Every relay id the house uses, groups included.
    used: BTreeSet<RelayId>,
    /// The plants' relays per system (zones' own relays included).
    plant_relays: [Vec<RelayId>; 2],
}

impl<'a> Outputs<'a> {
    pub(crate) fn new(house: &House, relays: &'a [RelayRow]) -> Self {
        let mut used = BTreeSet::new();
        let mut plant_relays = [Vec::new(), Vec::new()];
        for z in &house.zones {
            used.extend(z.outputs.valves.iter().cloned());
        }
        for p in house.all_plants() {
            for (i, r) in [p.heat_relay, p.cool_relay].into_iter().enumerate() {
                if let Some(r) = r {
                    used.insert(r.clone());
                    plant_relays[i].push(r);
                }
            }
        }
        let named = used.iter().filter(|r| r.as_group().is_none()).cloned().collect();
        Self { relays, named, used, plant_relays }
    }

    /// The registered outputs `id` stands for: its one output, or the group's.
    pub(crate) fn of(&self, id: &RelayId) -> Vec<&'a RelayRow> {
        match id.as_group() {
            Some(function) => self
                .relays
                .iter()
                .filter(|r| {
                    r.effective_function() == Some(function)
                        && !self.named.contains(&RelayId::output(&r.host_id, &r.output_id))
                })
                .collect(),
            None => self
                .relays
                .iter()
                .filter(|r| RelayId::output(&r.host_id, &r.output_id) == *id)
                .collect(),
        }
    }

    /// The outputs of every plant relay of `system`, each once.
    fn plant_outputs(&self, system: System) -> Vec<&'a RelayRow> {
        let ids = &self.plant_relays[usize::from(system == System::Cool)];
        let mut out: Vec<&RelayRow> = Vec::new();
        for id in ids {
            for r in self.of(id) {
                if !out.iter().any(|o| o.host_id == r.host_id && o.output_id == r.output_id) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// What the relays report, per relay id (every registered output, every group the house
    /// uses), and per system for the whole house: heat is on while any plant's heat relay is.
    ///
    /// Runs are kept per system for the whole house (a heat run is open while any heat relay
    /// of any plant is on), as before zones: so when a plant's relay stopped after really
    /// running (`ran_until`, which its changeover and overrun count from) is its system's last
    /// stop. Exact for a house with one plant per system.
    pub(crate) fn state(&self, recent: &[Run], now: Timestamp) -> (EquipmentState, Equipment) {
        let mut house = Equipment {
            heat: running(&self.plant_outputs(System::Heat)),
            cool: running(&self.plant_outputs(System::Cool)),
        };
        for (system, r) in [(System::Heat, &mut house.heat), (System::Cool, &mut house.cool)] {
            if !r.on {
                r.ran_until = ran_until(system, *r, recent, now);
            }
        }
        // When the system it serves last stopped after running, for an output that is off.
        let stopped = |system: Option<System>| -> Option<Timestamp> {
            match system? {
                System::Heat if !house.heat.on => house.heat.ran_until,
                System::Cool if !house.cool.on => house.cool.ran_until,
                // The system runs through another relay: its last closed run.
                s => recent.iter().filter(|r| r.system == s).filter_map(|r| r.end).max(),
            }
        };
        let mut state = EquipmentState::default();
        for row in self.relays {
            let id = RelayId::output(&row.host_id, &row.output_id);
            let mut r = running(&[row]);
            if !r.on {
                r.ran_until = stopped(self.system_of(&id));
            }
            state.relays.insert(id, r);
        }
        for id in self.used.iter().filter(|id| id.as_group().is_some()) {
            let mut r = running(&self.of(id));
            if !r.on {
                r.ran_until = stopped(self.system_of(id));
            }
            state.relays.insert(id.clone(), r);
        }
        (state, house)
    }

    /// The system a relay id is a plant relay of, if it is one.
    fn system_of(&self, id: &RelayId) -> Option<System> {
        if self.plant_relays[0].contains(id) {
            Some(System::Heat)
        } else if self.plant_relays[1].contains(id) {
            Some(System::Cool)
        } else {
            match id.as_group() {
                Some(RelayFunction::Heat) => Some(System::Heat),
                Some(RelayFunction::Cool) => Some(System::Cool),
                _ => None,
            }
        }
    }
}

/// When `system` last stopped after really running: a run still open while its relays report
/// off stopped when they say (this pass closes it); otherwise the latest end recorded.
fn ran_until(system: System, r: Running, recent: &[Run], now: Timestamp) -> Option<Timestamp> {
    let mine = || recent.iter().filter(|run| run.system == system);
    if mine().any(|run| run.end.is_none()) {
        r.since.or(Some(now))
    } else {
        mine().filter_map(|run| run.end).max()
    }
}

/// Several outputs as one: on when any is on. `since` comes from the agents' own reports (how
/// long ago the output switched, counted from the report), so the minimum on/off times
/// survive an engine restart and follow a relay that blipped; unknown without a report.
pub(crate) fn running(outputs: &[&RelayRow]) -> Running {
    let on = outputs.iter().any(|r| r.state.is_on());
    let switched = |r: &&RelayRow| -> Option<Timestamp> {
        let status = r.status.as_ref()?;
        let ago = SignedDuration::try_from_secs_f64(status.changed_s_ago).ok()?;
        from_millis(r.updated).checked_sub(ago).ok()
    };
    // On: since the first output went on. Off: since the last one went off.
    let since = if on {
        outputs.iter().filter(|r| r.state.is_on()).map(switched).min().flatten()
    } else {
        outputs.iter().map(switched).max().flatten()
    };
    Running { on, since, ran_until: None }
}

#[cfg(test)]
mod tests {
    use hearth_proto::relays::RelayState;

    use super::*;
    use crate::control::Settings;
    use crate::zones::live::default_house;
    use crate::zones::{PlantConfig, PlantId, PlantKind, ZoneId};

    fn row(output: &str, function: RelayFunction, on: bool) -> RelayRow {
        RelayRow {
            host_id: "r".to_owned(),
            output_id: output.to_owned(),
            name: output.to_owned(),
            url: Some("http://127.0.0.1:1".to_owned()),
            function: None,
            function_hint: Some(function),
            state: if on { RelayState::On } else { RelayState::Off },
            updated: 0,
            status: None,
            command_error: None,
            backend: None,
            unreachable_since: None,
            key_role: None,
        }
    }

    fn ids(rows: &[&RelayRow]) -> Vec<String> {
        rows.iter().map(|r| r.output_id.clone()).collect()
    }

    /// The default house commands what the engine commanded before zones: every heat output
    /// as `function:heat`, every cool output as `function:cool`, nothing else.
    #[test]
    fn the_default_house_resolves_to_the_heat_and_cool_outputs() {
        let relays = [
            row("furnace", RelayFunction::Heat, true),
            row("rail", RelayFunction::Heat, false),
            row("ac", RelayFunction::Cool, false),
            row("fan", RelayFunction::Fan, true),
            row("valve", RelayFunction::Valve, false),
        ];
        let house = default_house(&Settings::default());
        let outputs = Outputs::new(&house, &relays);
        assert_eq!(ids(&outputs.of(&RelayId::group(RelayFunction::Heat))), ["furnace", "rail"]);
        assert_eq!(ids(&outputs.of(&RelayId::group(RelayFunction::Cool))), ["ac"]);
        let (state, house_eq) = outputs.state(&[], Timestamp::UNIX_EPOCH);
        assert!(house_eq.heat.on && !house_eq.cool.on);
        assert!(state.get(Some(&RelayId::group(RelayFunction::Heat))).on);
        // The fan is on, but no plant's: it is no heat.
        assert!(!state.get(Some(&RelayId::group(RelayFunction::Cool))).on);
    }

    /// An output a zone or plant names explicitly leaves its function's group; an unnamed
    /// valve is in no relay id the plan holds, so it is never commanded.
    #[test]
    fn a_named_output_leaves_its_group() {
        let relays = [
            row("boiler", RelayFunction::Heat, false),
            row("rail", RelayFunction::Heat, true),
            row("valve-1", RelayFunction::Valve, false),
        ];
        let mut house = default_house(&Settings::default());
        house.plants.push(PlantConfig {
            id: PlantId::from("boiler"),
            name: "Boiler".to_owned(),
            kind: PlantKind::Heat,
            heat_relay: Some(RelayId::output("r", "boiler")),
            cool_relay: None,
            min_on_s: 0,
            min_off_s: 0,
            changeover_s: 0,
            max_run_s: None,
            zones: vec![ZoneId::default_zone()],
            valve_delay_s: 0,
            overrun_s: 0,
            min_calling_zones: 1,
            bypass_zone: None,
        });
        let outputs = Outputs::new(&house, &relays);
        assert_eq!(ids(&outputs.of(&RelayId::group(RelayFunction::Heat))), ["rail"]);
        assert_eq!(ids(&outputs.of(&RelayId::output("r", "boiler"))), ["boiler"]);
        let (state, house_eq) = outputs.state(&[], Timestamp::UNIX_EPOCH);
        // The rail (the default plant's heat) runs: the house heats.
        assert!(house_eq.heat.on);
        assert!(!state.get(Some(&RelayId::output("r", "boiler"))).on);
        // Not registered: off, nothing held.
        assert_eq!(state.get(Some(&RelayId::output("r", "gone"))), Running::OFF_UNKNOWN);
        assert!(outputs.of(&RelayId::output("r", "gone")).is_empty());
    }
}
