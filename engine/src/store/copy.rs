//! `hearth-engine migrate-store`: copy a whole store between two databases of either backend.
//!
//! Both sides are opened with [`Store::open`], so both are migrated to this engine's version
//! (a newer one is refused as at start) and hold the same tables and columns ([`TABLES`]).
//! Each table is read in batches in the order of its primary key (keyset pagination: the next
//! batch starts after the last key, so a batch costs the same at the end of a year of
//! readings as at its start), and each batch is written to the target in one transaction of
//! multi-row upserts on the primary key. Identity columns keep their values. A copy stopped
//! anywhere (power cut, Ctrl-C, a server gone) is resumed by running the command again: the
//! batches already committed are written again over themselves, nothing is duplicated.
//!
//! Which target is taken (never two houses' readings merged by accident): one without readings,
//! or one whose readings are an earlier copy of the source's. A copy writes each sensor's
//! readings in the order of their time, so an interrupted one holds, for every sensor it
//! reached, the source's readings of that sensor up to some time. Anything else is refused.

use std::io::Write;
use std::str::FromStr;
use std::time::Instant;

use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{QueryBuilder, Row};

use super::Store;
use super::db::{Backend, Pool, WriteTx, on_conn, on_pool, redact_url};
use super::encoding::RawValue;

/// The type of a column, as the engine binds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Int,
    Float,
    /// BOOLEAN on PostgreSQL, 0/1 on SQLite.
    Bool,
    /// A raw reading's value: stored in the backend's own form (`encoding.rs`), copied as the
    /// value it stands for (read through a view that decodes it, `Table::read_from`).
    Reading,
}

/// One table of the schema: its columns (the primary key's first, in its order).
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) name: &'static str,
    key: usize,
    columns: &'static [(&'static str, Ty)],
    /// Its `id` is an identity column (AUTOINCREMENT on SQLite).
    identity: bool,
    /// What its rows are read from: the table itself, or a view of it with the same columns
    /// that gives stored forms back as the values they stand for.
    read_from: &'static str,
}

impl Table {
    /// The same table, its rows read through `view` (same columns, same key order).
    const fn read_through(self, view: &'static str) -> Table {
        Table { read_from: view, ..self }
    }

    pub(crate) fn column_names(&self) -> impl Iterator<Item = &'static str> {
        self.columns.iter().map(|(name, _)| *name)
    }
}

use Ty::{Bool, Float, Int, Reading, Text};

const fn table(
    name: &'static str,
    key: usize,
    columns: &'static [(&'static str, Ty)],
    identity: bool,
) -> Table {
    Table { name, key, columns, identity, read_from: name }
}

/// Every table of the schema but `_sqlx_migrations` (each side has its own) and
/// `storage_probe` (scratch of the recovery probe). A test compares this with the schema, so a
/// table or column added by a migration and not here fails it.
pub(crate) const TABLES: &[Table] = &[
    table("settings", 1, &[("key", Text), ("value", Text)], false),
    table("zones", 1, &[("id", Text), ("name", Text), ("position", Int), ("spec", Text)], false),
    table("plants", 1, &[("id", Text), ("name", Text), ("spec", Text)], false),
    table("rules", 1, &[("id", Int), ("body", Text), ("created", Int), ("zone_id", Text)], true),
    table(
        "overrides",
        1,
        &[
            ("id", Int),
            ("body", Text),
            ("start_ms", Int),
            ("end_ms", Int),
            ("created", Int),
            ("zone_id", Text),
        ],
        true,
    ),
    table(
        "sensors",
        1,
        &[
            ("id", Text),
            ("host_id", Text),
            ("kind", Text),
            ("alias", Text),
            ("extra", Text),
            ("last_ts", Int),
            ("last_value", Float),
            ("name", Text),
            ("weight", Float),
            ("offset_c", Float),
            ("value_since", Int),
        ],
        false,
    ),
    table(
        "relays",
        2,
        &[
            ("host_id", Text),
            ("output_id", Text),
            ("name", Text),
            ("function_hint", Text),
            ("function", Text),
            ("state", Text),
            ("updated", Int),
            ("status", Text),
            ("command_error", Text),
        ],
        false,
    ),
    table("relay_fallback", 2, &[("host_id", Text), ("output_id", Text), ("program", Text)], false),
    table(
        "agents",
        2,
        &[
            ("host_id", Text),
            ("kind", Text),
            ("url", Text),
            ("last_seen", Int),
            ("clock_offset_ms", Int),
            ("misdated", Int),
            ("misdated_at", Int),
            ("backend", Text),
            ("unreachable_since", Int),
            ("contact_error", Text),
            ("key_role", Text),
        ],
        false,
    ),
    table(
        "agent_settings",
        1,
        &[
            ("host_id", Text),
            ("revision", Int),
            ("desired", Text),
            ("set_at", Int),
            ("set_by", Text),
        ],
        false,
    ),
    table(
        "agent_applied",
        2,
        &[
            ("host_id", Text),
            ("kind", Text),
            ("revision", Int),
            ("in_force", Text),
            ("refused", Text),
            ("local", Text),
            ("at", Int),
        ],
        false,
    ),
    table(
        "agent_commands",
        1,
        &[
            ("id", Int),
            ("host_id", Text),
            ("kind", Text),
            ("command", Text),
            ("asked_by", Text),
            ("asked_at", Int),
            ("state", Text),
            ("updated_at", Int),
            ("message", Text),
            ("result", Text),
        ],
        true,
    ),
    // Keys first: the rows below name their sensor by it, and a copy keeps them.
    table("sensor_keys", 1, &[("key", Int), ("sensor_id", Text)], false),
    // Read decoded (migration 0018), with the readings of `reading_hot` (0019), and written
    // in the target's own form to its `reading_rows`: the target engine's first write moves
    // those its rollups have not counted yet, as after any restart (`rollups::resume`).
    table("reading_rows", 2, &[("sensor", Int), ("ts", Int), ("value", Reading)], false)
        .read_through("reading_values"),
    table("minute_rows", 2, ROLLUP, false),
    table("hour_rows", 2, ROLLUP, false),
    table(
        "decisions",
        1,
        &[
            ("id", Int),
            ("ts", Int),
            ("heat", Bool),
            ("cool", Bool),
            ("effective_temp", Float),
            ("setpoint", Float),
            ("reason_code", Text),
            ("reason", Text),
            ("detail", Text),
            ("zone_id", Text),
        ],
        true,
    ),
    table(
        "runs",
        1,
        &[
            ("id", Int),
            ("system", Text),
            ("start", Int),
            ("end", Int),
            ("start_temp", Float),
            ("end_temp", Float),
        ],
        true,
    ),
];

/// Both backends store the rollups in the same units (`encoding::ROLLUP_SCALE`).
const ROLLUP: &[(&str, Ty)] =
    &[("sensor", Int), ("bucket", Int), ("n", Int), ("sum", Float), ("min", Float), ("max", Float)];

/// One value of a row, typed by its column (NULL included).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(Option<bool>),
    Reading(Option<f64>),
}

/// Rows per transaction on the target.
pub(crate) const BATCH_ROWS: usize = 10_000;

/// Bound values per INSERT statement: under SQLite's 32766 (PostgreSQL allows 65535).
const MAX_BINDS: usize = 30_000;

/// How a copy runs.
#[derive(Debug, Clone)]
pub(crate) struct CopyOptions {
    pub(crate) batch_rows: usize,
    /// Fail after this many batches were committed, as a copy cut short does (tests).
    pub(crate) fail_after_batches: Option<u64>,
    /// Print a progress line per table on stderr.
    pub(crate) progress: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self { batch_rows: BATCH_ROWS, fail_after_batches: None, progress: true }
    }
}

/// The rows of each table on both sides after a copy.
#[derive(Debug, Clone)]
pub(crate) struct Verification {
    /// (table, rows in the source, rows in the target).
    pub(crate) counts: Vec<(&'static str, i64, i64)>,
    /// Rows copied, and in how long.
    pub(crate) rows: u64,
    pub(crate) elapsed: std::time::Duration,
}

impl Verification {
    pub(crate) fn all_equal(&self) -> bool {
        self.counts.iter().all(|(_, s, t)| s == t)
    }
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{:<16} {:>12} {:>12}", "table", "source", "target")?;
        for (table, s, t) in &self.counts {
            let mark = if s == t { "" } else { "  DIFFERS" };
            writeln!(f, "{table:<16} {s:>12} {t:>12}{mark}")?;
        }
        let secs = self.elapsed.as_secs_f64();
        write!(
            f,
            "{} rows copied in {secs:.1} s ({:.0} rows/s)",
            self.rows,
            self.rows as f64 / secs.max(1e-9)
        )
    }
}

/// Copy everything of the store at `from` into the store at `to`, then count both sides.
pub(crate) async fn migrate(
    from: &str,
    to: &str,
    options: &CopyOptions,
) -> anyhow::Result<Verification> {
    anyhow::ensure!(from != to, "the source and the target are the same database");
    if Backend::of_url(from) == Backend::Sqlite {
        // Opening would create it: a mistyped path must not "copy" an empty house.
        let file = SqliteConnectOptions::from_str(from)
            .map_err(|e| anyhow::anyhow!("bad source URL {}: {e}", redact_url(from)))?
            .get_filename()
            .to_path_buf();
        anyhow::ensure!(file.is_file(), "the source {} does not exist", redact_url(from));
    }
    let source = open(from, "source").await?;
    let target = open(to, "target").await?;
    let result = copy(&source.pool(), &target.pool(), to, options).await;
    source.close().await;
    target.close().await;
    result
}

async fn open(url: &str, side: &str) -> anyhow::Result<Store> {
    let store = Store::open(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the {side} {}: {e:#}", redact_url(url)))?;
    if let super::StorageHealth::Degraded { reason, .. } = store.health() {
        anyhow::bail!("the {side} {} cannot be written: {reason}", redact_url(url));
    }
    Ok(store)
}

async fn copy(
    source: &Pool,
    target: &Pool,
    to: &str,
    options: &CopyOptions,
) -> anyhow::Result<Verification> {
    check_target(source, target, to).await?;
    let started = Instant::now();
    let mut batches = 0;
    let mut rows = 0;
    for table in TABLES {
        rows += copy_table(source, target, table, options, &mut batches).await?;
    }
    if let Pool::Postgres(p) = target {
        // Rows came with their ids: the next id the target hands out must follow them.
        for table in TABLES.iter().filter(|t| t.identity) {
            // The names are this file's constants.
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{0}', 'id'), MAX(id)) FROM {0}
                 HAVING MAX(id) IS NOT NULL",
                table.name
            )))
            .execute(p)
            .await?;
        }
    }
    // On SQLite an AUTOINCREMENT table's sqlite_sequence follows the largest id inserted.
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push((
            table.name,
            count(source, table.read_from).await?,
            count(target, table.read_from).await?,
        ));
    }
    Ok(Verification { counts, rows, elapsed: started.elapsed() })
}

async fn count(pool: &Pool, table: &str) -> Result<i64, sqlx::Error> {
    // `table` is one of [`TABLES`]' names or views (the rows a table's copy reads).
    let sql = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM {table}");
    on_pool!(pool, |p| sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_one(p)
        .await)
}

/// Refuse a target that holds readings other than an earlier copy of the source's.
async fn check_target(source: &Pool, target: &Pool, to: &str) -> anyhow::Result<()> {
    let ends: Vec<(String, i64, i64, i64)> = on_pool!(target, |p| sqlx::query_as(
        "SELECT sensor_id, CAST(COUNT(*) AS BIGINT), MIN(ts), MAX(ts) FROM readings
         GROUP BY sensor_id"
    )
    .fetch_all(p)
    .await)?;
    for (sensor, n, first, last) in ends {
        let in_source: (i64, Option<i64>) = on_pool!(source, |p| sqlx::query_as(
            "SELECT CAST(COUNT(*) AS BIGINT), MIN(ts) FROM readings
             WHERE sensor_id = $1 AND ts <= $2"
        )
        .bind(&sensor)
        .bind(last)
        .fetch_one(p)
        .await)?;
        let same_ends = in_source == (n, Some(first))
            && reading(source, &sensor, first).await? == reading(target, &sensor, first).await?
            && reading(source, &sensor, last).await? == reading(target, &sensor, last).await?;
        anyhow::ensure!(
            same_ends,
            "the target {} already holds readings that are not a copy of the source's \
             (sensor {sensor:?}: {n} readings up to {last} ms): refusing to mix two \
             databases' readings. Give an empty database as the target.",
            redact_url(to)
        );
    }
    Ok(())
}

async fn reading(pool: &Pool, sensor: &str, ts: i64) -> Result<Option<Option<f64>>, sqlx::Error> {
    on_pool!(pool, |p| sqlx::query_scalar(
        "SELECT value FROM readings WHERE sensor_id = $1 AND ts = $2"
    )
    .bind(sensor)
    .bind(ts)
    .fetch_optional(p)
    .await)
}

/// Copy one table, batch by batch; the rows copied.
async fn copy_table(
    source: &Pool,
    target: &Pool,
    table: &Table,
    options: &CopyOptions,
    batches: &mut u64,
) -> anyhow::Result<u64> {
    let total = count(source, table.read_from).await?;
    let started = Instant::now();
    let mut copied: u64 = 0;
    let mut after: Option<Vec<Value>> = None;
    loop {
        let rows = read_batch(source, table, after.as_deref(), options.batch_rows).await?;
        let Some(last) = rows.last() else { break };
        after = Some(last[..table.key].to_vec());
        write_batch(target, table, &rows).await?;
        copied += rows.len() as u64;
        *batches += 1;
        if options.progress {
            progress(table.name, copied, total, started);
        }
        if options.fail_after_batches.is_some_and(|n| *batches >= n) {
            anyhow::bail!("stopped after {batches} batches, as asked");
        }
        if rows.len() < options.batch_rows {
            break;
        }
    }
    if options.progress {
        if copied == 0 {
            progress(table.name, copied, total, started);
        }
        eprintln!();
    }
    Ok(copied)
}

/// `\r<table> [####      ] copied/total rows, rows/s` on stderr, overwritten by the next one.
fn progress(table: &str, copied: u64, total: i64, started: Instant) {
    const WIDTH: u64 = 20;
    let total = u64::try_from(total).unwrap_or(0).max(copied);
    let filled = (copied * WIDTH).checked_div(total).unwrap_or(WIDTH) as usize;
    let rate = copied as f64 / started.elapsed().as_secs_f64().max(1e-3);
    let bar = format!("{}{}", "#".repeat(filled), " ".repeat(WIDTH as usize - filled));
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "\r{table:<16} [{bar}] {copied}/{total} rows, {rate:.0} rows/s");
    let _ = err.flush();
}

fn quoted(columns: impl Iterator<Item = &'static str>) -> String {
    columns.map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ")
}

/// The rows of `table` after the key `after` (from the first without it), in key order.
pub(crate) async fn read_batch(
    pool: &Pool,
    table: &Table,
    after: Option<&[Value]>,
    limit: usize,
) -> Result<Vec<Vec<Value>>, sqlx::Error> {
    let key = quoted(table.column_names().take(table.key));
    on_pool!(pool, |p| {
        let mut q = QueryBuilder::new(format!(
            "SELECT {} FROM {} ",
            quoted(table.column_names()),
            table.read_from
        ));
        if let Some(after) = after {
            // A row value: `(a, b) > ($1, $2)` is the next key in the index's order.
            q.push(format!("WHERE ({key}) > ("));
            let mut values = q.separated(", ");
            for v in after {
                push_value(&mut values, v);
            }
            q.push(") ");
        }
        q.push(format!("ORDER BY {key} LIMIT "));
        q.push_bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = q.build().fetch_all(p).await?;
        rows.iter()
            .map(|row| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, ty))| {
                        Ok(match ty {
                            Text => Value::Text(row.try_get(i)?),
                            Int => Value::Int(row.try_get(i)?),
                            Float => Value::Float(row.try_get(i)?),
                            Bool => Value::Bool(row.try_get(i)?),
                            Reading => Value::Reading(row.try_get(i)?),
                        })
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
            })
            .collect::<Result<Vec<_>, _>>()
    })
}

/// Upsert `rows` into `table` in one transaction: a row already there (an earlier run's, or
/// the default house a new database is made with) takes the source's values.
async fn write_batch(target: &Pool, table: &Table, rows: &[Vec<Value>]) -> anyhow::Result<()> {
    let columns = quoted(table.column_names());
    let key = quoted(table.column_names().take(table.key));
    let update = table
        .column_names()
        .skip(table.key)
        .map(|c| format!("\"{c}\" = excluded.\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let per_statement = (MAX_BINDS / table.columns.len()).max(1);
    let mut tx = WriteTx::begin(target).await?;
    for chunk in rows.chunks(per_statement) {
        on_conn!(tx.conn()?, |c| {
            let mut q = QueryBuilder::new(format!("INSERT INTO {} ({columns}) ", table.name));
            q.push_values(chunk, |mut b, row| {
                for v in row {
                    push_value(&mut b, v);
                }
            });
            q.push(format!(" ON CONFLICT ({key}) DO UPDATE SET {update}"));
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    tx.commit().await?;
    Ok(())
}

/// Bind `v` as the next of a list of values, in its column's type.
fn push_value<DB: sqlx::Database, Sep: std::fmt::Display>(
    list: &mut Separated<'_, DB, Sep>,
    v: &Value,
) where
    Option<String>: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    Option<f64>: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    Option<bool>: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    RawValue: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
{
    match v.clone() {
        Value::Text(v) => list.push_bind(v),
        Value::Int(v) => list.push_bind(v),
        Value::Float(v) => list.push_bind(v),
        Value::Bool(v) => list.push_bind(v),
        Value::Reading(v) => list.push_bind(RawValue(v)),
    };
}

/// Which backend a URL names (for the command's messages).
pub(crate) fn describe(url: &str) -> String {
    format!("{} {}", Backend::of_url(url), redact_url(url))
}

#[cfg(test)]
mod tests {
    use hearth_proto::agents::{AgentKind, KeyRole};
    use hearth_proto::control::System;
    use hearth_proto::manage::{AgentSettings, CommandKind};
    use hearth_proto::relays::RelayState;
    use hearth_proto::schedules::{NewOverride, NewRule, When};

    use super::*;
    use crate::control::{Equipment, Inputs, Learned, Running, Settings, decide};
    use crate::store::testing::{Kept, new_database};
    use crate::store::{NewReading, NewReport, Registration, from_millis};
    use crate::zones::ZoneId;

    /// 2026-12-02 00:00 UTC.
    const T0: i64 = 1_796_169_600_000;
    const MINUTE: i64 = 60_000;
    /// Twelve hours of one-minute readings: every rollup has rows.
    const MINUTES: i64 = 12 * 60;

    fn quiet(batch_rows: usize) -> CopyOptions {
        CopyOptions { batch_rows, fail_after_batches: None, progress: false }
    }

    /// `MINUTES` readings of two sensors from host `host`, with a failed reading now and then.
    async fn readings(store: &Store, host: &str, offset: f64) -> anyhow::Result<()> {
        let reports: Vec<NewReport> = (0..MINUTES)
            .map(|i| {
                let ts = T0 + i * MINUTE;
                let a = 19.0 + offset + (i as f64 / 37.0).sin();
                let b = (i % 50 != 7).then(|| 17.3 + offset + i as f64 / 1000.0);
                NewReport {
                    host_id: host.into(),
                    key_role: KeyRole::Sensor,
                    received: ts,
                    clock_offset_ms: Some(120),
                    misdated: 0,
                    readings: vec![
                        NewReading::plain("28-a", ts, Some(a)),
                        NewReading::plain("28-b", ts, b),
                    ],
                }
            })
            .collect();
        store.write_reports(&reports).await?;
        Ok(())
    }

    fn rule(name: &str) -> NewRule {
        NewRule {
            name: name.into(),
            enabled: true,
            when: When::Cron { expr: "0 7 * * *".into(), duration_min: 90 },
            heat_c: Some(21.5),
            cool_c: None,
            sensors: vec![],
            zone: None,
        }
    }

    /// A house with something in every table, written through the store's own API.
    async fn fill(store: &Store) -> anyhow::Result<()> {
        readings(store, "pi", 0.0).await?;
        let named = hearth_proto::sensors::SensorSettings {
            name: Some("living room".into()),
            weight: 1.5,
            offset_c: -0.25,
        };
        store.set_sensor_settings("28-a", &named).await?;
        store.save_settings(&Settings::default()).await?;
        let rule = rule("mornings");
        for _ in 0..3 {
            store.insert_rule(&rule, T0).await?;
        }
        store.delete_rule(2).await?;
        let hold: NewOverride = serde_json::from_value(
            serde_json::json!({"heat_c": 22.0, "hold": {"type": "for", "minutes": 120}}),
        )?;
        let start = from_millis(T0 + 3 * 3_600_000);
        store.insert_override(&hold, start, Some(from_millis(T0 + 5 * 3_600_000)), start).await?;
        let house = store.stored_house().await?;
        let (Some(zone), Some(plant)) = (house.zones.first(), house.plants.first()) else {
            anyhow::bail!("no default house");
        };
        let mut plant = plant.clone();
        plant.name = "Boiler".into();
        store.save_plant(&plant).await?;
        let zone = crate::store::zones::StoredZone { name: "Ground floor".into(), ..zone.clone() };
        store.save_zone(&zone, 0, &[], None).await?;
        let outputs = [
            crate::store::tests::output("heat", RelayState::On)?,
            crate::store::tests::output("valve", RelayState::Off)?,
        ];
        store
            .register_relays(&Registration {
                host_id: "boiler",
                url: "http://boiler:8081",
                backend: Some("simulated"),
                outputs: &outputs,
                now: T0,
                clock_offset_ms: Some(-40),
                key_role: KeyRole::Relay,
            })
            .await?;
        store
            .set_relay_fallback("boiler", "heat", Some(&hearth_proto::fallback::OutputProgram::On))
            .await?;
        store.set_desired_settings("pi", &AgentSettings::default(), "admin", T0).await?;
        let applied = serde_json::from_value(
            serde_json::json!({"agent": "sensor", "revision": 1, "in_force": {}}),
        )?;
        store.set_applied_settings("pi", &applied, T0 + 1).await?;
        store.create_command("pi", AgentKind::Sensor, CommandKind::Identify, "admin", T0).await?;
        let settings = Settings::default();
        let learned = Learned::default();
        for i in 0..5 {
            let mut d = decide(&Inputs {
                now: from_millis(T0 + i * MINUTE),
                settings: &settings,
                segments: &[],
                sensors: &[],
                stale_after: jiff::SignedDuration::from_secs(120),
                equipment: Equipment { heat: Running::OFF_UNKNOWN, cool: Running::OFF_UNKNOWN },
                learned: &learned,
                runs: &[],
            });
            d.heat = i % 2 == 0;
            d.effective_temp_c = Some(19.0 + i as f64 / 3.0);
            store.record_decision(&ZoneId::default_zone(), &d).await?;
        }
        store.start_run(System::Heat, from_millis(T0), Some(18.5)).await?;
        store.end_run(System::Heat, from_millis(T0 + 20 * MINUTE), Some(20.125)).await?;
        store.start_run(System::Heat, from_millis(T0 + 60 * MINUTE), None).await?;
        Ok(())
    }

    /// Every row of every table, sorted (the backends order text keys each their own way).
    async fn everything(pool: &Pool) -> anyhow::Result<Vec<(&'static str, Vec<Vec<Value>>)>> {
        let mut all = Vec::new();
        for table in TABLES {
            let mut rows = read_batch(pool, table, None, usize::MAX / 2).await?;
            rows.sort_by_cached_key(|r| format!("{r:?}"));
            all.push((table.name, rows));
        }
        Ok(all)
    }

    async fn opened(url: &str) -> anyhow::Result<Store> {
        Store::open(url).await
    }

    async fn new_store(backend: Backend) -> anyhow::Result<(String, Store, Kept)> {
        let (url, kept) = new_database(backend)?;
        let store = opened(&url).await?;
        Ok((url, store, kept))
    }

    /// A SQLite store [`fill`]ed, and a new PostgreSQL database to copy it to.
    async fn source_and_postgres() -> anyhow::Result<((String, Store, Kept), (String, Kept))> {
        let source = new_store(Backend::Sqlite).await?;
        fill(&source.1).await?;
        Ok((source, new_database(Backend::Postgres)?))
    }

    /// Every table's columns, but `reading_hot`'s: its rows are copied with `reading_rows`'
    /// (read through `reading_values`), and its columns are theirs.
    #[tokio::test]
    async fn every_table_of_the_schema_is_copied() -> anyhow::Result<()> {
        use std::collections::BTreeSet;
        let (_, store, _kept) = new_store(Backend::Sqlite).await?;
        let schema: BTreeSet<(String, String)> = sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
               AND m.name NOT IN ('_sqlx_migrations', 'storage_probe', 'reading_hot')",
        )
        .fetch_all(&store.test_sqlite_pool()?)
        .await?
        .into_iter()
        .collect();
        let copied: BTreeSet<(String, String)> = TABLES
            .iter()
            .flat_map(|t| t.column_names().map(|c| (t.name.to_owned(), c.to_owned())))
            .collect();
        assert_eq!(
            schema.symmetric_difference(&copied).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "columns of the schema not copied, or copied columns not in the schema"
        );
        Ok(())
    }

    /// SQLite → PostgreSQL → SQLite: every row of every table the same on all three, the
    /// charts the same, and each copy hands out ids after the ones it received.
    #[tokio::test]
    async fn a_round_trip_through_postgres_changes_nothing() -> anyhow::Result<()> {
        let ((a_url, a, _ka), (b_url, _kb)) = source_and_postgres().await?;
        let (c_url, _kc) = new_database(Backend::Sqlite)?;
        // Small batches: every table of more than one batch is paged through.
        let there = migrate(&a_url, &b_url, &quiet(97)).await?;
        let back = migrate(&b_url, &c_url, &quiet(1000)).await?;
        for v in [&there, &back] {
            assert!(v.all_equal(), "{v}");
        }
        let b = opened(&b_url).await?;
        let c = opened(&c_url).await?;
        let original = everything(&a.pool()).await?;
        for (table, rows) in &original {
            assert!(!rows.is_empty(), "the test fills no row of {table}");
        }
        assert_eq!(everything(&b.pool()).await?, original);
        assert_eq!(everything(&c.pool()).await?, original);

        let (from, to) = (T0, T0 + MINUTES * MINUTE);
        for points in [500, 5] {
            let series = a.series("28-b", from, to, points).await?;
            assert!(series.bucket_ms > 0, "{points} points come from a rollup");
            for other in [&b, &c] {
                // The same rows give the same chart; only a mean may differ in its last bits,
                // as PostgreSQL adds a bucket's sums in no fixed order.
                let mut got = other.series("28-b", from, to, points).await?;
                assert_eq!(got.points.len(), series.points.len());
                for (g, want) in got.points.iter_mut().zip(&series.points) {
                    if let (Some(g), Some(w)) = (&mut g.mean, want.mean)
                        && (*g - w).abs() <= w.abs() * 1e-12
                    {
                        *g = w;
                    }
                }
                assert_eq!(got, series, "{:?}", other.backend());
            }
        }

        let rule = rule("later");
        // SQLite's AUTOINCREMENT counter follows the ids inserted (a deleted last id is never
        // handed out again).
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM sqlite_sequence WHERE name = 'rules'")
            .fetch_one(&c.test_sqlite_pool()?)
            .await?;
        assert_eq!(seq, 3);
        for store in [&a, &b, &c] {
            assert_eq!(store.insert_rule(&rule, T0).await?, 4, "{:?}", store.backend());
        }
        Ok(())
    }

    #[tokio::test]
    async fn an_interrupted_copy_is_finished_by_running_it_again() -> anyhow::Result<()> {
        let ((a_url, a, _ka), (b_url, _kb)) = source_and_postgres().await?;
        // Cut short inside the readings (the tables before them are a batch each).
        let cut = CopyOptions { fail_after_batches: Some(TABLES.len() as u64 + 3), ..quiet(50) };
        let err = migrate(&a_url, &b_url, &cut).await.err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("stopped after")));
        let b = opened(&b_url).await?;
        let partial = count(&b.pool(), "readings").await?;
        assert!(0 < partial && partial < 2 * MINUTES, "{partial}");

        let done = migrate(&a_url, &b_url, &quiet(50)).await?;
        assert!(done.all_equal(), "{done}");
        assert_eq!(everything(&b.pool()).await?, everything(&a.pool()).await?);
        Ok(())
    }

    /// Another house's readings in the target: refused, and the target is left as it was.
    #[tokio::test]
    async fn a_target_with_another_houses_readings_is_refused() -> anyhow::Result<()> {
        let (a_url, a, _ka) = new_store(Backend::Sqlite).await?;
        fill(&a).await?;
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (b_url, b, _kb) = new_store(backend).await?;
            // The same sensor ids and times, other values.
            readings(&b, "other-pi", 0.5).await?;
            let before = everything(&b.pool()).await?;
            let err = migrate(&a_url, &b_url, &quiet(100)).await.err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains("not a copy of the source")),
                "{err:?}"
            );
            let err = err.unwrap_or_default();
            assert!(!err.contains(hearth_harness::postgres::PASSWORD), "{err}");
            assert_eq!(everything(&b.pool()).await?, before);
        }
        Ok(())
    }

    /// A mistyped source path is not opened (which would create it) as an empty house.
    #[tokio::test]
    async fn a_missing_source_file_is_refused() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let missing = dir.path().join("typo.db");
        let (b_url, _kb) = new_database(Backend::Sqlite)?;
        let err = migrate(&format!("sqlite://{}", missing.display()), &b_url, &quiet(100))
            .await
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("does not exist")));
        assert!(!missing.exists());
        Ok(())
    }
}
