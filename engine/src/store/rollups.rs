//! The rollups (per-minute and per-hour aggregates of the readings), written behind.
//!
//! Adding every write batch's readings to both rollup tables upserts two rows per distinct
//! sensor per batch, so a batch's cost grew with the number of sensors in it rather than with
//! its readings (the ingest benchmark). Live readings are instead counted in memory per
//! (sensor, minute), and those counts are written once their minute is a minute behind the
//! newest receipt: one row per sensor and minute, whatever the rate.
//!
//! The invariant, on disk after every commit: the raw readings taken before `rolled_before`
//! (the [`SETTING`] in `settings`) are counted in both rollup tables, and those taken at or
//! after it are in neither; the former are in `reading_rows`, the latter in `reading_hot`
//! (migration 0019: the flush moves them, in the transaction that moves the mark). So a chart is exact at every moment without the memory: it takes
//! the rollups before that instant and aggregates the few raw rows after it
//! (`Store::series`). A crash loses only the counts in memory; the next write counts those
//! raw rows again from the table ([`resume`]), and a failed write does the same (its commit
//! may have happened: the table is the truth, never the memory).
//!
//! A reading taken before `rolled_before` (a backlog an agent replays late) is added to the
//! rollups in its own transaction, as every reading was before (`history::insert_readings`).

use std::collections::HashMap;
use std::sync::Mutex;

use hearth_proto::sensors::{MAX_READING_C, MIN_READING_C};
use sqlx::QueryBuilder;

use super::db::{WriteTx, on_conn};
use super::history::{self, Agg, HOUR_MS, MINUTE_MS, Row, floor_to};

/// `encoding::ROLLUP_SCALE` in SQL.
const SCALE: &str = "10000.0";

/// The `settings` key of the instant from which raw readings are not counted in the rollups.
pub(super) const SETTING: &str = "rollups_before";

/// The readings counted in memory and not yet in the rollup tables.
#[derive(Debug, Default)]
pub(super) struct Behind {
    /// None until the first write of this process, and after a failed one: the table is read
    /// again before anything is counted.
    state: Mutex<Option<Live>>,
}

#[derive(Debug)]
struct Live {
    /// The stored `rolled_before`.
    before: i64,
    /// Every raw reading taken at or after `before`, by (sensor, minute).
    minutes: HashMap<(i64, i64), Agg>,
}

impl Behind {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Live>> {
        // Counts half-added by a panic would be wrong: start again from the table.
        self.state.lock().unwrap_or_else(|e| {
            let mut state = e.into_inner();
            *state = None;
            state
        })
    }

    /// The stored `rolled_before`, when this process knows it.
    pub(super) fn before(&self) -> Option<i64> {
        self.lock().as_ref().map(|l| l.before)
    }

    /// After [`resume`]: nothing at or after `before` is counted anywhere yet.
    pub(super) fn start(&self, before: i64) {
        *self.lock() = Some(Live { before, minutes: HashMap::new() });
    }

    /// A write failed: what is in memory may not match the table any more.
    pub(super) fn forget(&self) {
        *self.lock() = None;
    }

    /// Count readings just committed (all taken at or after `before`).
    pub(super) fn count(&self, rows: &[Row]) {
        let mut state = self.lock();
        let Some(live) = state.as_mut() else { return };
        for &(sensor, ts, value) in rows {
            live.minutes.entry((sensor, floor_to(ts, MINUTE_MS))).or_default().add(value);
        }
    }

    /// Where a flush after a write received at `received` (ms) moves `rolled_before`: to the
    /// minute a minute before, when that is ahead. A reading is counted in memory for one to
    /// two minutes after it is taken, so the few that arrive late (an agent's retry) still
    /// join their minute in memory rather than going the slow way.
    pub(super) fn due(&self, received: i64) -> Option<i64> {
        let to = floor_to(received, MINUTE_MS).saturating_sub(MINUTE_MS);
        self.before().filter(|&before| to > before).map(|_| to)
    }

    /// The counts a flush to `to` writes (copied: the memory changes only after the commit).
    pub(super) fn taken_before(&self, to: i64) -> HashMap<(i64, i64), Agg> {
        let state = self.lock();
        let Some(live) = state.as_ref() else { return HashMap::new() };
        live.minutes.iter().filter(|((_, minute), _)| *minute < to).map(|(k, a)| (*k, *a)).collect()
    }

    /// A flush to `to` committed.
    pub(super) fn flushed(&self, to: i64) {
        if let Some(live) = self.lock().as_mut() {
            live.minutes.retain(|(_, minute), _| *minute >= to);
            live.before = to;
        }
    }
}

/// Write the counts of every minute before `to` (`minutes`, from [`Behind::taken_before`]),
/// move the raw readings they count from `reading_hot` to `reading_rows`, and move
/// `rolled_before` to `to`, in the caller's transaction.
pub(super) async fn flush(
    tx: &mut WriteTx,
    minutes: &HashMap<(i64, i64), Agg>,
    to: i64,
) -> Result<(), sqlx::Error> {
    history::add_minutes_to_rollups(tx, minutes).await?;
    history::settle(tx, to).await?;
    store_before(tx, to).await
}

/// Where the rollups stop on disk, after counting the raw readings a previous process left
/// uncounted (it stopped, or a write failed, with counts in memory): `rolled_before` becomes
/// the instant after the newest reading, so nothing is left to count in memory, and every raw
/// reading is moved to `reading_rows` (the invariant of `history::Raw`).
///
/// Without the setting (a database from before the rollups were written behind, or a new
/// one) every stored reading is counted already: the rollups were kept in the transaction of
/// each write. A value nobody could have written is read the same way (counting the whole
/// table again would double every figure).
pub(super) async fn resume(tx: &mut WriteTx) -> Result<i64, sqlx::Error> {
    let stored: Option<String> =
        on_conn!(tx.conn()?, |c| sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
            .bind(SETTING)
            .fetch_optional(c)
            .await)?;
    let stored = stored.and_then(|v| v.trim().parse::<i64>().ok());
    // Sensor by sensor: the (sensor, ts) key finds each newest reading without a scan; the
    // newest of `reading_hot` is the last of its key.
    let newest: Option<i64> = on_conn!(tx.conn()?, |c| sqlx::query_scalar(
        "SELECT MAX(m) FROM (
             SELECT MAX((SELECT MAX(ts) FROM reading_rows r WHERE r.sensor = k.key)) AS m
             FROM sensor_keys k
             UNION ALL SELECT MAX(ts) FROM reading_hot) AS n"
    )
    .fetch_one(c)
    .await)?;
    let before = match (stored, newest) {
        (Some(before), Some(newest)) if newest >= before => {
            for (table, unit) in [("minute_rows", MINUTE_MS), ("hour_rows", HOUR_MS)] {
                count_raw_from(tx, table, unit, before).await?;
            }
            newest + 1
        }
        (Some(before), _) => before,
        (None, newest) => newest.map_or(i64::MIN, |n| n + 1),
    };
    history::settle(tx, before).await?;
    store_before(tx, before).await?;
    Ok(before)
}

/// Add the raw readings taken at or after `from` to `table`, in buckets of `unit` ms.
async fn count_raw_from(
    tx: &mut WriteTx,
    table: &'static str,
    unit: i64,
    from: i64,
) -> Result<(), sqlx::Error> {
    on_conn!(tx.conn()?, |c| {
        // Floor division (a reading before 1970 rounds down too), as `floor_to`; a value
        // outside the accepted range counts as failed, and the others are scaled, as in
        // `Agg::add` (`encoding::scaled`).
        let mut q = QueryBuilder::new(format!(
            "INSERT INTO {table} (sensor, bucket, n, sum, min, max)
             SELECT sensor, b, COUNT(v), COALESCE(SUM(v), 0.0), MIN(v), MAX(v)
             FROM (SELECT sensor, b,
                          CASE WHEN round(c * {SCALE}) / {SCALE} = c THEN round(c * {SCALE})
                               ELSE c * {SCALE} END AS v
                   FROM (SELECT k.key AS sensor,
                                r.ts - (((r.ts % {unit}) + {unit}) % {unit}) AS b,
                                CASE WHEN r.value BETWEEN "
        ));
        q.push_bind(MIN_READING_C).push(" AND ").push_bind(MAX_READING_C);
        q.push(
            " THEN r.value END AS c
                         FROM sensor_keys k JOIN readings r ON r.sensor_id = k.sensor_id
                              AND r.ts >= ",
        );
        q.push_bind(from);
        q.push(") AS u) AS w GROUP BY sensor, b ");
        q.push(history::add_on_conflict(table));
        q.build().execute(c).await.map(|r| r.rows_affected())
    })?;
    Ok(())
}

async fn store_before(tx: &mut WriteTx, before: i64) -> Result<(), sqlx::Error> {
    on_conn!(tx.conn()?, |c| sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    .bind(SETTING)
    .bind(before.to_string())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

impl super::Store {
    /// The stored `rolled_before`: the rollups hold the readings taken before it, the raw
    /// table alone those after. Without one, every reading is in the rollups (see [`resume`]).
    pub(crate) async fn rolled_before(&self) -> Result<i64, sqlx::Error> {
        let stored = self.setting(SETTING).await?;
        Ok(stored.and_then(|v| v.trim().parse().ok()).unwrap_or(i64::MAX))
    }

    /// Count in the rollup tables every raw reading not yet there (the counts in memory are
    /// dropped, and read again from the table): what a restart does. For the tests, which
    /// compare the tables with a GROUP BY over the raw rows.
    #[cfg(test)]
    pub(crate) async fn count_all_in_rollups(&self) -> Result<(), sqlx::Error> {
        let _writing = self.inner.writes.lock().await;
        self.resume_rollups().await.map(|_| ())
    }

    /// [`resume`] in a transaction of its own, and start counting from where it leaves the
    /// mark; the caller holds the write lock.
    pub(super) async fn resume_rollups(&self) -> Result<i64, sqlx::Error> {
        let mut tx = WriteTx::begin(&self.pool()).await?;
        let before = resume(&mut tx).await?;
        tx.commit().await?;
        self.inner.rollups.start(before);
        Ok(before)
    }
}
