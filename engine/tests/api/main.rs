//! The engine's HTTP API, route by route, through `oneshot` on the real router with a real
//! SQLite file in a temp dir; and the decision loop commanding a relay agent over real HTTP.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use hearth_engine::{Config, Engine};
use hearth_proto::Timestamp;
use hearth_proto::agents::KeyRole;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod contract;
mod control;
mod credentials;
mod history;
mod manage;
mod postgres;
mod readings;
mod schedules;
mod sensors;
mod typos;
mod zones;

type R<T = ()> = anyhow::Result<T>;

struct Fixture {
    engine: Engine,
    _dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path, extra: &[&str]) -> R<Config> {
    let d = dir.to_string_lossy().to_string();
    let mut args = vec!["hearth-engine", "--data-dir", &d, "--mdns", "false"];
    let url;
    if !extra.contains(&"--database-url")
        && let Some(u) = postgres_database(dir)?
    {
        url = u;
        args.extend(["--database-url", &url]);
    }
    args.extend_from_slice(extra);
    hearth_common::config::load_from(args)
}

/// With `HEARTH_TEST_BACKEND=postgres` (`cargo xtask test` runs this binary a second time so),
/// every test's engine stores in a database of a real PostgreSQL server of this process, one
/// per data dir (an engine started again on the same data dir finds its rows): the whole API
/// suite is the store's conformance suite on both backends.
fn postgres_database(dir: &std::path::Path) -> R<Option<String>> {
    static DATABASES: std::sync::Mutex<Vec<(std::path::PathBuf, String)>> =
        std::sync::Mutex::new(Vec::new());
    let backend = std::env::var("HEARTH_TEST_BACKEND");
    match backend.as_deref() {
        Ok("postgres") => {
            let mut made = DATABASES.lock().map_err(|_| anyhow::anyhow!("lock poisoned"))?;
            if let Some((_, url)) = made.iter().find(|(d, _)| d == dir) {
                return Ok(Some(url.clone()));
            }
            let url = hearth_harness::postgres::Postgres::with_shared(|server| {
                server.create_database("api")
            })?;
            made.push((dir.to_path_buf(), url.clone()));
            Ok(Some(url))
        }
        Ok("sqlite") | Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(other) => anyhow::bail!("HEARTH_TEST_BACKEND={other:?}: sqlite or postgres"),
        Err(e) => anyhow::bail!("HEARTH_TEST_BACKEND: {e}"),
    }
}

async fn fixture() -> R<Fixture> {
    fixture_with(&[]).await
}

/// An engine started with these flags too.
async fn fixture_with(args: &[&str]) -> R<Fixture> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(&config(dir.path(), args)?).await?;
    Ok(Fixture { engine, _dir: dir })
}

impl Fixture {
    fn agent(&self, host: &str) -> String {
        self.engine.device_key(host, KeyRole::Both).agent_credential(host)
    }

    fn admin(&self) -> String {
        self.engine.admin_credential()
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&str>,
    ) -> R<(StatusCode, Value)> {
        call(self.engine.router(), method, path, auth, body).await
    }

    async fn get(&self, path: &str) -> R<Value> {
        let (status, body) = self.call("GET", path, None, None).await?;
        anyhow::ensure!(status == StatusCode::OK, "GET {path}: {status} {body}");
        Ok(body)
    }
}

async fn call(
    router: Router,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
) -> R<(StatusCode, Value)> {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(a) = auth {
        req = req.header("authorization", format!("Bearer {a}"));
    }
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let resp = router.oneshot(req.body(Body::from(body.unwrap_or("").to_owned()))?).await?;
    let status = resp.status();
    let bytes = resp.into_body().collect().await?.to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Ok((status, value))
}

/// The database URL the engine of data dir `dir` stores in, in this run.
fn database_url(dir: &std::path::Path) -> R<String> {
    Ok(match postgres_database(dir)? {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("hearth.db").display()),
    })
}

/// Serve `app` (a stand-in agent) on a port the system picks; its base URL.
async fn serve(app: Router) -> R<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// The raw readings of a `GET /v1/sensors/{id}/readings` page (few enough not to be
/// downsampled) as `{at, value}`: a raw point has min = mean = max.
fn raw(page: &Value) -> Value {
    assert_eq!(page["bucket_s"], 0, "not raw: {page}");
    page["points"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| json!({"at": p["at"], "value": p["mean"]}))
        .collect()
}

fn update(host: &str, value: Value) -> String {
    json!({"host_id": host, "sensors": {"1058F50F01080047": {
        "type": "DS18S20", "value": value, "alias": "some_alias", "extra": "arbitrary string"}}})
    .to_string()
}

/// Assert an error response: status, stable code, and a message containing `text`.
fn assert_error(got: &(StatusCode, Value), status: StatusCode, code: &str, text: &str) {
    let (s, body) = got;
    assert_eq!(*s, status, "{body}");
    assert_eq!(body["status"], "error", "{body}");
    assert_eq!(body["code"], code, "{body}");
    let msg = body["error"].as_str().unwrap_or_default();
    assert!(msg.contains(text), "message {msg:?} lacks {text:?}");
}

#[tokio::test]
async fn info_status_and_openapi_are_served() -> R {
    let f = fixture().await?;
    let (status, page) = f.call("GET", "/", None, None).await?;
    assert_eq!(status, StatusCode::OK);
    let page = page.as_str().unwrap_or_default();
    assert!(
        page.contains("Hearth engine")
            && page.contains("/v1/openapi.json")
            && page.contains(env!("CARGO_PKG_VERSION"))
    );
    let status = f.get("/v1/status").await?;
    assert_eq!(status["healthy"], true);
    assert_eq!(status["checks"][0]["name"], "database");
    let doc = f.get("/v1/openapi.json").await?;
    assert!(doc["paths"]["/v1/sensors/update"]["put"].is_object());
    // Served as serialized once at start: the document the code generates.
    assert_eq!(doc, serde_json::to_value(hearth_engine::openapi())?);
    let req = Request::builder().uri("/v1/openapi.json").body(Body::empty())?;
    let resp = f.engine.router().oneshot(req).await?;
    assert_eq!(resp.headers()[axum::http::header::CONTENT_TYPE], "application/json");
    Ok(())
}

/// `GET /` with a `Host` header; the page's text.
async fn info_page(router: Router, host: &str) -> R<String> {
    let req = Request::builder().uri("/").header("host", host).body(Body::empty())?;
    let resp = router.oneshot(req).await?;
    anyhow::ensure!(resp.status() == StatusCode::OK, "GET /: {}", resp.status());
    Ok(String::from_utf8(resp.into_body().collect().await?.to_bytes().to_vec())?)
}

#[tokio::test]
async fn the_info_page_links_the_dashboard() -> R {
    let f = fixture().await?;
    // By default: port 8088 on the host name the browser used.
    let page = info_page(f.engine.router(), "thermostat.local:8080").await?;
    assert!(
        page.contains("<a href=\"http://thermostat.local:8088/\">Open the dashboard</a>"),
        "{page}"
    );
    // A Host that is not a host name is not echoed into the page.
    let page = info_page(f.engine.router(), "x\"><script>alert(1)</script>").await?;
    assert!(!page.contains("<script>") && !page.contains("Open the dashboard"), "{page}");

    // Configured, escaped where it is written into the page.
    let dir = tempfile::tempdir()?;
    let url = "https://hearth.example/dash?a=1&b=2";
    let engine = Engine::open(&config(dir.path(), &["--dashboard-url", url])?).await?;
    let page = info_page(engine.router(), "127.0.0.1:8080").await?;
    let link = "<a href=\"https://hearth.example/dash?a=1&amp;b=2\">Open the dashboard</a>";
    assert!(page.contains(link), "{page}");
    // Not a URL a browser can open: the engine refuses to start, naming the setting.
    for bad in ["thermostat.local:8088", "javascript:alert(1)", "ftp://host/", "http://"] {
        let dir = tempfile::tempdir()?;
        let err = match Engine::open(&config(dir.path(), &["--dashboard-url", bad])?).await {
            Ok(_) => anyhow::bail!("--dashboard-url {bad:?} accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("dashboard_url must be an http:// or https:// URL"), "{bad}: {err}");
    }
    Ok(())
}

#[tokio::test]
async fn seed_contract_update_is_stored() -> R {
    let f = fixture().await?;
    let cred = f.agent("myhostid");
    let got = f
        .call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("myhostid", json!(24.3125))))
        .await?;
    assert_eq!(got, (StatusCode::CREATED, json!({"status": "ok", "ids": ["1058F50F01080047"]})));

    let sensors = f.get("/v1/sensors").await?;
    assert_eq!(sensors[0]["id"], "1058F50F01080047");
    assert_eq!(sensors[0]["host_id"], "myhostid");
    assert_eq!(sensors[0]["type"], "DS18S20");
    assert_eq!(sensors[0]["alias"], "some_alias");
    assert_eq!(sensors[0]["latest"]["value"], 24.3125);
    assert_eq!(sensors[0]["stale"], false);

    // A failed reading (null) is accepted and recorded as such.
    let got = f
        .call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("myhostid", Value::Null)))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED);
    let page = f.get("/v1/sensors/1058F50F01080047/readings").await?;
    assert_eq!(
        raw(&page),
        json!([{"at": page["points"][0]["at"], "value": 24.3125},
        {"at": page["points"][1]["at"], "value": null}])
    );

    let agents = f.get("/v1/agents").await?;
    assert_eq!(agents[0]["host_id"], "myhostid");
    assert_eq!(agents[0]["kind"], "sensor");
    assert_eq!(agents[0]["online"], true);
    Ok(())
}

#[tokio::test]
async fn replays_are_idempotent_and_do_not_hide_newer_readings() -> R {
    let f = fixture().await?;
    let cred = f.agent("pi");
    // No agent_time: an agent whose clock is off gets its live readings re-timed (tested in
    // skewed_agent_clocks_are_flagged_and_live_readings_re_timed).
    let at = |ts: &str, v: f64| {
        json!({"host_id": "pi",
        "sensors": {"28-0316a2797bff": {"type": "DS18B20", "value": v, "timestamp": ts}}})
        .to_string()
    };
    for _ in 0..2 {
        let got = f
            .call("PUT", "/v1/sensors/update", Some(&cred), Some(&at("2026-01-01T10:00:00Z", 21.0)))
            .await?;
        assert_eq!(got.0, StatusCode::CREATED);
    }
    let got = f
        .call("PUT", "/v1/sensors/update", Some(&cred), Some(&at("2026-01-01T09:00:00Z", 19.0)))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED);
    let page = f.get("/v1/sensors/28-0316a2797bff/readings?from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z").await?;
    assert_eq!(page["points"].as_array().map(Vec::len), Some(2), "{page}");
    let sensors = f.get("/v1/sensors").await?;
    assert_eq!(sensors[0]["latest"]["value"], 21.0);
    assert_eq!(sensors[0]["latest"]["at"], "2026-01-01T10:00:00Z");
    Ok(())
}

#[tokio::test]
async fn bad_sensor_updates_get_4xx_and_change_nothing() -> R {
    let f = fixture().await?;
    let cred = f.agent("h1");
    let s = |v: Value| json!({"host_id": "h1", "sensors": {"s1": v}}).to_string();
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let cases: Vec<(String, StatusCode, &str, &str)> = vec![
        ("{not json".into(), StatusCode::BAD_REQUEST, "malformed_json", "not valid JSON"),
        ("[1,2]".into(), unprocessable, "invalid_field", "JSON object"),
        (
            json!({"sensors": {}}).to_string(),
            unprocessable,
            "missing_field",
            "host_id field is missing",
        ),
        (
            json!({"host_id": 5, "sensors": {}}).to_string(),
            unprocessable,
            "invalid_field",
            "host_id field must be a string",
        ),
        (
            json!({"host_id": "h 1", "sensors": {}}).to_string(),
            unprocessable,
            "invalid_field",
            "host_id",
        ),
        (
            json!({"host_id": "h1"}).to_string(),
            unprocessable,
            "missing_field",
            "sensors field is missing",
        ),
        (
            json!({"host_id": "h1", "sensors": [1]}).to_string(),
            unprocessable,
            "invalid_field",
            "sensors field must be an object",
        ),
        (
            s(json!({"value": 1.0})),
            unprocessable,
            "missing_field",
            "sensors.s1.type field is missing",
        ),
        (
            s(json!({"type": "DS18B20"})),
            unprocessable,
            "missing_field",
            "sensors.s1.value field is missing",
        ),
        (
            s(json!({"type": "DS18B20", "value": "warm"})),
            unprocessable,
            "invalid_field",
            "sensors.s1.value field must be a number",
        ),
        (s(json!({"type": 7, "value": 1.0})), unprocessable, "invalid_field", "sensors.s1.type"),
        (
            s(json!({"type": "x", "value": 1.0, "alias": 3})),
            unprocessable,
            "invalid_field",
            "sensors.s1.alias",
        ),
        (
            s(json!({"type": "x", "value": 1.0, "timestamp": "yesterday"})),
            unprocessable,
            "invalid_field",
            "RFC 3339",
        ),
        (s(json!(42)), unprocessable, "invalid_field", "sensors.s1 must be an object"),
    ];
    for (body, status, code, text) in cases {
        let got = f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&body)).await?;
        assert_error(&got, status, code, text);
    }
    // Credentials: none, wrong, another host's, the admin's.
    let body = update("h1", json!(20.0));
    let got = f.call("PUT", "/v1/sensors/update", None, Some(&body)).await?;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", "credential required");
    let got = f.call("PUT", "/v1/sensors/update", Some("h1.00ff"), Some(&body)).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "wrong credential");
    let got = f.call("PUT", "/v1/sensors/update", Some(&f.agent("h2")), Some(&body)).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "cannot act for host");
    let got = f.call("PUT", "/v1/sensors/update", Some(&f.admin()), Some(&body)).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "only the agent");
    let engine_cred = f.engine.device_key("h1", KeyRole::Both).engine_credential();
    let got = f.call("PUT", "/v1/sensors/update", Some(&engine_cred), Some(&body)).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "wrong credential");
    let got = f.call("PUT", "/v1/sensors/update", Some("garbage"), Some(&body)).await?;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", "malformed credential");

    assert_eq!(f.get("/v1/sensors").await?, json!([]));
    assert_eq!(f.get("/v1/agents").await?, json!([]));
    Ok(())
}

#[tokio::test]
async fn readings_query_errors() -> R {
    let f = fixture().await?;
    let got = f.call("GET", "/v1/sensors/nope/readings", None, None).await?;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "no sensor");
    let got = f.call("GET", "/v1/sensors/nope/readings?from=later", None, None).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "from");
    let got = f
        .call(
            "GET",
            "/v1/sensors/x/readings?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            None,
            None,
        )
        .await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "before");
    let got = f.call("GET", "/v1/nothing-here", None, None).await?;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "no such route");
    let got = f.call("DELETE", "/v1/sensors", None, None).await?;
    assert_error(&got, StatusCode::METHOD_NOT_ALLOWED, "unsupported", "method");
    Ok(())
}

fn registration(host: &str, url: &str) -> String {
    json!({"host_id": host, "url": url, "outputs": [
        {"id": "heat", "name": "Furnace", "state": "off", "safe_state": "off", "function_hint": "heat", "lease_remaining_s": null},
        {"id": "aux1", "name": "Humidifier", "state": "off", "safe_state": "off", "function_hint": null, "lease_remaining_s": null}
    ]})
    .to_string()
}

#[tokio::test]
async fn relay_registration_and_function_assignment() -> R {
    let f = fixture().await?;
    let cred = f.agent("relay1");
    let got = f
        .call(
            "POST",
            "/v1/relays/register",
            Some(&cred),
            Some(&registration("relay1", "http://10.0.0.7:8081")),
        )
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["engine_id"], f.engine.engine_id());
    let relays = f.get("/v1/relays").await?;
    assert_eq!(relays.as_array().map(Vec::len), Some(2));
    assert_eq!(relays[0]["output_id"], "aux1");
    assert_eq!(relays[0]["function"], Value::Null);
    assert_eq!(relays[1]["function"], "heat");
    assert_eq!(relays[1]["url"], "http://10.0.0.7:8081");

    let got = f
        .call(
            "PUT",
            "/v1/relays/relay1/aux1/function",
            Some(&f.admin()),
            Some(r#"{"function":"fan"}"#),
        )
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(got.1["function"], "fan");
    // Re-registration keeps the assignment.
    f.call(
        "POST",
        "/v1/relays/register",
        Some(&cred),
        Some(&registration("relay1", "http://10.0.0.7:8081")),
    )
    .await?;
    assert_eq!(f.get("/v1/relays").await?[0]["function"], "fan");
    let agents = f.get("/v1/agents").await?;
    assert_eq!(
        (agents[0]["kind"].clone(), agents[0]["online"].clone()),
        (json!("relay"), json!(true))
    );

    // Bad input changes nothing.
    let before = f.get("/v1/relays").await?;
    let cases = [
        (
            Some(f.admin()),
            r#"{"function":"sauna"}"#,
            "/v1/relays/relay1/aux1/function",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            Some(f.admin()),
            r#"{}"#,
            "/v1/relays/relay1/aux1/function",
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (
            Some(f.admin()),
            r#"{"function":"heat""#,
            "/v1/relays/relay1/aux1/function",
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            Some(f.admin()),
            r#"{"function":"heat"}"#,
            "/v1/relays/relay1/nope/function",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Some(f.admin()),
            r#"{"function":"heat"}"#,
            "/v1/relays/ghost/aux1/function",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Some(cred.clone()),
            r#"{"function":"heat"}"#,
            "/v1/relays/relay1/aux1/function",
            StatusCode::FORBIDDEN,
            "forbidden",
        ),
        (
            None,
            r#"{"function":"heat"}"#,
            "/v1/relays/relay1/aux1/function",
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ];
    for (auth, body, path, status, code) in cases {
        let got = f.call("PUT", path, auth.as_deref(), Some(body)).await?;
        assert_error(&got, status, code, "");
    }
    let bad_regs = [
        (
            json!({"host_id": "relay1", "outputs": []}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (registration("relay1", "ftp://x"), StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        (
            json!({"host_id": "relay1", "url": "http://x:1", "outputs": []}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
        ),
        (
            json!({"host_id": "relay1", "url": "http://x:1", "outputs": [{"id": "h"}]}).to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
        ),
        (registration("other", "http://10.0.0.9:1"), StatusCode::FORBIDDEN, "forbidden"),
        ("{".into(), StatusCode::BAD_REQUEST, "malformed_json"),
    ];
    for (body, status, code) in bad_regs {
        let got = f.call("POST", "/v1/relays/register", Some(&cred), Some(&body)).await?;
        assert_error(&got, status, code, "");
    }
    let got = call(f.engine.router(), "POST", "/v1/relays/register", Some(&cred), None).await?;
    assert_error(&got, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported", "");
    assert_eq!(without_age(f.get("/v1/relays").await?), without_age(before));
    Ok(())
}

/// `GET /v1/relays` without the fields that move with the clock (`age_s`).
fn without_age(mut relays: Value) -> Value {
    for r in relays.as_array_mut().into_iter().flatten() {
        if let Some(r) = r.as_object_mut() {
            r.remove("age_s");
        }
    }
    relays
}

/// A relay agent says which hardware it drives; the engine keeps it with the agent and shows
/// it on every output, in the agent list and in `/metrics`. `simulated` outputs switch no
/// equipment, so they are flagged. An agent that predates the field still registers.
#[tokio::test]
async fn relay_backend_is_registered_and_shown() -> R {
    let f = fixture().await?;
    let cred = f.agent("relay1");
    let with_backend = |backend: Value| {
        let mut body: Value = serde_json::from_str(&registration("relay1", "http://10.0.0.7:8081"))
            .unwrap_or_default();
        body["backend"] = backend;
        body.to_string()
    };
    // An older agent: no backend, nothing claimed.
    let got = f
        .call("POST", "/v1/relays/register", Some(&cred), Some(&with_backend(Value::Null)))
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let relays = f.get("/v1/relays").await?;
    assert_eq!(
        (relays[1]["backend"].clone(), relays[1]["simulated"].clone()),
        (Value::Null, json!(false))
    );
    assert_eq!(relays[1]["agent_reachable"], true, "{relays}");
    assert!(relays[1]["age_s"].as_f64().is_some_and(|a| a >= 0.0), "{relays}");

    let got = f
        .call("POST", "/v1/relays/register", Some(&cred), Some(&with_backend(json!("simulated"))))
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    for r in f.get("/v1/relays").await?.as_array().into_iter().flatten() {
        assert_eq!(
            (r["backend"].clone(), r["simulated"].clone()),
            (json!("simulated"), json!(true))
        );
    }
    let agents = f.get("/v1/agents").await?;
    assert_eq!(agents[0]["backend"], "simulated", "{agents}");
    let (status, metrics) = f.call("GET", "/metrics", None, None).await?;
    assert_eq!(status, StatusCode::OK);
    let text = metrics.as_str().unwrap_or_default();
    assert!(
        text.contains("hearth_relay_agent_info{host=\"relay1\",backend=\"simulated\"} 1\n"),
        "{text}"
    );
    assert!(text.contains("hearth_relay_agent_reachable{host=\"relay1\"} 1\n"), "{text}");

    // Real hardware replaces it.
    f.call("POST", "/v1/relays/register", Some(&cred), Some(&with_backend(json!("rppal")))).await?;
    let relays = f.get("/v1/relays").await?;
    assert_eq!(
        (relays[0]["backend"].clone(), relays[0]["simulated"].clone()),
        (json!("rppal"), json!(false))
    );

    // A malformed name is refused, naming the field, and changes nothing.
    for bad in [json!(""), json!("gpio cdev"), json!("x".repeat(33)), json!(7)] {
        let got =
            f.call("POST", "/v1/relays/register", Some(&cred), Some(&with_backend(bad))).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "backend");
    }
    assert_eq!(f.get("/v1/relays").await?[0]["backend"], "rppal");
    Ok(())
}

/// A log capture for one test: the tracing output of this thread (the tests run on tokio's
/// current-thread runtime, so the handlers log here too).
struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        (Self(buf), tracing::subscriber::set_default(subscriber))
    }

    /// The captured lines containing `needle`.
    fn lines(&self, needle: &str) -> Vec<String> {
        let text = self.0.lock().map(|b| String::from_utf8_lossy(&b).into_owned());
        text.unwrap_or_default().lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
    }
}

struct LogWriter(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A relay agent's wrong clock is logged when it becomes wrong and when it is right again,
/// once each, as a sensor agent's is (ARCHITECTURE.md says so of every agent).
#[tokio::test]
async fn a_relay_agents_wrong_clock_is_logged_once_each_way() -> R {
    let f = fixture().await?;
    let cred = f.agent("relay1");
    let (logs, _guard) = Logs::capture();
    let at = |offset_s: i64| -> R<String> {
        let mut body: Value =
            serde_json::from_str(&registration("relay1", "http://10.0.0.7:8081"))?;
        let t = Timestamp::now().checked_add(jiff::SignedDuration::from_secs(offset_s))?;
        body["agent_time"] = json!(t);
        Ok(body.to_string())
    };
    for offset_s in [3600, 3600, 0, 0] {
        let got = f.call("POST", "/v1/relays/register", Some(&cred), Some(&at(offset_s)?)).await?;
        assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    }
    let wrong = logs.lines("relay agent clock is wrong");
    let right = logs.lines("relay agent clock is right again");
    assert_eq!((wrong.len(), right.len()), (1, 1), "{wrong:?} {right:?}");
    assert!(wrong[0].contains("relay1") && wrong[0].contains("offset_s=3"), "{wrong:?}");
    Ok(())
}

#[tokio::test]
async fn control_settings_need_admin_and_valid_values() -> R {
    let f = fixture().await?;
    let view = f.get("/v1/control").await?;
    assert_eq!(view["settings"]["mode"], "heat");
    assert_eq!(view["settings"]["params"]["hysteresis_c"], 0.3, "defaults filled: {view}");
    let good = json!({"mode": "auto", "algorithm": "predictive",
        "params": {"hysteresis_c": 0.5}, "min_on_s": 60, "min_off_s": 60})
    .to_string();
    let got = f.call("PUT", "/v1/control/settings", Some(&f.admin()), Some(&good)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let settings = f.get("/v1/control").await?["settings"].clone();
    assert_eq!(settings["mode"], "auto");
    assert_eq!(settings["params"]["hysteresis_c"], 0.5);
    assert!(settings["params"]["max_lead_min"].is_number(), "defaults filled: {settings}");
    assert_eq!(settings["frost_floor_c"], 7.0, "fields left out keep their defaults");

    let with = |k: &str, v: Value| {
        let mut s: Value = serde_json::from_str(&good).unwrap_or_default();
        s[k] = v;
        s.to_string()
    };
    let cases = [
        (Some(f.admin()), with("frost_floor_c", json!(99)), 422, "invalid_field", "frost_floor_c"),
        (Some(f.admin()), with("max_ceiling_c", json!(5)), 422, "invalid_field", "max_ceiling_c"),
        (
            Some(f.admin()),
            with("params", json!({"hysteresis_c": -1})),
            422,
            "invalid_field",
            "hysteresis_c",
        ),
        (Some(f.admin()), with("params", json!({"warp": 9})), 422, "invalid_field", "warp"),
        (Some(f.admin()), with("algorithm", json!("astrology")), 422, "invalid_field", "algorithm"),
        (Some(f.admin()), with("min_on_s", json!(99999)), 422, "invalid_field", "min_on_s"),
        (Some(f.admin()), with("min_on_s", json!(-5)), 422, "invalid_field", "min_on_s"),
        (Some(f.admin()), with("mode", json!("sauna")), 422, "invalid_field", "mode"),
        (Some(f.admin()), "{{".into(), 400, "malformed_json", ""),
        (Some(f.agent("pi")), good.clone(), 403, "forbidden", "admin"),
        (None, good.clone(), 401, "unauthorized", ""),
    ];
    for (auth, body, status, code, text) in cases {
        let got = f.call("PUT", "/v1/control/settings", auth.as_deref(), Some(&body)).await?;
        assert_error(&got, StatusCode::from_u16(status)?, code, text);
    }
    assert_eq!(f.get("/v1/control").await?["settings"], settings, "refusals changed nothing");
    let got = f.call("GET", "/v1/control/decisions?limit=0", None, None).await?;
    assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", "limit");
    assert_eq!(f.get("/v1/control/decisions").await?, json!([]));

    // Every algorithm publishes a JSON Schema whose defaults the settings above filled in.
    let plugins = f.get("/v1/plugins").await?;
    let ids: Vec<&str> =
        plugins.as_array().into_iter().flatten().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(ids, ["hysteresis", "predictive", "anticipate"]);
    for p in plugins.as_array().into_iter().flatten() {
        let props = &p["params_schema"]["properties"];
        assert!(props["hysteresis_c"]["default"].is_number(), "{p}");
        assert!(props["hysteresis_c"]["minimum"].is_number(), "{p}");
    }
    Ok(())
}

/// Heat mode, hysteresis 0.5 °C, the given protection times, and `heat_c` as the default
/// target (no schedule rules).
async fn heat_to(f: &Fixture, heat_c: f64, min_on_s: u32, min_off_s: u32) -> R {
    let settings = json!({"mode": "heat", "params": {"hysteresis_c": 0.5},
        "min_on_s": min_on_s, "min_off_s": min_off_s})
    .to_string();
    let got = f.call("PUT", "/v1/control/settings", Some(&f.admin()), Some(&settings)).await?;
    anyhow::ensure!(got.0 == StatusCode::OK, "settings: {got:?}");
    let target = json!({"heat_c": heat_c, "cool_c": 30.0}).to_string();
    let got = f.call("PUT", "/v1/schedule/default", Some(&f.admin()), Some(&target)).await?;
    anyhow::ensure!(got.0 == StatusCode::OK, "default target: {got:?}");
    Ok(())
}

/// The `Authorization` header a stand-in received, as text.
fn authorization(headers: &axum::http::HeaderMap) -> Option<String> {
    headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// A relay agent stand-in on a real socket that records the commands it gets.
async fn fake_relay_agent()
-> R<(String, tokio::sync::mpsc::UnboundedReceiver<(String, Option<String>, Value)>)> {
    use axum::extract::Path;
    use axum::http::HeaderMap;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let app = Router::new().route(
        "/v1/relays/{id}",
        axum::routing::post(
            move |Path(id): Path<String>,
                  headers: HeaderMap,
                  axum::Json(cmd): axum::Json<Value>| {
                let tx = tx.clone();
                async move {
                    let auth = authorization(&headers);
                    let state = cmd["state"].clone();
                    let _ = tx.send((id.clone(), auth, cmd));
                    axum::Json(
                        json!({"id": id, "name": "Furnace", "state": state, "safe_state": "off",
                    "function_hint": "heat", "lease_remaining_s": null}),
                    )
                }
            },
        ),
    );
    let url = serve(app).await?;
    Ok((url, rx))
}

#[tokio::test]
async fn decision_loop_commands_the_heat_relay_with_a_lease() -> R {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(&config(dir.path(), &["--tick-s", "0.1", "--lease-s", "8"])?).await?;
    let f = Fixture { engine, _dir: dir };
    let (url, mut commands) = fake_relay_agent().await?;
    heat_to(&f, 20.0, 0, 0).await?;
    // A reading before the loop starts: without one it is in sensor-loss mode, whose duty may
    // call for heat at this instant too.
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(18.0)))).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let control = f.engine.spawn_control(stop_rx);
    let got = f
        .call(
            "POST",
            "/v1/relays/register",
            Some(&f.agent("relay1")),
            Some(&registration("relay1", &url)),
        )
        .await?;
    assert_eq!(got.0, StatusCode::OK);

    // Wait for the command that carries `want`, skipping renewals of the other state.
    async fn next_with(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Option<String>, Value)>,
        want: &str,
    ) -> R<(String, Option<String>, Value)> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = tokio::time::timeout_at(deadline, rx.recv())
                .await?
                .ok_or_else(|| anyhow::anyhow!("closed"))?;
            if got.2["state"] == want {
                return Ok(got);
            }
        }
    }

    let (id, auth, cmd) = next_with(&mut commands, "on").await?;
    assert_eq!(id, "heat", "only the heat output is commanded");
    assert_eq!(cmd["lease_s"], 8);
    assert_eq!(
        auth,
        Some(format!(
            "Bearer {}",
            f.engine.device_key("relay1", KeyRole::Both).engine_credential()
        ))
    );
    let view = f.get("/v1/control").await?;
    assert_eq!(view["decision"]["heat"], true);
    assert_eq!(view["decision"]["reason_code"], "heat_below_band");

    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(20.75)))).await?;
    let (_, _, cmd) = next_with(&mut commands, "off").await?;
    assert_eq!(cmd.get("lease_s"), None);
    let decisions = f.get("/v1/control/decisions").await?;
    assert_eq!(decisions[0]["reason_code"], "heat_above_band", "{decisions}");
    assert_eq!(decisions[1]["reason_code"], "heat_below_band", "{decisions}");
    // The engine records the state the relay agent answered with once the reply arrives.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while f.get("/v1/relays").await?[1]["state"] != "off" {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "relay state never recorded as off"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let _ = stop_tx.send(true);
    control.await?;
    Ok(())
}

/// A relay agent whose heat output is on (switched 30 s ago) and that answers commands with
/// `command_reply` (status, body). Every request is reported in order as "METHOD PATH state".
async fn stateful_relay_agent(
    command_reply: (StatusCode, Value),
) -> R<(String, tokio::sync::mpsc::UnboundedReceiver<String>)> {
    use axum::extract::Path;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let heat = json!({"id": "heat", "name": "Furnace", "state": "on", "safe_state": "off",
        "function_hint": "heat", "lease_remaining_s": 40.0, "changed_s_ago": 30.0, "cycles": 1,
        "protection": {"min_on_s": 0, "min_off_s": 0, "max_on_s": null, "interlocked_with": []}});
    let list = json!({"host_id": "relay1", "outputs": [heat.clone()]});
    let read_tx = tx.clone();
    let app = Router::new()
        .route(
            "/v1/relays",
            axum::routing::get(move || {
                let _ = read_tx.send("GET /v1/relays".to_owned());
                let list = list.clone();
                async move { axum::Json(list) }
            }),
        )
        .route(
            "/v1/relays/{id}",
            axum::routing::post(
                move |Path(id): Path<String>, axum::Json(cmd): axum::Json<Value>| {
                    let _ = tx.send(format!("POST /v1/relays/{id} {}", cmd["state"]));
                    let (status, body) = command_reply.clone();
                    async move { (status, axum::Json(body)) }
                },
            ),
        );
    let url = serve(app).await?;
    Ok((url, rx))
}

async fn next_request(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> R<String> {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await?
        .ok_or_else(|| anyhow::anyhow!("relay agent gone"))
}

/// After a (re)start the engine reads every relay agent's state before it commands anything,
/// and continues the minimum on time from the agent's report: a furnace that has run 30 s of a
/// 10-minute minimum stays on although the room is warm, instead of being cut or re-commanded
/// blindly.
#[tokio::test]
async fn engine_reads_relay_states_before_commanding() -> R {
    let on = json!({"id": "heat", "name": "Furnace", "state": "on", "safe_state": "off",
        "function_hint": "heat", "lease_remaining_s": 120.0, "changed_s_ago": 31.0, "cycles": 1});
    let (url, mut requests) = stateful_relay_agent((StatusCode::OK, on)).await?;
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(&config(dir.path(), &["--tick-s", "0.1"])?).await?;
    let f = Fixture { engine, _dir: dir };
    // What the database knows from before the restart: the agent, its heat output off.
    let got = f
        .call(
            "POST",
            "/v1/relays/register",
            Some(&f.agent("relay1")),
            Some(&registration("relay1", &url)),
        )
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    heat_to(&f, 20.0, 600, 0).await?;
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(22.0)))).await?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let control = f.engine.spawn_control(stop_rx);
    assert_eq!(next_request(&mut requests).await?, "GET /v1/relays", "read first");
    assert_eq!(next_request(&mut requests).await?, r#"POST /v1/relays/heat "on""#, "renewed");
    let view = f.get("/v1/control").await?;
    assert_eq!(view["decision"]["heat"], true, "{view}");
    assert_eq!(view["decision"]["reason_code"], "min_on_time", "{view}");
    // The agent's report is kept and shown.
    let relays = f.get("/v1/relays").await?;
    let heat = relays
        .as_array()
        .and_then(|r| r.iter().find(|r| r["output_id"] == "heat"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(heat["state"], "on", "{heat}");
    assert_eq!(heat["reported"]["cycles"], 1, "{heat}");
    let _ = stop_tx.send(true);
    control.await?;
    Ok(())
}

/// A relay agent's refusal (here: its minimum off time) is recorded with its reason and shown
/// on the relay, until a command is carried out again.
#[tokio::test]
async fn relay_refusals_are_recorded() -> R {
    let refusal = json!({"status": "error", "code": "short_cycle",
        "error": "minimum off time: 300 s, 120 s left"});
    let (url, mut requests) = stateful_relay_agent((StatusCode::CONFLICT, refusal)).await?;
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(&config(dir.path(), &["--tick-s", "0.1"])?).await?;
    let f = Fixture { engine, _dir: dir };
    f.call(
        "POST",
        "/v1/relays/register",
        Some(&f.agent("relay1")),
        Some(&registration("relay1", &url)),
    )
    .await?;
    heat_to(&f, 20.0, 0, 0).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let control = f.engine.spawn_control(stop_rx);
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(18.0)))).await?;
    loop {
        if next_request(&mut requests).await?.starts_with("POST") {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let relays = f.get("/v1/relays").await?;
        let error = relays
            .as_array()
            .and_then(|r| r.iter().find(|r| r["output_id"] == "heat"))
            .map(|r| r["command_error"].clone())
            .unwrap_or_default();
        if error == "minimum off time: 300 s, 120 s left" {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "refusal not recorded: {relays}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Asked again within seconds (the default lease is 120 s: renewals come every 30 s).
    let asked = tokio::time::Instant::now();
    loop {
        if next_request(&mut requests).await?.starts_with("POST") {
            break;
        }
    }
    let again = asked.elapsed();
    assert!(again < Duration::from_secs(8), "refused command repeated after {again:?}");
    let _ = stop_tx.send(true);
    control.await?;
    Ok(())
}

#[test]
fn openapi_document_matches_the_committed_one() -> R {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/engine.json");
    let generated = serde_json::to_string_pretty(&hearth_engine::openapi())? + "\n";
    if std::env::var_os("HEARTH_BLESS").is_some() {
        std::fs::write(&path, &generated)?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/engine.json is out of date with the code. If the API change is intended, \
         accept it with `HEARTH_BLESS=1 cargo test -p hearth-engine --test api openapi` \
         (or `cargo xtask openapi`) and commit the file."
    );
    Ok(())
}

#[test]
fn example_config_parses() -> R {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/engine.toml");
    let p = path.to_string_lossy().to_string();
    let c: Config = hearth_common::config::load_from(["hearth-engine", "--config", &p])?;
    assert_eq!(c.listen.port(), 8080);
    assert_eq!(c.lease_s, 120);
    Ok(())
}

fn backlog(host: &str, stamps: &[(&str, f64)]) -> String {
    let updates: Vec<Value> = stamps
        .iter()
        .map(|(ts, v)| {
            json!({"host_id": host, "sensors": {"28-0316a2797bff":
                {"type": "DS18B20", "value": v, "alias": "old name", "timestamp": ts}}})
        })
        .collect();
    json!({"host_id": host, "updates": updates, "agent_time": Timestamp::now().to_string()})
        .to_string()
}

async fn reading_count(f: &Fixture) -> R<usize> {
    let page = f
        .get("/v1/sensors/28-0316a2797bff/readings?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z")
        .await?;
    Ok(page["points"].as_array().map_or(0, Vec::len))
}

#[tokio::test]
async fn backlog_is_idempotent_and_never_replaces_the_latest() -> R {
    let f = fixture().await?;
    let cred = f.agent("pi");
    // The live reading first (newest), with the current alias.
    let live = json!({"host_id": "pi", "sensors": {"28-0316a2797bff":
        {"type": "DS18B20", "value": 22.0, "alias": "hall", "timestamp": "2026-06-01T12:00:00Z"}}})
    .to_string();
    let got = f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&live)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);

    let body = backlog(
        "pi",
        &[
            ("2026-06-01T11:00:00Z", 18.0),
            ("2026-06-01T11:00:10Z", 18.5),
            ("2026-06-01T11:00:20Z", 19.0),
        ],
    );
    for _ in 0..2 {
        let got = f.call("PUT", "/v1/sensors/backlog", Some(&cred), Some(&body)).await?;
        assert_eq!(
            got,
            (StatusCode::CREATED, json!({"status": "ok", "updates": 3, "readings": 3}))
        );
    }
    // Sent twice (the agent died before it saw the answer): stored once.
    assert_eq!(reading_count(&f).await?, 4);
    let sensors = f.get("/v1/sensors").await?;
    assert_eq!(sensors[0]["latest"]["value"], 22.0);
    assert_eq!(sensors[0]["latest"]["at"], "2026-06-01T12:00:00Z");
    assert_eq!(sensors[0]["alias"], "hall", "an old alias came back with the backlog");
    let page = f
        .get("/v1/sensors/28-0316a2797bff/readings?from=2026-06-01T11:00:00Z&to=2026-06-01T11:00:11Z")
        .await?;
    assert_eq!(
        raw(&page),
        json!([{"at": "2026-06-01T11:00:00Z", "value": 18.0},
               {"at": "2026-06-01T11:00:10Z", "value": 18.5}])
    );
    let agents = f.get("/v1/agents").await?;
    assert_eq!(agents[0]["host_id"], "pi");
    assert_eq!(agents[0]["clock_skewed"], false);
    Ok(())
}

#[tokio::test]
async fn bad_backlogs_get_4xx_and_change_nothing() -> R {
    let f = fixture().await?;
    let cred = f.agent("h1");
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let update = |host: &str, reading: Value| json!({"host_id": host, "sensors": {"s1": reading}});
    let good = json!({"type": "x", "value": 1.0, "timestamp": "2026-01-01T00:00:00Z"});
    let cases: Vec<(String, StatusCode, &str, &str)> = vec![
        ("{not json".into(), StatusCode::BAD_REQUEST, "malformed_json", "not valid JSON"),
        (json!({"updates": []}).to_string(), unprocessable, "missing_field", "host_id field is missing"),
        (json!({"host_id": "h1"}).to_string(), unprocessable, "missing_field", "updates field is missing"),
        (json!({"host_id": "h1", "updates": []}).to_string(), unprocessable, "invalid_field", "1 to 1000"),
        (json!({"host_id": "h1", "updates": {}}).to_string(), unprocessable, "invalid_field", "array"),
        (
            json!({"host_id": "h1", "updates": vec![update("h1", good.clone()); 1001]}).to_string(),
            unprocessable,
            "invalid_field",
            "1 to 1000",
        ),
        (
            json!({"host_id": "h1", "updates": [update("h1", good.clone()), update("h2", good.clone())]})
                .to_string(),
            unprocessable,
            "invalid_field",
            "updates[1]: host_id must be the backlog's host_id",
        ),
        (
            json!({"host_id": "h1", "updates": [update("h1", json!({"type": "x", "value": 1.0}))]})
                .to_string(),
            unprocessable,
            "missing_field",
            "updates[0]: sensors.s1.timestamp field is missing",
        ),
        (
            json!({"host_id": "h1", "updates": [update("h1", good.clone()),
                update("h1", json!({"type": "x", "value": "warm", "timestamp": "2026-01-01T00:00:00Z"}))]})
            .to_string(),
            unprocessable,
            "invalid_field",
            "updates[1]: sensors.s1.value field must be a number",
        ),
        (
            json!({"host_id": "h1", "updates": [42]}).to_string(),
            unprocessable,
            "invalid_field",
            "updates[0]: body must be a JSON object",
        ),
    ];
    for (body, status, code, text) in cases {
        let got = f.call("PUT", "/v1/sensors/backlog", Some(&cred), Some(&body)).await?;
        assert_error(&got, status, code, text);
    }
    let body = json!({"host_id": "h1", "updates": [update("h1", good)]}).to_string();
    let got = f.call("PUT", "/v1/sensors/backlog", None, Some(&body)).await?;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", "credential required");
    let got = f.call("PUT", "/v1/sensors/backlog", Some(&f.agent("h2")), Some(&body)).await?;
    assert_error(&got, StatusCode::FORBIDDEN, "forbidden", "cannot act for host");
    assert_eq!(f.get("/v1/sensors").await?, json!([]));
    assert_eq!(f.get("/v1/agents").await?, json!([]));
    Ok(())
}

#[tokio::test]
async fn skewed_agent_clocks_are_flagged_and_live_readings_re_timed() -> R {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(&config(dir.path(), &["--clock-skew-max-s", "30"])?).await?;
    let f = Fixture { engine, _dir: dir };
    let cred = f.agent("pi");
    let now = Timestamp::now();
    let hour = jiff::SignedDuration::from_hours(1);
    // A Pi Zero booted an hour in the past: it read the sensor 2 s before it sent the report.
    let agent_now = now.checked_sub(hour)?;
    let read_at = agent_now.checked_sub(jiff::SignedDuration::from_secs(2))?;
    let live = |read_at: Timestamp, agent_now: Timestamp| {
        json!({"host_id": "pi", "agent_time": agent_now.to_string(),
            "sensors": {"28-0316a2797bff": {"type": "DS18B20", "value": 20.5,
            "timestamp": read_at.to_string()}}})
        .to_string()
    };
    let got =
        f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&live(read_at, agent_now))).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let agents = f.get("/v1/agents").await?;
    assert_eq!(agents[0]["clock_skewed"], true, "{agents}");
    assert!(agents[0]["clock_offset_s"].as_f64().is_some_and(|s| (s + 3600.0).abs() < 5.0));
    // Stored at the engine's time of the reading (≈ now − 2 s), not an hour ago: it is the
    // sensor's latest, fresh reading.
    let sensors = f.get("/v1/sensors").await?;
    let at: Timestamp = sensors[0]["latest"]["at"].as_str().unwrap_or_default().parse()?;
    let error = at.duration_since(now.checked_sub(jiff::SignedDuration::from_secs(2))?).abs();
    assert!(error < jiff::SignedDuration::from_secs(5), "stored at {at}, now {now}");
    assert_eq!(sensors[0]["stale"], false);

    // A clock an hour ahead is re-timed too, instead of refused as "in the future".
    let ahead = Timestamp::now().checked_add(hour)?;
    let got = f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&live(ahead, ahead))).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);

    // A backlog read by the same clock (an hour behind) is re-timed by the same offset.
    let queued = read_at.checked_sub(jiff::SignedDuration::from_mins(30))?;
    let body = json!({"host_id": "pi", "agent_time": agent_now.to_string(), "updates": [
        {"host_id": "pi", "sensors": {"28-0316a2797bff":
            {"type": "DS18B20", "value": 19.0, "timestamp": queued.to_string()}}}]})
    .to_string();
    let got = f.call("PUT", "/v1/sensors/backlog", Some(&cred), Some(&body)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let page = f.get("/v1/sensors/28-0316a2797bff/readings").await?;
    let stored = raw(&page);
    let at = stored.as_array().into_iter().flatten().find(|p| p["value"] == 19.0);
    let at: Timestamp = at.and_then(|p| p["at"].as_str()).unwrap_or_default().parse()?;
    let want = queued.checked_add(hour)?;
    assert!(at.duration_since(want).abs() < jiff::SignedDuration::from_secs(5), "{at} {want}");

    // The clock is fixed (within 30 s): no longer flagged, readings kept as timestamped.
    let fixed = Timestamp::now().checked_sub(jiff::SignedDuration::from_secs(10))?;
    let got = f
        .call("PUT", "/v1/sensors/update", Some(&cred), Some(&live(fixed, Timestamp::now())))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let agents = f.get("/v1/agents").await?;
    assert_eq!(agents[0]["clock_skewed"], false, "{agents}");
    let page = f.get("/v1/sensors/28-0316a2797bff/readings").await?;
    let stamps: Vec<&str> =
        page["points"].as_array().into_iter().flatten().filter_map(|r| r["at"].as_str()).collect();
    let fixed_ms = Timestamp::from_millisecond(fixed.as_millisecond())?.to_string();
    assert!(stamps.contains(&fixed_ms.as_str()), "{stamps:?} lacks {fixed_ms}");
    Ok(())
}

/// The engine answers each registration with the agent's fallback program (heat: the frost
/// floor from a probe of the agent's own host, else blind; the rest off), and records a
/// fallback the agent reports until the engine commands it again.
#[tokio::test]
async fn registration_hands_over_the_fallback_program_and_records_a_fallback() -> R {
    let f = fixture().await?;
    let cred = f.agent("relay1");
    let url = "http://10.0.0.7:8081";
    let got = f
        .call("POST", "/v1/relays/register", Some(&cred), Some(&registration("relay1", url)))
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let program = &got.1["fallback"];
    assert_eq!(program["outputs"]["aux1"], json!({"mode": "off"}), "{program}");
    assert_eq!(program["outputs"]["heat"]["mode"], "frost", "{program}");
    assert_eq!(program["outputs"]["heat"]["setpoint_c"], 7.0, "{program}");
    assert_eq!(program["outputs"]["heat"]["sensor"], Value::Null, "no probe on relay1 yet");
    assert_eq!(program["outputs"]["heat"]["blind"], json!({"pct": 10, "period_s": 1800}));
    // A probe reported under the relay agent's own host becomes the frost sensor.
    let probe = f.agent("relay1");
    let got = f
        .call("PUT", "/v1/sensors/update", Some(&probe), Some(&update("relay1", json!(6.5))))
        .await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let mut body: Value = serde_json::from_str(&registration("relay1", url))?;
    body["fallback"] = json!({"since_s_ago": 3600.0, "why": "engine_silent",
        "program": program, "doing": {}});
    let got = f.call("POST", "/v1/relays/register", Some(&cred), Some(&body.to_string())).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    assert_eq!(
        got.1["fallback"]["outputs"]["heat"]["sensor"],
        json!({"kind": "local", "id": "1058F50F01080047"})
    );
    let agents = f.get("/v1/agents").await?;
    let relay = agents.as_array().and_then(|a| a.iter().find(|a| a["kind"] == "relay")).cloned();
    let fallback = relay.map(|a| a["fallback"].clone()).unwrap_or_default();
    assert_eq!(fallback["why"], "engine_silent", "{agents}");
    assert_eq!(fallback["ended_at"], Value::Null, "{agents}");
    assert_eq!(f.get("/v1/relays").await?[1]["agent_fallback"], fallback);
    // Registered again out of fallback: the engine took over.
    f.call("POST", "/v1/relays/register", Some(&cred), Some(&registration("relay1", url))).await?;
    let relays = f.get("/v1/relays").await?;
    assert!(relays[1]["agent_fallback"]["ended_at"].is_string(), "{relays}");
    Ok(())
}

impl Fixture {
    /// Register relay agent `relay1` (`registration`), answering the engine's acknowledgement.
    async fn register_relay1(&self) -> R<(StatusCode, Value)> {
        let body = registration("relay1", "http://10.0.0.7:8081");
        self.call("POST", "/v1/relays/register", Some(&self.agent("relay1")), Some(&body)).await
    }
}

/// An admin chooses an output's fallback; a bad choice is a 422 naming the field and changes
/// nothing; `null` returns to the default; the next registration's answer carries it, and
/// `GET /v1/relays` shows each output's program in force and whose choice it is.
#[tokio::test]
async fn an_admin_chooses_an_outputs_fallback() -> R {
    let f = fixture().await?;
    f.register_relay1().await?;
    let heat = |relays: &Value| -> Value {
        let found = relays.as_array().and_then(|r| r.iter().find(|r| r["output_id"] == "heat"));
        found.cloned().unwrap_or_default()
    };
    let shown = heat(&f.get("/v1/relays").await?);
    assert_eq!(shown["fallback_program"]["mode"], "frost", "{shown}");
    assert_eq!(shown["fallback_chosen"], false, "{shown}");
    let path = "/v1/relays/relay1/heat/fallback";
    let blind = r#"{"program": {"mode": "blind_duty", "pct": 20, "period_s": 900}}"#;
    let got = f.call("PUT", path, None, Some(blind)).await?;
    assert_error(&got, StatusCode::UNAUTHORIZED, "unauthorized", "");
    let admin = f.admin();
    for (bad, field) in [
        (r#"{"program": {"mode": "blind_duty", "pct": 20, "period_s": 5}}"#, "program.period_s"),
        (
            r#"{"program": {"mode": "frost", "setpoint_c": 40, "blind": {"pct": 10, "period_s": 1800}}}"#,
            "program.setpoint_c",
        ),
        (
            r#"{"program": {"mode": "frost", "setpoint_c": 7, "sensor": {"kind": "local", "id": ""}, "blind": {"pct": 10, "period_s": 1800}}}"#,
            "program.sensor.id",
        ),
    ] {
        let got = f.call("PUT", path, Some(&admin), Some(bad)).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", field);
    }
    let got = f.call("PUT", path, Some(&admin), Some("{}")).await?;
    assert_eq!(got.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", got.1);
    let got = f.call("PUT", "/v1/relays/relay1/nope/fallback", Some(&admin), Some(blind)).await?;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", "nope");
    let got = f.call("PUT", path, Some(&admin), Some(blind)).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    let chosen = json!({"mode": "blind_duty", "pct": 20, "period_s": 900});
    assert_eq!(got.1["outputs"]["heat"], chosen);
    let ack = f.register_relay1().await?;
    assert_eq!(ack.1["fallback"]["outputs"]["heat"], chosen);
    let shown = heat(&f.get("/v1/relays").await?);
    assert_eq!((&shown["fallback_program"], &shown["fallback_chosen"]), (&chosen, &json!(true)));
    let got = f.call("PUT", path, Some(&admin), Some(r#"{"program": null}"#)).await?;
    assert_eq!(got.1["outputs"]["heat"]["mode"], "frost", "{}", got.1);
    let shown = heat(&f.get("/v1/relays").await?);
    assert_eq!(shown["fallback_program"]["mode"], "frost", "{shown}");
    assert_eq!(shown["fallback_chosen"], false, "{shown}");
    Ok(())
}

/// An admin points a heat output's frost program at a sensor agent of the site: the engine
/// refuses a URL that is not plain http or carries user info, a sensor that host does not
/// report and a token from the client (422 naming the field, nothing stored), and fills in the
/// sensor agent's read token in the program it hands the relay agent, never in what the admin
/// is shown.
#[tokio::test]
async fn a_frost_program_reads_a_sensor_agent_with_the_token_the_engine_fills_in() -> R {
    let f = fixture().await?;
    f.register_relay1().await?;
    let (probe, report) = (f.agent("hall"), update("hall", json!(6.5)));
    let got = f.call("PUT", "/v1/sensors/update", Some(&probe), Some(&report)).await?;
    assert_eq!(got.0, StatusCode::CREATED, "{}", got.1);
    let path = "/v1/relays/relay1/heat/fallback";
    let choice = |sensor: Value| {
        json!({"program": {"mode": "frost", "setpoint_c": 7.0, "sensor": sensor,
            "blind": {"pct": 10, "period_s": 1800}}})
        .to_string()
    };
    let source = |url: &str, host: &str, id: &str| json!({"kind": "sensor_agent", "url": url, "host": host, "id": id});
    let admin = f.admin();
    let good = "http://10.0.0.5:8082";
    let mut with_token = source(good, "hall", "1058F50F01080047");
    with_token["token"] = json!("00ff");
    for (sensor, field) in [
        (source("https://10.0.0.5:8082", "hall", "1058F50F01080047"), "program.sensor.url"),
        (source("http://me:pw@10.0.0.5:8082", "hall", "1058F50F01080047"), "program.sensor.url"),
        (source(good, "hall", "28-000000000bad"), "program.sensor.id"),
        // The sensor exists, but under another host.
        (source(good, "attic", "1058F50F01080047"), "program.sensor.id"),
        (with_token, "program.sensor.token"),
    ] {
        let got = f.call("PUT", path, Some(&admin), Some(&choice(sensor.clone()))).await?;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", field);
        let ack = f.register_relay1().await?;
        assert_eq!(ack.1["fallback"]["outputs"]["heat"]["sensor"], Value::Null, "{sensor}");
    }
    let got = f
        .call("PUT", path, Some(&admin), Some(&choice(source(good, "hall", "1058F50F01080047"))))
        .await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    // The admin is not shown the token.
    assert_eq!(got.1["outputs"]["heat"]["sensor"], source(good, "hall", "1058F50F01080047"));
    // The relay agent gets it: the read token of the key the sensor agent reports with.
    let ack = f.register_relay1().await?;
    let token = f.engine.device_key("hall", KeyRole::Both).read_token();
    let mut handed = source(good, "hall", "1058F50F01080047");
    handed["token"] = json!(token);
    assert_eq!(ack.1["fallback"]["outputs"]["heat"]["sensor"], handed);
    Ok(())
}
