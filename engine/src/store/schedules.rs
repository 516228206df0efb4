//! Schedule rules, overrides and the default target: their rows, and [`Schedules`], the shared
//! in-memory snapshot the API and the control loop read. Every zone has its own schedule: its
//! rules and overrides (`zone_id`) and its default target; "most specific wins", holds "until
//! the next change" and DST are per zone, as they were for the house.

use std::collections::BTreeMap;
use std::sync::Arc;

use hearth_proto::Timestamp;
use hearth_proto::schedules::{DefaultTarget, Hold, NewOverride, NewRule, Override, Rule};
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use tokio::sync::{Mutex, watch};

use super::changes::Change;
use super::db::on_pool;
use super::{Store, from_millis, millis};
use crate::schedule::{Schedule, check_rule, default_target, next_change_hold_end};
use crate::zones::ZoneId;

/// Overrides that ended longer ago than this are deleted.
const KEEP_ENDED: SignedDuration = SignedDuration::from_hours(7 * 24);

impl Store {
    /// Every rule of every zone, by id, each with its zone. A stored body that no longer
    /// parses or validates (written by another version) is skipped with a warning rather than
    /// failing the whole schedule.
    pub(crate) async fn schedule_rules(&self) -> Result<Vec<Rule>, sqlx::Error> {
        let rows: Vec<(i64, String, String)> = on_pool!(&self.pool(), |p| sqlx::query_as(
            "SELECT id, body, zone_id FROM rules ORDER BY id"
        )
        .fetch_all(p)
        .await)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, body, zone) in rows {
            let rule = serde_json::from_str::<NewRule>(&body)
                .map(|r| NewRule { zone: Some(zone), ..r })
                .map_err(|e| e.to_string());
            match rule.and_then(|r| check_rule(&r).map(|layer| Rule { id, layer, rule: r })) {
                Ok(rule) => out.push(rule),
                Err(e) => tracing::warn!(id, error = %e, "stored schedule rule skipped"),
            }
        }
        Ok(out)
    }

    /// Store a rule in its zone (`rule.zone`, the default zone when None); its id.
    pub(crate) async fn insert_rule(&self, rule: &NewRule, now: i64) -> Result<i64, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let id = self.write_rule(None, rule, now).await?;
        self.kept([Change::Rule { id, rule: rule.clone(), now }]);
        Ok(id)
    }

    /// Replace a rule's body and zone; false when there is no such rule.
    pub(crate) async fn update_rule(&self, id: i64, rule: &NewRule) -> Result<bool, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let found = self.write_rule_update(id, rule).await?;
        self.kept([Change::UpdateRule { id, rule: rule.clone() }]);
        Ok(found)
    }

    pub(crate) async fn delete_rule(&self, id: i64) -> Result<bool, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let found = self.write_rule_deletion(id).await?;
        self.kept([Change::DeleteRule(id)]);
        Ok(found)
    }

    /// The row of [`Self::insert_rule`], its id chosen by the database; with `id`, the rule
    /// written again after a fault (`changes.rs`), inserted only when missing.
    pub(super) async fn write_rule(
        &self,
        id: Option<i64>,
        rule: &NewRule,
        now: i64,
    ) -> Result<i64, sqlx::Error> {
        let zone = zone_of(rule.zone.as_deref());
        let body = body(&NewRule { zone: None, ..rule.clone() });
        let Some(id) = id else {
            let id = on_pool!(&self.pool(), |p| sqlx::query_scalar(
                "INSERT INTO rules (body, created, zone_id) VALUES ($1, $2, $3) RETURNING id"
            )
            .bind(&body)
            .bind(now)
            .bind(&zone.0)
            .fetch_one(p)
            .await);
            return self.seen(id);
        };
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "INSERT INTO rules (id, body, created, zone_id) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING"
        )
        .bind(id)
        .bind(&body)
        .bind(now)
        .bind(&zone.0)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done)?;
        self.ids_follow("rules").await?;
        Ok(id)
    }

    pub(super) async fn write_rule_update(
        &self,
        id: i64,
        rule: &NewRule,
    ) -> Result<bool, sqlx::Error> {
        let zone = zone_of(rule.zone.as_deref());
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE rules SET body = $1, zone_id = $2 WHERE id = $3"
        )
        .bind(body(&NewRule { zone: None, ..rule.clone() }))
        .bind(zone.0)
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        let done = self.seen(done)?;
        Ok(done == 1)
    }

    pub(super) async fn write_rule_deletion(&self, id: i64) -> Result<bool, sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query("DELETE FROM rules WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        let done = self.seen(done)?;
        Ok(done == 1)
    }

    /// Every override not ended more than a week before `now` (older ones are deleted here),
    /// by id.
    pub(crate) async fn overrides(&self, now: Timestamp) -> Result<Vec<Override>, sqlx::Error> {
        let horizon = now.checked_sub(KEEP_ENDED).unwrap_or(Timestamp::MIN);
        // Housekeeping only: on storage that does not take writes (a start on a read-only
        // card), the overrides are still read.
        let deleted = on_pool!(&self.pool(), |p| sqlx::query(
            "DELETE FROM overrides WHERE end_ms IS NOT NULL AND end_ms < $1"
        )
        .bind(millis(horizon))
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        if let Err(e) = self.seen(deleted) {
            tracing::debug!(error = %e, "old overrides not deleted");
        }
        let rows: Vec<(i64, String, i64, Option<i64>, i64, String)> =
            on_pool!(&self.pool(), |p| sqlx::query_as(
                "SELECT id, body, start_ms, end_ms, created, zone_id FROM overrides ORDER BY id",
            )
            .fetch_all(p)
            .await)?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, body, start, end, created, zone) in rows {
            match serde_json::from_str::<NewOverride>(&body) {
                Ok(o) => out.push(Override {
                    id,
                    heat_c: o.heat_c,
                    cool_c: o.cool_c,
                    sensors: o.sensors,
                    start: from_millis(start),
                    end: end.map(from_millis),
                    hold: o.hold,
                    created: from_millis(created),
                    zone,
                }),
                Err(e) => tracing::warn!(id, error = %e, "stored override skipped"),
            }
        }
        Ok(out)
    }

    /// Store an override whose start and end are resolved, in its zone (`o.zone`, the default
    /// zone when None); its id.
    pub(crate) async fn insert_override(
        &self,
        o: &NewOverride,
        start: Timestamp,
        end: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<i64, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let id = self.write_override(None, o, start, end, now).await?;
        self.kept([Change::Override { id, o: o.clone(), start, end, now }]);
        Ok(id)
    }

    pub(crate) async fn delete_override(&self, id: i64) -> Result<bool, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let found = self.write_override_deletion(id).await?;
        self.kept([Change::DeleteOverride(id)]);
        Ok(found)
    }

    /// Move an override's end (a hold "until the next change" after a schedule edit).
    pub(crate) async fn set_override_end(
        &self,
        id: i64,
        end: Timestamp,
    ) -> Result<(), sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        self.write_override_end(id, end).await?;
        self.kept([Change::OverrideEnd { id, end }]);
        Ok(())
    }

    /// End every override of `zone` in force at `now` (started, not ended); how many.
    pub(crate) async fn end_overrides(
        &self,
        zone: &ZoneId,
        now: Timestamp,
    ) -> Result<u64, sqlx::Error> {
        let _changing = self.inner.changes.begin().await;
        let ended: Result<Vec<i64>, _> = on_pool!(&self.pool(), |p| sqlx::query_scalar(
            "UPDATE overrides SET end_ms = $1
             WHERE zone_id = $2 AND start_ms <= $1 AND (end_ms IS NULL OR end_ms > $1)
             RETURNING id",
        )
        .bind(millis(now))
        .bind(&zone.0)
        .fetch_all(p)
        .await);
        let ended = self.seen(ended)?;
        // Kept as the overrides it ended: written again, it ends those, not the ones in force
        // then.
        self.kept(ended.iter().map(|&id| Change::OverrideEnd { id, end: now }));
        Ok(ended.len() as u64)
    }

    /// The row of [`Self::insert_override`], its id chosen by the database; with `id`, the
    /// override written again after a fault (`changes.rs`), inserted only when missing.
    pub(super) async fn write_override(
        &self,
        id: Option<i64>,
        o: &NewOverride,
        start: Timestamp,
        end: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<i64, sqlx::Error> {
        let zone = zone_of(o.zone.as_deref());
        let stored = body(&NewOverride { start: Some(start), zone: None, ..o.clone() });
        let Some(id) = id else {
            let id = on_pool!(&self.pool(), |p| sqlx::query_scalar(
                "INSERT INTO overrides (body, start_ms, end_ms, created, zone_id)
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&stored)
            .bind(millis(start))
            .bind(end.map(millis))
            .bind(millis(now))
            .bind(&zone.0)
            .fetch_one(p)
            .await);
            return self.seen(id);
        };
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "INSERT INTO overrides (id, body, start_ms, end_ms, created, zone_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(&stored)
        .bind(millis(start))
        .bind(end.map(millis))
        .bind(millis(now))
        .bind(&zone.0)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done)?;
        self.ids_follow("overrides").await?;
        Ok(id)
    }

    pub(super) async fn write_override_deletion(&self, id: i64) -> Result<bool, sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query("DELETE FROM overrides WHERE id = $1")
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected()));
        let done = self.seen(done)?;
        Ok(done == 1)
    }

    pub(super) async fn write_override_end(
        &self,
        id: i64,
        end: Timestamp,
    ) -> Result<(), sqlx::Error> {
        let done = on_pool!(&self.pool(), |p| sqlx::query(
            "UPDATE overrides SET end_ms = $1 WHERE id = $2"
        )
        .bind(millis(end))
        .bind(id)
        .execute(p)
        .await
        .map(|r| r.rows_affected()));
        self.seen(done).map(|_| ())
    }
}

/// The zones' schedules in force, shared: the database is the truth, the snapshots their
/// compiled copies. Every change is written to the database first, then the snapshots are
/// rebuilt from it and published to subscribers (the control loop).
#[derive(Debug)]
pub(crate) struct Schedules {
    store: Store,
    tz: TimeZone,
    /// The default zone's schedule, published at every change of any zone's (so that one
    /// subscription wakes the loop for all).
    current: watch::Sender<Arc<Schedule>>,
    /// Every zone's schedule.
    zones: watch::Sender<Arc<ByZone>>,
    /// One change at a time, so snapshots are published in the order of the writes.
    writing: Mutex<()>,
}

type ByZone = BTreeMap<ZoneId, Arc<Schedule>>;

impl Schedules {
    /// Load the schedules from the database. When they cannot be read (a start on a damaged
    /// card), the built-in default target stands in for the default zone until
    /// [`Self::reload`] succeeds; control is then in mode off anyway (controller.rs), so it
    /// only matters to what is shown.
    pub(crate) async fn load(store: Store, tz: TimeZone) -> anyhow::Result<Self> {
        let zones = match read(&store, &tz, Timestamp::now()).await {
            Ok(zones) => zones,
            Err(e) => {
                tracing::error!(error = %e, "cannot load the schedule; the default target \
                    stands in until the database answers");
                let schedule = Schedule::new(tz.clone(), default_target(), Vec::new(), Vec::new());
                BTreeMap::from([(ZoneId::default_zone(), Arc::new(schedule))])
            }
        };
        let (current, _) = watch::channel(default_of(&zones, &tz));
        let (zones, _) = watch::channel(Arc::new(zones));
        Ok(Self { store, tz, current, zones, writing: Mutex::new(()) })
    }

    /// Read the schedules again (the database came back after a storage fault, or a zone was
    /// added or deleted).
    pub(crate) async fn reload(&self) -> Result<(), sqlx::Error> {
        let _w = self.writing.lock().await;
        self.publish().await
    }

    /// The default zone's schedule in force now (the loop reads every zone's, the default's
    /// included, through `zone_snapshot`).
    #[cfg(test)]
    pub(crate) fn snapshot(&self) -> Arc<Schedule> {
        self.current.borrow().clone()
    }

    /// A zone's schedule in force now; None for a zone that does not exist.
    pub(crate) fn zone_snapshot(&self, zone: &ZoneId) -> Option<Arc<Schedule>> {
        self.zones.borrow().get(zone).cloned()
    }

    /// A rule of any zone, by id.
    pub(crate) fn rule(&self, id: i64) -> Option<Rule> {
        self.zones.borrow().values().flat_map(|s| s.rules()).find(|r| r.id == id).cloned()
    }

    /// Changes of any zone's schedule, as new snapshots of the default zone's.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Schedule>> {
        self.current.subscribe()
    }

    async fn publish(&self) -> Result<(), sqlx::Error> {
        let zones = read(&self.store, &self.tz, Timestamp::now()).await?;
        self.current.send_replace(default_of(&zones, &self.tz));
        self.zones.send_replace(Arc::new(zones));
        Ok(())
    }

    /// After a write to the rules or the default target of `zones`: their holds "until the
    /// next change" follow their schedule as it stands now ([`next_change_hold_end`]), then the
    /// snapshots are rebuilt. `before` is the snapshots from before the write.
    async fn publish_edit(&self, zones: &[&ZoneId], before: &ByZone) -> Result<(), sqlx::Error> {
        // The database keeps milliseconds: decide on what it will hold.
        let now = ms(Timestamp::now());
        let rules = self.store.schedule_rules().await?;
        let overrides = self.store.overrides(now).await?;
        for zone in zones {
            let Some(before) = before.get(*zone) else { continue };
            let after = Schedule::new(
                self.tz.clone(),
                self.store.zone_default_target(zone).await?,
                rules.iter().filter(|r| in_zone(r.rule.zone.as_deref(), zone)).cloned().collect(),
                Vec::new(),
            );
            for o in overrides.iter().filter(|o| o.zone == zone.0) {
                let (Hold::NextChange, Some(end)) = (&o.hold, o.end) else { continue };
                let moved = ms(next_change_hold_end(before, &after, o.start, end, now));
                if moved != end {
                    self.store.set_override_end(o.id, moved).await?;
                    tracing::info!(id = o.id, zone = %zone, from = %end, to = %moved,
                        "override held until the next change follows the schedule edit");
                }
            }
        }
        self.publish().await
    }

    /// Store a new rule (already checked) in its zone (`rule.zone`); the stored rule.
    pub(crate) async fn create_rule(&self, rule: NewRule) -> Result<Rule, sqlx::Error> {
        let layer = check_rule(&rule).map_err(invalid)?;
        let _w = self.writing.lock().await;
        let before = self.zones.borrow().clone();
        let id = self.store.insert_rule(&rule, millis(Timestamp::now())).await?;
        let zone = zone_of(rule.zone.as_deref());
        self.publish_edit(&[&zone], &before).await?;
        Ok(Rule { id, layer, rule: NewRule { zone: Some(zone.0), ..rule } })
    }

    /// Replace a rule (already checked), which may move it to another zone; `None` when there
    /// is no such rule.
    pub(crate) async fn replace_rule(
        &self,
        id: i64,
        rule: NewRule,
    ) -> Result<Option<Rule>, sqlx::Error> {
        let layer = check_rule(&rule).map_err(invalid)?;
        let _w = self.writing.lock().await;
        let before = self.zones.borrow().clone();
        let Some(old) = self.rule(id) else { return Ok(None) };
        if !self.store.update_rule(id, &rule).await? {
            return Ok(None);
        }
        let (from, to) = (zone_of(old.rule.zone.as_deref()), zone_of(rule.zone.as_deref()));
        self.publish_edit(&[&from, &to], &before).await?;
        Ok(Some(Rule { id, layer, rule: NewRule { zone: Some(to.0), ..rule } }))
    }

    /// Delete a rule of any zone; false when there is no such rule.
    pub(crate) async fn delete_rule(&self, id: i64) -> Result<bool, sqlx::Error> {
        let _w = self.writing.lock().await;
        let before = self.zones.borrow().clone();
        let zone = self.rule(id).map(|r| zone_of(r.rule.zone.as_deref()));
        let found = self.store.delete_rule(id).await?;
        if found {
            let zones: Vec<&ZoneId> = zone.iter().collect();
            self.publish_edit(&zones, &before).await?;
        }
        Ok(found)
    }

    /// Replace a zone's default target (already checked).
    pub(crate) async fn set_default(
        &self,
        zone: &ZoneId,
        d: &DefaultTarget,
    ) -> Result<(), sqlx::Error> {
        let _w = self.writing.lock().await;
        let before = self.zones.borrow().clone();
        self.store.save_zone_default_target(zone, d).await?;
        self.publish_edit(&[zone], &before).await
    }

    /// A zone's overrides (every zone's when None) in force at `now` or still to come, by id.
    pub(crate) async fn overrides(
        &self,
        zone: Option<&ZoneId>,
        now: Timestamp,
    ) -> Result<Vec<Override>, sqlx::Error> {
        let mut all = self.store.overrides(now).await?;
        all.retain(|o| o.end.is_none_or(|end| end > now) && zone.is_none_or(|z| z.0 == o.zone));
        Ok(all)
    }

    /// Store an override in its zone (`o.zone`) with its resolved start and end (already
    /// checked).
    pub(crate) async fn create_override(
        &self,
        o: NewOverride,
        start: Timestamp,
        end: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Override, sqlx::Error> {
        // The database keeps milliseconds: answer with what a later GET returns.
        let (start, end, now) = (ms(start), end.map(ms), ms(now));
        let _w = self.writing.lock().await;
        let id = self.store.insert_override(&o, start, end, now).await?;
        self.publish().await?;
        Ok(Override {
            id,
            heat_c: o.heat_c,
            cool_c: o.cool_c,
            sensors: o.sensors,
            start,
            end,
            hold: o.hold,
            created: now,
            zone: zone_of(o.zone.as_deref()).0,
        })
    }

    /// Delete an override of any zone; false when there is no such override.
    pub(crate) async fn delete_override(&self, id: i64) -> Result<bool, sqlx::Error> {
        let _w = self.writing.lock().await;
        let found = self.store.delete_override(id).await?;
        if found {
            self.publish().await?;
        }
        Ok(found)
    }

    /// End every override of `zone` in force at `now` ("resume the schedule"); how many.
    pub(crate) async fn resume(&self, zone: &ZoneId, now: Timestamp) -> Result<u64, sqlx::Error> {
        let _w = self.writing.lock().await;
        let ended = self.store.end_overrides(zone, now).await?;
        if ended > 0 {
            self.publish().await?;
        }
        Ok(ended)
    }
}

/// The zone a stored or requested zone id names: the default zone when None.
fn zone_of(zone: Option<&str>) -> ZoneId {
    zone.map_or_else(ZoneId::default_zone, ZoneId::from)
}

fn in_zone(zone: Option<&str>, of: &ZoneId) -> bool {
    zone_of(zone) == *of
}

/// The stored body of a rule or an override: without its zone, which the `zone_id` column
/// holds.
fn body<T: serde::Serialize>(item: &T) -> String {
    serde_json::to_string(item).unwrap_or_default()
}

/// The default zone's schedule among `zones` (the built-in default target when missing).
fn default_of(zones: &ByZone, tz: &TimeZone) -> Arc<Schedule> {
    zones.get(&ZoneId::default_zone()).cloned().unwrap_or_else(|| {
        Arc::new(Schedule::new(tz.clone(), default_target(), Vec::new(), Vec::new()))
    })
}

fn ms(t: Timestamp) -> Timestamp {
    from_millis(millis(t))
}

/// A rule that reached storage unchecked is a bug of the caller, reported like a bad row.
fn invalid(e: String) -> sqlx::Error {
    sqlx::Error::Protocol(format!("unchecked schedule rule: {e}"))
}

/// Every zone's schedule: its default target, rules and overrides.
async fn read(store: &Store, tz: &TimeZone, now: Timestamp) -> Result<ByZone, sqlx::Error> {
    let mut zones: Vec<ZoneId> =
        store.stored_house().await?.zones.into_iter().map(|z| z.id).collect();
    if !zones.iter().any(ZoneId::is_default) {
        zones.push(ZoneId::default_zone());
    }
    let rules = store.schedule_rules().await?;
    let overrides = store.overrides(now).await?;
    let mut out = BTreeMap::new();
    for zone in zones {
        let default = store.zone_default_target(&zone).await?;
        let rules = rules.iter().filter(|r| in_zone(r.rule.zone.as_deref(), &zone)).cloned();
        let overrides = overrides.iter().filter(|o| o.zone == zone.0).cloned();
        let schedule = Schedule::new(tz.clone(), default, rules.collect(), overrides.collect());
        out.insert(zone, Arc::new(schedule));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use hearth_proto::schedules::{Hold, Layer};

    use super::*;

    async fn rules_overrides_and_default_round_trip_and_publish(
        store: Store,
    ) -> anyhow::Result<()> {
        let tz = TimeZone::get("Europe/Berlin")?;
        let schedules = Schedules::load(store.clone(), tz.clone()).await?;
        let mut changes = schedules.subscribe();
        assert_eq!(schedules.snapshot().default_target(), &default_target());

        let rule = crate::store::testing::monday_rule("mornings");
        let stored = schedules.create_rule(rule.clone()).await?;
        assert_eq!(stored.layer, Layer::Day);
        assert!(changes.has_changed()?);
        changes.borrow_and_update();
        assert_eq!(schedules.snapshot().rules(), std::slice::from_ref(&stored));
        assert_eq!(schedules.replace_rule(stored.id + 1, rule.clone()).await?, None);
        assert!(!changes.has_changed()?, "nothing changed, nothing published");

        let d = DefaultTarget { heat_c: 18.0, cool_c: 27.0, sensors: vec![] };
        let house = ZoneId::default_zone();
        schedules.set_default(&house, &d).await?;
        // A fresh load reads what was written.
        let again = Schedules::load(store.clone(), tz.clone()).await?;
        assert_eq!(again.snapshot().default_target(), &d);
        assert_eq!(again.snapshot().rules(), std::slice::from_ref(&stored));

        // Overrides: one ended long ago is pruned; resume ends the one in force only.
        let now: Timestamp = "2026-01-14T10:00:00Z".parse()?;
        let o = NewOverride {
            heat_c: Some(22.0),
            cool_c: None,
            start: None,
            hold: Hold::Indefinite,
            sensors: vec![],
            zone: None,
        };
        let old: Timestamp = "2026-01-01T10:00:00Z".parse()?;
        let later: Timestamp = "2026-01-15T10:00:00Z".parse()?;
        schedules
            .create_override(
                o.clone(),
                old,
                Some(old.checked_add(SignedDuration::from_hours(1))?),
                old,
            )
            .await?;
        // In force at `now`: resume ends it.
        schedules.create_override(o.clone(), now, None, now).await?;
        let future = schedules.create_override(o.clone(), later, None, now).await?;
        assert_eq!(store.overrides(now).await?.len(), 2, "the old one is pruned");
        assert_eq!(schedules.resume(&house, now).await?, 1);
        let left: Vec<i64> = schedules.overrides(None, now).await?.iter().map(|o| o.id).collect();
        assert_eq!(left, vec![future.id]);
        assert!(schedules.delete_override(future.id).await?);
        assert!(!schedules.delete_override(future.id).await?);
        assert!(schedules.overrides(None, now).await?.is_empty());

        // Another zone has a schedule of its own: its rules, default target and overrides
        // leave the default zone's alone.
        on_pool!(&store.test_pool(), |p| sqlx::query(
            r#"INSERT INTO zones (id, name, position, spec)
               VALUES ('bedroom', 'Bedroom', 1, '{"v":1,"sensors":["28-b1"]}')"#,
        )
        .execute(p)
        .await
        .map(|_| ()))?;
        schedules.reload().await?;
        let bedroom = ZoneId::from("bedroom");
        let snapshot =
            |z: &ZoneId| schedules.zone_snapshot(z).ok_or_else(|| anyhow::anyhow!("{z}"));
        assert!(snapshot(&bedroom)?.rules().is_empty());
        let night = NewRule { zone: Some("bedroom".into()), ..rule.clone() };
        let night = schedules.create_rule(night).await?;
        assert_eq!(night.rule.zone.as_deref(), Some("bedroom"));
        assert_eq!(snapshot(&bedroom)?.rules(), std::slice::from_ref(&night));
        assert_eq!(schedules.snapshot().rules(), std::slice::from_ref(&stored));
        assert_eq!(schedules.rule(night.id), Some(night.clone()));
        let cool = DefaultTarget { heat_c: 16.0, cool_c: 28.0, sensors: vec![] };
        schedules.set_default(&bedroom, &cool).await?;
        assert_eq!(snapshot(&bedroom)?.default_target(), &cool);
        assert_eq!(schedules.snapshot().default_target(), &d);
        let o = NewOverride { zone: Some("bedroom".into()), ..o };
        let held = schedules.create_override(o, now, None, now).await?;
        assert_eq!(held.zone, "bedroom");
        assert!(schedules.overrides(Some(&house), now).await?.is_empty());
        assert_eq!(schedules.resume(&house, now).await?, 0);
        assert_eq!(schedules.resume(&bedroom, now).await?, 1);
        // Moving a rule to another zone moves it between the schedules.
        let moved = NewRule { zone: Some("house".into()), ..night.rule.clone() };
        schedules.replace_rule(night.id, moved).await?;
        assert!(snapshot(&bedroom)?.rules().is_empty());
        assert_eq!(schedules.snapshot().rules().len(), 2);
        Ok(())
    }

    crate::store::testing::on_both_backends!(rules_overrides_and_default_round_trip_and_publish,);
}
