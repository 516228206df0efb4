//! Schedule rules, overrides and the default target: their rows, and [`Schedules`], the shared
//! in-memory snapshot the API and the control loop read.

use std::sync::Arc;

use hearth_proto::Timestamp;
use hearth_proto::schedules::{DefaultTarget, Hold, NewOverride, NewRule, Override, Rule};
use jiff::SignedDuration;
use jiff::tz::TimeZone;
use sqlx::Row;
use tokio::sync::{Mutex, watch};

use super::{Store, from_millis, millis};
use crate::schedule::{Schedule, check_rule, default_target, next_change_hold_end};
use crate::zones::ZoneId;

/// Overrides that ended longer ago than this are deleted.
const KEEP_ENDED: SignedDuration = SignedDuration::from_hours(7 * 24);

impl Store {
    /// Every rule, by id. A stored body that no longer parses or validates (written by another
    /// version) is skipped with a warning rather than failing the whole schedule.
    pub(crate) async fn schedule_rules(&self) -> Result<Vec<Rule>, sqlx::Error> {
        let rows =
            sqlx::query("SELECT id, body FROM rules ORDER BY id").fetch_all(&self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let body: String = row.try_get("body")?;
            let rule = serde_json::from_str::<NewRule>(&body).map_err(|e| e.to_string());
            match rule.and_then(|r| check_rule(&r).map(|layer| Rule { id, layer, rule: r })) {
                Ok(rule) => out.push(rule),
                Err(e) => tracing::warn!(id, error = %e, "stored schedule rule skipped"),
            }
        }
        Ok(out)
    }

    pub(crate) async fn insert_rule(&self, rule: &NewRule, now: i64) -> Result<i64, sqlx::Error> {
        let done = sqlx::query("INSERT INTO rules (body, created) VALUES (?, ?)")
            .bind(serde_json::to_string(rule).unwrap_or_default())
            .bind(now)
            .execute(&self.pool())
            .await;
        let done = self.seen(done)?;
        Ok(done.last_insert_rowid())
    }

    /// Replace a rule's body; false when there is no such rule.
    pub(crate) async fn update_rule(&self, id: i64, rule: &NewRule) -> Result<bool, sqlx::Error> {
        let done = sqlx::query("UPDATE rules SET body = ? WHERE id = ?")
            .bind(serde_json::to_string(rule).unwrap_or_default())
            .bind(id)
            .execute(&self.pool())
            .await;
        let done = self.seen(done)?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn delete_rule(&self, id: i64) -> Result<bool, sqlx::Error> {
        let done =
            sqlx::query("DELETE FROM rules WHERE id = ?").bind(id).execute(&self.pool()).await;
        let done = self.seen(done)?;
        Ok(done.rows_affected() == 1)
    }

    /// The default zone's stored default target, or the built-in one.
    pub(crate) async fn schedule_default(&self) -> Result<DefaultTarget, sqlx::Error> {
        self.zone_default_target(&ZoneId::default_zone()).await
    }

    pub(crate) async fn save_schedule_default(&self, d: &DefaultTarget) -> Result<(), sqlx::Error> {
        self.save_zone_default_target(&ZoneId::default_zone(), d).await
    }

    /// Every override not ended more than a week before `now` (older ones are deleted here),
    /// by id.
    pub(crate) async fn overrides(&self, now: Timestamp) -> Result<Vec<Override>, sqlx::Error> {
        let horizon = now.checked_sub(KEEP_ENDED).unwrap_or(Timestamp::MIN);
        // Housekeeping only: on storage that does not take writes (a start on a read-only
        // card), the overrides are still read.
        let deleted = sqlx::query("DELETE FROM overrides WHERE end_ms IS NOT NULL AND end_ms < ?")
            .bind(millis(horizon))
            .execute(&self.pool())
            .await;
        if let Err(e) = self.seen(deleted) {
            tracing::debug!(error = %e, "old overrides not deleted");
        }
        let rows =
            sqlx::query("SELECT id, body, start_ms, end_ms, created FROM overrides ORDER BY id")
                .fetch_all(&self.pool())
                .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.try_get("id")?;
            let body: String = row.try_get("body")?;
            let end: Option<i64> = row.try_get("end_ms")?;
            match serde_json::from_str::<NewOverride>(&body) {
                Ok(o) => out.push(Override {
                    id,
                    heat_c: o.heat_c,
                    cool_c: o.cool_c,
                    sensors: o.sensors,
                    start: from_millis(row.try_get("start_ms")?),
                    end: end.map(from_millis),
                    hold: o.hold,
                    created: from_millis(row.try_get("created")?),
                }),
                Err(e) => tracing::warn!(id, error = %e, "stored override skipped"),
            }
        }
        Ok(out)
    }

    /// Store an override whose start and end are resolved; its id.
    pub(crate) async fn insert_override(
        &self,
        o: &NewOverride,
        start: Timestamp,
        end: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<i64, sqlx::Error> {
        let body = NewOverride { start: Some(start), ..o.clone() };
        let done = sqlx::query(
            "INSERT INTO overrides (body, start_ms, end_ms, created) VALUES (?, ?, ?, ?)",
        )
        .bind(serde_json::to_string(&body).unwrap_or_default())
        .bind(millis(start))
        .bind(end.map(millis))
        .bind(millis(now))
        .execute(&self.pool())
        .await;
        Ok(self.seen(done)?.last_insert_rowid())
    }

    pub(crate) async fn delete_override(&self, id: i64) -> Result<bool, sqlx::Error> {
        let done =
            sqlx::query("DELETE FROM overrides WHERE id = ?").bind(id).execute(&self.pool()).await;
        let done = self.seen(done)?;
        Ok(done.rows_affected() == 1)
    }

    /// Move an override's end (a hold "until the next change" after a schedule edit).
    pub(crate) async fn set_override_end(
        &self,
        id: i64,
        end: Timestamp,
    ) -> Result<(), sqlx::Error> {
        let done = sqlx::query("UPDATE overrides SET end_ms = ? WHERE id = ?")
            .bind(millis(end))
            .bind(id)
            .execute(&self.pool())
            .await;
        self.seen(done).map(|_| ())
    }

    /// End every override in force at `now` (started, not ended); how many.
    pub(crate) async fn end_overrides(&self, now: Timestamp) -> Result<u64, sqlx::Error> {
        let now = millis(now);
        let done = sqlx::query(
            "UPDATE overrides SET end_ms = ?
             WHERE start_ms <= ? AND (end_ms IS NULL OR end_ms > ?)",
        )
        .bind(now)
        .bind(now)
        .bind(now)
        .execute(&self.pool())
        .await;
        Ok(self.seen(done)?.rows_affected())
    }
}

/// The schedule in force, shared: the database is the truth, the snapshot its compiled copy.
/// Every change is written to the database first, then the snapshot is rebuilt from it and
/// published to subscribers (the control loop).
#[derive(Debug)]
pub(crate) struct Schedules {
    store: Store,
    tz: TimeZone,
    current: watch::Sender<Arc<Schedule>>,
    /// One change at a time, so snapshots are published in the order of the writes.
    writing: Mutex<()>,
}

impl Schedules {
    /// Load the schedule from the database. When it cannot be read (a start on a damaged
    /// card), the built-in default target stands in until [`Self::reload`] succeeds; control
    /// is then in mode off anyway (controller.rs), so it only matters to what is shown.
    pub(crate) async fn load(store: Store, tz: TimeZone) -> anyhow::Result<Self> {
        let schedule = match read(&store, &tz, Timestamp::now()).await {
            Ok(schedule) => schedule,
            Err(e) => {
                tracing::error!(error = %e, "cannot load the schedule; the default target \
                    stands in until the database answers");
                Schedule::new(tz.clone(), default_target(), Vec::new(), Vec::new())
            }
        };
        let (current, _) = watch::channel(Arc::new(schedule));
        Ok(Self { store, tz, current, writing: Mutex::new(()) })
    }

    /// Read the schedule again (the database came back after a storage fault).
    pub(crate) async fn reload(&self) -> Result<(), sqlx::Error> {
        let _w = self.writing.lock().await;
        self.publish().await
    }

    /// The schedule in force now.
    pub(crate) fn snapshot(&self) -> Arc<Schedule> {
        self.current.borrow().clone()
    }

    #[allow(dead_code, reason = "stand-in until per-zone schedules are stored")]
    /// A zone's schedule (stand-in: only the default zone has one until per-zone schedules
    /// are stored).
    pub(crate) fn zone_snapshot(&self, zone: &crate::zones::ZoneId) -> Option<Arc<Schedule>> {
        zone.is_default().then(|| self.snapshot())
    }

    /// Changes of the schedule, as new snapshots.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<Schedule>> {
        self.current.subscribe()
    }

    async fn publish(&self) -> Result<(), sqlx::Error> {
        let schedule = read(&self.store, &self.tz, Timestamp::now()).await?;
        self.current.send_replace(Arc::new(schedule));
        Ok(())
    }

    /// After a write to the rules or the default target: holds "until the next change" follow
    /// the schedule as it stands now ([`next_change_hold_end`]), then the snapshot is rebuilt.
    /// `before` is the snapshot from before the write.
    async fn publish_edit(&self, before: &Schedule) -> Result<(), sqlx::Error> {
        // The database keeps milliseconds: decide on what it will hold.
        let now = ms(Timestamp::now());
        let after = Schedule::new(
            self.tz.clone(),
            self.store.schedule_default().await?,
            self.store.schedule_rules().await?,
            Vec::new(),
        );
        for o in self.store.overrides(now).await? {
            let (Hold::NextChange, Some(end)) = (&o.hold, o.end) else { continue };
            let moved = ms(next_change_hold_end(before, &after, o.start, end, now));
            if moved != end {
                self.store.set_override_end(o.id, moved).await?;
                tracing::info!(id = o.id, from = %end, to = %moved,
                    "override held until the next change follows the schedule edit");
            }
        }
        self.publish().await
    }

    /// Store a new rule (already checked); the stored rule.
    pub(crate) async fn create_rule(&self, rule: NewRule) -> Result<Rule, sqlx::Error> {
        let layer = check_rule(&rule).map_err(invalid)?;
        let _w = self.writing.lock().await;
        let before = self.snapshot();
        let id = self.store.insert_rule(&rule, millis(Timestamp::now())).await?;
        self.publish_edit(&before).await?;
        Ok(Rule { id, layer, rule })
    }

    /// Replace a rule (already checked); `None` when there is no such rule.
    pub(crate) async fn replace_rule(
        &self,
        id: i64,
        rule: NewRule,
    ) -> Result<Option<Rule>, sqlx::Error> {
        let layer = check_rule(&rule).map_err(invalid)?;
        let _w = self.writing.lock().await;
        let before = self.snapshot();
        if !self.store.update_rule(id, &rule).await? {
            return Ok(None);
        }
        self.publish_edit(&before).await?;
        Ok(Some(Rule { id, layer, rule }))
    }

    /// Delete a rule; false when there is no such rule.
    pub(crate) async fn delete_rule(&self, id: i64) -> Result<bool, sqlx::Error> {
        let _w = self.writing.lock().await;
        let before = self.snapshot();
        let found = self.store.delete_rule(id).await?;
        if found {
            self.publish_edit(&before).await?;
        }
        Ok(found)
    }

    /// Replace the default target (already checked).
    pub(crate) async fn set_default(&self, d: &DefaultTarget) -> Result<(), sqlx::Error> {
        let _w = self.writing.lock().await;
        let before = self.snapshot();
        self.store.save_schedule_default(d).await?;
        self.publish_edit(&before).await
    }

    /// Overrides in force at `now` or still to come, by id.
    pub(crate) async fn overrides(&self, now: Timestamp) -> Result<Vec<Override>, sqlx::Error> {
        let mut all = self.store.overrides(now).await?;
        all.retain(|o| o.end.is_none_or(|end| end > now));
        Ok(all)
    }

    /// Store an override with its resolved start and end (already checked).
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
        })
    }

    /// Delete an override; false when there is no such override.
    pub(crate) async fn delete_override(&self, id: i64) -> Result<bool, sqlx::Error> {
        let _w = self.writing.lock().await;
        let found = self.store.delete_override(id).await?;
        if found {
            self.publish().await?;
        }
        Ok(found)
    }

    /// End every override in force at `now` ("resume the schedule"); how many.
    pub(crate) async fn resume(&self, now: Timestamp) -> Result<u64, sqlx::Error> {
        let _w = self.writing.lock().await;
        let ended = self.store.end_overrides(now).await?;
        if ended > 0 {
            self.publish().await?;
        }
        Ok(ended)
    }
}

fn ms(t: Timestamp) -> Timestamp {
    from_millis(millis(t))
}

/// A rule that reached storage unchecked is a bug of the caller, reported like a bad row.
fn invalid(e: String) -> sqlx::Error {
    sqlx::Error::Protocol(format!("unchecked schedule rule: {e}"))
}

async fn read(store: &Store, tz: &TimeZone, now: Timestamp) -> Result<Schedule, sqlx::Error> {
    let default = store.schedule_default().await?;
    let rules = store.schedule_rules().await?;
    let overrides = store.overrides(now).await?;
    Ok(Schedule::new(tz.clone(), default, rules, overrides))
}

#[cfg(test)]
mod tests {
    use hearth_proto::schedules::{Hold, Layer, When};

    use super::*;

    #[tokio::test]
    async fn rules_overrides_and_default_round_trip_and_publish() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await?;
        let tz = TimeZone::get("Europe/Berlin")?;
        let schedules = Schedules::load(store.clone(), tz.clone()).await?;
        let mut changes = schedules.subscribe();
        assert_eq!(schedules.snapshot().default_target(), &default_target());

        let rule = NewRule {
            name: "mornings".into(),
            enabled: true,
            when: When::Weekly {
                days: vec![hearth_proto::schedules::Weekday::Monday],
                start: "06:00".into(),
                end: "08:00".into(),
            },
            heat_c: Some(21.0),
            cool_c: None,
            sensors: vec![],
        };
        let stored = schedules.create_rule(rule.clone()).await?;
        assert_eq!(stored.layer, Layer::Day);
        assert!(changes.has_changed()?);
        changes.borrow_and_update();
        assert_eq!(schedules.snapshot().rules(), std::slice::from_ref(&stored));
        assert_eq!(schedules.replace_rule(stored.id + 1, rule.clone()).await?, None);
        assert!(!changes.has_changed()?, "nothing changed, nothing published");

        let d = DefaultTarget { heat_c: 18.0, cool_c: 27.0, sensors: vec![] };
        schedules.set_default(&d).await?;
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
        assert_eq!(schedules.resume(now).await?, 1);
        let left: Vec<i64> = schedules.overrides(now).await?.iter().map(|o| o.id).collect();
        assert_eq!(left, vec![future.id]);
        assert!(schedules.delete_override(future.id).await?);
        assert!(!schedules.delete_override(future.id).await?);
        assert!(schedules.overrides(now).await?.is_empty());
        Ok(())
    }
}
