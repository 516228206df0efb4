//! The whole system, for real: engine, simulated sensor agent and simulated relay agent as
//! separate processes, finding each other by mDNS inside a private network namespace, talking
//! HTTP on real sockets, closing the loop through the simulated room. The web dashboard's tests
//! (hearth-web, in headless chromium) are in `web.rs`, a module of this one test binary.

use std::time::Duration;

use hearth_e2e::{
    Database, FAST_ENGINE, House, Proc, engine_credential, eventually, in_private_netns, simulated,
};
use hearth_harness::{RELAY_AGENT, SENSOR_AGENT};
use hearth_proto::client::{EngineClient, RelayAgentClient};
use hearth_proto::control::{ControlSettings, Mode, ReasonCode};
use hearth_proto::relays::RelayState;
use hearth_proto::schedules::DefaultTarget;

mod clocks;
mod contract;
mod fallback;
mod logs;
mod manage;
mod storage;
mod third_party;
mod web;
mod zones;

const SENSOR: &str = "e2e-sensor";
const RELAY: &str = "e2e-relay";
const SENSOR_ID: &str = "28-00000000a001";

/// A simulated relay agent (host [`RELAY`]) that finds the engine by mDNS. The backend is
/// said explicitly: a relay agent has none by default.
fn start_relay(config: &str, key: &str, world: &str) -> anyhow::Result<Proc> {
    let mut args = vec!["--config", config, "--listen", "127.0.0.1:0"];
    args.extend(simulated(RELAY, key, world));
    Proc::start("relay", "hearth-relay-agent", &args)
}

/// A simulated sensor agent (host [`SENSOR`]) that finds the engine by mDNS, with `extra` flags.
fn start_sensor(key: &str, world: &str, extra: &[&str]) -> anyhow::Result<Proc> {
    let mut args = simulated(SENSOR, key, world).to_vec();
    args.extend_from_slice(extra);
    Proc::start("sensor", "hearth-sensor-agent", &args)
}

/// The engine's flags for a test: fast ticks and short staleness, leases of `lease_s`.
fn engine_args<'a>(data: &'a str, lease_s: &'a str) -> Vec<&'a str> {
    let mut args = vec!["--data-dir", data, "--listen", "127.0.0.1:0"];
    args.extend(FAST_ENGINE);
    args.extend(["--lease-s", lease_s]);
    args
}

/// What the two-agent tests share: the engine's data dir, the simulated world file, the keys
/// the engine issues, and the relay agent's configuration.
struct Site {
    dir: tempfile::TempDir,
    data: std::path::PathBuf,
    world: std::path::PathBuf,
    data_s: String,
    world_s: String,
    sensor_key: String,
    relay_key: String,
    admin: String,
    relay_toml: String,
}

impl Site {
    fn new() -> anyhow::Result<Self> {
        let house = House::new()?;
        Ok(Self {
            data_s: house.data_s(),
            world_s: house.world_s(),
            sensor_key: house.key(SENSOR_AGENT, SENSOR)?,
            relay_key: house.key(RELAY_AGENT, RELAY)?,
            admin: house.admin()?,
            // No equipment protection times: the tests see the engine's decisions at once.
            relay_toml: house.relay_toml(0)?,
            data: house.data,
            world: house.world,
            dir: house.dir,
        })
    }
}

/// Heat mode with 1 s protection times (the simulated room moves fast), hysteresis 0.3 °C, and
/// `heat_c` as the default target (no schedule rules).
async fn heat_to(api: &EngineClient, heat_c: f64) -> anyhow::Result<()> {
    api.set_control(&ControlSettings {
        mode: Mode::Heat,
        params: serde_json::json!({"hysteresis_c": 0.3}),
        min_on_s: 1,
        min_off_s: 1,
        ..ControlSettings::default()
    })
    .await?;
    api.set_default_target(&DefaultTarget { heat_c, cool_c: 30.0, sensors: vec![] }).await?;
    Ok(())
}

/// The engine started with `args` and asked for heat far above the simulated room (29 °C, so
/// heat stays wanted for the whole test), the relay agent and a sensor agent (every 0.5 s, the
/// room at 18 °C): returned once the relay agent's heat output is on.
struct Heating {
    engine: Proc,
    url: String,
    api: EngineClient,
    relay: Proc,
    relay_api: RelayAgentClient,
    _sensor: Proc,
}

async fn heating(site: &Site, args: &[&str], wait: Duration) -> anyhow::Result<Heating> {
    let engine = Proc::start("engine", "hearth-engine", args)?;
    let url = engine.listening_url().await?;
    let api = EngineClient::new(&url, Some(site.admin.clone()));
    heat_to(&api, 29.0).await?;
    let relay = start_relay(&site.relay_toml, &site.relay_key, &site.world_s)?;
    let relay_api = RelayAgentClient::new(&relay.listening_url().await?, None);
    let _sensor = start_sensor(
        &site.sensor_key,
        &site.world_s,
        &["--interval-s", "0.5", "--sim-start-c", "18"],
    )?;
    eventually("the relay agent's heat output on", wait, || async {
        Ok((relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
    })
    .await?;
    Ok(Heating { engine, url, api, relay, relay_api, _sensor })
}

#[test]
fn closed_loop_found_by_mdns_survives_engine_restart() -> anyhow::Result<()> {
    in_private_netns("closed_loop_found_by_mdns_survives_engine_restart", || run(false))
}

/// The same house with the engine storing on PostgreSQL (a server of the test's own).
#[test]
fn closed_loop_on_postgresql_survives_engine_restart() -> anyhow::Result<()> {
    in_private_netns("closed_loop_on_postgresql_survives_engine_restart", || run(true))
}

async fn run(postgres: bool) -> anyhow::Result<()> {
    let Site { dir: _dir, data, data_s, world_s, sensor_key, relay_key, admin, relay_toml, .. } =
        Site::new()?;
    let db = if postgres { Database::postgres()? } else { Database::sqlite(&data) };
    let mut args = engine_args(&data_s, "8");
    args.extend(db.engine_args());

    let engine = Proc::start("engine", "hearth-engine", &args)?;
    let url = engine.listening_url().await?;
    let api = EngineClient::new(&url, Some(admin.clone()));
    heat_to(&api, 20.0).await?;

    // No engine address anywhere below: the agents find it by mDNS.
    let relay = start_relay(&relay_toml, &relay_key, &world_s)?;
    let relay_url = relay.listening_url().await?;
    let _sensor = start_sensor(
        &sensor_key,
        &world_s,
        &["--interval-s", "0.3", "--sim-start-c", "18", "--sim-time-scale", "600"],
    )?;
    let relay_api = RelayAgentClient::new(&relay_url, None);

    // The room starts at 18 °C, below 20 − 0.3: heat goes on, through the relay agent.
    let wait = Duration::from_secs(40);
    eventually("heat on below the band", wait, || async {
        let d = api.control().await?.decision;
        Ok(d.filter(|d| d.heat && d.reason_code == ReasonCode::HeatBelowBand))
    })
    .await?;
    eventually("the relay agent's heat output on", wait, || async {
        Ok((relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
    })
    .await?;

    // The simulated room warms until it is above 20 + 0.3: heat goes off.
    let off = eventually("heat off above the band", wait, || async {
        let d = api.control().await?.decision;
        Ok(d.filter(|d| !d.heat && d.reason_code == ReasonCode::HeatAboveBand))
    })
    .await?;
    let t = off.effective_temp_c.unwrap_or_default();
    assert!(t > 20.3, "heat went off at {t} °C, not above 20.3");
    eventually("the relay agent's heat output off", wait, || async {
        Ok((relay_api.relay("heat").await?.state == RelayState::Off).then_some(()))
    })
    .await?;

    // Readings are in the database itself.
    let stored = db.stored(SENSOR_ID).await?.len();
    assert!(stored >= 3, "only {stored} readings stored");

    let agents = api.agents().await?;
    for (host, kind) in [(SENSOR, "sensor"), (RELAY, "relay")] {
        let a = agents.iter().find(|a| a.host_id == host);
        assert!(a.is_some_and(|a| a.online), "{kind} agent {host} not online: {agents:?}");
    }

    // SIGTERM: a clean stop with an mDNS goodbye. Then a new engine on another port.
    let stopped_at = hearth_proto::Timestamp::now();
    let status = engine.terminate()?;
    assert!(status.success(), "engine exit: {status}");
    let engine = Proc::start("engine2", "hearth-engine", &args)?;
    let url2 = engine.listening_url().await?;
    assert_ne!(url, url2, "the restarted engine should listen on another port");
    let api = EngineClient::new(&url2, Some(admin));
    eventually("both agents back with the new engine", wait, || async {
        let agents = api.agents().await?;
        let fresh = |host: &str| {
            agents.iter().any(|a| a.host_id == host && a.last_seen > stopped_at && a.online)
        };
        Ok((fresh(SENSOR) && fresh(RELAY)).then_some(()))
    })
    .await?;
    let relays = api.relays().await?;
    assert!(relays.iter().any(|r| r.host_id == RELAY && r.url == relay_url), "{relays:?}");
    eventually("new readings stored by the new engine", wait, || async {
        let sensors = api.sensors().await?;
        Ok(sensors
            .iter()
            .any(|s| s.id == SENSOR_ID && s.latest.as_ref().is_some_and(|r| r.at > stopped_at))
            .then_some(()))
    })
    .await?;
    let status = engine.terminate()?;
    assert!(status.success(), "engine exit: {status}");
    Ok(())
}

const QUEUE_HOST: &str = "e2e-queue";

#[test]
fn no_reading_lost_to_an_engine_outage_or_an_agent_kill() -> anyhow::Result<()> {
    in_private_netns("no_reading_lost_to_an_engine_outage_or_an_agent_kill", outage)
}

/// The readings still in the agent's replay queue: timestamp (ms) → value.
fn queued(dir: &std::path::Path) -> anyhow::Result<std::collections::BTreeMap<i64, Option<f64>>> {
    let mut out = std::collections::BTreeMap::new();
    for record in hearth_sensor_agent::queue::peek(dir)? {
        let update: hearth_proto::sensors::SensorUpdate = serde_json::from_slice(&record)?;
        for r in update.sensors.values() {
            let ts = r.timestamp.ok_or_else(|| anyhow::anyhow!("queued reading without time"))?;
            anyhow::ensure!(out.insert(ts.as_millisecond(), r.value).is_none(), "queued twice");
        }
    }
    Ok(out)
}

/// Every stored reading of the simulated sensor, oldest first.
async fn stored(pool: &sqlx::SqlitePool) -> anyhow::Result<Vec<(i64, Option<f64>)>> {
    Ok(sqlx::query_as("SELECT ts, value FROM readings WHERE sensor_id = ? ORDER BY ts")
        .bind(SENSOR_ID)
        .fetch_all(pool)
        .await?)
}

/// How many of `missed` are stored, with their value.
async fn stored_of(
    pool: &sqlx::SqlitePool,
    missed: &std::collections::BTreeMap<i64, Option<f64>>,
) -> anyhow::Result<usize> {
    let rows = stored(pool).await?;
    Ok(rows.iter().filter(|(ts, v)| missed.get(ts) == Some(v)).count())
}

async fn outage() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("engine");
    let queue = dir.path().join("queue");
    let data_s = data.to_string_lossy().to_string();
    let queue_s = queue.to_string_lossy().to_string();
    let world_s = dir.path().join("world.json").to_string_lossy().to_string();
    let key = engine_credential(&data, &["device-key", "--role", "sensor", QUEUE_HOST])?;
    let agent_args = [
        "--host-id",
        QUEUE_HOST,
        "--device-key",
        &key,
        "--hardware",
        "simulated",
        "--sim-world",
        &world_s,
        "--interval-s",
        "0.2",
        "--queue-dir",
        &queue_s,
        // Small batches, one per interval: the replay spans seconds, so the agent can be
        // killed in the middle of it.
        "--queue-replay-batch",
        "2",
    ];
    let wait = Duration::from_secs(60);

    let engine = Proc::start("engine", "hearth-engine", &engine_args(&data_s, "8"))?;
    engine.listening_url().await?;
    // Found by mDNS, like the engine's restart below.
    let agent = Proc::start("sensor", "hearth-sensor-agent", &agent_args)?;
    let db = data.join("hearth.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await?;
    eventually("first readings stored", wait, || async {
        Ok((stored(&pool).await?.len() >= 5).then_some(()))
    })
    .await?;

    // The engine dies (SIGKILL: no mDNS goodbye). The agent keeps reading and queues: first
    // on "connection refused", then, once mDNS has verified the engine gone, on "no engine".
    engine.kill()?;
    let missed = eventually("25 readings queued during the outage", wait, || async {
        let q = queued(&queue)?;
        Ok((q.len() >= 25).then_some(q))
    })
    .await?;

    // The engine comes back on the same data dir (another port, found by mDNS). The replay
    // starts; the agent is SIGKILLed in the middle of it.
    let engine = Proc::start("engine2", "hearth-engine", &engine_args(&data_s, "8"))?;
    engine.listening_url().await?;
    eventually("the replay under way", wait, || async {
        let n = stored_of(&pool, &missed).await?;
        Ok((n >= 2 && n < missed.len()).then_some(()))
    })
    .await?;
    agent.kill()?;
    let at_kill = stored_of(&pool, &missed).await?;
    assert!(at_kill < missed.len(), "the replay finished before the kill");

    // Restarted on the same queue: the rest arrives, the queue empties.
    let _agent = Proc::start("sensor2", "hearth-sensor-agent", &agent_args)?;
    eventually("every reading missed during the outage stored", wait, || async {
        Ok((stored_of(&pool, &missed).await? == missed.len()).then_some(()))
    })
    .await?;
    eventually("the agent's queue empty", wait, || async {
        Ok(queued(&queue)?.is_empty().then_some(()))
    })
    .await?;

    // Exactly once, with the original time and value (the key is (sensor, ts), so a second
    // copy of a reading could only show up as a different timestamp: none may be near one).
    let rows = stored(&pool).await?;
    for (ts, value) in &missed {
        let same: Vec<_> = rows.iter().filter(|(t, _)| t == ts).collect();
        assert_eq!(same, [&(*ts, *value)], "reading at {ts} stored as {same:?}");
    }
    // No hole in the history longer than a few intervals, except where the agent itself was
    // dead (killed, then restarted): the engine's outage left none.
    let holes: Vec<(i64, i64)> = rows
        .windows(2)
        .map(|w| (w[0].0, w[1].0))
        // 0.2 s interval; 1.5 s leaves room for a loaded 2-core machine running debug builds.
        .filter(|(a, b)| b - a > 1_500)
        .collect();
    assert!(holes.len() <= 1, "holes in the history: {holes:?}");
    let last_missed = missed.keys().last().copied().unwrap_or(0);
    assert!(
        holes.iter().all(|(a, _)| *a > last_missed),
        "a hole before or during the engine's outage: {holes:?}"
    );
    pool.close().await;
    let status = engine.terminate()?;
    assert!(status.success(), "engine exit: {status}");
    Ok(())
}

#[test]
fn relay_fails_safe_when_the_engine_dies_and_a_restarted_engine_reads_first() -> anyhow::Result<()>
{
    in_private_netns(
        "relay_fails_safe_when_the_engine_dies_and_a_restarted_engine_reads_first",
        engine_crash,
    )
}

/// The engine is SIGKILLed twice while the heat is on. Restarted at once, the new engine reads
/// the relay's state before acting and renews it: the furnace never stops (no flapping). Left
/// dead, the relay agent switches the furnace off by itself when the lease runs out.
async fn engine_crash() -> anyhow::Result<()> {
    const LEASE_S: f64 = 4.0;
    let site = Site::new()?;
    let Site { world, data_s, .. } = &site;
    // One address for every start, as a service has: a restarted engine is the same mDNS
    // target (URL and engine id) for the agents.
    let listen =
        format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    let args: Vec<&str> = engine_args(data_s, "4")
        .into_iter()
        .map(|a| if a == "127.0.0.1:0" { listen.as_str() } else { a })
        .collect();

    let wait = Duration::from_secs(40);
    let Heating { engine, relay, relay_api, _sensor, .. } = heating(&site, &args, wait).await?;

    // Crash and immediate restart: the furnace keeps running, switched on once.
    engine.kill()?;
    let first_killed = std::time::Instant::now();
    let engine = Proc::start("engine2", "hearth-engine", &args)?;
    let read = engine.wait_for_line("read relay states before commanding", wait).await?;
    assert!(read.contains(RELAY) && read.contains("heat=on"), "{read}");
    eventually("the restarted engine renews the heat lease", wait, || async {
        let heat = relay_api.relay("heat").await?;
        let since_kill = first_killed.elapsed().as_secs_f64();
        let renewed = heat.last_command.as_ref().is_some_and(|c| c.s_ago < since_kill);
        Ok((renewed && heat.state == RelayState::On).then_some(heat))
    })
    .await?;
    let heat = relay_api.relay("heat").await?;
    assert_eq!((heat.state, heat.cycles), (RelayState::On, 1), "the furnace never stopped");
    assert_eq!(heat.last_fallback, None);

    // Crash for good: off within the lease, by the relay agent itself.
    engine.kill()?;
    let killed = std::time::Instant::now();
    let heat = eventually("the furnace off after the lease", wait, || async {
        let heat = relay_api.relay("heat").await?;
        Ok((heat.state == RelayState::Off).then_some(heat))
    })
    .await?;
    let after = killed.elapsed().as_secs_f64();
    eprintln!(
        "e2e: the furnace was off {after:.2} s after the engine was killed (lease {LEASE_S} s)"
    );
    // The last renewal came at most a quarter lease before the kill.
    assert!(
        (LEASE_S * 0.75 - 0.5..=LEASE_S + 1.0).contains(&after),
        "off {after:.2} s after the kill, lease {LEASE_S} s"
    );
    assert_eq!(
        heat.last_fallback.map(|f| f.reason),
        Some(hearth_proto::relays::FallbackReason::LeaseExpired)
    );
    let world = hearth_common::simworld::RelayWorld::read(world)?;
    assert!(!world.is_on(hearth_proto::relays::RelayFunction::Heat), "the hardware is off too");

    // The engine comes back at its address, as a service restarts. The relay agent tried to
    // report the fallback to the dead engine; mDNS then forgot the engine, and finds it again
    // (the same URL and engine id). The report must still reach the engine, which logs it (it
    // would otherwise wait for the agent's next registration, which the engine's commands keep
    // postponing).
    eventually("the relay agent's mDNS forgot the dead engine", wait, || async {
        Ok((relay.count_lines("engine location changed engine=None") > 0).then_some(()))
    })
    .await?;
    let engine = Proc::start("engine3", "hearth-engine", &args)?;
    assert_eq!(engine.listening_url().await?, format!("http://{listen}"));
    let report = engine
        .wait_for_line("the relay agent returned this output to its safe state by itself", wait)
        .await?;
    assert!(report.contains(RELAY) && report.contains("LeaseExpired"), "{report}");
    Ok(())
}

#[test]
fn a_killed_relay_agent_is_reported_at_once_and_its_outputs_made_safe() -> anyhow::Result<()> {
    in_private_netns(
        "a_killed_relay_agent_is_reported_at_once_and_its_outputs_made_safe",
        relay_agent_crash,
    )
}

/// The relay agent is SIGKILLed while the heat is on. The engine's next lease renewal (every
/// quarter lease) gets no answer: from then on `GET /v1/relays`, `GET /v1/agents` and
/// `/metrics` say the agent is unreachable and how old the heat's state is, long before the
/// agent would count as offline by silence (90 s here). Nothing in the killed process cleaned
/// up: the simulated output stays on, as a GPIO register keeps a dead process's level, until
/// `safe-state` (the unit's ExecStopPost) drives it off. The restarted agent is reachable again.
async fn relay_agent_crash() -> anyhow::Result<()> {
    const LEASE_S: &str = "4";
    let site = Site::new()?;
    let Site { world, data_s, world_s, relay_key, relay_toml, .. } = &site;
    let args: Vec<&str> =
        engine_args(data_s, LEASE_S).into_iter().map(|a| if a == "5" { "90" } else { a }).collect();
    assert!(args.windows(2).any(|w| w == ["--offline-after-s", "90"]), "{args:?}");
    let wait = Duration::from_secs(40);
    let Heating { engine: _engine, url, api, relay, _sensor, .. } =
        heating(&site, &args, wait).await?;
    let heat_of = |relays: Vec<hearth_proto::relays::RelayInfo>| {
        relays.into_iter().find(|r| r.host_id == RELAY && r.output_id == "heat")
    };
    let heat = eventually("the engine sees the heat on", wait, || async {
        Ok(heat_of(api.relays().await?).filter(|h| h.state == RelayState::On))
    })
    .await?;
    // It registered its backend: the engine knows this furnace is a simulation.
    assert_eq!((heat.backend.as_deref(), heat.simulated), (Some("simulated"), true), "{heat:?}");
    assert!(heat.agent_reachable && heat.agent_unreachable_since.is_none(), "{heat:?}");
    let agent = api.agents().await?.into_iter().find(|a| a.host_id == RELAY);
    assert!(
        agent.as_ref().is_some_and(|a| a.online && a.backend.as_deref() == Some("simulated")),
        "{agent:?}"
    );

    let killed_at = hearth_proto::Timestamp::now();
    let killed = std::time::Instant::now();
    relay.kill()?;
    let heat = eventually("the engine reports the relay agent unreachable", wait, || async {
        Ok(heat_of(api.relays().await?).filter(|h| !h.agent_reachable))
    })
    .await?;
    eprintln!(
        "e2e: the engine reported the killed relay agent unreachable {:.2} s after SIGKILL \
         (lease {LEASE_S} s, renewed every quarter lease)",
        killed.elapsed().as_secs_f64()
    );
    assert!(heat.agent_unreachable_since.is_some_and(|t| t >= killed_at), "{heat:?}");
    // The last known state, reported before the kill, with its age.
    assert_eq!(heat.state, RelayState::On);
    assert!(heat.updated_at <= killed_at && heat.age_s > 0.0, "{heat:?}");
    let agent = api.agents().await?.into_iter().find(|a| a.host_id == RELAY);
    let agent = agent.ok_or_else(|| anyhow::anyhow!("relay agent not listed"))?;
    assert!(!agent.online, "offline at once, not after 90 s of silence: {agent:?}");
    assert!(agent.unreachable_since.is_some(), "{agent:?}");
    assert!(agent.contact_error.as_deref().is_some_and(|e| e.contains("no answer")), "{agent:?}");
    let metrics = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    let line = format!("hearth_relay_agent_reachable{{host=\"{RELAY}\"}} 0");
    assert!(metrics.lines().any(|l| l == line), "no {line:?} in /metrics");

    // The dead process cleaned nothing up: the furnace's line still says on. The unit's
    // ExecStopPost runs `safe-state` with the agent's configuration: off.
    let heat_on = |world: &std::path::Path| -> anyhow::Result<bool> {
        Ok(hearth_common::simworld::RelayWorld::read(world)?
            .is_on(hearth_proto::relays::RelayFunction::Heat))
    };
    assert!(heat_on(world)?, "the killed agent's output kept its level");
    let out = std::process::Command::new(hearth_e2e::binary("hearth-relay-agent"))
        .args(["--config", relay_toml, "--hardware", "simulated", "--sim-world", world_s])
        .arg("safe-state")
        .output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!heat_on(world)?, "safe-state switched the furnace off");

    // Restarted (systemd does it a second later): reachable again at the next call.
    let _relay = start_relay(relay_toml, relay_key, world_s)?;
    eventually("the engine reaches the restarted relay agent", wait, || async {
        Ok(heat_of(api.relays().await?).filter(|h| h.agent_reachable))
    })
    .await?;
    let metrics = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    let line = format!("hearth_relay_agent_reachable{{host=\"{RELAY}\"}} 1");
    assert!(metrics.lines().any(|l| l == line), "no {line:?} in /metrics");
    Ok(())
}
