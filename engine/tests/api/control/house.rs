//! The loop on a zoned house, configured through the zones API: two zones behind valves share
//! a boiler with a valve delay and an overrun, against a stand-in relay agent over real HTTP.
//! The loop runs on real time here; every wait polls with a deadline.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use tokio::time::Instant;

use super::super::*;
use super::{fixture_with, next_event, running_engine};

const HOST: &str = "relay1";
/// Seconds a valve must have been reported open before the boiler fires, and the pump's
/// overrun after it stops: short, as the loop runs on real time here.
const VALVE_DELAY_S: u64 = 2;
const OVERRUN_S: u64 = 2;

/// The stand-in's outputs: on or off, and when they last switched.
type Outputs = Arc<Mutex<BTreeMap<String, (bool, Instant)>>>;
/// Every switch the stand-in carried out, in order: output, on, when.
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

/// Wait until the stand-in's log holds `id` switched to `on`; when it switched.
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

/// A plan's plant code and every valve as (open, code): the steps the test follows.
fn steps(house: &Value) -> (Value, Vec<(Value, Value)>) {
    let valves = house["zones"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|z| z["valves"].as_array().cloned().unwrap_or_default())
        .map(|v| (v["open"].clone(), v["code"].clone()))
        .collect();
    (house["plants"][0]["code"].clone(), valves)
}

/// The cold zone's valve opens first; the boiler fires only once that valve has been REPORTED
/// open for the valve delay; the warm zone's valve stays closed. When both are satisfied the
/// boiler stops, the pump's overrun keeps the valve open, then it closes. The `house` events
/// say each step with its code, and `GET /v1/house` and `GET /v1/control?zone=` show the plan.
#[tokio::test]
async fn a_zone_valve_opens_before_the_boiler_and_closes_after_its_overrun() -> R {
    let f = fixture_with(&["--tick-s", "0.1"]).await?;
    let admin = f.admin();
    let put = |path: &str, body: Value| {
        let (f, admin, path) = (&f, admin.clone(), path.to_owned());
        async move {
            let got = f.call("PUT", &path, Some(&admin), Some(&body.to_string())).await?;
            anyhow::ensure!(got.0.is_success(), "PUT {path}: {} {}", got.0, got.1);
            Ok::<_, anyhow::Error>(())
        }
    };
    let (url, outputs, log) = relay_agent().await?;
    let registration = json!({"host_id": HOST, "url": url, "outputs": list(&outputs)});
    let got = f
        .call("POST", "/v1/relays/register", Some(&f.agent(HOST)), Some(&registration.to_string()))
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    put("/v1/schedule/default", json!({"heat_c": 20.0, "cool_c": 24.0})).await?;
    // The living room is the default zone (every sensor the bedroom does not name).
    put("/v1/zones/house", json!({"name": "Living room", "valves": ["relay1/valve-1"]})).await?;
    let bedroom =
        json!({"name": "Bedroom", "sensors": ["28-bedroom"], "valves": ["relay1/valve-2"]});
    put("/v1/zones/bedroom", bedroom).await?;
    let boiler = json!({"name": "Boiler", "kind": "heat", "heat_relay": "relay1/boiler",
        "zones": ["house", "bedroom"], "min_on_s": 0, "min_off_s": 0, "changeover_s": 0,
        "valve_delay_s": VALVE_DELAY_S, "overrun_s": OVERRUN_S});
    put("/v1/plants/boiler", boiler).await?;
    let got = f.call("DELETE", "/v1/plants/house", Some(&admin), None).await?;
    assert_eq!(got.0, StatusCode::NO_CONTENT, "{}", got.1);
    let settings = json!({"mode": "heat", "min_on_s": 0, "min_off_s": 0, "changeover_s": 0});
    put("/v1/control/settings", settings.clone()).await?;
    put("/v1/control/settings?zone=bedroom", settings).await?;
    let cred = f.agent("pi");
    let reading = |sensor: &str, value: f64| {
        json!({"host_id": "pi", "sensors": {sensor: {"type": "DS18B20", "value": value}}})
            .to_string()
    };
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&reading("28-living", 15.0))).await?;
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&reading("28-bedroom", 25.0))).await?;

    // Every house event, as a dashboard gets them.
    let resp = f
        .engine
        .router()
        .oneshot(Request::builder().uri("/v1/events").body(Body::empty())?)
        .await?;
    let mut body = resp.into_body();
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let collect = seen.clone();
    tokio::spawn(async move {
        let mut buf = String::new();
        let forever = Instant::now() + Duration::from_secs(3600);
        while let Ok(house) = next_event(&mut body, &mut buf, "house", forever).await {
            if let Ok(mut seen) = collect.lock() {
                seen.push(house["house"].clone());
            }
        }
    });
    let (stop, control) = running_engine(&f).await;

    let opened = switched(&log, "valve-1", true).await?;
    let fired = switched(&log, "boiler", true).await?;
    // Reported open at `opened` (the agent's changed_s_ago, to the millisecond).
    let waited = fired.duration_since(opened);
    assert!(waited >= Duration::from_millis(VALVE_DELAY_S * 1000 - 5), "{waited:?}");
    let house = f.get("/v1/house").await?;
    assert_eq!(house["zones"][0]["calling"], "heat", "{house}");
    assert_eq!(house["zones"][1]["calling"], Value::Null, "{house}");
    assert_eq!(house["plants"][0]["heat"], true, "{house}");
    let bedroom = f.get("/v1/control?zone=bedroom").await?;
    assert_eq!(bedroom["decision"]["heat"], false, "{bedroom}");

    // Both satisfied: the boiler stops, the valve stays open through the overrun.
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&reading("28-living", 25.0))).await?;
    let stopped = switched(&log, "boiler", false).await?;
    let closed = switched(&log, "valve-1", false).await?;
    let overrun = closed.duration_since(stopped);
    assert!(overrun >= Duration::from_millis(OVERRUN_S * 1000 - 5), "{overrun:?}");
    // The plan that closed it was published before it was commanded; the stream is read by
    // a task, so wait until that has read it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = seen.lock().ok().and_then(|s| s.last().cloned()).unwrap_or_default();
        if last["plants"][0]["code"] == "idle" {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "last house event {last}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(true);
    control.await?;

    // The warm zone's valve was never opened.
    let log = log.lock().map(|l| l.clone()).unwrap_or_default();
    assert!(!log.iter().any(|(id, on, _)| id == "valve-2" && *on), "{log:?}");
    // The steps as the house events told them, in order (with others between).
    let seen: Vec<_> = seen.lock().map(|s| s.iter().map(steps).collect()).unwrap_or_default();
    let closed = (json!(false), json!("closed"));
    let expected = [
        (json!("valve_delay"), vec![(json!(true), json!("calling")), closed.clone()]),
        (json!("calling"), vec![(json!(true), json!("calling")), closed.clone()]),
        (json!("overrun"), vec![(json!(true), json!("overrun")), closed.clone()]),
        (json!("idle"), vec![closed.clone(), closed]),
    ];
    let mut at = 0;
    for step in &expected {
        let found = seen[at..].iter().position(|s| s == step);
        assert!(found.is_some(), "no {step:?} from event {at} on in {seen:#?}");
        at += found.unwrap_or_default();
    }
    Ok(())
}
