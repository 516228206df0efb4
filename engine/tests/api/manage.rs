//! Agents managed from the engine: desired settings, what the agent applied or refused, and
//! commands with their results; admin only for people's side, the host's own key for the
//! agent's side.

use axum::http::StatusCode;
use hearth_proto::agents::KeyRole;
use serde_json::{Value, json};

use super::{R, assert_error, authorization, fixture, serve, update};

#[tokio::test]
async fn settings_reach_the_report_answer_and_the_applied_state_is_shown() -> R {
    let f = fixture().await?;
    let agent = f.agent("hall");
    // Nothing set: the seed contract's answer, unchanged.
    let (s, ack) = f
        .call("PUT", "/v1/sensors/update", Some(&agent), Some(&update("hall", json!(20.5))))
        .await?;
    assert_eq!(s, StatusCode::CREATED, "{ack}");
    assert!(ack.get("pending").is_none(), "{ack}");

    let body = json!({"sensor": {"interval_s": 2}}).to_string();
    for refused in [Some(agent.as_str()), None] {
        let (s, _) = f.call("PUT", "/v1/agents/hall/settings", refused, Some(&body)).await?;
        assert!(matches!(s, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED), "{s}");
    }
    let bad = json!({"sensor": {"interval_s": 0}}).to_string();
    let got = f.call("PUT", "/v1/agents/hall/settings", Some(&f.admin()), Some(&bad)).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "sensor.interval_s");
    let typo = json!({"sensor": {"interval": 2}}).to_string();
    let got = f.call("PUT", "/v1/agents/hall/settings", Some(&f.admin()), Some(&typo)).await?;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    assert_eq!(f.get("/v1/agents/hall/settings").await?["revision"], 0);

    let (s, set) = f.call("PUT", "/v1/agents/hall/settings", Some(&f.admin()), Some(&body)).await?;
    assert_eq!(s, StatusCode::OK, "{set}");
    assert_eq!((set["revision"].clone(), set["set_by"].clone()), (json!(1), json!("admin")));
    let (_, ack) = f
        .call("PUT", "/v1/sensors/update", Some(&agent), Some(&update("hall", json!(20.5))))
        .await?;
    assert_eq!(ack["pending"], json!({"settings_revision": 1, "commands": 0}), "{ack}");

    let applied = json!({"agent": "sensor", "revision": 1, "in_force": {"sensor": {"interval_s": 10}},
        "refused": [{"field": "sensor.interval_s", "reason": "below the local minimum of 5 s"}]});
    // What an agent reports is held to the same bounds (the schema says so).
    let wrong =
        json!({"agent": "sensor", "revision": 1, "in_force": {"sensor": {"interval_s": 0}}});
    let got = f
        .call("PUT", "/v1/agents/hall/settings/applied", Some(&agent), Some(&wrong.to_string()))
        .await?;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        "in_force.sensor.interval_s",
    );
    let ahead = json!({"agent": "sensor", "revision": 2, "in_force": {}});
    let got = f
        .call("PUT", "/v1/agents/hall/settings/applied", Some(&agent), Some(&ahead.to_string()))
        .await?;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        "revision must be at most 1",
    );
    let other = f.agent("kitchen");
    let (s, _) = f
        .call("PUT", "/v1/agents/hall/settings/applied", Some(&other), Some(&applied.to_string()))
        .await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, state) = f
        .call("PUT", "/v1/agents/hall/settings/applied", Some(&agent), Some(&applied.to_string()))
        .await?;
    assert_eq!(s, StatusCode::OK, "{state}");
    let state = f.get("/v1/agents/hall/settings").await?;
    assert_eq!(
        state["applied"][0]["refused"][0]["reason"], "below the local minimum of 5 s",
        "{state}"
    );
    assert_eq!(state["applied"][0]["in_force"]["sensor"]["interval_s"], 10.0, "{state}");
    Ok(())
}

#[tokio::test]
async fn commands_round_trip_for_the_admin_only() -> R {
    let f = fixture().await?;
    let sensor_key = f.engine.device_key("hall", KeyRole::Sensor).agent_credential("hall");
    let ask = |c: &str| json!({"agent": "sensor", "command": c}).to_string();
    let (s, _) = f
        .call("POST", "/v1/agents/hall/commands", Some(&sensor_key), Some(&ask("diagnostics")))
        .await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, cmd) = f
        .call("POST", "/v1/agents/hall/commands", Some(&f.admin()), Some(&ask("diagnostics")))
        .await?;
    assert_eq!(s, StatusCode::CREATED, "{cmd}");
    assert_eq!((cmd["state"].clone(), cmd["asked_by"].clone()), (json!("pending"), json!("admin")));
    let id = cmd["id"].as_i64().unwrap_or_default();
    let (_, ack) = f
        .call("PUT", "/v1/sensors/update", Some(&sensor_key), Some(&update("hall", json!(20.0))))
        .await?;
    assert_eq!(ack["pending"]["commands"], 1, "{ack}");
    let pending = f.get("/v1/agents/hall/commands?agent=sensor&state=pending").await?;
    assert_eq!(pending.as_array().map(Vec::len), Some(1), "{pending}");

    let path = format!("/v1/agents/hall/commands/{id}");
    let relay_key = f.engine.device_key("hall", KeyRole::Relay).agent_credential("hall");
    let delivered = json!({"state": "delivered"}).to_string();
    let (s, _) = f.call("PUT", &path, Some(&relay_key), Some(&delivered)).await?;
    assert_eq!(s, StatusCode::FORBIDDEN, "a relay key may not act for the sensor agent");
    let (s, _) = f.call("PUT", &path, Some(&f.admin()), Some(&delivered)).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = f.call("PUT", &path, Some(&sensor_key), Some(&delivered)).await?;
    assert_eq!(s, StatusCode::OK);
    let (_, ack) = f
        .call("PUT", "/v1/sensors/update", Some(&sensor_key), Some(&update("hall", json!(20.0))))
        .await?;
    assert!(ack.get("pending").is_none(), "nothing waits any more: {ack}");
    let done = json!({"state": "done", "message": "ok", "result": {"queue_depth": 0}}).to_string();
    let (s, cmd) = f.call("PUT", &path, Some(&sensor_key), Some(&done)).await?;
    assert_eq!((s, cmd["result"]["queue_depth"].clone()), (StatusCode::OK, json!(0)), "{cmd}");
    let got = f.call("PUT", &path, Some(&sensor_key), Some(&done)).await?;
    assert_error(&got, StatusCode::CONFLICT, "conflict", "already done");
    let got = f.call("PUT", "/v1/agents/hall/commands/999", Some(&sensor_key), Some(&done)).await?;
    assert_eq!(got.0, StatusCode::NOT_FOUND);
    let bad = json!({"state": "done", "message": "a\nb"}).to_string();
    let got = f.call("PUT", &path, Some(&sensor_key), Some(&bad)).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "message");

    let list: Value = f.get("/v1/agents/hall/commands").await?;
    assert_eq!(list[0]["state"], "done", "{list}");
    let got = f.call("GET", "/v1/agents/hall/commands?limit=0", None, None).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "limit");
    Ok(())
}

/// The relay section: the engine's bounds, each 422 naming the field; admin only; the
/// registration's answer says what waits, and a registered relay agent is told at once.
#[tokio::test]
async fn relay_settings_are_checked_by_field_and_the_agent_is_told() -> R {
    let f = fixture().await?;
    // A relay agent stand-in on a real socket that records the nudges it gets.
    let (tx, mut nudges) = tokio::sync::mpsc::unbounded_channel::<(Option<String>, Value)>();
    let app = axum::Router::new().route(
        hearth_proto::manage::PENDING_PATH,
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(p): axum::Json<Value>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((authorization(&headers), p.clone()));
                    axum::Json(p)
                }
            },
        ),
    );
    let url = serve(app).await?;
    let relay = f.engine.device_key("boiler-pi", KeyRole::Relay).agent_credential("boiler-pi");
    let registration = json!({"host_id": "boiler-pi", "url": url, "outputs": [
        {"id": "boiler", "name": "Boiler", "state": "off", "safe_state": "off",
         "function_hint": "heat", "lease_remaining_s": null}]})
    .to_string();
    let (s, ack) = f.call("POST", "/v1/relays/register", Some(&relay), Some(&registration)).await?;
    assert_eq!(s, StatusCode::OK, "{ack}");
    assert!(ack.get("pending").is_none(), "nothing set: nothing said, {ack}");

    let path = "/v1/agents/boiler-pi/settings";
    let admin = f.admin();
    for (body, field) in [
        (
            json!({"relay": {"outputs": {"boiler": {"min_on_s": -1}}}}),
            "relay.outputs.boiler.min_on_s",
        ),
        (
            json!({"relay": {"outputs": {"boiler": {"min_on_s": "60"}}}}),
            "relay.outputs.boiler.min_on_s",
        ),
        (
            json!({"relay": {"outputs": {"boiler": {"min_off_s": 1.5}}}}),
            "relay.outputs.boiler.min_off_s",
        ),
        (
            json!({"relay": {"outputs": {"boiler": {"min_off_s": 14401}}}}),
            "relay.outputs.boiler.min_off_s",
        ),
        (
            json!({"relay": {"outputs": {"boiler": {"max_on_s": 0}}}}),
            "relay.outputs.boiler.max_on_s",
        ),
        (json!({"relay": {"outputs": {"boiler": 60}}}), "relay.outputs.boiler"),
        (json!({"relay": {"outputs": {"bad id": {"min_on_s": 60}}}}), "relay.outputs"),
        (json!({"relay": {"outputs": {"boiler": {"min_on": 60}}}}), "min_on"),
    ] {
        let got = f.call("PUT", path, Some(&admin), Some(&body.to_string())).await?;
        assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", got.1);
        let error = got.1["error"].as_str().unwrap_or_default();
        assert!(error.contains(field), "{body}: {error:?} names {field}");
    }
    let good = json!({"relay": {"outputs": {"boiler": {"min_off_s": 600, "max_on_s": 3600}}}});
    for refused in [Some(relay.as_str()), None] {
        let (s, _) = f.call("PUT", path, refused, Some(&good.to_string())).await?;
        assert!(matches!(s, StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED), "{s}");
    }
    assert_eq!(f.get(path).await?["revision"], 0, "nothing refused was stored");

    let (s, set) = f.call("PUT", path, Some(&admin), Some(&good.to_string())).await?;
    assert_eq!(s, StatusCode::OK, "{set}");
    let (auth, pending) = tokio::time::timeout(std::time::Duration::from_secs(10), nudges.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no nudge"))?;
    assert_eq!(pending, json!({"settings_revision": 1, "commands": 0}));
    let engine_token = f.engine.device_key("boiler-pi", KeyRole::Relay).engine_credential();
    assert_eq!(auth, Some(format!("Bearer {engine_token}")), "the engine's own credential");

    let ask = json!({"agent": "relay", "command": "rescan"}).to_string();
    let (s, cmd) =
        f.call("POST", "/v1/agents/boiler-pi/commands", Some(&admin), Some(&ask)).await?;
    assert_eq!(s, StatusCode::CREATED, "a relay agent answers a rescan too: {cmd}");
    let (_, pending) = tokio::time::timeout(std::time::Duration::from_secs(10), nudges.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("no nudge"))?;
    assert_eq!(pending, json!({"settings_revision": 1, "commands": 1}));
    let (_, ack) = f.call("POST", "/v1/relays/register", Some(&relay), Some(&registration)).await?;
    assert_eq!(ack["pending"], json!({"settings_revision": 1, "commands": 1}), "{ack}");

    // The agent's report, its local values too, is held to the bounds the engine serves it
    // under: a local max_on_s beyond them is refused, naming the field, and nothing is stored.
    let report = |max_on_s: u32| {
        json!({"agent": "relay", "revision": 1,
            "in_force": {"relay": {"outputs": {"boiler": {"min_on_s": 120, "min_off_s": 600, "max_on_s": 3600}}}},
            "local": {"relay": {"outputs": {"boiler": {"min_on_s": 120, "min_off_s": 120, "max_on_s": max_on_s}}}},
            "refused": []})
        .to_string()
    };
    let put = "/v1/agents/boiler-pi/settings/applied";
    let got = f.call("PUT", put, Some(&relay), Some(&report(86_400))).await?;
    assert_error(
        &got,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_field",
        "local.relay.outputs.boiler.max_on_s",
    );
    // 0 is no maximum, which a report says by leaving it out.
    let got = f.call("PUT", put, Some(&relay), Some(&report(0))).await?;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    let (s, state) = f.call("PUT", put, Some(&relay), Some(&report(7_200))).await?;
    assert_eq!(s, StatusCode::OK, "{state}");
    let state = f.get(path).await?;
    assert_eq!(state["applied"][0]["local"]["relay"]["outputs"]["boiler"]["max_on_s"], 7200);
    assert_eq!(state["applied"][0]["in_force"]["relay"]["outputs"]["boiler"]["min_off_s"], 600);
    Ok(())
}

/// Each sensor-agent setting beyond the interval is bounded: a malformed value is a 422 naming
/// its path in the document, and nothing changes; a document within the bounds is stored whole.
#[tokio::test]
async fn sensor_settings_are_bounded_field_by_field() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    let put = |body: Value| {
        let f = &f;
        let admin = admin.clone();
        async move {
            f.call("PUT", "/v1/agents/hall/settings", Some(&admin), Some(&body.to_string())).await
        }
    };
    let long = "x".repeat(257);
    for (bad, named) in [
        (json!({"resolution_bits": 8}), "sensor.resolution_bits"),
        (json!({"resolution_bits": 13}), "sensor.resolution_bits"),
        (json!({"sensors": {"28-0000": {"offset_c": 5.5}}}), "sensor.sensors.28-0000.offset_c"),
        (json!({"sensors": {"28-0000": {"offset_c": -7}}}), "sensor.sensors.28-0000.offset_c"),
        (json!({"sensors": {"28-0000": {"alias": long}}}), "sensor.sensors.28-0000.alias"),
        (json!({"sensors": {"a/b": {"enabled": false}}}), "sensor.sensors"),
        (json!({"sensors": {"": {"enabled": false}}}), "sensor.sensors"),
        (json!({"sensors": {"28-A": {}, "28-a": {}}}), "sensor.sensors"),
        (json!({"screen": {"max_rate_c_per_min": 0}}), "sensor.screen.max_rate_c_per_min"),
        (json!({"screen": {"max_rate_c_per_min": 101}}), "sensor.screen.max_rate_c_per_min"),
        (json!({"screen": {"step_rejections": 1001}}), "sensor.screen.step_rejections"),
    ] {
        let got = put(json!({"sensor": bad})).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", named);
    }
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("28-{i:04}"), json!({"enabled": true}))).collect();
    let got = put(json!({"sensor": {"sensors": many}})).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "at most 64 sensors");
    // Wrong types and unknown keys, at every level.
    for bad in [
        json!({"resolution_bits": "12"}),
        json!({"sensors": {"28-0000": {"enabled": "no"}}}),
        json!({"sensors": {"28-0000": {"offset": 1}}}),
        json!({"screen": {"rate": 1}}),
    ] {
        let got = put(json!({"sensor": bad})).await?;
        assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {}", got.1);
    }
    assert_eq!(f.get("/v1/agents/hall/settings").await?["revision"], 0, "nothing was stored");

    let good = json!({"sensor": {"resolution_bits": 9,
        "sensors": {"28-0000": {"enabled": false, "alias": "hall", "offset_c": -5.0}},
        "screen": {"max_rate_c_per_min": 2.5, "step_rejections": 0}}});
    let (s, set) = put(good.clone()).await?;
    assert_eq!(s, StatusCode::OK, "{set}");
    assert_eq!(set["desired"], good, "stored as sent");
    Ok(())
}
