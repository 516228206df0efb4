//! A relay agent the engine lost comes back: the engine reads what the agent did meanwhile (its
//! fallback program switched the heat off) before it sends it any command, and holds the
//! minimum off time from the agent's real switch time. Against a stand-in relay agent on a real
//! socket that can stop answering (every connection closed unanswered, as a host that dropped
//! off the network); the loop runs on real time here, every wait polls with a deadline.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

use super::super::*;
use super::{Outputs, decision_where, fixture_with, list, next_command, register, running_engine};

/// A listener whose connections are closed unanswered while `down` is set.
struct Gated {
    inner: tokio::net::TcpListener,
    down: Arc<AtomicBool>,
}

impl axum::serve::Listener for Gated {
    type Io = tokio::net::TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((io, addr)) = self.inner.accept().await else { continue };
            if !self.down.load(Ordering::SeqCst) {
                return (io, addr);
            }
            // Closed without an HTTP answer: to the engine, the agent is unreachable.
            drop(io);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The stand-in's fallback: `Some(entered)` while it runs its program.
type InFallback = Arc<Mutex<Option<tokio::time::Instant>>>;

/// What the stand-in shares with its handlers.
#[derive(Clone)]
struct Agent {
    outputs: Outputs,
    fallback: InFallback,
    /// Every request it answered, in order: `GET /v1/relays` or a command as "id state".
    log: UnboundedSender<String>,
}

/// A stand-in relay agent with outputs `heat` and `cool` (off since `heat_off_ago`), that
/// obeys every command (its own protections would hide what the engine sends) and ends its
/// fallback at the first one, as a real agent does. Every answer closes its connection, so
/// `down` takes effect at the engine's next call.
async fn relay_agent(
    heat_off_ago: Duration,
) -> R<(String, Agent, Arc<AtomicBool>, UnboundedReceiver<String>)> {
    use axum::extract::{Path, State};
    let now = tokio::time::Instant::now();
    let off_since = now.checked_sub(heat_off_ago).unwrap_or(now);
    let outputs: Outputs = Arc::new(Mutex::new(
        [("heat", off_since), ("cool", off_since)]
            .into_iter()
            .map(|(id, at)| (id.to_owned(), ("off".to_owned(), at)))
            .collect(),
    ));
    let (log, rx) = tokio::sync::mpsc::unbounded_channel();
    let agent = Agent { outputs, fallback: InFallback::default(), log };
    let app = Router::new()
        .route(
            "/v1/relays",
            axum::routing::get(|State(a): State<Agent>| async move {
                let _ = a.log.send("GET /v1/relays".into());
                let entered = a.fallback.lock().ok().and_then(|f| *f);
                let mut body = json!({"host_id": "relay1", "outputs": list(&a.outputs)});
                if let Some(entered) = entered {
                    body["fallback"] = json!({
                        "since_s_ago": entered.elapsed().as_secs_f64(),
                        "why": "engine_silent",
                        "program": {"after_s": 4, "outputs": {
                            "heat": {"mode": "off"}, "cool": {"mode": "off"}}},
                        "doing": {"heat": {"on": false, "detail": "off"}},
                    });
                }
                axum::Json(body)
            }),
        )
        .route(
            "/v1/relays/{id}",
            axum::routing::post(
                |State(a): State<Agent>,
                 Path(id): Path<String>,
                 axum::Json(cmd): axum::Json<Value>| async move {
                    let state = cmd["state"].as_str().unwrap_or("off").to_owned();
                    if let Ok(mut f) = a.fallback.lock() {
                        *f = None;
                    }
                    if let Ok(mut map) = a.outputs.lock()
                        && let Some(slot) = map.get_mut(&id)
                        && slot.0 != state
                    {
                        *slot = (state.clone(), tokio::time::Instant::now());
                    }
                    let _ = a.log.send(format!("{id} {state}"));
                    let status = list(&a.outputs).into_iter().find(|s| s["id"] == id);
                    axum::Json(status.unwrap_or_default())
                },
            ),
        )
        .layer(axum::middleware::map_response(|mut r: axum::response::Response| async move {
            r.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            r
        }))
        .with_state(agent.clone());
    let down = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let gated = Gated { inner: listener, down: down.clone() };
    tokio::spawn(async move { axum::serve(gated, app).await });
    Ok((url, agent, down, rx))
}

/// The relay output `id` of `relay1` as `GET /v1/relays` lists it.
async fn relay(f: &Fixture, id: &str) -> R<Value> {
    let relays = f.get("/v1/relays").await?;
    let found = relays.as_array().and_then(|r| r.iter().find(|r| r["output_id"] == id)).cloned();
    found.ok_or_else(|| anyhow::anyhow!("no output {id} in {relays}"))
}

/// Wait until `GET /v1/relays` shows output `id` satisfying `ok`.
async fn relay_where(f: &Fixture, id: &str, what: &str, ok: impl Fn(&Value) -> bool) -> R<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = relay(f, id).await?;
        if ok(&r) {
            return Ok(r);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "{what}: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The agent was unreachable while it heated; meanwhile its fallback program switched the heat
/// off 30 s ago. When it answers again, the engine's first call is the read, and with the
/// plant's 300 s minimum off time it does not command the heat on: the decision says why.
#[tokio::test]
async fn a_returning_agent_is_read_first_and_its_fallback_off_is_protected() -> R {
    // A 4 s lease: the engine renews (and asks a silent agent again) every second.
    let f = fixture_with(&["--tick-s", "0.1", "--lease-s", "4"]).await?;
    let (url, agent, down, mut log) = relay_agent(Duration::from_secs(1200)).await?;
    let got = register(&f, &url, &agent.outputs).await?;
    assert_eq!(got.0, StatusCode::OK, "{}", got.1);
    heat_to(&f, 20.0, 0, 300).await?;
    let (stop, control) = running_engine(&f).await;
    let cred = f.agent("pi");
    f.call("PUT", "/v1/sensors/update", Some(&cred), Some(&update("pi", json!(18.0)))).await?;
    while next_command(&mut log).await? != "heat on" {}
    relay_where(&f, "heat", "heat reported on", |r| r["state"] == "on").await?;

    // The agent drops off the network; the engine finds it unreachable at its next renewal.
    down.store(true, Ordering::SeqCst);
    relay_where(&f, "heat", "agent unreachable", |r| r["agent_reachable"] == false).await?;
    // Meanwhile its lease ran out and its fallback program switched the heat off, 30 s ago.
    let now = tokio::time::Instant::now();
    if let Ok(mut map) = agent.outputs.lock() {
        let off_at = now.checked_sub(Duration::from_secs(30)).unwrap_or(now);
        map.insert("heat".into(), ("off".into(), off_at));
    }
    if let Ok(mut fallback) = agent.fallback.lock() {
        *fallback = Some(now.checked_sub(Duration::from_secs(40)).unwrap_or(now));
    }
    while log.try_recv().is_ok() {}

    // It answers again: the engine reads it before anything else.
    down.store(false, Ordering::SeqCst);
    let first = next_command(&mut log).await?;
    assert_eq!(first, "GET /v1/relays", "the engine commanded before reading the agent");
    let d = decision_where(&f, "held off by the fallback's off", |d| {
        d["reason_code"] == "min_off_time"
    })
    .await?;
    assert_eq!(d["heat"], false, "{d}");
    assert!(d["reason"].as_str().is_some_and(|r| r.contains("min off")), "{d}");
    let heat = relay_where(&f, "heat", "the fallback's off recorded and ended", |r| {
        r["state"] == "off" && !r["agent_fallback"]["ended_at"].is_null()
    })
    .await?;
    assert_eq!(heat["agent_fallback"]["why"], "engine_silent", "{heat}");
    assert_eq!(heat["agent_reachable"], true, "{heat}");
    // The heat stays off: no "heat on" while the minimum off time runs (270 s; a few renewals
    // are enough to see the engine's mind).
    let quiet_until = tokio::time::Instant::now() + Duration::from_secs(3);
    while let Ok(Some(c)) = tokio::time::timeout_at(quiet_until, log.recv()).await {
        assert_ne!(c, "heat on", "short cycle: the heat commanded on 30 s after it went off");
    }
    let _ = stop.send(true);
    control.await?;
    Ok(())
}
