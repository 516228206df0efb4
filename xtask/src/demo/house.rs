//! The demo's house: two zones on one boiler, made through the engine's API as an admin would
//! make them. The living room is the default zone renamed, deciding from the seeded sensor,
//! behind `valve-1`; the bedroom has its own sensor, behind `valve-2`; the plant "Boiler"
//! serves both and the default plant goes. Each room gets a small weekly schedule. Only where
//! there is none: a restarted demo keeps what the user changed, and a data dir from before
//! zones (one zone) gets the two rooms its agents now simulate.

use hearth_proto::client::{ClientError, EngineClient};
use hearth_proto::schedules::{DefaultTarget, NewRule, Weekday, When};
use hearth_proto::zones::{DEFAULT_PLANT, DEFAULT_ZONE, NewPlant, NewZone};

/// The zone the demo adds (the living room is the default zone).
const BEDROOM: &str = "bedroom";
/// The plant the demo adds.
const BOILER: &str = "boiler";
/// How long a valve must have been open before the boiler fires, and how long the boiler's
/// pump runs on after it stops, seconds. A real installation waits about a minute for a
/// thermal actuator and runs its pump on for two; scaled like the demo's minimum times
/// (20 s for a real boiler's 3 minutes) so a newcomer sees both within a cycle.
pub(crate) const VALVE_DELAY_S: u32 = 6;
pub(crate) const OVERRUN_S: u32 = 12;
/// The plant's minimum on, off and changeover times, seconds: the demo's control settings'.
const MIN_S: u32 = 20;
/// What the schedules below say, for the demo's banner.
pub(crate) const SCHEDULES: &str = "Schedules (local time): the living room 20.5 °C, 17 °C from \
     22:30 to 06:00, 21 °C weekday mornings; the bedroom 19 °C, 17 °C from 22:30 to 06:30.";

/// What [`configure`] made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Made {
    /// The two zones and the boiler (the house had its default zone alone).
    pub(crate) house: bool,
    /// The living room's schedule (it had no rules).
    pub(crate) living_schedule: bool,
}

/// Make what the demo's house lacks: the zones and the plant when the house has its default
/// zone alone (and then the bedroom's schedule), the living room's schedule when it has no
/// rules.
pub(crate) async fn configure(
    api: &EngineClient,
    relay_host: &str,
    living_sensor: &str,
    bedroom_sensor: &str,
) -> anyhow::Result<Made> {
    let made = Made {
        house: api.zones().await?.zones.len() == 1,
        living_schedule: api.rules().await?.is_empty(),
    };
    let all = Weekday::ALL.to_vec();
    if made.house {
        two_rooms_one_boiler(api, relay_host, living_sensor, bedroom_sensor).await?;
        schedule(api, BEDROOM, 19.0, vec![("Night", all.clone(), "22:30", "06:30", 17.0)]).await?;
    }
    if made.living_schedule {
        let weekdays = all[..5].to_vec();
        let rules = vec![
            ("Night", all, "22:30", "06:00", 17.0),
            ("Weekday mornings", weekdays, "06:00", "08:30", 21.0),
        ];
        schedule(api, DEFAULT_ZONE, 20.5, rules).await?;
    }
    Ok(made)
}

/// What went wrong, with the step it went wrong in.
fn step(what: &'static str) -> impl Fn(ClientError) -> anyhow::Error {
    move |e| anyhow::anyhow!("setting up the demo's house: {what}: {e}")
}

/// The two zones on the boiler, in an order in which every step leaves a house that works: a
/// new zone is served by the default zone's plants until the boiler serves it, and the
/// default plant goes last.
async fn two_rooms_one_boiler(
    api: &EngineClient,
    relay_host: &str,
    living_sensor: &str,
    bedroom_sensor: &str,
) -> anyhow::Result<()> {
    let relay = |output: &str| format!("{relay_host}/{output}");
    let zone = |name, sensor: &str, valve| {
        NewZone::behind_valves(name, vec![sensor.to_owned()], vec![relay(valve)])
    };
    api.put_zone(DEFAULT_ZONE, &zone("Living room", living_sensor, "valve-1"))
        .await
        .map_err(step("the living room"))?;
    api.put_zone(BEDROOM, &zone("Bedroom", bedroom_sensor, "valve-2"))
        .await
        .map_err(step("the bedroom"))?;
    let zones = vec![DEFAULT_ZONE.to_owned(), BEDROOM.to_owned()];
    let boiler =
        NewPlant::boiler("Boiler", relay("boiler"), zones, MIN_S, VALVE_DELAY_S, OVERRUN_S);
    api.put_plant(BOILER, &boiler).await.map_err(step("the boiler"))?;
    api.delete_plant(DEFAULT_PLANT).await.map_err(step("removing the default plant"))?;
    Ok(())
}

/// A zone's weekly schedule: `heat_c` by default, and `rules` (name, days, start, end, heat_c).
async fn schedule(
    api: &EngineClient,
    zone: &str,
    heat_c: f64,
    rules: Vec<(&str, Vec<Weekday>, &str, &str, f64)>,
) -> anyhow::Result<()> {
    let target = DefaultTarget { heat_c, cool_c: 26.0, sensors: vec![] };
    api.set_zone_default_target(zone, &target).await.map_err(step("a default target"))?;
    for (name, days, start, end, heat_c) in rules {
        let rule = NewRule {
            name: name.to_owned(),
            enabled: true,
            when: When::Weekly { days, start: start.to_owned(), end: end.to_owned() },
            heat_c: Some(heat_c),
            cool_c: None,
            sensors: vec![],
            zone: Some(zone.to_owned()),
        };
        api.create_rule(&rule).await.map_err(step("a schedule rule"))?;
    }
    Ok(())
}
