//! The whole system, for real: engine, simulated sensor agent and simulated relay agent as
//! separate processes, finding each other by mDNS inside a private network namespace, talking
//! HTTP on real sockets, closing the loop through the simulated room.

use std::time::Duration;

use hearth_e2e::{Proc, engine_credential, eventually, in_private_netns};
use hearth_proto::client::{EngineClient, RelayAgentClient};
use hearth_proto::control::{ControlSettings, Mode, ReasonCode};
use hearth_proto::relays::RelayState;

const SENSOR: &str = "e2e-sensor";
const RELAY: &str = "e2e-relay";
const SENSOR_ID: &str = "28-00000000a001";

fn engine_args(data: &str) -> Vec<&str> {
    vec![
        "--data-dir",
        data,
        "--listen",
        "127.0.0.1:0",
        "--tick-s",
        "0.2",
        "--stale-after-s",
        "10",
        "--offline-after-s",
        "5",
        "--lease-s",
        "8",
    ]
}

#[test]
fn closed_loop_found_by_mdns_survives_engine_restart() -> anyhow::Result<()> {
    in_private_netns("closed_loop_found_by_mdns_survives_engine_restart", run)
}

async fn run() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("engine");
    let world = dir.path().join("world.json");
    let data_s = data.to_string_lossy().to_string();
    let world_s = world.to_string_lossy().to_string();
    let sensor_key = engine_credential(&data, &["device-key", SENSOR])?;
    let relay_key = engine_credential(&data, &["device-key", RELAY])?;
    let admin = engine_credential(&data, &["admin-token"])?;

    let engine = Proc::start("engine", "hearth-engine", &engine_args(&data_s))?;
    let url = engine.listening_url().await?;
    let api = EngineClient::new(&url, Some(admin.clone()));
    api.set_control(&ControlSettings {
        mode: Mode::Heat,
        setpoint_c: 20.0,
        hysteresis_c: 0.3,
        min_on_s: 1,
        min_off_s: 1,
    })
    .await?;

    // No engine address anywhere below: the agents find it by mDNS.
    let relay = Proc::start(
        "relay",
        "hearth-relay-agent",
        &[
            "--host-id",
            RELAY,
            "--device-key",
            &relay_key,
            "--listen",
            "127.0.0.1:0",
            "--sim-world",
            &world_s,
        ],
    )?;
    let relay_url = relay.listening_url().await?;
    let _sensor = Proc::start(
        "sensor",
        "hearth-sensor-agent",
        &[
            "--host-id",
            SENSOR,
            "--device-key",
            &sensor_key,
            "--hardware",
            "simulated",
            "--sim-world",
            &world_s,
            "--interval-s",
            "0.3",
            "--sim-start-c",
            "18",
            "--sim-time-scale",
            "600",
        ],
    )?;
    let relay_api = RelayAgentClient::new(&relay_url, None);

    // The room starts at 18 °C, below 20 − 0.3: heat goes on, through the relay agent.
    let wait = Duration::from_secs(40);
    eventually("heat on below the band", wait, || async {
        let d = api.control().await?.decision;
        Ok(d.filter(|d| d.heat && d.reason_code == ReasonCode::BelowBand))
    })
    .await?;
    eventually("the relay agent's heat output on", wait, || async {
        Ok((relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
    })
    .await?;

    // The simulated room warms until it is above 20 + 0.3: heat goes off.
    let off = eventually("heat off above the band", wait, || async {
        let d = api.control().await?.decision;
        Ok(d.filter(|d| !d.heat && d.reason_code == ReasonCode::AboveBand))
    })
    .await?;
    let t = off.effective_temp_c.unwrap_or_default();
    assert!(t > 20.3, "heat went off at {t} °C, not above 20.3");
    eventually("the relay agent's heat output off", wait, || async {
        Ok((relay_api.relay("heat").await?.state == RelayState::Off).then_some(()))
    })
    .await?;

    // Readings are in the database file itself.
    let db = data.join("hearth.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await?;
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM readings WHERE sensor_id = ?")
        .bind(SENSOR_ID)
        .fetch_one(&pool)
        .await?;
    assert!(stored >= 3, "only {stored} readings stored");
    pool.close().await;

    let agents = api.agents().await?;
    for (host, kind) in [(SENSOR, "sensor"), (RELAY, "relay")] {
        let a = agents.iter().find(|a| a.host_id == host);
        assert!(a.is_some_and(|a| a.online), "{kind} agent {host} not online: {agents:?}");
    }

    // SIGTERM: a clean stop with an mDNS goodbye. Then a new engine on another port.
    let stopped_at = hearth_proto::Timestamp::now();
    let status = engine.terminate()?;
    assert!(status.success(), "engine exit: {status}");
    let engine = Proc::start("engine2", "hearth-engine", &engine_args(&data_s))?;
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
