//! History: the raw readings inserted on ingest (their rollups: `rollups.rs`), downsampled series
//! read from the coarsest source that is fine enough, and the heating/cooling runs.
//!
//! A year of 1-minute readings is 525,600 rows per sensor; a plain GROUP BY over them takes
//! ~300 ms even with the (sensor_id, ts) index (measured, warm). The same chart from
//! `readings_hour` reads 8,760 rows.

use std::collections::{HashMap, HashSet};

use hearth_proto::Timestamp;
use hearth_proto::control::System;
use hearth_proto::history::Run;
use hearth_proto::sensors::{MAX_READING_C, MIN_READING_C, Point};
use sqlx::QueryBuilder;

use super::db::{Conn, WriteTx, on_conn, on_pool};
use super::encoding::{RawValue, scaled};
use super::{INSERT_CHUNK, NewReading, Store, enum_str, from_millis, millis, str_enum};

/// The rollup tables.
#[derive(Debug, Clone, Copy)]
enum Rollup {
    Minute,
    Hour,
}

const SECOND_MS: i64 = 1_000;
pub(super) const MINUTE_MS: i64 = 60_000;
pub(super) const HOUR_MS: i64 = 3_600_000;

/// A downsampled (or raw) readings series, as served.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    /// The range the points cover, `[from_ms, to_ms)`: the requested one, widened to whole
    /// seconds, minutes or hours when the points are buckets (to whole minutes or hours when
    /// they come from a rollup, so that every point aggregates exactly the readings of its
    /// interval).
    pub(crate) from_ms: i64,
    pub(crate) to_ms: i64,
    /// Width of each bucket, ms; 0 for raw readings.
    pub(crate) bucket_ms: i64,
    /// Oldest first, empty buckets left out.
    pub(crate) points: Vec<Point>,
}

/// Running aggregate of readings, in the rollup tables' units (`encoding::scaled`: whole
/// numbers for values of at most four decimals, so sums stay exact); failed readings (`None`)
/// add nothing but still make the bucket exist (a point with count 0 shows the sensor
/// reported and failed).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Agg {
    n: i64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

/// Whether a stored value can count in an aggregate: within the range the API accepts. The API
/// refuses anything else and migration 0007 cleared what was stored before it did, so this
/// only guards the sums: with every term within ±125 °C and at most one reading per
/// millisecond, an hour's sum stays below 5e8 and cannot overflow (±1e308 readings summed to
/// infinity, served as a null mean, "every reading failed").
fn countable(v: f64) -> bool {
    (MIN_READING_C..=MAX_READING_C).contains(&v)
}

impl Agg {
    /// Add one reading; a value that cannot be a reading counts as a failed one.
    pub(super) fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| countable(*v)).map(scaled) {
            self.merge(&Agg { n: 1, sum: v, min: Some(v), max: Some(v) });
        }
    }

    pub(super) fn merge(&mut self, o: &Agg) {
        self.n += o.n;
        self.sum += o.sum;
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.max = match (self.max, o.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

pub(super) fn floor_to(t: i64, unit: i64) -> i64 {
    t - t.rem_euclid(unit)
}

/// `a / b` rounded up, for `a ≥ 0`, `b > 0`.
fn ceil_div(a: i64, b: i64) -> i64 {
    a / b + i64::from(a % b != 0)
}

fn ceil_to(t: i64, unit: i64) -> i64 {
    let r = t.rem_euclid(unit);
    if r == 0 { t } else { t - r + unit }
}

/// SQLite: the multi-row INSERT of a chunk of readings. It is run unprepared-for-keeps
/// (`persistent(false)`): there is one text per row count, and cached they filled each
/// connection's statement cache with large compiled programs after a burst (see
/// `db::STATEMENT_CACHE`).
fn sqlite_insert(raw: Raw, chunk: &[Row], returning: &str) -> QueryBuilder<sqlx::Sqlite> {
    let mut q = QueryBuilder::new(format!("INSERT INTO {} (sensor, ts, value) ", raw.table()));
    q.push_values(chunk, |mut b, r: &Row| {
        b.push_bind(r.0).push_bind(r.1).push_bind(RawValue(r.2));
    });
    q.push(" ON CONFLICT (sensor, ts) DO NOTHING");
    q.push(returning);
    q
}

/// PostgreSQL: the insert of readings given as three arrays (`$1` sensors, `$2` times, `$3`
/// values) into `$table`, after the data-modifying CTEs `$with` (each ending in a comma; ""
/// for none), which the same statement runs. It answers one row: how many readings were new
/// and, only when some were not (a replay), the keys of those that were, as arrays. So it
/// needs neither a savepoint nor a second insert (see [`insert_new`]), and no row streamed
/// back per reading.
macro_rules! pg_insert_readings {
    ($table:literal, $with:expr) => {
        concat!(
            "WITH ",
            $with,
            " new AS (
                 INSERT INTO ",
            $table,
            " (sensor, ts, value)
                 SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::DOUBLE PRECISION[])
                 ON CONFLICT (sensor, ts) DO NOTHING
                 RETURNING sensor, ts)
             SELECT count(*),
                    CASE WHEN count(*) < cardinality($1) THEN array_agg(sensor) END,
                    CASE WHEN count(*) < cardinality($1) THEN array_agg(ts) END
             FROM new"
        )
    };
}
pub(super) use pg_insert_readings;

/// PostgreSQL: [`pg_insert_readings`] alone, in one text per table that each connection
/// prepares once (a multi-row VALUES of 3,000 parameters was parsed and planned again for
/// every write: the ingest benchmark), with no limit on the number of readings.
fn postgres_insert(raw: Raw) -> &'static str {
    match raw {
        Raw::Rows => pg_insert_readings!("reading_rows", ""),
        Raw::Hot => pg_insert_readings!("reading_hot", ""),
    }
}

/// The answer of a [`pg_insert_readings`] statement: how many of `unique` were stored, and
/// when not all, the (sensor, ts) of those that were.
pub(super) type PgInserted = (i64, Option<Vec<i64>>, Option<Vec<i64>>);

/// The rows of `unique` that a [`pg_insert_readings`] statement stored.
pub(super) fn pg_new_rows(unique: Vec<Row>, inserted: PgInserted) -> Vec<Row> {
    let (stored, new_sensors, new_times) = inserted;
    if stored == unique.len() as i64 {
        return unique;
    }
    let new: HashSet<(i64, i64)> =
        new_sensors.unwrap_or_default().into_iter().zip(new_times.unwrap_or_default()).collect();
    unique.into_iter().filter(|&(s, ts, _)| new.contains(&(s, ts))).collect()
}

/// `rows`' columns, for [`pg_insert_readings`].
pub(super) fn columns(rows: &[Row]) -> (Vec<i64>, Vec<i64>, Vec<Option<f64>>) {
    let mut columns = (
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
        Vec::with_capacity(rows.len()),
    );
    for &(sensor, ts, value) in rows {
        columns.0.push(sensor);
        columns.1.push(ts);
        columns.2.push(value);
    }
    columns
}

/// A reading as inserted: `(sensor key, ts ms, value)` (keys: `keys.rs`).
pub(super) type Row = (i64, i64, Option<f64>);

/// Where a raw reading is stored (migration 0019): one taken before `rolled_before` in
/// `reading_rows`, by sensor, one taken at or after it in `reading_hot`, in time order, until
/// the rollups' flush counts it and moves it ([`settle`]). So a reading is in one table only,
/// and the one its time names.
#[derive(Debug, Clone, Copy)]
enum Raw {
    Rows,
    Hot,
}

impl Raw {
    fn table(self) -> &'static str {
        match self {
            Raw::Rows => "reading_rows",
            Raw::Hot => "reading_hot",
        }
    }
}

/// Insert readings (a replayed one is a no-op; `rows` from [`unique_rows`]) inside the
/// caller's transaction, and return exactly the new ones. Those taken before
/// `rolled_before` (a backlog replayed late) go to `reading_rows` and are added to the rollups
/// here; the others go to `reading_hot` and are what the caller's rollups have not counted yet
/// (see `rollups.rs`).
pub(super) async fn insert_readings(
    tx: &mut WriteTx,
    rows: Vec<Row>,
    rolled_before: i64,
) -> Result<Vec<Row>, sqlx::Error> {
    let (late, live): (Vec<Row>, Vec<Row>) =
        rows.into_iter().partition(|&(_, ts, _)| ts < rolled_before);
    let late = insert_new(tx, Raw::Rows, late).await?;
    add_to_rollups(tx, &late).await?;
    insert_new(tx, Raw::Hot, live).await
}

/// A batch's readings as rows to insert: each with its sensor's key (`keys` holds every
/// sensor's), a reading named twice once (the first wins, as ON CONFLICT DO NOTHING would
/// have it). A sensor without a key cannot happen (the caller resolved them all): its reading
/// would be lost, so that is an error rather than a skip.
pub(super) fn unique_rows(
    readings: &[&NewReading],
    keys: &HashMap<&str, i64>,
) -> Result<Vec<Row>, sqlx::Error> {
    let mut seen = HashSet::with_capacity(readings.len());
    let mut unique: Vec<Row> = Vec::with_capacity(readings.len());
    for r in readings {
        let Some(&key) = keys.get(r.sensor_id.as_str()) else {
            return Err(sqlx::Error::Protocol(format!(
                "no key for sensor {:?}",
                r.sensor_id.escape_debug().to_string()
            )));
        };
        if seen.insert((key, r.ts)) {
            unique.push((key, r.ts, r.value));
        }
    }
    Ok(unique)
}

/// PostgreSQL: the time of the newest reading of each sensor (by key) this process stored in
/// `reading_hot`, to tell a batch that only adds readings after them, which
/// `write_contacts_and_live` inserts without `ON CONFLICT`.
///
/// The conflict check costs more than the insertion itself: with `ON CONFLICT DO NOTHING`
/// PostgreSQL inserts each row speculatively (a probe of the key, the row, then a second WAL
/// record to confirm it). 640 rows a statement from one connection, pgbench against a
/// PostgreSQL 15 server on this project's 2-core build machine: about 310 statements a second
/// as the checked way writes them, 330-350 without its `RETURNING`, about 670 as a plain
/// `INSERT`. An agent's readings come in time order, so nearly every batch of a running house
/// is one that only appends.
///
/// This is a guess, never a guarantee: the table's primary key is. A reading stored without
/// this process seeing its commit (a write whose answer was lost, then sent again; a row
/// written behind the engine's back) makes the plain `INSERT` fail on the key, and the batch
/// is written again with the conflict check.
#[derive(Debug, Default)]
pub(super) struct Appends {
    newest: std::sync::Mutex<HashMap<i64, i64>>,
}

impl Appends {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, i64>> {
        // Whatever a panicking holder left is still a guess the key checks.
        self.newest.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether every row is taken after the newest reading of its sensor stored before (a
    /// sensor not stored since the start is not known to have none).
    pub(super) fn only(&self, rows: &[Row]) -> bool {
        let newest = self.lock();
        rows.iter().all(|(sensor, ts, _)| newest.get(sensor).is_some_and(|n| ts > n))
    }

    /// `rows` were committed to `reading_hot`.
    pub(super) fn stored(&self, rows: &[Row]) {
        let mut newest = self.lock();
        for &(sensor, ts, _) in rows {
            let n = newest.entry(sensor).or_insert(ts);
            *n = (*n).max(ts);
        }
    }
}

/// Move the readings taken before `to` from `reading_hot` to `reading_rows`, in (sensor, ts)
/// order, in the caller's transaction: the flush that moves `rolled_before` to `to` (see
/// [`Raw`]). A reading already there (which the invariant rules out) is kept once.
pub(super) async fn settle(tx: &mut WriteTx, to: i64) -> Result<(), sqlx::Error> {
    for sql in [
        "INSERT INTO reading_rows (sensor, ts, value)
         SELECT sensor, ts, value FROM reading_hot WHERE ts < $1 ORDER BY sensor, ts
         ON CONFLICT (sensor, ts) DO NOTHING",
        "DELETE FROM reading_hot WHERE ts < $1",
    ] {
        on_conn!(tx.conn()?, |c| sqlx::query(sql)
            .bind(to)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Insert `unique` (no (sensor, ts) twice) into `raw` and return the rows that were new.
async fn insert_new(tx: &mut WriteTx, raw: Raw, unique: Vec<Row>) -> Result<Vec<Row>, sqlx::Error> {
    if unique.is_empty() {
        return Ok(unique);
    }
    match tx.conn()? {
        Conn::Sqlite(c) => sqlite_insert_new(c, raw, unique).await,
        Conn::Postgres(c) => {
            let (sensors, times, values) = columns(&unique);
            let inserted: PgInserted = sqlx::query_as(postgres_insert(raw))
                .bind(sensors)
                .bind(times)
                .bind(values)
                .fetch_one(c)
                .await?;
            Ok(pg_new_rows(unique, inserted))
        }
    }
}

/// [`insert_new`] on SQLite. `INSERT … RETURNING` would name the new rows, but sqlx streams
/// every returned row back one by one: it cut ingest from ~450k to ~175k readings/s in `cargo
/// xtask bench history`. So the batch is inserted plainly first, in a savepoint; when every
/// row was new (live readings: nearly always) the batch itself is what was inserted.
/// Otherwise (a replay) the insert is undone and redone with RETURNING.
async fn sqlite_insert_new(
    c: &mut sqlx::SqliteConnection,
    raw: Raw,
    unique: Vec<Row>,
) -> Result<Vec<Row>, sqlx::Error> {
    sqlx::query("SAVEPOINT new_readings").execute(&mut *c).await?;
    let mut stored = 0;
    for chunk in unique.chunks(INSERT_CHUNK) {
        let done = sqlite_insert(raw, chunk, "").build().persistent(false).execute(&mut *c).await?;
        stored += done.rows_affected();
    }
    if stored == unique.len() as u64 {
        sqlx::query("RELEASE new_readings").execute(&mut *c).await?;
        return Ok(unique);
    }
    sqlx::query("ROLLBACK TO new_readings").execute(&mut *c).await?;
    sqlx::query("RELEASE new_readings").execute(&mut *c).await?;
    let mut new: HashSet<(i64, i64)> = HashSet::new();
    for chunk in unique.chunks(INSERT_CHUNK) {
        let keys: Vec<(i64, i64)> = sqlite_insert(raw, chunk, " RETURNING sensor, ts")
            .build_query_as()
            .persistent(false)
            .fetch_all(&mut *c)
            .await?;
        new.extend(keys);
    }
    Ok(unique.into_iter().filter(|&(s, ts, _)| new.contains(&(s, ts))).collect())
}

/// Add readings just inserted (never a replayed duplicate: it would count twice) to both
/// rollups.
async fn add_to_rollups(tx: &mut WriteTx, inserted: &[Row]) -> Result<(), sqlx::Error> {
    if inserted.is_empty() {
        return Ok(());
    }
    // One upsert row per (sensor, bucket): an upsert may not touch a row twice in one
    // statement on PostgreSQL, and fewer rows is faster anyway.
    let mut minutes: HashMap<(i64, i64), Agg> = HashMap::new();
    for &(sensor, ts, value) in inserted {
        minutes.entry((sensor, floor_to(ts, MINUTE_MS))).or_default().add(value);
    }
    add_minutes_to_rollups(tx, &minutes).await
}

/// Add per-minute aggregates of readings just inserted (or counted in memory since) to both
/// rollups.
pub(super) async fn add_minutes_to_rollups(
    tx: &mut WriteTx,
    minutes: &HashMap<(i64, i64), Agg>,
) -> Result<(), sqlx::Error> {
    if minutes.is_empty() {
        return Ok(());
    }
    let mut hours: HashMap<(i64, i64), Agg> = HashMap::new();
    for ((sensor, minute), agg) in minutes {
        hours.entry((*sensor, floor_to(*minute, HOUR_MS))).or_default().merge(agg);
    }
    upsert_rollup(tx, "minute_rows", minutes).await?;
    upsert_rollup(tx, "hour_rows", &hours).await
}

async fn upsert_rollup(
    tx: &mut WriteTx,
    table: &'static str,
    rows: &HashMap<(i64, i64), Agg>,
) -> Result<(), sqlx::Error> {
    let rows: Vec<_> = rows.iter().collect();
    for chunk in rows.chunks(INSERT_CHUNK) {
        on_conn!(tx.conn()?, |c| {
            let mut q = QueryBuilder::new(format!(
                "INSERT INTO {table} (sensor, bucket, n, sum, min, max) "
            ));
            q.push_values(chunk, |mut b, ((sensor, bucket), agg)| {
                b.push_bind(*sensor)
                    .push_bind(*bucket)
                    .push_bind(agg.n)
                    .push_bind(agg.sum)
                    .push_bind(agg.min)
                    .push_bind(agg.max);
            });
            q.push(add_on_conflict(table));
            q.build().persistent(false).execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// The conflict clause that adds a bucket's aggregate to the row already in rollup `table`.
pub(super) fn add_on_conflict(table: &str) -> String {
    // A side may be NULL (a bucket of failed readings so far): the other one wins
    // (`NULL < x` is NULL, which takes the ELSE).
    format!(
        " ON CONFLICT (sensor, bucket) DO UPDATE SET
           n = {table}.n + excluded.n,
           sum = {table}.sum + excluded.sum,
           min = CASE WHEN {table}.min IS NULL OR excluded.min < {table}.min
             THEN excluded.min ELSE {table}.min END,
           max = CASE WHEN {table}.max IS NULL OR excluded.max > {table}.max
             THEN excluded.max ELSE {table}.max END"
    )
}

fn point(at: i64, n: i64, sum: f64, min: Option<f64>, max: Option<f64>) -> Point {
    Point {
        at: from_millis(at),
        min,
        mean: (n > 0).then(|| sum / n as f64),
        max,
        count: u32::try_from(n).unwrap_or(u32::MAX),
    }
}

/// A row of `runs`.
#[derive(sqlx::FromRow)]
struct RunRow {
    system: String,
    start: i64,
    end: Option<i64>,
    start_temp: Option<f64>,
    end_temp: Option<f64>,
}

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        Run {
            // The CHECK constraint admits only these two.
            system: str_enum(&r.system).unwrap_or(System::Heat),
            start: from_millis(r.start),
            end: r.end.map(from_millis),
            start_temp_c: r.start_temp,
            end_temp_c: r.end_temp,
        }
    }
}

/// One bucket of a downsampled series.
#[derive(sqlx::FromRow)]
struct Bucket {
    k: i64,
    n: i64,
    s: f64,
    lo: Option<f64>,
    hi: Option<f64>,
}

impl Store {
    /// At most `max_points` points of one sensor over `[from_ms, to_ms)`, oldest first.
    ///
    /// When the range holds at most `max_points` readings they come back raw (bucket 0; a
    /// failed reading is a point with null values and count 0). Otherwise the bucket width is
    /// range / `max_points` rounded up to a whole number of hours (read from `readings_hour`)
    /// when that is at least an hour, of minutes (`readings_minute`) when at least a minute,
    /// else of seconds (raw rows). Buckets start at `from` (widened to the source's unit);
    /// empty ones are left out.
    ///
    /// A range reaching back before what retention kept of a source never reads it: when
    /// the raw readings there are gone, the points are minute buckets at the finest (however
    /// many points were asked for), and hour buckets when the minute rollups are gone too.
    pub(crate) async fn series(
        &self,
        sensor_id: &str,
        from_ms: i64,
        to_ms: i64,
        max_points: u32,
    ) -> Result<Series, sqlx::Error> {
        let mut series = Series { from_ms, to_ms, bucket_ms: 0, points: Vec::new() };
        if from_ms >= to_ms || max_points == 0 {
            return Ok(series);
        }
        // Retention may have thinned the finer sources before some instant: a range reaching
        // before it is served from a source still whole there.
        let complete = self.complete_from().await?;
        let (raw_whole, minutes_whole) =
            (from_ms >= complete.raw_from, from_ms >= complete.minute_from);
        // One read of at most max_points + 1 rows tells whether the raw rows fit, without
        // counting a year of them.
        let raw = if raw_whole {
            self.readings(sensor_id, from_ms, to_ms, max_points.saturating_add(1)).await?
        } else {
            Vec::new()
        };
        if raw_whole && raw.len() <= max_points as usize {
            series.points = raw
                .into_iter()
                .map(|(ts, v)| {
                    let v = v.filter(|v| countable(*v));
                    point(ts, i64::from(v.is_some()), v.unwrap_or(0.0), v, v)
                })
                .collect();
            return Ok(series);
        }
        let max = i64::from(max_points);
        let needed = ceil_div(to_ms - from_ms, max);
        let (unit, table) = if needed >= HOUR_MS || !minutes_whole {
            (HOUR_MS, Some(Rollup::Hour))
        } else if needed >= MINUTE_MS || !raw_whole {
            (MINUTE_MS, Some(Rollup::Minute))
        } else {
            // Whole seconds: the reply states the width in seconds.
            (SECOND_MS, None)
        };
        let (from, to) = (floor_to(from_ms, unit), ceil_to(to_ms, unit));
        // Widening the range by up to two units can only widen the buckets: the source stays
        // fine enough, and ceil(range / width) ≤ max_points still holds.
        let width = ceil_to(ceil_div(to - from, max), unit);
        // Literal statements per source (sqlx refuses SQL built at run time unaudited). The
        // sums of BIGINT counts are cast back: PostgreSQL sums them as NUMERIC. A rollup
        // holds the readings taken before `rolled_before` (see `rollups.rs`): the raw rows
        // after it are aggregated into the same buckets (a minute or two of them).
        let sql = match table {
            Some(Rollup::Hour) => {
                "SELECT (bucket - $1) / $2 AS k, CAST(SUM(n) AS BIGINT) AS n, SUM(sum) AS s,
                        MIN(min) AS lo, MAX(max) AS hi
                 FROM (SELECT bucket, n, sum, min, max FROM readings_hour
                       WHERE sensor_id = $3 AND bucket >= $4 AND bucket < $5
                       UNION ALL
                       SELECT b, COUNT(v), COALESCE(SUM(v), 0.0), MIN(v), MAX(v)
                       FROM (SELECT ts - (((ts % 3600000) + 3600000) % 3600000) AS b,
                                    CASE WHEN value BETWEEN $6 AND $7 THEN value END AS v
                             FROM readings WHERE sensor_id = $8 AND ts >= $9 AND ts < $10) AS r
                       GROUP BY b) AS u
                 GROUP BY k ORDER BY k"
            }
            Some(Rollup::Minute) => {
                "SELECT (bucket - $1) / $2 AS k, CAST(SUM(n) AS BIGINT) AS n, SUM(sum) AS s,
                        MIN(min) AS lo, MAX(max) AS hi
                 FROM (SELECT bucket, n, sum, min, max FROM readings_minute
                       WHERE sensor_id = $3 AND bucket >= $4 AND bucket < $5
                       UNION ALL
                       SELECT b, COUNT(v), COALESCE(SUM(v), 0.0), MIN(v), MAX(v)
                       FROM (SELECT ts - (((ts % 60000) + 60000) % 60000) AS b,
                                    CASE WHEN value BETWEEN $6 AND $7 THEN value END AS v
                             FROM readings WHERE sensor_id = $8 AND ts >= $9 AND ts < $10) AS r
                       GROUP BY b) AS u
                 GROUP BY k ORDER BY k"
            }
            // As in the rollups, a value outside the accepted range counts as failed.
            None => {
                "SELECT (ts - $1) / $2 AS k, COUNT(v) AS n, COALESCE(SUM(v), 0.0) AS s,
                        MIN(v) AS lo, MAX(v) AS hi
                 FROM (SELECT ts, CASE WHEN value BETWEEN $3 AND $4 THEN value END AS v
                       FROM readings WHERE sensor_id = $5 AND ts >= $6 AND ts < $7) AS r
                 GROUP BY k ORDER BY k"
            }
        };
        let raw_from = match table {
            Some(_) => from.max(self.rolled_before().await?),
            None => from,
        };
        let rows: Vec<Bucket> = on_pool!(&self.pool(), |p| {
            let query = sqlx::query_as(sql).bind(from).bind(width);
            let query = match table {
                Some(_) => query
                    .bind(sensor_id)
                    .bind(from)
                    .bind(to)
                    .bind(MIN_READING_C)
                    .bind(MAX_READING_C)
                    .bind(sensor_id)
                    .bind(raw_from)
                    .bind(to),
                None => query
                    .bind(MIN_READING_C)
                    .bind(MAX_READING_C)
                    .bind(sensor_id)
                    .bind(from)
                    .bind(to),
            };
            query.fetch_all(p).await
        })?;
        series.points =
            rows.into_iter().map(|b| point(from + b.k * width, b.n, b.s, b.lo, b.hi)).collect();
        series.from_ms = from;
        series.to_ms = to;
        series.bucket_ms = width;
        Ok(series)
    }

    /// The plain GROUP BY over raw rows into `buckets` equal buckets: what `series` avoids,
    /// kept for the benchmark's comparison. Returns the number of points.
    pub(crate) async fn series_from_raw(
        &self,
        sensor_id: &str,
        from_ms: i64,
        to_ms: i64,
        buckets: u32,
    ) -> Result<usize, sqlx::Error> {
        let width = ((to_ms - from_ms) / i64::from(buckets.max(1))).max(1);
        on_pool!(&self.pool(), |p| sqlx::query(
            "SELECT (ts - $1) / $2 AS k, COUNT(value), SUM(value), MIN(value), MAX(value)
             FROM readings WHERE sensor_id = $3 AND ts >= $4 AND ts < $5 GROUP BY k",
        )
        .bind(from_ms)
        .bind(width)
        .bind(sensor_id)
        .bind(from_ms)
        .bind(to_ms)
        .fetch_all(p)
        .await
        .map(|rows| rows.len()))
    }

    /// Record that `system` started running at `at`; a no-op while a run of it is open (the
    /// control loop may say so again after a restart).
    pub(crate) async fn start_run(
        &self,
        system: System,
        at: Timestamp,
        temp: Option<f64>,
    ) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            r#"INSERT INTO runs (system, start, start_temp) VALUES ($1, $2, $3)
               ON CONFLICT (system) WHERE "end" IS NULL DO NOTHING"#,
        )
        .bind(enum_str(system))
        .bind(millis(at))
        .bind(temp)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done).map(|_| ())
    }

    /// Close the open run of `system` at `at` (never before its start); a no-op when none is
    /// open.
    pub(crate) async fn end_run(
        &self,
        system: System,
        at: Timestamp,
        temp: Option<f64>,
    ) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| {
            sqlx::query(
            r#"UPDATE runs SET "end" = CASE WHEN $1 > start THEN $1 ELSE start END, end_temp = $2
               WHERE system = $3 AND "end" IS NULL"#,
        )
        .bind(millis(at))
        .bind(temp)
        .bind(enum_str(system))
        .execute(p)
        .await
        .map(|r| r.rows_affected())
        });
        self.seen(done).map(|_| ())
    }

    /// The runs still going on (at most one per system), oldest first. The loop finds them
    /// among `runs` of its window (an open run overlaps every window); the tests ask directly.
    #[cfg(test)]
    pub(crate) async fn open_runs(&self) -> Result<Vec<Run>, sqlx::Error> {
        let rows: Vec<RunRow> = on_pool!(&self.pool(), |p| sqlx::query_as(
            r#"SELECT system, start, "end", start_temp, end_temp FROM runs
               WHERE "end" IS NULL ORDER BY start, id"#,
        )
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(Run::from).collect())
    }

    /// Runs overlapping `[from, to)`: started before `to`, and ended at or after `from` or
    /// still open; oldest first.
    pub(crate) async fn runs(
        &self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Run>, sqlx::Error> {
        let rows: Vec<RunRow> = on_pool!(&self.pool(), |p| sqlx::query_as(
            r#"SELECT system, start, "end", start_temp, end_temp FROM runs
               WHERE start < $1 AND ("end" IS NULL OR "end" >= $2) ORDER BY start, id"#,
        )
        .bind(millis(to))
        .bind(millis(from))
        .fetch_all(p)
        .await)?;
        Ok(rows.into_iter().map(Run::from).collect())
    }

    /// The systems that have ever run, heat first.
    pub(crate) async fn run_systems(&self) -> Result<Vec<System>, sqlx::Error> {
        let names: Vec<String> =
            on_pool!(&self.pool(), |p| sqlx::query_scalar("SELECT DISTINCT system FROM runs")
                .fetch_all(p)
                .await)?;
        let mut systems: Vec<System> = names.iter().filter_map(|s| str_enum(s)).collect();
        systems.sort();
        Ok(systems)
    }
}

#[cfg(test)]
mod tests {
    use super::super::NewReport;
    use super::*;

    async fn store() -> anyhow::Result<(Store, tempfile::TempDir)> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await?;
        Ok((store, dir))
    }

    fn report(readings: &[(&str, i64, Option<f64>)]) -> NewReport {
        NewReport {
            host_id: "pi".into(),
            key_role: hearth_proto::agents::KeyRole::Sensor,
            // Received as taken: live readings, whose minutes are over a minute later.
            received: readings.iter().map(|r| r.1).max().unwrap_or(0),
            clock_offset_ms: None,
            misdated: 0,
            readings: readings
                .iter()
                .map(|&(sensor, ts, value)| NewReading::plain(sensor, ts, value))
                .collect(),
        }
    }

    /// A batch only appends when each of its readings is taken after the newest stored of its
    /// sensor: a sensor never stored, or a reading at or before that time (the same reading
    /// sent again, or one out of order), is not known to be new.
    #[test]
    fn a_batch_appends_after_each_sensors_newest_stored() {
        let appends = Appends::default();
        assert!(!appends.only(&[(1, 100, None)]), "a sensor not stored since the start");
        appends.stored(&[(1, 100, Some(20.0)), (2, 50, None), (1, 90, None)]);
        assert!(appends.only(&[(1, 101, None), (2, 51, None), (1, 200, None)]));
        assert!(!appends.only(&[(1, 101, None), (2, 50, None)]), "the same time again");
        assert!(!appends.only(&[(1, 95, None)]), "one out of order");
        assert!(!appends.only(&[(1, 101, None), (3, 1, None)]), "a sensor never stored");
        appends.stored(&[(1, 80, None)]);
        assert!(appends.only(&[(1, 101, None)]), "an older reading stored moves nothing");
        assert!(appends.only(&[]), "nothing to insert adds nothing");
    }

    /// A deterministic dataset: a reading every `step` ms, DS18B20-like values (multiples of
    /// 1/16 °C, so sums are exact in floating point), every 7th reading failed, and the
    /// whole hour starting at `dead_hour` failed.
    fn dataset(start: i64, end: i64, step: i64, dead_hour: i64) -> Vec<(i64, Option<f64>)> {
        (0..)
            .map(|i| start + i * step)
            .take_while(|&ts| ts < end)
            .enumerate()
            .map(|(i, ts)| {
                let failed = i % 7 == 3 || (dead_hour..dead_hour + HOUR_MS).contains(&ts);
                let v = 18.0 + ((i * 37) % 97) as f64 / 16.0;
                (ts, (!failed).then_some(v))
            })
            .collect()
    }

    async fn load(store: &Store, sensor: &str, data: &[(i64, Option<f64>)]) -> anyhow::Result<()> {
        let rows: Vec<(&str, i64, Option<f64>)> =
            data.iter().map(|&(ts, v)| (sensor, ts, v)).collect();
        for batch in rows.chunks(2500) {
            store.write_reports(&[report(batch)]).await?;
        }
        Ok(())
    }

    type RollupRow = (String, i64, i64, f64, Option<f64>, Option<f64>);

    async fn rollup(store: &Store, table: &str) -> anyhow::Result<Vec<RollupRow>> {
        // `table` is one of the two constant names.
        let sql = format!(
            "SELECT sensor_id, bucket, n, sum, min, max FROM {table} ORDER BY sensor_id, bucket"
        );
        Ok(on_pool!(&store.test_pool(), |p| sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .fetch_all(p)
            .await)?)
    }

    /// The rollups recomputed from the raw rows taken before `before`, as the migration's
    /// backfill does.
    async fn recomputed(store: &Store, unit: i64, before: i64) -> anyhow::Result<Vec<RollupRow>> {
        Ok(on_pool!(&store.test_pool(), |p| sqlx::query_as(
            "SELECT sensor_id, ts - ((ts % $1) + $1) % $1 AS b, COUNT(value),
                    COALESCE(SUM(value), 0.0), MIN(value), MAX(value)
             FROM readings WHERE ts < $2 GROUP BY sensor_id, b ORDER BY sensor_id, b",
        )
        .bind(unit)
        .bind(before)
        .fetch_all(p)
        .await)?)
    }

    /// What is on disk is whole: the rollup tables count exactly the raw readings taken
    /// before `rolled_before` (see `rollups.rs`), which are in `reading_rows` only, and the
    /// others are in `reading_hot` only (see `Raw`).
    async fn assert_rollups_whole(store: &Store, what: &str) -> anyhow::Result<()> {
        let before = store.rolled_before().await?;
        for (table, unit) in [("readings_minute", MINUTE_MS), ("readings_hour", HOUR_MS)] {
            let want = recomputed(store, unit, before).await?;
            assert_eq!(rollup(store, table).await?, want, "{table}: {what}");
        }
        let misplaced: (i64, i64) = on_pool!(&store.test_pool(), |p| sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM reading_rows WHERE ts >= $1),
                    (SELECT COUNT(*) FROM reading_hot WHERE ts < $1)"
        )
        .bind(before)
        .fetch_one(p)
        .await)?;
        assert_eq!(misplaced, (0, 0), "readings in the wrong table: {what}");
        Ok(())
    }

    async fn rollups_equal_a_group_by_after_live_and_replayed_readings(
        store: Store,
    ) -> anyhow::Result<()> {
        let base = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let a = dataset(base, base + 3 * HOUR_MS, 10_000, base + HOUR_MS);
        let b = dataset(base - 2 * HOUR_MS, base + HOUR_MS, 25_000, base - 2 * HOUR_MS);
        // Live: in batches of two sensors' readings interleaved.
        let mut live: Vec<(&str, i64, Option<f64>)> = Vec::new();
        live.extend(a.iter().map(|&(ts, v)| ("28-a", ts, v)));
        live.extend(b.iter().map(|&(ts, v)| ("28-b", ts, v)));
        live.sort_by_key(|r| r.1);
        for batch in live.chunks(333) {
            store.write_reports(&[report(batch)]).await?;
        }
        // Replays: a backlog sent twice, a batch naming one reading twice, and a batch mixing
        // replayed and new readings (the new ones are in minutes that already have rows).
        let replay: Vec<_> = live[100..900].to_vec();
        store.write_reports(&[report(&replay), report(&replay)]).await?;
        store.write_reports(&[report(&live[5..6]), report(&live[5..6])]).await?;
        let mixed =
            [live[10], ("28-a", base + 5, Some(99.0)), ("28-a", base + 6, None), live[1500]];
        store.write_reports(&[report(&mixed)]).await?;
        // A failed reading before a valid one, in a minute of its own.
        let late = base + 10 * HOUR_MS;
        store.write_reports(&[report(&[("28-a", late, None)])]).await?;
        store.write_reports(&[report(&[("28-a", late + 1, Some(17.5))])]).await?;
        // A new reading named twice in one batch: the first wins, counted once.
        let twice = [("28-a", late + 2, Some(1.0)), ("28-a", late + 2, Some(2.0))];
        store.write_reports(&[report(&twice)]).await?;
        assert_eq!(store.readings("28-a", late + 2, late + 3, 5).await?, [(late + 2, Some(1.0))]);

        // The minutes not over yet are counted in memory; on disk, what is there is whole.
        assert_rollups_whole(&store, "counts of the last minutes in memory").await?;
        assert!(store.rolled_before().await? < late + 2);
        let hot = "SELECT COUNT(*) FROM reading_hot";
        let hot: i64 =
            on_pool!(&store.test_pool(), |p| sqlx::query_scalar(hot).fetch_one(p).await)?;
        assert!(hot >= 3, "the last readings wait in reading_hot: {hot}");
        store.count_all_in_rollups().await?;
        assert_eq!(store.rolled_before().await?, late + 3);
        assert_rollups_whole(&store, "every reading counted").await?;
        // Every reading once, wherever it was when it was replayed.
        let stored: i64 = on_pool!(&store.test_pool(), |p| sqlx::query_scalar(
            "SELECT COUNT(*) FROM reading_values"
        )
        .fetch_one(p)
        .await)?;
        assert_eq!(stored, (a.len() + b.len() + 2 + 3) as i64);
        let minute = rollup(&store, "readings_minute").await?;
        let total: i64 = minute.iter().map(|r| r.2).sum();
        let valid = a.iter().chain(&b).filter(|r| r.1.is_some()).count();
        // 99.0, 17.5 and 1.0 are the only readings with a value beyond the datasets.
        assert_eq!(total, valid as i64 + 3);
        // A minute whose readings all failed exists with n = 0 and no min/max.
        let dead = minute.iter().find(|r| r.0 == "28-a" && r.1 == base + HOUR_MS);
        assert_eq!(dead.map(|r| (r.2, r.3, r.4, r.5)), Some((0, 0.0, None, None)));
        Ok(())
    }

    /// What a closing store does after live readings: the counts in memory reach the tables
    /// and `reading_hot` is left empty, so that the next process has nothing to count in its
    /// first write. A store that wrote nothing writes nothing.
    async fn a_closing_store_leaves_nothing_to_count(store: Store) -> anyhow::Result<()> {
        let hot = "SELECT COUNT(*) FROM reading_hot";
        store.settle_rollups().await?;
        assert_eq!(store.rolled_before().await?, i64::MAX, "nothing written: no mark");
        let base = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let data = dataset(base, base + 10 * MINUTE_MS, 10_000, base + 3 * MINUTE_MS);
        load(&store, "28-a", &data).await?;
        let waiting: i64 =
            on_pool!(&store.test_pool(), |p| sqlx::query_scalar(hot).fetch_one(p).await)?;
        assert!(waiting > 0, "the last minutes wait in reading_hot");
        store.settle_rollups().await?;
        let left: i64 =
            on_pool!(&store.test_pool(), |p| sqlx::query_scalar(hot).fetch_one(p).await)?;
        assert_eq!(left, 0);
        assert_eq!(store.rolled_before().await?, data[data.len() - 1].0 + 1);
        assert_rollups_whole(&store, "settled").await?;
        let minutes = rollup(&store, "readings_minute").await?;
        assert_eq!(
            minutes.iter().map(|r| r.2).sum::<i64>(),
            data.iter().flat_map(|r| r.1).count() as i64
        );
        Ok(())
    }

    /// Raw rows written straight into an old engine's `readings` table (`pool`, schema before
    /// 0017: the sensor's id in every row).
    async fn insert_old_rows(
        pool: &sqlx::SqlitePool,
        sensor: &str,
        rows: &[(i64, Option<f64>)],
    ) -> anyhow::Result<()> {
        for (ts, v) in rows {
            sqlx::query("INSERT INTO readings (sensor_id, ts, value) VALUES ($1, $2, $3)")
                .bind(sensor)
                .bind(ts)
                .bind(v)
                .execute(pool)
                .await?;
        }
        Ok(())
    }

    /// The rollups of an old engine's `readings` table (`pool`, schema 0004 to 0016), computed
    /// as that engine kept them: every reading summed as it came, in °C, by the sensor's id.
    async fn old_rollups(pool: &sqlx::SqlitePool) -> anyhow::Result<()> {
        for (table, unit) in [("readings_minute", MINUTE_MS), ("readings_hour", HOUR_MS)] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO {table} (sensor_id, bucket, n, sum, min, max)
                 SELECT sensor_id, ts - ((ts % $1) + $1) % $1 AS b, COUNT(value),
                        COALESCE(SUM(value), 0.0), MIN(value), MAX(value)
                 FROM readings GROUP BY sensor_id, b"
            )))
            .bind(unit)
            .execute(pool)
            .await?;
        }
        Ok(())
    }

    /// An engine from before the rollups (schema 0003) upgraded: migration 0004 computes them
    /// from its raw rows as ingest keeps them, and 0017 carries them over.
    #[tokio::test]
    async fn migration_backfills_the_rollups() -> anyhow::Result<()> {
        let (store, _dir) = store().await?;
        let base = 1_767_225_600_000;
        let data = dataset(base, base + 2 * HOUR_MS, 30_000, base);
        load(&store, "28-a", &data).await?;
        store.count_all_in_rollups().await?;
        let kept =
            (rollup(&store, "readings_minute").await?, rollup(&store, "readings_hour").await?);

        let dir = tempfile::tempdir()?;
        let (url, pool) = crate::store::testing::sqlite_before(&dir, "0004").await?;
        insert_old_rows(&pool, "28-a", &data).await?;
        pool.close().await;
        let upgraded = Store::open(&url).await?;
        let backfilled = (
            rollup(&upgraded, "readings_minute").await?,
            rollup(&upgraded, "readings_hour").await?,
        );
        assert_eq!(backfilled, kept);
        assert!(!kept.1.is_empty());
        Ok(())
    }

    async fn impossible_values_never_reach_a_sum(store: Store) -> anyhow::Result<()> {
        let base = 1_767_225_600_000;
        // Stored behind the API's back (the API refuses them): two of ±1e308 in one minute
        // would sum to infinity, served as a null mean ("every reading failed").
        let rows: Vec<(&str, i64, Option<f64>)> = vec![
            ("28-a", base, Some(1e308)),
            ("28-a", base + 1_000, Some(1e308)),
            ("28-a", base + 2_000, Some(-273.15)),
            ("28-a", base + 3_000, Some(21.0)),
            ("28-a", base + 4_000, Some(22.0)),
        ];
        store.write_reports(&[report(&rows)]).await?;
        // Counted from the raw rows by SQL (as a restart does), not from the batch in memory.
        store.count_all_in_rollups().await?;
        let minute = rollup(&store, "readings_minute").await?;
        assert_eq!(minute, [("28-a".to_owned(), base, 2, 43.0, Some(21.0), Some(22.0))]);
        // Every source of the series agrees: raw points, grouped raw rows, the minute rollup.
        let raw = store.series("28-a", base, base + 5_000, 10).await?;
        let means: Vec<Option<f64>> = raw.points.iter().map(|p| p.mean).collect();
        assert_eq!(means, [None, None, None, Some(21.0), Some(22.0)]);
        let grouped = store.series("28-a", base, base + 5_000, 2).await?;
        assert_eq!(grouped.points.iter().map(|p| p.mean).collect::<Vec<_>>(), [None, Some(21.5)]);
        let minutes = store.series("28-a", base, base + 4 * MINUTE_MS, 2).await?;
        assert_eq!(
            minutes.points.iter().map(|p| (p.mean, p.count)).collect::<Vec<_>>(),
            [(Some(21.5), 2)]
        );
        Ok(())
    }

    /// A database of schema 0016 (each row naming its sensor by id, values as REAL) upgraded
    /// by 0017: every raw value reads back as the same double, in its compact form where it
    /// has one; the rollups read back as they were; and ingest goes on in the same series.
    #[tokio::test]
    async fn migration_17_keeps_every_value_exactly() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (url, pool) = crate::store::testing::sqlite_before(&dir, "0017").await?;
        let base = 1_767_225_600_000;
        let values = [
            Some(21.0625),
            Some(-40.5),
            Some(21.37),
            Some(0.1 + 0.2),
            Some(1.0 / 3.0),
            None,
            Some(124.9999),
        ];
        let rows: Vec<(i64, Option<f64>)> =
            values.iter().enumerate().map(|(i, v)| (base + i as i64 * 10_000, *v)).collect();
        insert_old_rows(&pool, "28-a", &rows).await?;
        insert_old_rows(&pool, "28-b", &rows[..2]).await?;
        old_rollups(&pool).await?;
        let before: Vec<RollupRow> = sqlx::query_as(
            "SELECT sensor_id, bucket, n, sum, min, max FROM readings_minute
             ORDER BY sensor_id, bucket",
        )
        .fetch_all(&pool)
        .await?;
        pool.close().await;

        let store = Store::open(&url).await?;
        let back = store.readings("28-a", base, base + HOUR_MS, 100).await?;
        let bits = |r: &[(i64, Option<f64>)]| -> Vec<(i64, Option<u64>)> {
            r.iter().map(|(t, v)| (*t, v.map(f64::to_bits))).collect()
        };
        assert_eq!(bits(&back), bits(&rows));
        let forms: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT CASE WHEN value IS NULL THEN NULL ELSE typeof(value) END
             FROM reading_rows r JOIN sensor_keys k ON k.key = r.sensor
             WHERE k.sensor_id = '28-a' ORDER BY ts",
        )
        .fetch_all(&store.test_sqlite_pool()?)
        .await?;
        let forms: Vec<Option<&str>> = forms.iter().map(Option::as_deref).collect();
        let (int, real) = (Some("integer"), Some("real"));
        assert_eq!(forms, [int, int, int, real, real, None, int]);
        let after = rollup(&store, "readings_minute").await?;
        assert_eq!(after.len(), before.len());
        for (a, b) in after.iter().zip(&before) {
            assert_eq!((&a.0, a.1, a.2), (&b.0, b.1, b.2));
            let close = |x: f64, y: f64| (x - y).abs() <= 1e-12 * x.abs().max(1.0);
            assert!(close(a.3, b.3), "{a:?} {b:?}");
            assert!(a.4.zip(b.4).is_none_or(|(x, y)| close(x, y)), "{a:?} {b:?}");
            assert!(a.5.zip(b.5).is_none_or(|(x, y)| close(x, y)), "{a:?} {b:?}");
        }

        // Ingest after the upgrade: an old sensor's readings join its history, a new sensor
        // gets a key of its own.
        let later = base + 2 * HOUR_MS;
        store
            .write_reports(&[report(&[("28-a", later, Some(20.5)), ("28-c", later, Some(19.0))])])
            .await?;
        let a = store.readings("28-a", base, later + 1, 100).await?;
        assert_eq!((a.len(), a.last()), (rows.len() + 1, Some(&(later, Some(20.5)))));
        assert_eq!(store.readings("28-c", base, later + 1, 100).await?, [(later, Some(19.0))]);
        assert_eq!(store.readings("28-b", base, later + 1, 100).await?.len(), 2);
        Ok(())
    }

    /// An engine from before the range check (schema 0006) stored impossible values in its
    /// raw rows and summed them in its rollups; upgraded, 0007 clears and repairs them.
    #[tokio::test]
    async fn migration_7_clears_impossible_values_and_repairs_their_rollups() -> anyhow::Result<()>
    {
        let dir = tempfile::tempdir()?;
        let (url, pool) = crate::store::testing::sqlite_before(&dir, "0007").await?;
        let base = 1_767_225_600_000;
        let mut rows = dataset(base, base + 2 * HOUR_MS, 30_000, base + 5 * HOUR_MS);
        rows.extend([
            (base + 61_000, Some(1e308)),
            (base + 62_000, Some(1e308)),
            (base + HOUR_MS + 5, Some(-273.15)),
        ]);
        insert_old_rows(&pool, "28-a", &rows).await?;
        sqlx::query(
            "INSERT INTO sensors (id, host_id, kind, last_ts, last_value)
             VALUES ('28-a', 'pi', 'ds18b20', $1, 1e308)",
        )
        .bind(base + 62_000)
        .execute(&pool)
        .await?;
        // That engine kept every reading in the rollups as it came.
        old_rollups(&pool).await?;
        let broken: Vec<f64> =
            sqlx::query_scalar("SELECT sum FROM readings_minute").fetch_all(&pool).await?;
        assert!(broken.iter().any(|s| s.is_infinite()), "the old sums overflowed");
        pool.close().await;

        let store = Store::open(&url).await?;
        assert_rollups_whole(&store, "repaired").await?;
        let minute = rollup(&store, "readings_minute").await?;
        assert!(minute.iter().all(|r| r.3.is_finite()));
        let cleared = store.readings("28-a", base + 61_000, base + 62_001, 5).await?;
        assert_eq!(cleared, [(base + 61_000, None), (base + 62_000, None)], "kept, as failed");
        assert_eq!(store.sensors().await?[0].last_value, None);
        Ok(())
    }

    /// The point a bucket `[at, at + width)` must have, from the dataset itself (the last
    /// bucket ends at the served range's end).
    fn expected(data: &[(i64, Option<f64>)], at: i64, width: i64) -> Option<Point> {
        let mut agg = Agg::default();
        let mut any = false;
        for &(_, v) in data.iter().filter(|r| (at..at + width).contains(&r.0)) {
            any = true;
            agg.add(v);
        }
        // Agg counts in the rollups' units; the series is in °C.
        let c = |v: f64| v / crate::store::encoding::ROLLUP_SCALE;
        any.then(|| point(at, agg.n, c(agg.sum), agg.min.map(c), agg.max.map(c)))
    }

    async fn series_reads_raw_minute_and_hour_sources_exactly(store: Store) -> anyhow::Result<()> {
        let base = 1_767_225_600_000;
        let step = 10_000;
        let data = dataset(base, base + 4 * 24 * HOUR_MS, step, base + 30 * HOUR_MS);
        load(&store, "28-a", &data).await?;
        // Another sensor's readings must not leak in.
        load(&store, "28-b", &dataset(base, base + 2 * 24 * HOUR_MS, 60_000, 0)).await?;
        let cases: [(&str, i64, i64, u32, i64); 7] = [
            // (what, from, to, max_points, expected bucket width)
            ("raw readings", base + 5_000, base + 205_000, 20, 0),
            ("raw rows grouped", base, base + HOUR_MS, 100, 36_000),
            ("raw rows grouped, unaligned", base + 500, base + HOUR_MS + 1_500, 100, 37_000),
            ("minute rollup", base, base + 24 * HOUR_MS, 100, 15 * MINUTE_MS),
            (
                "minute rollup, unaligned",
                base + 7_000,
                base + 24 * HOUR_MS - 1,
                100,
                15 * MINUTE_MS,
            ),
            ("hour rollup", base, base + 3 * 24 * HOUR_MS, 10, 8 * HOUR_MS),
            ("hour rollup, unaligned", base + 1, base + 4 * 24 * HOUR_MS, 7, 14 * HOUR_MS),
        ];
        for (what, from, to, max_points, width) in cases {
            let s = store.series("28-a", from, to, max_points).await?;
            assert_eq!(s.bucket_ms, width, "{what}");
            assert!(!s.points.is_empty() && s.points.len() <= max_points as usize, "{what}");
            // The served range covers the requested one, by less than a bucket's unit more.
            assert!(s.from_ms <= from && s.to_ms >= to, "{what}");
            assert!(from - s.from_ms < HOUR_MS && s.to_ms - to < HOUR_MS, "{what}");
            let want: Vec<Point> = if width == 0 {
                data.iter()
                    .filter(|r| (from..to).contains(&r.0))
                    .map(|&(ts, v)| point(ts, i64::from(v.is_some()), v.unwrap_or(0.0), v, v))
                    .collect()
            } else {
                (0..)
                    .map(|k| s.from_ms + k * width)
                    .take_while(|&at| at < s.to_ms)
                    .filter_map(|at| expected(&data, at, width.min(s.to_ms - at)))
                    .collect()
            };
            assert_eq!(s.points, want, "{what}");
        }
        // The hour of failed readings is one point with no values and count 0.
        let s = store.series("28-a", base + 24 * HOUR_MS, base + 48 * HOUR_MS, 24).await?;
        assert_eq!(s.bucket_ms, HOUR_MS);
        let dead = s.points.iter().find(|p| p.at == from_millis(base + 30 * HOUR_MS));
        assert_eq!(dead.map(|p| (p.min, p.mean, p.max, p.count)), Some((None, None, None, 0)));
        // Nothing in range, or an unknown sensor: no points.
        assert!(store.series("28-a", base - HOUR_MS, base, 10).await?.points.is_empty());
        assert!(store.series("28-x", base, base + HOUR_MS, 10).await?.points.is_empty());
        Ok(())
    }

    async fn runs_open_and_close_once_per_system(store: Store) -> anyhow::Result<()> {
        let t = |s: &str| s.parse::<Timestamp>();
        store.start_run(System::Heat, t("2026-01-01T06:00:00Z")?, Some(18.0)).await?;
        // Said again (a restart): still the first run.
        store.start_run(System::Heat, t("2026-01-01T06:05:00Z")?, Some(18.5)).await?;
        store.start_run(System::Cool, t("2026-01-01T06:10:00Z")?, None).await?;
        let open = store.open_runs().await?;
        assert_eq!(open.len(), 2);
        assert_eq!((open[0].system, open[0].start), (System::Heat, t("2026-01-01T06:00:00Z")?));
        assert_eq!(open[0].start_temp_c, Some(18.0));

        store.end_run(System::Heat, t("2026-01-01T07:00:00Z")?, Some(20.0)).await?;
        // Ending again changes nothing.
        store.end_run(System::Heat, t("2026-01-01T08:00:00Z")?, Some(21.0)).await?;
        store.start_run(System::Heat, t("2026-01-01T09:00:00Z")?, Some(19.0)).await?;
        // An end before the start (a clock step) is clamped to the start.
        store.end_run(System::Heat, t("2026-01-01T08:59:00Z")?, None).await?;

        let all = store.runs(t("2026-01-01T00:00:00Z")?, t("2026-01-02T00:00:00Z")?).await?;
        let got: Vec<(System, String, Option<String>)> = all
            .iter()
            .map(|r| (r.system, r.start.to_string(), r.end.map(|e| e.to_string())))
            .collect();
        let want = [
            (System::Heat, "2026-01-01T06:00:00Z", Some("2026-01-01T07:00:00Z")),
            (System::Cool, "2026-01-01T06:10:00Z", None),
            (System::Heat, "2026-01-01T09:00:00Z", Some("2026-01-01T09:00:00Z")),
        ]
        .map(|(s, a, b)| (s, a.to_owned(), b.map(str::to_owned)));
        assert_eq!(got, want);
        assert_eq!((all[0].start_temp_c, all[0].end_temp_c), (Some(18.0), Some(20.0)));

        // Overlap: the open cool run overlaps any later range; a range after the closed heat
        // runs, or before everything, sees only what overlaps it.
        let later = store.runs(t("2026-01-05T00:00:00Z")?, t("2026-01-06T00:00:00Z")?).await?;
        assert_eq!(later.iter().map(|r| r.system).collect::<Vec<_>>(), [System::Cool]);
        let between = store.runs(t("2026-01-01T07:00:00Z")?, t("2026-01-01T08:00:00Z")?).await?;
        assert_eq!(between.len(), 2, "ended at `from` counts; the open one counts");
        assert!(
            store.runs(t("2025-01-01T00:00:00Z")?, t("2026-01-01T06:00:00Z")?).await?.is_empty()
        );
        assert_eq!(store.run_systems().await?, [System::Heat, System::Cool]);
        assert_eq!(store.open_runs().await?.len(), 1);
        Ok(())
    }

    /// The points `series` must serve for `data` (one sensor's readings).
    fn wanted(data: &[(i64, Option<f64>)], s: &Series, from: i64, to: i64) -> Vec<Point> {
        if s.bucket_ms == 0 {
            return data
                .iter()
                .filter(|r| (from..to).contains(&r.0))
                .map(|&(ts, v)| point(ts, i64::from(v.is_some()), v.unwrap_or(0.0), v, v))
                .collect();
        }
        (0..)
            .map(|k| s.from_ms + k * s.bucket_ms)
            .take_while(|&at| at < s.to_ms)
            .filter_map(|at| expected(data, at, s.bucket_ms.min(s.to_ms - at)))
            .collect()
    }

    async fn series_stay_exact_while_counts_wait_in_memory(store: Store) -> anyhow::Result<()> {
        let base = 1_767_225_600_000;
        let data = dataset(base, base + 40 * MINUTE_MS, 10_000, base + HOUR_MS);
        // (from, to, max_points, the source's unit)
        let charts = [
            (base - HOUR_MS, base + HOUR_MS, 60, MINUTE_MS),
            (base - 24 * HOUR_MS, base + 48 * HOUR_MS, 10, HOUR_MS),
        ];
        for (i, batch) in data.chunks(7).enumerate() {
            let rows: Vec<_> = batch.iter().map(|&(ts, v)| ("28-a", ts, v)).collect();
            store.write_reports(&[report(&rows)]).await?;
            if i == 12 {
                // What a crash loses: the next write counts again from the table.
                store.inner.rollups.forget();
            }
            let so_far = &data[..data.len().min((i + 1) * 7)];
            for (from, to, max_points, unit) in charts {
                let s = store.series("28-a", from, to, max_points).await?;
                if so_far.len() > max_points as usize {
                    assert_eq!(s.bucket_ms % unit, 0, "batch {i}: source");
                }
                assert_eq!(s.points, wanted(so_far, &s, from, to), "batch {i}, unit {unit}");
            }
            assert_rollups_whole(&store, &format!("batch {i}")).await?;
        }
        // Some minutes are still counted in memory only, and the charts above were exact.
        assert!(store.rolled_before().await? < base + 40 * MINUTE_MS);
        assert!(store.rolled_before().await? > base);
        Ok(())
    }

    /// Whatever form a value is stored in (`encoding.rs`), it reads back as the same double,
    /// and the rollups sum it (in their units) as it was sent.
    async fn values_read_back_exactly(store: Store) -> anyhow::Result<()> {
        let base = 1_767_225_600_000;
        let values = [21.0625, -40.5, 21.37, 0.1 + 0.2, 1.0 / 3.0, 124.9999, -0.0625, 99.99];
        let rows: Vec<(&str, i64, Option<f64>)> =
            values.iter().enumerate().map(|(i, v)| ("28-a", base + i as i64, Some(*v))).collect();
        store.write_reports(&[report(&rows)]).await?;
        let back = store.readings("28-a", base, base + 100, 100).await?;
        let bits: Vec<u64> = back.iter().filter_map(|r| r.1).map(f64::to_bits).collect();
        assert_eq!(bits, values.map(f64::to_bits));
        store.count_all_in_rollups().await?;
        let minute = rollup(&store, "readings_minute").await?;
        assert_eq!(minute.len(), 1);
        let sum: f64 = values.iter().sum();
        assert!((minute[0].3 - sum).abs() < 1e-9, "{} vs {sum}", minute[0].3);
        assert_eq!((minute[0].4, minute[0].5), (Some(-40.5), Some(124.9999)));
        Ok(())
    }

    crate::store::testing::on_both_backends!(
        values_read_back_exactly,
        series_stay_exact_while_counts_wait_in_memory,
        rollups_equal_a_group_by_after_live_and_replayed_readings,
        a_closing_store_leaves_nothing_to_count,
        series_reads_raw_minute_and_hour_sources_exactly,
        runs_open_and_close_once_per_system,
        impossible_values_never_reach_a_sum,
    );
}
