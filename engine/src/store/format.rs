//! The stored forms of the control settings and the decisions: their JSON with the format
//! version `v`. A change of either form is a new version and a migration that rewrites the
//! stored rows (`engine/migrations/`); a row that does not read as the version this engine
//! writes is an error to report (`Unreadable`), never a row to skip or a default to use
//! instead.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The format of the control settings (`settings` row `control`) this engine reads and writes.
pub(crate) const SETTINGS_V: u64 = 1;
/// The format of a decision (`decisions.detail`) this engine reads and writes.
pub(crate) const DECISION_V: u64 = 1;

#[derive(Serialize)]
struct Versioned<'a, T> {
    v: u64,
    #[serde(flatten)]
    body: &'a T,
}

/// `body` in its stored form, format `v`.
pub(crate) fn encode<T: Serialize>(v: u64, body: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Versioned { v, body })
}

/// Read a stored form of format `v`; the error says why it is not one.
pub(crate) fn decode<T: DeserializeOwned>(v: u64, text: &str) -> Result<T, String> {
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let found = value.as_object_mut().and_then(|o| o.remove("v"));
    match found.as_ref().and_then(serde_json::Value::as_u64) {
        Some(found) if found == v => serde_json::from_value(value)
            .map_err(|e| format!("format {v} that does not parse: {e}")),
        Some(found) if found > v => Err(format!(
            "format {found}, written by a newer engine (this one reads format {v}): \
             run the engine that wrote it, or the migration from {found} to {v}"
        )),
        Some(found) => Err(format!(
            "format {found}, which no migration brought to format {v} (a missing migration)"
        )),
        None => Err(format!("no format version, so from before format {v} (a missing migration)")),
    }
}

/// The stored rows this engine could not read, each reported once: logged with its table and
/// id, and counted for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Unreadable {
    seen: Mutex<BTreeSet<(&'static str, String)>>,
    count: AtomicU64,
}

impl Unreadable {
    /// Report row `id` of `table` as unreadable for `why` (logged and counted the first time).
    pub(crate) fn report(&self, table: &'static str, id: &str, why: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.insert((table, id.to_owned())) {
            self.count.fetch_add(1, Ordering::Relaxed);
            tracing::error!(%table, %id, %why, "a stored row cannot be read; it is left as it is");
        }
    }

    /// How many distinct rows could not be read since the start.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::control::{Mode, ReasonCode};

    use super::super::Store;
    use super::*;

    #[test]
    fn a_stored_form_reads_back_only_in_its_own_format() {
        let text = encode(1, &serde_json::json!({"a": 1})).unwrap_or_default();
        assert_eq!(text, r#"{"v":1,"a":1}"#);
        assert_eq!(decode::<serde_json::Value>(1, &text), Ok(serde_json::json!({"a": 1})));
        let newer = decode::<serde_json::Value>(1, r#"{"v":2,"a":1}"#).err().unwrap_or_default();
        assert!(newer.contains("newer engine"), "{newer}");
        let unversioned = decode::<serde_json::Value>(1, r#"{"a":1}"#).err().unwrap_or_default();
        assert!(unversioned.contains("missing migration"), "{unversioned}");
    }

    /// A database as the previous engine left it: its schema (migrations up to 0011) holding
    /// the rows it wrote (`engine/tests/fixtures/engine-0011-rows.sql`, copied from a database
    /// it made), opened by this engine, which migrates it.
    async fn previous_engines_database(dir: &tempfile::TempDir) -> anyhow::Result<Store> {
        let (url, pool) = crate::store::testing::sqlite_before(dir, "0012").await?;
        sqlx::raw_sql(include_str!("../../tests/fixtures/engine-0011-rows.sql"))
            .execute(&pool)
            .await?;
        pool.close().await;
        Store::open(&url).await
    }

    /// Every decision and the settings the previous engine stored read back whole after the
    /// upgrade: each equal, field by field, to the JSON it was stored as.
    #[tokio::test]
    async fn rows_of_the_previous_engine_are_read_whole() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = previous_engines_database(&dir).await?;
        let house = crate::zones::ZoneId::default_zone();
        let decisions = store.decisions(&house, None, None, 100).await?;
        let codes: Vec<ReasonCode> = decisions.iter().map(|d| d.reason_code).collect();
        use ReasonCode::{HeatBelowBand, MaxCeiling, SensorLossDuty, SensorLossOff};
        assert_eq!(codes, [MaxCeiling, HeatBelowBand, SensorLossDuty, SensorLossOff]);
        let stored: Vec<String> =
            sqlx::query_scalar("SELECT detail FROM decisions ORDER BY id DESC")
                .fetch_all(&store.test_sqlite_pool()?)
                .await?;
        for (d, text) in decisions.iter().zip(&stored) {
            let mut row: serde_json::Value = serde_json::from_str(text)?;
            assert_eq!(row.as_object_mut().and_then(|o| o.remove("v")), Some(1.into()));
            assert_eq!(serde_json::to_value(d)?, row);
        }
        let settings = store.load_settings().await?;
        let s = settings.ok_or_else(|| anyhow::anyhow!("the stored settings are gone"))?;
        assert_eq!((s.mode, s.algorithm.as_str()), (Mode::Auto, "predictive"));
        assert_eq!((s.frost_floor_c, s.min_off_s, s.sensor_loss_duty_pct), (6.5, 300, 15));
        assert_eq!(s.params["max_lead_min"], 120);
        assert_eq!(store.unreadable_rows(), 0);
        // What this engine writes, it reads.
        store.record_decision(&house, &decisions[0]).await?;
        store.save_settings(&s).await?;
        assert_eq!(store.decisions(&house, None, None, 100).await?.len(), 5);
        assert_eq!(store.load_settings().await?, Some(s));
        Ok(())
    }

    /// A row that does not read as this engine's format is reported once (logged with its id,
    /// counted), never skipped in silence; settings in another format are an error, not the
    /// defaults.
    #[tokio::test]
    async fn an_unreadable_row_is_reported_not_dropped_in_silence() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = previous_engines_database(&dir).await?;
        let house = crate::zones::ZoneId::default_zone();
        // As the first engines wrote a decision (one setpoint, no cooling), and one from a
        // newer engine.
        let oldest = r#"{"at":"2026-11-20T06:00:00Z","heat":true,"effective_temp_c":19.0,
            "setpoint_c":20.0,"reason_code":"heat_below_band","reason":"heat on","sensors":[]}"#;
        let newer = r#"{"v":2,"at":"2026-12-02T22:04:00Z"}"#;
        for (ts, detail) in [(1_796_248_000_000_i64, oldest), (1_796_249_100_000, newer)] {
            sqlx::query(
                "INSERT INTO decisions
                   (ts, heat, cool, effective_temp, setpoint, reason_code, reason, detail)
                 VALUES ($1, 1, 0, 19.0, 20.0, 'heat_below_band', 'heat on', $2)",
            )
            .bind(ts)
            .bind(detail)
            .execute(&store.test_sqlite_pool()?)
            .await?;
        }
        assert_eq!(store.decisions(&house, None, None, 100).await?.len(), 4);
        assert_eq!(store.unreadable_rows(), 2);
        // Reported once, however often read.
        store.decisions(&house, None, None, 100).await?;
        assert_eq!(store.unreadable_rows(), 2);

        sqlx::query("UPDATE settings SET value = json_set(value, '$.v', 2) WHERE key = 'control'")
            .execute(&store.test_sqlite_pool()?)
            .await?;
        let err = store.load_settings().await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("format 2, written by a newer engine"), "{err}");
        assert_eq!(store.unreadable_rows(), 3);
        Ok(())
    }
}
