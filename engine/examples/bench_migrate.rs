//! The store migration benchmark (`cargo xtask bench migrate` runs it in release mode): a
//! temporary SQLite database with a year of 1-minute readings of 10 sensors (5.26 M readings,
//! with their rollups), copied by `hearth-engine migrate-store`'s code to a database of a
//! PostgreSQL server of the benchmark's own (`hearth_harness::postgres`), then back to a new
//! SQLite file. Prints how long each copy takes; asserts nothing but equal row counts.
//!
//! `cargo run --release -p hearth-engine --example bench_migrate -- [--sensors N] [--days N]`

use std::time::Instant;

use hearth_engine::bench::{Store, migrate_store};

/// One day of instants per transaction while loading.
const DAY_MIN: i64 = 1440;

fn args() -> anyhow::Result<(usize, i64)> {
    let (mut sensors, mut days) = (10, 365);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow::anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sensors" => sensors = value.parse()?,
            "--days" => days = value.parse()?,
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    anyhow::ensure!(sensors > 0 && days > 0);
    Ok((sensors, days))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let (sensors, days) = args()?;
    let dir = tempfile::tempdir()?;
    let source = format!("sqlite://{}", dir.path().join("source.db").display());
    let back = format!("sqlite://{}", dir.path().join("back.db").display());
    let mut server = hearth_harness::postgres::Postgres::start()?;
    let target = server.create_database("migrate")?;

    let ids: Vec<String> = (0..sensors).map(|s| format!("28-bench{s:07}")).collect();
    let start = 1_767_225_600_000_i64; // 2026-01-01 UTC
    let total = days * DAY_MIN * sensors as i64;
    println!(
        "bench migrate: {sensors} sensors × {days} days at 60 s = {total} readings \
         (release build)"
    );
    let store = Store::open(&source).await?;
    let loading = Instant::now();
    for day in 0..days {
        let instants: Vec<hearth_engine::bench::Instant> = (0..DAY_MIN)
            .map(|m| {
                let i = day * DAY_MIN + m;
                let values = ids
                    .iter()
                    .enumerate()
                    .map(|(s, id)| {
                        let v = 19.0 + ((i * 31 + s as i64 * 17) % 97) as f64 / 16.0;
                        (id.clone(), (i % 1000 != s as i64).then_some(v))
                    })
                    .collect();
                (start + i * 60_000, values)
            })
            .collect();
        store.write_reports("bench", &instants).await?;
    }
    store.close().await;
    println!("loaded the SQLite source in {:.1} s", loading.elapsed().as_secs_f64());

    for (what, from, to) in
        [("SQLite -> PostgreSQL", &source, &target), ("PostgreSQL -> SQLite", &target, &back)]
    {
        let started = Instant::now();
        let table = migrate_store(from, to).await?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "\n{what}: {total} readings with their rollups in {secs:.1} s ({:.0} readings/s)\n{table}",
            total as f64 / secs
        );
    }
    server.stop()?;
    Ok(())
}
