//! The sensors rows' newest reading (`last_ts`, `last_value`, `value_since` and the
//! description that came with it), written behind the readings.
//!
//! Upserting every sensor of every write batch cost a row write per distinct sensor per batch,
//! as many as the readings themselves when a thousand sensors report once each (the ingest
//! benchmark). A sensor's row is instead written in the batch only when this process does not
//! know it to exist (its first reading since the engine started, or since a failed write):
//! that upsert returns what the row then holds. Later readings only move the row's newest
//! reading in memory ([`Behind::merge`]), and those are written one row per sensor whatever
//! the rate: once the oldest has waited [`FLUSH_AFTER`], by the next write batches, at most
//! [`SLICE`] rows each, oldest first; and all of them when the store closes.
//!
//! Readers do not see the lag: `Store::sensors` lays the values that wait over the rows it
//! reads ([`lay_over`], the upsert's rules in memory), so it answers exactly what the rows
//! will hold. It used to write them first; the control loop reads the sensors up to four
//! times a second under a burst of reports, and each of those writes (a thousand rows, on
//! PostgreSQL 10–20 ms) held the write lock that ingest waits on: the ingest benchmark's
//! slowest reports came every quarter second.
//!
//! What a crash loses is at most the rows' newest-reading columns of the readings of the last
//! second before it, never a reading: those were committed before they were acknowledged, and
//! the next reading of each sensor brings its row up to date. After a failed write both the rows known and the pending
//! values are forgotten, and each sensor's next reading is upserted in its batch again (the
//! commit may have happened: the table is the truth, never the memory).
//!
//! The rows themselves are read from the table once and then kept here ([`Behind::rows`]):
//! the control loop reads every sensor up to four times a second, a thousand rows cost 3 ms
//! on PostgreSQL and 12 ms of CPU on SQLite, and every change to them goes through this
//! store. A flush lays what it wrote over the kept rows, by the same rules; anything else
//! that writes sensors rows (a sensor's first row, its settings, a failed write) drops them,
//! and a read that was under way meanwhile is not kept (`generation`), so the rows kept are
//! always the table's.
//!
//! `value_since` (since when the newest value has been the same) stays exact across the
//! readings merged in memory: a value that changed (against the row as last written, or within
//! the pending readings) carries the instant of its change, written as is; an unchanged one
//! keeps the row's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::QueryBuilder;

use super::db::{WriteTx, on_conn};
use super::{INSERT_CHUNK, NewReading, SensorRow};

/// The newest readings wait this long in memory (measured from the first one that waits),
/// then the next write batches write them, [`SLICE`] rows each: a crash loses about this
/// much of the rows' newest-reading columns (a thousand sensors: four batches more, some
/// milliseconds under load).
pub(super) const FLUSH_AFTER: Duration = Duration::from_secs(1);

/// At most this many rows are written behind one write batch. A write batch waits for what
/// it writes, and the reports that come meanwhile wait for it: a thousand sensors' rows held
/// PostgreSQL 7-9 ms (SQLite 4-5 ms) once a second under a burst of reports, the ingest
/// benchmark's slowest reports; a slice of 250 takes 1-3 ms, four batches in a row.
pub(super) const SLICE: usize = 250;

/// A sensor's newest reading and description, as its row holds them or is to hold them.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Newest {
    pub(super) host_id: String,
    pub(super) kind: String,
    pub(super) alias: Option<String>,
    pub(super) extra: Option<String>,
    /// The time the reading competes at to be the latest (`NewReading::latest_at`); None
    /// for a sensor described by a reading that may never be its latest (no value either).
    pub(super) ts: Option<i64>,
    pub(super) value: Option<f64>,
    /// When the value last changed, if it changed since the row was last written: written
    /// as `value_since`. None: the row's `value_since` stands.
    pub(super) changed_at: Option<i64>,
    /// Since when it has waited in memory, for the oldest to be written first (a sensor
    /// that reports all the time is not written at the others' expense). None when it is
    /// written at once.
    pub(super) queued_at: Option<Instant>,
}

impl Newest {
    pub(super) fn of(host_id: &str, r: &NewReading) -> Self {
        Self {
            host_id: host_id.to_owned(),
            kind: r.kind.clone(),
            alias: r.alias.clone(),
            extra: r.extra.clone(),
            ts: r.latest_at,
            value: r.latest_at.and(r.value),
            changed_at: None,
            queued_at: None,
        }
    }
}

/// What a row holds, as far as the newest reading goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Stored {
    /// None: the row has no reading that may be the latest yet.
    pub(super) ts: Option<i64>,
    pub(super) value: Option<f64>,
}

#[derive(Debug, Default)]
struct State {
    /// The sensors whose row exists, with its newest reading as last written.
    known: HashMap<String, Stored>,
    /// Newer readings of known sensors, not written yet.
    pending: HashMap<String, Newest>,
    /// When the oldest of `pending` was committed (its `queued_at`).
    waiting_since: Option<Instant>,
    /// Every sensors row as the table holds it (before `pending` is laid over), when known.
    rows: Option<Arc<Vec<SensorRow>>>,
    /// Counts the writes to sensors rows: a read of the table that began before one may
    /// not hold it, and is not kept.
    generation: u64,
}

/// A read of the sensors rows under way: what was pending and the generation when it began.
pub(super) struct Reading {
    waiting: HashMap<String, Newest>,
    generation: u64,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Behind {
    state: Mutex<State>,
}

impl Behind {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Half-merged values are worth nothing: forget them (the next readings write rows).
        self.state.lock().unwrap_or_else(|e| {
            let mut state = e.into_inner();
            state.forget();
            state
        })
    }

    /// Every sensors row with the pending values laid over it, from memory; when the rows
    /// are not known, what the read of the table needs ([`Self::read`]).
    pub(super) fn rows(&self) -> Result<Vec<SensorRow>, Reading> {
        let (rows, waiting) = {
            let state = self.lock();
            match &state.rows {
                // Only the pointer and the pending values are copied under the lock, which
                // every write batch takes.
                Some(rows) => (Arc::clone(rows), state.pending.clone()),
                None => {
                    return Err(Reading {
                        waiting: state.pending.clone(),
                        generation: state.generation,
                    });
                }
            }
        };
        let mut rows = Vec::clone(&rows);
        lay_over(&waiting, &mut rows);
        Ok(rows)
    }

    /// The rows just read from the table, for `reading`: kept unless a write to them may
    /// have committed since it began, and answered with what was pending then laid over.
    pub(super) fn read(&self, reading: Reading, mut rows: Vec<SensorRow>) -> Vec<SensorRow> {
        {
            let mut state = self.lock();
            if state.generation == reading.generation {
                state.rows = Some(Arc::new(rows.clone()));
            }
        }
        lay_over(&reading.waiting, &mut rows);
        rows
    }

    /// Sensors rows were written other than by [`upsert`] through this store's paths
    /// (settings), or may have been: the rows kept are dropped.
    pub(super) fn rows_changed(&self) {
        self.lock().rows_changed();
    }

    /// Whether the row of `sensor` is known to exist.
    pub(super) fn knows(&self, sensor: &str) -> bool {
        self.lock().known.contains_key(sensor)
    }

    /// Whether the rows of all `sensors` are known to exist.
    pub(super) fn knows_all<'a>(&self, mut sensors: impl Iterator<Item = &'a str>) -> bool {
        let state = self.lock();
        sensors.all(|id| state.known.contains_key(id))
    }

    /// Rows just upserted: they exist and hold these.
    pub(super) fn written(&self, rows: Vec<(String, Stored)>) {
        if rows.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.known.extend(rows);
        state.rows_changed();
    }

    /// Readings of known sensors, committed, as `(sensor, host, reading)`: each becomes its
    /// sensor's pending newest when it is at least as new as what the row holds or waits for
    /// (as the upsert decides). A pending value is updated in place (`clone_from` reuses its
    /// strings): this runs for every sensor of every batch.
    pub(super) fn merge<'a>(
        &self,
        newest: impl IntoIterator<Item = (&'a str, &'a str, &'a NewReading)>,
    ) {
        let mut state = self.lock();
        let state = &mut *state;
        for (id, host_id, r) in newest {
            let (Some(stored), Some(ts)) = (state.known.get(id), r.latest_at) else { continue };
            match state.pending.get_mut(id) {
                Some(p) => {
                    if p.ts.is_some_and(|t| ts < t) {
                        continue;
                    }
                    // A pending value always has a time (see the other arm).
                    if p.value != r.value {
                        p.changed_at = Some(ts);
                    }
                    p.host_id.clear();
                    p.host_id.push_str(host_id);
                    p.kind.clone_from(&r.kind);
                    p.alias.clone_from(&r.alias);
                    p.extra.clone_from(&r.extra);
                    p.ts = Some(ts);
                    p.value = r.value;
                }
                None => {
                    if stored.ts.is_some_and(|t| ts < t) {
                        continue;
                    }
                    let now = Instant::now();
                    let mut new = Newest::of(host_id, r);
                    new.changed_at = match stored.ts {
                        Some(_) if r.value == stored.value => None,
                        _ => Some(ts),
                    };
                    new.queued_at = Some(now);
                    state.pending.insert(id.to_owned(), new);
                    state.waiting_since.get_or_insert(now);
                }
            }
        }
    }

    /// Whether any value waits to be written.
    pub(super) fn waiting(&self) -> bool {
        self.lock().waiting_since.is_some()
    }

    /// Whether pending values have waited [`FLUSH_AFTER`].
    pub(super) fn due(&self) -> bool {
        self.lock().waiting_since.is_some_and(|t| t.elapsed() >= FLUSH_AFTER)
    }

    /// The pending values to write, all of them or the `most` that waited longest (they stay
    /// pending until [`Self::flushed`]).
    pub(super) fn pending(&self, most: Option<usize>) -> Vec<(String, Newest)> {
        let state = self.lock();
        let mut rows: Vec<(&String, &Newest)> = state.pending.iter().collect();
        if let Some(most) = most.filter(|&m| m < rows.len()) {
            rows.select_nth_unstable_by_key(most, |(_, n)| n.queued_at);
            rows.truncate(most);
        }
        let mut rows: Vec<_> = rows.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        // In key order, as every multi-row write: concurrent writers meet rows in one order.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        rows
    }

    /// `rows` (from [`Self::pending`]) are committed: what is still pending is only what
    /// arrived since.
    pub(super) fn flushed(&self, rows: &[(String, Newest)]) {
        let mut state = self.lock();
        state.generation += 1;
        if let Some(kept) = &mut state.rows {
            let flushed: HashMap<&str, &Newest> =
                rows.iter().map(|(id, n)| (id.as_str(), n)).collect();
            for row in Arc::make_mut(kept) {
                if let Some(n) = flushed.get(row.id.as_str()) {
                    lay_one(n, row);
                }
            }
        }
        for (id, written) in rows {
            state.known.insert(id.clone(), Stored { ts: written.ts, value: written.value });
            if state.pending.get(id) == Some(written) {
                state.pending.remove(id);
            }
        }
        state.waiting_since = state.pending.values().filter_map(|n| n.queued_at).min();
    }

    /// A write failed: nothing in memory is trusted any more (see the module documentation).
    pub(super) fn forget(&self) {
        self.lock().forget();
    }

    /// The sensors among `ids` whose rows are not known (tests).
    #[cfg(test)]
    pub(super) fn unknown<'a>(&self, ids: &[&'a str]) -> std::collections::HashSet<&'a str> {
        let state = self.lock();
        ids.iter().copied().filter(|id| !state.known.contains_key(*id)).collect()
    }
}

impl State {
    fn rows_changed(&mut self) {
        self.rows = None;
        self.generation += 1;
    }

    /// Everything but the generation, which goes on counting: a read under way is not kept.
    fn forget(&mut self) {
        let generation = self.generation + 1;
        *self = Self { generation, ..Self::default() };
    }
}

/// How [`upsert`] writes `value_since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Since {
    /// From the row: the value's time when it differs from the row's, else the row's.
    Compared,
    /// As given (`Newest::changed_at`); a NULL keeps the row's.
    Given,
}

/// Lay values that wait (from [`Behind::waiting_values`], taken before the rows were read)
/// over sensors rows, as [`upsert`] with [`Since::Given`] writes them: `rows` then hold what
/// the table will. Taken before the read, a value written meanwhile is laid over the row that
/// already holds it, which changes nothing, and one older than the row is not newer.
fn lay_over(waiting: &HashMap<String, Newest>, rows: &mut [SensorRow]) {
    if waiting.is_empty() {
        return;
    }
    for row in rows {
        if let Some(n) = waiting.get(&row.id) {
            lay_one(n, row);
        }
    }
}

/// [`lay_over`] for one row.
fn lay_one(n: &Newest, row: &mut SensorRow) {
    let at_least_as_new = |t: i64| row.last_ts.is_none_or(|last| t >= last);
    if row.last_ts.is_none() || n.ts.is_some_and(at_least_as_new) {
        row.host_id.clone_from(&n.host_id);
        row.kind.clone_from(&n.kind);
        row.alias.clone_from(&n.alias);
        row.extra.clone_from(&n.extra);
    }
    if let Some(ts) = n.ts
        && at_least_as_new(ts)
    {
        row.value_since = n.changed_at.or(row.value_since).or(row.last_ts).or(Some(ts));
        row.last_ts = Some(ts);
        row.last_value = n.value;
    }
}

/// PostgreSQL: write values that waited ([`Behind::pending`]) as [`upsert`] with
/// [`Since::Given`] would, in one statement of fixed text (prepared once per connection) and
/// a transaction of its own. Their rows are known to exist: an UPDATE costs PostgreSQL half
/// what the upsert does (a thousand rows: 5 ms against 11, most of it the conflict handling,
/// not the parsing); the rows that do not exist (none, unless one was removed behind the
/// engine's back) are inserted. The CASEs of [`upsert`] reduce to the UPDATE's WHERE for a
/// value with a time, which every pending one has.
pub(super) async fn update_pg(
    pool: &sqlx::PgPool,
    rows: &[(&str, &Newest)],
) -> Result<(), sqlx::Error> {
    let mut ids = Vec::with_capacity(rows.len());
    let mut hosts = Vec::with_capacity(rows.len());
    let mut kinds = Vec::with_capacity(rows.len());
    let mut aliases = Vec::with_capacity(rows.len());
    let mut extras = Vec::with_capacity(rows.len());
    let mut times = Vec::with_capacity(rows.len());
    let mut values = Vec::with_capacity(rows.len());
    let mut since = Vec::with_capacity(rows.len());
    for (id, n) in rows {
        ids.push(*id);
        hosts.push(n.host_id.as_str());
        kinds.push(n.kind.as_str());
        aliases.push(n.alias.as_deref());
        extras.push(n.extra.as_deref());
        times.push(n.ts);
        values.push(n.value);
        since.push(n.changed_at);
    }
    sqlx::query(
        "WITH u AS (
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                                $6::int8[], $7::float8[], $8::int8[])
             AS u(id, host_id, kind, alias, extra, ts, value, since)
         ),
         updated AS (
           UPDATE sensors SET host_id = u.host_id, kind = u.kind, alias = u.alias,
             extra = u.extra,
             value_since = COALESCE(u.since, sensors.value_since, sensors.last_ts, u.ts),
             last_value = u.value, last_ts = u.ts
           FROM u
           WHERE sensors.id = u.id AND (sensors.last_ts IS NULL OR u.ts >= sensors.last_ts)
         )
         INSERT INTO sensors (id, host_id, kind, alias, extra, last_ts, last_value, value_since)
         SELECT id, host_id, kind, alias, extra, ts, value, since FROM u
         WHERE NOT EXISTS (SELECT 1 FROM sensors WHERE sensors.id = u.id)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(ids)
    .bind(hosts)
    .bind(kinds)
    .bind(aliases)
    .bind(extras)
    .bind(times)
    .bind(values)
    .bind(since)
    .execute(pool)
    .await
    .map(|_| ())
}

/// Upsert sensors rows: `(id, newest)`, one row per sensor. The description (host, type,
/// alias, extra) follows the newest reading too: a replayed backlog must not bring back an
/// alias renamed since. With `returning`, what each row then holds.
pub(super) async fn upsert(
    tx: &mut WriteTx,
    rows: &[(&str, &Newest)],
    since: Since,
    returning: bool,
) -> Result<Vec<(String, Stored)>, sqlx::Error> {
    let value_since = match since {
        // `value_since` moves only when the newest value changes (a stuck probe is one whose
        // value stays).
        Since::Compared => {
            "WHEN sensors.last_ts IS NOT NULL
               AND excluded.last_value IS NOT DISTINCT FROM sensors.last_value
             THEN COALESCE(sensors.value_since, sensors.last_ts)
             ELSE excluded.last_ts END"
        }
        Since::Given => {
            "WHEN excluded.value_since IS NOT NULL THEN excluded.value_since
             ELSE COALESCE(sensors.value_since, sensors.last_ts, excluded.last_ts) END"
        }
    };
    let mut out = Vec::new();
    for chunk in rows.chunks(INSERT_CHUNK) {
        let stored: Vec<(String, Option<i64>, Option<f64>)> = on_conn!(tx.conn()?, |c| {
            let mut q = QueryBuilder::new(
                "INSERT INTO sensors
                   (id, host_id, kind, alias, extra, last_ts, last_value, value_since) ",
            );
            q.push_values(chunk, |mut b, (id, n)| {
                let given = match since {
                    Since::Compared => n.ts,
                    Since::Given => n.changed_at,
                };
                b.push_bind(*id)
                    .push_bind(&n.host_id)
                    .push_bind(&n.kind)
                    .push_bind(&n.alias)
                    .push_bind(&n.extra)
                    .push_bind(n.ts)
                    .push_bind(n.value)
                    .push_bind(given);
            });
            q.push(
                " ON CONFLICT (id) DO UPDATE SET
                   host_id = CASE WHEN sensors.last_ts IS NULL OR excluded.last_ts >= sensors.last_ts
                     THEN excluded.host_id ELSE sensors.host_id END,
                   kind = CASE WHEN sensors.last_ts IS NULL OR excluded.last_ts >= sensors.last_ts
                     THEN excluded.kind ELSE sensors.kind END,
                   alias = CASE WHEN sensors.last_ts IS NULL OR excluded.last_ts >= sensors.last_ts
                     THEN excluded.alias ELSE sensors.alias END,
                   extra = CASE WHEN sensors.last_ts IS NULL OR excluded.last_ts >= sensors.last_ts
                     THEN excluded.extra ELSE sensors.extra END,
                   value_since = CASE WHEN excluded.last_ts IS NULL
                     OR excluded.last_ts < COALESCE(sensors.last_ts, excluded.last_ts)
                     THEN sensors.value_since ",
            );
            q.push(value_since);
            q.push(
                ",
                   last_value = CASE WHEN excluded.last_ts IS NULL
                     OR excluded.last_ts < COALESCE(sensors.last_ts, excluded.last_ts)
                     THEN sensors.last_value ELSE excluded.last_value END,
                   last_ts = CASE WHEN excluded.last_ts IS NULL
                     OR excluded.last_ts < COALESCE(sensors.last_ts, excluded.last_ts)
                     THEN sensors.last_ts ELSE excluded.last_ts END",
            );
            if returning {
                q.push(" RETURNING id, last_ts, last_value");
                q.build_query_as().persistent(false).fetch_all(c).await
            } else {
                q.build().persistent(false).execute(c).await.map(|_| Vec::new())
            }
        })?;
        out.extend(stored.into_iter().map(|(id, ts, value)| (id, Stored { ts, value })));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(ts: i64, value: Option<f64>) -> NewReading {
        NewReading::plain("any", ts, value)
    }

    fn pending_of(b: &Behind) -> HashMap<String, (i64, Option<f64>, Option<i64>)> {
        b.pending(None)
            .into_iter()
            .map(|(id, n)| (id, (n.ts.unwrap_or(i64::MIN), n.value, n.changed_at)))
            .collect()
    }

    fn row(id: &str, ts: i64, value: f64) -> SensorRow {
        SensorRow {
            id: id.into(),
            host_id: "h".into(),
            kind: "DS18B20".into(),
            alias: None,
            extra: None,
            last_ts: Some(ts),
            last_value: Some(value),
            value_since: Some(ts),
            name: None,
            weight: 1.0,
            offset_c: 0.0,
        }
    }

    /// Rows read are kept only when nothing wrote sensors rows while they were read: here a
    /// flush commits during the read, which may or may not have seen it.
    #[test]
    fn a_read_overtaken_by_a_write_is_answered_but_not_kept() {
        let b = Behind::default();
        b.written(vec![("a".to_owned(), Stored { ts: Some(1), value: Some(1.0) })]);
        b.merge([("a", "h", &reading(2, Some(2.0)))]);
        let Err(began) = b.rows() else { panic!("nothing read yet") };
        b.flushed(&b.pending(None));
        let rows = b.read(began, vec![row("a", 1, 1.0)]);
        assert_eq!((rows[0].last_ts, rows[0].last_value), (Some(2), Some(2.0)));
        let Err(began) = b.rows() else { panic!("the rows read were not kept") };

        let rows = b.read(began, vec![row("a", 2, 2.0)]);
        b.merge([("a", "h", &reading(3, Some(3.0)))]);
        let Ok(kept) = b.rows() else { panic!("kept") };
        assert_eq!((kept[0].last_ts, kept[0].value_since), (Some(3), Some(3)));
        assert_eq!(rows[0].last_ts, Some(2));
        b.flushed(&b.pending(None));
        let Ok(kept) = b.rows() else { panic!("a flush keeps them, laid over") };
        assert_eq!((kept[0].last_ts, kept[0].last_value), (Some(3), Some(3.0)));
        b.forget();
        assert!(b.rows().is_err(), "a failed write drops them");
    }

    #[test]
    fn only_known_sensors_wait_and_only_newer_readings_count() {
        let b = Behind::default();
        b.written(vec![("a".to_owned(), Stored { ts: Some(100), value: Some(20.0) })]);
        b.merge([("a", "h", &reading(90, Some(21.0))), ("z", "h", &reading(200, None))]);
        assert!(pending_of(&b).is_empty(), "older than the row, or unknown: nothing waits");
        b.merge([("a", "h", &reading(110, Some(20.0)))]);
        assert_eq!(pending_of(&b)["a"], (110, Some(20.0), None), "same value: the row's since");
    }

    /// A → B → A within what waits is a change at the last A, although the row holds A.
    #[test]
    fn a_change_within_the_pending_readings_keeps_its_instant() {
        let b = Behind::default();
        b.written(vec![("a".to_owned(), Stored { ts: Some(100), value: Some(20.0) })]);
        b.merge([("a", "h", &reading(110, Some(21.0)))]);
        assert_eq!(pending_of(&b)["a"], (110, Some(21.0), Some(110)));
        b.merge([("a", "h", &reading(120, Some(21.0)))]);
        assert_eq!(pending_of(&b)["a"], (120, Some(21.0), Some(110)), "unchanged since 110");
        b.merge([("a", "h", &reading(130, Some(20.0)))]);
        assert_eq!(pending_of(&b)["a"], (130, Some(20.0), Some(130)));
        // A failed reading is a value of its own, as in the table (IS NOT DISTINCT FROM).
        b.merge([("a", "h", &reading(140, None))]);
        assert_eq!(pending_of(&b)["a"], (140, None, Some(140)));
    }

    #[test]
    fn a_row_without_a_latest_takes_the_first_as_a_change() {
        let b = Behind::default();
        b.written(vec![("a".to_owned(), Stored { ts: None, value: None })]);
        b.merge([("a", "h", &reading(10, None))]);
        assert_eq!(pending_of(&b)["a"], (10, None, Some(10)));
    }

    #[test]
    fn flushed_values_stop_waiting_and_newer_ones_go_on() {
        let b = Behind::default();
        b.written(vec![
            ("a".to_owned(), Stored { ts: Some(1), value: Some(1.0) }),
            ("b".to_owned(), Stored { ts: Some(1), value: Some(1.0) }),
        ]);
        b.merge([("a", "h", &reading(2, Some(2.0))), ("b", "h", &reading(2, Some(2.0)))]);
        assert!(!b.due(), "just committed");
        let taken = b.pending(None);
        // A reading of b arrives while the others are written.
        b.merge([("b", "h", &reading(3, Some(2.0)))]);
        b.flushed(&taken);
        assert_eq!(pending_of(&b).keys().collect::<Vec<_>>(), ["b"]);
        assert_eq!(pending_of(&b)["b"], (3, Some(2.0), Some(2)), "its change is still unwritten");
        b.forget();
        assert!(pending_of(&b).is_empty());
        assert_eq!(b.unknown(&["a", "b"]).len(), 2, "after a failure every row is written again");
    }

    /// A slice is the values that waited longest, in key order; a value updated while it
    /// waits keeps its turn, so a sensor that reports all the time is written in its turn
    /// and no other waits for ever behind it.
    #[test]
    fn a_slice_takes_the_values_that_waited_longest() {
        let b = Behind::default();
        let known = Stored { ts: Some(1), value: Some(1.0) };
        b.written(["a", "b", "c"].map(|id| (id.to_owned(), known)).to_vec());
        let second = reading(2, Some(2.0));
        b.merge(["a", "b", "c"].map(|id| (id, "h", &second)));
        // Queued c first, then a, then b (set here: two merges may share an instant).
        let base = Instant::now();
        {
            let mut state = b.lock();
            for (id, after) in [("c", 0), ("a", 1), ("b", 2)] {
                let n = state.pending.get_mut(id).expect("pending");
                n.queued_at = Some(base + Duration::from_millis(after));
            }
            state.waiting_since = Some(base);
        }
        let ids =
            |rows: &[(String, Newest)]| rows.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
        let taken = b.pending(Some(2));
        assert_eq!(ids(&taken), ["a", "c"]);
        // c reports again while the slice is written: its newer value keeps its turn.
        b.merge([("c", "h", &reading(3, Some(3.0)))]);
        b.flushed(&taken);
        assert_eq!(b.lock().waiting_since, Some(base), "c still waits, since it first did");
        let taken = b.pending(Some(1));
        assert_eq!(ids(&taken), ["c"]);
        assert_eq!(taken[0].1.ts, Some(3));
        b.flushed(&taken);
        assert_eq!(b.lock().waiting_since, Some(base + Duration::from_millis(2)), "then b");
        assert_eq!(ids(&b.pending(Some(5))), ["b"], "a slice larger than what waits takes it all");
        b.flushed(&b.pending(None));
        assert!(!b.waiting());
    }
}
