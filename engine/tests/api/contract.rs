//! The OpenAPI document says what the server does: unique operation ids, a description on every
//! response, the bounds the handlers check (from the same constants), nulls refused where the
//! schema has no null, and every refusal a JSON `ErrorBody`, whichever layer refuses.
//! (Validity against OpenAPI 3.1 itself, and generated requests against the real binary, are
//! the e2e test `contract`.)

use std::collections::BTreeSet;

use axum::http::header;
use hearth_proto::{control, history, schedules, sensors};

use super::*;

fn doc() -> R<Value> {
    Ok(serde_json::to_value(hearth_engine::openapi())?)
}

/// Every operation of the document: (method, path, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

#[test]
fn operation_ids_are_unique_and_every_response_is_described() -> R {
    let doc = doc()?;
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&doc) {
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(id.contains('_'), "{method} {path}: operationId {id:?} says too little");
        assert!(ids.insert(id.to_owned()), "{method} {path}: operationId {id:?} twice");
        for (status, response) in op["responses"].as_object().into_iter().flatten() {
            let described = response["description"].as_str().is_some_and(|d| !d.is_empty())
                || response["$ref"].as_str().is_some_and(|r| r.starts_with("#/components/"));
            assert!(described, "{method} {path} {status}: no description");
        }
    }
    for (name, response) in doc["components"]["responses"].as_object().into_iter().flatten() {
        assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{name}");
    }
    for id in ["list_sensors", "list_relays", "get_control", "update_sensors"] {
        assert!(ids.contains(id), "no operation {id}");
    }
    Ok(())
}

/// The bounds in the document are the handlers' constants.
#[test]
fn the_document_carries_the_bounds_the_handlers_check() -> R {
    let doc = doc()?;
    let param = |path: &str, name: &str| -> Value {
        let params =
            doc["paths"][path]["get"]["parameters"].as_array().cloned().unwrap_or_default();
        params
            .into_iter()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap_or_default()
    };
    let bounds = |s: &Value| (s["minimum"].as_f64(), s["maximum"].as_f64());
    let p = param("/v1/analytics/daily", "days");
    assert_eq!(
        bounds(&p),
        (Some(f64::from(*history::DAYS.start())), Some(f64::from(*history::DAYS.end())))
    );
    assert_eq!(p["default"], history::DEFAULT_DAYS);
    let p = param("/v1/schedule/timeline", "hours");
    assert_eq!(bounds(&p), (Some(1.0), Some(f64::from(*schedules::TIMELINE_HOURS.end()))));
    let p = param("/v1/control/decisions", "limit");
    assert_eq!(bounds(&p), (Some(1.0), Some(f64::from(*control::DECISIONS_LIMIT.end()))));
    let p = param("/v1/sensors/{id}/readings", "max_points");
    assert_eq!(
        bounds(&p),
        (Some(f64::from(*sensors::POINTS.start())), Some(f64::from(*sensors::POINTS.end())))
    );
    let readings = &doc["paths"]["/v1/sensors/{id}/readings"]["get"]["parameters"];
    let from = readings.as_array().into_iter().flatten().find(|p| p["name"] == "from");
    let span = format!("{} days apart", history::MAX_SPAN_DAYS);
    assert!(from.is_some_and(|p| p["description"].as_str().unwrap_or_default().contains(&span)));

    let schemas = &doc["components"]["schemas"];
    let settings = &schemas["SensorSettings"]["properties"];
    assert_eq!(bounds(&settings["weight"]), (Some(0.0), Some(sensors::MAX_SENSOR_WEIGHT)));
    assert_eq!(settings["name"]["maxLength"], sensors::MAX_SENSOR_NAME);
    let control = &schemas["ControlSettings"]["properties"];
    assert_eq!(bounds(&control["frost_floor_c"]), (Some(0.0), Some(*control::FROST_FLOOR_C.end())));
    assert_eq!(
        bounds(&control["min_on_s"]),
        (Some(0.0), Some(f64::from(*control::MIN_ON_S.end())))
    );
    let rule = &schemas["NewRule"]["properties"];
    assert_eq!(
        bounds(&rule["heat_c"]),
        (Some(*schedules::HEAT_C.start()), Some(*schedules::HEAT_C.end()))
    );
    assert_eq!(rule["name"]["maxLength"], schedules::MAX_RULE_NAME_CHARS);
    assert_eq!(rule["sensors"]["maxItems"], schedules::MAX_SENSORS);
    let weight = &schemas["SensorWeight"]["properties"]["weight"];
    assert_eq!(
        (weight["exclusiveMinimum"].as_f64(), weight["maximum"].as_f64()),
        (Some(0.0), Some(schedules::MAX_WEIGHT))
    );
    let update = &schemas["SensorUpdate"]["properties"];
    assert_eq!(update["host_id"]["maxLength"], hearth_proto::agents::MAX_HOST_ID_CHARS);
    assert_eq!(update["sensors"]["propertyNames"]["maxLength"], sensors::MAX_SENSOR_ID_CHARS);
    assert_eq!(
        schemas["SensorBacklog"]["properties"]["updates"]["maxItems"],
        sensors::MAX_BACKLOG_UPDATES
    );
    let cron = schemas["When"]["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|v| v["properties"]["type"]["enum"][0] == "cron");
    assert!(cron.is_some_and(
        |c| c["properties"]["duration_min"]["maximum"] == *schedules::CRON_DURATION_MIN.end()
    ));
    Ok(())
}

/// Fields the schema types as arrays, booleans or numbers without null: a null is refused
/// (422 naming the field) and changes nothing, as the schema says.
#[tokio::test]
async fn nulls_the_schema_does_not_allow_are_refused() -> R {
    let f = fixture().await?;
    let admin = f.admin();
    let rule = |k: &str, v: Value| {
        let mut r = json!({"name": "Mornings", "heat_c": 21.0,
            "when": {"type": "weekly", "days": ["monday"], "start": "06:30", "end": "08:30"}});
        r[k] = v;
        r.to_string()
    };
    let cases = [
        (
            "POST",
            "/v1/schedules",
            rule("sensors", Value::Null),
            "sensors field must be an array, not null",
        ),
        (
            "POST",
            "/v1/schedules",
            rule("enabled", Value::Null),
            "enabled field must be true or false, not null",
        ),
        (
            "POST",
            "/v1/schedules",
            rule("sensors", json!([{"sensor_id": "a", "weight": null}])),
            "sensors[0].weight field must be a number, not null",
        ),
        (
            "POST",
            "/v1/overrides",
            json!({"heat_c": 22.0, "hold": {"type": "indefinite"}, "sensors": null}).to_string(),
            "sensors field must be an array",
        ),
        (
            "PUT",
            "/v1/schedule/default",
            json!({"heat_c": 19.0, "cool_c": 26.0, "sensors": null}).to_string(),
            "sensors field must be an array",
        ),
        (
            "PUT",
            "/v1/control/settings",
            json!({"params": null}).to_string(),
            "params field must be an object",
        ),
    ];
    for (method, path, body, message) in cases {
        let got = f.call(method, path, Some(&admin), Some(&body)).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message);
    }
    assert_eq!(f.get("/v1/schedules").await?, json!([]));
    assert_eq!(f.get("/v1/overrides").await?, json!([]));
    assert_eq!(f.get("/v1/schedule/default").await?["heat_c"], 20.0);
    // Left out, they take their defaults.
    let got = f
        .call("POST", "/v1/schedules", Some(&admin), Some(&rule("name", json!("Mornings"))))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    assert_eq!((&got.1["enabled"], &got.1["sensors"]), (&json!(true), &json!([])));
    Ok(())
}

/// Send `body` (raw bytes, with `content_type`) and return status, headers and JSON body.
async fn raw(
    f: &Fixture,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> R<(StatusCode, axum::http::HeaderMap, Value)> {
    let mut req = Request::builder().method(method).uri(path);
    req = req.header("authorization", format!("Bearer {}", f.admin()));
    if let Some(t) = content_type {
        req = req.header("content-type", t);
    }
    let resp = f.engine.router().oneshot(req.body(Body::from(body))?).await?;
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = resp.into_body().collect().await?.to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Ok((status, headers, value))
}

/// What axum refuses before a handler decides (a body over the limit, a body that is not
/// JSON where JSON is required, a method the path lacks, a path segment that is not UTF-8) is
/// an `ErrorBody` like every other error, with its content type, on every route.
#[tokio::test]
async fn every_refusal_is_a_json_error_body() -> R {
    let f = fixture().await?;
    let big = vec![b' '; 3 * 1024 * 1024];
    let json = Some("application/json");
    let cases = [
        // Untyped bodies (the seed contract's route) and typed ones alike.
        (
            "PUT",
            "/v1/sensors/update",
            json,
            big.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "PUT",
            "/v1/control/settings",
            json,
            big.clone(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        ("POST", "/v1/schedules", json, big, StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        (
            "PUT",
            "/v1/control/settings",
            Some("text/plain"),
            b"{}".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported",
        ),
        (
            "PUT",
            "/v1/control/settings",
            None,
            Vec::new(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported",
        ),
        ("PATCH", "/v1/sensors", None, Vec::new(), StatusCode::METHOD_NOT_ALLOWED, "unsupported"),
        (
            "GET",
            "/v1/sensors/%FF/readings",
            None,
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        ("GET", "/v1/schedules/%FF%FE", None, Vec::new(), StatusCode::BAD_REQUEST, "bad_request"),
        (
            "PUT",
            "/v1/relays/h/%C0/function",
            json,
            b"{\"function\": null}".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ];
    for (method, path, content_type, body, status, code) in cases {
        let (got, headers, body) = raw(&f, method, path, content_type, body).await?;
        assert_eq!(got, status, "{method} {path}: {body}");
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
        assert_eq!(ct, Some("application/json"), "{method} {path}");
        assert_eq!(body["status"], "error", "{method} {path}: {body}");
        assert_eq!(body["code"], code, "{method} {path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(headers.contains_key(header::ALLOW), "405 without Allow");
        }
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            let limit = format!("{} bytes", 2 * 1024 * 1024);
            assert!(body["error"].as_str().is_some_and(|e| e.contains(&limit)), "{body}");
        }
    }
    assert_eq!(f.get("/v1/schedules").await?, json!([]));
    Ok(())
}
