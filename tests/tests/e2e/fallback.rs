//! A relay agent protects the house on its own when the engine is lost: the real binaries, the
//! simulated room on a fast clock. The engine is SIGKILLed with the room cold; the relay
//! agent's fallback program (handed over by the engine, stored in its state directory) keeps
//! the room at or above the frost setpoint from a probe of its own host for a simulated day;
//! the agent restarted in fallback still has the program and runs it; without its probe it
//! runs the blind duty; and the engine, back, takes over without a short cycle. A relay agent
//! without a probe of its own reads a sensor agent of the site over the LAN instead (its read
//! API, with the token the engine handed over), and runs the blind duty once that sensor agent
//! is gone. A relay agent cut off (SIGSTOP) while the engine heats, and back (SIGCONT) after
//! its lease, is read by the engine before any command, and the heat its fallback program
//! switched off stays off for the plant's minimum off time, which is longer than the agent's.

use std::time::Duration;

use hearth_e2e::{FAST_ENGINE, House, Proc, eventually, in_private_netns, simulated};
use hearth_harness::{RELAY_AGENT, SENSOR_AGENT};
use hearth_proto::client::{EngineClient, RelayAgentClient};
use hearth_proto::control::{ControlSettings, Mode};
use hearth_proto::fallback::{
    BlindDuty, FallbackStatus, FallbackWhy, OutputFallbackChoice, OutputProgram, SensorSource,
};
use hearth_proto::relays::RelayState;
use hearth_proto::schedules::DefaultTarget;
use tokio::time::Instant;

/// The host both agents run on: the engine takes the sensor agent's probe, reported under the
/// relay agent's host id, as the frost program's local sensor.
const HOST: &str = "fb-pi";
const PROBE: &str = "28-00000000a001";
/// Simulated seconds per real second: a simulated day in two real minutes.
const SCALE: f64 = 720.0;
const SCALE_S: &str = "720";
/// The engine's lease: the relay agent enters fallback after this long without a command.
const LEASE_S: u64 = 4;
/// The relay outputs' minimum on and off times, real seconds.
const MIN_S: u32 = 2;
const FROST_C: f64 = 7.0;
const ROOM_ARGS: [&str; 6] =
    ["--sim-start-c", "9", "--sim-outside-c", "0", "--sim-time-scale", SCALE_S];

#[test]
fn relay_agent_keeps_the_house_from_freezing_without_the_engine() -> anyhow::Result<()> {
    in_private_netns("fallback::relay_agent_keeps_the_house_from_freezing_without_the_engine", run)
}

fn start_engine(house: &House, name: &str, port: &str) -> anyhow::Result<Proc> {
    let data = house.data_s();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["--data-dir", &data, "--listen", &listen, "--lease-s", "4"];
    args.extend(FAST_ENGINE);
    Proc::start(name, "hearth-engine", &args)
}

/// The engine in a cold house, and its admin client: heating with the frost floor at
/// [`FROST_C`], holding `heat_c` (the room starts at 9 °C with 0 °C outside), the plant's
/// minimum off time `min_off_s`.
async fn start_cold_house(
    house: &House,
    port: &str,
    admin: String,
    heat_c: f64,
    min_off_s: u32,
) -> anyhow::Result<(Proc, EngineClient)> {
    let engine = start_engine(house, "engine", port)?;
    let api = EngineClient::new(&engine.listening_url().await?, Some(admin));
    api.set_control(&ControlSettings {
        mode: Mode::Heat,
        params: serde_json::json!({"hysteresis_c": 0.3}),
        min_on_s: MIN_S,
        min_off_s,
        frost_floor_c: FROST_C,
        ..ControlSettings::default()
    })
    .await?;
    api.set_default_target(&DefaultTarget { heat_c, cool_c: 30.0, sensors: vec![] }).await?;
    Ok((engine, api))
}

/// What every test here starts from: the house, the relay agent's device key (of [`HOST`]),
/// its configuration and state directory, and a free port for the engine.
struct Setup {
    house: House,
    relay_key: String,
    config: String,
    state: std::path::PathBuf,
    port: String,
}

impl Setup {
    fn new() -> anyhow::Result<Self> {
        let house = House::new()?;
        let relay_key = house.key(RELAY_AGENT, HOST)?;
        let config = house.relay_toml(MIN_S)?;
        let state = house.dir.path().join("relay-state");
        let port = hearth_e2e::free_port()?.to_string();
        Ok(Self { house, relay_key, config, state, port })
    }

    /// A simulated sensor agent of `host` reading the room every 0.3 s, with `extra` flags.
    fn start_sensor(&self, host: &str, extra: &[&str]) -> anyhow::Result<Proc> {
        let key = self.house.key(SENSOR_AGENT, host)?;
        let world = self.house.world_s();
        let mut args = simulated(host, &key, &world).to_vec();
        args.extend(["--interval-s", "0.3"]);
        args.extend_from_slice(extra);
        args.extend(ROOM_ARGS);
        Proc::start("sensor", "hearth-sensor-agent", &args)
    }

    /// The relay agent of [`HOST`], storing its program in the state directory; with the
    /// simulated room as its probe when `probe`.
    fn start_relay(&self, name: &str, probe: bool) -> anyhow::Result<Proc> {
        let world = self.house.world_s();
        let state = self.state.to_string_lossy().into_owned();
        let mut args =
            vec!["--config", &self.config, "--listen", "127.0.0.1:0", "--state-dir", &state];
        args.extend(simulated(HOST, &self.relay_key, &world));
        args.extend(["--fallback-tick-s", "0.2"]);
        if probe {
            args.extend(["--probe", "simulated", "--probe-sim-id", PROBE]);
            args.extend(ROOM_ARGS);
        }
        Proc::start(name, "hearth-relay-agent", &args)
    }
}

async fn fallback_of(relay: &RelayAgentClient) -> anyhow::Result<Option<FallbackStatus>> {
    Ok(relay.relays().await?.fallback)
}

async fn run() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (house, port, state) = (&setup.house, &setup.port, &setup.state);
    let (engine, _api) = start_cold_house(house, port, house.admin()?, 10.0, MIN_S).await?;
    let _sensor = setup.start_sensor(HOST, &[])?;
    let relay = setup.start_relay("relay", true)?;
    let relay_api = RelayAgentClient::new(&relay.listening_url().await?, None);

    // The engine hands over the frost program, with the probe it saw reported by this host.
    let wait = Duration::from_secs(60);
    let program = eventually("the frost program with the local probe", wait, || async {
        let program = relay_api.fallback_program().await.ok();
        Ok(program.filter(|p| {
            matches!(p.outputs.get("heat"), Some(OutputProgram::Frost { sensor: Some(_), .. }))
        }))
    })
    .await?;
    assert_eq!(program.after_s, LEASE_S as u32);
    assert_eq!(program.outputs.get("cool"), Some(&OutputProgram::Off));
    assert!(state.join("fallback.json").exists(), "the program is stored on disk");
    eventually("the engine heating", wait, || async {
        Ok((relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
    })
    .await?;

    // The engine dies.
    engine.kill()?;
    let killed = Instant::now();
    let fallback = eventually("fallback", wait, || fallback_of(&relay_api)).await?;
    let entered = killed.elapsed();
    assert!(
        entered <= Duration::from_secs(LEASE_S) + Duration::from_millis(500),
        "fallback entered {entered:?} after the kill, more than a lease"
    );
    assert_eq!(fallback.why, FallbackWhy::EngineSilent);

    // A simulated day: the room, read by the agent's own probe, never below frost − 0.5 K
    // once the thermostat has it (it starts above the setpoint and cools down to it).
    let day = Duration::from_secs_f64(86_400.0 / SCALE);
    let start = Instant::now();
    let (mut lowest, mut highest, mut samples) = (f64::MAX, f64::MIN, 0);
    while start.elapsed() < day {
        let status = fallback_of(&relay_api).await?;
        let doing = status.as_ref().and_then(|f| f.doing.get("heat")).cloned();
        let doing = doing.ok_or_else(|| anyhow::anyhow!("fallback ended: {status:?}"))?;
        let t = doing.temp_c.ok_or_else(|| anyhow::anyhow!("no reading: {}", doing.detail))?;
        (lowest, highest, samples) = (lowest.min(t), highest.max(t), samples + 1);
        assert!(t >= FROST_C - 0.5, "the room at {t} °C, below frost − 0.5 K: {}", doing.detail);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("a simulated day in fallback: {samples} samples, {lowest:.2}..{highest:.2} °C");
    assert!(lowest < FROST_C + 0.5, "the room never cooled to the frost setpoint: {lowest}");

    // The agent restarts in fallback, without the engine: the program survives on disk and
    // runs again once a lease has passed without an engine.
    relay.kill()?;
    let relay = setup.start_relay("relay2", true)?;
    let relay_api = RelayAgentClient::new(&relay.listening_url().await?, None);
    assert_eq!(relay_api.fallback_program().await?, program, "the program survived");
    let fallback =
        eventually("fallback after the restart", wait, || fallback_of(&relay_api)).await?;
    assert_eq!(fallback.why, FallbackWhy::NoEngineSinceStart);
    eventually("the frost thermostat running again", wait, || async {
        let f = fallback_of(&relay_api).await?;
        Ok(f.and_then(|f| f.doing.get("heat").and_then(|d| d.temp_c)))
    })
    .await?;

    // Without its probe the frost program runs the blind duty.
    relay.kill()?;
    let relay = setup.start_relay("relay3", false)?;
    let relay_api = RelayAgentClient::new(&relay.listening_url().await?, None);
    let doing = eventually("the blind duty", wait, || async {
        let f = fallback_of(&relay_api).await?;
        Ok(f.and_then(|f| f.doing.get("heat").cloned()))
    })
    .await?;
    assert!(doing.detail.starts_with("blind duty"), "{}", doing.detail);
    assert_eq!(doing.temp_c, None);

    // The engine returns on its port; its first command ends the fallback, and the output
    // never switches sooner than its minimum on/off time (sampled every 50 ms).
    let engine = start_engine(house, "engine2", port)?;
    engine.listening_url().await?;
    // The state last seen, since when, and whether that was an observed switch (the first
    // state seen counts from the first sample, so its length is unknown).
    let mut last: Option<(RelayState, Instant, bool)> = None;
    let mut shortest: Option<Duration> = None;
    let back = Instant::now();
    let mut ended = None;
    while back.elapsed() < Duration::from_secs(20) {
        let list = relay_api.relays().await?;
        if list.fallback.is_none() && ended.is_none() {
            ended = Some(back.elapsed());
        }
        let heat = list.outputs.iter().find(|o| o.id == "heat").map(|o| o.state);
        if let Some(state) = heat {
            match last {
                Some((was, since, observed)) if was != state => {
                    if observed {
                        let held = since.elapsed();
                        shortest = Some(shortest.map_or(held, |s: Duration| s.min(held)));
                    }
                    last = Some((state, Instant::now(), true));
                }
                None => last = Some((state, Instant::now(), false)),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ended.is_some(), "the engine did not end the fallback");
    if let Some(shortest) = shortest {
        // Timed between two observed switches, within a sample either side.
        assert!(
            shortest + Duration::from_millis(100) >= Duration::from_secs(u64::from(MIN_S)),
            "a switch {shortest:?} after the previous one: a short cycle"
        );
    }
    drop(engine);
    Ok(())
}

#[test]
fn relay_agent_reads_a_sensor_agent_over_the_lan_without_the_engine() -> anyhow::Result<()> {
    in_private_netns(
        "fallback::relay_agent_reads_a_sensor_agent_over_the_lan_without_the_engine",
        run_remote,
    )
}

/// The sensor agent of another host than the relay agent's, so the engine's default finds no
/// local probe: the admin points the frost program at this one.
const HALL: &str = "fb-hall";

async fn run_remote() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (house, port) = (&setup.house, &setup.port);
    let (engine, api) = start_cold_house(house, port, house.admin()?, 10.0, MIN_S).await?;
    let status_listen = format!("127.0.0.1:{}", hearth_e2e::free_port()?);
    let sensor = setup.start_sensor(HALL, &["--status-listen", &status_listen])?;
    // No probe of its own.
    let relay = setup.start_relay("relay", false)?;
    let relay_api = RelayAgentClient::new(&relay.listening_url().await?, None);

    let wait = Duration::from_secs(60);
    eventually("the relay agent registered and the hall's probe reported", wait, || async {
        let relays = api.relays().await?;
        let sensors = api.sensors().await?;
        Ok((relays.iter().any(|r| r.host_id == HOST && r.output_id == "heat")
            && sensors.iter().any(|s| s.id.eq_ignore_ascii_case(PROBE)))
        .then_some(()))
    })
    .await?;
    let url = format!("http://{status_listen}");
    let choice = OutputFallbackChoice {
        program: Some(OutputProgram::Frost {
            setpoint_c: FROST_C,
            sensor: Some(SensorSource::SensorAgent {
                url: url.clone(),
                host: HALL.into(),
                id: PROBE.into(),
                token: None,
            }),
            blind: BlindDuty::default(),
        }),
    };
    api.set_relay_fallback(HOST, "heat", &choice).await?;
    // The engine hands the program over with the hall's read token filled in.
    eventually("the frost program reading the hall", wait, || async {
        let program = relay_api.fallback_program().await.ok();
        Ok(program.filter(|p| {
            matches!(
                p.outputs.get("heat"),
                Some(OutputProgram::Frost {
                    sensor: Some(SensorSource::SensorAgent { token: Some(_), .. }),
                    ..
                })
            )
        }))
    })
    .await?;

    engine.kill()?;
    eventually("fallback", wait, || fallback_of(&relay_api)).await?;
    // Six simulated hours: the room, read over the LAN, never below frost − 0.5 K.
    let span = Duration::from_secs_f64(6.0 * 3600.0 / SCALE);
    let start = Instant::now();
    let (mut lowest, mut samples) = (f64::MAX, 0);
    while start.elapsed() < span {
        let status = fallback_of(&relay_api).await?;
        let doing = status.as_ref().and_then(|f| f.doing.get("heat")).cloned();
        let doing = doing.ok_or_else(|| anyhow::anyhow!("fallback ended: {status:?}"))?;
        let t = doing.temp_c.ok_or_else(|| anyhow::anyhow!("no reading: {}", doing.detail))?;
        (lowest, samples) = (lowest.min(t), samples + 1);
        assert!(t >= FROST_C - 0.5, "the room at {t} °C, below frost − 0.5 K: {}", doing.detail);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("six simulated hours from the sensor agent: {samples} samples, lowest {lowest:.2} °C");
    assert!(lowest < FROST_C + 0.5, "the room never cooled to the frost setpoint: {lowest}");

    // The sensor agent dies: once its last reading is stale, the blind duty, saying why.
    sensor.kill()?;
    let doing = eventually("the blind duty without the sensor agent", wait, || async {
        let f = fallback_of(&relay_api).await?;
        Ok(f.and_then(|f| f.doing.get("heat").cloned()).filter(|d| d.temp_c.is_none()))
    })
    .await?;
    assert!(
        doing.detail.starts_with("blind duty (sensor agent fb-hall: unreachable"),
        "{}",
        doing.detail
    );
    Ok(())
}

#[test]
fn a_relay_agent_back_from_a_partition_is_taken_over_without_a_short_cycle() -> anyhow::Result<()> {
    in_private_netns(
        "fallback::a_relay_agent_back_from_a_partition_is_taken_over_without_a_short_cycle",
        run_partition,
    )
}

/// The plant's minimum off time at the engine: ten times the agent's own ([`MIN_S`]), so only
/// the engine's reading of what the agent did meanwhile can hold it.
const PLANT_MIN_OFF_S: u32 = 20;

async fn run_partition() -> anyhow::Result<()> {
    let setup = Setup::new()?;
    let (house, port) = (&setup.house, &setup.port);
    // Heating to 25 °C: the engine wants the heat on all along; the fallback's frost program
    // (7 °C) wants it off in a room warmed past the setpoint.
    let (engine, api) =
        start_cold_house(house, port, house.admin()?, 25.0, PLANT_MIN_OFF_S).await?;
    let _sensor = setup.start_sensor(HOST, &[])?;
    let relay = setup.start_relay("relay", true)?;
    let relay_api = RelayAgentClient::new(&relay.listening_url().await?, None);
    let wait = Duration::from_secs(60);
    eventually("the frost program handed over and the engine heating", wait, || async {
        let program = relay_api.fallback_program().await.ok();
        let frost = program.is_some_and(|p| {
            matches!(p.outputs.get("heat"), Some(OutputProgram::Frost { sensor: Some(_), .. }))
        });
        Ok((frost && relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
    })
    .await?;
    let reads = || engine.count_lines("before commanding");
    let reads_before = reads();

    // Cut off: the engine's calls get no answer (a timeout), and it says so.
    relay.pause()?;
    eventually("the engine finds the relay agent unreachable", wait, || async {
        let relays = api.relays().await?;
        Ok(relays.iter().any(|r| r.host_id == HOST && !r.agent_reachable).then_some(()))
    })
    .await?;
    // Back, a lease and more after its last command: its fallback runs (the room is warm).
    relay.resume()?;
    let back = Instant::now();
    // From the agent's own reports every 50 ms: every off that starts and ends while watched
    // lasts the plant's minimum off time (within a sample).
    let (mut off_since, mut shortest_off, mut fell_back) = (None, None::<Duration>, false);
    while back.elapsed() < Duration::from_secs(u64::from(PLANT_MIN_OFF_S) + 10) {
        let list = relay_api.relays().await?;
        fell_back |= list.fallback.is_some();
        let heat = list.outputs.iter().find(|o| o.id == "heat").map(|o| o.state);
        match (heat, off_since) {
            (Some(RelayState::Off), None) => off_since = Some(Instant::now()),
            (Some(RelayState::On), Some(since)) => {
                let held = since.elapsed();
                shortest_off = Some(shortest_off.map_or(held, |s| s.min(held)));
                off_since = None;
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "back from the partition: fallback {fell_back}, shortest off {shortest_off:?}, engine \
         reads {reads_before} -> {}",
        reads()
    );
    assert!(reads() > reads_before, "the engine did not read the agent before commanding it");
    if let Some(off) = shortest_off {
        let min = Duration::from_secs(u64::from(PLANT_MIN_OFF_S));
        assert!(
            off + Duration::from_millis(500) >= min,
            "the heat back on {off:?} after the fallback switched it off: a short cycle"
        );
    }
    eventually("the engine heating again", wait, || async {
        Ok((relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
    })
    .await?;
    Ok(())
}
