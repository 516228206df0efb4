//! The relay agent from the outside: every route through `app(...)` with `oneshot`, the agent
//! started in-process on 127.0.0.1:0 with the simulated hardware, registration against a fake
//! engine, the example configuration and the OpenAPI snapshot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use hearth_common::auth::{DeviceCredential, SiteSecret};
use hearth_common::simworld::RelayWorld;
use hearth_proto::agents::KeyRole;
use hearth_proto::relays::{
    CommandOutcome, FallbackReason, OutputStatus, RelayAgentStatus, RelayCommand, RelayFunction,
    RelayList, RelayRegistration, RelayState,
};
use hearth_proto::{ErrorBody, ErrorCode};
use hearth_relay_agent::config::{Interlock, OutputConfig, default_outputs};
use hearth_relay_agent::hw::{HwError, RelayBank, SimBank};
use hearth_relay_agent::{Agent, AppState, Config, Controller, app, openapi};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const HOST_ID: &str = "relay-test";

fn secret() -> anyhow::Result<SiteSecret> {
    SiteSecret::from_hex(&"11".repeat(32))
}

fn device_key() -> anyhow::Result<DeviceCredential> {
    Ok(secret()?.device_key(HOST_ID, KeyRole::Relay))
}

/// An app on the simulated bank, with its world file in a temporary directory.
struct Fixture {
    _dir: tempfile::TempDir,
    world: PathBuf,
    state: AppState,
    key: DeviceCredential,
}

/// The default outputs (heat, cool, fan) without protection times, so commands take effect at
/// once; the protection tests set their own.
fn unprotected() -> Vec<OutputConfig> {
    default_outputs()
        .into_iter()
        .map(|o| OutputConfig { min_on_s: Some(0), min_off_s: Some(0), max_on_s: Some(0), ..o })
        .collect()
}

fn heat_cool() -> Vec<Interlock> {
    vec![Interlock { name: "heat-cool".into(), outputs: vec!["heat".into(), "cool".into()] }]
}

impl Fixture {
    fn new() -> anyhow::Result<Self> {
        Self::with_outputs(unprotected())
    }

    fn with_outputs(outputs: Vec<OutputConfig>) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let world = dir.path().join("world.json");
        let bank = SimBank::new(&world, &outputs)?;
        let controller = Arc::new(Controller::new(Box::new(bank), outputs, &heat_cool())?);
        let key = device_key()?;
        let state = AppState::new(HOST_ID, key.clone(), controller);
        Ok(Self { _dir: dir, world, state, key })
    }

    fn engine_auth(&self) -> String {
        format!("Bearer {}", self.key.engine_credential())
    }

    async fn call(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> anyhow::Result<(StatusCode, Value)> {
        self.call_full(method, uri, headers, body).await.map(|(status, _, value)| (status, value))
    }

    async fn call_full(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Value)> {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))?;
        let resp = app(self.state.clone()).oneshot(req).await?;
        let status = resp.status();
        let response_headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let value = serde_json::from_slice(&bytes)
            .with_context(|| format!("{method} {uri}: body is not JSON: {bytes:?}"))?;
        Ok((status, response_headers, value))
    }

    /// POST a command with the engine's credential and a JSON content type.
    async fn command(&self, id: &str, body: &str) -> anyhow::Result<(StatusCode, Value)> {
        let auth = self.engine_auth();
        self.call(
            "POST",
            &format!("/v1/relays/{id}"),
            &[("authorization", &auth), ("content-type", "application/json")],
            Some(body),
        )
        .await
    }

    fn output(&self, id: &str) -> anyhow::Result<OutputStatus> {
        self.state.controller().output(id).with_context(|| format!("no output {id}"))
    }
}

fn error_code(body: &Value) -> anyhow::Result<ErrorCode> {
    let body: ErrorBody = serde_json::from_value(body.clone())
        .with_context(|| format!("not an ErrorBody: {body}"))?;
    assert_eq!(body.status, "error");
    Ok(body.code)
}

#[tokio::test]
async fn list_and_get_outputs() -> anyhow::Result<()> {
    let f = Fixture::new()?;
    let (status, body) = f.call("GET", "/v1/relays", &[], None).await?;
    assert_eq!(status, StatusCode::OK);
    let list: RelayList = serde_json::from_value(body)?;
    assert_eq!(list.host_id, HOST_ID);
    let ids: Vec<_> = list.outputs.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["heat", "cool", "fan"]);
    assert!(
        list.outputs.iter().all(|o| o.state == RelayState::Off && o.lease_remaining_s.is_none())
    );

    let (status, body) = f.call("GET", "/v1/relays/cool", &[], None).await?;
    assert_eq!(status, StatusCode::OK);
    let cool: OutputStatus = serde_json::from_value(body)?;
    assert_eq!(
        (cool.name.as_str(), cool.function_hint),
        ("Air conditioner", Some(RelayFunction::Cool))
    );
    assert_eq!(cool.safe_state, RelayState::Off);

    let (status, body) = f.call("GET", "/v1/relays/nope", &[], None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body)?, ErrorCode::NotFound);
    Ok(())
}

#[tokio::test]
async fn commands_switch_outputs_and_the_world_file() -> anyhow::Result<()> {
    let f = Fixture::new()?;
    // At start: every output safe, in the world file too.
    let world = RelayWorld::read(&f.world)?;
    assert_eq!(world.outputs.len(), 3);
    assert!(world.outputs.values().all(|o| !o.on));

    let (status, body) = f.command("heat", r#"{"state":"on","lease_s":120}"#).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let heat: OutputStatus = serde_json::from_value(body)?;
    assert_eq!(heat.state, RelayState::On);
    assert!(heat.lease_remaining_s.is_some_and(|s| s > 119.0 && s <= 120.0));
    assert!(RelayWorld::read(&f.world)?.is_on(RelayFunction::Heat));
    assert!(!RelayWorld::read(&f.world)?.is_on(RelayFunction::Cool));

    let (status, body) = f.command("heat", r#"{"state":"off"}"#).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    let heat: OutputStatus = serde_json::from_value(body)?;
    assert_eq!((heat.state, heat.lease_remaining_s), (RelayState::Off, None));
    assert!(!RelayWorld::read(&f.world)?.is_on(RelayFunction::Heat));

    // `lease_s` is ignored for off; a charset parameter is fine.
    let auth = f.engine_auth();
    let (status, _) = f
        .call(
            "POST",
            "/v1/relays/fan",
            &[("authorization", &auth), ("content-type", "application/json; charset=utf-8")],
            Some(r#"{"state":"off","lease_s":5}"#),
        )
        .await?;
    assert_eq!(status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn bad_commands_are_refused_and_change_nothing() -> anyhow::Result<()> {
    let f = Fixture::new()?;
    // heat is on by lease, cool is off: a refused command must leave both as they are.
    let (status, _) = f.command("heat", r#"{"state":"on","lease_s":600}"#).await?;
    assert_eq!(status, StatusCode::OK);

    let engine = f.engine_auth();
    let agent = format!("Bearer {}", f.key.agent_credential(HOST_ID));
    let wrong_token = format!("Bearer engine.{}", "0".repeat(64));
    let other_device = format!(
        "Bearer {}",
        secret()?.device_key("other-host", KeyRole::Relay).engine_credential()
    );
    let json = ("content-type", "application/json");
    let big = format!(r#"{{"state":"off","pad":"{}"}}"#, "x".repeat(20_000));

    struct Case<'a> {
        what: &'a str,
        id: &'a str,
        headers: Vec<(&'a str, &'a str)>,
        body: &'a str,
        status: StatusCode,
        code: ErrorCode,
        /// A word the message must contain (the field it is about).
        mentions: &'a str,
    }
    fn with(auth: &str) -> Vec<(&str, &str)> {
        vec![("authorization", auth), ("content-type", "application/json")]
    }
    let cases = [
        Case {
            what: "malformed JSON",
            id: "heat",
            headers: with(&engine),
            body: r#"{"state":"#,
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::MalformedJson,
            mentions: "JSON",
        },
        Case {
            what: "trailing garbage",
            id: "heat",
            headers: with(&engine),
            body: r#"{"state":"off"} x"#,
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::MalformedJson,
            mentions: "JSON",
        },
        Case {
            what: "not an object",
            id: "heat",
            headers: with(&engine),
            body: r#"["off"]"#,
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::MalformedJson,
            mentions: "object",
        },
        Case {
            what: "empty body",
            id: "cool",
            headers: with(&engine),
            body: "",
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::MalformedJson,
            mentions: "JSON",
        },
        Case {
            what: "state of the wrong type",
            id: "heat",
            headers: with(&engine),
            body: r#"{"state":1}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "state",
        },
        Case {
            what: "unknown state",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"maybe","lease_s":10}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "state",
        },
        Case {
            what: "lease of the wrong type",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"on","lease_s":"ten"}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "lease_s",
        },
        Case {
            what: "a typo in a field name",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"off","leese_s":10}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "leese_s",
        },
        Case {
            what: "negative lease",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"on","lease_s":-5}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "lease_s",
        },
        Case {
            what: "fractional lease",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"on","lease_s":1.5}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "lease_s",
        },
        Case {
            what: "missing state",
            id: "heat",
            headers: with(&engine),
            body: r#"{"lease_s":10}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::MissingField,
            mentions: "state",
        },
        Case {
            what: "on without lease",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"on"}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::MissingField,
            mentions: "lease_s",
        },
        Case {
            what: "on with a null lease",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"on","lease_s":null}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::MissingField,
            mentions: "lease_s",
        },
        Case {
            what: "lease 0",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"on","lease_s":0}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "lease_s",
        },
        Case {
            what: "lease over 3600",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"on","lease_s":3601}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "lease_s",
        },
        // The documented bound holds for `off` too (it used to be ignored): heat stays on.
        Case {
            what: "off with a lease over 3600",
            id: "heat",
            headers: with(&engine),
            body: r#"{"state":"off","lease_s":3601}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "lease_s",
        },
        Case {
            what: "off with a zero lease",
            id: "heat",
            headers: with(&engine),
            body: r#"{"state":"off","lease_s":0}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "lease_s",
        },
        Case {
            what: "lease beyond u32",
            id: "cool",
            headers: with(&engine),
            body: r#"{"state":"on","lease_s":99999999999}"#,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: ErrorCode::InvalidField,
            mentions: "lease_s",
        },
        Case {
            what: "unknown output",
            id: "nope",
            headers: with(&engine),
            body: r#"{"state":"off"}"#,
            status: StatusCode::NOT_FOUND,
            code: ErrorCode::NotFound,
            mentions: "nope",
        },
        Case {
            what: "no credential",
            id: "heat",
            headers: vec![json],
            body: r#"{"state":"off"}"#,
            status: StatusCode::UNAUTHORIZED,
            code: ErrorCode::Unauthorized,
            mentions: "Bearer",
        },
        Case {
            what: "not a bearer credential",
            id: "heat",
            headers: with("Basic ZW5naW5lOng="),
            body: r#"{"state":"off"}"#,
            status: StatusCode::UNAUTHORIZED,
            code: ErrorCode::Unauthorized,
            mentions: "Bearer",
        },
        Case {
            what: "wrong engine token",
            id: "heat",
            headers: with(&wrong_token),
            body: r#"{"state":"off"}"#,
            status: StatusCode::FORBIDDEN,
            code: ErrorCode::Forbidden,
            mentions: "token",
        },
        Case {
            what: "another device's engine token",
            id: "heat",
            headers: with(&other_device),
            body: r#"{"state":"off"}"#,
            status: StatusCode::FORBIDDEN,
            code: ErrorCode::Forbidden,
            mentions: "token",
        },
        Case {
            what: "the agent's own token",
            id: "heat",
            headers: with(&agent),
            body: r#"{"state":"off"}"#,
            status: StatusCode::FORBIDDEN,
            code: ErrorCode::Forbidden,
            mentions: "engine",
        },
        Case {
            what: "wrong content type",
            id: "heat",
            headers: vec![("authorization", &engine), ("content-type", "text/plain")],
            body: r#"{"state":"off"}"#,
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: ErrorCode::Unsupported,
            mentions: "application/json",
        },
        Case {
            what: "no content type",
            id: "heat",
            headers: vec![("authorization", &engine)],
            body: r#"{"state":"off"}"#,
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: ErrorCode::Unsupported,
            mentions: "application/json",
        },
        Case {
            what: "body too large",
            id: "heat",
            headers: with(&engine),
            body: &big,
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: ErrorCode::TooLarge,
            mentions: "larger",
        },
    ];

    for case in cases {
        let before: Vec<_> = ["heat", "cool", "fan"]
            .iter()
            .map(|id| f.output(id).map(|o| o.state))
            .collect::<anyhow::Result<_>>()?;
        let (status, body) = f
            .call("POST", &format!("/v1/relays/{}", case.id), &case.headers, Some(case.body))
            .await?;
        assert_eq!(status, case.status, "{}: {body}", case.what);
        assert_eq!(error_code(&body)?, case.code, "{}: {body}", case.what);
        let message = body["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(case.mentions),
            "{}: message {message:?} should mention {:?}",
            case.what,
            case.mentions
        );
        let after: Vec<_> = ["heat", "cool", "fan"]
            .iter()
            .map(|id| f.output(id).map(|o| o.state))
            .collect::<anyhow::Result<_>>()?;
        assert_eq!(before, after, "{}: state changed", case.what);
        assert_eq!(after, [RelayState::On, RelayState::Off, RelayState::Off], "{}", case.what);
    }
    // The world file agrees: only the furnace runs.
    let world = RelayWorld::read(&f.world)?;
    assert!(world.is_on(RelayFunction::Heat) && !world.is_on(RelayFunction::Cool));
    Ok(())
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() -> anyhow::Result<()> {
    let f = Fixture::new()?;
    let (status, body) = f.call("GET", "/v1/nothing", &[], None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body)?, ErrorCode::NotFound);
    let (status, body) = f.call("DELETE", "/v1/relays/heat", &[], None).await?;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body)?, ErrorCode::Unsupported);
    let (status, body) = f.call("POST", "/v1/status", &[], None).await?;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(&body)?, ErrorCode::Unsupported);
    Ok(())
}

#[tokio::test]
async fn status_reports_health_and_engine_contact() -> anyhow::Result<()> {
    let f = Fixture::new()?;
    let (status, body) = f.call("GET", "/v1/status", &[], None).await?;
    assert_eq!(status, StatusCode::OK);
    let s: RelayAgentStatus = serde_json::from_value(body)?;
    assert!(s.service.healthy);
    assert_eq!(s.service.service, "hearth-relay-agent");
    assert_eq!((s.host_id.as_str(), s.backend.as_str()), (HOST_ID, "simulated"));
    assert_eq!(s.outputs.len(), 3);
    assert_eq!(s.since_engine_contact_s, None);

    f.command("fan", r#"{"state":"on","lease_s":30}"#).await?;
    let (_, body) = f.call("GET", "/v1/status", &[], None).await?;
    let s: RelayAgentStatus = serde_json::from_value(body)?;
    assert!(s.since_engine_contact_s.is_some_and(|t| (0.0..5.0).contains(&t)));
    let fan = s.outputs.iter().find(|o| o.id == "fan").context("no fan")?;
    assert!(fan.lease_remaining_s.is_some_and(|l| l > 25.0 && l <= 30.0));
    let last = fan.last_command.clone().context("no last command")?;
    assert_eq!(
        (last.state, last.lease_s, last.outcome),
        (RelayState::On, Some(30), CommandOutcome::Done)
    );
    assert_eq!((fan.cycles, fan.last_fallback.clone()), (1, None));
    let heat = s.outputs.iter().find(|o| o.id == "heat").context("no heat")?;
    assert_eq!(heat.protection.interlocked_with, ["cool"]);
    assert!(heat.last_command.is_none());
    Ok(())
}

/// heat: 60 s minimum on and off; heat and cool interlocked.
fn protected() -> Vec<OutputConfig> {
    unprotected()
        .into_iter()
        .map(|o| {
            if o.id == "heat" {
                OutputConfig { min_on_s: Some(60), min_off_s: Some(60), ..o }
            } else {
                o
            }
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn protections_refuse_with_409_and_defer_with_202() -> anyhow::Result<()> {
    let f = Fixture::with_outputs(protected())?;
    // The minimum off time counts from the start: on is refused, with when to retry.
    let (status, headers, body) = f
        .call_full(
            "POST",
            "/v1/relays/heat",
            &[("authorization", &f.engine_auth()), ("content-type", "application/json")],
            Some(r#"{"state":"on","lease_s":120}"#),
        )
        .await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body)?, ErrorCode::ShortCycle);
    assert_eq!(headers.get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"60"[..]));
    assert!(body["error"].as_str().is_some_and(|e| e.contains("minimum off time")), "{body}");
    assert_eq!(f.output("heat")?.state, RelayState::Off);
    assert_eq!(
        f.output("heat")?.last_command.map(|c| c.outcome),
        Some(CommandOutcome::Refused),
        "the refusal is in the status, for the engine and the user"
    );

    tokio::time::sleep(Duration::from_secs(60)).await;
    let (status, body) = f.command("heat", r#"{"state":"on","lease_s":120}"#).await?;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Interlock: cool cannot start while heat runs; neither output changes.
    let heat_before = f.output("heat")?;
    let (status, body) = f.command("cool", r#"{"state":"on","lease_s":120}"#).await?;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body)?, ErrorCode::Interlock);
    assert!(body["error"].as_str().is_some_and(|e| e.contains("heat is on")), "{body}");
    let world = RelayWorld::read(&f.world)?;
    assert!(world.is_on(RelayFunction::Heat) && !world.is_on(RelayFunction::Cool));
    assert_eq!(f.output("heat")?.lease_remaining_s, heat_before.lease_remaining_s);
    assert_eq!(f.output("cool")?.state, RelayState::Off);

    // Off 10 s after on: deferred until the minimum on time has passed.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (status, body) = f.command("heat", r#"{"state":"off"}"#).await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let heat: OutputStatus = serde_json::from_value(body)?;
    assert_eq!((heat.state, heat.pending_off_in_s), (RelayState::On, Some(50.0)));
    assert_eq!(heat.last_command.map(|c| c.outcome), Some(CommandOutcome::Deferred));
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(f.output("heat")?.state, RelayState::Off);
    assert!(!RelayWorld::read(&f.world)?.is_on(RelayFunction::Heat));
    // Now cool may start.
    let (status, body) = f.command("cool", r#"{"state":"on","lease_s":120}"#).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    Ok(())
}

/// A backend whose hardware check fails.
#[derive(Debug)]
struct Broken;

impl RelayBank for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn set(&mut self, _id: &str, _on: bool) -> Result<(), HwError> {
        Ok(())
    }
    fn get(&self, _id: &str) -> Result<bool, HwError> {
        Ok(false)
    }
    fn healthy(&self) -> Result<(), HwError> {
        Err(HwError::Device("relay board not answering".into()))
    }
}

#[tokio::test]
async fn status_is_503_when_the_hardware_fails() -> anyhow::Result<()> {
    let controller = Arc::new(Controller::new(Box::new(Broken), default_outputs(), &[])?);
    let state = AppState::new(HOST_ID, device_key()?, controller);
    let req = Request::get("/v1/status").body(Body::empty())?;
    let resp = app(state).oneshot(req).await?;
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let s: RelayAgentStatus =
        serde_json::from_slice(&resp.into_body().collect().await?.to_bytes())?;
    assert!(!s.service.healthy);
    assert!(s.service.checks.iter().any(|c| !c.ok && c.detail.contains("not answering")));
    Ok(())
}

#[tokio::test]
async fn openapi_route_serves_the_document() -> anyhow::Result<()> {
    let f = Fixture::new()?;
    let (status, body) = f.call("GET", "/v1/openapi.json", &[], None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::to_value(openapi())?);
    // Every route the agent serves is documented.
    for path in ["/v1/relays", "/v1/relays/{id}", "/v1/status", "/v1/openapi.json"] {
        assert!(body["paths"].get(path).is_some(), "{path} missing");
    }
    assert!(body["paths"]["/v1/relays/{id}"].get("post").is_some());
    assert!(body["components"]["securitySchemes"].get("engine").is_some());
    Ok(())
}

/// The engine's word that management work waits: its credential only, a well-formed body;
/// taken (202) and handed to the management task, nothing switched.
#[tokio::test]
async fn only_the_engine_says_that_management_work_waits() -> anyhow::Result<()> {
    let f = Fixture::new()?;
    let mut pending = f.state.pending().subscribe();
    let body = r#"{"settings_revision": 3, "commands": 1}"#;
    let json = ("content-type", "application/json");
    let wrong =
        format!("Bearer {}", secret()?.device_key("other", KeyRole::Relay).engine_credential());
    let agent = format!("Bearer {}", f.key.agent_credential(HOST_ID));
    for (headers, status) in [
        (vec![json], StatusCode::UNAUTHORIZED),
        (vec![json, ("authorization", wrong.as_str())], StatusCode::FORBIDDEN),
        (vec![json, ("authorization", agent.as_str())], StatusCode::FORBIDDEN),
    ] {
        let (got, _) = f.call("POST", "/v1/manage/pending", &headers, Some(body)).await?;
        assert_eq!(got, status);
    }
    let auth = f.engine_auth();
    let with = [json, ("authorization", auth.as_str())];
    let (got, err) =
        f.call("POST", "/v1/manage/pending", &with, Some(r#"{"settings_revision": -1}"#)).await?;
    assert_eq!(got, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    // Beyond the documented int64: the contract test's find.
    let beyond = r#"{"settings_revision": 9223372036854775808, "commands": 1}"#;
    let (got, err) = f.call("POST", "/v1/manage/pending", &with, Some(beyond)).await?;
    assert_eq!(got, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(err.to_string().contains("settings_revision"), "{err}");
    assert!(!pending.has_changed()?, "nothing refused reaches the agent");
    let (got, echo) = f.call("POST", "/v1/manage/pending", &with, Some(body)).await?;
    assert_eq!(got, StatusCode::ACCEPTED, "{echo}");
    assert!(pending.has_changed()?);
    let said = *pending.borrow_and_update();
    assert_eq!(said.map(|p| (p.settings_revision, p.commands)), Some((3, 1)));
    assert!(f.state.controller().outputs().iter().all(|o| !o.state.is_on()), "nothing switched");
    Ok(())
}

/// The committed document must match the generated one. `HEARTH_BLESS=1` rewrites it.
#[test]
fn openapi_snapshot() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/relay-agent.json");
    let generated = format!("{}\n", openapi().to_pretty_json()?);
    if std::env::var_os("HEARTH_BLESS").is_some() {
        std::fs::write(&path, &generated)?;
        return Ok(());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/relay-agent.json is out of date with the relay agent's API.\n\
         If the change is intended, accept it with:\n\
         \n    HEARTH_BLESS=1 cargo test -p hearth-relay-agent --test api openapi_snapshot\n\
         \nand commit the updated file."
    );
    Ok(())
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/relay-agent.toml")
}

#[test]
fn example_config_parses() -> anyhow::Result<()> {
    let path = example_config();
    let file = path.to_string_lossy().to_string();
    let config: Config =
        hearth_common::config::load_from(["hearth-relay-agent", "--config", &file])?;
    assert_eq!(config.listen, "0.0.0.0:8081".parse()?);
    assert_eq!(config.reregister_after_s, 60);
    // As installed, the example names no hardware: the agent refuses to start until someone
    // chooses (see the binary's own test below).
    assert_eq!(config.hardware, None);
    // The example spells out the defaults: same outputs, same protection.
    let resolved = |outputs: Vec<OutputConfig>| -> Vec<_> {
        outputs
            .into_iter()
            .map(|o| (o.id.clone(), o.function_hint, o.min_on_s(), o.min_off_s(), o.max_on_s()))
            .collect()
    };
    assert_eq!(resolved(config.effective_outputs()?), resolved(default_outputs()));
    let outputs = config.effective_outputs()?;
    assert_eq!(
        config.effective_interlocks(&outputs)?,
        hearth_common::config::load_from::<Config, _, _>(["hearth-relay-agent"])?
            .effective_interlocks(&default_outputs())?
    );

    // The commented-out examples are valid too: uncomment every `# key = value` line.
    let text = std::fs::read_to_string(&path)?;
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| !k.contains(' ')) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let dir = tempfile::tempdir()?;
    let all = dir.path().join("all.toml");
    std::fs::write(&all, uncommented)?;
    let file = all.to_string_lossy().to_string();
    let config: Config =
        hearth_common::config::load_from(["hearth-relay-agent", "--config", &file])?;
    assert_eq!(config.engine.as_deref(), Some("http://10.0.0.2:8080"));
    assert_eq!(config.host_id.as_deref(), Some("relay-hall"));
    assert!(
        config.device_key.as_ref().is_some_and(|k| k.expose().parse::<DeviceCredential>().is_ok())
    );
    assert_eq!(config.advertise_url.as_deref(), Some("http://10.0.0.7:8081"));
    assert_eq!(config.sim_world, Some(PathBuf::from("/tmp/hearth-sim-world.json")));
    // With the pins uncommented, the GPIO backends accept the outputs.
    let outputs = config.effective_outputs()?;
    let pins: Vec<_> = outputs.iter().map(|o| (o.pin, o.active_low)).collect();
    assert_eq!(pins, [(Some(17), true), (Some(27), true), (Some(22), true)]);
    assert_eq!(config.hardware, Some(hearth_relay_agent::config::Hardware::Rppal));
    let gpio =
        Config { hardware: Some(hearth_relay_agent::config::Hardware::GpioCdev), ..config.clone() };
    assert_eq!(gpio.effective_outputs()?.len(), 3);
    // Printing the configuration never shows the key.
    assert!(!format!("{config:?}").contains("0000000000000000000000000000000000"));
    Ok(())
}

/// What the fake engine saw: the Authorization header and the registration.
type Seen = (Option<String>, RelayRegistration);

/// A fake engine on 127.0.0.1:0 that refuses the first registration with a 503 (so the agent
/// must retry) and accepts the rest.
async fn fake_engine() -> anyhow::Result<(String, tokio::sync::mpsc::UnboundedReceiver<Seen>)> {
    use axum::extract::State;
    use axum::http::HeaderMap;
    use axum::response::IntoResponse;

    type EngineState = (tokio::sync::mpsc::UnboundedSender<Seen>, Arc<AtomicUsize>);
    async fn register(
        State((tx, count)): State<EngineState>,
        headers: HeaderMap,
        axum::Json(registration): axum::Json<RelayRegistration>,
    ) -> axum::response::Response {
        let auth =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let _ = tx.send((auth, registration));
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            let body = ErrorBody::new(ErrorCode::Unavailable, "starting up");
            return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
        }
        axum::Json(json!({"status": "ok", "engine_id": "fake-engine"})).into_response()
    }

    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let router = axum::Router::new()
        .route("/v1/relays/register", axum::routing::post(register))
        .with_state((tx, Arc::new(AtomicUsize::new(0))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((url, rx))
}

/// Wait for the next registration; the timeout only turns a hang into a failure.
async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Seen>) -> anyhow::Result<Seen> {
    tokio::time::timeout(Duration::from_secs(30), rx.recv())
        .await
        .context("no registration within 30 s")?
        .context("fake engine gone")
}

fn agent_config(engine: &str, world: &Path, extra: &[&str]) -> anyhow::Result<Config> {
    let key = device_key()?.to_string();
    let world = world.to_string_lossy().to_string();
    let mut args = vec![
        "hearth-relay-agent",
        "--engine",
        engine,
        "--listen",
        "127.0.0.1:0",
        "--host-id",
        HOST_ID,
        "--device-key",
        &key,
        "--hardware",
        "simulated",
        "--sim-world",
        &world,
    ];
    args.extend_from_slice(extra);
    hearth_common::config::load_from(args)
}

#[tokio::test]
async fn registers_with_the_engine_and_retries() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let world = dir.path().join("world.json");
    let (engine, mut rx) = fake_engine().await?;
    let config = agent_config(&engine, &world, &["--reregister-after-s", "1"])?;
    let agent = Agent::start(config).await?;
    let port = agent.local_addr().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

    let expected_auth = format!("Bearer {}", device_key()?.agent_credential(HOST_ID));
    // The first attempt is refused with a 503, the retry (after the backoff) is accepted, and
    // with nothing commanding the agent it registers again a second later.
    for attempt in 0..3 {
        let (auth, registration) = next(&mut rx).await?;
        assert_eq!(auth.as_deref(), Some(expected_auth.as_str()), "attempt {attempt}");
        assert_eq!(registration.host_id, HOST_ID);
        assert_eq!(registration.url, format!("http://127.0.0.1:{port}"));
        let ids: Vec<_> = registration.outputs.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["heat", "cool", "fan"]);
        assert!(registration.outputs.iter().all(|o| o.state == RelayState::Off));
        assert!(registration.agent_time.is_some());
    }

    let _ = stop.send(());
    running.await??;
    Ok(())
}

#[tokio::test]
async fn serves_over_http_and_stops_safe() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let world = dir.path().join("world.json");
    // An output whose safe state is on: started on, kept on at stop.
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        r#"
[[outputs]]
id = "heat"
name = "Furnace"
function_hint = "heat"
min_off_s = 0

[[outputs]]
id = "circ"
name = "Circulation"
function_hint = "fan"
safe_state = "on"
"#,
    )?;
    let file = file.to_string_lossy().to_string();
    let (engine, _rx) = fake_engine().await?;
    let agent = Agent::start(agent_config(&engine, &world, &["--config", &file])?).await?;
    let base = format!("http://{}", agent.local_addr());
    let on_at_start = RelayWorld::read(&world)?;
    assert!(on_at_start.is_on(RelayFunction::Fan) && !on_at_start.is_on(RelayFunction::Heat));

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));

    let client =
        hearth_proto::client::RelayAgentClient::new(&base, Some(device_key()?.engine_credential()));
    let heat =
        client.command("heat", &RelayCommand { state: RelayState::On, lease_s: Some(60) }).await?;
    assert_eq!(heat.state, RelayState::On);
    let circ =
        client.command("circ", &RelayCommand { state: RelayState::Off, lease_s: None }).await?;
    assert_eq!(circ.state, RelayState::Off);
    let world_now = RelayWorld::read(&world)?;
    assert!(world_now.is_on(RelayFunction::Heat) && !world_now.is_on(RelayFunction::Fan));
    assert_eq!(client.relays().await?.outputs.len(), 2);
    assert!(client.status().await?.service.healthy);

    // Shutdown: every output back to its safe state.
    let _ = stop.send(());
    running.await??;
    let after = RelayWorld::read(&world)?;
    assert!(!after.is_on(RelayFunction::Heat), "furnace off at stop");
    assert!(after.is_on(RelayFunction::Fan), "circulation back on (its safe state) at stop");
    Ok(())
}

#[tokio::test]
async fn refuses_to_start_without_a_device_key() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let world = dir.path().join("world.json").to_string_lossy().to_string();
    let config: Config = hearth_common::config::load_from([
        "hearth-relay-agent",
        "--engine",
        "http://127.0.0.1:9",
        "--host-id",
        HOST_ID,
        "--listen",
        "127.0.0.1:0",
        "--hardware",
        "simulated",
        "--sim-world",
        &world,
    ])?;
    let err = Agent::start(config).await.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(err.contains("hearth-engine device-key --role relay relay-test"), "{err}");
    Ok(())
}

/// A configuration file in `dir` with one heat output and no protection times, so the
/// fallback's switches take effect at once; its path.
fn one_heat_output(dir: &tempfile::TempDir) -> anyhow::Result<String> {
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        "[[outputs]]\nid = \"heat\"\nname = \"Furnace\"\nfunction_hint = \"heat\"\n\
         min_on_s = 0\nmin_off_s = 0\n",
    )?;
    Ok(file.to_string_lossy().to_string())
}

#[tokio::test]
async fn a_fallback_is_reported_to_the_engine_at_once() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let world = dir.path().join("world.json");
    let file = one_heat_output(&dir)?;
    let (engine, mut rx) = fake_engine().await?;
    // Re-registration for silence is an hour away: only the fallback can trigger the report.
    let config =
        agent_config(&engine, &world, &["--config", &file, "--reregister-after-s", "3600"])?;
    let agent = Agent::start(config).await?;
    let base = format!("http://{}", agent.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    // Refused once (503), then accepted.
    next(&mut rx).await?;
    next(&mut rx).await?;

    let client =
        hearth_proto::client::RelayAgentClient::new(&base, Some(device_key()?.engine_credential()));
    client.command("heat", &RelayCommand { state: RelayState::On, lease_s: Some(1) }).await?;
    let (_, registration) = next(&mut rx).await?;
    let heat = registration.outputs.iter().find(|o| o.id == "heat").context("no heat")?;
    assert_eq!(heat.state, RelayState::Off);
    assert_eq!(heat.last_fallback.as_ref().map(|f| f.reason), Some(FallbackReason::LeaseExpired));
    assert_eq!(heat.cycles, 1);

    let _ = stop.send(());
    running.await??;
    Ok(())
}

/// The real binary, as a person installing the package meets it: the shipped configuration
/// (no hardware chosen), a device key, nothing else. It must exit at once, non-zero, naming
/// the setting, the file and the flag; it must not run the simulator.
#[test]
fn the_binary_refuses_to_start_without_a_hardware_backend() -> anyhow::Result<()> {
    let config = example_config();
    let key = device_key()?.to_string();
    let dir = tempfile::tempdir()?;
    let log = dir.path().join("stderr");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hearth-relay-agent"))
        .arg("--config")
        .arg(&config)
        .args(["--engine", "http://127.0.0.1:9", "--host-id", HOST_ID, "--device-key", &key])
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("HEARTH_RELAY_HARDWARE")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    // An agent that starts anyway runs until stopped: the deadline turns that into a failure.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&log)?;
    assert!(status.is_some(), "still running 30 s later, without a hardware backend: {stderr}");
    assert!(status.is_some_and(|s| !s.success()), "exit {status:?}: {stderr}");
    assert!(stderr.contains("no relay hardware configured"), "{stderr}");
    assert!(stderr.contains("hardware = \"rppal\""), "{stderr}");
    assert!(stderr.contains(&config.display().to_string()), "names the file: {stderr}");
    assert!(stderr.contains("--hardware"), "{stderr}");
    assert!(!stderr.contains("listening on"), "it served: {stderr}");
    assert!(!stderr.contains("relay hardware ready"), "it opened a backend: {stderr}");
    Ok(())
}

/// `safe-state`, the unit's ExecStopPost: after an agent died without its own clean-up, the
/// simulated world still shows the furnace on (as GPIO registers keep a dead process's level);
/// the subcommand, run with the same configuration, drives every output to its safe state
/// (`on` for an output whose safe state is on) and exits 0, without key, engine or network.
#[test]
fn safe_state_drives_every_output_safe_and_exits() -> anyhow::Result<()> {
    use hearth_common::simworld::SimOutput;
    let dir = tempfile::tempdir()?;
    let world = dir.path().join("world.json");
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        "hardware = \"simulated\"\n\
         [[outputs]]\nid = \"heat\"\nname = \"Furnace\"\nfunction_hint = \"heat\"\n\
         [[outputs]]\nid = \"circ\"\nname = \"Circulation\"\nfunction_hint = \"fan\"\n\
         safe_state = \"on\"\n",
    )?;
    // What a SIGKILLed agent leaves behind: the furnace on, the circulation off.
    RelayWorld {
        outputs: [
            ("heat".to_owned(), SimOutput { on: true, function_hint: Some(RelayFunction::Heat) }),
            ("circ".to_owned(), SimOutput { on: false, function_hint: Some(RelayFunction::Fan) }),
        ]
        .into_iter()
        .collect(),
    }
    .write(&world)?;
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hearth-relay-agent"))
            .arg("--config")
            .arg(&file)
            .arg("--sim-world")
            .arg(&world)
            .args(args)
            .env_remove("HEARTH_RELAY_DEVICE_KEY")
            .env("NO_COLOR", "1")
            .output()
    };
    let out = run(&["safe-state"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("every output in its safe state"), "{stderr}");
    let after = RelayWorld::read(&world)?;
    assert!(!after.is_on(RelayFunction::Heat), "furnace off");
    assert!(after.is_on(RelayFunction::Fan), "circulation on, its safe state");

    // Without a backend it refuses like the agent, with the same fix.
    std::fs::write(&file, "[[outputs]]\nid = \"heat\"\nname = \"Furnace\"\n")?;
    let out = run(&["safe-state"])?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("no relay hardware configured"), "{stderr}");
    Ok(())
}

/// The fallback program through `PUT /v1/fallback`: only the engine may set it; a program the
/// agent cannot run is refused with a 422 naming the field, and the one held stays.
#[tokio::test]
async fn fallback_program_is_set_by_the_engine_only_and_checked() -> anyhow::Result<()> {
    let f = Fixture::new()?;
    let (status, body) = f.call("GET", "/v1/fallback", &[], None).await?;
    assert_eq!((status, error_code(&body)?), (StatusCode::NOT_FOUND, ErrorCode::NotFound));
    let good = json!({"after_s": 120, "outputs": {
        "heat": {"mode": "frost", "setpoint_c": 7.0, "sensor": {"kind": "local", "id": "28-1"},
                 "blind": {"pct": 10, "period_s": 1800}},
        "cool": {"mode": "off"}}})
    .to_string();
    let json_type = ("content-type", "application/json");
    let (status, body) = f.call("PUT", "/v1/fallback", &[json_type], Some(&good)).await?;
    assert_eq!((status, error_code(&body)?), (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized));
    let auth = f.engine_auth();
    let engine = [("authorization", auth.as_str()), json_type];
    let (status, body) = f.call("PUT", "/v1/fallback", &engine, Some(&good)).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (bad, field) in [
        (r#"{"after_s": 120, "outputs": {"boiler": {"mode": "off"}}}"#, "outputs.boiler"),
        (
            r#"{"after_s": 120, "outputs": {"heat": {"mode": "blind_duty", "pct": 90, "period_s": 60}}}"#,
            "outputs.heat.pct",
        ),
        (r#"{"after_s": 0, "outputs": {}}"#, "after_s"),
        (r#"{"after_s": 120, "outputs": {"heat": {"mode": "warm"}}}"#, "outputs"),
    ] {
        let (status, body) = f.call("PUT", "/v1/fallback", &engine, Some(bad)).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        let message = body["error"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{bad}: {message:?} does not name {field}");
    }
    let (status, body) = f.call("GET", "/v1/fallback", &[], None).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.to_string(), serde_json::from_str::<Value>(&good)?.to_string());
    // Not in fallback: nothing says so.
    let (_, list) = f.call("GET", "/v1/relays", &[], None).await?;
    assert!(list.get("fallback").is_none(), "{list}");
    Ok(())
}

/// What the stand-in sensor agent answers `GET /v1/readings`: a status and a body.
type Answer = Arc<std::sync::Mutex<(u16, Value)>>;

/// A stand-in for a sensor agent's read API on a real socket: it checks the bearer read token
/// and answers what the test put in `answer`.
async fn sensor_agent_stand_in(token: String, answer: Answer) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route(
        hearth_proto::fallback::READINGS_PATH,
        axum::routing::get(move |headers: HeaderMap| {
            let answer = answer.clone();
            let expected = format!("Bearer {token}");
            async move {
                let sent = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
                if sent != Some(expected.as_str()) {
                    let body = json!({"status": "error", "code": "unauthorized", "error": "no"});
                    return (StatusCode::UNAUTHORIZED, axum::Json(body));
                }
                let (status, body) = answer.lock().map(|a| a.clone()).unwrap_or_default();
                (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), axum::Json(body))
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// The frost program reads a sensor agent over HTTP with the read token of its program, and
/// judges what it reads like a local probe: a refusal, a stale, implausible or failed reading,
/// or another host at the URL runs the blind duty with the reason in `doing`; a fresh
/// plausible reading runs the frost thermostat.
#[tokio::test]
async fn frost_reads_a_sensor_agent_and_runs_blind_on_a_bad_reading() -> anyhow::Result<()> {
    use hearth_relay_agent::fallback::Runner;
    let f = Fixture::new()?;
    let token = "0123abcd".to_owned();
    let answer: Answer = Arc::new(std::sync::Mutex::new((200, json!({}))));
    let url = sensor_agent_stand_in(token.clone(), answer.clone()).await?;
    let program = |token: &str| -> anyhow::Result<hearth_proto::fallback::FallbackProgram> {
        Ok(serde_json::from_value(json!({"after_s": 1, "outputs": {"heat": {
            "mode": "frost", "setpoint_c": 7.0, "blind": {"pct": 10, "period_s": 1800},
            "sensor": {"kind": "sensor_agent", "url": url, "host": "hall", "id": "28-1",
                       "token": token}}}}))?)
    };
    // A token the sensor agent refuses first.
    f.state.fallback().set(program("ffff")?).map_err(anyhow::Error::msg)?;
    let runner = Runner {
        controller: f.state.controller().clone(),
        store: f.state.fallback().clone(),
        probe: None,
        tick: Duration::from_millis(100),
    };
    let task = tokio::spawn(runner.run());
    let doing = |want: &'static str| {
        let controller = f.state.controller().clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let heat = controller.fallback().and_then(|(_, _, d)| d.get("heat").cloned());
                if let Some(heat) = heat.as_ref().filter(|h| h.detail.contains(want)) {
                    return Ok(heat.clone());
                }
                if tokio::time::Instant::now() > deadline {
                    anyhow::bail!("heat never did {want:?}; last {heat:?}");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let blind = doing("blind duty (sensor agent hall: refused the read token").await?;
    assert_eq!((blind.on, blind.temp_c), (false, None));

    f.state.fallback().set(program(&token)?).map_err(anyhow::Error::msg)?;
    let reading = |host: &str, value: Value, error: Value, ago: f64| {
        json!({"host_id": host, "readings": [
            {"id": "28-0", "value": 20.0, "read_s_ago": 0.5},
            {"id": "28-1", "value": value, "error": error, "read_s_ago": ago}]})
    };
    let cases = [
        (reading("hall", json!(5.0), Value::Null, 120.0), "stale reading of 28-1"),
        (reading("hall", json!(130.0), Value::Null, 1.0), "implausible reading of 28-1: 130"),
        (reading("hall", Value::Null, json!("CRC check failed"), 1.0), "28-1 failed (CRC"),
        (reading("attic", json!(5.0), Value::Null, 1.0), "is attic, not hall"),
        (json!({"host_id": "hall", "readings": []}), "no reading of 28-1"),
    ];
    for (body, why) in cases {
        *answer.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = (200, body);
        let blind = doing(why).await?;
        assert!(blind.detail.starts_with("blind duty ("), "{}", blind.detail);
        assert_eq!(blind.temp_c, None);
    }
    // A fresh plausible reading below the setpoint: the frost thermostat heats.
    *answer.lock().map_err(|_| anyhow::anyhow!("poisoned"))? =
        (200, reading("hall", json!(5.5), Value::Null, 1.0));
    let frost = doing("frost: 5.50 °C").await?;
    assert_eq!((frost.on, frost.temp_c), (true, Some(5.5)));
    assert!(f.state.controller().output("heat").is_some_and(|o| o.state.is_on()));
    task.abort();
    Ok(())
}

/// A fallback program's frost thermostat on a bit-banged probe of this host: a DS18B20 on a
/// simulated 1-Wire bus (wire-level, virtual time) wired to the line `--probe-gpio-pin` names,
/// opened from the agent's own flags by the probes' one opener, the sensor agent's.
#[tokio::test]
async fn frost_reads_a_bit_banged_probe_of_this_host() -> anyhow::Result<()> {
    use hearth_probes::onewire::rom_id;
    use hearth_probes::onewire::simbus::{Bus, OnLine, SlaveModel};
    let dir = tempfile::tempdir()?;
    let world = dir.path().join("world.json");
    let file = one_heat_output(&dir)?;
    let probe = SlaveModel::ds18b20(0x0316_a279_7bff, 4.5);
    let id = rom_id(probe.address());
    let wiring = OnLine { line: 17, bus: Bus::new(vec![probe]) };
    let flags = ["--config", &file, "--probe", "bitbang-cdev", "--probe-gpio-pin", "17"];
    let mut args = flags.to_vec();
    args.extend(["--fallback-tick-s", "0.1", "--reregister-after-s", "3600"]);
    // No engine answers: the program runs from the start.
    let agent =
        Agent::start_wired(agent_config("http://127.0.0.1:9", &world, &args)?, &wiring).await?;
    let program = serde_json::from_value(json!({"after_s": 1, "outputs": {"heat": {
        "mode": "frost", "setpoint_c": 7.0, "blind": {"pct": 10, "period_s": 1800},
        "sensor": {"kind": "local", "id": id}}}}))?;
    agent.state().fallback().set(program).map_err(anyhow::Error::msg)?;
    let controller = agent.state().controller().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let heat = loop {
        let heat = controller.fallback().and_then(|(_, _, d)| d.get("heat").cloned());
        if let Some(heat) = heat.as_ref().filter(|h| h.detail.starts_with("frost:")) {
            break heat.clone();
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no frost reading: {heat:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!((heat.on, heat.temp_c), (true, Some(4.5)), "{}", heat.detail);
    assert!(controller.output("heat").is_some_and(|o| o.state.is_on()));
    let _ = stop.send(());
    running.await??;

    // The same flags on another line find no bus: the start fails, it does not run blind.
    let args = ["--probe", "bitbang-cdev", "--probe-gpio-pin", "4"];
    let config = agent_config("http://127.0.0.1:9", &world, &args)?;
    let err = Agent::start_wired(config, &wiring).await.err().map(|e| format!("{e:#}"));
    assert!(err.as_deref().is_some_and(|e| e.contains("no 1-Wire bus on GPIO 4")), "{err:?}");
    Ok(())
}

/// A bad probe option stops the agent at start, naming the relay agent's own flag.
#[tokio::test]
async fn a_bad_probe_option_fails_at_start_naming_the_flag() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let world = dir.path().join("world.json");
    let start = |args: &'static [&'static str]| {
        let config = agent_config("http://127.0.0.1:9", &world, args);
        async move {
            let err = Agent::start(config?).await.err().context("the agent started")?;
            anyhow::Ok(format!("{err:#}"))
        }
    };
    let err = start(&["--probe", "bitbang-rppal"]).await?;
    assert!(
        err.contains("--probe bitbang-rppal needs") && err.contains("--probe-gpio-pin"),
        "{err}"
    );
    let err = start(&["--probe", "bitbang-rppal", "--probe-gpio-pin", "99"]).await?;
    assert!(err.contains("--probe-gpio-pin 99 is not a Raspberry Pi BCM GPIO"), "{err}");
    let err = start(&["--probe", "w1", "--probe-w1-dir", "/nonexistent/w1"]).await?;
    assert!(err.contains("point --probe-w1-dir at it, or use --probe simulated"), "{err}");
    #[cfg(feature = "gpio")]
    {
        const CDEV: &[&str] = &[
            "--probe",
            "bitbang-cdev",
            "--probe-gpio-pin",
            "4",
            "--probe-gpio-chip",
            "/nonexistent/c",
        ];
        let err = start(CDEV).await?;
        assert!(
            err.contains("no GPIO character device at /nonexistent/c")
                && err.contains("point --probe-gpio-chip at one")
                && err.contains("--probe w1"),
            "{err}"
        );
    }
    Ok(())
}
