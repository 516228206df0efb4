//! The ingest benchmark (`cargo xtask bench ingest` runs it in release mode): the engine's
//! router served on loopback in this process (temporary data dir, no mDNS, no control loop),
//! and concurrent clients sending `PUT /v1/sensors/update` with 10 timestamped readings each
//! over keep-alive HTTP/1.1. Acknowledged means committed. The load generator shares the CPU
//! with the engine, so the figures are a floor. Prints figures; asserts nothing.
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
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_string_lossy().to_string();
    let config: Config = hearth_common::config::load_from([
        "hearth-engine",
        "--data-dir",
        &data_dir,
        "--mdns",
        "false",
    ])?;
    let engine = Engine::open(&config).await?;
    let credential =
        engine.device_key(HOST, hearth_proto::agents::KeyRole::Sensor).agent_credential(HOST);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = engine.router();
    tokio::spawn(async move { axum::serve(listener, router).await });

    println!(
        "bench ingest: PUT /v1/sensors/update, {SENSORS} readings per request, {requests} \
         requests per run, engine and clients in one release-mode process on loopback"
    );
    // Distinct timestamps, in the past (the engine refuses the future), one second apart.
    let now = jiff::Timestamp::now().as_second();
    let mut first = now - 400 * 86_400;
    for c in concurrency {
        let next = Arc::new(AtomicI64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..c {
            let next = next.clone();
            let api = EngineClient::new(&url, Some(credential.clone()));
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
        println!(
            "  {c:>4} concurrent clients: {:>7.0} readings/s persisted ({:.0} requests/s), \
             p50 {:.2} ms, p99 {:.2} ms   goal >= 100,000/s, p99 <= 10 ms",
            requests as f64 * SENSORS as f64 / elapsed,
            requests as f64 / elapsed,
            pct(0.5).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
        );
        first += requests;
    }
    Ok(())
}
