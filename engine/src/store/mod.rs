//! The database: the only module that speaks SQL (invariant: only the engine touches the
//! database, and inside the engine only this module).
//!
//! SQLite is the embedded default: one file, WAL, `synchronous = NORMAL` (a power cut may lose
//! the last commits but never corrupts the file). Queries are plain `query()/query_as()` so the
//! PostgreSQL backend can follow with the same statements tested against both.

mod schedules;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use hearth_proto::Timestamp;
use hearth_proto::agents::{AgentKind, KeyRole};
use hearth_proto::control::{ControlSettings, Decision};
use hearth_proto::relays::{OutputStatus, RelayFunction, RelayState};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, SqlitePool};

use crate::calibration::{calibrated, display_name};

pub(crate) use schedules::Schedules;
mod history;

/// Rows per multi-row INSERT: at most 7 bound values each, under SQLite's 32766 variables.
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

impl SensorRow {
    /// The newest value, calibrated.
    pub(crate) fn latest(&self) -> Option<f64> {
        self.last_value.map(|v| calibrated(v, self.offset_c))
    }

    /// The name people see.
    pub(crate) fn display_name(&self) -> &str {
        display_name(&self.id, self.name.as_deref(), self.alias.as_deref())
    }
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
    pool: SqlitePool,
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
    pub(crate) async fn open(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            anyhow::bail!(
                "PostgreSQL is not supported yet by this build; use a sqlite:// URL (see README)"
            );
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| anyhow::anyhow!("bad database URL {url:?}: {e}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|e| anyhow::anyhow!("cannot open database {url:?}: {e}"))?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| anyhow::anyhow!("database migration failed: {e}"))?;
        Ok(Self { pool })
    }

    /// Cheap health check for `/v1/status`.
    pub(crate) async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// Close the pool (checkpoints the WAL).
    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    /// Store several reports in one transaction: the group commit of the ingest path. Every
    /// table gets multi-row statements (one per chunk), never one statement per reading: at
    /// ~50 µs a statement, per-row upserts would cap ingest near 20k readings/s.
    pub(crate) async fn write_reports(&self, reports: &[NewReport]) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        let all: Vec<&NewReading> = reports.iter().flat_map(|r| &r.readings).collect();
        history::insert_readings(&mut tx, &all).await?;

        // One row per sensor and per host: an upsert may not touch a row twice in one
        // statement (PostgreSQL refuses it), and only the newest reading of a sensor can win.
        let mut sensors: BTreeMap<&str, SensorUpsert<'_>> = BTreeMap::new();
        let mut hosts: BTreeMap<&str, AgentUpsert<'_>> = BTreeMap::new();
        for report in reports {
            for r in &report.readings {
                let slot = sensors.entry(&r.sensor_id).or_insert(SensorUpsert {
                    host_id: &report.host_id,
                    reading: r,
                    latest: None,
                });
                // The newest reading that may be the latest wins, and describes the sensor; a
                // sensor with none of those is still described (by its first reading).
                if let Some(at) = r.latest_at
                    && slot.latest.is_none_or(|(t, _)| at >= t)
                {
                    *slot = SensorUpsert {
                        host_id: &report.host_id,
                        reading: r,
                        latest: Some((at, r.value)),
                    };
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
        let sensors: Vec<SensorUpsert<'_>> = sensors.into_values().collect();
        for chunk in sensors.chunks(INSERT_CHUNK) {
            let mut q = QueryBuilder::new(
                "INSERT INTO sensors
                   (id, host_id, kind, alias, extra, last_ts, last_value, value_since) ",
            );
            q.push_values(chunk, |mut b, s| {
                let r = s.reading;
                let (at, value) = s.latest.unzip();
                b.push_bind(&r.sensor_id)
                    .push_bind(s.host_id)
                    .push_bind(&r.kind)
                    .push_bind(&r.alias)
                    .push_bind(&r.extra)
                    .push_bind(at)
                    .push_bind(value.flatten())
                    .push_bind(at);
            });
            // The sensor's description (host, type, alias, extra) follows its newest reading
            // too: a replayed backlog must not bring back an alias renamed since. `value_since`
            // moves only when the newest value changes (a stuck probe is one whose value stays).
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
                     THEN sensors.value_since
                     WHEN sensors.last_ts IS NOT NULL AND excluded.last_value IS sensors.last_value
                     THEN COALESCE(sensors.value_since, sensors.last_ts)
                     ELSE excluded.last_ts END,
                   last_value = CASE WHEN excluded.last_ts IS NULL
                     OR excluded.last_ts < COALESCE(sensors.last_ts, excluded.last_ts)
                     THEN sensors.last_value ELSE excluded.last_value END,
                   last_ts = CASE WHEN excluded.last_ts IS NULL
                     OR excluded.last_ts < COALESCE(sensors.last_ts, excluded.last_ts)
                     THEN sensors.last_ts ELSE excluded.last_ts END",
            );
            q.build().execute(&mut *tx).await?;
        }
        let agents: Vec<AgentUpsert<'_>> = hosts.into_values().collect();
        upsert_agents(&mut tx, &agents).await?;
        tx.commit().await
    }

    pub(crate) async fn sensors(&self) -> Result<Vec<SensorRow>, sqlx::Error> {
        sqlx::query_as(
            "SELECT id, host_id, kind, alias, extra, last_ts, last_value, value_since, name,
                    weight, offset_c
             FROM sensors ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// A sensor's calibration offset; None when the sensor is unknown.
    pub(crate) async fn sensor_offset(&self, id: &str) -> Result<Option<f64>, sqlx::Error> {
        sqlx::query_scalar("SELECT offset_c FROM sensors WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
    }

    /// Every known sensor's non-zero calibration offset (the ingest path's cache is built
    /// from it at start).
    pub(crate) async fn sensor_offsets(&self) -> Result<Vec<(String, f64)>, sqlx::Error> {
        sqlx::query_as("SELECT id, offset_c FROM sensors WHERE offset_c <> 0")
            .fetch_all(&self.pool)
            .await
    }

    /// Store what people set for a sensor; false when the sensor is unknown.
    pub(crate) async fn set_sensor_settings(
        &self,
        id: &str,
        name: Option<&str>,
        weight: f64,
        offset_c: f64,
    ) -> Result<bool, sqlx::Error> {
        let done =
            sqlx::query("UPDATE sensors SET name = ?, weight = ?, offset_c = ? WHERE id = ?")
                .bind(name)
                .bind(weight)
                .bind(offset_c)
                .bind(id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Raw readings of one sensor in `[from, to)`, oldest first, at most `limit`.
    pub(crate) async fn readings(
        &self,
        id: &str,
        from: i64,
        to: i64,
        limit: u32,
    ) -> Result<Vec<(i64, Option<f64>)>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT ts, value FROM readings WHERE sensor_id = ? AND ts >= ? AND ts < ? ORDER BY ts LIMIT ?",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("ts")?, r.try_get("value")?))).collect()
    }

    pub(crate) async fn agents(&self) -> Result<Vec<AgentRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT host_id, kind, url, last_seen, clock_offset_ms, backend, unreachable_since,
                    contact_error, key_role, misdated, misdated_at
             FROM agents ORDER BY host_id, kind",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
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
            .collect()
    }

    /// Mark an agent as heard from (or reached) now.
    pub(crate) async fn touch_agent(
        &self,
        host_id: &str,
        kind: AgentKind,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE agents SET last_seen = MAX(last_seen, ?) WHERE host_id = ? AND kind = ?",
        )
        .bind(now)
        .bind(host_id)
        .bind(enum_str(kind))
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Record a relay agent's registration: its URL, hardware backend and outputs. Outputs it
    /// no longer reports are removed; engine-side function assignments of the others are kept.
    /// The backend is replaced (NULL from an agent that does not say). Reachability is left
    /// alone: the agent reaching the engine does not prove the engine reaches the agent (a
    /// wrong advertised URL); the next command tells (registration makes the loop command).
    pub(crate) async fn register_relays(
        &self,
        host_id: &str,
        url: &str,
        backend: Option<&str>,
        outputs: &[OutputStatus],
        now: i64,
        clock_offset_ms: Option<i64>,
        key_role: KeyRole,
    ) -> Result<(), sqlx::Error> {
        let mut tx = self.pool.begin().await?;
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
        sqlx::query("UPDATE agents SET backend = ? WHERE host_id = ? AND kind = 'relay'")
            .bind(backend)
            .bind(host_id)
            .execute(&mut *tx)
            .await?;
        let ids: Vec<&str> = outputs.iter().map(|o| o.id.as_str()).collect();
        let keep = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "DELETE FROM relays WHERE host_id = ? AND output_id NOT IN (SELECT value FROM json_each(?))",
        )
        .bind(host_id)
        .bind(keep)
        .execute(&mut *tx)
        .await?;
        for o in outputs {
            sqlx::query(
                "INSERT INTO relays (host_id, output_id, name, function_hint, function, state, updated, status)
                 VALUES (?, ?, ?, ?, NULL, ?, ?, ?)
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
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    pub(crate) async fn relays(&self) -> Result<Vec<RelayRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT r.host_id, r.output_id, r.name, a.url, r.function, r.function_hint, r.state,
                    r.updated, r.status, r.command_error, a.backend, a.unreachable_since,
                    a.key_role
             FROM relays r LEFT JOIN agents a ON a.host_id = r.host_id AND a.kind = 'relay'
             ORDER BY r.host_id, r.output_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
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
            .collect()
    }

    /// Assign an output's function; false when no such output exists.
    pub(crate) async fn set_relay_function(
        &self,
        host_id: &str,
        output_id: &str,
        function: Option<RelayFunction>,
    ) -> Result<bool, sqlx::Error> {
        let done =
            sqlx::query("UPDATE relays SET function = ? WHERE host_id = ? AND output_id = ?")
                .bind(function.map(enum_str))
                .bind(host_id)
                .bind(output_id)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Record an output's status as its agent reported it (after a command, or when read), and
    /// that the agent was reachable. `command_done` clears the last refusal.
    pub(crate) async fn set_relay_status(
        &self,
        host_id: &str,
        status: &OutputStatus,
        command_done: bool,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE relays SET state = ?, updated = ?, status = ?,
                command_error = CASE WHEN ? THEN NULL ELSE command_error END
             WHERE host_id = ? AND output_id = ?",
        )
        .bind(enum_str(status.state))
        .bind(now)
        .bind(serde_json::to_string(status).ok())
        .bind(command_done)
        .bind(host_id)
        .bind(&status.id)
        .execute(&self.pool)
        .await?;
        self.touch_agent(host_id, AgentKind::Relay, now).await
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
        let row = sqlx::query(
            "SELECT unreachable_since, contact_error FROM agents
             WHERE host_id = ? AND kind = 'relay'",
        )
        .bind(host_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(false) };
        let since: Option<i64> = row.try_get("unreachable_since")?;
        let error: Option<String> = row.try_get("contact_error")?;
        let (new_since, new_error) = match contact {
            Contact::Answered => (None, None),
            Contact::Failed(e) => (None, Some(e)),
            Contact::NoAnswer(e) => (Some(since.unwrap_or(now)), Some(e)),
        };
        if (since, error.as_deref()) == (new_since, new_error) {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE agents SET unreachable_since = ?, contact_error = ?
             WHERE host_id = ? AND kind = 'relay'",
        )
        .bind(new_since)
        .bind(new_error)
        .bind(host_id)
        .execute(&self.pool)
        .await?;
        Ok(since.is_some() != new_since.is_some())
    }

    /// Record that a relay agent refused a command, and why (it answered, so it is reachable).
    pub(crate) async fn set_relay_refusal(
        &self,
        host_id: &str,
        output_id: &str,
        error: &str,
        now: i64,
    ) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE relays SET command_error = ? WHERE host_id = ? AND output_id = ?")
            .bind(error)
            .bind(host_id)
            .bind(output_id)
            .execute(&self.pool)
            .await?;
        self.touch_agent(host_id, AgentKind::Relay, now).await
    }

    pub(crate) async fn load_settings(&self) -> Result<Option<ControlSettings>, sqlx::Error> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'control'")
                .fetch_optional(&self.pool)
                .await?;
        // A value that no longer parses (older format) falls back to the defaults.
        Ok(value.and_then(|v| serde_json::from_str(&v).ok()))
    }

    pub(crate) async fn save_settings(
        &self,
        settings: &ControlSettings,
    ) -> Result<(), sqlx::Error> {
        let value = serde_json::to_string(settings).unwrap_or_default();
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('control', ?)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(value)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    pub(crate) async fn record_decision(&self, d: &Decision) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO decisions
               (ts, heat, cool, effective_temp, setpoint, reason_code, reason, detail)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(millis(d.at))
        .bind(d.heat)
        .bind(d.cool)
        .bind(d.effective_temp_c)
        .bind(d.heat_setpoint_c)
        .bind(enum_str(d.reason_code))
        .bind(&d.reason)
        .bind(serde_json::to_string(d).unwrap_or_default())
        .execute(&self.pool)
        .await
        .map(|_| ())
    }

    /// Recorded decisions in `[from, to)` (either bound optional), newest first, at most
    /// `limit`. Rows in an older format are skipped.
    pub(crate) async fn decisions(
        &self,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
        limit: u32,
    ) -> Result<Vec<Decision>, sqlx::Error> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT detail FROM decisions WHERE ts >= ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT ?",
        )
        .bind(from.map_or(i64::MIN, millis))
        .bind(to.map_or(i64::MAX, millis))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().filter_map(|d| serde_json::from_str(d).ok()).collect())
    }
}

/// One sensor's row in a batch: described by `reading`, with the newest value that may be its
/// latest (time, value), if any.
#[derive(Debug)]
struct SensorUpsert<'a> {
    host_id: &'a str,
    reading: &'a NewReading,
    latest: Option<(i64, Option<f64>)>,
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

/// Record agents as heard from, in chunks of multi-row upserts. `agents` must not name the same
/// (host, kind) twice.
async fn upsert_agents(
    tx: &mut sqlx::SqliteConnection,
    agents: &[AgentUpsert<'_>],
) -> Result<(), sqlx::Error> {
    for chunk in agents.chunks(INSERT_CHUNK) {
        let mut q = QueryBuilder::new(
            "INSERT INTO agents
               (host_id, kind, url, last_seen, clock_offset_ms, key_role, misdated, misdated_at) ",
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
        q.push(
            " ON CONFLICT (host_id, kind) DO UPDATE SET
               url = COALESCE(excluded.url, agents.url),
               last_seen = MAX(agents.last_seen, excluded.last_seen),
               clock_offset_ms = COALESCE(excluded.clock_offset_ms, agents.clock_offset_ms),
               key_role = COALESCE(excluded.key_role, agents.key_role),
               misdated = agents.misdated + excluded.misdated,
               misdated_at = COALESCE(excluded.misdated_at, agents.misdated_at)",
        );
        q.build().execute(&mut *tx).await?;
    }
    Ok(())
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

    #[tokio::test]
    async fn one_batch_keeps_the_newest_reading_and_one_agent_row() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await?;
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

    #[tokio::test]
    async fn the_latest_is_never_a_reading_placed_after_its_receipt() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await?;
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
}
