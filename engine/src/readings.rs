//! What a sensor reading means, in one place: where it belongs in time (`clock.rs`), storing
//! it (`ingest.rs`) and announcing it after the commit, its calibrated value, whether it is
//! stale, and the name its sensor goes by.
//!
//! Readings are stored as the probe measured them; the calibration offset people set
//! (`PUT /v1/sensors/{id}/settings`) is added wherever a temperature is served or decided on:
//! the sensor list, the readings series, reading events, the fusion (after the plausibility
//! checks, which judge what the probe said) and `/metrics`. They all go through
//! [`calibrated`], decide staleness with [`stale_age`] and name a sensor with
//! [`display_name`], so no view can show another value, verdict or name than the rest. The
//! API handlers parse and authorise, then call [`Readings`]; the control loop reads its
//! sensors through it too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hearth_common::sse::EventBus;
use hearth_proto::Timestamp;
use hearth_proto::agents::KeyRole;
use hearth_proto::events::Event;
use hearth_proto::sensors::{SensorReport, SensorSettings};
use jiff::SignedDuration;

use crate::clock::{ClockWatch, Kind};
use crate::control::SensorSnapshot;
use crate::ingest::Ingest;
use crate::store::{NewReading, NewReport, SensorRow, Series, Store, from_millis, millis};

/// A measured value as served and used: plus the sensor's calibration offset.
pub(crate) fn calibrated(measured: f64, offset_c: f64) -> f64 {
    measured + offset_c
}

/// The name a sensor goes by: the one people gave it, else its agent's alias, else its id.
pub(crate) fn display_name<'a>(
    id: &'a str,
    name: Option<&'a str>,
    alias: Option<&'a str>,
) -> &'a str {
    name.or(alias).unwrap_or(id)
}

/// The age of a reading taken `at` when it no longer counts (older than `stale_after`);
/// None while it is fresh. The one definition of stale: the sensor list shows what the
/// fusion excludes.
pub(crate) fn stale_age(
    now: Timestamp,
    at: Timestamp,
    stale_after: SignedDuration,
) -> Option<SignedDuration> {
    let age = now.duration_since(at);
    (age > stale_after).then_some(age)
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

/// One report of readings from a sensor agent, validated and authenticated.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) host_id: String,
    pub(crate) key_role: KeyRole,
    /// The agent's clock when it sent the report, if it said.
    pub(crate) agent_time: Option<Timestamp>,
    /// Live (`PUT /v1/sensors/update`) or replayed (`PUT /v1/sensors/backlog`).
    pub(crate) kind: Kind,
    pub(crate) readings: Vec<(String, SensorReport)>,
}

/// The readings domain: submitting reports and serving readings as people see them.
#[derive(Debug)]
pub(crate) struct Readings {
    store: Store,
    ingest: Ingest,
    clock: Arc<ClockWatch>,
    events: EventBus,
    stale_after: SignedDuration,
    /// Non-zero calibration offsets by sensor id, a copy of the `sensors.offset_c` column
    /// kept by [`Readings::set_settings`], so that live reading events are calibrated without
    /// a query on the ingest path.
    offsets: RwLock<HashMap<String, f64>>,
}

impl Readings {
    pub(crate) async fn new(
        store: Store,
        ingest: Ingest,
        clock: Arc<ClockWatch>,
        events: EventBus,
        stale_after: SignedDuration,
    ) -> Self {
        // Without the database (a start on a damaged card) the offsets are read again when it
        // recovers (`reload_offsets`).
        let offsets = store.sensor_offsets().await.unwrap_or_default().into_iter().collect();
        Self { store, ingest, clock, events, stale_after, offsets: RwLock::new(offsets) }
    }

    /// A reading older than this no longer counts, and is shown stale.
    pub(crate) fn stale_after(&self) -> SignedDuration {
        self.stale_after
    }

    /// Whether a sensor whose newest reading was taken `at` (None: never) is shown stale.
    pub(crate) fn is_stale(&self, now: Timestamp, at: Option<Timestamp>) -> bool {
        at.is_none_or(|at| stale_age(now, at, self.stale_after).is_some())
    }

    /// Place every reading of `report` in time, store them in one commit, and only then
    /// announce the live ones that became their sensor's latest (a subscriber that re-reads
    /// the API finds what it was told about). Err: why nothing was stored.
    pub(crate) async fn submit(&self, report: Report) -> Result<(), String> {
        let clock = self.clock.report(&report.host_id, report.agent_time, Timestamp::now());
        let readings: Vec<NewReading> = report
            .readings
            .into_iter()
            .map(|(sensor_id, r)| {
                let placed = clock.place(r.timestamp, report.kind);
                NewReading {
                    sensor_id,
                    kind: r.kind,
                    alias: r.alias,
                    extra: r.extra,
                    ts: placed.ts,
                    value: r.value,
                    latest_at: placed.latest_at,
                    misdated: placed.misdated,
                }
            })
            .collect();
        // Readings that could not be placed in time: logged here, counted against the agent
        // by the store.
        let misdated = readings.iter().filter(|r| r.misdated).count();
        self.clock.misdated(&report.host_id, misdated, clock.offset_ms);
        let events = match report.kind {
            Kind::Live => self.events_of(&readings),
            // Replayed backlogs are not streamed.
            Kind::Backlog => Vec::new(),
        };
        let stored = NewReport {
            host_id: report.host_id,
            key_role: report.key_role,
            received: clock.now_ms,
            clock_offset_ms: clock.offset_ms,
            misdated: misdated as u64,
            readings,
        };
        self.ingest.submit(stored).await?;
        for event in events {
            self.events.publish(event);
        }
        Ok(())
    }

    /// The reading events of live readings, calibrated.
    fn events_of(&self, readings: &[NewReading]) -> Vec<Event> {
        // A poisoned lock only means a settings handler panicked mid-insert; the map is still
        // a usable cache.
        let offsets = self.offsets.read().unwrap_or_else(|e| e.into_inner());
        readings
            .iter()
            // A misdated reading is stored, not announced: it is not the sensor's latest.
            .filter(|r| r.latest_at.is_some())
            .map(|r| Event::Reading {
                sensor_id: r.sensor_id.clone(),
                at: from_millis(r.ts),
                value: r
                    .value
                    .map(|v| calibrated(v, offsets.get(&r.sensor_id).copied().unwrap_or(0.0))),
            })
            .collect()
    }

    /// One sensor's readings over `[from, to)` as at most `max_points` points, calibrated;
    /// None when the sensor is unknown.
    pub(crate) async fn series(
        &self,
        id: &str,
        from: Timestamp,
        to: Timestamp,
        max_points: u32,
    ) -> Result<Option<Series>, sqlx::Error> {
        let Some(offset) = self.store.sensor_offset(id).await? else { return Ok(None) };
        let mut series = self.store.series(id, millis(from), millis(to), max_points).await?;
        if offset != 0.0 {
            for p in &mut series.points {
                for v in [&mut p.min, &mut p.mean, &mut p.max] {
                    *v = v.map(|v| calibrated(v, offset));
                }
            }
        }
        Ok(Some(series))
    }

    /// Store what people set for a sensor (already checked); false when it is unknown. Its
    /// readings stay stored as measured: the offset applies to everything served from now on.
    pub(crate) async fn set_settings(
        &self,
        id: &str,
        settings: &SensorSettings,
    ) -> Result<bool, sqlx::Error> {
        if !self.store.set_sensor_settings(id, settings).await? {
            return Ok(false);
        }
        let mut offsets = self.offsets.write().unwrap_or_else(|e| e.into_inner());
        if settings.offset_c == 0.0 {
            offsets.remove(id);
        } else {
            offsets.insert(id.to_owned(), settings.offset_c);
        }
        Ok(true)
    }

    /// Read the offsets again (the database came back after a storage fault).
    pub(crate) async fn reload_offsets(&self) {
        match self.store.sensor_offsets().await {
            Ok(offsets) => {
                *self.offsets.write().unwrap_or_else(|e| e.into_inner()) =
                    offsets.into_iter().collect();
            }
            Err(e) => tracing::error!(error = %e, "cannot read the sensor offsets again"),
        }
    }

    /// Every sensor's newest reading as the control loop judges it: measured, with the offset
    /// to add after the plausibility checks.
    pub(crate) async fn snapshots(&self) -> Result<Vec<SensorSnapshot>, sqlx::Error> {
        Ok(self.store.sensors().await?.into_iter().map(SensorSnapshot::from).collect())
    }
}

impl From<crate::store::SensorRow> for SensorSnapshot {
    /// A sensor as control sees it: its stored row, the name people gave it first.
    fn from(s: crate::store::SensorRow) -> Self {
        Self {
            id: s.id,
            name: s.name.or(s.alias),
            value: s.last_value,
            at: s.last_ts.map(from_millis),
            value_since: s.value_since.map(from_millis),
            weight: s.weight,
            offset_c: s.offset_c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fall_back_and_offsets_add() {
        assert_eq!(display_name("28-a", Some("Hall"), Some("hall probe")), "Hall");
        assert_eq!(display_name("28-a", None, Some("hall probe")), "hall probe");
        assert_eq!(display_name("28-a", None, None), "28-a");
        assert_eq!(calibrated(20.0, -1.5), 18.5);
    }

    #[test]
    fn a_reading_is_stale_only_past_the_limit() {
        let now = Timestamp::from_second(1_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let limit = SignedDuration::from_secs(120);
        let at = |s: i64| now - SignedDuration::from_secs(s);
        assert_eq!(stale_age(now, at(120), limit), None);
        assert_eq!(stale_age(now, at(121), limit), Some(SignedDuration::from_secs(121)));
    }
}
