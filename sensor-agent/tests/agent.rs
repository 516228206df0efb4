//! The agent end to end against a fake engine: real HTTP on 127.0.0.1, fixture w1 directories,
//! the simulated room, and the real binary for start-up errors, logs and signals.
//!
//! Every wait is on a channel (the fake engine's receipts, the child's log lines); the timeouts
//! only turn a hang into a failure.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use hearth_common::auth::{DeviceCredential, SiteSecret};
use hearth_common::simworld::{RelayWorld, SimOutput};
use hearth_proto::relays::RelayFunction;
use hearth_sensor_agent::{Config, Hardware};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long any single wait may take before the test fails (a guard, not a schedule).
const GUARD: Duration = Duration::from_secs(30);
const HOST: &str = "test-pi";

const YES_21_5: &str =
    "58 01 4b 46 7f ff 08 10 3c : crc=3c YES\n58 01 4b 46 7f ff 08 10 3c t=21500\n";
const CRC_NO: &str = "58 01 4b 46 7f ff 08 10 3c : crc=3c NO\n58 01 4b 46 7f ff 08 10 3c t=21500\n";
const MINUS_10_125: &str =
    "5e ff 4b 46 7f ff 02 10 5f : crc=5f YES\n5e ff 4b 46 7f ff 02 10 5f t=-10125\n";

/// One request the fake engine received.
#[derive(Debug)]
struct Receipt {
    status: u16,
    auth: Option<String>,
    body: Value,
}

#[derive(Clone)]
struct EngineState {
    receipts: mpsc::UnboundedSender<Receipt>,
    /// Answer 500 to this many requests before accepting.
    fail_first: usize,
    seen: Arc<AtomicUsize>,
}

/// A fake engine implementing only `PUT /v1/sensors/update`.
struct FakeEngine {
    url: String,
    receipts: mpsc::UnboundedReceiver<Receipt>,
    server: JoinHandle<()>,
}

impl FakeEngine {
    async fn start(fail_first: usize) -> anyhow::Result<Self> {
        Self::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?, fail_first)
    }

    fn serve(listener: tokio::net::TcpListener, fail_first: usize) -> anyhow::Result<Self> {
        let url = format!("http://{}", listener.local_addr()?);
        let (tx, receipts) = mpsc::unbounded_channel();
        let state = EngineState { receipts: tx, fail_first, seen: Arc::default() };
        let app = axum::Router::new().route("/v1/sensors/update", put(update)).with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, receipts, server })
    }

    /// The next request the engine received.
    async fn next(&mut self) -> anyhow::Result<Receipt> {
        tokio::time::timeout(GUARD, self.receipts.recv())
            .await
            .context("no report reached the fake engine in time")?
            .context("fake engine stopped")
    }

    /// The next request the engine accepted.
    async fn next_accepted(&mut self) -> anyhow::Result<Receipt> {
        loop {
            let r = self.next().await?;
            if r.status == 201 {
                return Ok(r);
            }
        }
    }
}

impl Drop for FakeEngine {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn update(
    State(state): State<EngineState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let auth =
        headers.get(hearth_proto::AUTH_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = state.seen.fetch_add(1, Ordering::SeqCst);
    let (status, answer) = if n < state.fail_first {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"status": "error", "code": "internal", "error": "database is on fire"}),
        )
    } else {
        let ids: Vec<String> =
            body["sensors"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        (StatusCode::CREATED, json!({"status": "ok", "ids": ids}))
    };
    let _ = state.receipts.send(Receipt { status: status.as_u16(), auth, body });
    (status, axum::Json(answer))
}

fn device_key() -> anyhow::Result<DeviceCredential> {
    Ok(SiteSecret::from_hex(&"42".repeat(32))?.device_key(HOST))
}

/// The agent running in this process; dropping the sender (or sending) stops it.
struct Agent {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Agent {
    fn start(args: &[&str]) -> anyhow::Result<Self> {
        let config: Config = hearth_common::config::load_from(
            std::iter::once("hearth-sensor-agent").chain(args.iter().copied()),
        )?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hearth_sensor_agent::run(config, async move {
            let _ = stopped.await;
        }));
        Ok(Self { stop: Some(stop), task })
    }

    /// Signal shutdown and check the agent stops promptly and cleanly.
    async fn stop(mut self) -> anyhow::Result<()> {
        drop(self.stop.take());
        tokio::time::timeout(GUARD, &mut self.task)
            .await
            .context("agent did not stop after shutdown")??
    }
}

fn fixture_bus(root: &Path) -> anyhow::Result<()> {
    for (name, content) in [
        ("28-000000000001", YES_21_5),
        ("28-000000000002", CRC_NO),
        ("10-000000000003", MINUS_10_125),
    ] {
        std::fs::create_dir_all(root.join(name))?;
        std::fs::write(root.join(name).join("w1_slave"), content)?;
    }
    std::fs::create_dir_all(root.join("w1_bus_master1"))?;
    std::fs::write(root.join("w1_bus_master1/w1_master_slaves"), "28-000000000001\n")?;
    Ok(())
}

/// The report of sensor `id` (indexing it further yields null for absent keys, never a panic).
fn sensor<'a>(body: &'a Value, id: &str) -> anyhow::Result<&'a Value> {
    let report = &body["sensors"][id];
    anyhow::ensure!(report.is_object(), "no sensor {id} in {body}");
    Ok(report)
}

#[tokio::test]
async fn reports_w1_sensors_with_credentials() -> anyhow::Result<()> {
    let mut engine = FakeEngine::start(0).await?;
    let dir = tempfile::tempdir()?;
    let bus = dir.path().join("devices");
    fixture_bus(&bus)?;
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, "[[sensors]]\nid = \"28-000000000001\"\nalias = \"hall\"\n")?;
    let key = device_key()?;
    let key_text = key.to_string();
    let agent = Agent::start(&[
        "--config",
        &config.to_string_lossy(),
        "--engine",
        &engine.url,
        "--host-id",
        HOST,
        "--device-key",
        &key_text,
        "--w1-dir",
        &bus.to_string_lossy(),
        "--interval-s",
        "0.05",
    ])?;

    let r = engine.next().await?;
    assert_eq!(r.status, 201);
    assert_eq!(r.auth, Some(format!("Bearer {HOST}.{}", key.agent_token())));
    let body = &r.body;
    assert_eq!(body["host_id"], HOST);
    assert_eq!(body["sensors"].as_object().map(|m| m.len()), Some(3), "{body}");

    let hall = sensor(body, "28-000000000001")?;
    assert_eq!(hall["type"], "DS18B20");
    assert_eq!(hall["value"], 21.5);
    assert_eq!(hall["alias"], "hall");
    let stamp = hall["timestamp"].as_str().context("timestamp is not a string")?;
    stamp.parse::<jiff::Timestamp>()?;

    // A failed read is reported, as null.
    let failed = sensor(body, "28-000000000002")?;
    assert_eq!(failed.get("value"), Some(&Value::Null));
    assert_eq!(failed.get("alias"), None);

    let cold = sensor(body, "10-000000000003")?;
    assert_eq!((cold["type"].as_str(), cold["value"].as_f64()), (Some("DS18S20"), Some(-10.125)));
    body["agent_time"].as_str().context("agent_time missing")?.parse::<jiff::Timestamp>()?;

    // It keeps reporting on its schedule, each report with its own read time.
    let second = engine.next().await?;
    assert_eq!(second.body["host_id"], HOST);
    let later = second.body["sensors"]["28-000000000001"]["timestamp"].as_str();
    let later = later.context("no timestamp in the second report")?.parse::<jiff::Timestamp>()?;
    assert!(later > stamp.parse::<jiff::Timestamp>()?);
    agent.stop().await
}

#[tokio::test]
async fn reports_the_simulated_room_warming() -> anyhow::Result<()> {
    let mut engine = FakeEngine::start(0).await?;
    let dir = tempfile::tempdir()?;
    let world_path = dir.path().join("world.json");
    let mut world = RelayWorld::default();
    world
        .outputs
        .insert("furnace".into(), SimOutput { on: true, function_hint: Some(RelayFunction::Heat) });
    world.write(&world_path)?;
    let key = device_key()?.to_string();
    let agent = Agent::start(&[
        "--engine",
        &engine.url,
        "--host-id",
        HOST,
        "--device-key",
        &key,
        "--hardware",
        "simulated",
        "--sim-world",
        &world_path.to_string_lossy(),
        // One real second is one simulated hour: each 50 ms report is ~3 simulated minutes.
        "--sim-time-scale",
        "3600",
        "--interval-s",
        "0.05",
    ])?;

    let first = engine.next().await?;
    let room = sensor(&first.body, "28-00000000a001")?;
    assert_eq!(room["type"], "simulated");
    assert_eq!(room["alias"], "living room");
    assert_eq!(room["value"], 17.0);
    // The heater is on, so the room warms (the model's tests check by how much).
    let mut warmed = None;
    for _ in 0..100 {
        let r = engine.next().await?;
        let v = r.body["sensors"]["28-00000000a001"]["value"].as_f64();
        if v.is_some_and(|v| v > 17.0) {
            warmed = v;
            break;
        }
    }
    assert!(warmed.is_some_and(|v| v < 35.0), "room did not warm: {warmed:?}");
    agent.stop().await
}

#[tokio::test]
async fn survives_engine_errors_and_delivers_later() -> anyhow::Result<()> {
    let mut engine = FakeEngine::start(3).await?;
    let key = device_key()?.to_string();
    let agent = Agent::start(&[
        "--engine",
        &engine.url,
        "--host-id",
        HOST,
        "--device-key",
        &key,
        "--hardware",
        "simulated",
        "--sim-world",
        "/nonexistent/hearth-world.json",
        "--interval-s",
        "0.05",
    ])?;
    for _ in 0..3 {
        assert_eq!(engine.next().await?.status, 500);
    }
    let delivered = engine.next().await?;
    assert_eq!(delivered.status, 201);
    assert!(delivered.body["sensors"]["28-00000000a001"]["value"].is_number());
    assert!(!agent.task.is_finished());
    agent.stop().await
}

#[tokio::test]
async fn stops_promptly_between_reports() -> anyhow::Result<()> {
    let mut engine = FakeEngine::start(0).await?;
    let key = device_key()?.to_string();
    let agent = Agent::start(&[
        "--engine",
        &engine.url,
        "--host-id",
        HOST,
        "--device-key",
        &key,
        "--hardware",
        "simulated",
        "--interval-s",
        "3600",
    ])?;
    // The first report goes out at once; the next would be an hour away.
    engine.next_accepted().await?;
    agent.stop().await
}

#[tokio::test]
async fn a_malformed_device_key_is_refused_without_echoing_it() -> anyhow::Result<()> {
    let agent = Agent::start(&[
        "--engine",
        "http://127.0.0.1:9",
        "--host-id",
        HOST,
        "--device-key",
        "beef.secretsecret",
        "--hardware",
        "simulated",
    ])?;
    let err = tokio::time::timeout(GUARD, agent.task).await??.err().context("agent started")?;
    let msg = format!("{err:#}");
    assert!(msg.contains("malformed") && msg.contains("hearth-engine device-key test-pi"), "{msg}");
    assert!(!msg.contains("secretsecret"), "{msg}");
    Ok(())
}

/// The real binary as a child process, killed if the test fails half-way.
struct Child {
    child: std::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
}

impl Child {
    fn spawn(args: &[&str]) -> anyhow::Result<Self> {
        Self::spawn_with_env(args, &[])
    }

    fn spawn_with_env(args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth-sensor-agent"));
        cmd.args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HEARTH_SENSOR_") {
                cmd.env_remove(name);
            }
        }
        cmd.envs(envs.iter().copied());
        let mut child = cmd.spawn()?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { child, lines, seen: Vec::new() })
    }

    /// Wait for a log line containing `needle`.
    async fn line_with(&mut self, needle: &str) -> anyhow::Result<String> {
        loop {
            let line = tokio::time::timeout(GUARD, self.lines.recv())
                .await
                .with_context(|| format!("no log line with {needle:?}; saw {:#?}", self.seen))?
                .with_context(|| format!("agent exited; no {needle:?} in {:#?}", self.seen))?;
            self.seen.push(line.clone());
            if line.contains(needle) {
                return Ok(line);
            }
        }
    }

    /// Send SIGTERM (what systemd sends) and wait for the exit status.
    async fn terminate(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let killed = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status()?;
        anyhow::ensure!(killed.success(), "kill -TERM failed");
        self.exit().await
    }

    /// Wait for the child to exit, reading the rest of its log.
    async fn exit(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        // The log reader ends when the child closes stderr, i.e. exits.
        tokio::time::timeout(GUARD, async {
            while let Some(line) = self.lines.recv().await {
                self.seen.push(line);
            }
        })
        .await
        .with_context(|| format!("agent did not exit; log: {:#?}", self.seen))?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn binary_waits_out_a_down_engine_and_logs_when_it_reports() -> anyhow::Result<()> {
    // A port with nothing listening: the engine is down (connection refused).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("http://127.0.0.1:{port}");
    let key = device_key()?;
    let key_text = key.to_string();
    // The key goes in through the environment, as a systemd unit would pass it.
    let mut agent = Child::spawn_with_env(
        &[
            "--engine",
            &url,
            "--host-id",
            HOST,
            "--hardware",
            "simulated",
            "--interval-s",
            "0.05",
            "--sim-world",
            "/nonexistent/hearth-world.json",
        ],
        &[("HEARTH_SENSOR_DEVICE_KEY", &key_text)],
    )?;

    agent.line_with("cannot deliver sensor readings").await?;
    // The engine comes up on that port; the agent delivers without being restarted.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let mut engine = FakeEngine::serve(listener, 0)?;
    let r = engine.next_accepted().await?;
    assert_eq!(r.auth, Some(format!("Bearer {HOST}.{}", key.agent_token())));
    let line = agent.line_with(&format!("reporting to {url}")).await?;
    assert!(line.contains("INFO"), "{line}");

    let status = agent.terminate().await?;
    assert!(status.success(), "exit status {status}; log: {:#?}", agent.seen);
    // The key is never logged.
    let key_hex = key_text.split_once('.').map(|(_, k)| k).unwrap_or(&key_text);
    assert!(!agent.seen.iter().any(|l| l.contains(key_hex)), "key in log: {:#?}", agent.seen);
    assert!(!agent.seen.iter().any(|l| l.contains(&key.agent_token())));
    Ok(())
}

#[tokio::test]
async fn binary_refuses_to_start_without_a_device_key() -> anyhow::Result<()> {
    let mut agent = Child::spawn(&[
        "--engine",
        "http://127.0.0.1:9",
        "--host-id",
        HOST,
        "--hardware",
        "simulated",
    ])?;
    let status = agent.exit().await?;
    assert!(!status.success());
    let log = agent.seen.join("\n");
    assert!(log.contains("no device key"), "{log}");
    assert!(log.contains("hearth-engine device-key test-pi"), "{log}");
    assert!(log.contains("HEARTH_SENSOR_DEVICE_KEY"), "{log}");
    Ok(())
}

#[test]
fn example_config_parses_and_lists_every_key() -> anyhow::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config/sensor-agent.toml");
    let path_text = path.to_string_lossy().into_owned();
    let config: Config =
        hearth_common::config::load_from(["hearth-sensor-agent", "--config", &path_text])?;
    config.validate()?;
    assert_eq!(config.hardware, Hardware::W1);
    assert_eq!(config.w1_dir, Path::new("/sys/bus/w1/devices"));
    assert_eq!(config.interval_s, 10.0);
    let aliases: Vec<_> = config.sensors.iter().map(|s| s.alias.as_deref()).collect();
    assert_eq!(aliases, [Some("living room"), Some("bedroom")]);

    // Every setting is documented in the example, set or commented out.
    let text = std::fs::read_to_string(&path)?;
    let command = <Config as clap::CommandFactory>::command();
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches!(id, "help" | "version" | "config") {
            continue;
        }
        assert!(
            text.lines().any(|l| l.trim_start_matches(['#', ' ']).starts_with(&format!("{id} ="))),
            "example config lacks `{id}`"
        );
    }
    Ok(())
}
