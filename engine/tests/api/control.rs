//! The decision loop against a relay agent stand-in that keeps state like a real one: cooling,
//! runs recorded from what the relays report, the same state in `/metrics`, minimum off time
//! across a relay blip (also when an answer from before the blip arrives after it), the
//! schedule in force right after a start, and the live event stream.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;

mod house;
mod takeover;

/// One output of the stand-in: its state and when it last switched.
type Outputs = Arc<Mutex<BTreeMap<String, (String, tokio::time::Instant)>>>;

/// When set, the stand-in's next `heat on` is carried out and answered at once, but the answer
/// is only sent when this fires: an answer on its way (or waiting for a loaded engine) while
/// the agent restarts.
type Stall = Arc<Mutex<Option<tokio::sync::oneshot::Receiver<()>>>>;

/// What the stand-in's agent says an output drives: `heat` and `cool` what they say, a
/// `boiler` heat, `valve-…` a zone valve.
fn hint(id: &str) -> &str {
    match id {
        "boiler" => "heat",
        _ if id.starts_with("valve") => "valve",
        _ => id,
    }
}

/// A stand-in relay agent with outputs `heat` and `cool` (see [`relay_agent_with`]).
async fn relay_agent(
    min_off: Duration,
    stall: Stall,
) -> R<(String, Outputs, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    relay_agent_with(&["heat", "cool"], min_off, stall).await
}

/// A stand-in relay agent with outputs `ids` (functions as [`hint`] says), off since it
/// started, that obeys every command at once and reports `changed_s_ago` like the real agent.
/// Like a real agent it refuses an `on` within `min_off` (the tests give the engine the same)
/// of an off or of its (re)start. Returns its URL, its outputs (to inspect or to blip; each
/// with when it last switched), and every command it got as "id state", sent once the command
/// is carried out (before a stalled answer leaves).
async fn relay_agent_with(
    ids: &[&str],
    min_off: Duration,
    stall: Stall,
) -> R<(String, Outputs, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    use axum::extract::{Path, State};
    use axum::response::{IntoResponse as _, Response};
    // All off since the agent started, as a real agent reports after a restart.
    let now = tokio::time::Instant::now();
    let outputs: Outputs = Arc::new(Mutex::new(
        ids.iter().map(|id| ((*id).to_owned(), ("off".to_owned(), now))).collect(),
    ));
    let obey = move |o: &Outputs, id: &str, state: &str| -> Response {
        if let Ok(mut map) = o.lock()
            && let Some(slot) = map.get_mut(id)
            && slot.0 != state
        {
            // A lease renewal already on its way when the agent restarted is refused, as a
            // real agent would.
            if state == "on" && slot.1.elapsed() < min_off {
                let refusal =
                    json!({"status": "error", "code": "short_cycle", "error": "minimum off time"});
                return (axum::http::StatusCode::CONFLICT, axum::Json(refusal)).into_response();
            }
            *slot = (state.to_owned(), tokio::time::Instant::now());
        }
        let status = list(o).into_iter().find(|s| s["id"] == id);
        axum::Json(status.unwrap_or_default()).into_response()
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = Router::new()
        .route(
            "/v1/relays",
            axum::routing::get(|State((o, ..)): State<(Outputs, _, Stall)>| async move {
                axum::Json(json!({"host_id": "relay1", "outputs": list(&o)}))
            }),
        )
        .route(
            "/v1/relays/{id}",
            axum::routing::post(
                move |State((o, tx, stall)): State<(
                    Outputs,
                    tokio::sync::mpsc::UnboundedSender<String>,
                    Stall,
                )>,
                      Path(id): Path<String>,
                      axum::Json(cmd): axum::Json<Value>| async move {
                    let state = cmd["state"].as_str().unwrap_or("off").to_owned();
                    let answer = obey(&o, &id, &state);
                    let _ = tx.send(format!("{id} {state}"));
                    let stalled = if id == "heat" && state == "on" {
                        stall.lock().ok().and_then(|mut s| s.take())
                    } else {
                        None
                    };
                    if let Some(release) = stalled {
                        let _ = release.await;
                    }
                    answer
                },
            ),
        )
        .with_state((outputs.clone(), tx, stall));
    let url = serve(app).await?;
    Ok((url, outputs, rx))
}

fn list(outputs: &Outputs) -> Vec<Value> {
    let map = outputs.lock().map(|m| m.clone()).unwrap_or_default();
    map.iter()
        .map(|(id, (state, since))| {
            json!({"id": id, "name": id, "state": state, "safe_state": "off",
                "function_hint": hint(id), "lease_remaining_s": null,
                "changed_s_ago": since.elapsed().as_secs_f64(), "cycles": 0})
        })
        .collect()
}

/// The stand-in (re)registers with the outputs as they are now.
async fn register(f: &Fixture, url: &str, outputs: &Outputs) -> R<(StatusCode, Value)> {
    let body = json!({"host_id": "relay1", "url": url, "outputs": list(outputs)}).to_string();
    f.call("POST", "/v1/relays/register", Some(&f.agent("relay1")), Some(&body)).await
}

async fn running_engine(
    f: &Fixture,
) -> (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    (stop_tx, f.engine.spawn_control(stop_rx))
}

/// Wait until the decision satisfies `ok`, polling the API (the loop runs on real time here;
/// the deadline only bounds a failure).
async fn decision_where(f: &Fixture, what: &str, ok: impl Fn(&Value) -> bool) -> R<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = f.get("/v1/control").await?["decision"].clone();
        if ok(&d) {
            return Ok(d);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{what}: last decision {d}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until `GET /v1/runs` has a cool run satisfying `ok`, and return it.
async fn cool_run(f: &Fixture, what: &str, ok: impl Fn(&Value) -> bool) -> R<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let runs = f.get("/v1/runs").await?;
        let run = runs.as_array().and_then(|r| r.iter().find(|r| r["system"] == "cool")).cloned();
        if let Some(run) = run.filter(|r| ok(r)) {
            return Ok(run);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{what}: runs {runs}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_command(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> R<String> {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("relay agent gone"))
}

/// Cool mode commands the cool output (and keeps heat off); the run is recorded from the
/// relay's report, and closed when the relay reports off.
#[tokio::test]
async fn cooling_is_commanded_and_runs_follow_the_relays() -> R {
    let f = fixture_with(&["--tick-s", "0.1"]).await?;
    let (url, outputs, mut commands) = relay_agent(Duration::ZERO, Stall::default()).await?;
    let got = register(&f, &url, &outputs).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let settings = json!({"mode": "cool", "min_on_s": 0, "min_off_s": 0, "changeover_s": 0});
    let got = f
        .call("PUT", "/v1/control/settings", Some(&f.admin()), Some(&settings.to_string()))
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let target = json!({"heat_c": 20.0, "cool_c": 24.0}).to_string();
    f.call("PUT", "/v1/schedule/default", Some(&f.admin()), Some(&target)).await?;
    let (stop, control) = running_engine(&f).await;
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(27.0)))).await?;
    let d = decision_where(&f, "cool on", |d| d["cool"] == true).await?;
    assert_eq!(d["reason_code"], "cool_above_band", "{d}");
    assert_eq!(d["heat"], false);
    loop {
        if next_command(&mut commands).await? == "cool on" {
            break;
        }
    }
    cool_run(&f, "an open cool run", |r| r["end"].is_null()).await?;
    // The same state, as Prometheus sees it.
    let (status, text) = f.call("GET", "/metrics", None, None).await?;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap_or_default().to_owned();
    for line in [
        "hearth_cool_demand 1",
        "hearth_heat_demand 0",
        "hearth_relay_on{host=\"relay1\",output=\"cool\",function=\"cool\"} 1",
        "hearth_sensor_temperature_celsius{sensor=\"1058F50F01080047\",name=\"some_alias\"} 27",
        "hearth_readings_committed_total 1",
        "# TYPE hearth_relay_commands_total counter",
        // Every stored settings and decision row read back.
        "hearth_stored_rows_unreadable_total 0",
        // Retention is not running in this test: nothing deleted.
        "hearth_retention_deleted_rows_total{table=\"readings\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert!(text.contains("hearth_decision_info{reason_code=\"cool_above_band\""), "{text}");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(22.0)))).await?;
    decision_where(&f, "cool off", |d| d["cool"] == false && d["reason_code"] == "cool_below_band")
        .await?;
    let closed = cool_run(&f, "the cool run closed", |r| !r["end"].is_null()).await?;
    assert_eq!(closed["start_temp_c"], 27.0, "{closed}");
    let _ = stop.send(true);
    control.await?;
    Ok(())
}

/// Home Assistant's generic_thermostat loses its min-cycle timer when a relay blips
/// (core#61050). Here the relay agent restarts while heating: the output falls back to off and
/// the agent re-registers. The engine follows the relay's report, not its own last command:
/// the minimum off time counts from the blip, so the furnace is not restarted at once.
#[tokio::test]
async fn min_off_time_holds_across_a_relay_blip() -> R {
    let f = fixture_with(&["--tick-s", "0.1"]).await?;
    let (url, outputs, mut commands) =
        relay_agent(Duration::from_secs(600), Stall::default()).await?;
    register(&f, &url, &outputs).await?;
    heat_to(&f, 20.0, 0, 600).await?;
    let (stop, control) = running_engine(&f).await;
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(18.0)))).await?;
    // The stand-in starts with heat off since "now": unknown history would be held too, so
    // wait for the first on (min off 600 s counts from the agent's report of 0 s ago)…
    let d = decision_where(&f, "held off at first", |d| d["reason_code"] == "min_off_time").await?;
    assert_eq!(d["heat"], false, "{d}");
    // …and make the off 20 minutes old, as if the furnace had rested long enough.
    if let Ok(mut map) = outputs.lock() {
        let now = tokio::time::Instant::now();
        let long_ago = now.checked_sub(Duration::from_secs(1200)).unwrap_or(now);
        map.insert("heat".into(), ("off".into(), long_ago));
    }
    register(&f, &url, &outputs).await?;
    // The cooling output is "off since the agent started" too, but cooling never ran: no
    // heat↔cool changeover delay holds the heat (it counts from the last real run).
    decision_where(&f, "heat on", |d| d["heat"] == true && d["reason_code"] == "heat_below_band")
        .await?;
    loop {
        if next_command(&mut commands).await? == "heat on" {
            break;
        }
    }
    // The blip: the agent restarts, its output is off since just now, and it re-registers.
    if let Ok(mut map) = outputs.lock() {
        map.insert("heat".into(), ("off".into(), tokio::time::Instant::now()));
    }
    register(&f, &url, &outputs).await?;
    let d = decision_where(&f, "held off after the blip", |d| d["reason_code"] == "min_off_time")
        .await?;
    assert_eq!(d["heat"], false, "{d}");
    assert!(d["reason"].as_str().is_some_and(|r| r.contains("min off")), "{d}");
    // From this decision on, the engine sends no "heat on" while the minimum off time runs
    // (a renewal sent before it, already on its way, is what the agent refused above).
    while commands.try_recv().is_ok() {}
    while let Ok(Some(c)) = tokio::time::timeout(Duration::from_millis(500), commands.recv()).await
    {
        assert_ne!(c, "heat on", "restarted the furnace right after the blip");
    }
    let _ = stop.send(true);
    control.await?;
    Ok(())
}

/// The same blip with the order made certain: the agent carries out a `heat on` and answers,
/// then restarts (heat off since now) and re-registers, and only then does the engine get the
/// answer. The answer speaks for the process that is gone: the engine keeps the
/// registration's "off since now" and holds the minimum off time.
#[tokio::test]
async fn an_answer_sent_before_a_restart_does_not_overwrite_the_registration() -> R {
    let f = fixture_with(&["--tick-s", "0.1"]).await?;
    let stall = Stall::default();
    let (release, stalled) = tokio::sync::oneshot::channel();
    if let Ok(mut s) = stall.lock() {
        *s = Some(stalled);
    }
    let (url, outputs, mut commands) = relay_agent(Duration::from_secs(600), stall).await?;
    // The heat has rested long enough: the first decision turns it on.
    if let Ok(mut map) = outputs.lock() {
        let now = tokio::time::Instant::now();
        map.insert(
            "heat".into(),
            ("off".into(), now.checked_sub(Duration::from_secs(1200)).unwrap_or(now)),
        );
    }
    register(&f, &url, &outputs).await?;
    heat_to(&f, 20.0, 0, 600).await?;
    let (stop, control) = running_engine(&f).await;
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(18.0)))).await?;
    // The agent has switched the heat on and answered; the answer waits.
    while next_command(&mut commands).await? != "heat on" {}
    // The agent restarts: heat off since now. It registers, and the registration is stored.
    if let Ok(mut map) = outputs.lock() {
        map.insert("heat".into(), ("off".into(), tokio::time::Instant::now()));
    }
    let got = register(&f, &url, &outputs).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    // Now the engine gets the old process's "on".
    let _ = release.send(());
    let d =
        decision_where(&f, "held off after the restart", |d| d["reason_code"] == "min_off_time")
            .await?;
    assert_eq!(d["heat"], false, "{d}");
    let relays = f.get("/v1/relays").await?;
    let heat = relays.as_array().and_then(|r| r.iter().find(|r| r["output_id"] == "heat"));
    assert_eq!(heat.map(|h| &h["state"]), Some(&json!("off")), "{relays}");
    // The engine commands from the registration: the next heat command is off, not a renewal.
    loop {
        let c = next_command(&mut commands).await?;
        if c.starts_with("heat ") {
            assert_eq!(c, "heat off", "the engine believed the old process's answer");
            break;
        }
    }
    let _ = stop.send(true);
    control.await?;
    Ok(())
}

/// After a start the engine derives what is in force now: a rule that began hours ago wins at
/// once, without waiting for an edge (Home Assistant core#133180).
#[tokio::test]
async fn the_rule_in_force_wins_right_after_a_start() -> R {
    let dir = tempfile::tempdir()?;
    let args = ["--tick-s", "0.1", "--time-zone", "UTC"];
    {
        let engine = Engine::open(&config(dir.path(), &args)?).await?;
        let f = Fixture { engine, _dir: tempfile::tempdir()? };
        let all = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
        // A block that started before now and ends after it, whatever the time of day.
        let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        let start =
            now.checked_sub(jiff::SignedDuration::from_hours(2))?.strftime("%H:%M").to_string();
        let end =
            now.checked_add(jiff::SignedDuration::from_hours(2))?.strftime("%H:%M").to_string();
        let rule = json!({"name": "Comfort", "when": {"type": "weekly", "days": all,
            "start": start, "end": end}, "heat_c": 23.5});
        let got =
            f.call("POST", "/v1/schedules", Some(&f.admin()), Some(&rule.to_string())).await?;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    }
    // A new engine on the same data dir: the first decision already follows the rule.
    let engine = Engine::open(&config(dir.path(), &args)?).await?;
    let f = Fixture { engine, _dir: dir };
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(21.0)))).await?;
    let (stop, control) = running_engine(&f).await;
    let d = decision_where(&f, "a decision", |d| !d.is_null()).await?;
    assert_eq!(d["rule"]["name"], "Comfort", "{d}");
    assert_eq!(d["heat_setpoint_c"], 23.5, "{d}");
    assert_eq!(d["heat"], true, "{d}");
    let _ = stop.send(true);
    control.await?;
    Ok(())
}

/// Readings and decisions arrive on `GET /v1/events` as Server-Sent Events.
#[tokio::test]
async fn events_stream_readings_and_decisions() -> R {
    let f = fixture_with(&["--tick-s", "0.1"]).await?;
    let resp = f
        .engine
        .router()
        .oneshot(Request::builder().uri("/v1/events").body(Body::empty())?)
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let (stop, control) = running_engine(&f).await;
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(18.5)))).await?;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !(text.contains("event: reading") && text.contains("event: decision")) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await?
            .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    let reading = text
        .lines()
        .skip_while(|l| *l != "event: reading")
        .nth(1)
        .and_then(|l| l.strip_prefix("data: "))
        .ok_or_else(|| anyhow::anyhow!("no reading data in {text}"))?;
    let reading: Value = serde_json::from_str(reading)?;
    assert_eq!(reading["type"], "reading");
    assert_eq!(reading["sensor_id"], "1058F50F01080047");
    assert_eq!(reading["value"], 18.5);
    let _ = stop.send(true);
    control.await?;
    Ok(())
}

/// `GET /v1/events`: the stream's body.
async fn events(f: &Fixture) -> R<Body> {
    let req = Request::builder().uri("/v1/events").body(Body::empty())?;
    Ok(f.engine.router().oneshot(req).await?.into_body())
}

/// The next SSE event of type `kind` from `body` (its JSON data), reading frames into `buf`.
pub(super) async fn next_event(
    body: &mut Body,
    buf: &mut String,
    kind: &str,
    deadline: tokio::time::Instant,
) -> R<Value> {
    loop {
        // Whole events end with a blank line.
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let mut lines = event.lines();
            if lines.next() == Some(&format!("event: {kind}")[..]) {
                let data = lines.find_map(|l| l.strip_prefix("data: "));
                return Ok(serde_json::from_str(data.unwrap_or("null"))?);
            }
        }
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .map_err(|_| anyhow::anyhow!("no {kind} event in time; unread: {buf}"))?
            .ok_or_else(|| anyhow::anyhow!("stream ended"))??;
        if let Ok(data) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&data));
        }
    }
}

/// A dashboard shows the decision's temperature beside its reason: a new temperature with the
/// same outcome and reason code is published as a decision too (recorded or not), and the
/// reason names the temperature as the dashboard rounds it (17.25 is 17.3, not 17.2).
#[tokio::test]
async fn every_new_temperature_is_published_with_its_decision() -> R {
    let f = fixture_with(&["--tick-s", "0.1"]).await?;
    let mut body = events(&f).await?;
    let mut buf = String::new();
    let (stop, control) = running_engine(&f).await;
    let cred = f.agent("pi");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    // Below the default 20 °C: heat on, below the band; then colder still, the same decision
    // but for the temperature.
    for (value, shown) in [(18.5, "18.5 °C"), (17.25, "17.3 °C"), (17.75, "17.8 °C")] {
        let body_text = update("pi", json!(value));
        let got = f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&body_text)).await?;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
        let d = loop {
            let ev = next_event(&mut body, &mut buf, "decision", deadline).await?;
            if ev["decision"]["effective_temp_c"] == json!(value) {
                break ev["decision"].clone();
            }
        };
        assert_eq!((&d["heat"], &d["reason_code"]), (&json!(true), &json!("heat_below_band")));
        let reason = d["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(&format!("some_alias {shown}")), "{value}: {reason}");
    }
    // Recorded once: the outcome and the reason code did not change with the temperature (a
    // first pass before the first reading may have recorded the sensor loss).
    let recorded = f.get("/v1/control/decisions").await?;
    let below = recorded.as_array().into_iter().flatten();
    let below = below.filter(|d| d["reason_code"] == "heat_below_band").count();
    assert_eq!(below, 1, "{recorded}");
    let _ = stop.send(true);
    control.await?;
    Ok(())
}
