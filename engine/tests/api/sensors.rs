//! Sensor settings (`PUT /v1/sensors/{id}/settings`): names, default weights, calibration; and
//! `GET /v1/auth`.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{R, assert_error, fixture, raw};

fn reading(sensor: &str, value: f64) -> String {
    json!({"host_id": "h1", "sensors": {sensor: {"type": "DS18B20", "value": value,
        "alias": "lounge probe"}}})
    .to_string()
}

#[tokio::test]
async fn sensor_settings_name_weight_and_calibrate() -> R {
    let f = fixture().await?;
    let agent = f.agent("h1");
    let got =
        f.call("PUT", "/v1/sensors/update", Some(&agent), Some(&reading("28-a", 20.0))).await?;
    assert_eq!(got.0, StatusCode::CREATED);
    let path = "/v1/sensors/28-a/settings";
    let good = r#"{"name": " Living room ", "weight": 2, "offset_c": -0.5}"#;
    let before = f.get("/v1/sensors").await?;

    // Refused without the admin credential, with an agent's, for an unknown sensor, and for
    // every bad field; nothing changes.
    assert_error(
        &f.call("PUT", path, None, Some(good)).await?,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "credential required",
    );
    assert_error(
        &f.call("PUT", path, Some(&agent), Some(good)).await?,
        StatusCode::FORBIDDEN,
        "forbidden",
        "admin",
    );
    let admin = f.admin();
    assert_error(
        &f.call("PUT", "/v1/sensors/28-nope/settings", Some(&admin), Some(good)).await?,
        StatusCode::NOT_FOUND,
        "not_found",
        "no sensor \"28-nope\"",
    );
    let long = "x".repeat(65);
    let bad = [
        (json!({"name": null, "weight": -1, "offset_c": 0}), "weight field must be 0 to 10"),
        (json!({"name": null, "weight": 11, "offset_c": 0}), "weight field must be 0 to 10"),
        (json!({"name": null, "weight": 1, "offset_c": 10.5}), "offset_c field must be -10 to 10"),
        (json!({"name": long, "weight": 1, "offset_c": 0}), "at most 64 characters"),
        (json!({"name": "a\u{7}b", "weight": 1, "offset_c": 0}), "control characters"),
        (json!({"name": null, "offset_c": 0}), "weight"),
        (json!({"name": null, "weight": "1", "offset_c": 0}), "weight"),
    ];
    for (body, text) in bad {
        let got = f.call("PUT", path, Some(&admin), Some(&body.to_string())).await?;
        assert!(got.0.is_client_error(), "{body}: {got:?}");
        let msg = got.1["error"].as_str().unwrap_or_default();
        assert!(msg.contains(text), "{body}: {msg:?} lacks {text:?}");
    }
    let got = f.call("PUT", path, Some(&admin), Some("{not json")).await?;
    assert_eq!(got.0, StatusCode::BAD_REQUEST);
    assert_eq!(f.get("/v1/sensors").await?, before, "refusals changed nothing");

    // Accepted: the name is trimmed, the reading served calibrated, the raw one kept.
    let (status, sensor) = f.call("PUT", path, Some(&admin), Some(good)).await?;
    assert_eq!(status, StatusCode::OK, "{sensor}");
    assert_eq!(
        (&sensor["name"], &sensor["weight"], &sensor["offset_c"], &sensor["alias"]),
        (&json!("Living room"), &json!(2.0), &json!(-0.5), &json!("lounge probe"))
    );
    assert_eq!(sensor["latest"]["value"], 19.5);
    assert_eq!(f.get("/v1/sensors").await?[0], sensor);
    let page = f.get("/v1/sensors/28-a/readings").await?;
    assert_eq!(raw(&page)[0]["value"], 19.5, "history is served calibrated");

    // A new reading: still calibrated; the stored value is what the probe said.
    let got =
        f.call("PUT", "/v1/sensors/update", Some(&agent), Some(&reading("28-a", 21.0))).await?;
    assert_eq!(got.0, StatusCode::CREATED);
    assert_eq!(f.get("/v1/sensors").await?[0]["latest"]["value"], 20.5);
    let readings: Vec<Value> =
        raw(&f.get("/v1/sensors/28-a/readings").await?).as_array().cloned().unwrap_or_default();
    assert_eq!(
        readings.iter().map(|r| r["value"].clone()).collect::<Vec<_>>(),
        [json!(19.5), json!(20.5)]
    );

    // A null name shows the alias again; offset 0 serves the raw value.
    let (status, sensor) = f
        .call("PUT", path, Some(&admin), Some(r#"{"name": null, "weight": 1, "offset_c": 0}"#))
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&sensor["name"], &sensor["latest"]["value"]), (&Value::Null, &json!(21.0)));
    Ok(())
}

#[tokio::test]
async fn whoami_names_the_credential_without_changing_anything() -> R {
    let f = fixture().await?;
    let who = |auth: Option<String>| {
        let f = &f;
        async move { f.call("GET", "/v1/auth", auth.as_deref(), None).await }
    };
    assert_eq!(who(None).await?, (StatusCode::OK, json!({"role": "anonymous"})));
    assert_eq!(who(Some(f.admin())).await?, (StatusCode::OK, json!({"role": "admin"})));
    assert_eq!(
        who(Some(f.agent("pi-1"))).await?,
        (StatusCode::OK, json!({"role": "agent", "host_id": "pi-1", "key_role": "both"}))
    );
    assert_error(
        &who(Some("admin.00".into())).await?,
        StatusCode::FORBIDDEN,
        "forbidden",
        "wrong credential",
    );
    assert_error(
        &who(Some("nodot".into())).await?,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "malformed",
    );
    Ok(())
}
