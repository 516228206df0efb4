//! The changes people made in the last seconds (settings, schedules, overrides, zones,
//! plants, a sensor's or an output's settings, an agent's desired settings), kept to be written
//! again after a fault: what `acked.rs` does for readings, for what people set.
//!
//! A storage that fails may lose the commits it confirmed last (`acked.rs` says how). A
//! change that was confirmed to the person who made it, then lost, would come back at the
//! recovery as the older value: the engine reads its settings and schedules from the database
//! again then (`reload_after_recovery` in `lib.rs`), and would go on heating to the setpoint
//! the person had just changed, with nothing to say so. So every change the store confirms is
//! kept here for `window::KEEP_FOR`, as what was asked with what the database chose (a new rule's
//! id, the new revision of an agent's settings), and a fault stops the aging. The recovery
//! writes the kept changes again, in their order, before the store counts as healthy
//! (`Store::try_recover`), and `/v1/status` says how many it wrote. A change the database met
//! then refuses for another reason than a fault is logged and left out.
//!
//! Writing them again is safe whatever the storage kept, because each change is written as an
//! absolute one: a value set, a row with its id inserted when missing, a row deleted. Written
//! again in order over the database that kept all of them, they leave it as it was; over one
//! that lost the last ones, they put them back. A database that was restored from a backup on
//! purpose gets the last seconds' changes before the fault, no more: what is older stays as
//! restored, and the engine reads it.
//!
//! Commands to agents (`manage.rs`) are not kept: an agent may have run a command whose row the
//! storage then lost, and running a restart twice is worse than a request to be made again. What
//! agents report (their registrations, outputs, applied settings) is reported again by them.

use std::time::Instant;

use hearth_proto::Timestamp;
use hearth_proto::fallback::OutputProgram;
use hearth_proto::manage::AgentSettings;
use hearth_proto::relays::RelayFunction;
use hearth_proto::schedules::{DefaultTarget, NewOverride, NewRule};
use hearth_proto::sensors::SensorSettings;

use super::Store;
use super::db::Pool;
use super::window::Window;
use super::zones::StoredZone;
use crate::control::Settings;
use crate::zones::{PlantConfig, PlantId, ZoneId};

/// At most this many changes are kept (a script that edits in a loop).
pub(super) const KEEP_MOST: usize = 1_000;

/// A change as it is written again: every id and revision the database chose is in it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    ZoneSettings {
        zone: ZoneId,
        settings: Box<Settings>,
        plant: Option<PlantConfig>,
    },
    DefaultTarget {
        zone: ZoneId,
        target: DefaultTarget,
    },
    Zone {
        zone: StoredZone,
        position: i64,
        plants: Vec<PlantConfig>,
        new_settings: Option<(Box<Settings>, DefaultTarget)>,
    },
    DeleteZone {
        zone: ZoneId,
        move_to: Option<ZoneId>,
        plants: Vec<PlantConfig>,
    },
    Plant(PlantConfig),
    DeletePlant(PlantId),
    Rule {
        id: i64,
        rule: NewRule,
        now: i64,
    },
    UpdateRule {
        id: i64,
        rule: NewRule,
    },
    DeleteRule(i64),
    Override {
        id: i64,
        o: NewOverride,
        start: Timestamp,
        end: Option<Timestamp>,
        now: Timestamp,
    },
    DeleteOverride(i64),
    /// An override's end moved, or an override ended (`Store::end_overrides`, one each).
    OverrideEnd {
        id: i64,
        end: Timestamp,
    },
    SensorSettings {
        id: String,
        settings: SensorSettings,
    },
    RelayFunction {
        host_id: String,
        output_id: String,
        function: Option<RelayFunction>,
    },
    RelayFallback {
        host_id: String,
        output_id: String,
        program: Option<OutputProgram>,
    },
    DesiredSettings {
        host_id: String,
        desired: AgentSettings,
        by: String,
        now: i64,
        revision: u64,
    },
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Changes {
    window: Window<Change>,
    /// Held by every change from its write until it is kept, and by the recovery's writing
    /// them again: the kept order is the order of the commits, and a change made while the
    /// recovery writes is not overwritten by an older one.
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Default for Changes {
    fn default() -> Self {
        Self { window: Window::new(KEEP_MOST, |_| 1), one_at_a_time: Default::default() }
    }
}

impl Changes {
    /// Wait for the changes before this one (and a recovery's writing them again).
    pub(super) async fn begin(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.one_at_a_time.lock().await
    }

    /// Changes confirmed at `now` (taken with [`Self::begin`]'s guard held).
    pub(super) fn keep(&self, changes: impl IntoIterator<Item = Change>, now: Instant) {
        self.window.keep(changes, now);
    }

    /// A fault was found at `now`: what was kept then is kept until [`Self::recovered`].
    pub(super) fn freeze(&self, now: Instant) {
        self.window.freeze(now);
    }

    /// The kept changes, oldest first.
    fn replay(&self) -> Vec<Change> {
        self.window.replay(|c| Some(c.clone()))
    }

    /// The replay is stored: aging goes on.
    fn recovered(&self, now: Instant) {
        self.window.recovered(now);
    }
}

impl Store {
    /// Changes confirmed now, kept to be written again after a fault; with
    /// [`Changes::begin`]'s guard held since before their write.
    pub(super) fn kept(&self, changes: impl IntoIterator<Item = Change>) {
        self.inner.changes.keep(changes, Instant::now());
    }

    /// After a row of `table` (one of this module's callers' constants) was inserted with its
    /// id: on PostgreSQL the id sequence is moved past it, or the next insert would pick it.
    /// SQLite's AUTOINCREMENT follows the largest id inserted by itself.
    pub(super) async fn ids_follow(&self, table: &'static str) -> Result<(), sqlx::Error> {
        let Pool::Postgres(p) = self.pool() else { return Ok(()) };
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT setval(seq, top) FROM (
                 SELECT pg_get_serial_sequence('{table}', 'id') AS seq,
                        (SELECT MAX(id) FROM {table}) AS top
             ) AS s
             WHERE top > COALESCE(pg_sequence_last_value(seq::regclass), 0)"
        )))
        .execute(&p)
        .await;
        self.seen(done).map(drop)
    }

    /// The recovery's writing again of the changes confirmed before the fault (see the module
    /// documentation); how many were written. Nothing else changes meanwhile. A storage fault
    /// fails it (the recovery is tried again); a change the database refuses for another
    /// reason (a database restored to a state it does not fit) is logged and left out, or it
    /// would keep the store from ever recovering.
    pub(super) async fn write_changes_again(&self) -> Result<usize, sqlx::Error> {
        let _alone = self.inner.changes.begin().await;
        let replay = self.inner.changes.replay();
        let mut written = 0;
        for change in &replay {
            match self.write_again(change).await {
                Ok(()) => written += 1,
                Err(e) if super::health::fault_reason(&e).is_some() => return Err(e),
                Err(e) => tracing::warn!(
                    error = %e,
                    change = ?change,
                    "a change confirmed before the storage fault is not written again: the \
                     database met at the recovery refuses it"
                ),
            }
        }
        self.inner.changes.recovered(Instant::now());
        Ok(written)
    }

    async fn write_again(&self, change: &Change) -> Result<(), sqlx::Error> {
        match change {
            Change::ZoneSettings { zone, settings, plant } => {
                self.write_zone_settings(zone, settings, plant.as_ref()).await
            }
            Change::DefaultTarget { zone, target } => {
                self.write_zone_default_target(zone, target).await
            }
            Change::Zone { zone, position, plants, new_settings } => {
                let new_settings = new_settings.as_ref().map(|(s, t)| (&**s, t));
                self.write_zone(zone, *position, plants, new_settings).await
            }
            Change::DeleteZone { zone, move_to, plants } => {
                match self.write_zone_deletion(zone, move_to.as_ref(), plants).await {
                    // Holding rules it did not hold when it was deleted: what the person was
                    // told (deleted) no longer holds; the zone stays, as the database has it.
                    Ok(_) | Err(super::zones::DeleteZone::NotEmpty(_)) => Ok(()),
                    Err(super::zones::DeleteZone::Storage(e)) => Err(e),
                }
            }
            Change::Plant(plant) => self.write_plant(plant).await,
            Change::DeletePlant(plant) => self.write_plant_deletion(plant).await.map(drop),
            Change::Rule { id, rule, now } => {
                self.write_rule(Some(*id), rule, *now).await.map(drop)
            }
            Change::UpdateRule { id, rule } => self.write_rule_update(*id, rule).await.map(drop),
            Change::DeleteRule(id) => self.write_rule_deletion(*id).await.map(drop),
            Change::Override { id, o, start, end, now } => {
                self.write_override(Some(*id), o, *start, *end, *now).await.map(drop)
            }
            Change::DeleteOverride(id) => self.write_override_deletion(*id).await.map(drop),
            Change::OverrideEnd { id, end } => self.write_override_end(*id, *end).await,
            Change::SensorSettings { id, settings } => {
                self.write_sensor_settings(id, settings).await.map(drop)
            }
            Change::RelayFunction { host_id, output_id, function } => {
                self.write_relay_function(host_id, output_id, *function).await.map(drop)
            }
            Change::RelayFallback { host_id, output_id, program } => {
                self.write_relay_fallback(host_id, output_id, program.as_ref()).await.map(drop)
            }
            Change::DesiredSettings { host_id, desired, by, now, revision } => self
                .write_desired_settings(host_id, desired, by, *now, Some(*revision))
                .await
                .map(drop),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hearth_proto::schedules::Hold;
    use jiff::SignedDuration;

    use super::*;
    use crate::store::StorageHealth;
    use crate::store::db::{Backend, on_pool};
    use crate::store::health::PROBE_EVERY;
    use crate::store::testing::monday_rule as rule;
    use crate::store::window::KEEP_FOR;

    fn change(id: i64) -> Change {
        Change::DeleteRule(id)
    }

    fn kept(c: &Changes) -> Vec<Change> {
        c.replay()
    }

    #[test]
    fn changes_are_kept_for_seconds_and_at_most_so_many() {
        let c = Changes::default();
        let t0 = Instant::now();
        c.keep([change(1)], t0);
        c.keep([change(2), change(3)], t0 + Duration::from_secs(1));
        assert_eq!(kept(&c), [change(1), change(2), change(3)]);
        c.keep([change(4)], t0 + KEEP_FOR);
        assert_eq!(kept(&c), [change(2), change(3), change(4)], "the oldest aged out");
        c.keep((0..KEEP_MOST as i64 + 5).map(change), t0 + KEEP_FOR);
        let now = kept(&c);
        assert_eq!(now.len(), KEEP_MOST);
        assert_eq!(now.last(), Some(&change(KEEP_MOST as i64 + 4)), "the newest stay");
    }

    #[test]
    fn a_fault_stops_the_aging_until_the_recovery() {
        let c = Changes::default();
        let t0 = Instant::now();
        c.keep([change(1)], t0);
        c.freeze(t0 + Duration::from_secs(1));
        c.keep([change(2)], t0 + KEEP_FOR * 30);
        assert_eq!(kept(&c), [change(1), change(2)], "an outage of minutes loses nothing");
        c.recovered(t0 + KEEP_FOR * 30 + Duration::from_secs(1));
        assert_eq!(kept(&c), [change(2)], "once written again, the old ones age out");
        c.recovered(t0 + KEEP_FOR * 32);
        assert_eq!(kept(&c), []);
    }

    async fn run(store: &Store, sql: &str) -> anyhow::Result<()> {
        on_pool!(&store.pool(), |p| sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(p)
            .await
            .map(drop))?;
        Ok(())
    }

    /// What the changes of the test below wrote, as rows.
    async fn rows(store: &Store) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for sql in [
            "SELECT CAST(id AS TEXT) || ' ' || body FROM rules ORDER BY id",
            "SELECT key || ' ' || value FROM settings ORDER BY key",
            "SELECT CAST(id AS TEXT) || ' ' || CAST(end_ms AS TEXT) FROM overrides ORDER BY id",
            "SELECT host_id || ' ' || CAST(revision AS TEXT) || ' ' || CAST(set_at AS TEXT)
             FROM agent_settings ORDER BY host_id",
        ] {
            let got: Vec<String> =
                on_pool!(&store.pool(), |p| sqlx::query_scalar(sql).fetch_all(p).await)?;
            out.extend(got);
        }
        Ok(out)
    }

    async fn fault_and_recovery(store: &Store) -> anyhow::Result<()> {
        store.degrade("the disk reports an I/O error (test)".into());
        let mut health = store.subscribe_health();
        tokio::time::timeout(PROBE_EVERY * 5, health.wait_for(StorageHealth::is_healthy)).await??;
        Ok(())
    }

    /// A storage that fails may lose the commits it confirmed last: the changes confirmed
    /// just before a fault are written again when it recovers, with the ids and revisions
    /// they were confirmed with, and written again over a database that kept them, they
    /// change nothing.
    async fn changes_confirmed_before_a_fault_are_written_again_when_it_recovers(
        store: Store,
    ) -> anyhow::Result<()> {
        let house = ZoneId::default_zone();
        let now: Timestamp = "2026-01-14T10:00:00Z".parse()?;
        let kept = store.insert_rule(&rule("kept"), 1_000).await?;
        let lost = store.insert_rule(&rule("lost"), 2_000).await?;
        let warmer = Settings { frost_floor_c: 7.5, ..Settings::default() };
        store.save_zone_settings(&house, &warmer, None).await?;
        let hold = NewOverride {
            heat_c: Some(22.0),
            cool_c: None,
            start: None,
            hold: Hold::Indefinite,
            sensors: vec![],
            zone: None,
        };
        store.insert_override(&hold, now, None, now).await?;
        let resumed = now.checked_add(SignedDuration::from_hours(1))?;
        assert_eq!(store.end_overrides(&house, resumed).await?, 1);
        let desired = AgentSettings::default();
        assert_eq!(store.set_desired_settings("pi", &desired, "admin", 3_000).await?, 1);
        assert_eq!(store.set_desired_settings("pi", &desired, "admin", 4_000).await?, 2);
        let confirmed = rows(&store).await?;

        // The storage loses every commit after the first rule's, its id sequence included;
        // then the fault shows.
        for sql in [
            format!("DELETE FROM rules WHERE id <> {kept}"),
            "DELETE FROM settings".into(),
            "DELETE FROM overrides".into(),
            "UPDATE agent_settings SET revision = 1, set_at = 3000".into(),
        ] {
            run(&store, &sql).await?;
        }
        match store.backend() {
            Backend::Sqlite => {
                run(
                    &store,
                    &format!("UPDATE sqlite_sequence SET seq = {kept} WHERE name = 'rules'"),
                )
                .await?
            }
            Backend::Postgres => {
                run(
                    &store,
                    &format!("SELECT setval(pg_get_serial_sequence('rules', 'id'), {kept})"),
                )
                .await?
            }
        }
        fault_and_recovery(&store).await?;
        assert_eq!(rows(&store).await?, confirmed, "every confirmed change is back");
        // Two rules, the settings, an override, its end, the agent's settings twice.
        let recovery = store.last_recovery().ok_or_else(|| anyhow::anyhow!("no recovery"))?;
        assert_eq!((recovery.readings, recovery.changes), (0, 7));
        assert!(recovery.fault.contains("(test)"), "{recovery:?}");
        assert_eq!(store.zone_settings(&house).await?, Some(warmer));
        let next = store.insert_rule(&rule("next"), 5_000).await?;
        assert!(next > lost, "a new rule takes an id after those written again: {next}");

        // Over a database that kept them, they change nothing.
        let confirmed = rows(&store).await?;
        fault_and_recovery(&store).await?;
        assert_eq!(rows(&store).await?, confirmed);
        assert_eq!(store.schedule_rules().await?.len(), 3);
        Ok(())
    }

    /// A change the database met at the recovery refuses for another reason than a fault (here
    /// its table is gone: a database restored to a state the change does not fit) is left
    /// out; tried again at every probe, it would keep the store from ever recovering.
    async fn a_change_the_database_refuses_does_not_keep_the_store_from_recovering(
        store: Store,
    ) -> anyhow::Result<()> {
        assert!(!store.delete_plant(&PlantId::from("boiler")).await?);
        store.insert_rule(&rule("kept"), 1_000).await?;
        run(&store, "DELETE FROM rules").await?;
        run(&store, "ALTER TABLE plants RENAME TO plants_elsewhere").await?;
        fault_and_recovery(&store).await?;
        let recovery = store.last_recovery().ok_or_else(|| anyhow::anyhow!("no recovery"))?;
        assert_eq!(recovery.changes, 1, "the rule is written again, the deletion left out");
        assert_eq!(store.schedule_rules().await?.len(), 1);
        Ok(())
    }

    crate::store::testing::on_both_backends!(
        changes_confirmed_before_a_fault_are_written_again_when_it_recovers,
        a_change_the_database_refuses_does_not_keep_the_store_from_recovering,
    );
}
