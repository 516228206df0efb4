//! Typos and impossible values in request bodies: refused with 422 naming the field, never
//! accepted with a 200 that changes nothing.

use super::*;

/// `{id}` path parameters as numbers (the schedule rules', the agents' commands), the others
/// as plain ids.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{id}" if path.starts_with("/v1/schedules") || path.starts_with("/v1/agents") => {
                "1".to_owned()
            }
            s if s.starts_with('{') => "x1".to_owned(),
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every operation of the OpenAPI document that takes a body refuses a field it does not know,
/// naming it. Walks the document, so a route added later is covered without a new test.
#[tokio::test]
async fn every_request_body_refuses_unknown_fields() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    let doc = serde_json::to_value(hearth_engine::openapi())?;
    let mut checked = Vec::new();
    for (path, ops) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in ops.as_object().into_iter().flatten() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let method = method.to_uppercase();
            let got =
                f.call(&method, &concrete(path), Some(&admin), Some(r#"{"zzz_typo": 5}"#)).await?;
            assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{method} {path}: {}", got.1);
            assert_eq!(got.1["code"], "invalid_field", "{method} {path}: {}", got.1);
            let msg = got.1["error"].as_str().unwrap_or_default();
            assert!(msg.contains("zzz_typo"), "{method} {path}: {msg:?} does not name the field");
            checked.push(format!("{method} {path}"));
        }
    }
    assert!(checked.len() >= 10, "only {checked:?}");
    // The schema says so too: a client (or a request generator) learns that bodies are closed.
    for name in ["ControlSettings", "SensorSettings", "RelayRegistration", "OutputStatus"] {
        let schema = &doc["components"]["schemas"][name];
        assert_eq!(schema["additionalProperties"], false, "{name}: {schema}");
    }
    Ok(())
}

/// Every operation that takes a body answers a body of another content type with a status its
/// document lists (a 415 where the route checks the type): the document's list of routes that
/// check it is held to what the routes do, so a new body route cannot forget its 415.
#[tokio::test]
async fn every_request_body_of_another_type_gets_a_documented_status() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    let doc = serde_json::to_value(hearth_engine::openapi())?;
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in ops.as_object().into_iter().flatten() {
            if op.get("requestBody").is_none() {
                continue;
            }
            let req = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(concrete(path))
                .header("authorization", format!("Bearer {admin}"))
                .header("content-type", "text/plain")
                .body(Body::from(r#"{"zzz_typo": 5}"#))?;
            let status = f.engine.router().oneshot(req).await?.status();
            let documented = &op["responses"][status.as_str()];
            assert!(!documented.is_null(), "{method} {path}: {status} is not documented");
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} body routes");
    Ok(())
}

/// Every operation that takes a body refuses a JSON array with a 4xx (serde reads a struct
/// from a sequence too: `[null, null]` was stored as empty agent settings, found by the
/// contract test), and a refused body changes nothing.
#[tokio::test]
async fn every_request_body_that_is_not_an_object_is_refused() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    let doc = serde_json::to_value(hearth_engine::openapi())?;
    let before = f.get("/v1/agents/x1/settings").await?;
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in ops.as_object().into_iter().flatten() {
            if op.get("requestBody").is_none() {
                continue;
            }
            for body in
                ["[null, null]", "[]", "null", "7", r#"{"sensor": {"screen": [null, null]}}"#]
            {
                let req = Request::builder()
                    .method(method.to_uppercase().as_str())
                    .uri(concrete(path))
                    .header("authorization", format!("Bearer {admin}"))
                    .header("content-type", "application/json")
                    .body(Body::from(body))?;
                let status = f.engine.router().oneshot(req).await?.status();
                assert!(status.is_client_error(), "{method} {path} took {body}: {status}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} body routes");
    assert_eq!(f.get("/v1/agents/x1/settings").await?, before);
    Ok(())
}

#[tokio::test]
async fn a_typo_in_the_control_settings_changes_nothing() -> R {
    let f = fixture().await?;
    let before = f.get("/v1/control").await?["settings"].clone();
    let got = f
        .call("PUT", "/v1/control/settings", Some(&f.admin()), Some(r#"{"frost_floor": 5}"#))
        .await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "frost_floor");
    assert_eq!(f.get("/v1/control").await?["settings"], before);
    Ok(())
}

#[tokio::test]
async fn nested_typos_are_named_by_their_path() -> R {
    let f = fixture().await?;
    let cred = f.agent("pi");
    // A sensor update: at the top and inside a reading.
    let body = json!({"host_id": "pi", "sensors": {"28-01": {"type": "DS18B20", "value": 20.0}},
        "agent_tim": "2026-01-01T00:00:00Z"});
    let got = f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&body.to_string())).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "agent_tim field");
    let body = json!({"host_id": "pi", "sensors": {"28-01": {"type": "DS18B20", "value": 20.0,
        "timestamp": "2026-01-01T00:00:00Z", "alais": "hall"}}});
    let got = f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&body.to_string())).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "sensors.28-01.alais");
    let backlog = json!({"host_id": "pi", "updates": [{"host_id": "pi", "sensors": {"28-01":
        {"type": "DS18B20", "value": 20.0, "timestmp": "2026-01-01T00:00:00Z"}}}]});
    let got = f.call("PUT", "/v1/sensors/backlog", Some(&cred), Some(&backlog.to_string())).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "timestmp");
    assert_eq!(f.get("/v1/sensors").await?, json!([]));

    // A relay registration: inside an output.
    let relay = f.agent("relay1");
    let mut reg: Value = serde_json::from_str(&registration("relay1", "http://10.0.0.7:8081"))?;
    reg["outputs"][0]["cycels"] = json!(3);
    let got = f.call("POST", "/v1/relays/register", Some(&relay), Some(&reg.to_string())).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "cycels");
    assert_eq!(f.get("/v1/relays").await?, json!([]));

    // A sensor's settings.
    let got = f
        .call(
            "PUT",
            "/v1/sensors/28-01/settings",
            Some(&f.admin()),
            Some(r#"{"name": "Hall", "weight": 1, "offset_c": 0, "ofset_c": -1.5}"#),
        )
        .await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "ofset_c");
    Ok(())
}

#[tokio::test]
async fn impossible_schedules_are_refused() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    let rule = |when: Value| json!({"name": "r", "when": when, "heat_c": 20}).to_string();
    let cases = [
        (
            rule(json!({"type": "weekly", "days": ["monday", "friday", "monday"],
                "start": "06:00", "end": "07:00"})),
            "when.days[2] field names monday a second time",
        ),
        (
            rule(json!({"type": "exception", "date": "0000-01-01"})),
            "when.date field must be in the years",
        ),
        (rule(json!({"type": "exception", "date": "9999-12-31"})), "years 2000 to 2999"),
        (
            rule(
                json!({"type": "vacation", "start": "0000-01-01T00:00", "end": "0000-01-02T00:00"}),
            ),
            "when.start field must be in the years 2000 to 2999",
        ),
    ];
    for (body, msg) in cases {
        let got = f.call("POST", "/v1/schedules", Some(&admin), Some(&body)).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", msg);
    }
    assert_eq!(f.get("/v1/schedules").await?, json!([]));

    // An override wholly in the past would be stored and never hold.
    let long_ago = "2020-01-01T00:00:00Z";
    let overrides = [
        (
            json!({"heat_c": 22, "start": "2019-12-31T00:00:00Z",
                "hold": {"type": "until", "at": long_ago}}),
            "hold.at field is in the past",
        ),
        (json!({"heat_c": 22, "hold": {"type": "until", "at": long_ago}}), "hold.at field"),
        (
            json!({"heat_c": 22, "start": long_ago, "hold": {"type": "for", "minutes": 60}}),
            "start field is too far in the past",
        ),
    ];
    for (body, msg) in overrides {
        let got = f.call("POST", "/v1/overrides", Some(&admin), Some(&body.to_string())).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", msg);
    }
    // Until the next change, from a start long before the schedule's last change.
    let every_hour = json!({"name": "hourly", "when": {"type": "cron", "expr": "0 * * * *",
        "duration_min": 30}, "heat_c": 20})
    .to_string();
    let got = f.call("POST", "/v1/schedules", Some(&admin), Some(&every_hour)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let body = json!({"heat_c": 22, "start": long_ago, "hold": {"type": "next_change"}});
    let got = f.call("POST", "/v1/overrides", Some(&admin), Some(&body.to_string())).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "start field");
    assert_eq!(f.get("/v1/overrides").await?, json!([]));
    // A start in the past that still holds now is fine.
    let body = json!({"heat_c": 22, "start": long_ago, "hold": {"type": "indefinite"}});
    let got = f.call("POST", "/v1/overrides", Some(&admin), Some(&body.to_string())).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    Ok(())
}
