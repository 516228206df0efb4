//! The optional status endpoint (`--status-listen ADDR`, off by default): `GET /v1/status`
//! answers what the agent is doing, so every Hearth binary can be probed the same way (the qemu
//! smoke tests of the cross builds, a monitoring check on the Pi).
//!
//! The answer is 200 while the sensors read (or before the first read: nothing has failed yet),
//! 503 when the last read gave no value at all (every sensor failed, or none is on the bus): a
//! monitoring check sees a sensor agent that reports nothing but nulls as down.
//!
//! Hand-written HTTP/1.1 on a tokio `TcpListener`, one request per connection: the agent has no
//! other server, and a server crate (hyper's server side, axum) would add hundreds of KB to a Pi
//! Zero binary for one GET. It reads at most one request head, answers, and closes; it never
//! reads a body or keeps a connection open. Connections are served concurrently, each in a task
//! of its own for at most [`CLIENT_TIMEOUT`], at most [`MAX_CLIENTS`] at once: one more closes
//! the oldest, which has had the most time to ask. So idle or slow clients cost at most a few
//! dozen KB and can neither keep a probe waiting nor pile up tasks, and the report loop never
//! waits for any of them. The JSON is formatted by hand too: derived `Serialize` code for one
//! struct cost ~7 KB on ARMv6.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hearth_proto::Timestamp;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

use hearth_probes::RawReading;
use hearth_proto::fallback::READINGS_PATH;

/// The most a request head may take; a longer one is answered 431 and closed.
const MAX_HEAD: usize = 8 * 1024;
/// How long one client may take to send its request and read the answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Most connections served at once (each holds at most a request head, [`MAX_HEAD`]).
const MAX_CLIENTS: usize = 8;

/// What the report loop last did, shared with the status endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
struct Progress {
    /// The engine URL in use; `None` while none is known (mDNS discovery still looking).
    engine: Option<String>,
    /// When the sensors were last read.
    last_read: Option<Timestamp>,
    /// Sensors in the last read, and how many of them failed (reported as null).
    sensors: usize,
    sensors_failed: usize,
    /// Reports waiting in the replay queue.
    queue_depth: u64,
    /// Readings with a value, since start.
    readings_total: u64,
    /// Failed readings since start, by sensor id.
    failures: std::collections::BTreeMap<String, u64>,
    /// The last failure of each failing sensor, and of delivery (newest last, bounded).
    last_errors: VecDeque<(Timestamp, String)>,
    /// When the engine last acknowledged a report.
    last_success: Option<Timestamp>,
}

/// Most errors kept for diagnostics.
const MAX_LAST_ERRORS: usize = 8;

/// The agent's status: fixed facts and the loop's [`Progress`]. Cheap to clone (one `Arc`).
#[derive(Debug, Clone)]
pub(crate) struct Board {
    host_id: String,
    hardware: &'static str,
    progress: Arc<Mutex<Progress>>,
    pub(crate) share: crate::share::Shelf,
}

impl Board {
    pub(crate) fn new(host_id: &str, hardware: &'static str) -> Self {
        Self {
            host_id: host_id.to_owned(),
            hardware,
            progress: Arc::default(),
            share: crate::share::Shelf::default(),
        }
    }

    fn update(&self, f: impl FnOnce(&mut Progress)) {
        // A panic elsewhere while holding the lock leaves plain data behind: still readable.
        f(&mut self.progress.lock().unwrap_or_else(PoisonError::into_inner));
    }

    pub(crate) fn read_done(&self, at: Timestamp, readings: &[RawReading]) {
        self.share.read_done(readings);
        self.update(|p| {
            p.last_read = Some(at);
            p.sensors = readings.len();
            p.sensors_failed = readings.iter().filter(|r| r.value.is_err()).count();
            for r in readings {
                match &r.value {
                    Ok(_) => p.readings_total += 1,
                    Err(e) => {
                        // Sensor ids come from the bus or the file: bounded like the engine's.
                        let id: String = r.id.chars().take(64).collect();
                        *p.failures.entry(id.clone()).or_default() += 1;
                        p.error(at, format!("sensor {id}: {e}"));
                    }
                }
            }
        });
    }

    /// The engine acknowledged a report.
    pub(crate) fn delivered(&self) {
        self.update(|p| p.last_success = Some(Timestamp::now()));
    }

    /// A report was not delivered, and why.
    pub(crate) fn delivery_failed(&self, why: &str) {
        self.update(|p| p.error(Timestamp::now(), format!("delivery: {why}")));
    }

    /// The `diagnostics` command's result: what the status shows, and more.
    pub(crate) fn diagnostics(&self, uptime: Duration, interval: Duration) -> serde_json::Value {
        let p = self.progress.lock().unwrap_or_else(PoisonError::into_inner).clone();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "host_id": self.host_id,
            "uptime_s": uptime.as_secs(),
            "hardware": self.hardware,
            "interval_s": interval.as_secs_f64(),
            "engine": p.engine,
            "bus": {
                "last_read": p.last_read,
                "sensors": p.sensors,
                "sensors_failed": p.sensors_failed,
            },
            "last_errors": p.last_errors.iter()
                .map(|(at, e)| serde_json::json!({"at": at, "error": e}))
                .collect::<Vec<_>>(),
            "queue_depth": p.queue_depth,
            "last_success": p.last_success,
            // The engine knows the offset (it compares this with its own clock and shows it
            // in GET /v1/agents); the agent says what its clock reads.
            "agent_time": Timestamp::now(),
        })
    }

    /// `GET /metrics`: Prometheus text format 0.0.4.
    fn metrics(&self) -> String {
        let p = self.progress.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut e = hearth_common::metrics::Exposition::default();
        let seconds =
            |t: Option<Timestamp>| t.map_or(f64::NAN, |t| t.as_millisecond() as f64 / 1000.0);
        for (name, kind, help, value) in [
            (
                "hearth_sensor_agent_readings_total",
                "counter",
                "Sensor readings with a value since the agent started.",
                p.readings_total as f64,
            ),
            ("hearth_sensor_agent_sensors", "gauge", "Sensors in the last read.", p.sensors as f64),
            (
                "hearth_sensor_agent_sensors_failed",
                "gauge",
                "Sensors that failed in the last read.",
                p.sensors_failed as f64,
            ),
            (
                "hearth_sensor_agent_queue_reports",
                "gauge",
                "Reports waiting in the replay queue.",
                p.queue_depth as f64,
            ),
            (
                "hearth_sensor_agent_last_success_timestamp_seconds",
                "gauge",
                "When the engine last acknowledged a report (Unix time; NaN: never).",
                seconds(p.last_success),
            ),
            (
                "hearth_sensor_agent_last_read_timestamp_seconds",
                "gauge",
                "When the sensors were last read (Unix time; NaN: never).",
                seconds(p.last_read),
            ),
        ] {
            e.family(name, kind, help);
            e.sample(name, &[], value);
        }
        let name = "hearth_sensor_agent_read_failures_total";
        e.family(name, "counter", "Failed sensor readings since the agent started, by sensor.");
        for (id, n) in &p.failures {
            e.sample(name, &[("sensor", id)], *n as f64);
        }
        e.finish()
    }

    pub(crate) fn engine(&self, url: Option<&str>) {
        self.update(|p| {
            if p.engine.as_deref() != url {
                p.engine = url.map(str::to_owned);
            }
        });
    }

    pub(crate) fn queue_depth(&self, depth: u64) {
        self.update(|p| p.queue_depth = depth);
    }

    /// The HTTP status and JSON answer of `GET /v1/status`.
    fn answer(&self) -> (u16, String) {
        let p = self.progress.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let (code, status) = match p.last_read {
            None => (200, "starting"),
            Some(_) if p.sensors_failed >= p.sensors => (503, "no_sensor_reads"),
            Some(_) => (200, "ok"),
        };
        (code, self.json(&p, status))
    }

    fn json(&self, p: &Progress, status: &str) -> String {
        let null = || "null".to_owned();
        format!(
            "{{\"status\":\"{status}\",\"version\":\"{}\",\"host_id\":{},\"hardware\":\"{}\",\
             \"engine\":{},\"last_read\":{},\"sensors\":{},\"sensors_failed\":{},\
             \"queue_depth\":{}}}",
            env!("CARGO_PKG_VERSION"),
            quote(&self.host_id),
            self.hardware,
            p.engine.as_deref().map_or_else(null, quote),
            // RFC 3339, as serde writes a Timestamp everywhere else.
            p.last_read.map_or_else(null, |t| format!("\"{t}\"")),
            p.sensors,
            p.sensors_failed,
            p.queue_depth,
        )
    }
}

impl Progress {
    fn error(&mut self, at: Timestamp, error: String) {
        if self.last_errors.len() >= MAX_LAST_ERRORS {
            self.last_errors.pop_front();
        }
        self.last_errors.push_back((at, error));
    }
}

/// A JSON string literal (the URL comes from configuration or mDNS: escape it).
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "null".to_owned())
}

/// Bind the status listener (at start, so a taken port is a start-up error) and log where.
pub(crate) async fn bind(addr: &str) -> anyhow::Result<TcpListener> {
    let addr: SocketAddr = addr.parse().map_err(|_| {
        anyhow::anyhow!(
            "--status-listen must be an IP address and port such as 0.0.0.0:8082, got {addr:?}"
        )
    })?;
    let listener = TcpListener::bind(addr).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {addr} for the status endpoint: {e} (choose another \
             --status-listen / HEARTH_SENSOR_STATUS_LISTEN, or leave it unset)"
        )
    })?;
    // The smoke tests and the integration test find a port-0 listener from this line.
    tracing::info!("status endpoint listening on http://{}/v1/status", listener.local_addr()?);
    Ok(listener)
}

/// Answer status requests forever; without a listener (the default), wait forever.
pub(crate) async fn serve(listener: Option<TcpListener>, board: Board) -> std::convert::Infallible {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    let mut clients = JoinSet::new();
    // Oldest first; finished ones are dropped before a new one is counted.
    let mut open: VecDeque<AbortHandle> = VecDeque::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    open.retain(|c| !c.is_finished());
                    if open.len() >= MAX_CLIENTS
                        && let Some(oldest) = open.pop_front()
                    {
                        oldest.abort();
                    }
                    let board = board.clone();
                    // A client that stalls is dropped; nothing to report to it.
                    open.push_back(clients.spawn(async move {
                        let _ = tokio::time::timeout(CLIENT_TIMEOUT, exchange(stream, &board)).await;
                    }));
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "status endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
            // Reap finished (or aborted) clients so the set does not grow.
            Some(_) = clients.join_next() => {}
        }
    }
}

async fn exchange(stream: TcpStream, board: &Board) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    // Read the whole head before answering: closing a socket with unread bytes makes the
    // kernel send a reset, which can destroy the answer before the client has read it.
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
        stream.readable().await?;
        match stream.try_read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    let answer = respond(&head, board);
    let mut rest = answer.as_bytes();
    while !rest.is_empty() {
        stream.writable().await?;
        match stream.try_write(rest) {
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The whole HTTP answer to a request head.
pub(crate) fn respond(head: &[u8], board: &Board) -> String {
    let complete = head.windows(4).any(|w| w == b"\r\n\r\n");
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.trim_end().split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let path = target.map(|t| t.split_once('?').map_or(t, |(p, _)| p));
    match (method, path, version) {
        _ if !complete && head.len() >= MAX_HEAD => {
            http(431, "Request Header Fields Too Large", &error("request head too large"))
        }
        (Some(_), Some(_), Some(v)) if complete && v.starts_with("HTTP/1.") => match (method, path)
        {
            (Some("GET"), Some("/v1/status")) => match board.answer() {
                (200, json) => http(200, "OK", &json),
                (_, json) => http(503, "Service Unavailable", &json),
            },
            (Some("GET"), Some("/metrics")) => {
                http_typed(200, "OK", hearth_common::metrics::CONTENT_TYPE, &board.metrics())
            }
            (Some("GET"), Some(READINGS_PATH)) => {
                let (code, reason, json) = crate::share::answer(head, &board.host_id, &board.share);
                http(code, reason, &json)
            }
            (_, Some("/v1/status" | "/metrics" | READINGS_PATH)) => {
                http(405, "Method Not Allowed", &error("use GET"))
            }
            _ => http(
                404,
                "Not Found",
                &error("only GET /v1/status, /metrics and /v1/readings are served here"),
            ),
        },
        _ => http(400, "Bad Request", &error("not an HTTP/1.x request")),
    }
}

fn error(message: &'static str) -> String {
    format!("{{\"error\":\"{message}\"}}")
}

fn http(code: u16, reason: &str, body: &str) -> String {
    http_typed(code, reason, "application/json", body)
}

fn http_typed(code: u16, reason: &str, content_type: &str, body: &str) -> String {
    let allow = match code {
        405 => "Allow: GET\r\n",
        401 => "WWW-Authenticate: Bearer\r\n",
        _ => "",
    };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n{allow}Connection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_probes::ReadError;

    fn body(answer: &str) -> serde_json::Value {
        let (_, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
        serde_json::from_str(body).unwrap_or_default()
    }

    #[test]
    fn answers_status_and_refuses_the_rest() {
        let board = Board::new("pi-1", "w1");
        let ok = respond(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", &board);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: application/json\r\n"), "{ok}");
        let json = body(&ok);
        // Before the first read nothing has failed yet.
        assert_eq!(json["status"], "starting");
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(
            (json["host_id"].as_str(), json["hardware"].as_str()),
            (Some("pi-1"), Some("w1"))
        );
        assert_eq!(json["engine"], serde_json::Value::Null);
        assert_eq!(json["last_read"], serde_json::Value::Null);
        assert_eq!((json["sensors"].as_u64(), json["queue_depth"].as_u64()), (Some(0), Some(0)));
        let (head, json_text) = ok.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.contains(&format!("Content-Length: {}", json_text.len())), "{ok}");

        // A query string is ignored; HTTP/1.0 clients are answered too.
        assert!(respond(b"GET /v1/status?x=1 HTTP/1.0\r\n\r\n", &board).contains(" 200 OK"));
        let post = respond(b"POST /v1/status HTTP/1.1\r\n\r\n", &board);
        assert!(post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET\r\n"), "{post}");
        assert!(respond(b"GET / HTTP/1.1\r\n\r\n", &board).starts_with("HTTP/1.1 404 "));
        assert!(respond(b"GET /v1/status/x HTTP/1.1\r\n\r\n", &board).starts_with("HTTP/1.1 404 "));
        for bad in
            [&b"hello\r\n\r\n"[..], b"GET /v1/status\r\n\r\n", b"GET /v1/status HTTP/1.1\r\n", b""]
        {
            assert!(respond(bad, &board).starts_with("HTTP/1.1 400 "), "{bad:?}");
        }
        let huge = [b'a'; MAX_HEAD];
        assert!(respond(&huge, &board).starts_with("HTTP/1.1 431 "));
    }

    #[test]
    fn shows_the_loops_progress() {
        let board = Board::new("pi-1", "w1");
        let at = Timestamp::now();
        let reading = |id: &str, value| RawReading { id: id.into(), kind: "DS18B20".into(), value };
        board.read_done(at, &[reading("28-1", Ok(21.5)), reading("28-2", Err(ReadError::Crc))]);
        board.engine(Some("http://10.0.0.2:8080"));
        board.queue_depth(3);
        let json = body(&respond(b"GET /v1/status HTTP/1.1\r\n\r\n", &board));
        assert_eq!(json["engine"], "http://10.0.0.2:8080");
        assert_eq!(json["last_read"], serde_json::json!(at));
        assert_eq!(
            (
                json["sensors"].as_u64(),
                json["sensors_failed"].as_u64(),
                json["queue_depth"].as_u64()
            ),
            (Some(2), Some(1), Some(3))
        );
        board.engine(None);
        assert_eq!(body(&board_answer(&board))["engine"], serde_json::Value::Null);
    }

    #[test]
    fn no_sensor_reading_is_503() {
        let board = Board::new("pi-1", "w1");
        let reading = |value| RawReading { id: "28-1".into(), kind: "DS18B20".into(), value };
        board.read_done(Timestamp::now(), &[reading(Ok(21.5))]);
        let ok = board_answer(&board);
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert_eq!(body(&ok)["status"], "ok");
        // Every sensor failed, or none is on the bus: the agent reports nothing useful.
        for readings in
            [vec![reading(Err(ReadError::Crc)), reading(Err(ReadError::Missing))], vec![]]
        {
            board.read_done(Timestamp::now(), &readings);
            let down = board_answer(&board);
            assert!(down.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{down}");
            assert_eq!(body(&down)["status"], "no_sensor_reads");
            assert_eq!(body(&down)["host_id"], "pi-1", "the same body otherwise");
        }
    }

    #[test]
    fn serves_metrics_in_the_prometheus_text_format() {
        let board = Board::new("pi-1", "w1");
        let reading = |id: &str, value| RawReading { id: id.into(), kind: "DS18B20".into(), value };
        board.read_done(
            Timestamp::now(),
            &[reading("28-1", Ok(21.5)), reading("28-\"2", Err(ReadError::Crc))],
        );
        board.queue_depth(4);
        let answer = respond(b"GET /metrics HTTP/1.1\r\n\r\n", &board);
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(answer.contains("Content-Type: text/plain; version=0.0.4"), "{answer}");
        for line in [
            "# TYPE hearth_sensor_agent_readings_total counter",
            "hearth_sensor_agent_readings_total 1\n",
            "hearth_sensor_agent_read_failures_total{sensor=\"28-\\\"2\"} 1\n",
            "hearth_sensor_agent_queue_reports 4\n",
            "hearth_sensor_agent_last_success_timestamp_seconds NaN\n",
        ] {
            assert!(answer.contains(line), "{line:?} missing: {answer}");
        }
        assert!(respond(b"POST /metrics HTTP/1.1\r\n\r\n", &board).starts_with("HTTP/1.1 405 "));
    }

    fn board_answer(board: &Board) -> String {
        respond(b"GET /v1/status HTTP/1.1\r\n\r\n", board)
    }
}
