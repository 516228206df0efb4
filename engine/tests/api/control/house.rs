//! The loop on a zoned house, configured through the zones API: two zones behind valves share
//! a boiler with a valve delay and an overrun, against a stand-in relay agent over real HTTP.
//! The loop runs on real time here; every wait polls with a deadline.

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::super::*;
use super::{
    Outputs, Stall, events, fixture_with, next_command, next_event, register, relay_agent_with,
    running_engine,
};
/// Seconds a valve must have been reported open before the boiler fires, and the pump's
/// overrun after it stops: short, as the loop runs on real time here.
const VALVE_DELAY_S: u64 = 2;
const OVERRUN_S: u64 = 2;

/// When output `id` of the stand-in last switched.
fn since(outputs: &Outputs, id: &str) -> R<Instant> {
    let map = outputs.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    map.get(id).map(|o| o.1).ok_or_else(|| anyhow::anyhow!("no output {id}"))
}

/// Wait for the stand-in to carry out `command` ("id state"); every command before it is
/// added to `all`.
async fn carried_out(
    rx: &mut UnboundedReceiver<String>,
    all: &mut Vec<String>,
    command: &str,
) -> R {
    loop {
        let got = next_command(rx).await?;
        all.push(got.clone());
        if got == command {
            return Ok(());
        }
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
    let ids = ["boiler", "valve-1", "valve-2"];
    let (url, outputs, mut commands) =
        relay_agent_with(&ids, Duration::ZERO, Stall::default()).await?;
    let got = register(&f, &url, &outputs).await?;
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
    let mut body = events(&f).await?;
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

    let mut all = Vec::new();
    carried_out(&mut commands, &mut all, "valve-1 on").await?;
    carried_out(&mut commands, &mut all, "boiler on").await?;
    // As the agent switched them; the valve reported open since then (its changed_s_ago, to
    // the millisecond).
    let waited = since(&outputs, "boiler")?.duration_since(since(&outputs, "valve-1")?);
    assert!(waited >= Duration::from_millis(VALVE_DELAY_S * 1000 - 5), "{waited:?}");
    let house = f.get("/v1/house").await?;
    assert_eq!(house["zones"][0]["calling"], "heat", "{house}");
    assert_eq!(house["zones"][1]["calling"], Value::Null, "{house}");
    assert_eq!(house["plants"][0]["heat"], true, "{house}");
    let bedroom = f.get("/v1/control?zone=bedroom").await?;
    assert_eq!(bedroom["decision"]["heat"], false, "{bedroom}");

    // Both satisfied: the boiler stops, the valve stays open through the overrun.
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&reading("28-living", 25.0))).await?;
    carried_out(&mut commands, &mut all, "boiler off").await?;
    carried_out(&mut commands, &mut all, "valve-1 off").await?;
    let overrun = since(&outputs, "valve-1")?.duration_since(since(&outputs, "boiler")?);
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
    while let Ok(command) = commands.try_recv() {
        all.push(command);
    }
    assert!(!all.iter().any(|c| c == "valve-2 on"), "{all:?}");
    // The steps as the house events told them, in order (with others between).
    let events: Vec<Value> = seen.lock().map(|s| s.clone()).unwrap_or_default();
    let seen: Vec<_> = events.iter().map(steps).collect();
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
    // Every event showed something new: none repeats the one before it but for a countdown
    // that only moves in time (the valve delay's and the overrun's seconds left).
    let shown: Vec<Value> = events.iter().map(steady).collect();
    for (i, pair) in shown.windows(2).enumerate() {
        assert_ne!(
            pair[0],
            pair[1],
            "event {} repeats event {i}: {:#?}",
            i + 1,
            &events[i..=i + 1]
        );
    }
    Ok(())
}

/// A `house` event as a dashboard shows it when nothing but time moves: without the instants
/// of the plan and its decisions, and without the reasons that count seconds down.
fn steady(house: &Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(map) => {
                map.remove("at");
                let counting = ["valve_delay", "overrun", "min_on_time", "min_off_time"];
                if map.get("code").and_then(Value::as_str).is_some_and(|c| counting.contains(&c)) {
                    map.remove("reason");
                }
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut house = house.clone();
    strip(&mut house);
    house
}

/// An output the plan stops naming while it runs (here the heat output, once its plant is
/// deleted) is commanded off at once, not left on until its lease runs out.
#[tokio::test]
async fn an_output_the_plan_stops_naming_is_switched_off() -> R {
    // A lease longer than the test: only a command switches the heat off in time.
    let f = fixture_with(&["--tick-s", "0.1", "--lease-s", "600"]).await?;
    let admin = f.admin();
    let (url, outputs, mut commands) =
        relay_agent_with(&["heat", "cool"], Duration::ZERO, Stall::default()).await?;
    let got = register(&f, &url, &outputs).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let settings = json!({"mode": "heat", "min_on_s": 0, "min_off_s": 0, "changeover_s": 0});
    let got =
        f.call("PUT", "/v1/control/settings", Some(&admin), Some(&settings.to_string())).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let (stop, control) = running_engine(&f).await;
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(15.0)))).await?;
    let mut all = Vec::new();
    carried_out(&mut commands, &mut all, "heat on").await?;
    // The plant keeps only the cooling: the heat output is nobody's now.
    let plant = json!({"name": "Cooling", "kind": "cool", "cool_relay": "function:cool",
        "zones": ["house"], "min_on_s": 0, "min_off_s": 0, "changeover_s": 0});
    let got = f.call("PUT", "/v1/plants/house", Some(&admin), Some(&plant.to_string())).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    carried_out(&mut commands, &mut all, "heat off").await?;
    let _ = stop.send(true);
    control.await?;
    Ok(())
}
