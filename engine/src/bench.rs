//! Hooks for the benchmarks (`cargo xtask bench history`, through the `bench_history`
//! example) and for tests that need rows no route writes (runs). Not an API: hidden from the
//! docs, may change at any time.

use std::sync::Arc;

use hearth_proto::Timestamp;
use hearth_proto::control::System;
use tokio::sync::Notify;

use crate::store::{NewReading, NewReport};

/// The engine's store, opened on a database URL (migrations run).
#[derive(Debug, Clone)]
pub struct Store(crate::store::Store);

/// One instant of readings: `(ts ms, [(sensor, value)])`.
pub type Instant = (i64, Vec<(String, Option<f64>)>);

/// The engine's ingest path (group commit) over a [`Store`].
#[derive(Debug, Clone)]
pub struct Ingest(crate::ingest::Ingest);

impl Store {
    /// Open (creating) the database at `url`, e.g. `sqlite:///tmp/x/hearth.db`.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        Ok(Self(crate::store::Store::open(url).await?))
    }

    /// Start the group-commit writer task on this store, as the engine does.
    pub fn ingest(&self) -> Ingest {
        Ingest(crate::ingest::Ingest::spawn(
            self.0.clone(),
            Arc::new(Notify::new()),
            Arc::default(),
        ))
    }

    /// `(bucket_ms, points)` of the series the readings route would serve.
    pub async fn series(
        &self,
        sensor_id: &str,
        from_ms: i64,
        to_ms: i64,
        max_points: u32,
    ) -> anyhow::Result<(i64, usize)> {
        let s = self.0.series(sensor_id, from_ms, to_ms, max_points).await?;
        Ok((s.bucket_ms, s.points.len()))
    }

    /// Points of the plain GROUP BY over the raw rows (the comparison).
    pub async fn series_from_raw(
        &self,
        sensor_id: &str,
        from_ms: i64,
        to_ms: i64,
        buckets: u32,
    ) -> anyhow::Result<usize> {
        Ok(self.0.series_from_raw(sensor_id, from_ms, to_ms, buckets).await?)
    }

    /// See the control loop's `Store::start_run`.
    pub async fn start_run(
        &self,
        system: System,
        at: Timestamp,
        temp: Option<f64>,
    ) -> anyhow::Result<()> {
        Ok(self.0.start_run(system, at, temp).await?)
    }

    /// See the control loop's `Store::end_run`.
    pub async fn end_run(
        &self,
        system: System,
        at: Timestamp,
        temp: Option<f64>,
    ) -> anyhow::Result<()> {
        Ok(self.0.end_run(system, at, temp).await?)
    }

    /// Store one report of `host` per instant, all in one transaction, as the group commit
    /// would (rollups kept with them).
    pub async fn write_reports(&self, host: &str, instants: &[Instant]) -> anyhow::Result<()> {
        let reports: Vec<NewReport> = instants
            .iter()
            .map(|(ts, values)| {
                let readings: Vec<_> = values.iter().map(|(s, v)| (s.clone(), *ts, *v)).collect();
                report(host, &readings)
            })
            .collect();
        Ok(self.0.write_reports(&reports).await?)
    }

    /// Close the pool (checkpoints the WAL).
    pub async fn close(&self) {
        self.0.close().await;
    }
}

/// `hearth-engine migrate-store` from `from` to `to` with its progress lines on stderr: the
/// verification table, with the rows copied and how fast. An error when counts differ.
pub async fn migrate_store(from: &str, to: &str) -> anyhow::Result<String> {
    let verification = crate::store::copy::migrate(from, to, &Default::default()).await?;
    anyhow::ensure!(verification.all_equal(), "the row counts differ:\n{verification}");
    Ok(verification.to_string())
}

/// The report of `host`'s readings `(sensor, ts ms, value)`, received at the newest of them.
fn report(host: &str, readings: &[(String, i64, Option<f64>)]) -> NewReport {
    NewReport {
        host_id: host.to_owned(),
        key_role: hearth_proto::agents::KeyRole::Sensor,
        received: readings.iter().map(|r| r.1).max().unwrap_or(0),
        clock_offset_ms: None,
        misdated: 0,
        readings: readings
            .iter()
            .map(|(sensor_id, ts, value)| NewReading {
                sensor_id: sensor_id.clone(),
                kind: "DS18B20".into(),
                alias: None,
                extra: None,
                ts: *ts,
                value: *value,
                latest_at: Some(*ts),
                misdated: false,
            })
            .collect(),
    }
}

impl Ingest {
    /// Submit one report of `host`'s readings `(sensor, ts ms, value)` and wait for its commit.
    pub async fn submit(
        &self,
        host: &str,
        readings: &[(String, i64, Option<f64>)],
    ) -> anyhow::Result<()> {
        let report = report(host, readings);
        self.0.submit(report).await.map_err(|e| anyhow::anyhow!("ingest: {e}"))
    }
}
