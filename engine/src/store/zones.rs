//! The house's zones and plants: their rows (`zones`, `plants`, migration 0015), each a
//! versioned JSON document (`format.rs`), and the per-zone rows beside them (control settings
//! and default target keyed by zone; rules, overrides and decisions by their `zone_id`).
//!
//! A row that does not read as this engine's format is reported (`Unreadable`), never dropped
//! in silence; a write of the house is one transaction, so a zone and everything that moves
//! with it change together or not at all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::changes::Change;
use super::db::{WriteTx, on_conn, on_pool};
use super::{Store, format};

/// How many rules and overrides (not ended at `now_ms`) each zone holds (only the zone
/// `$zone: Option<&ZoneId>` names, when it names one), in one query however many zones there
/// are: `(zone_id, rules, overrides)` rows, a zone holding none left out. A macro: the query is
/// a type of its backend (`db.rs`).
macro_rules! contents_query {
    ($zone:expr, $now_ms:expr) => {
        sqlx::query_as::<_, (String, i64, i64)>(
            "SELECT zone_id, CAST(SUM(rules) AS BIGINT), CAST(SUM(overrides) AS BIGINT) FROM (
                 SELECT zone_id, 1 AS rules, 0 AS overrides FROM rules
                 UNION ALL
                 SELECT zone_id, 0, 1 FROM overrides WHERE end_ms IS NULL OR end_ms > $1
             ) AS held WHERE $2 IS NULL OR zone_id = $2
             GROUP BY zone_id",
        )
        .bind($now_ms)
        .bind($zone.map(|z: &ZoneId| z.0.clone()))
    };
}
use hearth_proto::schedules::DefaultTarget;

use crate::control::Settings;
use crate::schedule::default_target;
use crate::zones::{PlantConfig, PlantId, RelayId, ZoneId, ZoneOutputs};

/// The format of a zone's and a plant's `spec` this engine reads and writes.
pub(crate) const ZONE_V: u64 = 1;
pub(crate) const PLANT_V: u64 = 1;

/// The settings key of a zone's control settings: the default zone keeps the key it had
/// before zones.
pub(crate) fn control_key(zone: &ZoneId) -> String {
    if zone.is_default() { "control".to_owned() } else { format!("control:{zone}") }
}

/// The settings key of a zone's default target.
pub(crate) fn default_target_key(zone: &ZoneId) -> String {
    if zone.is_default() {
        "schedule_default".to_owned()
    } else {
        format!("schedule_default:{zone}")
    }
}

/// A zone's `spec`: what it decides from and what opens it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ZoneSpec {
    sensors: Vec<String>,
    #[serde(default)]
    valves: Vec<RelayId>,
    #[serde(default)]
    heat_relay: Option<RelayId>,
    #[serde(default)]
    cool_relay: Option<RelayId>,
}

/// A zone as stored, without its settings (stored on their own, by [`control_key`]).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredZone {
    pub(crate) id: ZoneId,
    pub(crate) name: String,
    pub(crate) sensors: Vec<String>,
    pub(crate) outputs: ZoneOutputs,
}

/// The zones (in their order) and plants as stored; rows that do not read are reported and
/// left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StoredHouse {
    pub(crate) zones: Vec<StoredZone>,
    pub(crate) plants: Vec<PlantConfig>,
}

/// How many rules and overrides (in force or to come) a zone holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ZoneContents {
    pub(crate) rules: u64,
    pub(crate) overrides: u64,
}

/// Why a zone was not deleted.
#[derive(Debug)]
pub(crate) enum DeleteZone {
    /// It still holds rules or overrides and no zone to move them to was named.
    NotEmpty(ZoneContents),
    Storage(sqlx::Error),
}

impl From<sqlx::Error> for DeleteZone {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(e)
    }
}

fn encode_err(e: serde_json::Error) -> sqlx::Error {
    sqlx::Error::Encode(e.into())
}

/// A plant's `spec`: the plant without its id and name (columns of their own).
fn plant_spec(p: &PlantConfig) -> Result<String, sqlx::Error> {
    let mut value = serde_json::to_value(p).map_err(encode_err)?;
    if let Some(o) = value.as_object_mut() {
        o.remove("id");
        o.remove("name");
    }
    format::encode(PLANT_V, &value).map_err(encode_err)
}

fn read_plant(id: &str, name: &str, spec: &str) -> Result<PlantConfig, String> {
    let mut value: serde_json::Value = format::decode(PLANT_V, spec)?;
    let o = value.as_object_mut().ok_or("format 1 that is not an object")?;
    o.insert("id".to_owned(), id.into());
    o.insert("name".to_owned(), name.into());
    serde_json::from_value(value).map_err(|e| format!("format {PLANT_V} that does not parse: {e}"))
}

impl Store {
    /// The zones and plants as stored.
    pub(crate) async fn stored_house(&self) -> Result<StoredHouse, sqlx::Error> {
        let result = self.read_house().await;
        self.seen(result)
    }

    async fn read_house(&self) -> Result<StoredHouse, sqlx::Error> {
        type Rows = Vec<(String, String, String)>;
        let mut house = StoredHouse::default();
        let zones: Rows = on_pool!(&self.pool(), |p| sqlx::query_as(
            "SELECT id, name, spec FROM zones ORDER BY position, id"
        )
        .fetch_all(p)
        .await)?;
        for (id, name, spec) in zones {
            match format::decode::<ZoneSpec>(ZONE_V, &spec) {
                Ok(s) => house.zones.push(StoredZone {
                    id: ZoneId(id),
                    name,
                    sensors: s.sensors,
                    outputs: ZoneOutputs {
                        valves: s.valves,
                        heat_relay: s.heat_relay,
                        cool_relay: s.cool_relay,
                    },
                }),
                Err(why) => self.inner.unreadable.report("zones", &id, &why),
            }
        }
        let plants: Rows = on_pool!(&self.pool(), |p| sqlx::query_as(
            "SELECT id, name, spec FROM plants ORDER BY id"
        )
        .fetch_all(p)
        .await)?;
        for (id, name, spec) in plants {
            match read_plant(&id, &name, &spec) {
                Ok(p) => house.plants.push(p),
                Err(why) => self.inner.unreadable.report("plants", &id, &why),
            }
        }
        Ok(house)
    }

    /// A zone's stored control settings; None when none were ever stored. As
    /// [`Store::load_settings`] for the default zone.
    pub(crate) async fn zone_settings(
        &self,
        zone: &ZoneId,
    ) -> Result<Option<Settings>, sqlx::Error> {
        self.settings_at(&control_key(zone)).await
    }

    /// Store a zone's control settings, and with them `plant` (the default plant, whose
    /// protection times follow the default zone's settings) in the same transaction.
    pub(crate) async fn save_zone_settings(
        &self,
        zone: &ZoneId,
        settings: &Settings,
        plant: Option<&PlantConfig>,
    ) -> Result<(), sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        self.write_zone_settings(zone, settings, plant).await?;
        self.kept([Change::ZoneSettings {
            zone: zone.clone(),
            settings: Box::new(settings.clone()),
            plant: plant.cloned(),
        }]);
        Ok(())
    }

    pub(super) async fn write_zone_settings(
        &self,
        zone: &ZoneId,
        settings: &Settings,
        plant: Option<&PlantConfig>,
    ) -> Result<(), sqlx::Error> {
        let result = async {
            let value = format::encode(format::SETTINGS_V, settings).map_err(encode_err)?;
            let mut tx = WriteTx::begin(&self.pool()).await?;
            upsert_setting(&mut tx, &control_key(zone), &value).await?;
            if let Some(p) = plant {
                upsert_plant(&mut tx, p).await?;
            }
            tx.commit().await
        }
        .await;
        self.seen(result)
    }

    /// A zone's stored default target, or the built-in one (heat 20, cool 26, every sensor).
    pub(crate) async fn zone_default_target(
        &self,
        zone: &ZoneId,
    ) -> Result<DefaultTarget, sqlx::Error> {
        Ok(self
            .setting(&default_target_key(zone))
            .await?
            .and_then(|v| serde_json::from_str(&v).ok())
            .unwrap_or_else(default_target))
    }

    /// Replace a zone's default target.
    pub(crate) async fn save_zone_default_target(
        &self,
        zone: &ZoneId,
        d: &DefaultTarget,
    ) -> Result<(), sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        self.write_zone_default_target(zone, d).await?;
        self.kept([Change::DefaultTarget { zone: zone.clone(), target: d.clone() }]);
        Ok(())
    }

    pub(super) async fn write_zone_default_target(
        &self,
        zone: &ZoneId,
        d: &DefaultTarget,
    ) -> Result<(), sqlx::Error> {
        let value = serde_json::to_string(d).map_err(encode_err)?;
        self.put_setting(&default_target_key(zone), &value).await
    }

    /// The `settings` row `key`, as stored; None when there is none.
    pub(super) async fn setting(&self, key: &str) -> Result<Option<String>, sqlx::Error> {
        let value = on_pool!(&self.pool(), |p| sqlx::query_scalar(
            "SELECT value FROM settings WHERE key = $1"
        )
        .bind(key)
        .fetch_optional(p)
        .await);
        self.seen(value)
    }

    /// Store the `settings` row `key` (replacing what was stored), on its own.
    pub(super) async fn put_setting(&self, key: &str, value: &str) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done).map(|_| ())
    }

    /// How many rules and overrides (not ended at `now_ms`) `zone` holds.
    pub(crate) async fn zone_contents(
        &self,
        zone: &ZoneId,
        now_ms: i64,
    ) -> Result<ZoneContents, sqlx::Error> {
        let counted =
            on_pool!(&self.pool(), |p| contents_query!(Some(zone), now_ms).fetch_all(p).await);
        Ok(by_zone(self.seen(counted)?).remove(zone).unwrap_or_default())
    }

    /// How many rules and overrides (not ended at `now_ms`) each zone holds, in one query; a
    /// zone holding none is left out.
    pub(crate) async fn zones_contents(
        &self,
        now_ms: i64,
    ) -> Result<BTreeMap<ZoneId, ZoneContents>, sqlx::Error> {
        let counted = on_pool!(&self.pool(), |p| contents_query!(None, now_ms).fetch_all(p).await);
        self.seen(counted).map(by_zone)
    }

    /// Store a zone (created or replaced) at `position`, and the `plants` that changed with
    /// it. A new zone (`new_settings` given) gets its control settings and default target. All
    /// in one transaction.
    pub(crate) async fn save_zone(
        &self,
        zone: &StoredZone,
        position: i64,
        plants: &[PlantConfig],
        new_settings: Option<(&Settings, &DefaultTarget)>,
    ) -> Result<(), sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        self.write_zone(zone, position, plants, new_settings).await?;
        self.kept([Change::Zone {
            zone: zone.clone(),
            position,
            plants: plants.to_vec(),
            new_settings: new_settings.map(|(s, t)| (Box::new(s.clone()), t.clone())),
        }]);
        Ok(())
    }

    pub(super) async fn write_zone(
        &self,
        zone: &StoredZone,
        position: i64,
        plants: &[PlantConfig],
        new_settings: Option<(&Settings, &DefaultTarget)>,
    ) -> Result<(), sqlx::Error> {
        let result = async {
            let spec = ZoneSpec {
                sensors: zone.sensors.clone(),
                valves: zone.outputs.valves.clone(),
                heat_relay: zone.outputs.heat_relay.clone(),
                cool_relay: zone.outputs.cool_relay.clone(),
            };
            let spec = format::encode(ZONE_V, &spec).map_err(encode_err)?;
            let mut tx = WriteTx::begin(&self.pool()).await?;
            on_conn!(tx.conn()?, |c| sqlx::query(
                "INSERT INTO zones (id, name, position, spec) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE
                 SET name = excluded.name, position = excluded.position, spec = excluded.spec",
            )
            .bind(&zone.id.0)
            .bind(&zone.name)
            .bind(position)
            .bind(spec)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
            for p in plants {
                upsert_plant(&mut tx, p).await?;
            }
            if let Some((settings, target)) = new_settings {
                let settings = format::encode(format::SETTINGS_V, settings).map_err(encode_err)?;
                let target = serde_json::to_string(target).map_err(encode_err)?;
                for (key, value) in
                    [(control_key(&zone.id), settings), (default_target_key(&zone.id), target)]
                {
                    upsert_setting(&mut tx, &key, &value).await?;
                }
            }
            tx.commit().await
        }
        .await;
        self.seen(result)
    }

    /// Delete a zone with its settings and default target, and store the `plants` that no
    /// longer serve it; its rules and overrides move to `move_to`, or, without one, a zone
    /// holding any is not deleted. One transaction. Its recorded decisions stay (history).
    /// False when there is no such zone.
    pub(crate) async fn delete_zone(
        &self,
        zone: &ZoneId,
        move_to: Option<&ZoneId>,
        plants: &[PlantConfig],
    ) -> Result<bool, DeleteZone> {
        let _changing = self.inner.changes.begin().await;
        let found = self.write_zone_deletion(zone, move_to, plants).await?;
        self.kept([Change::DeleteZone {
            zone: zone.clone(),
            move_to: move_to.cloned(),
            plants: plants.to_vec(),
        }]);
        Ok(found)
    }

    pub(super) async fn write_zone_deletion(
        &self,
        zone: &ZoneId,
        move_to: Option<&ZoneId>,
        plants: &[PlantConfig],
    ) -> Result<bool, DeleteZone> {
        let result = async {
            let mut tx = WriteTx::begin(&self.pool()).await?;
            if let Some(to) = move_to {
                for statement in [
                    "UPDATE rules SET zone_id = $1 WHERE zone_id = $2",
                    "UPDATE overrides SET zone_id = $1 WHERE zone_id = $2",
                ] {
                    on_conn!(tx.conn()?, |c| sqlx::query(statement)
                        .bind(&to.0)
                        .bind(&zone.0)
                        .execute(c)
                        .await
                        .map(|r| r.rows_affected()))?;
                }
            } else {
                // Ended overrides are history, not contents: they go with the zone.
                let now = super::millis(hearth_proto::Timestamp::now());
                let held = by_zone(on_conn!(tx.conn()?, |c| contents_query!(Some(zone), now)
                    .fetch_all(c)
                    .await)?)
                .remove(zone)
                .unwrap_or_default();
                if held != ZoneContents::default() {
                    return Err(DeleteZone::NotEmpty(held));
                }
                on_conn!(tx.conn()?, |c| sqlx::query("DELETE FROM overrides WHERE zone_id = $1")
                    .bind(&zone.0)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
            for key in [control_key(zone), default_target_key(zone)] {
                on_conn!(tx.conn()?, |c| sqlx::query("DELETE FROM settings WHERE key = $1")
                    .bind(key)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected()))?;
            }
            let done = on_conn!(tx.conn()?, |c| sqlx::query("DELETE FROM zones WHERE id = $1")
                .bind(&zone.0)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            if done == 0 {
                // Nothing to delete: the transaction rolls back when dropped.
                return Ok(false);
            }
            for p in plants {
                upsert_plant(&mut tx, p).await?;
            }
            tx.commit().await?;
            Ok(true)
        }
        .await;
        if let Err(DeleteZone::Storage(e)) = &result {
            self.observe(e);
        }
        result
    }

    /// Store a plant (created or replaced).
    pub(crate) async fn save_plant(&self, plant: &PlantConfig) -> Result<(), sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        self.write_plant(plant).await?;
        self.kept([Change::Plant(plant.clone())]);
        Ok(())
    }

    pub(super) async fn write_plant(&self, plant: &PlantConfig) -> Result<(), sqlx::Error> {
        let result = async {
            let mut tx = WriteTx::begin(&self.pool()).await?;
            upsert_plant(&mut tx, plant).await?;
            tx.commit().await
        }
        .await;
        self.seen(result)
    }

    /// Delete a plant; false when there is no such plant.
    pub(crate) async fn delete_plant(&self, plant: &PlantId) -> Result<bool, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let found = self.write_plant_deletion(plant).await?;
        self.kept([Change::DeletePlant(plant.clone())]);
        Ok(found)
    }

    pub(super) async fn write_plant_deletion(&self, plant: &PlantId) -> Result<bool, sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query("DELETE FROM plants WHERE id = $1")
            .bind(&plant.0)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        Ok(self.seen(done)? == 1)
    }
}

fn by_zone(rows: Vec<(String, i64, i64)>) -> BTreeMap<ZoneId, ZoneContents> {
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    rows.into_iter()
        .map(|(id, rules, overrides)| {
            (ZoneId(id), ZoneContents { rules: count(rules), overrides: count(overrides) })
        })
        .collect()
}

async fn upsert_plant(tx: &mut WriteTx, plant: &PlantConfig) -> Result<(), sqlx::Error> {
    on_conn!(tx.conn()?, |c| sqlx::query(
        "INSERT INTO plants (id, name, spec) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, spec = excluded.spec",
    )
    .bind(&plant.id.0)
    .bind(&plant.name)
    .bind(plant_spec(plant)?)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

async fn upsert_setting(tx: &mut WriteTx, key: &str, value: &str) -> Result<(), sqlx::Error> {
    on_conn!(tx.conn()?, |c| sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::str::FromStr;

    use hearth_proto::Timestamp;
    use hearth_proto::control::Mode;
    use hearth_proto::schedules::{NewOverride, NewRule};
    use jiff::SignedDuration;
    use jiff::tz::TimeZone;
    use sqlx::SqlitePool;
    use sqlx::sqlite::SqliteConnectOptions;

    use super::*;
    use crate::control::{self, Inputs, SensorSnapshot};
    use crate::store::Schedules;
    use crate::zones::live::{Zones, default_house, load_settings};
    use crate::zones::{EquipmentState, House, ZoneInputs, decide_zone, plan};

    /// A database the engine wrote before zones (commit b8d2203: predictive settings, three
    /// rules with an exception, an override, a default target naming a sensor, a sensor offset
    /// of −0.25 °C, nine decisions and a run), as it was left on the card.
    const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/engine-b8d2203.db");

    /// The fixture's rows as the engine before zones left them (read without migrating).
    async fn before(dir: &tempfile::TempDir) -> anyhow::Result<SqlitePool> {
        let copy = dir.path().join("before.db");
        std::fs::copy(FIXTURE, &copy)?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", copy.display()))?
            .read_only(true);
        Ok(SqlitePool::connect_with(options).await?)
    }

    async fn rows(pool: &SqlitePool, sql: &'static str) -> anyhow::Result<Vec<serde_json::Value>> {
        let texts: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await?;
        texts.iter().map(|t| Ok(serde_json::from_str(t)?)).collect()
    }

    /// A zone or plant row this engine cannot read (written by a newer engine) is reported
    /// once, with its table and id, and left out; the default zone stands in for its own row.
    #[tokio::test]
    async fn an_unreadable_zone_or_plant_is_reported_not_dropped_in_silence() -> anyhow::Result<()>
    {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await?;
        sqlx::query(
            r#"INSERT INTO zones (id, name, position, spec)
               VALUES ('bedroom', 'Bedroom', 1, '{"v":2,"sensors":["28-b1"]}')"#,
        )
        .execute(&store.test_sqlite_pool()?)
        .await?;
        sqlx::query("UPDATE plants SET spec = json_set(spec, '$.v', 2)")
            .execute(&store.test_sqlite_pool()?)
            .await?;
        sqlx::query("UPDATE zones SET spec = 'not json' WHERE id = 'house'")
            .execute(&store.test_sqlite_pool()?)
            .await?;
        let stored = store.stored_house().await?;
        assert!(stored.zones.is_empty() && stored.plants.is_empty(), "{stored:?}");
        assert_eq!(store.unreadable_rows(), 3);
        store.stored_house().await?;
        assert_eq!(store.unreadable_rows(), 3, "each reported once");
        let zones = Zones::load(store.clone(), hearth_common::sse::EventBus::new(4)).await?;
        let ids: Vec<String> = zones.stored().zones.iter().map(|z| z.id.0.clone()).collect();
        assert_eq!(ids, ["house"]);
        Ok(())
    }

    /// Opened by this engine, the database from before zones is one zone `house` holding every
    /// rule, override, decision and run, the settings and the sensors as they were; the default
    /// zone and plant exist (the plant on the function groups, protected by the stored
    /// settings' times); and the first decision made through the zones (`decide_zone`, `plan`)
    /// is the one the engine before zones makes from the same rows (`control::decide`).
    #[tokio::test]
    async fn a_database_from_before_zones_opens_as_one_zone_deciding_as_before()
    -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let old = before(&dir).await?;
        let file = dir.path().join("hearth.db");
        std::fs::copy(FIXTURE, &file)?;
        let store = Store::open(&format!("sqlite://{}", file.display())).await?;
        let house = ZoneId::default_zone();

        // Every row is there, in the default zone.
        let rules = store.schedule_rules().await?;
        let was = rows(&old, "SELECT body FROM rules ORDER BY id").await?;
        assert_eq!(rules.len(), 3);
        for (rule, body) in rules.iter().zip(&was) {
            assert_eq!(rule.rule.zone.as_deref(), Some("house"));
            assert_eq!(&serde_json::to_value(NewRule { zone: None, ..rule.rule.clone() })?, body);
        }
        let overrides = store.overrides(Timestamp::MIN).await?;
        let was = rows(&old, "SELECT body FROM overrides ORDER BY id").await?;
        assert_eq!(overrides.len(), 1);
        let o = &overrides[0];
        assert_eq!(o.zone, "house");
        let body = NewOverride {
            heat_c: o.heat_c,
            cool_c: o.cool_c,
            start: Some(o.start),
            hold: o.hold.clone(),
            sensors: o.sensors.clone(),
            zone: None,
        };
        assert_eq!(serde_json::to_value(body)?, was[0]);
        let decisions = store.decisions(&house, None, None, 100).await?;
        let was = rows(&old, "SELECT detail FROM decisions ORDER BY ts DESC, id DESC").await?;
        assert_eq!(decisions.len(), 9);
        for (d, detail) in decisions.iter().zip(&was) {
            assert_eq!(&serde_json::to_value(d)?, detail);
        }
        assert!(store.decisions(&ZoneId::from("bedroom"), None, None, 100).await?.is_empty());
        let runs = store.runs(Timestamp::MIN, Timestamp::MAX).await?;
        assert_eq!(runs.len(), 1);
        let sensors = store.sensors().await?;
        assert_eq!(sensors.len(), 1);
        assert_eq!((sensors[0].name.as_deref(), sensors[0].offset_c), (Some("Living room"), -0.25));
        let settings = load_settings(&store, &house).await?;
        let stored = rows(&old, "SELECT value FROM settings WHERE key = 'control'").await?;
        assert_eq!(serde_json::to_value(&settings)?, stored[0]);
        assert_eq!((settings.mode, settings.algorithm.as_str()), (Mode::Heat, "predictive"));
        let target = store.zone_default_target(&house).await?;
        let stored =
            rows(&old, "SELECT value FROM settings WHERE key = 'schedule_default'").await?;
        assert_eq!(serde_json::to_value(&target)?, stored[0]);
        let elsewhere: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM rules WHERE zone_id <> 'house')
                  + (SELECT count(*) FROM overrides WHERE zone_id <> 'house')
                  + (SELECT count(*) FROM decisions WHERE zone_id <> 'house')",
        )
        .fetch_one(&store.test_sqlite_pool()?)
        .await?;
        assert_eq!(elsewhere, 0);
        assert_eq!(store.unreadable_rows(), 0);

        // The default zone and plant: today's house.
        let zones = Zones::load(store.clone(), hearth_common::sse::EventBus::new(4)).await?;
        assert_eq!(*zones.stored(), default_house(&settings));
        let plant = &zones.stored().plants[0];
        assert_eq!((plant.min_on_s, plant.min_off_s, plant.changeover_s), (20, 20, 20));

        // The first decision: a minute after the last one recorded.
        let now = decisions[0].at.checked_add(SignedDuration::from_secs(60))?;
        let tz = TimeZone::get("Europe/Berlin")?;
        let schedules = Schedules::load(store.clone(), tz).await?;
        let until = now.checked_add(SignedDuration::from_hours(26))?;
        let segments = schedules.snapshot().segments(now, until);
        let snapshots: Vec<SensorSnapshot> = sensors.into_iter().map(Into::into).collect();
        let stale_after = SignedDuration::from_secs(120);
        let learned = control::learn(&runs, now);
        // What the relays report, per system, as the loop reads it for the house's runs: for
        // the default house exactly the heat and cool outputs, as before zones.
        let relays = store.relays().await?;
        let equipment = crate::zones::resolve::Outputs::new(&default_house(&settings), &relays)
            .state(&runs, now)
            .1;
        let before_zones = control::decide(&Inputs {
            now,
            settings: &settings,
            segments: &segments,
            sensors: &snapshots,
            stale_after,
            equipment,
            learned: &learned,
            runs: &runs,
        });

        let zoned: House = zones.house(&snapshots);
        let zone_segments = schedules
            .zone_snapshot(&house)
            .ok_or_else(|| anyhow::anyhow!("no schedule for the default zone"))?
            .segments(now, until);
        // The default plant's relays are the function groups: the outputs of that function.
        let reported = EquipmentState {
            relays: BTreeMap::from([
                (RelayId::group(hearth_proto::relays::RelayFunction::Heat), equipment.heat),
                (RelayId::group(hearth_proto::relays::RelayFunction::Cool), equipment.cool),
            ]),
        };
        let inputs = ZoneInputs {
            now,
            segments: &zone_segments,
            sensors: &snapshots,
            stale_after,
            learned: &learned,
            runs: &runs,
        };
        let call = decide_zone(&zoned, &zoned.zones[0], &inputs, &reported);
        let planned = plan(&zoned, &[call], &reported, now);
        // From the stored rows: the override's 21.5 °C, the sensor's −0.25 °C calibration.
        let shown = (before_zones.heat_setpoint_c, before_zones.effective_temp_c);
        assert_eq!(shown, (21.5, Some(21.25)), "{before_zones:?}");
        assert_eq!(planned.zones[0].decision, before_zones);
        let heat = planned.relays.get(&RelayId::group(hearth_proto::relays::RelayFunction::Heat));
        assert_eq!(heat, Some(&before_zones.heat));
        Ok(())
    }

    /// Every zone's counts in one query are what the query of each zone says: rules, and the
    /// overrides not ended (open-ended or ending later); a zone holding nothing is left out.
    async fn every_zones_counts_at_once_match_each_zones(store: Store) -> anyhow::Result<()> {
        let now = 1_000_000;
        for (zone, n) in [("house", 2), ("bedroom", 1), ("attic", 3)] {
            for _ in 0..n {
                on_pool!(&store.test_pool(), |p| sqlx::query(
                    "INSERT INTO rules (body, created, zone_id) VALUES ('{}', 0, $1)"
                )
                .bind(zone)
                .execute(p)
                .await
                .map(|_| ()))?;
            }
        }
        // (zone, end): open-ended and later ones count, one ended at or before now does not.
        let overrides = [
            ("bedroom", None),
            ("bedroom", Some(now + 1)),
            ("bedroom", Some(now)),
            ("bath", Some(now + 60_000)),
            ("attic", Some(now - 1)),
        ];
        for (zone, end) in overrides {
            on_pool!(&store.test_pool(), |p| sqlx::query(
                "INSERT INTO overrides (body, start_ms, end_ms, created, zone_id)
                 VALUES ('{}', 0, $1, 0, $2)",
            )
            .bind(end)
            .bind(zone)
            .execute(p)
            .await
            .map(|_| ()))?;
        }
        let all = store.zones_contents(now).await?;
        let counts = |rules, overrides| ZoneContents { rules, overrides };
        let expected: BTreeMap<ZoneId, ZoneContents> = [
            ("attic", counts(3, 0)),
            ("bath", counts(0, 1)),
            ("bedroom", counts(1, 2)),
            ("house", counts(2, 0)),
        ]
        .into_iter()
        .map(|(z, c)| (ZoneId::from(z), c))
        .collect();
        assert_eq!(all, expected);
        for zone in ["house", "bedroom", "attic", "bath", "cellar"] {
            let one = store.zone_contents(&ZoneId::from(zone), now).await?;
            assert_eq!(all.get(&ZoneId::from(zone)).copied().unwrap_or_default(), one, "{zone}");
        }
        Ok(())
    }

    crate::store::testing::on_both_backends!(every_zones_counts_at_once_match_each_zones);
}
