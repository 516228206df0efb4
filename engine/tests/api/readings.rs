//! What readings the engine stores and where in time: the range a probe can report, agents
//! whose clocks are wrong (behind, ahead, absurd, corrected during an outage), and `/metrics`
//! saying what `GET /v1/sensors` says.

use axum::http::StatusCode;
use hearth_proto::Timestamp;
use jiff::SignedDuration;
use serde_json::{Value, json};

use super::{Fixture, R, assert_error, config, fixture, heat_to, raw, registration, serve};

const SENSOR: &str = "28-0316a2797bff";

fn live(host: &str, sensor: &str, value: f64, stamp: Timestamp, agent_time: Timestamp) -> String {
    json!({"host_id": host, "agent_time": agent_time.to_string(),
        "sensors": {sensor: {"type": "DS18B20", "value": value, "timestamp": stamp.to_string()}}})
    .to_string()
}

fn backlog(
    host: &str,
    sensor: &str,
    readings: &[(Timestamp, f64)],
    agent_time: Timestamp,
) -> String {
    let updates: Vec<Value> = readings
        .iter()
        .map(|(stamp, value)| {
            json!({"host_id": host, "sensors": {sensor:
                {"type": "DS18B20", "value": value, "timestamp": stamp.to_string()}}})
        })
        .collect();
    json!({"host_id": host, "updates": updates, "agent_time": agent_time.to_string()}).to_string()
}

/// Now, to the millisecond (what the engine stores).
fn now_ms() -> R<Timestamp> {
    Ok(Timestamp::from_millisecond(Timestamp::now().as_millisecond())?)
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

impl Fixture {
    async fn put(&self, path: &str, host: &str, body: &str) -> R<(StatusCode, Value)> {
        self.call("PUT", path, Some(&self.agent(host)), Some(body)).await
    }

    /// Every stored reading of `sensor` (raw, ten years around now) as (time, value).
    pub(super) async fn stored(&self, sensor: &str) -> R<Vec<(Timestamp, f64)>> {
        let page = self
            .get(&format!(
                "/v1/sensors/{sensor}/readings?from=2020-01-01T00:00:00Z&to=2029-12-31T00:00:00Z&max_points=10000"
            ))
            .await?;
        raw(&page)
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                Ok((
                    p["at"].as_str().unwrap_or_default().parse()?,
                    p["value"].as_f64().unwrap_or(f64::NAN),
                ))
            })
            .collect()
    }

    async fn sensor(&self, id: &str) -> R<Value> {
        let all = self.get("/v1/sensors").await?;
        all.as_array()
            .into_iter()
            .flatten()
            .find(|s| s["id"] == id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no sensor {id} in {all}"))
    }

    async fn agent_info(&self, host: &str) -> R<Value> {
        let all = self.get("/v1/agents").await?;
        all.as_array()
            .into_iter()
            .flatten()
            .find(|a| a["host_id"] == host)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no agent {host} in {all}"))
    }
}

/// The stored reading with `value`: its time.
fn time_of(stored: &[(Timestamp, f64)], value: f64) -> R<Timestamp> {
    let found: Vec<Timestamp> = stored.iter().filter(|r| r.1 == value).map(|r| r.0).collect();
    anyhow::ensure!(found.len() == 1, "{value} stored {} times: {stored:?}", found.len());
    Ok(found[0])
}

/// `got` within the jitter of a clock-offset measurement of `want`.
fn near(got: Timestamp, want: Timestamp) -> bool {
    got.duration_since(want).abs() < SignedDuration::from_secs(2)
}

#[tokio::test]
async fn only_values_a_probe_can_report_are_stored() -> R {
    let f = fixture().await?;
    let reading = |v: Value| {
        json!({"host_id": "h1", "sensors": {"28-a": {"type": "DS18B20", "value": v}}}).to_string()
    };
    for v in
        [json!(1e308), json!(-1e308), json!(-273.15), json!(-127), json!(125.0625), json!(-55.0625)]
    {
        let got = f.put("/v1/sensors/update", "h1", &reading(v.clone())).await?;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "sensors.28-a.value field must be -55 to 125 °C",
        );
        let body = json!({"host_id": "h1", "updates": [{"host_id": "h1", "sensors": {"28-a":
            {"type": "DS18B20", "value": v, "timestamp": "2026-01-01T00:00:00Z"}}}]});
        let got = f.put("/v1/sensors/backlog", "h1", &body.to_string()).await?;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "updates[0]: sensors.28-a.value",
        );
    }
    assert_eq!(f.get("/v1/sensors").await?, json!([]), "nothing of a refused report is stored");
    // The range's ends are readings; null is a failed one.
    for v in [json!(-55), json!(125), Value::Null] {
        assert_eq!(f.put("/v1/sensors/update", "h1", &reading(v)).await?.0, StatusCode::CREATED);
    }
    // The document says what the check enforces.
    let doc = f.get("/v1/openapi.json").await?;
    let value = &doc["components"]["schemas"]["SensorReport"]["properties"]["value"];
    assert_eq!((value["minimum"].as_f64(), value["maximum"].as_f64()), (Some(-55.0), Some(125.0)));
    Ok(())
}

#[tokio::test]
async fn an_absurd_agent_clock_never_moves_a_reading_by_centuries() -> R {
    let f = fixture().await?;
    let year_3000: Timestamp = "3000-01-01T00:00:00Z".parse()?;
    let now = now_ms()?;
    let got = f.put("/v1/sensors/update", "pi", &live("pi", SENSOR, 21.5, now, year_3000)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    // Re-timed by a 974-year offset it would be in the year 1053: stored as stamped instead.
    assert_eq!(f.stored(SENSOR).await?, [(now, 21.5)]);
    assert_eq!(f.sensor(SENSOR).await?["latest"]["at"], json!(now));
    // Its queued readings too, and the agent is flagged.
    let hour_ago = now.checked_sub(mins(60))?;
    let got = f
        .put("/v1/sensors/backlog", "pi", &backlog("pi", SENSOR, &[(hour_ago, 20.0)], year_3000))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    assert_eq!(f.stored(SENSOR).await?, [(hour_ago, 20.0), (now, 21.5)]);
    let agent = f.agent_info("pi").await?;
    assert_eq!(
        (&agent["clock_skewed"], &agent["misdated_readings"]),
        (&json!(true), &json!(2)),
        "{agent}"
    );
    assert!(agent["last_misdated"].is_string(), "{agent}");
    Ok(())
}

#[tokio::test]
async fn an_agent_clock_an_hour_ahead_loses_no_backlog() -> R {
    let f = fixture().await?;
    let ahead = |t: Timestamp| t.checked_add(mins(60));
    let now = now_ms()?;
    let got = f
        .put("/v1/sensors/update", "pi", &live("pi", SENSOR, 21.0, ahead(now)?, ahead(now)?))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    // Its outage backlog, read by the same clock 10, 9 and 8 minutes ago: stored, re-timed.
    let queued: Vec<(Timestamp, f64)> = [(10, 18.0), (9, 18.25), (8, 18.5)]
        .into_iter()
        .map(|(m, v)| Ok((ahead(now.checked_sub(mins(m))?)?, v)))
        .collect::<R<_>>()?;
    let body = backlog("pi", SENSOR, &queued, ahead(Timestamp::now())?);
    for _ in 0..2 {
        let got = f.put("/v1/sensors/backlog", "pi", &body).await?;
        assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    }
    let stored = f.stored(SENSOR).await?;
    assert_eq!(stored.len(), 4, "sent twice, stored once: {stored:?}");
    for (m, v) in [(10, 18.0), (9, 18.25), (8, 18.5), (0, 21.0)] {
        let at = time_of(&stored, v)?;
        assert!(
            near(at, now.checked_sub(mins(m))?),
            "{v} stored at {at}, read {m} min before {now}"
        );
    }
    let sensor = f.sensor(SENSOR).await?;
    assert_eq!((&sensor["latest"]["value"], &sensor["stale"]), (&json!(21.0), &json!(false)));
    let agent = f.agent_info("pi").await?;
    assert_eq!((&agent["clock_skewed"], &agent["misdated_readings"]), (&json!(true), &json!(0)));
    Ok(())
}

#[tokio::test]
async fn a_clock_five_minutes_ahead_never_freezes_the_latest() -> R {
    let f = fixture().await?;
    let ahead = |t: Timestamp| t.checked_add(mins(5));
    let now = now_ms()?;
    let got = f
        .put("/v1/sensors/update", "pi", &live("pi", SENSOR, 15.5, ahead(now)?, ahead(now)?))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    // The backlog of a short outage, replayed after the live reading: stamped up to 5 min
    // "ahead" of the engine, it must not become the latest.
    let queued: Vec<(Timestamp, f64)> = (1..=4)
        .map(|m: i32| Ok((ahead(now.checked_sub(mins(m.into()))?)?, 15.0 + f64::from(m) / 16.0)))
        .collect::<R<_>>()?;
    let got =
        f.put("/v1/sensors/backlog", "pi", &backlog("pi", SENSOR, &queued, ahead(now)?)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let sensor = f.sensor(SENSOR).await?;
    assert_eq!(sensor["latest"]["value"], 15.5, "{sensor}");
    // The room warms: the next live reading is the latest, at once, and never after now.
    let later = ahead(Timestamp::now())?;
    let got = f.put("/v1/sensors/update", "pi", &live("pi", SENSOR, 17.0625, later, later)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let sensor = f.sensor(SENSOR).await?;
    assert_eq!(sensor["latest"]["value"], 17.0625, "frozen: {sensor}");
    let at: Timestamp = sensor["latest"]["at"].as_str().unwrap_or_default().parse()?;
    assert!(at <= Timestamp::now(), "latest {at} is in the future");
    assert_eq!(f.stored(SENSOR).await?.len(), 6);
    Ok(())
}

#[tokio::test]
async fn a_backlog_read_before_the_clock_was_corrected_is_kept_and_flagged() -> R {
    let f = fixture().await?;
    let now = now_ms()?;
    let got = f.put("/v1/sensors/update", "pi", &live("pi", SENSOR, 19.0, now, now)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    // Read while the clock was an hour ahead; NTP has corrected it since.
    let queued: Vec<(Timestamp, f64)> = [(50, 18.0), (51, 18.125)]
        .into_iter()
        .map(|(m, v)| Ok((now.checked_add(mins(m))?, v)))
        .collect::<R<_>>()?;
    let got = f
        .put("/v1/sensors/backlog", "pi", &backlog("pi", SENSOR, &queued, Timestamp::now()))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED, "refused as from the future: {}", got.1);
    let stored = f.stored(SENSOR).await?;
    assert_eq!(stored, [(now, 19.0), queued[0], queued[1]], "kept as received");
    let sensor = f.sensor(SENSOR).await?;
    assert_eq!((&sensor["latest"]["value"], &sensor["latest"]["at"]), (&json!(19.0), &json!(now)));
    let agent = f.agent_info("pi").await?;
    assert_eq!((&agent["clock_skewed"], &agent["misdated_readings"]), (&json!(false), &json!(2)));
    // A third-party sensor without agent_time, its clock in 2999: stored, never the latest.
    let far = json!({"host_id": "pi", "sensors": {"28-b": {"type": "x", "value": 1.0,
        "timestamp": "2999-01-01T00:00:00Z"}}});
    let got = f.put("/v1/sensors/update", "pi", &far.to_string()).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let b = f.sensor("28-b").await?;
    assert_eq!((&b["latest"], &b["stale"]), (&Value::Null, &json!(true)), "{b}");
    assert_eq!(f.agent_info("pi").await?["misdated_readings"], 3);
    Ok(())
}

#[tokio::test]
async fn metrics_say_what_the_sensor_list_says() -> R {
    let f = fixture().await?;
    let body = json!({"host_id": "h1", "sensors": {"28-a": {"type": "DS18B20", "value": 20.0,
        "alias": "hall probe"}}});
    assert_eq!(f.put("/v1/sensors/update", "h1", &body.to_string()).await?.0, StatusCode::CREATED);
    let settings = r#"{"name": "Hall", "weight": 1, "offset_c": -1.5}"#;
    let got = f.call("PUT", "/v1/sensors/28-a/settings", Some(&f.admin()), Some(settings)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let sensor = f.sensor("28-a").await?;
    assert_eq!((&sensor["latest"]["value"], &sensor["name"]), (&json!(18.5), &json!("Hall")));
    let (status, text) = f.call("GET", "/metrics", None, None).await?;
    assert_eq!(status, StatusCode::OK);
    let text = text.as_str().unwrap_or_default();
    let line = "hearth_sensor_temperature_celsius{sensor=\"28-a\",name=\"Hall\"} 18.5";
    assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    Ok(())
}

/// A relay agent whose heat output has been on for two hours, by its own reports.
async fn furnace_on_for_two_hours() -> R<String> {
    let heat = json!({"id": "heat", "name": "Furnace", "state": "on", "safe_state": "off",
        "function_hint": "heat", "lease_remaining_s": 100.0, "changed_s_ago": 7200.0,
        "cycles": 1});
    let list = json!({"host_id": "relay1", "outputs": [heat.clone()]});
    let app = axum::Router::new()
        .route("/v1/relays", axum::routing::get(move || async move { axum::Json(list) }))
        .route("/v1/relays/{id}", axum::routing::post(move || async move { axum::Json(heat) }));
    serve(app).await
}

#[tokio::test]
async fn a_probe_stuck_while_the_furnace_runs_is_left_out_until_it_moves() -> R {
    let dir = tempfile::tempdir()?;
    let engine = hearth_engine::Engine::open(&config(dir.path(), &["--tick-s", "0.1"])?).await?;
    let f = Fixture { engine, _dir: dir };
    let url = furnace_on_for_two_hours().await?;
    let got = f
        .call(
            "POST",
            "/v1/relays/register",
            Some(&f.agent("relay1")),
            Some(&registration("relay1", &url)),
        )
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    heat_to(&f, 21.0, 0, 0).await?;
    // The probe has said 18.5 °C for two hours, while the furnace ran.
    let now = now_ms()?;
    let two_hours_ago = now.checked_sub(mins(120))?;
    let reading = |at: Timestamp, v: f64| {
        json!({"host_id": "pi", "sensors": {SENSOR: {"type": "DS18B20", "value": v,
            "timestamp": at.to_string()}}})
        .to_string()
    };
    for at in [two_hours_ago, now] {
        assert_eq!(
            f.put("/v1/sensors/update", "pi", &reading(at, 18.5)).await?.0,
            StatusCode::CREATED
        );
    }
    assert_eq!(f.sensor(SENSOR).await?["value_since"], json!(two_hours_ago));

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let control = f.engine.spawn_control(stop_rx);
    let input = |d: &Value| d["decision"]["sensors"].as_array().and_then(|s| s.first()).cloned();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let view = loop {
        let view = f.get("/v1/control").await?;
        if input(&view).is_some_and(|i| i["excluded"] == "stuck") {
            break view;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never stuck: {view}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let detail = input(&view).map(|i| i["detail"].clone()).unwrap_or_default();
    assert!(
        detail.as_str().is_some_and(|d| d.starts_with("stuck: 18.5 °C unchanged for 2 h")
            && d.contains("while the heating ran")),
        "{detail}"
    );
    // The only sensor: sensor-loss mode, which says why, instead of heating without end.
    let code = view["decision"]["reason_code"].as_str().unwrap_or_default();
    assert!(code.starts_with("sensor_loss"), "{view}");
    let sensor = f.sensor(SENSOR).await?;
    assert_eq!((&sensor["stuck"], &sensor["stale"]), (&json!(true), &json!(false)), "{sensor}");

    // It moves: counted again.
    let moved = reading(now_ms()?, 18.5625);
    assert_eq!(f.put("/v1/sensors/update", "pi", &moved).await?.0, StatusCode::CREATED);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let view = f.get("/v1/control").await?;
        if input(&view).is_some_and(|i| i["used"] == true) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never used again: {view}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(f.sensor(SENSOR).await?["stuck"], false);
    let _ = stop_tx.send(true);
    control.await?;
    Ok(())
}
