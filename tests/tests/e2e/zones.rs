//! Two zones on one boiler, for real: the engine, one simulated relay agent with the boiler and
//! a valve per zone, and two simulated sensor agents, each its own room heated only while its
//! zone's valve AND the boiler are on (`--sim-heated-by`), all finding each other by mDNS in a
//! private network namespace. The cold zone's valve opens while the warm zone's stays shut; the
//! boiler fires only once the valve has been open for the plant's valve delay; when the zone is
//! satisfied the boiler stops and the valve stays open through the overrun, then closes. Every
//! time is the relay agent's own report of when its outputs switched.

use std::time::Duration;

use hearth_e2e::{
    FAST_ENGINE, House, Proc, eventually, in_private_netns, relay_outputs_config, simulated,
};
use hearth_harness::{RELAY_AGENT, SENSOR_AGENT};
use hearth_proto::client::{EngineClient, RelayAgentClient};
use hearth_proto::control::{ControlSettings, Mode, System};
use hearth_proto::relays::{OutputStatus, RelayState};
use hearth_proto::schedules::DefaultTarget;
use hearth_proto::zones::{DEFAULT_PLANT, DEFAULT_ZONE, NewPlant, NewZone, PlantCode};
use serde_json::json;

const RELAY: &str = "zones-relay";
const LIVING: &str = "zones-living";
const BEDROOM: &str = "zones-bedroom";
const LIVING_SENSOR: &str = "28-0000000000a1";
const BEDROOM_SENSOR: &str = "28-0000000000b1";
const BEDROOM_ZONE: &str = "bedroom";
/// The plant's valve delay and overrun, seconds: long enough to tell apart from the engine's
/// pass (0.2 s) and the agents' reports, short enough for a test.
const VALVE_DELAY_S: u32 = 3;
const OVERRUN_S: u32 = 3;
/// What a switch time read from the relay agent may be off by: its `changed_s_ago` fields
/// are read from one report, so only the engine's and agent's clock reads differ.
const SLACK_S: f64 = 0.1;

#[test]
fn a_cold_zone_opens_its_valve_then_the_boiler_fires_and_overruns() -> anyhow::Result<()> {
    in_private_netns("zones::a_cold_zone_opens_its_valve_then_the_boiler_fires_and_overruns", run)
}

/// The relay agent's view of its three outputs, from one report.
struct Outputs {
    boiler: OutputStatus,
    valve1: OutputStatus,
    valve2: OutputStatus,
}

impl Outputs {
    async fn read(relay: &RelayAgentClient) -> anyhow::Result<Self> {
        let list = relay.relays().await?.outputs;
        let get = |id: &str| {
            list.iter().find(|o| o.id == id).cloned().ok_or_else(|| anyhow::anyhow!("no {id}"))
        };
        Ok(Self { boiler: get("boiler")?, valve1: get("valve-1")?, valve2: get("valve-2")? })
    }
}

fn on(o: &OutputStatus) -> bool {
    o.state == RelayState::On
}

/// A simulated sensor agent of `host`: one room with `sensor`, at `start_c`, heated by
/// `heated_by`. The living room says it in its file, the bedroom with the flag: both ways work.
fn start_room(
    house: &House,
    host: &str,
    sensor: &str,
    start_c: &str,
    heated_by: &str,
) -> anyhow::Result<Proc> {
    let key = house.key(SENSOR_AGENT, host)?;
    let world = house.world_s();
    let mut text = format!("[[sensors]]\nid = \"{sensor}\"\n");
    let mut args = simulated(host, &key, &world).to_vec();
    if host == LIVING {
        let list: Vec<String> = heated_by.split(',').map(|id| format!("\"{id}\"")).collect();
        text = format!("sim_heated_by = [{}]\n{text}", list.join(", "));
    } else {
        args.extend(["--sim-heated-by", heated_by]);
    }
    let config = house.file(&format!("{host}.toml"), &text)?;
    args.extend(["--config", &config, "--interval-s", "0.3", "--sim-start-c", start_c]);
    args.extend(["--sim-outside-c", "5", "--sim-time-scale", "60"]);
    Proc::start(host, "hearth-sensor-agent", &args)
}

async fn run() -> anyhow::Result<()> {
    let house = House::new()?;
    let relay_key = house.key(RELAY_AGENT, RELAY)?;
    let admin = house.admin()?;
    let data = house.data_s();
    let world = house.world_s();

    let mut args = vec!["--data-dir", &data, "--listen", "127.0.0.1:0"];
    args.extend(FAST_ENGINE);
    let engine = Proc::start("engine", "hearth-engine", &args)?;
    let url = engine.listening_url().await?;
    let api = EngineClient::new(&url, Some(admin));
    // Heat, no protection times of the zones' own: the plant has its own.
    api.set_control(&ControlSettings {
        mode: Mode::Heat,
        params: json!({"hysteresis_c": 0.3}),
        min_on_s: 0,
        min_off_s: 0,
        ..ControlSettings::default()
    })
    .await?;

    two_zones_one_boiler(&api).await?;

    let outputs = [
        ("boiler", "Boiler", "heat"),
        ("valve-1", "Living room valve", "valve"),
        ("valve-2", "Bedroom valve", "valve"),
    ];
    let config = house.file("relay.toml", &relay_outputs_config(&outputs, 0))?;
    let mut args = vec!["--config", &config, "--listen", "127.0.0.1:0"];
    args.extend(simulated(RELAY, &relay_key, &world));
    let relay = Proc::start("relay", "hearth-relay-agent", &args)?;
    let relay_api = RelayAgentClient::new(&relay.listening_url().await?, None);

    // The living room starts cold (17 °C for 25 °C), the bedroom warm (22 °C for 12 °C).
    target(&api, DEFAULT_ZONE, 25.0).await?;
    target(&api, BEDROOM_ZONE, 12.0).await?;
    let _living = start_room(&house, LIVING, LIVING_SENSOR, "17", "valve-1,boiler")?;
    let _bedroom = start_room(&house, BEDROOM, BEDROOM_SENSOR, "22", "valve-2,boiler")?;

    // The living room's valve opens; the boiler waits for it; the bedroom's valve stays shut.
    let wait = Duration::from_secs(60);
    let fired = eventually("the boiler on, or the bedroom's valve open", wait, || async {
        let o = Outputs::read(&relay_api).await?;
        Ok((on(&o.boiler) || on(&o.valve2)).then_some(o))
    })
    .await?;
    assert!(!on(&fired.valve2), "the warm bedroom's valve opened");
    assert!(on(&fired.valve1), "the boiler fired with the living room's valve shut");
    let waited = fired.valve1.changed_s_ago - fired.boiler.changed_s_ago;
    assert!(
        waited >= f64::from(VALVE_DELAY_S) - SLACK_S,
        "the boiler fired {waited:.2} s after the valve opened, before its {VALVE_DELAY_S} s delay"
    );
    let status = api.house().await?;
    let calling: Vec<_> = status.zones.iter().map(|z| (z.id.as_str(), z.calling)).collect();
    assert_eq!(calling, [(DEFAULT_ZONE, Some(System::Heat)), (BEDROOM_ZONE, None)]);
    let boiler = status.plants.iter().find(|p| p.id == "boiler");
    assert!(boiler.is_some_and(|p| p.heat && p.code == PlantCode::Calling), "{status:?}");

    // The living room satisfied: the boiler stops, the valve stays open through the overrun.
    target(&api, DEFAULT_ZONE, 10.0).await?;
    let stopped = eventually("the boiler off", wait, || async {
        let o = Outputs::read(&relay_api).await?;
        Ok((!on(&o.boiler) || on(&o.valve2)).then_some(o))
    })
    .await?;
    assert!(!on(&stopped.valve2), "the bedroom's valve opened");
    let closed = eventually("the living room's valve shut", wait, || async {
        let o = Outputs::read(&relay_api).await?;
        Ok((!on(&o.valve1) || on(&o.boiler) || on(&o.valve2)).then_some(o))
    })
    .await?;
    assert!(!on(&closed.boiler) && !on(&closed.valve2), "{:?}", closed.boiler);
    let overran = closed.boiler.changed_s_ago - closed.valve1.changed_s_ago;
    assert!(
        overran >= f64::from(OVERRUN_S) - SLACK_S,
        "the valve shut {overran:.2} s after the boiler stopped, before its {OVERRUN_S} s overrun"
    );
    Ok(())
}

/// The house through the API: the living room (the default zone, renamed) behind valve-1, the
/// bedroom behind valve-2, both served by the boiler with its valve delay and overrun, and no
/// protection times of its own (the test watches the delay and the overrun alone); the
/// default plant goes.
async fn two_zones_one_boiler(api: &EngineClient) -> anyhow::Result<()> {
    let relay = |output: &str| format!("{RELAY}/{output}");
    let zone = |name, sensor: &str, valve| {
        NewZone::behind_valves(name, vec![sensor.to_owned()], vec![relay(valve)])
    };
    api.put_zone(DEFAULT_ZONE, &zone("Living room", LIVING_SENSOR, "valve-1")).await?;
    api.put_zone(BEDROOM_ZONE, &zone("Bedroom", BEDROOM_SENSOR, "valve-2")).await?;
    let zones = vec![DEFAULT_ZONE.to_owned(), BEDROOM_ZONE.to_owned()];
    let boiler = NewPlant::boiler("Boiler", relay("boiler"), zones, 0, VALVE_DELAY_S, OVERRUN_S);
    api.put_plant("boiler", &boiler).await?;
    api.delete_plant(DEFAULT_PLANT).await?;
    Ok(())
}

/// Heat `zone` to `heat_c` by default (no rules).
async fn target(api: &EngineClient, zone: &str, heat_c: f64) -> anyhow::Result<()> {
    let target = DefaultTarget { heat_c, cool_c: 30.0, sensors: vec![] };
    api.set_zone_default_target(zone, &target).await?;
    Ok(())
}
