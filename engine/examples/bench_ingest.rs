//! The ingest benchmark (`cargo xtask bench ingest` runs it in release mode): the engine's
//! router served on loopback in this process (temporary data dir, no mDNS, no control loop),
//! and concurrent clients sending `PUT /v1/sensors/update` with 10 timestamped readings each
//! over keep-alive HTTP/1.1. Acknowledged means committed. The load generator shares the CPU
//! with the engine, so the figures are a floor. Prints figures; asserts nothing.
//!
//! Each load runs against three engines side by side: SQLite as the engine runs it
//! (`synchronous = FULL`: the WAL is synced at every commit, so an acknowledgement survives a
//! power cut or a storage fault), SQLite committing with `synchronous = NORMAL` (what it did
//! before: the last acknowledged commits could vanish), and PostgreSQL (a server of this
//! process, `hearth_harness::postgres`, with its default durability: fsync on, synchronous
//! commit). The loads vary what costs per write batch: distinct sensors (10, 100, 1,000 on one
//! host) and hosts (10 sensors on each of 50).
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

/// Readings per request.
const PER_REQUEST: usize = 10;
/// The most hosts a load has.
const MAX_HOSTS: usize = 50;

/// One run's figures.
struct Figures {
    readings_per_s: f64,
    p50: Duration,
    p99: Duration,
}

/// An engine on a fresh data dir (and `database_url`, when given), served on loopback: its
/// URL and the agent credential of every host a load may use.
async fn serve(
    durable: bool,
    database_url: Option<&str>,
) -> anyhow::Result<(tempfile::TempDir, String, Vec<(String, String)>)> {
    let dir = tempfile::tempdir()?;
    let data_dir = dir.path().to_string_lossy().to_string();
    let mut args = vec!["hearth-engine", "--data-dir", &data_dir, "--mdns", "false"];
    if let Some(url) = database_url {
        args.extend(["--database-url", url]);
    }
    let config: Config = hearth_common::config::load_from(args)?;
    let engine = if durable {
        Engine::open(&config).await?
    } else {
        hearth_engine::bench::open_engine_not_durable(&config).await?
    };
    let hosts = (0..MAX_HOSTS)
        .map(|h| {
            let host = format!("bench-ingest-{h:02}");
            let key = engine.device_key(&host, hearth_proto::agents::KeyRole::Sensor);
            let credential = key.agent_credential(&host);
            (host, credential)
        })
        .collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let router = engine.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((dir, url, hosts))
}

/// What a load sends: `sensors` distinct sensors on each of `hosts` hosts.
#[derive(Clone, Copy)]
struct Shape {
    sensors: usize,
    hosts: usize,
}

/// `requests` updates from `clients` concurrent clients, timestamped from `first` (seconds):
/// request i names a block of 10 sensors of one host at one second, so that every (sensor,
/// time) is sent once.
async fn load(
    url: &str,
    hosts: &[(String, String)],
    shape: Shape,
    clients: usize,
    requests: i64,
    first: i64,
) -> anyhow::Result<Figures> {
    let next = Arc::new(AtomicI64::new(0));
    let blocks = (shape.sensors / PER_REQUEST).max(1) as i64;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        let apis: Vec<(String, EngineClient)> = hosts[..shape.hosts]
            .iter()
            .map(|(host, key)| (host.clone(), EngineClient::new(url, Some(key.clone()))))
            .collect();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let block = i % blocks;
                let host = ((i / blocks) % shape.hosts as i64) as usize;
                let second = i / (blocks * shape.hosts as i64);
                let at = jiff::Timestamp::from_second(first + second)?;
                let (host_id, api) = &apis[host];
                let sensors: BTreeMap<String, SensorReport> = (0..PER_REQUEST)
                    .map(|k| {
                        let report = SensorReport {
                            kind: "DS18B20".into(),
                            value: Some(20.0 + (i % 64) as f64 / 16.0),
                            alias: None,
                            extra: None,
                            timestamp: Some(at),
                        };
                        let sensor = block as usize * PER_REQUEST + k;
                        (format!("28-{host:02}{sensor:010}"), report)
                    })
                    .collect();
                let update = SensorUpdate { host_id: host_id.clone(), sensors, agent_time: None };
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
        readings_per_s: requests as f64 * PER_REQUEST as f64 / elapsed,
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
    let (mut requests, mut concurrency) = (20_000_i64, 64_usize);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--requests" => requests = value.parse()?,
            "--concurrency" => concurrency = value.parse()?,
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    let mut pg = hearth_harness::postgres::Postgres::start()?;
    let pg_url = pg.create_database("bench_ingest")?;
    let (_durable_dir, durable_url, durable_keys) = serve(true, None).await?;
    let (_normal_dir, normal_url, normal_keys) = serve(false, None).await?;
    let (_pg_dir, pg_engine_url, pg_keys) = serve(true, Some(&pg_url)).await?;
    println!(
        "bench ingest: PUT /v1/sensors/update, {PER_REQUEST} readings per request, {requests} \
         requests per run from {concurrency} clients, engine and clients in one release-mode \
         process on loopback; readings persisted per second (goal >= 100,000/s, p99 <= 10 ms \
         for 1,000 sensors across 50 hosts)"
    );
    println!(
        "  {:<22}  {:<38}  {:<38}  {:<38}",
        "load",
        "SQLite FULL (engine: durable ack)",
        "SQLite NORMAL (before)",
        "PostgreSQL (durable ack)"
    );
    let shapes = [
        ("10 sensors, 1 host", Shape { sensors: 10, hosts: 1 }),
        ("100 sensors, 1 host", Shape { sensors: 100, hosts: 1 }),
        ("1,000 sensors, 1 host", Shape { sensors: 1000, hosts: 1 }),
        ("10 sensors x 50 hosts", Shape { sensors: 10, hosts: 50 }),
    ];
    // Distinct timestamps, in the past (the engine refuses the future); each load starts
    // after the seconds the previous one used.
    let now = jiff::Timestamp::now().as_second();
    let mut first = now - 400 * 86_400;
    for (i, (name, shape)) in shapes.into_iter().enumerate() {
        // Rotate which runs first, so no backend always meets a warmer machine.
        let order = [0, 1, 2].map(|k| (k + i) % 3);
        let mut figures: [Option<Figures>; 3] = [None, None, None];
        for k in order {
            let (url, keys) = match k {
                0 => (&durable_url, &durable_keys),
                1 => (&normal_url, &normal_keys),
                _ => (&pg_engine_url, &pg_keys),
            };
            figures[k] = Some(load(url, keys, shape, concurrency, requests, first).await?);
        }
        let cells: Vec<String> = figures.iter().flatten().map(cell).collect();
        println!("  {name:<22}  {:<38}  {:<38}  {:<38}", cells[0], cells[1], cells[2]);
        first += requests;
    }
    pg.stop()?;
    Ok(())
}
