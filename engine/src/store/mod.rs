//! The database: the only module that speaks SQL (invariant: only the engine touches the
//! database, and inside the engine only this module).
//!
//! SQLite is the embedded default: one file, WAL, `synchronous = FULL`, so a commit is on the
//! disk when it returns and an acknowledgement means durable (the group commit in
//! `ingest.rs` pays one fsync for many requests). Queries are plain `query()/query_as()` so
//! the PostgreSQL backend can follow with the same statements tested against both.
//!
//! Storage faults (a full disk, a filesystem turned read-only, I/O errors) are a state of the
//! store, not an accident of one request: every failing query that reveals one turns the
//! store degraded ([`health`]), which drops every connection (a connection whose commit
//! failed may sit in a transaction SQLite already rolled back, or hold the WAL write lock) and
//! starts the recovery probe; ingest refuses to acknowledge while degraded. What control
//! needs is [`held`] in memory as well, so decisions go on through the fault.

mod acked;
mod changes;
pub(crate) mod copy;
pub(crate) mod db;
mod format;
mod health;
mod held;
pub(crate) mod manage;
mod schedules;
mod window;
pub(crate) mod zones;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use hearth_proto::Timestamp;
use hearth_proto::agents::{AgentKind, KeyRole};
use hearth_proto::relays::{OutputStatus, RelayFunction, RelayState};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{QueryBuilder, Row};
use tokio::sync::watch;

use crate::control::{Decision, Settings};
use crate::zones::ZoneId;

use db::{Backend, Options, Pool, WriteTx, on_conn, on_pool};
pub(crate) use health::{Recovery, StorageHealth};
pub(crate) use schedules::Schedules;
mod encoding;
mod history;
mod keys;
pub(crate) use history::Series;
mod latest;
mod learned;
mod retention;
mod rollups;
pub(crate) use retention::{Policy, Table};

/// Rows per multi-row INSERT: at most 8 bound values each, under SQLite's 32766 variables
/// (PostgreSQL's limit is 65535).
const INSERT_CHUNK: usize = 1000;

/// One reading ready to be stored.
#[derive(Debug, Clone)]
pub(crate) struct NewReading {
    pub(crate) sensor_id: String,
    pub(crate) kind: String,
    pub(crate) alias: Option<String>,
    pub(crate) extra: Option<String>,
    pub(crate) ts: i64,
    pub(crate) value: Option<f64>,
    /// The time it competes to be the sensor's latest at (never after its receipt); None: it
    /// never becomes the latest (see `clock.rs`).
    pub(crate) latest_at: Option<i64>,
    /// Stored as received although its time could not be placed (counted against the agent).
    pub(crate) misdated: bool,
}

#[cfg(test)]
impl NewReading {
    /// A DS18B20 reading taken live at `ts` (tests).
    pub(crate) fn plain(sensor: &str, ts: i64, value: Option<f64>) -> Self {
        Self {
            sensor_id: sensor.into(),
            kind: "DS18B20".into(),
            alias: None,
            extra: None,
            ts,
            value,
            latest_at: Some(ts),
            misdated: false,
        }
    }
}

/// One accepted sensor update, ready to be stored.
#[derive(Debug, Clone)]
pub(crate) struct NewReport {
    pub(crate) host_id: String,
    /// What the key the report was authenticated with allows.
    pub(crate) key_role: KeyRole,
    pub(crate) received: i64,
    pub(crate) clock_offset_ms: Option<i64>,
    /// Readings of it stored as received without a trustworthy time.
    pub(crate) misdated: u64,
    pub(crate) readings: Vec<NewReading>,
}

/// Every [`SensorRow`], in the order of their ids.
const SENSOR_ROWS: &str = "SELECT id, host_id, kind, alias, extra, last_ts, last_value, \
     value_since, name, weight, offset_c FROM sensors ORDER BY id";

/// A sensor row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SensorRow {
    pub(crate) id: String,
    pub(crate) host_id: String,
    pub(crate) kind: String,
    pub(crate) alias: Option<String>,
    pub(crate) extra: Option<String>,
    /// When the newest reading was taken (or received, when stamped later).
    pub(crate) last_ts: Option<i64>,
    /// As measured (not calibrated).
    pub(crate) last_value: Option<f64>,
    /// Since when the newest value has been the same (on `last_ts`'s scale).
    pub(crate) value_since: Option<i64>,
    /// The name people gave it, if any.
    pub(crate) name: Option<String>,
    pub(crate) weight: f64,
    pub(crate) offset_c: f64,
}

/// An agent row.
#[derive(Debug, Clone)]
pub(crate) struct AgentRow {
    pub(crate) host_id: String,
    pub(crate) kind: AgentKind,
    pub(crate) url: Option<String>,
    pub(crate) last_seen: i64,
    pub(crate) clock_offset_ms: Option<i64>,
    /// Relay agents: the hardware backend as registered.
    pub(crate) backend: Option<String>,
    /// Relay agents: since when the engine's calls get no answer (Unix ms).
    pub(crate) unreachable_since: Option<i64>,
    /// Relay agents: why the engine's last call failed.
    pub(crate) contact_error: Option<String>,
    /// The role of the device key it last authenticated with (None: not since it was recorded).
    pub(crate) key_role: Option<KeyRole>,
    /// Readings stored as received without a trustworthy time, and when the last one was.
    pub(crate) misdated: i64,
    pub(crate) misdated_at: Option<i64>,
}

/// A relay agent's registration, as the store records it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Registration<'a> {
    pub(crate) host_id: &'a str,
    /// Where the engine reaches the agent (no trailing `/`).
    pub(crate) url: &'a str,
    /// The hardware backend it says it uses; None from an agent that does not say.
    pub(crate) backend: Option<&'a str>,
    pub(crate) outputs: &'a [OutputStatus],
    /// When it was received, Unix ms.
    pub(crate) now: i64,
    pub(crate) clock_offset_ms: Option<i64>,
    /// What the key it registered with allows.
    pub(crate) key_role: KeyRole,
}

/// How a call of the engine to a relay agent went, for [`Store::relay_contact`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Contact<'a> {
    /// The agent answered: done, or refused (409: it is alive and protects its equipment).
    Answered,
    /// The agent answered with another error (credential refused, hardware failing).
    Failed(&'a str),
    /// No answer: connection refused, timed out.
    NoAnswer(&'a str),
}

/// Which registration of a relay agent a call to it was sent after: taken with
/// [`Store::relay_epoch`] before the call, handed back with its answer. An answer to a call
/// sent before the agent's latest registration was stored is not recorded: a relay state is
/// never replaced by older information.
///
/// Why: a registration and the answer to a call travel on two connections, and a loaded engine
/// may handle the answer after the registration. When the agent restarted in between, the
/// answer speaks for a process that is gone (a renewal's "on") while the registration says
/// what the new one drives ("off since just now"); storing the answer over it would let the
/// engine restart a furnace inside its minimum off time. (Without a restart the answer may be
/// the newer of the two; nothing on the wire tells, and the next pass settles it either way.)
/// Counted registrations, not times: the order that matters is the engine's own (stored before
/// the call was sent, or not), and a clock can step. Discarded rather than re-read: a
/// registration makes the loop command every output again on its next pass
/// (`Controller::relays_changed`), sent after it, so the agent's word on the new epoch arrives
/// within a pass through the one path answers already take. The count lives in memory only: no
/// call outlives the engine that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RelayEpoch(u64);

/// A relay output row, with its agent's URL, backend and reachability.
#[derive(Debug, Clone)]
pub(crate) struct RelayRow {
    pub(crate) host_id: String,
    pub(crate) output_id: String,
    pub(crate) name: String,
    pub(crate) url: Option<String>,
    pub(crate) function: Option<RelayFunction>,
    pub(crate) function_hint: Option<RelayFunction>,
    pub(crate) state: RelayState,
    pub(crate) updated: i64,
    /// The agent's last full report of the output, if any.
    pub(crate) status: Option<OutputStatus>,
    /// Why the agent refused the last command, if it did.
    pub(crate) command_error: Option<String>,
    /// The agent's hardware backend, as registered.
    pub(crate) backend: Option<String>,
    /// Since when the engine's calls to the agent get no answer (Unix ms).
    pub(crate) unreachable_since: Option<i64>,
    /// The role of the agent's device key (None: registered before roles were recorded, so
    /// its key is untyped).
    pub(crate) key_role: Option<KeyRole>,
}

impl RelayRow {
    /// The assigned function, else the agent's hint.
    pub(crate) fn effective_function(&self) -> Option<RelayFunction> {
        self.function.or(self.function_hint)
    }
}

/// Handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Opens the database for writing (the recovery probe opens it afresh with these).
    options: Options,
    /// The database file (none in memory): its filesystem is checked before a recovery counts.
    file: Option<PathBuf>,
    /// Replaced as a whole when a fault is found and when the probe recovers: every connection
    /// of the old pool is closed, which rolls back whatever it held.
    pool: std::sync::RwLock<Pool>,
    health: watch::Sender<StorageHealth>,
    held: held::Held,
    /// Held by every write of a relay agent's registration or answers, in memory and in the
    /// database together: an answer found current (see [`RelayEpoch`]) is stored whole before
    /// a registration starts, so the database never gets the two in the other order.
    relay_writes: tokio::sync::Mutex<()>,
    /// Held by every write of readings (and of the rollups written behind them): the counts
    /// in memory follow the table only when the writes come one at a time.
    writes: tokio::sync::Mutex<()>,
    /// The readings counted in memory, not yet in the rollup tables.
    rollups: rollups::Behind,
    /// The sensors' keys in the readings tables.
    keys: keys::Keys,
    /// The sensors rows known to exist, and their newest readings not yet written.
    latest: latest::Behind,
    /// PostgreSQL: each sensor's newest reading stored, to insert without a conflict check.
    appends: history::Appends,
    /// Stored settings and decisions that could not be read.
    unreadable: format::Unreadable,
    /// The readings acknowledged in the last seconds, written again after a fault.
    acked: acked::Acked,
    /// The changes confirmed in the last seconds, written again after a fault.
    changes: changes::Changes,
    /// The last recovery from a fault, since the start.
    last_recovery: std::sync::Mutex<Option<Recovery>>,
}

pub(crate) fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn from_millis(ms: i64) -> Timestamp {
    // Stored values were produced from valid Timestamps; clamp anything else rather than fail.
    Timestamp::from_millisecond(ms).unwrap_or(if ms < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

fn enum_str<T: serde::Serialize>(v: T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn str_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
}

impl Store {
    /// Open (creating if needed) the database at `url` and run the embedded migrations.
    ///
    /// A storage fault does not stop the engine: on a read-only filesystem the database is
    /// opened read-only when it can be (control then has the stored settings, schedule and
    /// relays), else not at all; either way the store starts degraded and the recovery probe
    /// opens it for writing as soon as it can. Only a configuration mistake (a bad URL, a
    /// database from another version) fails.
    pub(crate) async fn open(url: &str) -> anyhow::Result<Self> {
        let (options, file, pool, health) = match Backend::of_url(url) {
            Backend::Sqlite => open_sqlite(url).await?,
            Backend::Postgres => open_postgres(url).await?,
        };
        let inner = Arc::new(Inner {
            options,
            file,
            pool: std::sync::RwLock::new(pool),
            health: watch::Sender::new(health),
            held: held::Held::default(),
            relay_writes: tokio::sync::Mutex::new(()),
            writes: tokio::sync::Mutex::new(()),
            rollups: rollups::Behind::default(),
            keys: keys::Keys::default(),
            latest: latest::Behind::default(),
            appends: history::Appends::default(),
            unreadable: format::Unreadable::default(),
            acked: acked::Acked::default(),
            changes: changes::Changes::default(),
            last_recovery: std::sync::Mutex::new(None),
        });
        tokio::spawn(recover(Arc::downgrade(&inner)));
        Ok(Self { inner })
    }

    /// Which database the store speaks to.
    pub(crate) fn backend(&self) -> Backend {
        self.inner.options.backend()
    }

    /// The pool, for tests that write rows as another engine would have written them.
    #[cfg(test)]
    pub(crate) fn test_pool(&self) -> Pool {
        self.pool()
    }

    /// The SQLite pool, for tests of what only SQLite has (its files, its upgrades).
    #[cfg(test)]
    pub(crate) fn test_sqlite_pool(&self) -> anyhow::Result<sqlx::SqlitePool> {
        match self.pool() {
            Pool::Sqlite(p) => Ok(p),
            Pool::Postgres(_) => anyhow::bail!("this test needs a SQLite store"),
        }
    }

    /// The current pool. Cloned out, so that a query in flight keeps the pool it started on
    /// while a recovery replaces it.
    fn pool(&self) -> Pool {
        self.inner.pool.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Whether the store can store, and since when it cannot.
    pub(crate) fn health(&self) -> StorageHealth {
        self.inner.health.borrow().clone()
    }

    /// Changes of [`Self::health`].
    pub(crate) fn subscribe_health(&self) -> watch::Receiver<StorageHealth> {
        self.inner.health.subscribe()
    }

    /// Note the outcome of a query: an error that is a storage fault turns the store degraded.
    fn seen<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        if let Err(e) = &result {
            self.observe(e);
        }
        result
    }

    /// A query failed: if the storage did, the store is degraded from now on, every connection
    /// is dropped, and the recovery probe starts.
    pub(crate) fn observe(&self, e: &sqlx::Error) {
        if let Some(reason) = health::fault_reason(e) {
            self.degrade(reason);
        }
    }

    fn degrade(&self, reason: String) {
        let changed = self.inner.health.send_if_modified(|h| {
            if h.is_healthy() {
                *h = degraded(reason.clone());
                true
            } else {
                false
            }
        });
        if changed {
            let now = std::time::Instant::now();
            self.inner.acked.freeze(now);
            self.inner.changes.freeze(now);
            tracing::error!(%reason, "storage fault: readings are refused (503) until the \
                database stores again; control goes on from what the engine holds in memory");
            self.replace_pool(self.inner.options.transient_pool());
        }
    }

    fn replace_pool(&self, pool: Pool) {
        // The database met through the new pool may not be the one read (a file restored
        // while storage was degraded).
        self.inner.latest.rows_changed();
        let old = std::mem::replace(
            &mut *self.inner.pool.write().unwrap_or_else(|e| e.into_inner()),
            pool,
        );
        // Waits for connections in use to come back, then closes every one.
        tokio::spawn(async move { old.close().await });
    }

    /// Cheap health check for `/v1/status`.
    pub(crate) async fn ping(&self) -> Result<(), sqlx::Error> {
        let r = on_pool!(&self.pool(), |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))
        .map(|_| ());
        self.seen(r)
    }

    /// Write what waits in memory, then close the pool (checkpoints the WAL).
    pub(crate) async fn close(&self) {
        if self.health().is_healthy() {
            // A failure is logged where it is seen; the readings themselves are stored.
            let _ = self.flush_latest().await;
            let _ = self.settle_rollups().await;
        }
        self.pool().close().await;
    }

    /// When this process wrote readings: count the ones its rollups hold in memory into the
    /// tables, and move every reading out of `reading_hot` (`rollups::resume`, from the
    /// table). The next process then starts with nothing to count, rather than doing it in
    /// its first write while reports wait behind it.
    async fn settle_rollups(&self) -> Result<(), sqlx::Error> {
        let _writing = self.inner.writes.lock().await;
        if self.inner.rollups.before().is_none() {
            return Ok(());
        }
        let result = self.resume_rollups().await.map(|_| ());
        if result.is_err() {
            self.inner.rollups.forget();
        }
        self.seen(result)
    }

    /// One recovery attempt: the filesystem has room and takes writes, a fresh pool opens and
    /// migrates, and a write commits. Then that pool replaces the old one.
    async fn try_recover(&self) -> Result<(), String> {
        let pool = match open_writable(&self.inner.options, self.inner.file.as_deref()).await {
            Ok(pool) => pool,
            Err(Opening::Unwritable { pool, reason }) => {
                pool.close().await;
                return Err(reason);
            }
            Err(Opening::Fault(reason)) => return Err(reason),
            Err(Opening::Config(e)) => return Err(e.to_string()),
        };
        self.replace_pool(pool);
        let (readings, changes) = match self.write_again_what_was_acknowledged().await {
            Ok(written) => written,
            Err(e) => {
                // Not recovered after all: nothing is kept open on the storage that failed.
                self.replace_pool(self.inner.options.transient_pool());
                return Err(health::fault_reason(&e).unwrap_or_else(|| e.to_string()));
            }
        };
        if let StorageHealth::Degraded { reason, since } = self.health() {
            let recovery =
                Recovery { fault: reason, since, at: Timestamp::now(), readings, changes };
            *self.inner.last_recovery.lock().unwrap_or_else(|e| e.into_inner()) = Some(recovery);
        }
        self.inner.health.send_replace(StorageHealth::Healthy);
        Ok(())
    }

    /// The last recovery from a storage fault since the start, if there was one.
    pub(crate) fn last_recovery(&self) -> Option<Recovery> {
        self.inner.last_recovery.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The recovery's first write, before the store counts as healthy: the readings
    /// acknowledged in the seconds before the fault, again (see `acked.rs`), and the changes
    /// confirmed then (`changes.rs`); those the storage kept are not stored twice. How many of
    /// each. The database met now may not be the one left (it lost the commits it confirmed
    /// last, or a file was restored): the rollups and the keys in memory are read from it
    /// again first.
    async fn write_again_what_was_acknowledged(&self) -> Result<(usize, usize), sqlx::Error> {
        self.inner.rollups.forget();
        self.inner.keys.forget();
        let replay = self.inner.acked.replay();
        let readings: usize = replay.iter().map(|r| r.readings.len()).sum();
        if !replay.is_empty() {
            self.write_reports(&replay).await?;
            tracing::info!(
                readings,
                "the readings acknowledged before the fault are \
                written again (those the storage kept are not stored twice)"
            );
        }
        let changes = self.write_changes_again().await?;
        if changes > 0 {
            tracing::info!(
                changes,
                "the changes confirmed before the fault are written again \
                (settings, schedules, overrides, zones)"
            );
        }
        self.inner.acked.recovered(std::time::Instant::now());
        Ok((readings, changes))
    }

    /// Store the reports whose senders are told once this returns (the ingest path's group
    /// commit): [`Self::write_reports`], and once committed they are kept for a few seconds,
    /// to be written again should the storage fail right after confirming them (`acked.rs`).
    pub(crate) async fn commit_reports(&self, reports: &[NewReport]) -> Result<(), sqlx::Error> {
        self.write_reports(reports).await?;
        self.inner.acked.keep(reports, std::time::Instant::now());
        Ok(())
    }

    /// Store several reports in one transaction: the group commit of the ingest path. Every
    /// table gets multi-row statements (one per chunk), never one statement per reading: at
    /// ~50 µs a statement, per-row upserts would cap ingest near 20k readings/s.
    pub(crate) async fn write_reports(&self, reports: &[NewReport]) -> Result<(), sqlx::Error> {
        let _writing = self.inner.writes.lock().await;
        let result = self.write_reports_locked(reports).await;
        if result.is_err() {
            // The commit may have happened all the same (a connection lost at COMMIT): the
            // next write counts from the table again, and writes its sensors' rows.
            self.inner.rollups.forget();
            self.inner.latest.forget();
            self.inner.keys.forget();
        }
        self.seen(result)
    }

    /// [`Self::write_reports`] with the write lock held: the readings in one transaction,
    /// counted in memory once committed, then the minutes that are over flushed to the
    /// rollup tables in another (see `rollups.rs`).
    async fn write_reports_locked(&self, reports: &[NewReport]) -> Result<(), sqlx::Error> {
        let rolled_before = match self.inner.rollups.before() {
            Some(before) => before,
            None => self.resume_rollups().await?,
        };
        let all: Vec<&NewReading> = reports.iter().flat_map(|r| &r.readings).collect();
        let contacts = Contacts::of(reports);
        let pool = self.pool();
        let simple = match &pool {
            Pool::Postgres(pg) => {
                self.simple_batch(&contacts, &all, rolled_before)?.map(|s| (pg, s))
            }
            Pool::Sqlite(_) => None,
        };
        let (keys, sensors, live) = match simple {
            Some((pg, (keys, rows))) => {
                let appends = self.inner.appends.only(&rows);
                let live = write_contacts_and_live(pg, &contacts.agents, rows, appends).await?;
                (keys, contacts.all_known(), live)
            }
            None => {
                let mut tx = WriteTx::begin(&pool).await?;
                let sensors = self.write_sensors_and_agents(&mut tx, contacts).await?;
                let ids = all.iter().map(|r| r.sensor_id.as_str());
                let keys = self.inner.keys.resolve(&mut tx, ids).await?;
                let rows = history::unique_rows(&all, &keys.keys)?;
                let live = history::insert_readings(&mut tx, rows, rolled_before).await?;
                tx.commit().await?;
                (keys, sensors, live)
            }
        };
        self.inner.keys.learned(&keys);
        self.inner.rollups.count(&live);
        if let Pool::Postgres(_) = pool {
            self.inner.appends.stored(&live);
        }
        self.inner.latest.written(sensors.stored);
        self.inner.latest.merge(sensors.newest);
        if self.inner.latest.due() {
            self.flush_latest_locked(Some(latest::SLICE)).await?;
        }

        let received = reports.iter().map(|r| r.received).max().unwrap_or(i64::MIN);
        if let Some(to) = self.inner.rollups.due(received) {
            let minutes = self.inner.rollups.taken_before(to);
            let mut tx = WriteTx::begin(&self.pool()).await?;
            rollups::flush(&mut tx, &minutes, to).await?;
            tx.commit().await?;
            self.inner.rollups.flushed(to);
        }
        Ok(())
    }

    /// A batch that needs no statement but the agents' upsert and the live readings' insert:
    /// every sensor's row known to exist, every sensor's key known, every reading live (taken
    /// at or after `rolled_before`: no rollup to add to). Nearly every batch of a running
    /// house, after its first. Its keys and rows, or `None` for any other batch.
    fn simple_batch<'a>(
        &self,
        contacts: &Contacts<'a>,
        all: &[&'a NewReading],
        rolled_before: i64,
    ) -> Result<Option<(keys::Resolved<'a>, Vec<history::Row>)>, sqlx::Error> {
        if !self.inner.latest.knows_all(contacts.sensors.keys().copied()) {
            return Ok(None);
        }
        let Some(keys) = self.inner.keys.known(all.iter().map(|r| r.sensor_id.as_str())) else {
            return Ok(None);
        };
        let rows = history::unique_rows(all, &keys.keys)?;
        if rows.iter().any(|&(_, ts, _)| ts < rolled_before) {
            return Ok(None);
        }
        Ok(Some((keys, rows)))
    }

    /// The sensors and agents rows a batch of reports updates, in the caller's transaction:
    /// the rows of sensors not known to exist are upserted (what they then hold is returned,
    /// for [`latest::Behind::written`]); the newest readings of the others are returned, to
    /// be merged in memory once committed (see `latest.rs`).
    async fn write_sensors_and_agents<'a>(
        &self,
        tx: &mut WriteTx,
        contacts: Contacts<'a>,
    ) -> Result<SensorsWritten<'a>, sqlx::Error> {
        let (known, unknown): (Vec<_>, Vec<_>) =
            contacts.sensors.into_iter().partition(|(id, _)| self.inner.latest.knows(id));
        let unknown: Vec<(&str, latest::Newest)> = unknown
            .into_iter()
            .map(|(id, (host_id, r))| (id, latest::Newest::of(host_id, r)))
            .collect();
        let rows: Vec<(&str, &latest::Newest)> = unknown.iter().map(|(id, n)| (*id, n)).collect();
        let stored = latest::upsert(tx, &rows, latest::Since::Compared, true).await?;
        upsert_agents(tx, &contacts.agents).await?;
        Ok(SensorsWritten {
            stored,
            newest: known.into_iter().map(|(id, (host_id, r))| (id, host_id, r)).collect(),
        })
    }

    /// Write the sensors' newest readings that wait in memory, all of them or the `most` that
    /// waited longest (see `latest.rs`). The caller holds the write lock.
    async fn flush_latest_locked(&self, most: Option<usize>) -> Result<(), sqlx::Error> {
        let pending = self.inner.latest.pending(most);
        if pending.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&str, &latest::Newest)> =
            pending.iter().map(|(id, n)| (id.as_str(), n)).collect();
        let pool = self.pool();
        match &pool {
            Pool::Postgres(pg) => latest::update_pg(pg, &rows).await?,
            Pool::Sqlite(_) => {
                let mut tx = WriteTx::begin(&pool).await?;
                latest::upsert(&mut tx, &rows, latest::Since::Given, false).await?;
                tx.commit().await?;
            }
        }
        self.inner.latest.flushed(&pending);
        Ok(())
    }

    /// [`Self::flush_latest_locked`], from outside a write (the store closing).
    async fn flush_latest(&self) -> Result<(), sqlx::Error> {
        if !self.inner.latest.waiting() {
            return Ok(());
        }
        let _writing = self.inner.writes.lock().await;
        let result = self.flush_latest_locked(None).await;
        if result.is_err() {
            self.inner.latest.forget();
        }
        self.seen(result)
    }

    /// Give back the memory a burst of work left behind: the readings kept from it that aged
    /// out (`acked.rs`), SQLite's caches of the idle connections, then the allocator's free
    /// pages (see `memory.rs`). Returns whether readings are still kept, which a later
    /// release will let go of.
    pub(crate) async fn release_memory(&self) -> bool {
        let kept = self.inner.acked.prune(std::time::Instant::now());
        self.pool().release_memory().await;
        crate::memory::trim();
        kept > 0
    }

    /// Hold a report's readings in memory, for control (whether or not it can be stored).
    pub(crate) fn hold_readings(&self, report: &NewReport) {
        self.inner.held.readings(report);
    }

    /// Every sensor with its newest reading: the stored one, or a newer one held in memory
    /// (not stored because of a storage fault). When the database does not answer, the last
    /// rows read with the held readings; an error only when nothing is known.
    pub(crate) async fn sensors(&self) -> Result<Vec<SensorRow>, sqlx::Error> {
        if self.served_from_memory() {
            return self.inner.held.sensors(None);
        }
        // The rows are kept in memory once read, with the newest readings that wait to be
        // written laid over them (see `latest.rs`).
        let read = match self.inner.latest.rows() {
            Ok(rows) => Ok(rows),
            Err(reading) => {
                on_pool!(&self.pool(), |p| sqlx::query_as(SENSOR_ROWS).fetch_all(p).await)
                    .map(|rows| self.inner.latest.read(reading, rows))
            }
        };
        let rows = self.inner.held.sensors(Some(self.seen(read)));
        self.known_while_degraded(rows)
    }

    /// While storage is degraded and the database cannot be read, what is known may be
    /// nothing yet (a start without a database): that is an answer, not an error, so control
    /// decides with what it has (the frost floor needs no relay list to be right).
    fn known_while_degraded<T>(
        &self,
        rows: Result<Vec<T>, sqlx::Error>,
    ) -> Result<Vec<T>, sqlx::Error> {
        match rows {
            Err(_) if !self.health().is_healthy() => Ok(Vec::new()),
            rows => rows,
        }
    }

    /// Whether sensors and relays are served from memory without asking the database: while
    /// storage is degraded nothing new reaches the database, so the last rows read (with what
    /// is held) are as new as anything in it; and a filesystem that failed can only be
    /// repaired (unmounted, checked) once nothing keeps its files open, which reads every
    /// pass of the control loop would.
    fn served_from_memory(&self) -> bool {
        !self.health().is_healthy() && self.inner.held.has_read()
    }

    /// A sensor's calibration offset; None when the sensor is unknown.
    pub(crate) async fn sensor_offset(&self, id: &str) -> Result<Option<f64>, sqlx::Error> {
        on_pool!(&self.pool(), |p| sqlx::query_scalar("SELECT offset_c FROM sensors WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await)
    }

    /// Every known sensor's non-zero calibration offset (the ingest path's cache is built
    /// from it at start).
    pub(crate) async fn sensor_offsets(&self) -> Result<Vec<(String, f64)>, sqlx::Error> {
        let read = on_pool!(&self.pool(), |p| sqlx::query_as(
            "SELECT id, offset_c FROM sensors WHERE offset_c <> 0"
        )
        .fetch_all(p)
        .await);
        self.seen(read)
    }

    /// Store what people set for a sensor (checked, its name trimmed); false when the sensor
    /// is unknown.
    pub(crate) async fn set_sensor_settings(
        &self,
        id: &str,
        s: &hearth_proto::sensors::SensorSettings,
    ) -> Result<bool, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let found = self.write_sensor_settings(id, s).await?;
        self.kept([changes::Change::SensorSettings { id: id.to_owned(), settings: s.clone() }]);
        Ok(found)
    }

    async fn write_sensor_settings(
        &self,
        id: &str,
        s: &hearth_proto::sensors::SensorSettings,
    ) -> Result<bool, sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE sensors SET name = $1, weight = $2, offset_c = $3 WHERE id = $4"
        )
        .bind(&s.name)
        .bind(s.weight)
        .bind(s.offset_c)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        // Even a failed update may have committed.
        self.inner.latest.rows_changed();
        Ok(self.seen(done)? == 1)
    }

    /// Raw readings of one sensor in `[from, to)`, oldest first, at most `limit`
    /// ([`READINGS_OF_SENSOR`]).
    pub(crate) async fn readings(
        &self,
        id: &str,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Option<f64>)>, sqlx::Error> {
        let rows = on_pool!(&self.pool(), |p| {
            sqlx::query_as(READINGS_OF_SENSOR)
                .bind(id)
                .bind(from)
                .bind(to)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        });
        self.seen(rows)
    }

    pub(crate) async fn agents(&self) -> Result<Vec<AgentRow>, sqlx::Error> {
        // Mapped inside: a row is a type of its backend.
        let rows = on_pool!(&self.pool(), |p| async {
            sqlx::query(
                "SELECT host_id, kind, url, last_seen, clock_offset_ms, backend,
                        unreachable_since, contact_error, key_role, misdated, misdated_at
                 FROM agents ORDER BY host_id, kind",
            )
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let key_role: Option<String> = r.try_get("key_role")?;
                Ok(AgentRow {
                    host_id: r.try_get("host_id")?,
                    kind: str_enum(&kind).unwrap_or(AgentKind::Sensor),
                    url: r.try_get("url")?,
                    last_seen: r.try_get("last_seen")?,
                    clock_offset_ms: r.try_get("clock_offset_ms")?,
                    backend: r.try_get("backend")?,
                    unreachable_since: r.try_get("unreachable_since")?,
                    contact_error: r.try_get("contact_error")?,
                    key_role: key_role.as_deref().and_then(str_enum),
                    misdated: r.try_get("misdated")?,
                    misdated_at: r.try_get("misdated_at")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        }
        .await);
        self.seen(rows)
    }

    /// Mark an agent as heard from (or reached) now.
    pub(crate) async fn touch_agent(
        &self,
        host_id: &str,
        kind: AgentKind,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE agents SET last_seen = CASE WHEN $1 > last_seen THEN $1 ELSE last_seen END
             WHERE host_id = $2 AND kind = $3",
        )
        .bind(now)
        .bind(host_id)
        .bind(enum_str(kind))
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done).map(|_| ())
    }

    /// Record a relay agent's registration: its URL, hardware backend and outputs. Outputs it
    /// no longer reports are removed; engine-side function assignments of the others are kept.
    /// The backend is replaced (NULL from an agent that does not say). Reachability is left
    /// alone: the agent reaching the engine does not prove the engine reaches the agent (a
    /// wrong advertised URL); the next command tells (registration makes the loop command).
    /// It starts a new [`RelayEpoch`] of the agent.
    pub(crate) async fn register_relays(&self, reg: &Registration<'_>) -> Result<(), sqlx::Error> {
        let _writing = self.inner.relay_writes.lock().await;
        // Held first: control knows the agent even when it cannot be stored.
        self.inner.held.registration(reg);
        let result = self.register_relays_tx(reg).await;
        self.seen(result)
    }

    async fn register_relays_tx(&self, reg: &Registration<'_>) -> Result<(), sqlx::Error> {
        let Registration { host_id, url, backend, outputs, now, clock_offset_ms, key_role } = *reg;
        let mut tx = WriteTx::begin(&self.pool()).await?;
        let agent = AgentUpsert {
            host_id,
            kind: AgentKind::Relay,
            url: Some(url),
            last_seen: now,
            clock_offset_ms,
            key_role: Some(key_role),
            misdated: 0,
            misdated_at: None,
        };
        upsert_agents(&mut tx, &[agent]).await?;
        on_conn!(tx.conn()?, |c| sqlx::query(
            "UPDATE agents SET backend = $1 WHERE host_id = $2 AND kind = 'relay'"
        )
        .bind(backend)
        .bind(host_id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        // The outputs it no longer has (a registration names a bounded number of outputs).
        on_conn!(tx.conn()?, |c| {
            let mut q = QueryBuilder::new("DELETE FROM relays WHERE host_id = ");
            q.push_bind(host_id);
            if !outputs.is_empty() {
                q.push(" AND output_id NOT IN (");
                let mut ids = q.separated(", ");
                for o in outputs {
                    ids.push_bind(&o.id);
                }
                ids.push_unseparated(")");
            }
            q.build().execute(c).await.map(|r| r.rows_affected())
        })?;
        for o in outputs {
            on_conn!(tx.conn()?, |c| {
                sqlx::query(
                "INSERT INTO relays (host_id, output_id, name, function_hint, function, state, updated, status)
                 VALUES ($1, $2, $3, $4, NULL, $5, $6, $7)
                 ON CONFLICT (host_id, output_id) DO UPDATE SET
                   name = excluded.name, function_hint = excluded.function_hint,
                   state = excluded.state, updated = excluded.updated, status = excluded.status",
            )
            .bind(host_id)
            .bind(&o.id)
            .bind(&o.name)
            .bind(o.function_hint.map(enum_str))
            .bind(enum_str(o.state))
            .bind(now)
            .bind(serde_json::to_string(o).ok())
            .execute(c)
            .await
            .map(|r| r.rows_affected())
            })?;
        }
        tx.commit().await
    }

    /// Every relay output as last reported by its agent: stored, or held in memory when newer
    /// (a report that could not be stored). When the database does not answer, the last rows
    /// read with the held reports; an error only when nothing is known.
    pub(crate) async fn relays(&self) -> Result<Vec<RelayRow>, sqlx::Error> {
        if self.served_from_memory() {
            return self.inner.held.relays(None);
        }
        let read = self.read_relays().await;
        let rows = self.inner.held.relays(Some(self.seen(read)));
        self.known_while_degraded(rows)
    }

    async fn read_relays(&self) -> Result<Vec<RelayRow>, sqlx::Error> {
        // Mapped inside: a row is a type of its backend.
        on_pool!(&self.pool(), |p| async {
            sqlx::query(
                "SELECT r.host_id, r.output_id, r.name, a.url, r.function, r.function_hint,
                        r.state, r.updated, r.status, r.command_error, a.backend,
                        a.unreachable_since, a.key_role
                 FROM relays r LEFT JOIN agents a ON a.host_id = r.host_id AND a.kind = 'relay'
                 ORDER BY r.host_id, r.output_id",
            )
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| {
                let function: Option<String> = r.try_get("function")?;
                let hint: Option<String> = r.try_get("function_hint")?;
                let state: String = r.try_get("state")?;
                let status: Option<String> = r.try_get("status")?;
                let key_role: Option<String> = r.try_get("key_role")?;
                Ok(RelayRow {
                    host_id: r.try_get("host_id")?,
                    output_id: r.try_get("output_id")?,
                    name: r.try_get("name")?,
                    url: r.try_get("url")?,
                    function: function.as_deref().and_then(str_enum),
                    function_hint: hint.as_deref().and_then(str_enum),
                    state: str_enum(&state).unwrap_or(RelayState::Off),
                    updated: r.try_get("updated")?,
                    // A report that no longer parses (older agent) is just not shown.
                    status: status.and_then(|s| serde_json::from_str(&s).ok()),
                    command_error: r.try_get("command_error")?,
                    backend: r.try_get("backend")?,
                    unreachable_since: r.try_get("unreachable_since")?,
                    key_role: key_role.as_deref().and_then(str_enum),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
        }
        .await)
    }

    /// Assign an output's function; false when no such output exists.
    pub(crate) async fn set_relay_function(
        &self,
        host_id: &str,
        output_id: &str,
        function: Option<RelayFunction>,
    ) -> Result<bool, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let found = self.write_relay_function(host_id, output_id, function).await?;
        self.kept([changes::Change::RelayFunction {
            host_id: host_id.to_owned(),
            output_id: output_id.to_owned(),
            function,
        }]);
        Ok(found)
    }

    async fn write_relay_function(
        &self,
        host_id: &str,
        output_id: &str,
        function: Option<RelayFunction>,
    ) -> Result<bool, sqlx::Error> {
        // As in `set_relay_fallback`: a listed output's registration may still be committing.
        let _registrations = self.inner.relay_writes.lock().await;
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE relays SET function = $1 WHERE host_id = $2 AND output_id = $3"
        )
        .bind(function.map(enum_str))
        .bind(host_id)
        .bind(output_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        let found = self.seen(done)? == 1;
        if found {
            self.inner.held.relay_function(host_id, output_id, function);
        }
        Ok(found)
    }

    /// Set (or with None, clear) an admin's choice of what output `output_id` of relay agent
    /// `host_id` does in fallback. False when there is no such output.
    pub(crate) async fn set_relay_fallback(
        &self,
        host_id: &str,
        output_id: &str,
        program: Option<&hearth_proto::fallback::OutputProgram>,
    ) -> Result<bool, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let found = self.write_relay_fallback(host_id, output_id, program).await?;
        self.kept([changes::Change::RelayFallback {
            host_id: host_id.to_owned(),
            output_id: output_id.to_owned(),
            program: program.cloned(),
        }]);
        Ok(found)
    }

    async fn write_relay_fallback(
        &self,
        host_id: &str,
        output_id: &str,
        program: Option<&hearth_proto::fallback::OutputProgram>,
    ) -> Result<bool, sqlx::Error> {
        // A registration is listed (`relays`, from memory) before its transaction commits:
        // waiting for it here means an output that was listed is found.
        let _registrations = self.inner.relay_writes.lock().await;
        let known = on_pool!(&self.pool(), |p| sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM relays WHERE host_id = $1 AND output_id = $2",
        )
        .bind(host_id)
        .bind(output_id)
        .fetch_one(p)
        .await);
        if self.seen(known)? == 0 {
            return Ok(false);
        }
        let done = match program {
            Some(program) => {
                let json =
                    serde_json::to_string(program).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
                on_pool!(&self.pool(), |p| sqlx::query(
                    "INSERT INTO relay_fallback (host_id, output_id, program) VALUES ($1, $2, $3) \
                     ON CONFLICT (host_id, output_id) DO UPDATE SET program = excluded.program",
                )
                .bind(host_id)
                .bind(output_id)
                .bind(json)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))
            }
            None => {
                on_pool!(&self.pool(), |p| sqlx::query(
                    "DELETE FROM relay_fallback WHERE host_id = $1 AND output_id = $2"
                )
                .bind(host_id)
                .bind(output_id)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))
            }
        };
        self.seen(done)?;
        Ok(true)
    }

    /// Every admin's choice of a relay output's fallback, by (host id, output id). A row that
    /// no longer decodes (written by a newer engine) is reported as unreadable (logged and
    /// counted) and the default program applies to that output until an admin chooses again.
    pub(crate) async fn relay_fallbacks(
        &self,
    ) -> Result<
        std::collections::HashMap<(String, String), hearth_proto::fallback::OutputProgram>,
        sqlx::Error,
    > {
        let rows = on_pool!(&self.pool(), |p| sqlx::query_as::<_, (String, String, String)>(
            "SELECT host_id, output_id, program FROM relay_fallback",
        )
        .fetch_all(p)
        .await);
        Ok(self
            .seen(rows)?
            .into_iter()
            .filter_map(|(h, o, p)| match serde_json::from_str(&p) {
                Ok(program) => Some(((h, o), program)),
                Err(e) => {
                    let id = format!("{h}/{o}");
                    self.inner.unreadable.report("relay_fallback", &id, &e.to_string());
                    None
                }
            })
            .collect())
    }

    /// The current [`RelayEpoch`] of relay agent `host_id`: take it before sending it a call.
    pub(crate) fn relay_epoch(&self, host_id: &str) -> RelayEpoch {
        self.inner.held.relay_epoch(host_id)
    }

    /// Record an output's status as its agent reported it (after a command, or when read), and
    /// that the agent was reachable. `command_done` clears the last refusal. `sent`: the
    /// agent's epoch when the call was sent; false, and nothing recorded, when the agent
    /// registered since (the registration is kept, see [`RelayEpoch`]).
    pub(crate) async fn set_relay_status(
        &self,
        host_id: &str,
        status: &OutputStatus,
        command_done: bool,
        now: i64,
        sent: RelayEpoch,
    ) -> Result<bool, sqlx::Error> {
        let _writing = self.inner.relay_writes.lock().await;
        // Held first: the next decision protects the equipment from this report even when it
        // cannot be stored.
        if !self.inner.held.relay_status(host_id, status, command_done, now, sent) {
            return Ok(false);
        }
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE relays SET state = $1, updated = $2, status = $3,
                command_error = CASE WHEN $4 THEN NULL ELSE command_error END
             WHERE host_id = $5 AND output_id = $6",
        )
        .bind(enum_str(status.state))
        .bind(now)
        .bind(serde_json::to_string(status).ok())
        .bind(command_done)
        .bind(host_id)
        .bind(&status.id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done)?;
        self.touch_agent(host_id, AgentKind::Relay, now).await?;
        Ok(true)
    }

    /// Record how the engine's last call to relay agent `host_id` went (at `now`, Unix ms):
    /// an answer clears what a failure set; no answer marks the agent unreachable from its
    /// first failed call on. True when the agent's reachability flipped (so the caller logs
    /// and announces it once, not at every renewal).
    pub(crate) async fn relay_contact(
        &self,
        host_id: &str,
        contact: Contact<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let stored = self.store_relay_contact(host_id, contact, now).await;
        // Held after the database, whatever the database did: during a storage fault the
        // relays control and the API see still say whether their agent answers; and with the
        // database first, a reader who saw the relays (held) flip and then reads the agents or
        // the metrics (database) finds them flipped too.
        self.inner.held.relay_contact(host_id, contact, now);
        stored
    }

    async fn store_relay_contact(
        &self,
        host_id: &str,
        contact: Contact<'_>,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let row: Result<Option<(Option<i64>, Option<String>)>, _> =
            on_pool!(&self.pool(), |p| sqlx::query_as(
                "SELECT unreachable_since, contact_error FROM agents
                 WHERE host_id = $1 AND kind = 'relay'",
            )
            .bind(host_id)
            .fetch_optional(p)
            .await);
        let Some((since, error)) = self.seen(row)? else { return Ok(false) };
        let (new_since, new_error) = match contact {
            Contact::Answered => (None, None),
            Contact::Failed(e) => (None, Some(e)),
            Contact::NoAnswer(e) => (Some(since.unwrap_or(now)), Some(e)),
        };
        if (since, error.as_deref()) == (new_since, new_error) {
            return Ok(false);
        }
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE agents SET unreachable_since = $1, contact_error = $2
             WHERE host_id = $3 AND kind = 'relay'",
        )
        .bind(new_since)
        .bind(new_error)
        .bind(host_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done)?;
        Ok(since.is_some() != new_since.is_some())
    }

    /// Record that a relay agent refused a command, and why (it answered, so it is reachable).
    /// `sent`: the agent's epoch when the command was sent; false, and nothing recorded, when
    /// the agent registered since (its new process was not asked).
    pub(crate) async fn set_relay_refusal(
        &self,
        host_id: &str,
        output_id: &str,
        error: &str,
        now: i64,
        sent: RelayEpoch,
    ) -> Result<bool, sqlx::Error> {
        let _writing = self.inner.relay_writes.lock().await;
        if !self.inner.held.relay_refusal(host_id, output_id, error, sent) {
            return Ok(false);
        }
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE relays SET command_error = $1 WHERE host_id = $2 AND output_id = $3"
        )
        .bind(error)
        .bind(host_id)
        .bind(output_id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done)?;
        self.touch_agent(host_id, AgentKind::Relay, now).await?;
        Ok(true)
    }

    /// The stored control settings; None when none were ever stored. Stored settings that do
    /// not read as this engine's format are an error (reported once, see `format.rs`), not
    /// the defaults: nobody chose those.
    #[cfg(test)]
    pub(crate) async fn load_settings(&self) -> Result<Option<Settings>, sqlx::Error> {
        self.settings_at("control").await
    }

    /// The control settings stored under `key` (one zone's: `zones::control_key`).
    async fn settings_at(&self, key: &str) -> Result<Option<Settings>, sqlx::Error> {
        let value: Result<Option<String>, _> = on_pool!(&self.pool(), |p| sqlx::query_scalar(
            "SELECT value FROM settings WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(p)
        .await);
        let Some(value) = self.seen(value)? else { return Ok(None) };
        format::decode(format::SETTINGS_V, &value).map(Some).map_err(|why| {
            self.inner.unreadable.report("settings", key, &why);
            sqlx::Error::Decode(format!("the stored control settings are in {why}").into())
        })
    }

    /// How many stored rows (settings, decisions) could not be read since the start.
    pub(crate) fn unreadable_rows(&self) -> u64 {
        self.inner.unreadable.count()
    }

    /// Store the default zone's control settings.
    #[cfg(test)]
    pub(crate) async fn save_settings(&self, settings: &Settings) -> Result<(), sqlx::Error> {
        self.save_zone_settings(&ZoneId::default_zone(), settings, None).await
    }

    /// Record one zone's decision.
    pub(crate) async fn record_decision(
        &self,
        zone: &ZoneId,
        d: &Decision,
    ) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "INSERT INTO decisions
               (zone_id, ts, heat, cool, effective_temp, setpoint, reason_code, reason, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&zone.0)
        .bind(millis(d.at))
        .bind(d.heat)
        .bind(d.cool)
        .bind(d.effective_temp_c)
        .bind(d.heat_setpoint_c)
        .bind(enum_str(d.reason_code))
        .bind(&d.reason)
        .bind(format::encode(format::DECISION_V, d).map_err(|e| sqlx::Error::Encode(e.into()))?)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done).map(|_| ())
    }

    /// One zone's recorded decisions in `[from, to)` (either bound optional), newest first, at
    /// most `limit`. A row that does not read as this engine's format is reported (logged with
    /// its id and counted, once) and left out of the answer, which it would otherwise fail.
    pub(crate) async fn decisions(
        &self,
        zone: &ZoneId,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<Decision>, sqlx::Error> {
        let rows: Result<Vec<(i64, String)>, _> = on_pool!(&self.pool(), |p| sqlx::query_as(
            "SELECT id, detail FROM decisions WHERE zone_id = $1 AND ts >= $2 AND ts < $3
             ORDER BY ts DESC, id DESC LIMIT $4",
        )
        .bind(&zone.0)
        .bind(from.map_or(i64::MIN, millis))
        .bind(to.map_or(i64::MAX, millis))
        .bind(i64::from(limit))
        .fetch_all(p)
        .await);
        let mut decisions = Vec::new();
        for (id, detail) in self.seen(rows)? {
            match format::decode(format::DECISION_V, &detail) {
                Ok(d) => decisions.push(d),
                Err(why) => self.inner.unreadable.report("decisions", &id.to_string(), &why),
            }
        }
        Ok(decisions)
    }
}

/// Raw readings of sensor `$1` in `[$2, $3)`, oldest first, at most `$4`. The key is named, not
/// joined (migration 0018): the primary key's range is read in time order up to the LIMIT.
const READINGS_OF_SENSOR: &str = "SELECT ts, value FROM reading_values
     WHERE sensor = (SELECT key FROM sensor_keys WHERE sensor_id = $1) AND ts >= $2 AND ts < $3
     ORDER BY ts LIMIT $4";

/// What opening a database gives the store: how to connect again, the file (SQLite), the
/// pool and the health to start with.
type Opened = (Options, Option<PathBuf>, Pool, StorageHealth);

/// Open a SQLite database. A storage fault does not stop the engine: on a read-only
/// filesystem the database is opened read-only when it can be (control then has the stored
/// settings, schedule and relays), else not at all; either way the store starts degraded and
/// the recovery probe opens it for writing as soon as it can.
async fn open_sqlite(url: &str) -> anyhow::Result<Opened> {
    let sqlite = SqliteConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("bad database URL {url:?}: {e}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: the WAL is synced at every commit, so what is acknowledged survives a power
        // cut or a storage fault.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true)
        .statement_cache_capacity(db::STATEMENT_CACHE);
    let file = Some(sqlite.get_filename().to_path_buf())
        .filter(|f| !f.as_os_str().is_empty() && f.as_os_str() != ":memory:");
    let options = Options::Sqlite(sqlite);
    let (pool, health) = match open_writable(&options, file.as_deref()).await {
        Ok(pool) => (pool, StorageHealth::Healthy),
        Err(Opening::Unwritable { pool, reason }) => {
            tracing::error!(%reason, "the database opens but cannot store; starting degraded");
            (pool, degraded(reason))
        }
        Err(Opening::Fault(reason)) => {
            // "Read-only filesystem" says more than SQLite's "unable to open".
            let reason = match file.as_deref().and_then(|f| health::filesystem_problem(f, 0)) {
                Some(problem) => format!("{problem} ({reason})"),
                None => reason,
            };
            let pool = match open_read_only(url, file.as_deref()).await {
                Ok(pool) => {
                    tracing::error!(%reason, "the database cannot be opened for writing; \
                        starting degraded on a read-only copy (stored settings, schedule \
                        and relays apply)");
                    Pool::Sqlite(pool)
                }
                Err(e) => {
                    tracing::error!(%reason, read_only = %e, "the database cannot be \
                        opened; starting degraded with the default protections (frost \
                        floor, max ceiling) only");
                    options.transient_pool()
                }
            };
            (pool, degraded(reason))
        }
        Err(Opening::Config(e)) => return Err(e),
    };
    Ok((options, file, pool, health))
}

/// The schema a PostgreSQL database keeps this engine's tables in, unless the URL's
/// `options` set a `search_path` (another site's engine on the same database names another).
pub(crate) const DEFAULT_PG_SCHEMA: &str = "hearth";

/// Open a PostgreSQL database. Unlike a SQLite file, a server that cannot be reached or
/// refuses the engine at start is a configuration to fix, not a state to wait out: the engine
/// stops with an error that says what to fix (systemd starts it again). Once running, a
/// server that goes away is a storage fault like a full disk: degraded, then recovered.
async fn open_postgres(url: &str) -> anyhow::Result<Opened> {
    let shown = db::redact_url(url);
    let pg = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("bad database URL {shown:?}: {e}"))?;
    let schema = db::pg_schema_of(&pg).unwrap_or_else(|| DEFAULT_PG_SCHEMA.to_owned());
    db::check_pg_schema(&schema)?;
    let pg = pg
        .options([("search_path", schema.as_str())])
        .statement_cache_capacity(db::STATEMENT_CACHE);
    let options = Options::Postgres(pg, schema);
    match open_writable(&options, None).await {
        Ok(pool) => Ok((options, None, pool, StorageHealth::Healthy)),
        Err(Opening::Unwritable { pool, reason }) => {
            pool.close().await;
            Err(anyhow::anyhow!("the PostgreSQL database at {shown} cannot store: {reason}"))
        }
        Err(Opening::Fault(reason)) => Err(cannot_use(&shown, &reason)),
        Err(Opening::Config(e)) => Err(cannot_use(&shown, &format!("{e:#}"))),
    }
}

fn cannot_use(shown: &str, reason: &str) -> anyhow::Error {
    match db::pg_fix(reason) {
        Some(fix) => {
            anyhow::anyhow!("cannot use the PostgreSQL database at {shown}: {reason}. {fix}")
        }
        None => anyhow::anyhow!("cannot use the PostgreSQL database at {shown}: {reason}"),
    }
}

fn degraded(reason: String) -> StorageHealth {
    StorageHealth::Degraded { reason, since: Timestamp::now() }
}

/// The migrations shipped in the binary, per backend (a version means the same schema on
/// both: `engine/migrations/postgres/0015_schema.sql`).
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Why a database could not be opened for writing.
enum Opening {
    /// It opened and reads, but the storage does not take writes now.
    Unwritable { pool: Pool, reason: String },
    /// A storage fault: nothing is open.
    Fault(String),
    /// Not the storage's fault: the URL, or a database this version cannot use.
    Config(anyhow::Error),
}

fn fault_or(e: sqlx::Error, context: &str) -> Opening {
    match health::fault_reason(&e) {
        Some(reason) => Opening::Fault(reason),
        None => Opening::Config(anyhow::anyhow!("{context}: {e}")),
    }
}

/// Open a pool for writing, migrate, and prove that a write commits (with its fsync) and that
/// the filesystem has room.
async fn open_writable(options: &Options, file: Option<&std::path::Path>) -> Result<Pool, Opening> {
    let pool = match options {
        Options::Sqlite(o) => Pool::Sqlite(
            db::sqlite_pool_options()
                .connect_with(o.clone())
                .await
                .map_err(|e| fault_or(e, "cannot open the database"))?,
        ),
        Options::Postgres(o, schema) => {
            let pool = db::pg_pool_options()
                .connect_with(o.clone())
                .await
                .map_err(|e| fault_or(e, "cannot connect"))?;
            // The site's schema, before anything is created in it: `search_path` names it on
            // every connection, so the migrations (and their own table) land there.
            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(create)).execute(&pool).await {
                pool.close().await;
                return Err(fault_or(e, "cannot create the schema"));
            }
            Pool::Postgres(pool)
        }
    };
    // A migration may rewrite every reading (0017 does): minutes on a large history.
    let migrated = hearth_common::systemd::extending_start(async {
        match &pool {
            Pool::Sqlite(p) => MIGRATOR.run(p).await,
            Pool::Postgres(p) => PG_MIGRATOR.run(p).await,
        }
    })
    .await;
    if let Err(e) = migrated {
        pool.close().await;
        return Err(match e {
            sqlx::migrate::MigrateError::Execute(e)
            | sqlx::migrate::MigrateError::ExecuteMigration(e, _) => {
                fault_or(e, "database migration failed")
            }
            sqlx::migrate::MigrateError::VersionMissing(v) => Opening::Config(anyhow::anyhow!(
                "the database was migrated by a newer engine (its schema has migration {v}, \
                 which this engine does not know): run that engine version or a newer one; \
                 this one does not change the database"
            )),
            e => Opening::Config(anyhow::anyhow!("database migration failed: {e}")),
        });
    }
    let unwritable = |pool, reason| Err(Opening::Unwritable { pool, reason });
    if let Some(reason) = file.and_then(|f| health::filesystem_problem(f, health::RESERVE_BYTES)) {
        return unwritable(pool, reason);
    }
    if let Err(e) = write_probe(&pool).await {
        let reason =
            health::fault_reason(&e).unwrap_or_else(|| format!("a test write failed: {e}"));
        return unwritable(pool, reason);
    }
    Ok(pool)
}

/// Open the database read-only, for a start on a filesystem that does not take writes. Its
/// migrations must be exactly this version's: the queries assume that schema.
async fn open_read_only(
    url: &str,
    file: Option<&std::path::Path>,
) -> Result<sqlx::SqlitePool, String> {
    let file = file.ok_or("the database has no file")?;
    // Without a WAL file everything is in the main file, and `immutable` lets SQLite read it
    // where it cannot create its shared-memory file. With one, `immutable` would skip the
    // committed transactions the WAL holds: read normally then (SQLite manages that when the
    // -shm file exists as well, as after a crash).
    let mut wal = file.as_os_str().to_owned();
    wal.push("-wal");
    let has_wal = std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0);
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| e.to_string())?
        .read_only(true)
        .immutable(!has_wal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = db::sqlite_pool_options().connect_with(options).await.map_err(|e| e.to_string())?;
    let applied: Result<Vec<i64>, _> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&pool)
            .await;
    let wanted: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    match applied {
        Ok(applied) if applied == wanted => Ok(pool),
        Ok(applied) => {
            pool.close().await;
            Err(format!("its migrations {applied:?} are not this version's {wanted:?}"))
        }
        Err(e) => {
            pool.close().await;
            Err(e.to_string())
        }
    }
}

/// Commit a small write: what the recovery probe (and the start) proves storage with.
async fn write_probe(pool: &Pool) -> Result<(), sqlx::Error> {
    let mut tx = WriteTx::begin(pool).await?;
    on_conn!(tx.conn()?, |c| sqlx::query(
        "INSERT INTO storage_probe (id, at) VALUES (1, $1)
         ON CONFLICT (id) DO UPDATE SET at = excluded.at",
    )
    .bind(millis(Timestamp::now()))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// Every [`health::PROBE_EVERY`], for as long as the store exists: a healthy store checks its
/// filesystem (a full disk or a read-only mount turn it degraded before a write fails), a
/// degraded one tries to recover.
async fn recover(inner: Weak<Inner>) {
    loop {
        tokio::time::sleep(health::PROBE_EVERY).await;
        let Some(inner) = inner.upgrade() else { return };
        let store = Store { inner };
        let file = store.inner.file.clone();
        let was = store.health();
        if was.is_healthy() {
            let problem = file
                .as_deref()
                .and_then(|f| health::filesystem_problem(f, health::FULL_BELOW_BYTES));
            if let Some(problem) = problem {
                store.degrade(problem);
            }
            continue;
        }
        // A filesystem that is full or read-only is not even tried: opening and migrating
        // every second would only add I/O to a card in trouble.
        let attempt = match file
            .as_deref()
            .and_then(|f| health::filesystem_problem(f, health::RESERVE_BYTES))
        {
            Some(problem) => Err(problem),
            None => store.try_recover().await,
        };
        match attempt {
            Ok(()) => {
                if let StorageHealth::Degraded { reason, since } = was {
                    tracing::info!(%since, was = %reason, "storage recovered: readings are stored again");
                }
            }
            Err(reason) => {
                let changed = store.inner.health.send_if_modified(|h| match h {
                    StorageHealth::Degraded { reason: r, .. } if *r != reason => {
                        *r = reason.clone();
                        true
                    }
                    _ => false,
                });
                if changed {
                    tracing::warn!(%reason, "storage still cannot store");
                }
            }
        }
    }
}

/// What [`Store::write_sensors_and_agents`] did with the sensors of a batch.
#[derive(Debug)]
struct SensorsWritten<'a> {
    /// Rows upserted, as they then are.
    stored: Vec<(String, latest::Stored)>,
    /// The newest reading of each known sensor, not written: (sensor, host, reading).
    newest: Vec<(&'a str, &'a str, &'a NewReading)>,
}

/// What a batch of reports says of its sensors and agents.
struct Contacts<'a> {
    /// By sensor: (its host, the reading that describes it: the newest that may be its
    /// latest, else its first). One row per sensor: an upsert may not touch a row twice in
    /// one statement (PostgreSQL refuses it), and only the newest reading of a sensor can win.
    sensors: BTreeMap<&'a str, (&'a str, &'a NewReading)>,
    /// One per host.
    agents: Vec<AgentUpsert<'a>>,
}

impl<'a> Contacts<'a> {
    fn of(reports: &'a [NewReport]) -> Self {
        let mut sensors: BTreeMap<&str, (&str, &NewReading)> = BTreeMap::new();
        let mut hosts: BTreeMap<&str, AgentUpsert<'_>> = BTreeMap::new();
        for report in reports {
            for r in &report.readings {
                let slot = sensors.entry(&r.sensor_id).or_insert((&report.host_id, r));
                if let Some(at) = r.latest_at
                    && slot.1.latest_at.is_none_or(|t| at >= t)
                {
                    *slot = (&report.host_id, r);
                }
            }
            let earlier = hosts.get(report.host_id.as_str()).map_or(0, |a| a.misdated);
            let agent = AgentUpsert {
                host_id: &report.host_id,
                kind: AgentKind::Sensor,
                url: None,
                last_seen: report.received,
                clock_offset_ms: report.clock_offset_ms,
                key_role: Some(report.key_role),
                misdated: earlier + report.misdated as i64,
                misdated_at: (earlier + report.misdated as i64 > 0).then_some(report.received),
            };
            // Reports are in arrival order: the later one carries the fresher clock offset.
            hosts.insert(&report.host_id, agent);
        }
        Self { sensors, agents: hosts.into_values().collect() }
    }

    /// Every sensor's row known to exist: nothing upserted, every newest reading to merge.
    fn all_known(self) -> SensorsWritten<'a> {
        SensorsWritten {
            stored: Vec::new(),
            newest: self.sensors.into_iter().map(|(id, (host_id, r))| (id, host_id, r)).collect(),
        }
    }
}

/// One agent's contact, for [`upsert_agents`].
#[derive(Debug)]
struct AgentUpsert<'a> {
    host_id: &'a str,
    kind: AgentKind,
    url: Option<&'a str>,
    last_seen: i64,
    clock_offset_ms: Option<i64>,
    key_role: Option<KeyRole>,
    /// Readings of this contact stored as received without a trustworthy time, and when.
    misdated: i64,
    misdated_at: Option<i64>,
}

/// What a contact changes in an agent's row.
macro_rules! agents_on_conflict {
    () => {
        " ON CONFLICT (host_id, kind) DO UPDATE SET
           url = COALESCE(excluded.url, agents.url),
           last_seen = CASE WHEN excluded.last_seen > agents.last_seen
             THEN excluded.last_seen ELSE agents.last_seen END,
           clock_offset_ms = COALESCE(excluded.clock_offset_ms, agents.clock_offset_ms),
           key_role = COALESCE(excluded.key_role, agents.key_role),
           misdated = agents.misdated + excluded.misdated,
           misdated_at = COALESCE(excluded.misdated_at, agents.misdated_at)"
    };
}

/// PostgreSQL: the upsert of agents given as eight arrays (see [`AgentColumns`]), whose
/// parameter numbers are the eight literals given: 1 to 8 alone, 4 to 11 after
/// [`history::pg_insert_readings`]'s three.
macro_rules! pg_upsert_agents {
    ($a:literal, $b:literal, $c:literal, $d:literal, $e:literal, $f:literal, $g:literal, $h:literal) => {
        concat!(
            "INSERT INTO agents
               (host_id, kind, url, last_seen, clock_offset_ms, key_role, misdated, misdated_at)
             SELECT * FROM unnest($",
            $a,
            "::TEXT[], $",
            $b,
            "::TEXT[], $",
            $c,
            "::TEXT[], $",
            $d,
            "::BIGINT[], $",
            $e,
            "::BIGINT[], $",
            $f,
            "::TEXT[], $",
            $g,
            "::BIGINT[], $",
            $h,
            "::BIGINT[])",
            agents_on_conflict!()
        )
    };
}

/// Bind the arrays of an [`AgentColumns`] to a query (`sqlx::query` or `query_as`), in
/// [`pg_upsert_agents`]'s order.
macro_rules! bind_agents {
    ($q:expr, $a:expr) => {
        $q.bind(&$a.host_id)
            .bind(&$a.kind)
            .bind(&$a.url)
            .bind(&$a.last_seen)
            .bind(&$a.clock_offset_ms)
            .bind(&$a.key_role)
            .bind(&$a.misdated)
            .bind(&$a.misdated_at)
    };
}

/// [`AgentUpsert`]s as the arrays of [`pg_upsert_agents`], in its order.
struct AgentColumns<'a> {
    host_id: Vec<&'a str>,
    kind: Vec<String>,
    url: Vec<Option<&'a str>>,
    last_seen: Vec<i64>,
    clock_offset_ms: Vec<Option<i64>>,
    key_role: Vec<Option<String>>,
    misdated: Vec<i64>,
    misdated_at: Vec<Option<i64>>,
}

impl<'a> AgentColumns<'a> {
    fn of(agents: &[AgentUpsert<'a>]) -> Self {
        Self {
            host_id: agents.iter().map(|a| a.host_id).collect(),
            kind: agents.iter().map(|a| enum_str(a.kind)).collect(),
            url: agents.iter().map(|a| a.url).collect(),
            last_seen: agents.iter().map(|a| a.last_seen).collect(),
            clock_offset_ms: agents.iter().map(|a| a.clock_offset_ms).collect(),
            key_role: agents.iter().map(|a| a.key_role.map(enum_str)).collect(),
            misdated: agents.iter().map(|a| a.misdated).collect(),
            misdated_at: agents.iter().map(|a| a.misdated_at).collect(),
        }
    }
}

/// Record agents as heard from. `agents` must not name the same (host, kind) twice.
///
/// SQLite takes them in chunks of multi-row upserts. PostgreSQL takes them as arrays, in one
/// text that each connection prepares once: a multi-row upsert of 50 agents (400 parameters),
/// parsed and planned for every ingest batch, was a quarter of a batch's time on PostgreSQL in
/// the ingest benchmark.
async fn upsert_agents(tx: &mut WriteTx, agents: &[AgentUpsert<'_>]) -> Result<(), sqlx::Error> {
    if agents.is_empty() {
        return Ok(());
    }
    match tx.conn()? {
        db::Conn::Sqlite(c) => {
            for chunk in agents.chunks(INSERT_CHUNK) {
                let mut q = QueryBuilder::new(
                    "INSERT INTO agents
                       (host_id, kind, url, last_seen, clock_offset_ms, key_role, misdated,
                        misdated_at) ",
                );
                q.push_values(chunk, |mut b, a| {
                    b.push_bind(a.host_id)
                        .push_bind(enum_str(a.kind))
                        .push_bind(a.url)
                        .push_bind(a.last_seen)
                        .push_bind(a.clock_offset_ms)
                        .push_bind(a.key_role.map(enum_str))
                        .push_bind(a.misdated)
                        .push_bind(a.misdated_at);
                });
                q.push(agents_on_conflict!());
                q.build().persistent(false).execute(&mut *c).await?;
            }
        }
        db::Conn::Postgres(c) => {
            let a = AgentColumns::of(agents);
            let q = sqlx::query(pg_upsert_agents!("1", "2", "3", "4", "5", "6", "7", "8"));
            bind_agents!(q, a).execute(c).await?;
        }
    }
    Ok(())
}

/// PostgreSQL, a simple batch (`Store::simple_batch`): the agents' upsert and the live
/// readings' insert in one statement, which commits by itself (a statement outside a
/// transaction is one, all or nothing). One round trip where the transaction takes four
/// (BEGIN, the agents, the readings, COMMIT), each a wake-up of the engine and of its server
/// process on shared cores. Returns the readings that were new.
///
/// A batch that only `appends` (see [`history::Appends`]) is inserted without the conflict
/// check, and so all of it is new. Should one of its readings be stored already, the table's
/// key refuses the statement, nothing of it is kept, and the batch is written with the check.
/// PostgreSQL logs the refused statement in its own log; it takes a reading whose commit this
/// process did not see (sent again after its answer was lost).
async fn write_contacts_and_live(
    pool: &sqlx::PgPool,
    agents: &[AgentUpsert<'_>],
    rows: Vec<history::Row>,
    appends: bool,
) -> Result<Vec<history::Row>, sqlx::Error> {
    let (sensors, times, values) = history::columns(&rows);
    let a = AgentColumns::of(agents);
    if appends {
        let q = sqlx::query(concat!(
            "WITH contact AS (",
            pg_upsert_agents!("4", "5", "6", "7", "8", "9", "10", "11"),
            ") INSERT INTO reading_hot (sensor, ts, value)
               SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::DOUBLE PRECISION[])"
        ))
        .bind(&sensors)
        .bind(&times)
        .bind(&values);
        match bind_agents!(q, a).execute(pool).await {
            Ok(_) => return Ok(rows),
            Err(sqlx::Error::Database(e))
                if e.is_unique_violation() && e.constraint() == Some("reading_hot_pkey") =>
            {
                tracing::debug!("a batch's reading was stored before: written with the check");
            }
            Err(e) => return Err(e),
        }
    }
    let q = sqlx::query_as(history::pg_insert_readings!(
        "reading_hot",
        concat!("contact AS (", pg_upsert_agents!("4", "5", "6", "7", "8", "9", "10", "11"), "),")
    ))
    .bind(sensors)
    .bind(times)
    .bind(values);
    let inserted: history::PgInserted = bind_agents!(q, a).fetch_one(pool).await?;
    Ok(history::pg_new_rows(rows, inserted))
}

/// Stores for tests, of either backend: a SQLite file in a temp dir, or a fresh database of a
/// real PostgreSQL server this test process started (`hearth_harness::postgres`).
#[cfg(test)]
pub(crate) mod testing {
    use hearth_harness::postgres::Postgres;

    use super::{Backend, Store};

    /// A rule of the default zone: Mondays 06:00-08:00 at 21 °C.
    pub(crate) fn monday_rule(name: &str) -> hearth_proto::schedules::NewRule {
        use hearth_proto::schedules::{NewRule, Weekday, When};
        NewRule {
            name: name.into(),
            enabled: true,
            when: When::Weekly {
                days: vec![Weekday::Monday],
                start: "06:00".into(),
                end: "08:00".into(),
            },
            heat_c: Some(21.0),
            cool_c: None,
            sensors: vec![],
            zone: None,
        }
    }

    /// Keeps a test store's SQLite file (its temp dir) for as long as the test runs.
    #[derive(Debug)]
    pub(crate) struct Kept {
        _dir: Option<tempfile::TempDir>,
    }

    /// The URL of a new, empty database of `backend`, and what keeps it.
    pub(crate) fn new_database(backend: Backend) -> anyhow::Result<(String, Kept)> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite://{}", dir.path().join("t.db").display());
                Ok((url, Kept { _dir: Some(dir) }))
            }
            Backend::Postgres => {
                let url = Postgres::with_shared(|server| server.create_database("store"))?;
                Ok((url, Kept { _dir: None }))
            }
        }
    }

    /// A new SQLite database in `dir` as an engine of an earlier schema made it: migrated by
    /// the migrations before `version` only (e.g. `"0017"`). Its URL, and a pool on it (close
    /// it before [`Store::open`] migrates the rest).
    pub(crate) async fn sqlite_before(
        dir: &tempfile::TempDir,
        version: &str,
    ) -> anyhow::Result<(String, sqlx::SqlitePool)> {
        use std::str::FromStr;
        let before = dir.path().join(format!("migrations-before-{version}"));
        std::fs::create_dir(&before)?;
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().as_ref() < version {
                std::fs::copy(entry.path(), before.join(entry.file_name()))?;
            }
        }
        let url = format!("sqlite://{}", dir.path().join("hearth.db").display());
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?.create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(options).await?;
        sqlx::migrate::Migrator::new(before.as_path()).await?.run(&pool).await?;
        Ok((url, pool))
    }

    /// A store on a new, empty database of `backend`.
    pub(crate) async fn store(backend: Backend) -> anyhow::Result<(Store, Kept)> {
        let (url, kept) = new_database(backend)?;
        Ok((Store::open(&url).await?, kept))
    }

    /// `on_both_backends!(test_fn, …)`: for each `async fn test_fn(store: Store) ->
    /// anyhow::Result<()>` in scope, the tests `test_fn::sqlite` and `test_fn::postgres`, each
    /// on a new database of its backend. The store's conformance suite is every test named here.
    macro_rules! on_both_backends {
        ($($name:ident),+ $(,)?) => {
            $(
                mod $name {
                    use $crate::store::db::Backend;
                    use $crate::store::testing::store;

                    #[tokio::test]
                    async fn sqlite() -> anyhow::Result<()> {
                        let (s, _kept) = store(Backend::Sqlite).await?;
                        super::$name(s).await
                    }

                    #[tokio::test]
                    async fn postgres() -> anyhow::Result<()> {
                        let (s, _kept) = store(Backend::Postgres).await?;
                        super::$name(s).await
                    }
                }
            )+
        };
    }
    pub(crate) use on_both_backends;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(host: &str, ts: i64, value: f64, received: i64) -> NewReport {
        NewReport {
            host_id: host.into(),
            key_role: KeyRole::Sensor,
            received,
            clock_offset_ms: Some(received),
            misdated: 0,
            readings: vec![NewReading {
                sensor_id: "28-a".into(),
                kind: "DS18B20".into(),
                alias: None,
                extra: None,
                ts,
                value: Some(value),
                latest_at: Some(ts),
                misdated: false,
            }],
        }
    }

    /// On PostgreSQL a running house's batch, whose readings are all taken after their
    /// sensors' newest stored, is inserted without the conflict check (`history::Appends`).
    /// A reading stored behind that guess (here by hand, as by a write whose answer was lost)
    /// makes the table's key refuse the plain insert; the batch is then written with the
    /// check. Nothing is stored twice, nothing is lost, the readings the batch stored are
    /// counted and the other is not, and the store stays healthy. SQLite writes every batch
    /// one way, and stores the same.
    async fn a_reading_stored_behind_the_engines_guess_is_stored_once(
        store: Store,
    ) -> anyhow::Result<()> {
        let two = |ts: i64, a: f64, b: f64| {
            let mut r = report("pi", ts, a, ts);
            r.readings.push(NewReading { sensor_id: "28-b".into(), ..r.readings[0].clone() });
            r.readings[1].value = Some(b);
            r
        };
        let base = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        store.write_reports(&[two(base, 20.0, 21.0)]).await?;
        store.write_reports(&[two(base + 10_000, 20.5, 21.5)]).await?;
        let t = base + 20_000;
        let by_hand = on_pool!(&store.pool(), |p| sqlx::query(
            "INSERT INTO reading_hot (ts, sensor, value)
             SELECT $1, key, $2 FROM sensor_keys WHERE sensor_id = '28-a'"
        )
        .bind(t)
        .bind(20.75)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        assert_eq!(by_hand, 1);

        let keys = store.inner.keys.known(["28-a", "28-b"]).map(|k| k.keys);
        let rows: Vec<history::Row> =
            keys.iter().flat_map(|k| k.values()).map(|&key| (key, t, None)).collect();
        assert_eq!(rows.len(), 2, "both sensors' keys are known");
        let postgres = matches!(store.pool(), Pool::Postgres(_));
        assert_eq!(store.inner.appends.only(&rows), postgres, "the batch appends, it seems");
        store.write_reports(&[two(t, 20.75, 21.75)]).await?;
        assert_eq!(store.health(), StorageHealth::Healthy);
        for (sensor, values) in [("28-a", [20.0, 20.5, 20.75]), ("28-b", [21.0, 21.5, 21.75])] {
            let stored = store.readings(sensor, 0, i64::MAX, 100).await?;
            let want = [(base, values[0]), (base + 10_000, values[1]), (t, values[2])];
            assert_eq!(stored, want.map(|(ts, v)| (ts, Some(v))), "{sensor}");
        }
        // A reading minutes later flushes the minute's counts in memory.
        let later = t + 180_000;
        store.write_reports(&[two(later, 20.0, 21.0)]).await?;
        let counted = counted_in_minutes(&store).await?;
        assert_eq!(counted, 5, "the batches' new readings, not the one stored by hand");
        Ok(())
    }

    /// The readings the per-minute rollups count, all sensors and minutes.
    async fn counted_in_minutes(store: &Store) -> Result<i64, sqlx::Error> {
        on_pool!(&store.pool(), |p| sqlx::query_scalar(
            "SELECT CAST(SUM(n) AS BIGINT) FROM readings_minute"
        )
        .fetch_one(p)
        .await)
    }

    async fn one_batch_keeps_the_newest_reading_and_one_agent_row(
        store: Store,
    ) -> anyhow::Result<()> {
        // Newer reading first, then a replayed older one, from the same host, in one batch.
        store
            .write_reports(&[report("pi", 2_000, 21.0, 10), report("pi", 1_000, 19.0, 20)])
            .await?;
        let sensors = store.sensors().await?;
        assert_eq!((sensors[0].last_ts, sensors[0].last_value), (Some(2_000), Some(21.0)));
        let agents = store.agents().await?;
        assert_eq!(agents.len(), 1);
        assert_eq!((agents[0].last_seen, agents[0].clock_offset_ms), (20, Some(20)));
        assert_eq!(store.readings("28-a", 0, 10_000, 10).await?.len(), 2);
        Ok(())
    }

    async fn the_latest_is_never_a_reading_placed_after_its_receipt(
        store: Store,
    ) -> anyhow::Result<()> {
        let at = |ts: i64, value: f64, latest_at: Option<i64>, misdated: bool| NewReading {
            latest_at,
            misdated,
            ..report("pi", ts, value, 0).readings.remove(0)
        };
        let send = |readings: Vec<NewReading>, received: i64| {
            let misdated = readings.iter().filter(|r| r.misdated).count() as u64;
            NewReport {
                host_id: "pi".into(),
                key_role: KeyRole::Sensor,
                received,
                clock_offset_ms: None,
                misdated,
                readings,
            }
        };
        // A live reading from a clock 5 s ahead competes at its receipt (1_000).
        store.write_reports(&[send(vec![at(6_000, 20.0, Some(1_000), false)], 1_000)]).await?;
        let s = &store.sensors().await?[0];
        assert_eq!(
            (s.last_ts, s.last_value, s.value_since),
            (Some(1_000), Some(20.0), Some(1_000))
        );
        // A misdated backlog reading (an hour ahead of its receipt) is stored, never latest,
        // and counted against its agent; the same value again keeps `value_since`.
        let misdated = at(3_602_000, 15.0, None, true);
        store
            .write_reports(&[send(vec![misdated, at(2_000, 20.0, Some(2_000), false)], 2_000)])
            .await?;
        let s = &store.sensors().await?[0];
        assert_eq!(
            (s.last_ts, s.last_value, s.value_since),
            (Some(2_000), Some(20.0), Some(1_000))
        );
        assert_eq!(store.readings("28-a", 0, i64::MAX, 10).await?.len(), 3);
        let agent = &store.agents().await?[0];
        assert_eq!((agent.misdated, agent.misdated_at), (1, Some(2_000)));
        // A new value moves `value_since`; an older reading replayed later moves nothing.
        store.write_reports(&[send(vec![at(3_000, 20.5, Some(3_000), false)], 3_000)]).await?;
        store.write_reports(&[send(vec![at(1_500, 19.0, Some(1_500), false)], 4_000)]).await?;
        let s = &store.sensors().await?[0];
        assert_eq!(
            (s.last_ts, s.last_value, s.value_since),
            (Some(3_000), Some(20.5), Some(3_000))
        );
        let agent = &store.agents().await?[0];
        assert_eq!((agent.misdated, agent.misdated_at), (1, Some(2_000)), "the count stays");

        // A sensor whose only reading is misdated is known, without a latest.
        let mut lone = at(9_000_000, 18.0, None, true);
        lone.sensor_id = "28-b".into();
        store.write_reports(&[send(vec![lone], 5_000)]).await?;
        let b = store.sensors().await?.into_iter().find(|s| s.id == "28-b");
        assert_eq!(b.map(|s| (s.last_ts, s.last_value)), Some((None, None)));
        assert_eq!(store.agents().await?[0].misdated, 2);
        Ok(())
    }

    fn url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}", dir.path().join("t.db").display())
    }

    async fn stored_count(url: &str) -> anyhow::Result<i64> {
        // A pool of its own: what another process would find in the file.
        let other = sqlx::SqlitePool::connect(url).await?;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM reading_values").fetch_one(&other).await?;
        other.close().await;
        Ok(n)
    }

    #[tokio::test]
    async fn commits_are_durable() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&url(&dir)).await?;
        // 2 = FULL: the WAL is synced at each commit, so an acknowledged reading survives a
        // power cut or a storage fault (NORMAL = 1 may lose the last commits).
        let mode: i64 =
            sqlx::query_scalar("PRAGMA synchronous").fetch_one(&store.test_sqlite_pool()?).await?;
        assert_eq!(mode, 2);
        Ok(())
    }

    /// SQLite rolls a whole transaction back by itself on some failures: SQLITE_FULL or
    /// SQLITE_IOERR at COMMIT (a disk that fills up), and `RAISE(ROLLBACK)` in a trigger, used
    /// here to make it happen on demand. The connection must come out of that with no
    /// transaction and no lock, so that the next acknowledged write is really in the file.
    /// (With sqlx's `Transaction` it does not: see [`WriteTx`].) One connection, so that every
    /// write meets what the one before left.
    #[tokio::test]
    async fn a_write_after_sqlite_rolled_back_by_itself_is_stored() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = url(&dir);
        Store::open(&url).await?.close().await;
        // A connection dropped after a failure closes on its own thread: the next one may
        // have to wait a moment for its lock, as the engine's would.
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::from_str(&url)?.busy_timeout(Duration::from_secs(5)),
            )
            .await?;
        sqlx::query(
            "CREATE TRIGGER fault BEFORE INSERT ON reading_rows WHEN NEW.value = -999
             BEGIN SELECT RAISE(ROLLBACK, 'the whole transaction is gone'); END;
             CREATE TRIGGER refuse BEFORE INSERT ON reading_rows WHEN NEW.value = -998
             BEGIN SELECT RAISE(ABORT, 'this statement fails'); END",
        )
        .execute(&pool)
        .await?;
        let write = |value: f64| {
            let pool = pool.clone();
            async move {
                let mut tx = WriteTx::begin(&Pool::Sqlite(pool)).await?;
                on_conn!(tx.conn()?, |c| sqlx::query(
                    "INSERT INTO reading_rows (sensor, ts, value) VALUES (1, $1, $2)"
                )
                .bind(value as i64)
                .bind(value)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
                tx.commit().await
            }
        };
        assert!(write(-999.0).await.is_err());
        assert!(write(-998.0).await.is_err());
        write(21.0).await?;
        pool.close().await;
        assert_eq!(stored_count(&url).await?, 1, "an acknowledged write is not in the file");
        // And nobody holds the write lock: another connection writes at once.
        let other = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(SqliteConnectOptions::from_str(&url)?.busy_timeout(Duration::ZERO))
            .await?;
        sqlx::query("INSERT INTO storage_probe (id, at) VALUES (1, 0) ON CONFLICT DO NOTHING")
            .execute(&other)
            .await?;
        other.close().await;
        Ok(())
    }

    /// A real storage fault from SQLite (a write on a read-only connection).
    async fn readonly_error(url: &str) -> anyhow::Result<sqlx::Error> {
        let ro =
            sqlx::SqlitePool::connect_with(SqliteConnectOptions::from_str(url)?.read_only(true))
                .await?;
        let err = sqlx::query("DELETE FROM storage_probe")
            .execute(&ro)
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("a read-only connection wrote"))?;
        ro.close().await;
        Ok(err)
    }

    #[tokio::test]
    async fn a_storage_fault_degrades_until_the_probe_stores_again() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = url(&dir);
        let store = Store::open(&url).await?;
        assert!(store.health().is_healthy());
        let not_a_fault =
            sqlx::query("SELECT * FROM no_such_table").execute(&store.test_sqlite_pool()?).await;
        store.observe(&not_a_fault.err().ok_or_else(|| anyhow::anyhow!("no error"))?);
        assert!(store.health().is_healthy(), "a mistaken query is not a storage fault");

        let before = store.test_sqlite_pool()?;
        store.observe(&readonly_error(&url).await?);
        let StorageHealth::Degraded { reason, .. } = store.health() else {
            anyhow::bail!("not degraded");
        };
        assert!(reason.contains("read-only"), "{reason}");
        // Every connection from before the fault is let go of.
        assert!(
            before.is_closed()
                || tokio::time::timeout(Duration::from_secs(5), async {
                    while !before.is_closed() {
                        tokio::task::yield_now().await;
                    }
                })
                .await
                .is_ok()
        );

        // The disk is fine: the probe finds so within a couple of its periods.
        let mut health = store.subscribe_health();
        tokio::time::timeout(health::PROBE_EVERY * 5, health.wait_for(StorageHealth::is_healthy))
            .await??;
        store.write_reports(&[report("pi", 1_000, 20.0, 1_000)]).await?;
        assert_eq!(stored_count(&url).await?, 1);
        Ok(())
    }

    pub(in crate::store) fn output(id: &str, state: RelayState) -> anyhow::Result<OutputStatus> {
        Ok(serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "state": state, "safe_state": "off", "function_hint": "heat",
            "lease_remaining_s": null, "changed_s_ago": 1.0, "cycles": 0,
            "protection": {"min_on_s": 0, "min_off_s": 0, "max_on_s": null, "interlocked_with": []},
            "pending_off_in_s": null, "on_blocked_for_s": null,
            "last_command": null, "last_fallback": null
        }))?)
    }

    /// An output is listed as soon as its agent registers, before the registration commits;
    /// its fallback can be set from then on (the end-to-end fallback test once got a 404 for
    /// an output it had just seen listed).
    #[tokio::test]
    async fn an_output_listed_while_its_registration_commits_takes_a_fallback() -> anyhow::Result<()>
    {
        let (store, _kept) = testing::store(Backend::Sqlite).await?;
        let outputs = [output("heat", RelayState::Off)?];
        let reg = Registration {
            host_id: "r",
            url: "http://r:1",
            backend: Some("simulated"),
            outputs: &outputs,
            now: 1_000,
            clock_offset_ms: None,
            key_role: KeyRole::Relay,
        };
        // What `register_relays` does, with the commit held back.
        let registering = store.inner.relay_writes.lock().await;
        store.inner.held.registration(&reg);
        assert!(store.relays().await?.iter().any(|r| r.output_id == "heat"));
        let fallback = {
            let store = store.clone();
            tokio::spawn(async move { store.set_relay_fallback("r", "heat", None).await })
        };
        let function = {
            let store = store.clone();
            tokio::spawn(async move {
                store.set_relay_function("r", "heat", Some(RelayFunction::Heat)).await
            })
        };
        store.register_relays_tx(&reg).await?;
        drop(registering);
        assert!(fallback.await??, "an output that was listed was not found");
        assert!(function.await??, "an output that was listed was not found");
        Ok(())
    }

    #[tokio::test]
    async fn control_sees_relay_answers_that_could_not_be_stored() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = url(&dir);
        let store = Store::open(&url).await?;
        let outputs = [output("heat", RelayState::Off)?];
        let reg = |host_id, url, now| Registration {
            host_id,
            url,
            backend: Some("simulated"),
            outputs: &outputs,
            now,
            clock_offset_ms: None,
            key_role: KeyRole::Relay,
        };
        store.register_relays(&reg("r", "http://r:1", 1_000)).await?;
        assert_eq!(store.relays().await?[0].state, RelayState::Off);
        // A storage fault: the answer to the next command is not stored, but it is what
        // protects the equipment in the next decision.
        store.observe(&readonly_error(&url).await?);
        let sent = store.relay_epoch("r");
        assert!(store.inner.held.relay_status(
            "r",
            &output("heat", RelayState::On)?,
            true,
            2_000,
            sent
        ));
        let relays = store.relays().await?;
        assert_eq!((relays.len(), relays[0].state, relays[0].updated), (1, RelayState::On, 2_000));
        assert_eq!(relays[0].url.as_deref(), Some("http://r:1"));
        // A relay agent that registers during the fault is known to control as well.
        store.inner.held.registration(&reg("r2", "http://r2:1", 3_000));
        assert_eq!(store.relays().await?.len(), 2);
        Ok(())
    }

    /// The relay agent restarted while the answer to a renewal sent before was on its way: the
    /// answer ("on", from the process that is gone) is handled after the registration ("off
    /// since now") and must not replace it, in memory nor in the database.
    async fn an_answer_to_a_call_sent_before_a_registration_is_not_recorded(
        store: Store,
    ) -> anyhow::Result<()> {
        let off = [output("heat", RelayState::Off)?];
        let reg = |now| Registration {
            host_id: "r",
            url: "http://r:1",
            backend: None,
            outputs: &off,
            now,
            clock_offset_ms: None,
            key_role: KeyRole::Relay,
        };
        store.register_relays(&reg(1_000)).await?;
        let sent = store.relay_epoch("r");
        store.register_relays(&reg(2_000)).await?;
        let on = output("heat", RelayState::On)?;
        assert!(!store.set_relay_status("r", &on, true, 3_000, sent).await?);
        assert!(!store.set_relay_refusal("r", "heat", "minimum off time", 3_000, sent).await?);
        for rows in [store.relays().await?, store.read_relays().await?] {
            let r = &rows[0];
            assert_eq!(
                (r.state, r.updated, r.command_error.as_deref()),
                (RelayState::Off, 2_000, None)
            );
        }
        // A call sent after the registration is the agent's word on its new process.
        let sent = store.relay_epoch("r");
        assert!(store.set_relay_status("r", &on, true, 4_000, sent).await?);
        for rows in [store.relays().await?, store.read_relays().await?] {
            assert_eq!((rows[0].state, rows[0].updated), (RelayState::On, 4_000));
        }
        Ok(())
    }

    async fn control_sees_held_readings_and_the_last_rows_read(store: Store) -> anyhow::Result<()> {
        store.write_reports(&[report("pi", 1_000, 19.0, 1_000)]).await?;
        assert_eq!(store.sensors().await?[0].last_value, Some(19.0));
        // Not stored (a fault), but held: the newer reading is what control sees.
        store.hold_readings(&report("pi", 2_000, 19.5, 2_000));
        // An older one never replaces it; one stamped after its arrival is held as taken then.
        store.hold_readings(&report("pi", 1_500, 18.0, 2_100));
        let mut ahead = report("pi2", 9_000, 20.0, 3_000);
        // As the clock places a live reading stamped ahead: the latest at its receipt.
        ahead.readings[0].latest_at = Some(3_000);
        store.hold_readings(&ahead);
        let s = store.sensors().await?;
        assert_eq!((s[0].last_ts, s[0].last_value), (Some(3_000), Some(20.0)));
        assert_eq!(s[0].host_id, "pi2");
        // The database stops answering: the last rows read, with what is held.
        store.pool().close().await;
        let s = store.sensors().await?;
        assert_eq!((s.len(), s[0].last_value), (1, Some(20.0)));
        Ok(())
    }

    /// A chart's first read (at most 501 raw readings of one sensor) stops at its LIMIT on
    /// PostgreSQL: the plan reads both primary keys (`reading_rows`' and `reading_hot`'s, of
    /// migration 0019) in time order, merges them, and sorts nothing. Through the join of the
    /// `readings` view it read and sorted the whole range (a year of one sensor: 1.1 s in the
    /// ingest benchmark).
    #[tokio::test]
    async fn a_sensors_raw_range_is_read_in_key_order_on_postgresql() -> anyhow::Result<()> {
        let (store, _kept) = testing::store(Backend::Postgres).await?;
        store.write_reports(&[report("pi", 0, 20.0, 0)]).await?;
        let Pool::Postgres(pg) = store.test_pool() else { anyhow::bail!("not PostgreSQL") };
        sqlx::query(
            "INSERT INTO reading_rows (sensor, ts, value)
             SELECT k.key, i * 10000, 20 FROM sensor_keys k, generate_series(1, 200000) i",
        )
        .execute(&pg)
        .await?;
        sqlx::query(
            "INSERT INTO reading_hot (ts, sensor, value)
             SELECT 2000000000 + i * 10000, k.key, 20
             FROM sensor_keys k, generate_series(1, 1000) i",
        )
        .execute(&pg)
        .await?;
        sqlx::query("ANALYZE").execute(&pg).await?;
        let plan: Vec<String> =
            sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN {READINGS_OF_SENSOR}")))
                .bind("28-a")
                .bind(0_i64)
                .bind(i64::MAX)
                .bind(501_i64)
                .fetch_all(&pg)
                .await?;
        let plan = plan.join("\n");
        // A Sort node; the Merge Append's own "Sort Key" line is not one.
        let sorts = plan
            .lines()
            .map(|l| l.trim_start_matches([' ', '-', '>']))
            .any(|l| l.contains("Sort  (") && !l.starts_with("Merge"));
        assert!(plan.contains("Limit") && plan.contains("Merge Append") && !sorts, "{plan}");
        Ok(())
    }

    /// The same on SQLite, and the raw readings a chart aggregates after the rollups (through
    /// the `readings` view, which joins the sensor's id) are searched by both keys: the views
    /// of migration 0019 are compound, and a compound view a query cannot reach into is
    /// materialised whole.
    #[tokio::test]
    async fn a_sensors_raw_range_is_read_in_key_order_on_sqlite() -> anyhow::Result<()> {
        let (store, _kept) = testing::store(Backend::Sqlite).await?;
        store.write_reports(&[report("pi", 0, 20.0, 0)]).await?;
        let pool = store.test_sqlite_pool()?;
        let plan = |sql: String| {
            let pool = pool.clone();
            async move {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                        .bind("28-a")
                        .bind(0_i64)
                        .bind(i64::MAX)
                        .bind(501_i64)
                        .fetch_all(&pool)
                        .await?;
                anyhow::Ok(rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n"))
            }
        };
        let chart = plan(READINGS_OF_SENSOR.to_owned()).await?;
        for step in [
            "MERGE (UNION ALL)",
            "SEARCH r USING PRIMARY KEY (sensor=? AND ts>? AND ts<?)",
            "SEARCH h USING PRIMARY KEY (ts>? AND ts<?)",
        ] {
            assert!(chart.contains(step), "{step} not in\n{chart}");
        }
        assert!(!chart.contains("TEMP B-TREE"), "{chart}");
        let raw = plan(
            "SELECT COUNT(value) FROM readings WHERE sensor_id = $1 AND ts >= $2 AND ts < $3
             AND $4 > 0"
                .to_owned(),
        )
        .await?;
        for step in [
            "SEARCH r USING PRIMARY KEY (sensor=? AND ts>? AND ts<?)",
            "SEARCH h USING PRIMARY KEY (ts>? AND ts<?)",
        ] {
            assert!(raw.contains(step), "{step} not in\n{raw}");
        }
        // The co-routine's own rows are read once; no table is scanned.
        assert!(!raw.lines().any(|l| l.starts_with("SCAN ") && l != "SCAN readings"), "{raw}");
        Ok(())
    }

    /// The PostgreSQL schema (`engine/migrations/postgres/`) is the SQLite one in other types:
    /// the same tables with the same columns, at the same version, with the same default house.
    /// A migration added to one backend and not the other fails here.
    #[tokio::test]
    async fn both_backends_migrate_to_the_same_tables_and_columns() -> anyhow::Result<()> {
        use std::collections::BTreeSet;

        let dir = tempfile::tempdir()?;
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await?;
        let lite: BTreeSet<(String, String)> = sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%'
               AND m.name != '_sqlx_migrations'",
        )
        .fetch_all(&store.test_sqlite_pool()?)
        .await?
        .into_iter()
        .collect();
        let lite_house: Vec<(String, String)> =
            sqlx::query_as("SELECT spec, (SELECT spec FROM plants) FROM zones")
                .fetch_all(&store.test_sqlite_pool()?)
                .await?;

        let url = hearth_harness::postgres::Postgres::with_shared(|server| {
            server.create_database("schema")
        })?;
        let pg = sqlx::PgPool::connect(&url).await?;
        PG_MIGRATOR.run(&pg).await?;
        let post: BTreeSet<(String, String)> = sqlx::query_as(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name != '_sqlx_migrations'",
        )
        .fetch_all(&pg)
        .await?
        .into_iter()
        .collect();
        let pg_house: Vec<(String, String)> =
            sqlx::query_as("SELECT spec, (SELECT spec FROM plants) FROM zones")
                .fetch_all(&pg)
                .await?;
        pg.close().await;

        assert!(!lite.is_empty());
        assert_eq!(
            lite.symmetric_difference(&post).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "columns of one backend only"
        );
        assert_eq!(lite_house, pg_house, "the default house differs");
        let last = |m: &sqlx::migrate::Migrator| m.iter().map(|m| m.version).max();
        assert_eq!(last(&MIGRATOR), last(&PG_MIGRATOR), "the backends' schema versions differ");
        Ok(())
    }

    /// The row as the database holds it, without anything in memory laid over it.
    async fn row_on_disk(
        store: &Store,
    ) -> Result<(Option<i64>, Option<f64>, Option<i64>), sqlx::Error> {
        on_pool!(&store.pool(), |p| sqlx::query_as(
            "SELECT last_ts, last_value, value_since FROM sensors WHERE id = '28-a'"
        )
        .fetch_one(p)
        .await)
    }

    /// A sensor's first reading writes its row in its batch; later ones wait in memory, are
    /// laid over the rows a reader reads, and are written behind, with `value_since` exact
    /// across what waited (a value that went A → B → A changed at the last A, although the
    /// row held A). Reading the sensors writes nothing: it used to, and held the write lock
    /// that ingest waits on four times a second under load.
    async fn the_newest_readings_are_written_behind_and_exactly(
        store: Store,
    ) -> anyhow::Result<()> {
        let newest = |s: &SensorRow| (s.last_ts, s.last_value, s.value_since);
        store.write_reports(&[report("pi", 1_000, 20.0, 1_000)]).await?;
        assert_eq!(row_on_disk(&store).await?, (Some(1_000), Some(20.0), Some(1_000)));
        for (ts, value) in [(2_000, 21.0), (3_000, 20.0), (4_000, 20.0)] {
            store.write_reports(&[report("pi", ts, value, ts)]).await?;
        }
        assert_eq!(row_on_disk(&store).await?, (Some(1_000), Some(20.0), Some(1_000)));
        let s = &store.sensors().await?[0];
        assert_eq!(newest(s), (Some(4_000), Some(20.0), Some(3_000)));
        assert_eq!(
            row_on_disk(&store).await?,
            (Some(1_000), Some(20.0), Some(1_000)),
            "a read writes nothing"
        );
        store.flush_latest().await?;
        assert_eq!(row_on_disk(&store).await?, (Some(4_000), Some(20.0), Some(3_000)));
        assert_eq!(newest(&store.sensors().await?[0]), (Some(4_000), Some(20.0), Some(3_000)));
        // An older reading replayed later moves nothing; the same value keeps its since.
        store.write_reports(&[report("pi", 2_500, 25.0, 5_000)]).await?;
        store.write_reports(&[report("pi", 5_000, 20.0, 5_000)]).await?;
        assert_eq!(row_on_disk(&store).await?, (Some(4_000), Some(20.0), Some(3_000)));
        assert_eq!(newest(&store.sensors().await?[0]), (Some(5_000), Some(20.0), Some(3_000)));
        store.flush_latest().await?;
        assert_eq!(row_on_disk(&store).await?, (Some(5_000), Some(20.0), Some(3_000)));
        Ok(())
    }

    /// The newest readings that waited are written even to a row that is gone (deleted behind
    /// the engine's back, as by hand): PostgreSQL writes them with an UPDATE of the rows that
    /// exist and an insert of the others (`latest::update_pg`), SQLite with the upsert.
    async fn the_newest_readings_bring_back_a_row_removed_behind_the_engine(
        store: Store,
    ) -> anyhow::Result<()> {
        store.write_reports(&[report("pi", 1_000, 20.0, 1_000)]).await?;
        store.write_reports(&[report("pi", 2_000, 21.0, 2_000)]).await?;
        on_pool!(&store.pool(), |p| sqlx::query("DELETE FROM sensors")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        store.flush_latest().await?;
        assert_eq!(row_on_disk(&store).await?, (Some(2_000), Some(21.0), Some(2_000)));
        // And the row is updated, not inserted again, from then on.
        store.write_reports(&[report("pi", 3_000, 21.0, 3_000)]).await?;
        store.flush_latest().await?;
        assert_eq!(row_on_disk(&store).await?, (Some(3_000), Some(21.0), Some(2_000)));
        Ok(())
    }

    /// A storage that fails may lose the commits it confirmed last (`acked.rs`): the readings
    /// acknowledged just before a fault are written again when the storage recovers, before it
    /// counts as healthy, and what it kept is neither stored nor counted in the rollups twice.
    async fn readings_acknowledged_before_a_fault_are_written_again_when_it_recovers(
        store: Store,
    ) -> anyhow::Result<()> {
        store.commit_reports(&[report("pi", 1_000, 20.0, 1_000)]).await?;
        store.commit_reports(&[report("pi", 2_000, 21.0, 2_000)]).await?;
        // The storage loses the last commit it confirmed; then the fault shows.
        for sql in
            ["DELETE FROM reading_hot WHERE ts = 2000", "DELETE FROM reading_rows WHERE ts = 2000"]
        {
            on_pool!(&store.pool(), |p| sqlx::query(sql)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
        }
        store.degrade("the disk reports an I/O error (test)".into());
        assert!(store.commit_reports(&[report("pi", 3_000, 22.0, 3_000)]).await.is_ok());

        let mut health = store.subscribe_health();
        tokio::time::timeout(health::PROBE_EVERY * 5, health.wait_for(StorageHealth::is_healthy))
            .await??;
        let stored: Vec<(i64, Option<f64>)> = on_pool!(&store.pool(), |p| sqlx::query_as(
            "SELECT ts, value FROM readings WHERE sensor_id = '28-a' ORDER BY ts"
        )
        .fetch_all(p)
        .await)?;
        assert_eq!(stored, [(1_000, Some(20.0)), (2_000, Some(21.0)), (3_000, Some(22.0))]);
        // Minutes later: the first minute's counts move from memory to the table.
        store.commit_reports(&[report("pi", 200_000, 23.0, 200_000)]).await?;
        let counted: i64 = on_pool!(&store.pool(), |p| sqlx::query_scalar(
            "SELECT CAST(SUM(n) AS BIGINT) FROM minute_rows WHERE bucket < 60000"
        )
        .fetch_one(p)
        .await)?;
        assert_eq!(counted, 3, "every reading counted once in its minute");
        Ok(())
    }

    /// The database met at a recovery may be an older copy (a file restored from a backup),
    /// whose sensor keys are not the ones this process handed out: the keys are read from it
    /// again, or a sensor's readings would be stored under another sensor's key.
    async fn a_recovery_reads_the_sensor_keys_of_the_database_it_meets(
        store: Store,
    ) -> anyhow::Result<()> {
        store.commit_reports(&[report("pi", 1_000, 20.0, 1_000)]).await?;
        // The restored copy never saw 28-a: the key this process gave it is another sensor's.
        for sql in [
            "DELETE FROM reading_hot",
            "DELETE FROM reading_rows",
            "DELETE FROM minute_rows",
            "DELETE FROM hour_rows",
            "UPDATE sensor_keys SET sensor_id = '28-z' WHERE sensor_id = '28-a'",
        ] {
            on_pool!(&store.pool(), |p| sqlx::query(sql)
                .execute(p)
                .await
                .map(|r| r.rows_affected()))?;
        }
        store.degrade("the database was restored from a backup (test)".into());
        let mut health = store.subscribe_health();
        tokio::time::timeout(health::PROBE_EVERY * 5, health.wait_for(StorageHealth::is_healthy))
            .await??;
        store.commit_reports(&[report("pi", 2_000, 21.0, 2_000)]).await?;

        // 1,000 is the reading acknowledged before the fault, written again (`acked.rs`).
        let stored: Vec<(String, i64)> = on_pool!(&store.pool(), |p| sqlx::query_as(
            "SELECT sensor_id, ts FROM readings ORDER BY sensor_id, ts"
        )
        .fetch_all(p)
        .await)?;
        assert_eq!(stored, [("28-a".to_owned(), 1_000), ("28-a".to_owned(), 2_000)]);
        Ok(())
    }

    /// The sensors rows are read from the table once and then answered from memory, always
    /// as the table holds them: across readings that wait, a flush, a sensor's settings and
    /// a new sensor (`latest.rs` tests a read that a write overtakes).
    async fn the_sensors_rows_kept_in_memory_are_the_tables(store: Store) -> anyhow::Result<()> {
        type Columns =
            (String, String, Option<i64>, Option<f64>, Option<i64>, Option<String>, f64, f64);
        let columns = |rows: Vec<SensorRow>| -> Vec<Columns> {
            let mut rows: Vec<Columns> = rows
                .into_iter()
                .map(|s| {
                    let SensorRow { id, host_id, last_ts, last_value, value_since, name, .. } = s;
                    (id, host_id, last_ts, last_value, value_since, name, s.weight, s.offset_c)
                })
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows
        };
        let table = async || -> anyhow::Result<Vec<Columns>> {
            let rows: Vec<SensorRow> =
                on_pool!(&store.pool(), |p| sqlx::query_as(SENSOR_ROWS).fetch_all(p).await)?;
            Ok(columns(rows))
        };
        let two = |ts: i64, a: f64, b: f64| NewReport {
            readings: vec![
                report("pi", ts, a, ts).readings.remove(0),
                NewReading {
                    sensor_id: "28-b".into(),
                    ..report("pi", ts, b, ts).readings.remove(0)
                },
            ],
            ..report("pi", ts, a, ts)
        };
        store.write_reports(&[two(1_000, 20.0, 18.0)]).await?;
        assert_eq!(columns(store.sensors().await?), table().await?);

        // Behind the store's back: not seen, the rows are not read again.
        on_pool!(&store.pool(), |p| sqlx::query(
            "UPDATE sensors SET name = 'behind' WHERE id = '28-b'"
        )
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?;
        let kept = columns(store.sensors().await?);
        assert_eq!(kept[1].5, None, "answered from memory");

        store.write_reports(&[two(2_000, 21.0, 18.0)]).await?;
        let waiting = columns(store.sensors().await?);
        assert_eq!(
            (waiting[0].2, waiting[0].3, waiting[0].4),
            (Some(2_000), Some(21.0), Some(2_000))
        );
        assert_eq!(
            (waiting[1].2, waiting[1].3, waiting[1].4),
            (Some(2_000), Some(18.0), Some(1_000))
        );
        store.flush_latest().await?;
        let mut on_disk = table().await?;
        on_disk[1].5 = None;
        assert_eq!(columns(store.sensors().await?), on_disk, "the flush laid over what is kept");
        assert_eq!(waiting, on_disk);

        let settings = hearth_proto::sensors::SensorSettings {
            name: Some("Hall".into()),
            weight: 2.0,
            offset_c: -0.5,
        };
        assert!(store.set_sensor_settings("28-a", &settings).await?);
        let read = columns(store.sensors().await?);
        assert_eq!(read, table().await?, "read again after the settings changed");
        assert_eq!((read[0].5.as_deref(), read[1].5.as_deref()), (Some("Hall"), Some("behind")));

        let new = NewReport {
            readings: vec![NewReading {
                sensor_id: "28-c".into(),
                ..report("pi", 3_000, 5.0, 3_000).readings.remove(0)
            }],
            ..report("pi", 3_000, 5.0, 3_000)
        };
        store.write_reports(&[new, two(3_000, 22.0, 18.5)]).await?;
        let read = columns(store.sensors().await?);
        assert_eq!(read.len(), 3, "a new sensor's row is read");
        store.flush_latest().await?;
        assert_eq!(read, table().await?);
        Ok(())
    }

    /// A running house's batch (every sensor's row and key known, every reading live) is
    /// written without a transaction on PostgreSQL (`Store::simple_batch`,
    /// `write_contacts_and_live`) and in one on SQLite; both store the same: every reading
    /// once, the agents' contacts (misdated readings summed per host), the rollups counting
    /// only what was new when part of the batch is a replay.
    async fn a_running_houses_batch_stores_its_readings_and_contacts(
        store: Store,
    ) -> anyhow::Result<()> {
        let reading = |sensor: &str, ts: i64, value: f64| NewReading {
            sensor_id: sensor.into(),
            ..report("pi", ts, value, ts).readings.remove(0)
        };
        let send =
            |host: &str, readings: Vec<NewReading>, received: i64, misdated: u64| NewReport {
                host_id: host.into(),
                key_role: KeyRole::Sensor,
                received,
                clock_offset_ms: Some(received % 7),
                misdated,
                readings,
            };
        let base = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let first = [
            send("pi-1", vec![reading("28-a", base, 20.0), reading("28-b", base, 21.0)], base, 0),
            send("pi-2", vec![reading("28-c", base, 22.0)], base, 0),
        ];
        let all = |reports: &[NewReport]| -> Vec<NewReading> {
            reports.iter().flat_map(|r| r.readings.clone()).collect()
        };
        let simple = |reports: &[NewReport]| -> anyhow::Result<bool> {
            let readings = all(reports);
            let refs: Vec<&NewReading> = readings.iter().collect();
            let rolled = store.inner.rollups.before().unwrap_or(i64::MIN);
            Ok(store.simple_batch(&Contacts::of(reports), &refs, rolled)?.is_some())
        };
        assert!(!simple(&first)?, "new sensors: their rows and keys are written first");
        store.write_reports(&first).await?;

        let t = base + 10_000;
        let second = [
            send("pi-1", vec![reading("28-a", t, 20.5), reading("28-b", t, 21.0)], t, 1),
            send("pi-2", vec![reading("28-c", t, 22.5)], t, 0),
            send("pi-1", vec![reading("28-a", t + 1, 20.5)], t + 5, 2),
        ];
        assert!(simple(&second)?, "known sensors, live readings");
        store.write_reports(&second).await?;
        // A replay of the whole batch with one new reading in it.
        let mut third = second.to_vec();
        third[2].readings.push(reading("28-c", t + 2, 23.0));
        third[2].misdated = 0;
        third[0].misdated = 0;
        assert!(simple(&third)?);
        store.write_reports(&third).await?;
        let late = [send("pi-2", vec![reading("28-c", base - 3_600_000, 19.0)], t, 0)];
        assert!(!simple(&late)?, "a reading before the rollups' mark goes with its rollups");

        let mut agents: Vec<(String, i64, Option<i64>, i64)> = store
            .agents()
            .await?
            .into_iter()
            .map(|a| (a.host_id, a.last_seen, a.clock_offset_ms, a.misdated))
            .collect();
        agents.sort();
        assert_eq!(
            agents,
            [
                ("pi-1".to_owned(), t + 5, Some((t + 5) % 7), 3),
                ("pi-2".to_owned(), t, Some(t % 7), 0)
            ]
        );
        let mut stored = 0;
        for sensor in ["28-a", "28-b", "28-c"] {
            stored += store.readings(sensor, 0, i64::MAX, 100).await?.len();
        }
        assert_eq!(stored, 3 + 4 + 1);
        // A reading minutes later flushes the counts in memory of the minutes before.
        let later = t + 180_000;
        store.write_reports(&[send("pi-1", vec![reading("28-a", later, 20.0)], later, 0)]).await?;
        assert!(store.rolled_before().await? > t + 2, "the batches' minutes are flushed");
        let counted = counted_in_minutes(&store).await?;
        assert_eq!(counted, 8, "each reading counted once, a replayed one too");
        let c = store.sensors().await?.into_iter().find(|s| s.id == "28-c");
        assert_eq!(c.map(|s| (s.last_ts, s.last_value)), Some((Some(t + 2), Some(23.0))));
        Ok(())
    }

    /// The pool hands out a connection used within `PING_IDLE_AFTER` untested (one round trip
    /// less per write); one idle for longer is pinged first. So a server that closed the pool's
    /// connections while the house was quiet (a restart, an administrator) costs no fault: the
    /// next write opens a new connection and the store stays healthy.
    #[tokio::test]
    async fn a_postgresql_connection_closed_while_idle_is_replaced_without_a_fault()
    -> anyhow::Result<()> {
        use sqlx::Connection as _;
        let (url, _kept) = testing::new_database(Backend::Postgres)?;
        let store = Store::open(&url).await?;
        store.write_reports(&[report("pi", 1_000, 20.0, 1_000)]).await?;
        let mut admin = sqlx::PgConnection::connect(&url).await?;
        let closed: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_all(&mut admin)
        .await?;
        assert!(!closed.is_empty() && closed.iter().all(|c| *c), "closed: {closed:?}");
        // Past the threshold, so that the next acquire tests what it hands out.
        tokio::time::sleep(db::PING_IDLE_AFTER + Duration::from_millis(100)).await;
        store.write_reports(&[report("pi", 2_000, 21.0, 2_000)]).await?;
        assert_eq!(store.health(), StorageHealth::Healthy);
        let stored: i64 =
            sqlx::query_scalar("SELECT count(*) FROM readings").fetch_one(&mut admin).await?;
        assert_eq!(stored, 2);
        store.close().await;
        Ok(())
    }

    crate::store::testing::on_both_backends!(
        a_running_houses_batch_stores_its_readings_and_contacts,
        a_reading_stored_behind_the_engines_guess_is_stored_once,
        the_newest_readings_are_written_behind_and_exactly,
        the_newest_readings_bring_back_a_row_removed_behind_the_engine,
        readings_acknowledged_before_a_fault_are_written_again_when_it_recovers,
        a_recovery_reads_the_sensor_keys_of_the_database_it_meets,
        the_sensors_rows_kept_in_memory_are_the_tables,
        one_batch_keeps_the_newest_reading_and_one_agent_row,
        the_latest_is_never_a_reading_placed_after_its_receipt,
        an_answer_to_a_call_sent_before_a_registration_is_not_recorded,
        control_sees_held_readings_and_the_last_rows_read,
    );
}
