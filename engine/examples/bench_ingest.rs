//! The ingest benchmark (`cargo xtask bench ingest` runs it in release mode): the engine's
//! router served on loopback in this process (temporary data dir, no mDNS, no control loop),
//! and concurrent clients sending `PUT /v1/sensors/update` with 10 timestamped readings each
//! over keep-alive HTTP/1.1. Acknowledged means committed. The load generator shares the CPU
//! with the engine, so the figures are a floor. Prints figures; asserts nothing.
//!
//! Each load runs twice, side by side: against the engine as it is (`synchronous = FULL`: the
//! WAL is synced at every commit, so an acknowledgement survives a power cut or a storage
//! fault) and against the same engine committing with `synchronous = NORMAL` (what it did
//! before: the last acknowledged commits could vanish). The group commit is what keeps the
//! price of the fsync small.
//!
//! `cargo run --release -p hearth-engine --example bench_ingest -- [--requests N]
//! [--concurrency N]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use hearth_engine::{Config, Engine};
use hearth_proto::client::EngineClient;
use hearth_proto::sensors::{SensorReport, SensorUpdate};

const SENSORS: usize = 10;
const HOST: &str = "bench-ingest";

/// One run's figures.
struct Figures {
    readings_per_s: f64,
    p50: Duration,
    p99: Duration,
}

/// An engine on a fresh data dir, served on loopback: its URL and the agent credential.
async fn serve(durable: bool) -> anyhow::Result<(tempfile::TempDir, String, String)> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_string_lossy().to_string();
    let config: Config = hearth_common::config::load_from([
        "hearth-engine",
        "--data-dir",
        &data_dir,
        "--mdns",
        "false",
    ])?;
    let engine = if durable {
        Engine::open(&config).await?
    } else {
        hearth_engine::bench::open_engine_not_durable(&config).await?
    };
    let credential =
        engine.device_key(HOST, hearth_proto::agents::KeyRole::Sensor).agent_credential(HOST);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = engine.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((dir, url, credential))
}

/// `requests` updates from `clients` concurrent clients, timestamped from `first` (seconds).
async fn load(
    url: &str,
    credential: &str,
    clients: usize,
    requests: i64,
    first: i64,
) -> anyhow::Result<Figures> {
    let next = Arc::new(AtomicI64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        let api = EngineClient::new(url, Some(credential.to_owned()));
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let at = jiff::Timestamp::from_second(first + i)?;
                let sensors: BTreeMap<String, SensorReport> = (0..SENSORS)
                    .map(|s| {
                        let report = SensorReport {
                            kind: "DS18B20".into(),
                            value: Some(20.0 + (i % 64) as f64 / 16.0),
                            alias: None,
                            extra: None,
                            timestamp: Some(at),
                        };
                        (format!("28-ingest{s:06}"), report)
                    })
                    .collect();
                let update = SensorUpdate { host_id: HOST.into(), sensors, agent_time: None };
                let sent = Instant::now();
                api.sensor_update(&update).await?;
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    Ok(Figures {
        readings_per_s: requests as f64 * SENSORS as f64 / elapsed,
        p50: pct(0.5),
        p99: pct(0.99),
    })
}

fn cell(f: &Figures) -> String {
    format!(
        "{:>7.0}/s p50 {:>5.2} ms p99 {:>6.2} ms",
        f.readings_per_s,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (mut requests, mut concurrency) = (100_000_i64, vec![16_usize, 64, 256]);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--requests" => requests = value.parse()?,
            "--concurrency" => concurrency = vec![value.parse()?],
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    let (_durable_dir, durable_url, durable_key) = serve(true).await?;
    let (_normal_dir, normal_url, normal_key) = serve(false).await?;
    println!(
        "bench ingest: PUT /v1/sensors/update, {SENSORS} readings per request, {requests} \
         requests per run, engine and clients in one release-mode process on loopback; \
         readings persisted per second (goal >= 100,000/s, p99 <= 10 ms)"
    );
    println!(
        "  {:>7}  {:<38}  {:<38}",
        "clients", "synchronous=FULL (engine: durable ack)", "synchronous=NORMAL (before)"
    );
    // Distinct timestamps, in the past (the engine refuses the future), one second apart.
    let now = jiff::Timestamp::now().as_second();
    let mut first = now - 400 * 86_400;
    for (i, c) in concurrency.into_iter().enumerate() {
        // Alternate which runs first, so neither always meets a warmer machine.
        let (durable, normal) = if i % 2 == 0 {
            let durable = load(&durable_url, &durable_key, c, requests, first).await?;
            (durable, load(&normal_url, &normal_key, c, requests, first).await?)
        } else {
            let normal = load(&normal_url, &normal_key, c, requests, first).await?;
            (load(&durable_url, &durable_key, c, requests, first).await?, normal)
        };
        println!("  {c:>7}  {:<38}  {:<38}", cell(&durable), cell(&normal));
        first += requests;
    }
    Ok(())
}
