//! A house plan as `GET /v1/house` and the `house` event show it.

use hearth_proto::Timestamp;
use hearth_proto::control::System;
use hearth_proto::zones as wire;

use super::plan::HousePlan;
use super::{House, ZoneCall};

/// The plan of `house` made at `at` from `calls`, for people: zones in the configured order,
/// plants as the planner drives them (configured ones, then the zones' own).
pub(crate) fn house_status(
    house: &House,
    calls: &[ZoneCall],
    plan: &HousePlan,
    at: Timestamp,
) -> wire::HouseStatus {
    let zones = house
        .zones
        .iter()
        .filter_map(|z| {
            let outcome = plan.zones.iter().find(|o| o.zone == z.id)?;
            let calling = calls.iter().find(|c| c.zone == z.id).and_then(|c| {
                if c.heat() { Some(System::Heat) } else { c.cool().then_some(System::Cool) }
            });
            let valves = plan
                .valves
                .iter()
                .filter(|v| v.zone == z.id)
                .map(|v| wire::ValveStatus {
                    relay: v.relay.0.clone(),
                    open: v.open,
                    code: v.code,
                    reason: v.reason.clone(),
                })
                .collect();
            Some(wire::ZoneStatus {
                id: z.id.0.clone(),
                name: z.name.clone(),
                decision: outcome.decision.clone().into(),
                calling,
                text: outcome.text.clone(),
                valves,
            })
        })
        .collect();
    let plants = house
        .all_plants()
        .iter()
        .filter_map(|p| {
            let planned = plan.plant(&p.id)?;
            Some(wire::PlantStatus {
                id: p.id.0.clone(),
                name: p.name.clone(),
                heat: planned.heat,
                cool: planned.cool,
                code: planned.code,
                reason: planned.reason.clone(),
                held_until: planned.held_until,
            })
        })
        .collect();
    wire::HouseStatus { at, zones, plants }
}
