//! The loop on a zoned house, end to end inside the engine: the real engine (SQLite file in a
//! temp dir, its API on a real socket, the decision loop) commanding a stand-in relay agent
//! over real HTTP. Two zones behind valves share a boiler with a valve delay and an overrun.
//! The loop runs on real time; every wait polls with a deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use hearth_proto::agents::KeyRole;
use hearth_proto::client::EngineClient;
use hearth_proto::control::Mode;
use hearth_proto::events::Event;
use hearth_proto::zones::{HouseStatus, PlantCode, ValveCode};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::control::{self, Settings};
use crate::zones::live::{DEFAULT_PLANT, Zones};
use crate::zones::{PlantConfig, PlantId, PlantKind, RelayId, ZoneId, ZoneOutputs};

type R<T = ()> = anyhow::Result<T>;

const HOST: &str = "relay1";
/// Seconds a valve must have been reported open before the boiler fires, and the pump's
/// overrun after it stops: short, as the loop runs on real time here.
const VALVE_DELAY_S: u32 = 2;
const OVERRUN_S: u32 = 2;

/// The stand-in's outputs: on or off, and when they last switched.
type Outputs = Arc<Mutex<BTreeMap<String, (bool, Instant)>>>;
/// Every command carried out, in order: output, on, when.
type Log = Arc<Mutex<Vec<(String, bool, Instant)>>>;

/// A relay agent with outputs `boiler` (heat), `valve-1` and `valve-2` (valves), all off, that
/// obeys every command at once and reports `changed_s_ago` like the real agent.
async fn relay_agent() -> R<(String, Outputs, Log)> {
    let now = Instant::now();
    let outputs: Outputs = Arc::new(Mutex::new(
        ["boiler", "valve-1", "valve-2"].map(|id| (id.to_owned(), (false, now))).into(),
    ));
    let log = Log::default();
    let app = Router::new()
        .route(
            "/v1/relays",
            axum::routing::get(|State((o, _)): State<(Outputs, Log)>| async move {
                axum::Json(json!({"host_id": HOST, "outputs": list(&o)}))
            }),
        )
        .route(
            "/v1/relays/{id}",
            axum::routing::post(
                |State((o, log)): State<(Outputs, Log)>,
                 Path(id): Path<String>,
                 axum::Json(cmd): axum::Json<Value>| async move {
                    let on = cmd["state"] == "on";
                    if let Ok(mut map) = o.lock()
                        && let Some(slot) = map.get_mut(&id)
                        && slot.0 != on
                    {
                        *slot = (on, Instant::now());
                        if let Ok(mut log) = log.lock() {
                            log.push((id.clone(), on, slot.1));
                        }
                    }
                    axum::Json(list(&o).into_iter().find(|s| s["id"] == id.as_str()))
                },
            ),
        )
        .with_state((outputs.clone(), log.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, outputs, log))
}

fn list(outputs: &Outputs) -> Vec<Value> {
    let map = outputs.lock().map(|m| m.clone()).unwrap_or_default();
    map.iter()
        .map(|(id, (on, since))| {
            let hint = if id == "boiler" { "heat" } else { "valve" };
            json!({"id": id, "name": id, "state": if *on { "on" } else { "off" },
                "safe_state": "off", "function_hint": hint, "lease_remaining_s": null,
                "changed_s_ago": since.elapsed().as_secs_f64(), "cycles": 0})
        })
        .collect()
}

/// Configure the house as an admin would, through the stored path (checked whole at each
/// step): the default zone (the living room, every sensor but the bedroom's) behind `valve-1`,
/// the bedroom behind `valve-2`, one boiler serving both in place of the default plant; both
/// zones in `settings`.
async fn two_zones(zones: &Zones, settings: &Settings) -> R {
    let valve =
        |v: &str| ZoneOutputs { valves: vec![RelayId::output(HOST, v)], ..Default::default() };
    let (house, bedroom) = (ZoneId::default_zone(), ZoneId::from("bedroom"));
    zones.put_zone(house.clone(), "Living room".into(), vec![], valve("valve-1")).await?;
    zones
        .put_zone(bedroom.clone(), "Bedroom".into(), vec!["28-bedroom".into()], valve("valve-2"))
        .await?;
    zones
        .put_plant(PlantConfig {
            id: PlantId::from("boiler"),
            name: "Boiler".to_owned(),
            kind: PlantKind::Heat,
            heat_relay: Some(RelayId::output(HOST, "boiler")),
            cool_relay: None,
            min_on_s: 0,
            min_off_s: 0,
            changeover_s: 0,
            max_run_s: None,
            zones: vec![house.clone(), bedroom.clone()],
            valve_delay_s: VALVE_DELAY_S,
            overrun_s: OVERRUN_S,
            min_calling_zones: 1,
            bypass_zone: None,
        })
        .await?;
    zones.delete_plant(&PlantId::from(DEFAULT_PLANT)).await?;
    for zone in [&house, &bedroom] {
        anyhow::ensure!(zones.set_settings(zone, settings.clone()).await?, "no zone {zone}");
    }
    Ok(())
}

/// Report one reading of `sensor`.
async fn reading(client: &EngineClient, sensor: &str, value: f64) -> R {
    let update = json!({"host_id": "pi", "sensors": {sensor: {"type": "DS18B20", "value": value}}});
    client.sensor_update(&serde_json::from_value(update)?).await?;
    Ok(())
}

/// Wait until the stand-in's log holds `id` switched to `on`; when it did.
async fn switched(log: &Log, id: &str, on: bool) -> R<Instant> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = log
            .lock()
            .ok()
            .and_then(|l| l.iter().find(|(i, o, _)| i == id && *o == on).map(|(_, _, at)| *at));
        if let Some(at) = seen {
            return Ok(at);
        }
        anyhow::ensure!(Instant::now() < deadline, "{id} never switched {on}: {log:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `house` events seen so far (the stream is read by a task).
type Seen = Arc<Mutex<Vec<HouseStatus>>>;

fn codes(h: &HouseStatus) -> (PlantCode, Vec<(bool, ValveCode)>) {
    let plant = h.plants.first().map_or(PlantCode::Idle, |p| p.code);
    (plant, h.zones.iter().flat_map(|z| z.valves.iter().map(|v| (v.open, v.code))).collect())
}

/// The cold zone's valve opens first; the boiler fires only once that valve has been REPORTED
/// open for the valve delay; the warm zone's valve stays closed. When both are satisfied the
/// boiler stops, the pump's overrun keeps the valve open, then it closes. `GET /v1/house` and
/// the `house` events say each step, with its reason.
#[tokio::test]
async fn a_zone_valve_opens_before_the_boiler_and_closes_after_its_overrun() -> R {
    let dir = tempfile::tempdir()?;
    let d = dir.path().to_string_lossy().to_string();
    let args = ["hearth-engine", "--data-dir", &d, "--mdns", "false", "--tick-s", "0.1"];
    let engine = crate::Engine::open(&hearth_common::config::load_from(args)?).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = engine.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let admin = EngineClient::new(&base, Some(engine.admin_credential()));
    let agent = |host: &str| {
        EngineClient::new(
            &base,
            Some(engine.device_key(host, KeyRole::Both).agent_credential(host)),
        )
    };

    let (url, outputs, log) = relay_agent().await?;
    let registration = json!({"host_id": HOST, "url": url, "outputs": list(&outputs)});
    agent(HOST).register_relays(&serde_json::from_value(registration)?).await?;
    let target = json!({"heat_c": 20.0, "cool_c": 24.0});
    admin.set_default_target(&serde_json::from_value(target)?).await?;
    let settings = Settings {
        mode: Mode::Heat,
        min_on_s: 0,
        min_off_s: 0,
        changeover_s: 0,
        ..Settings::default()
    };
    let settings = control::check_settings(settings).map_err(|e| anyhow::anyhow!(e))?;
    two_zones(&engine.controller.zones, &settings).await?;
    // The living room (the default zone) is cold; the bedroom (no schedule of its own: it
    // holds its frost floor) is warm.
    let sensors = agent("pi");
    reading(&sensors, "28-living", 15.0).await?;
    reading(&sensors, "28-bedroom", 25.0).await?;

    let mut events = admin.events().await?;
    let seen = Seen::default();
    let collect = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(event)) = events.next().await {
            if let (Event::House { house }, Ok(mut seen)) = (event, collect.lock()) {
                seen.push(*house);
            }
        }
    });
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let control = engine.spawn_control(stop_rx);

    let opened = switched(&log, "valve-1", true).await?;
    let fired = switched(&log, "boiler", true).await?;
    // Reported open at `opened` (the agent's changed_s_ago, to the millisecond).
    let waited = fired.duration_since(opened);
    assert!(waited >= Duration::from_millis(u64::from(VALVE_DELAY_S) * 1000 - 5), "{waited:?}");
    let house = engine.controller.house().ok_or_else(|| anyhow::anyhow!("no plan"))?;
    assert_eq!(house.zones[0].calling, Some(hearth_proto::control::System::Heat), "{house:?}");
    assert_eq!(house.zones[1].calling, None, "{house:?}");
    let living = engine.controller.latest_in(&ZoneId::default_zone()).map(|d| d.heat);
    assert_eq!(living, Some(true));
    assert_eq!(engine.controller.latest_in(&ZoneId::from("bedroom")).map(|d| d.heat), Some(false));

    // Both satisfied: the boiler stops, the valve stays open through the overrun.
    reading(&sensors, "28-living", 25.0).await?;
    let stopped = switched(&log, "boiler", false).await?;
    let closed = switched(&log, "valve-1", false).await?;
    let overrun = closed.duration_since(stopped);
    assert!(overrun >= Duration::from_millis(u64::from(OVERRUN_S) * 1000 - 5), "{overrun:?}");
    let _ = stop.send(true);
    control.await?;

    // The warm zone's valve was never opened.
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(!log.iter().any(|(id, on, _)| id == "valve-2" && *on), "{log:?}");
    // The steps as the house events told them, each once, in order.
    let seen = seen.lock().map(|s| s.iter().map(codes).collect::<Vec<_>>()).unwrap_or_default();
    let steps = [
        (PlantCode::ValveDelay, vec![(true, ValveCode::Calling), (false, ValveCode::Closed)]),
        (PlantCode::Calling, vec![(true, ValveCode::Calling), (false, ValveCode::Closed)]),
        (PlantCode::Overrun, vec![(true, ValveCode::Overrun), (false, ValveCode::Closed)]),
        (PlantCode::Idle, vec![(false, ValveCode::Closed), (false, ValveCode::Closed)]),
    ];
    let mut at = 0;
    for step in &steps {
        let found = seen[at..].iter().position(|s| s == step);
        assert!(found.is_some(), "no {step:?} after event {at} in {seen:#?}");
        at += found.unwrap_or_default();
    }
    Ok(())
}
