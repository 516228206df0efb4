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
    Ok(SiteSecret::from_hex(&"42".repeat(32))?
        .device_key(HOST, hearth_proto::agents::KeyRole::Sensor))
}

/// The agent running in this process; dropping the sender (or sending) stops it.
struct Agent {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
    /// Its replay queue (a fresh temporary directory unless `args` name one).
    _queue: Option<tempfile::TempDir>,
}

impl Agent {
    fn start(args: &[&str]) -> anyhow::Result<Self> {
        let queue = tempfile::tempdir()?;
        let queue_arg = format!("--queue-dir={}", queue.path().display());
        let own_queue = !args.iter().any(|a| a.starts_with("--queue-dir"));
        let config: Config = hearth_common::config::load_from(
            std::iter::once("hearth-sensor-agent")
                .chain(own_queue.then_some(queue_arg.as_str()))
                .chain(args.iter().copied()),
        )?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hearth_sensor_agent::run(config, async move {
            let _ = stopped.await;
        }));
        Ok(Self { stop: Some(stop), task, _queue: own_queue.then_some(queue) })
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
    let agent = Agent::start(&sim_args(
        &engine.url,
        &key,
        &[
            "--sim-world",
            &world_path.to_string_lossy(),
            // One real second is one simulated hour: each 50 ms report is ~3 simulated minutes.
            "--sim-time-scale",
            "3600",
            "--interval-s",
            "0.05",
        ],
    ))?;

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
    let agent = Agent::start(&sim_args(
        &engine.url,
        &key,
        &["--sim-world", "/nonexistent/hearth-world.json", "--interval-s", "0.05"],
    ))?;
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
    let agent = Agent::start(&sim_args(&engine.url, &key, &["--interval-s", "3600"]))?;
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
    assert!(
        msg.contains("malformed") && msg.contains("hearth-engine device-key --role sensor test-pi"),
        "{msg}"
    );
    assert!(!msg.contains("secretsecret"), "{msg}");
    Ok(())
}

/// The real binary as a child process, killed if the test fails half-way.
struct Child {
    child: std::process::Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    _queue: tempfile::TempDir,
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
        // Never the system's /var/lib default from a test.
        let queue = tempfile::tempdir()?;
        cmd.env("HEARTH_SENSOR_QUEUE_DIR", queue.path());
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
        Ok(Self { child, lines, seen: Vec::new(), _queue: queue })
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

/// One HTTP/1.1 request over a plain socket: (status code, body).
async fn http_get(addr: &str, request: &'static str) -> anyhow::Result<(u16, String)> {
    let addr = addr.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<(u16, String)> {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(&addr)?;
        stream.set_read_timeout(Some(GUARD))?;
        stream.write_all(request.as_bytes())?;
        let mut answer = String::new();
        // The server closes the connection after its answer.
        stream.read_to_string(&mut answer)?;
        let (head, body) = answer.split_once("\r\n\r\n").context("no HTTP head")?;
        let code = head.split(' ').nth(1).context("no status code")?.parse()?;
        Ok((code, body.to_owned()))
    })
    .await?
}

#[tokio::test]
async fn binary_serves_its_status_when_asked() -> anyhow::Result<()> {
    let mut engine = FakeEngine::start(0).await?;
    let dir = tempfile::tempdir()?;
    let bus = dir.path().join("devices");
    fixture_bus(&bus)?;
    let key = device_key()?.to_string();
    let bus_arg = bus.to_string_lossy().into_owned();
    let mut agent = Child::spawn(&[
        "--engine",
        &engine.url,
        "--host-id",
        HOST,
        "--device-key",
        &key,
        "--w1-dir",
        &bus_arg,
        "--interval-s",
        "0.05",
        "--status-listen",
        "127.0.0.1:0",
    ])?;
    let line = agent.line_with("status endpoint listening on http://").await?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .context("no address in the log line")?
        .to_owned();

    // After a report has reached the engine, the status shows that read and that engine.
    engine.next_accepted().await?;
    let deadline = tokio::time::Instant::now() + GUARD;
    let status = loop {
        let (code, body) = http_get(&addr, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n").await?;
        assert_eq!(code, 200, "{body}");
        let status: Value = serde_json::from_str(&body)?;
        if status["engine"] == engine.url.as_str() {
            break status;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "status never named the engine");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status["status"], "ok");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!((status["host_id"].as_str(), status["hardware"].as_str()), (Some(HOST), Some("w1")));
    // The fixture bus: three thermometers, one of which fails its CRC.
    assert_eq!((status["sensors"].as_u64(), status["sensors_failed"].as_u64()), (Some(3), Some(1)));
    status["last_read"].as_str().context("no last_read")?.parse::<jiff::Timestamp>()?;
    assert_eq!(status["queue_depth"].as_u64(), Some(0));

    // Nothing else is served.
    assert_eq!(http_get(&addr, "GET /v1/sensors HTTP/1.1\r\n\r\n").await?.0, 404);
    assert_eq!(http_get(&addr, "DELETE /v1/status HTTP/1.1\r\n\r\n").await?.0, 405);
    assert_eq!(http_get(&addr, "nonsense\r\n\r\n").await?.0, 400);

    let exit = agent.terminate().await?;
    assert!(exit.success(), "exit status {exit}; log: {:#?}", agent.seen);
    Ok(())
}

#[tokio::test]
async fn binary_status_outlasts_idle_clients_and_is_503_when_no_sensor_reads() -> anyhow::Result<()>
{
    let engine = FakeEngine::start(0).await?;
    let dir = tempfile::tempdir()?;
    let bus = dir.path().join("devices");
    fixture_bus(&bus)?;
    let key = device_key()?.to_string();
    let bus_arg = bus.to_string_lossy().into_owned();
    let mut agent = Child::spawn(&[
        "--engine",
        &engine.url,
        "--host-id",
        HOST,
        "--device-key",
        &key,
        "--w1-dir",
        &bus_arg,
        "--interval-s",
        "0.05",
        "--status-listen",
        "127.0.0.1:0",
    ])?;
    let line = agent.line_with("status endpoint listening on http://").await?;
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .context("no address in the log line")?
        .to_owned();

    // 130 clients connect and say nothing. A probe is still answered (each idle client used
    // to hold the endpoint for 2 s, one after the other: over four minutes).
    let idle: Vec<std::net::TcpStream> =
        (0..130).map(|_| std::net::TcpStream::connect(&addr)).collect::<Result<_, _>>()?;
    let (code, body) = http_get(&addr, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n").await?;
    assert!(code == 200 || code == 503, "{code} {body}");
    drop(idle);

    // Every thermometer fails its CRC: 503, with the same body saying so; one reads again: 200.
    // Polled for the status word too: before its first read the agent answers 200 `starting`.
    let poll = |want: u16, word: &'static str| {
        let addr = addr.clone();
        async move {
            let deadline = tokio::time::Instant::now() + GUARD;
            loop {
                let (code, body) = http_get(&addr, "GET /v1/status HTTP/1.1\r\n\r\n").await?;
                let json = serde_json::from_str::<Value>(&body)?;
                if code == want && json["status"] == word {
                    return anyhow::Ok(json);
                }
                anyhow::ensure!(
                    tokio::time::Instant::now() < deadline,
                    "never {want} {word}: {code} {body}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    poll(200, "ok").await?;
    for name in ["28-000000000001", "10-000000000003"] {
        std::fs::write(bus.join(name).join("w1_slave"), CRC_NO)?;
    }
    let down = poll(503, "no_sensor_reads").await?;
    assert_eq!(
        (&down["status"], &down["sensors"], &down["sensors_failed"]),
        (&json!("no_sensor_reads"), &json!(3), &json!(3))
    );
    std::fs::write(bus.join("28-000000000001").join("w1_slave"), YES_21_5)?;
    assert_eq!(poll(200, "ok").await?["sensors_failed"], 2);

    let exit = agent.terminate().await?;
    assert!(exit.success(), "exit status {exit}; log: {:#?}", agent.seen);
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
    assert!(log.contains("hearth-engine device-key --role sensor test-pi"), "{log}");
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
    assert_eq!(aliases, [Some("living room"), Some("bedroom"), Some("spare (broken)")]);
    let settings: Vec<_> = config.sensors.iter().map(|s| (s.offset_c, s.enabled)).collect();
    assert_eq!(settings, [(-0.25, true), (0.0, true), (0.0, false)]);

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

/// A fake engine with both sensor endpoints that can be "down" (503), can refuse one
/// reading, by timestamp, as invalid (422), and can refuse every backlog for its timestamps
/// as Hearth engines did when an agent's clock was ahead (422, a clock verdict).
struct FlakyEngine {
    url: String,
    up: Arc<std::sync::atomic::AtomicBool>,
    poison: Arc<std::sync::Mutex<Option<String>>>,
    clock: Arc<std::sync::atomic::AtomicBool>,
    /// (path, status, body) of every request.
    receipts: mpsc::UnboundedReceiver<(String, u16, Value)>,
    server: JoinHandle<()>,
}

#[derive(Clone)]
struct FlakyState {
    up: Arc<std::sync::atomic::AtomicBool>,
    poison: Arc<std::sync::Mutex<Option<String>>>,
    clock: Arc<std::sync::atomic::AtomicBool>,
    receipts: mpsc::UnboundedSender<(String, u16, Value)>,
}

impl FlakyEngine {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (tx, receipts) = mpsc::unbounded_channel();
        let state = FlakyState {
            up: Arc::default(),
            poison: Arc::default(),
            clock: Arc::default(),
            receipts: tx,
        };
        let (up, poison, clock) = (state.up.clone(), state.poison.clone(), state.clock.clone());
        let app = axum::Router::new()
            .route("/v1/sensors/update", put(flaky))
            .route("/v1/sensors/backlog", put(flaky))
            .with_state(state);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, up, poison, clock, receipts, server })
    }

    async fn next(&mut self) -> anyhow::Result<(String, u16, Value)> {
        tokio::time::timeout(GUARD, self.receipts.recv())
            .await
            .context("no request reached the fake engine in time")?
            .context("fake engine stopped")
    }
}

impl Drop for FlakyEngine {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The reading timestamps of one update body.
fn stamps(update: &Value) -> Vec<String> {
    let sensors = update["sensors"].as_object().cloned().unwrap_or_default();
    sensors.values().filter_map(|r| r["timestamp"].as_str().map(str::to_owned)).collect()
}

async fn flaky(
    State(state): State<FlakyState>,
    uri: axum::http::Uri,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<Value>) {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let updates: Vec<Value> = match path.as_str() {
        "/v1/sensors/backlog" => body["updates"].as_array().cloned().unwrap_or_default(),
        _ => vec![body.clone()],
    };
    let poison = state.poison.lock().ok().and_then(|p| p.clone());
    let poisoned = poison.is_some_and(|p| updates.iter().any(|u| stamps(u).contains(&p)));
    let clock = state.clock.load(Ordering::SeqCst) && path == "/v1/sensors/backlog";
    let status = if !state.up.load(Ordering::SeqCst) {
        StatusCode::SERVICE_UNAVAILABLE
    } else if poisoned || clock {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::CREATED
    };
    let _ = state.receipts.send((path, status.as_u16(), body));
    let answer = if status == StatusCode::CREATED {
        json!({"status": "ok", "ids": [], "updates": updates.len(), "readings": updates.len()})
    } else if clock {
        // Word for word what Hearth engines answered to a backlog from a clock 10 min ahead.
        let stamp =
            updates.first().map(stamps).and_then(|s| s.first().cloned()).unwrap_or_default();
        json!({"status": "error", "code": "invalid_field", "error": format!(
            "updates[0]: sensors.28-00000000a001.timestamp {stamp} is in the future (is the \
             agent's clock wrong?)")})
    } else {
        json!({"status": "error", "code": "invalid_field", "error": "no"})
    };
    (status, axum::Json(answer))
}

/// The flags every in-process agent on the simulated hardware needs, then `extra`.
fn sim_args<'a>(url: &'a str, key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args =
        vec!["--engine", url, "--host-id", HOST, "--device-key", key, "--hardware", "simulated"];
    args.extend_from_slice(extra);
    args
}

fn sim_agent_args<'a>(url: &'a str, key: &'a str, queue: &'a str) -> Vec<&'a str> {
    let extra = [
        "--sim-world",
        "/nonexistent/hearth-world.json",
        "--interval-s",
        "0.05",
        "--queue-dir",
        queue,
        "--queue-replay-batch",
        "4",
    ];
    sim_args(url, key, &extra)
}

#[tokio::test]
async fn an_outage_is_queued_and_replayed_live_first_with_original_timestamps() -> anyhow::Result<()>
{
    let mut engine = FlakyEngine::start().await?;
    let dir = tempfile::tempdir()?;
    let queue = dir.path().join("queue");
    let queue_s = queue.to_string_lossy().into_owned();
    let key = device_key()?.to_string();
    let agent = Agent::start(&sim_agent_args(&engine.url, &key, &queue_s))?;

    // The engine is down: ten live reports refused with 503 (each one queued).
    let mut missed = Vec::new();
    while missed.len() < 10 {
        let (path, status, body) = engine.next().await?;
        assert_eq!((path.as_str(), status), ("/v1/sensors/update", 503));
        missed.extend(stamps(&body));
    }
    engine.up.store(true, Ordering::SeqCst);

    // Back up: the live reading goes first, then batches of at most 4, oldest first, each
    // reading with the time it was taken, until everything missed is in.
    let mut replayed: Vec<String> = Vec::new();
    let mut first_ok = None;
    while !missed.iter().all(|m| replayed.contains(m)) {
        let (path, status, body) = engine.next().await?;
        if status != 201 {
            continue; // refused before `up` was seen
        }
        first_ok.get_or_insert_with(|| path.clone());
        if path == "/v1/sensors/backlog" {
            let updates = body["updates"].as_array().cloned().unwrap_or_default();
            assert!((1..=4).contains(&updates.len()), "{body}");
            assert_eq!(body["host_id"], HOST);
            assert!(body["agent_time"].is_string(), "{body}");
            for u in &updates {
                assert_eq!(u["host_id"], HOST);
                assert!(u.get("agent_time").is_none(), "a replayed update re-timed: {u}");
                replayed.extend(stamps(u));
            }
        }
    }
    assert_eq!(first_ok.as_deref(), Some("/v1/sensors/update"), "the live reading comes first");
    let sorted = {
        let mut s = replayed.clone();
        s.sort();
        s
    };
    assert_eq!(replayed, sorted, "replayed out of order");
    // Everything sent at least once; the queue then empties (the ack follows the answer).
    let deadline = tokio::time::Instant::now() + GUARD;
    while !hearth_sensor_agent::queue::peek(&queue)?.is_empty() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "queue never emptied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.stop().await
}

#[tokio::test]
async fn a_queued_report_refused_as_invalid_is_isolated_and_dropped() -> anyhow::Result<()> {
    let mut engine = FlakyEngine::start().await?;
    let dir = tempfile::tempdir()?;
    let queue = dir.path().join("queue");
    let queue_s = queue.to_string_lossy().into_owned();
    let key = device_key()?.to_string();
    let agent = Agent::start(&sim_agent_args(&engine.url, &key, &queue_s))?;
    let mut missed = Vec::new();
    while missed.len() < 8 {
        let (_, status, body) = engine.next().await?;
        assert_eq!(status, 503);
        missed.extend(stamps(&body));
    }
    // The third missed reading will be refused as invalid, in any batch that holds it.
    let poison = missed[2].clone();
    if let Ok(mut p) = engine.poison.lock() {
        *p = Some(poison.clone());
    }
    engine.up.store(true, Ordering::SeqCst);
    let mut delivered: Vec<String> = Vec::new();
    let mut refused_alone = false;
    while !(refused_alone && missed.iter().filter(|m| **m != poison).all(|m| delivered.contains(m)))
    {
        let (path, status, body) = engine.next().await?;
        if path != "/v1/sensors/backlog" {
            continue;
        }
        let updates = body["updates"].as_array().cloned().unwrap_or_default();
        if status == 201 {
            updates.iter().for_each(|u| delivered.extend(stamps(u)));
        } else if status == 422 && updates.len() == 1 {
            refused_alone = true;
        }
    }
    assert!(!delivered.contains(&poison));
    let deadline = tokio::time::Instant::now() + GUARD;
    while !hearth_sensor_agent::queue::peek(&queue)?.is_empty() {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the refused report stayed queued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    agent.stop().await
}

#[tokio::test]
async fn a_clock_verdict_never_costs_a_queued_reading() -> anyhow::Result<()> {
    let mut engine = FlakyEngine::start().await?;
    let dir = tempfile::tempdir()?;
    let queue = dir.path().join("queue");
    let queue_s = queue.to_string_lossy().into_owned();
    let key = device_key()?.to_string();
    let agent = Agent::start(&sim_agent_args(&engine.url, &key, &queue_s))?;
    let mut missed = Vec::new();
    while missed.len() < 8 {
        let (_, status, body) = engine.next().await?;
        assert_eq!(status, 503);
        missed.extend(stamps(&body));
    }
    // Back, but the engine refuses the backlog's timestamps (live readings get through):
    // every batch, at every size the agent tries, is refused.
    engine.clock.store(true, Ordering::SeqCst);
    engine.up.store(true, Ordering::SeqCst);
    let mut refused = 0;
    while refused < 6 {
        let (path, status, _) = engine.next().await?;
        refused += usize::from(path == "/v1/sensors/backlog" && status == 422);
    }
    // Nothing was dropped: every missed reading is still queued.
    let queued: Vec<String> = hearth_sensor_agent::queue::peek(&queue)?
        .iter()
        .filter_map(|record| serde_json::from_slice::<Value>(record).ok())
        .flat_map(|u| stamps(&u))
        .collect();
    let lost: Vec<&String> = missed.iter().filter(|m| !queued.contains(m)).collect();
    assert!(lost.is_empty(), "dropped on a clock verdict: {lost:?}");

    // The clock (or the engine) is fixed: all of it arrives.
    engine.clock.store(false, Ordering::SeqCst);
    let mut delivered: Vec<String> = Vec::new();
    while !missed.iter().all(|m| delivered.contains(m)) {
        let (path, status, body) = engine.next().await?;
        if path == "/v1/sensors/backlog" && status == 201 {
            for u in body["updates"].as_array().into_iter().flatten() {
                delivered.extend(stamps(u));
            }
        }
    }
    agent.stop().await
}

#[tokio::test]
async fn an_engine_without_the_backlog_endpoint_gets_one_update_per_report() -> anyhow::Result<()> {
    // The seed-contract-only fake engine: 500 three times, then accepts /v1/sensors/update.
    let mut engine = FakeEngine::start(3).await?;
    let key = device_key()?.to_string();
    let agent = Agent::start(&sim_args(
        &engine.url,
        &key,
        &["--sim-world", "/nonexistent/hearth-world.json", "--interval-s", "0.05"],
    ))?;
    let mut missed = Vec::new();
    for _ in 0..3 {
        let r = engine.next().await?;
        assert_eq!(r.status, 500);
        missed.extend(stamps(&r.body));
    }
    let mut replayed = Vec::new();
    while !missed.iter().all(|m| replayed.contains(m)) {
        let r = engine.next_accepted().await?;
        if r.body.get("agent_time").is_none() {
            replayed.extend(stamps(&r.body));
        }
    }
    agent.stop().await
}

#[tokio::test]
async fn an_unusable_queue_directory_stops_the_agent_with_the_fix() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x")?;
    let queue = file.join("queue").to_string_lossy().into_owned();
    let key = device_key()?.to_string();
    let agent = Agent::start(&sim_agent_args("http://127.0.0.1:9", &key, &queue))?;
    let err = tokio::time::timeout(GUARD, agent.task).await??.err().context("agent started")?;
    let msg = format!("{err:#}");
    assert!(msg.contains("replay queue") && msg.contains("--queue-dir"), "{msg}");
    Ok(())
}

// ---- Hardware layer: backends, screen, per-sensor settings, simulated faults ----

/// Reports until `check` accepts one (the agent reports every 50 ms; a change made through a
/// file shows up at the next read).
async fn report_where(
    engine: &mut FakeEngine,
    mut check: impl FnMut(&Value) -> bool,
) -> anyhow::Result<Value> {
    loop {
        let r = engine.next_accepted().await?;
        if check(&r.body) {
            return Ok(r.body);
        }
    }
}

/// Replace a file atomically, as a fault-injecting test or demo should.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[tokio::test]
async fn simulated_faults_go_through_the_screen() -> anyhow::Result<()> {
    let mut engine = FakeEngine::start(0).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        "[[sensors]]\nid = \"28-00000000a001\"\nalias = \"living room\"\noffset_c = 0.5\n\
         [[sensors]]\nid = \"28-00000000a002\"\nenabled = false\n\
         [[sensors]]\nid = \"28-00000000a003\"\n\
         sim = { profile = \"linear\", start_c = 30, rate_c_per_h = 0 }\n",
    )?;
    let faults = dir.path().join("faults.toml");
    let key = device_key()?.to_string();
    let agent = Agent::start(&sim_args(
        &engine.url,
        &key,
        &[
            "--config",
            &config.to_string_lossy(),
            "--sim-world",
            "/nonexistent/hearth-world.json",
            "--sim-faults",
            &faults.to_string_lossy(),
            "--interval-s",
            "0.05",
        ],
    ))?;

    // No faults file yet: calibrated room sensor, the linear one, and no disabled sensor.
    let first = engine.next_accepted().await?.body;
    let room = sensor(&first, "28-00000000a001")?;
    assert_eq!((room["value"].as_f64(), room["alias"].as_str()), (Some(17.5), Some("living room")));
    assert_eq!(sensor(&first, "28-00000000a003")?["value"], 30.0);
    assert!(first["sensors"].get("28-00000000a002").is_none(), "disabled sensor reported: {first}");

    // An 85 °C spike is caught by the screen (null), not by the simulator.
    write_atomically(&faults, "[\"28-00000000a001\"]\nspike_85 = true\n")?;
    report_where(&mut engine, |b| b["sensors"]["28-00000000a001"]["value"].is_null()).await?;

    // Unplugged: still reported, as a failed reading; the spike is over.
    write_atomically(&faults, "[\"28-00000000a003\"]\nunplugged = true\n")?;
    let body =
        report_where(&mut engine, |b| b["sensors"]["28-00000000a003"]["value"].is_null()).await?;
    assert_eq!(sensor(&body, "28-00000000a003")?["type"], "simulated");

    // Faults removed: both read again.
    std::fs::remove_file(&faults)?;
    report_where(&mut engine, |b| {
        b["sensors"]["28-00000000a001"]["value"] == 17.5
            && b["sensors"]["28-00000000a003"]["value"] == 30.0
    })
    .await?;
    agent.stop().await
}

#[tokio::test]
async fn w1_settings_missing_sensors_and_calibration() -> anyhow::Result<()> {
    let mut engine = FakeEngine::start(0).await?;
    let dir = tempfile::tempdir()?;
    let bus = dir.path().join("devices");
    fixture_bus(&bus)?;
    let config = dir.path().join("agent.toml");
    // Ids in upper case match the kernel's lower-case names.
    std::fs::write(
        &config,
        "[[sensors]]\nid = \"28-000000000001\"\noffset_c = -0.5\n\
         [[sensors]]\nid = \"28-000000000002\"\nenabled = false\n\
         [[sensors]]\nid = \"28-00000000DEAD\"\nalias = \"attic\"\n",
    )?;
    let key = device_key()?.to_string();
    let agent = Agent::start(&[
        "--config",
        &config.to_string_lossy(),
        "--engine",
        &engine.url,
        "--host-id",
        HOST,
        "--device-key",
        &key,
        "--w1-dir",
        &bus.to_string_lossy(),
        "--interval-s",
        "0.05",
    ])?;
    let body = engine.next_accepted().await?.body;
    assert_eq!(sensor(&body, "28-000000000001")?["value"], 21.0);
    assert!(body["sensors"].get("28-000000000002").is_none(), "disabled sensor reported: {body}");
    // Configured but not on the bus: reported, as failed, under its configured name.
    let attic = sensor(&body, "28-00000000DEAD")?;
    assert_eq!((attic["value"].is_null(), attic["type"].as_str()), (true, Some("DS18B20")));
    assert_eq!(attic["alias"], "attic");
    assert_eq!(sensor(&body, "10-000000000003")?["value"], -10.125);

    // Unplugged while running: still reported, as failed.
    std::fs::remove_dir_all(bus.join("10-000000000003"))?;
    let body =
        report_where(&mut engine, |b| b["sensors"]["10-000000000003"]["value"].is_null()).await?;
    assert_eq!(sensor(&body, "10-000000000003")?["type"], "DS18S20");
    agent.stop().await
}

#[cfg(feature = "gpio")]
#[tokio::test]
async fn bitbang_backends_off_their_hardware_fail_at_start_with_the_fix() -> anyhow::Result<()> {
    let key = device_key()?.to_string();
    let start = |args: &[&str]| -> anyhow::Result<Agent> {
        let mut all =
            vec!["--engine", "http://127.0.0.1:9", "--host-id", HOST, "--device-key", &key];
        all.extend_from_slice(args);
        Agent::start(&all)
    };
    let failure = |agent: Agent| async move {
        let result = tokio::time::timeout(GUARD, agent.task).await??;
        anyhow::Ok(format!("{:#}", result.err().context("the agent started")?))
    };

    let msg = failure(start(&["--hardware", "bitbang-cdev", "--gpio-chip", "/nonexistent/chip"])?)
        .await?;
    assert!(msg.contains("no GPIO character device at /nonexistent/chip"), "{msg}");
    assert!(msg.contains("--hardware w1"), "{msg}");

    // This machine is not a Raspberry Pi (or, on one, the test has no GPIO rights): either
    // way a message that names a way out, not a panic.
    let msg = failure(start(&["--hardware", "bitbang-rppal"])?).await?;
    assert!(msg.contains("--hardware") || msg.contains("group gpio"), "{msg}");
    Ok(())
}

#[test]
fn help_documents_every_backend_and_setting() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_hearth-sensor-agent")).arg("--help").output()?;
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout)?;
    for needle in [
        "w1",
        "bitbang-rppal",
        "bitbang-cdev",
        "simulated",
        "--gpio-pin",
        "--gpio-chip",
        "--sim-faults",
        "--sim-seed",
        "--screen-max-rate-c-per-min",
        "--screen-step-rejections",
        "offset_c",
        "[[sensors]]",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
    Ok(())
}

#[cfg(not(feature = "gpio"))]
#[tokio::test]
async fn without_the_gpio_feature_bitbang_fails_at_start_with_the_fix() -> anyhow::Result<()> {
    let key = device_key()?.to_string();
    let agent = Agent::start(&[
        "--engine",
        "http://127.0.0.1:9",
        "--host-id",
        HOST,
        "--device-key",
        &key,
        "--hardware",
        "bitbang-cdev",
    ])?;
    let result = tokio::time::timeout(GUARD, agent.task).await??;
    let msg = format!("{:#}", result.err().context("the agent started")?);
    assert!(msg.contains("no GPIO support") && msg.contains("--hardware w1"), "{msg}");
    Ok(())
}
