//! Retention: old raw readings and per-minute rollups deleted in small batches, the hourly
//! rollups kept; and where each sensor's raw rows and minute rollups are complete from, so
//! `series` never serves a range from a source retention has thinned.
//!
//! A batch is at most `batch` rows, keyed on (sensor, ts) (the primary key, so each batch
//! reads an index range, never the table), deleted in one short transaction: on SQLite a write
//! transaction holds the database's one write lock, and ingest waits for it; batches keep that
//! wait to a few milliseconds however much history goes at once (the first pass after an
//! upgrade may delete years of it).

use std::time::Duration;

use super::Store;
use super::db::{WriteTx, on_conn, on_pool};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// The two tables retention thins (the hourly rollup is kept for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// `readings`: a row goes only when its minute and hour rollups exist.
    Raw,
    /// `readings_minute`: a row goes only when its hour rollup exists.
    Minute,
}

impl Table {
    /// The `settings` key of its cutoff (see [`Store::complete_from`]).
    fn setting(self) -> &'static str {
        match self {
            Self::Raw => "retention_raw_before",
            Self::Minute => "retention_minutes_before",
        }
    }
}

/// Rows deleted by one pass, and the transactions that deleted them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pass {
    pub(crate) raw: u64,
    pub(crate) minutes: u64,
    pub(crate) transactions: u64,
}

/// What one pass deletes, and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Raw readings before this instant (ms) go; None keeps them.
    pub(crate) raw_before: Option<i64>,
    /// Minute rollups before this instant go; None keeps them.
    pub(crate) minutes_before: Option<i64>,
    /// Rows per transaction.
    pub(crate) batch: u32,
    /// Between two transactions, so ingest always gets the write lock soon.
    pub(crate) pause: Duration,
}

/// Where the rows are complete from (ms): before `raw_from` raw readings may have been
/// deleted, before `minute_from` minute rollups may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Complete {
    pub(crate) raw_from: i64,
    pub(crate) minute_from: i64,
}

impl Store {
    /// Delete what `policy` says, batch by batch; `on_batch` is told each committed batch
    /// (its table and rows deleted). Stops early, between batches, when `stop` turns true.
    pub(crate) async fn retain(
        &self,
        policy: &Policy,
        stop: &tokio::sync::watch::Receiver<bool>,
        on_batch: &mut (dyn FnMut(Table, u64) + Send),
    ) -> Result<Pass, sqlx::Error> {
        let mut pass = Pass::default();
        for (table, before) in
            [(Table::Raw, policy.raw_before), (Table::Minute, policy.minutes_before)]
        {
            let Some(before) = before else { continue };
            // A raw reading not yet counted in the rollups stays, however old (only an
            // engine that stopped for longer than the retention period has such readings).
            let before = match table {
                Table::Raw => before.min(self.rolled_before().await?),
                Table::Minute => before,
            };
            self.mark(table, before).await?;
            let (deleted, transactions) = self.prune(table, before, policy, stop, on_batch).await?;
            match table {
                Table::Raw => pass.raw += deleted,
                Table::Minute => pass.minutes += deleted,
            }
            pass.transactions += transactions;
        }
        Ok(pass)
    }

    /// One table's pass: (rows deleted, transactions).
    async fn prune(
        &self,
        table: Table,
        before: i64,
        policy: &Policy,
        stop: &tokio::sync::watch::Receiver<bool>,
        on_batch: &mut (dyn FnMut(Table, u64) + Send),
    ) -> Result<(u64, u64), sqlx::Error> {
        // Every reading's sensor has its key in `sensor_keys`; the list is short, where a
        // DISTINCT over the readings would read them all.
        let sensors: Vec<i64> = self.seen(on_pool!(&self.pool(), |p| sqlx::query_scalar(
            "SELECT key FROM sensor_keys ORDER BY key"
        )
        .fetch_all(p)
        .await))?;
        let batch = i64::from(policy.batch.max(1));
        // The key after which the next batch starts: a row kept (its rollups missing) is
        // passed over, not read again by every batch.
        let (mut sensor, mut after) = (0, i64::MIN);
        let (mut deleted, mut transactions) = (0, 0);
        loop {
            if *stop.borrow() {
                break;
            }
            // The next `batch` keys, as ranges of one sensor each, read outside the
            // transaction (a read takes no lock a writer waits for).
            let mut ranges: Vec<(i64, i64, i64)> = Vec::new();
            let mut rows = 0;
            while rows < batch && sensor < sensors.len() {
                let id = sensors[sensor];
                let want = batch - rows;
                let (n, last): (i64, Option<i64>) = self.seen(on_pool!(&self.pool(), |p| {
                    let sql = match table {
                        Table::Raw => {
                            "SELECT COUNT(*), MAX(k) FROM (SELECT ts AS k FROM reading_rows
                             WHERE sensor = $1 AND ts > $2 AND ts < $3
                             ORDER BY ts LIMIT $4) AS b"
                        }
                        Table::Minute => {
                            "SELECT COUNT(*), MAX(k) FROM (SELECT bucket AS k FROM minute_rows
                             WHERE sensor = $1 AND bucket > $2 AND bucket < $3
                             ORDER BY bucket LIMIT $4) AS b"
                        }
                    };
                    sqlx::query_as(sql)
                        .bind(id)
                        .bind(after)
                        .bind(before)
                        .bind(want)
                        .fetch_one(p)
                        .await
                }))?;
                if let Some(last) = last {
                    ranges.push((id, after, last));
                    after = last;
                }
                rows += n;
                if n < want {
                    (sensor, after) = (sensor + 1, i64::MIN);
                }
            }
            if ranges.is_empty() {
                break;
            }
            let n = self.seen(delete_ranges(&self.pool(), table, before, &ranges).await)?;
            deleted += n;
            transactions += 1;
            on_batch(table, n);
            tokio::time::sleep(policy.pause).await;
        }
        Ok((deleted, transactions))
    }

    /// The age reference of retention: the oldest raw reading of any sensor, ms.
    pub(crate) async fn oldest_reading(&self) -> Result<Option<i64>, sqlx::Error> {
        // One index lookup per sensor; MIN(ts) over `readings` would read every row (its
        // key starts with the sensor). `reading_hot`'s key starts with the time.
        let oldest = on_pool!(&self.pool(), |p| {
            sqlx::query_scalar(
                "SELECT MIN(m) FROM (
                     SELECT MIN((SELECT MIN(ts) FROM reading_rows r WHERE r.sensor = k.key)) AS m
                     FROM sensor_keys k
                     UNION ALL SELECT MIN(ts) FROM reading_hot) AS o",
            )
            .fetch_one(p)
            .await
        });
        self.seen(oldest)
    }

    /// Where the raw readings and minute rollups are whole from: the newest cutoff any pass
    /// started with (stored before its first batch, so a chart drawn during a pass already
    /// avoids what it thins). Stored rather than derived from the oldest rows: a reading kept
    /// for want of rollups, or one replayed from an old backlog, would pass for the start of
    /// whole history.
    pub(crate) async fn complete_from(&self) -> Result<Complete, sqlx::Error> {
        let rows: Vec<(String, String)> = self.seen(on_pool!(&self.pool(), |p| sqlx::query_as(
            "SELECT key, value FROM settings WHERE key IN ($1, $2)"
        )
        .bind(Table::Raw.setting())
        .bind(Table::Minute.setting())
        .fetch_all(p)
        .await))?;
        let mut complete = Complete { raw_from: i64::MIN, minute_from: i64::MIN };
        for (key, value) in rows {
            // Unreadable (written by hand): as if everything were thinned, so charts come
            // from the hourly rollups, which are never deleted.
            let at = value.trim().parse().unwrap_or(i64::MAX);
            if key == Table::Raw.setting() {
                complete.raw_from = at;
            } else {
                complete.minute_from = at;
            }
        }
        Ok(complete)
    }

    /// Record that `table` is thinned before `before` (never moving the mark back).
    async fn mark(&self, table: Table, before: i64) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = CASE
               WHEN CAST(settings.value AS BIGINT) < CAST(excluded.value AS BIGINT)
               THEN excluded.value ELSE settings.value END"
        )
        .bind(table.setting())
        .bind(before.to_string())
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done).map(|_| ())
    }
}

/// Delete the rows of `ranges` (sensor, after, last: `(after, last]`) before `before` whose
/// coarser rollups exist, in one transaction. A row ingest added inside a range meanwhile
/// goes too if it is old enough: its rollups were written in its own transaction.
async fn delete_ranges(
    pool: &super::db::Pool,
    table: Table,
    before: i64,
    ranges: &[(i64, i64, i64)],
) -> Result<u64, sqlx::Error> {
    let mut tx = WriteTx::begin(pool).await?;
    let mut deleted = 0;
    for &(sensor, after, last) in ranges {
        deleted += on_conn!(tx.conn()?, |c| {
            let sql = match table {
                Table::Raw => {
                    "DELETE FROM reading_rows
                     WHERE sensor = $1 AND ts > $2 AND ts <= $3 AND ts < $4
                       AND EXISTS (SELECT 1 FROM minute_rows m WHERE m.sensor = $1
                                   AND m.bucket = reading_rows.ts
                                     - ((reading_rows.ts % $5) + $5) % $5)
                       AND EXISTS (SELECT 1 FROM hour_rows h WHERE h.sensor = $1
                                   AND h.bucket = reading_rows.ts
                                     - ((reading_rows.ts % $6) + $6) % $6)"
                }
                Table::Minute => {
                    "DELETE FROM minute_rows
                     WHERE sensor = $1 AND bucket > $2 AND bucket <= $3 AND bucket < $4
                       AND EXISTS (SELECT 1 FROM hour_rows h WHERE h.sensor = $1
                                   AND h.bucket = minute_rows.bucket
                                     - ((minute_rows.bucket % $5) + $5) % $5)"
                }
            };
            let query = sqlx::query(sql).bind(sensor).bind(after).bind(last).bind(before);
            let query = match table {
                Table::Raw => query.bind(MINUTE_MS).bind(HOUR_MS),
                Table::Minute => query.bind(HOUR_MS),
            };
            query.execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use hearth_proto::agents::KeyRole;
    use tokio::sync::watch;

    use super::*;
    use crate::store::{NewReading, NewReport};

    const BASE: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const DAY: i64 = 86_400_000;

    /// Two sensors, a reading a minute for `days` days from `BASE`, every 7th failed.
    fn reports(days: i64) -> Vec<NewReport> {
        let readings: Vec<NewReading> = ["28-a", "28-b"]
            .into_iter()
            .flat_map(|sensor| {
                (0..days * 1440).map(move |i| NewReading {
                    sensor_id: sensor.into(),
                    kind: "DS18B20".into(),
                    alias: None,
                    extra: None,
                    ts: BASE + i * MINUTE_MS,
                    value: (i % 7 != 3).then(|| 18.0 + (i % 97) as f64 / 16.0),
                    latest_at: Some(BASE + i * MINUTE_MS),
                    misdated: false,
                })
            })
            .collect();
        readings
            .chunks(2500)
            .map(|chunk| NewReport {
                host_id: "pi".into(),
                key_role: KeyRole::Sensor,
                // Received as taken (live): the rollups of their minutes are written behind
                // them, and retention deletes only readings counted there.
                received: chunk.iter().map(|r| r.ts).max().unwrap_or(BASE),
                clock_offset_ms: None,
                misdated: 0,
                readings: chunk.to_vec(),
            })
            .collect()
    }

    async fn load(store: &Store, days: i64) -> anyhow::Result<()> {
        for report in reports(days) {
            store.write_reports(std::slice::from_ref(&report)).await?;
        }
        Ok(())
    }

    async fn count(store: &Store, sql: &'static str, before: i64) -> anyhow::Result<i64> {
        Ok(on_pool!(&store.test_pool(), |p| sqlx::query_scalar(sql)
            .bind(before)
            .fetch_one(p)
            .await)?)
    }

    type Rows = Vec<(String, i64, i64, f64, Option<f64>, Option<f64>)>;

    async fn hours(store: &Store) -> anyhow::Result<Rows> {
        Ok(on_pool!(&store.test_pool(), |p| sqlx::query_as(
            "SELECT sensor_id, bucket, n, sum, min, max FROM readings_hour
             ORDER BY sensor_id, bucket"
        )
        .fetch_all(p)
        .await)?)
    }

    fn policy(raw_before: Option<i64>, minutes_before: Option<i64>, batch: u32) -> Policy {
        Policy { raw_before, minutes_before, batch, pause: Duration::ZERO }
    }

    fn running() -> watch::Receiver<bool> {
        watch::channel(false).1
    }

    async fn only_old_rows_go_rollups_stay_and_charts_answer(store: Store) -> anyhow::Result<()> {
        load(&store, 3).await?;
        // A reading stored behind ingest's back, without rollups (as an engine before the
        // rollups existed could leave one): it has nothing to stand in for it, so it stays.
        on_pool!(&store.test_pool(), |p| sqlx::query(
            "INSERT INTO reading_rows (sensor, ts, value)
             SELECT key, $1, 20.0 FROM sensor_keys WHERE sensor_id = '28-a'"
        )
        .bind(BASE - 30 * DAY)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        let (day1, day2) = ((BASE, BASE + DAY), (BASE + DAY, BASE + 2 * DAY));
        // What the charts said before: a day in hours, and an hour of day 2 raw.
        let hourly = store.series("28-a", day1.0, day1.1, 24).await?;
        assert_eq!(hourly.bucket_ms, HOUR_MS);
        let fine = store.series("28-a", day2.0, day2.0 + HOUR_MS, 500).await?;
        assert_eq!((fine.bucket_ms, fine.points.len()), (0, 60));
        let hour_rows = hours(&store).await?;
        let minutes_after = "SELECT COUNT(*) FROM readings_minute WHERE bucket >= $1";
        let kept_minutes = count(&store, minutes_after, day2.0).await?;

        let mut batches = Vec::new();
        let pass = store
            .retain(&policy(Some(day2.1), Some(day2.0), 1000), &running(), &mut |t, n| {
                batches.push((t, n))
            })
            .await?;
        // Two sensors × two days of raw readings, × one day of minutes.
        assert_eq!((pass.raw, pass.minutes), (2 * 2 * 1440, 2 * 1440));
        assert_eq!(pass.transactions, batches.len() as u64);
        let raw_before = "SELECT COUNT(*) FROM readings WHERE ts < $1";
        assert_eq!(count(&store, raw_before, day2.1).await?, 1, "only the one without rollups");
        let raw_after = "SELECT COUNT(*) FROM readings WHERE ts >= $1";
        assert_eq!(count(&store, raw_after, day2.1).await?, 2 * 1440, "the last day is whole");
        let minutes_before = "SELECT COUNT(*) FROM readings_minute WHERE bucket < $1";
        assert_eq!(count(&store, minutes_before, day2.0).await?, 0);
        assert_eq!(count(&store, minutes_after, day2.0).await?, kept_minutes);
        assert_eq!(hours(&store).await?, hour_rows, "the hourly rollups are kept whole");
        assert_eq!(store.oldest_reading().await?, Some(BASE - 30 * DAY));
        let thinned = Complete { raw_from: day2.1, minute_from: day2.0 };
        assert_eq!(store.complete_from().await?, thinned);

        // A 500-point chart of day 1, whose minutes are gone too: hour buckets, the same as
        // before.
        let s = store.series("28-a", day1.0, day1.1, 500).await?;
        assert_eq!((s.bucket_ms, &s.points), (HOUR_MS, &hourly.points));
        // The fine chart of day 2 that read raw readings: minute buckets now, one a reading
        // here (a reading a minute), the same values and failures.
        let s = store.series("28-a", day2.0, day2.0 + HOUR_MS, 500).await?;
        assert_eq!((s.bucket_ms, &s.points), (MINUTE_MS, &fine.points));
        // A range reaching into the kept day still starts from the rollups, without a gap.
        let s = store.series("28-a", day2.1 - HOUR_MS, day2.1 + HOUR_MS, 500).await?;
        assert_eq!((s.bucket_ms, s.points.len()), (MINUTE_MS, 120));
        // The kept day alone is raw, as before.
        let s = store.series("28-a", day2.1, day2.1 + HOUR_MS, 500).await?;
        assert_eq!((s.bucket_ms, s.points.len()), (0, 60));
        // A second pass finds nothing more.
        let again = store
            .retain(&policy(Some(day2.1), Some(day2.0), 1000), &running(), &mut |_, _| {})
            .await?;
        assert_eq!(again.raw + again.minutes, 0);
        // A later pass with older cutoffs (a setting raised) does not move the marks back.
        store.retain(&policy(Some(BASE), Some(BASE), 1000), &running(), &mut |_, _| {}).await?;
        assert_eq!(store.complete_from().await?, thinned);
        Ok(())
    }

    async fn a_batch_of_n_deletes_in_ceil_total_over_n_transactions(
        store: Store,
    ) -> anyhow::Result<()> {
        // Two sensors × two days old: 5760 raw readings, then (once deleted) 5760 minutes.
        let total = 2 * 2 * 1440;
        for batch in [1000, 2880, 5759, 5760, 10_000] {
            load(&store, 3).await?;
            let mut transactions = 0;
            let pass = store
                .retain(&policy(Some(BASE + 2 * DAY), None, batch), &running(), &mut |_, _| {
                    transactions += 1
                })
                .await?;
            assert_eq!(pass.raw, total, "batch {batch}");
            let want = total.div_ceil(u64::from(batch));
            assert_eq!((transactions, pass.transactions), (want, want), "batch {batch}");
        }
        let pass = store
            .retain(&policy(None, Some(BASE + 2 * DAY), 1000), &running(), &mut |_, _| {})
            .await?;
        assert_eq!((pass.minutes, pass.transactions), (total, 6));
        Ok(())
    }

    async fn ingest_is_not_blocked_while_retention_runs(store: Store) -> anyhow::Result<()> {
        load(&store, 3).await?;
        let batches = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop) = watch::channel(false);
        // 58 batches of 100 with a pause between them (~3 s in all): the write lands in the
        // middle. Stopped right after it, so the test does not wait for the rest.
        let policy = Policy {
            raw_before: Some(BASE + 2 * DAY),
            minutes_before: None,
            batch: 100,
            pause: Duration::from_millis(50),
        };
        let pruner = {
            let (store, batches) = (store.clone(), batches.clone());
            tokio::spawn(async move {
                store
                    .retain(&policy, &stop, &mut |_, _| {
                        batches.fetch_add(1, Ordering::Relaxed);
                    })
                    .await
            })
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while batches.load(Ordering::Relaxed) == 0 {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "retention never started");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let mut late = reports(1).remove(0);
        late.readings.truncate(1);
        late.readings[0].ts = BASE + 3 * DAY;
        store.write_reports(&[late]).await?;
        let done = batches.load(Ordering::Relaxed);
        assert!(done < 58, "the write waited for retention to finish ({done} batches)");
        assert!(!pruner.is_finished());
        // Stopping ends the pass between two batches.
        stop_tx.send(true)?;
        let pass = pruner.await??;
        assert!(pass.transactions < 58);
        assert_eq!(store.readings("28-a", BASE + 3 * DAY, BASE + 3 * DAY + 1, 2).await?.len(), 1);
        Ok(())
    }

    crate::store::testing::on_both_backends!(
        only_old_rows_go_rollups_stay_and_charts_answer,
        a_batch_of_n_deletes_in_ceil_total_over_n_transactions,
        ingest_is_not_blocked_while_retention_runs,
    );
}
