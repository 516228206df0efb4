//! The history benchmark (`cargo xtask bench history` runs it in release mode): loads a
//! temporary SQLite database with a year of 1-minute readings of 10 sensors (5.26 M readings)
//! through the engine's ingest path (group commit, rollups kept in the same transactions), then
//! times the chart queries. Prints figures; asserts nothing.
//!
//! `cargo run --release -p hearth-engine --example bench_history -- [--sensors N] [--days N]
//! [--step-s N] [--concurrency N]`

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use hearth_engine::bench::Store;

struct Args {
    sensors: usize,
    days: i64,
    step_s: i64,
    concurrency: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args { sensors: 10, days: 365, step_s: 60, concurrency: 512 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sensors" => a.sensors = value.parse()?,
            "--days" => a.days = value.parse()?,
            "--step-s" => a.step_s = value.parse()?,
            "--concurrency" => a.concurrency = value.parse()?,
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    anyhow::ensure!(a.sensors > 0 && a.days > 0 && a.step_s > 0 && a.concurrency > 0);
    Ok(a)
}

/// A room-like value in DS18B20 steps (1/16 °C): a daily swing, a slow drift, some noise;
/// one reading in a thousand failed.
fn value(sensor: usize, i: i64) -> Option<f64> {
    if (i * 7 + sensor as i64) % 1000 == 0 {
        return None;
    }
    let t = i as f64;
    let v = 20.0
        + 2.0 * (t / 1440.0 * std::f64::consts::TAU).sin()
        + (t / 525_600.0 * std::f64::consts::TAU).cos()
        + ((i * 31 + sensor as i64 * 17) % 11) as f64 / 16.0
        + sensor as f64 * 0.25;
    Some((v * 16.0).round() / 16.0)
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

async fn time<F, Fut>(runs: usize, mut f: F) -> anyhow::Result<(Duration, Duration, String)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<String>>,
{
    let what = f().await?; // warm-up
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await?;
        times.push(started.elapsed());
    }
    let min = times.iter().copied().min().unwrap_or_default();
    Ok((median(times), min, what))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("hearth.db");
    let store = Store::open(&format!("sqlite://{}", path.display())).await?;
    let ingest = store.ingest();
    let step = a.step_s * 1000;
    let instants = a.days * 86_400 / a.step_s;
    // A whole number of days ending at the last midnight (UTC) before now.
    let now = jiff::Timestamp::now().as_millisecond();
    let end = now - now.rem_euclid(86_400_000);
    let start = end - instants * step;
    let sensors: Arc<Vec<String>> =
        Arc::new((0..a.sensors).map(|s| format!("28-bench{s:07}")).collect());
    let total = instants * a.sensors as i64;
    println!(
        "bench history: {} sensors × {} days at {} s = {total} readings, {} per request, \
         {} concurrent requests (engine ingest path, group commit + rollups, release build)",
        a.sensors, a.days, a.step_s, a.sensors, a.concurrency
    );

    let next = Arc::new(AtomicI64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.concurrency {
        let (next, ingest, sensors) = (next.clone(), ingest.clone(), sensors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= instants {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let ts = start + i * step;
                let readings: Vec<(String, i64, Option<f64>)> = sensors
                    .iter()
                    .enumerate()
                    .map(|(s, id)| (id.clone(), ts, value(s, i)))
                    .collect();
                let sent = Instant::now();
                ingest.submit("bench", &readings).await?;
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let load = started.elapsed();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize];
    let db_bytes: u64 = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "  load: {total} readings in {:.1} s = {:.0} readings/s persisted ({:.0} requests/s); \
         per request p50 {:.1} ms, p99 {:.1} ms (with {} in flight); database {:.0} MiB",
        load.as_secs_f64(),
        total as f64 / load.as_secs_f64(),
        instants as f64 / load.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        a.concurrency,
        db_bytes as f64 / (1024.0 * 1024.0)
    );

    const RUNS: usize = 20;
    let sensor = sensors[0].clone();
    let day = 86_400_000;
    println!("  queries on one sensor, 500 points, median (min) of {RUNS} warm runs:");
    for (label, from) in
        [("year", start.max(end - 365 * day)), ("week", end - 7 * day), ("day", end - day)]
    {
        let (median, min, what) = time(RUNS, || async {
            let (bucket_ms, points) = store.series(&sensor, from, end, 500).await?;
            Ok(format!("{points} points of {} s", bucket_ms / 1000))
        })
        .await?;
        println!(
            "    series, {label:<4}: {:>7.2} ms ({:.2} ms)   {what}{}",
            median.as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            if label == "year" { "   goal <= 50 ms" } else { "" }
        );
    }
    let from = start.max(end - 365 * day);
    let (median, min, what) = time(RUNS, || async {
        let points = store.series_from_raw(&sensor, from, end, 500).await?;
        Ok(format!("{points} points"))
    })
    .await?;
    println!(
        "    plain GROUP BY over the raw rows, year: {:.2} ms ({:.2} ms)   {what}",
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3
    );
    drop(ingest);
    store.close().await;
    Ok(())
}
