//! The readings acknowledged in the last seconds, kept to be written again after a fault.
//!
//! A commit that returned is not always on the storage for good when the storage itself then
//! fails: an SD card's controller may confirm a write it holds only in its cache, and a card
//! that fails soon after loses it; ext4's error handling (remount read-only) races with a
//! commit in flight. The agent dropped a reading once it was acknowledged, so only the engine
//! still has it. The end-to-end test of a filesystem turned read-only once lost a reading
//! acknowledged about 100 ms before the fault showed (`tests/tests/e2e/storage.rs`).
//!
//! So the ingest path hands every committed batch here ([`Acked::keep`]). What is kept is
//! bounded by age (`window::KEEP_FOR`) and by count ([`KEEP_MOST`]): in a house that is every
//! reading of the last seconds; in a burst of thousands of readings a second it is the last few
//! batches, which are the ones still at risk. A batch is kept packed ([`Packed`]: its strings
//! in one buffer, three allocations whatever its size). Kept as the reports themselves, with
//! two small strings a reading, a burst's batches left the engine 1.1-1.3 MB larger a minute
//! after it than keeping nothing did, their freed slots scattered among what lives on; packed,
//! 0.2-0.6 MB, within the noise (the ingest benchmark's memory after a burst, `--profile
//! release-small`). When a fault turns the store degraded, aging stops (`window.rs`): however
//! long the outage, the readings confirmed just before it are written again, idempotently
//! (readings are unique per sensor and time), when the storage recovers and before it counts
//! as healthy (`Store::try_recover`).

use std::time::Instant;

use hearth_proto::agents::KeyRole;

use super::window::Window;
use super::{NewReading, NewReport};

/// At most this many readings are kept (some 110 bytes each, packed): the memory of a burst.
/// The newest batch is kept whole, however large.
pub(super) const KEEP_MOST: usize = 4_096;

/// A string of a [`Packed`] batch: its start and end in the batch's text.
type Span = (u32, u32);

/// A committed batch, packed: its strings in one buffer, its reports and readings in a vector
/// each.
#[derive(Debug, Default)]
struct Packed {
    text: String,
    reports: Vec<PackedReport>,
    readings: Vec<PackedReading>,
}

#[derive(Debug)]
struct PackedReport {
    host_id: Span,
    key_role: KeyRole,
    received: i64,
    /// Its readings' range in the batch's.
    readings: (u32, u32),
}

#[derive(Debug)]
struct PackedReading {
    sensor_id: Span,
    kind: Span,
    alias: Option<Span>,
    extra: Option<Span>,
    ts: i64,
    value: Option<f64>,
    latest_at: Option<i64>,
    misdated: bool,
}

impl Packed {
    fn of(batch: &[NewReport]) -> Self {
        let readings = batch.iter().map(|r| r.readings.len()).sum();
        let text = batch
            .iter()
            .flat_map(|r| {
                r.readings.iter().map(|n| {
                    n.sensor_id.len()
                        + n.kind.len()
                        + n.alias.as_ref().map_or(0, String::len)
                        + n.extra.as_ref().map_or(0, String::len)
                })
            })
            .sum::<usize>()
            + batch.iter().map(|r| r.host_id.len()).sum::<usize>();
        let mut packed = Self {
            text: String::with_capacity(text),
            reports: Vec::with_capacity(batch.len()),
            readings: Vec::with_capacity(readings),
        };
        for r in batch {
            let host_id = packed.push(&r.host_id);
            let first = packed.readings.len() as u32;
            for n in &r.readings {
                let reading = PackedReading {
                    sensor_id: packed.push(&n.sensor_id),
                    kind: packed.push(&n.kind),
                    alias: n.alias.as_deref().map(|a| packed.push(a)),
                    extra: n.extra.as_deref().map(|e| packed.push(e)),
                    ts: n.ts,
                    value: n.value,
                    latest_at: n.latest_at,
                    misdated: n.misdated,
                };
                packed.readings.push(reading);
            }
            let readings = (first, packed.readings.len() as u32);
            packed.reports.push(PackedReport {
                host_id,
                key_role: r.key_role,
                received: r.received,
                readings,
            });
        }
        packed
    }

    fn push(&mut self, s: &str) -> Span {
        let start = self.text.len() as u32;
        self.text.push_str(s);
        (start, self.text.len() as u32)
    }

    fn str(&self, (start, end): Span) -> String {
        self.text.get(start as usize..end as usize).unwrap_or_default().to_owned()
    }

    /// The batch's reports as a replay: the readings and their sensors as they were, the
    /// agents' contacts without what is counted or measured per request (their misdated count
    /// was added and their clock offset recorded when they were first stored), so that
    /// writing them again changes nothing that was stored.
    fn replay(&self) -> impl Iterator<Item = NewReport> + '_ {
        self.reports.iter().map(|r| NewReport {
            host_id: self.str(r.host_id),
            key_role: r.key_role,
            received: r.received,
            clock_offset_ms: None,
            misdated: 0,
            readings: self
                .readings
                .get(r.readings.0 as usize..r.readings.1 as usize)
                .unwrap_or_default()
                .iter()
                .map(|n| NewReading {
                    sensor_id: self.str(n.sensor_id),
                    kind: self.str(n.kind),
                    alias: n.alias.map(|a| self.str(a)),
                    extra: n.extra.map(|e| self.str(e)),
                    ts: n.ts,
                    value: n.value,
                    latest_at: n.latest_at,
                    misdated: n.misdated,
                })
                .collect(),
        })
    }
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Acked {
    window: Window<Packed>,
}

impl Default for Acked {
    fn default() -> Self {
        Self { window: Window::new(KEEP_MOST, |batch| batch.readings.len()) }
    }
}

impl Acked {
    /// A batch committed at `now`, about to be acknowledged.
    pub(super) fn keep(&self, batch: &[NewReport], now: Instant) {
        self.window.keep([Packed::of(batch)], now);
    }

    /// Let what is older than `window::KEEP_FOR` go (after a burst, when nothing else comes);
    /// the readings still kept.
    pub(super) fn prune(&self, now: Instant) -> usize {
        self.window.prune(now)
    }

    /// A fault was found at `now`: what was kept then is kept until [`Self::recovered`].
    pub(super) fn freeze(&self, now: Instant) {
        self.window.freeze(now);
    }

    /// The kept reports, as a replay ([`Packed::replay`]).
    pub(super) fn replay(&self) -> Vec<NewReport> {
        self.window.replay(|batch| batch.replay().collect::<Vec<_>>())
    }

    /// The replay is stored: aging goes on.
    pub(super) fn recovered(&self, now: Instant) {
        self.window.recovered(now);
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::agents::KeyRole;

    use super::*;
    use crate::store::NewReading;

    fn batch(readings: usize) -> Vec<NewReport> {
        let one = |i: usize| NewReading {
            sensor_id: format!("28-{i}"),
            kind: "DS18B20".into(),
            alias: None,
            extra: None,
            ts: i as i64,
            value: Some(20.0),
            latest_at: Some(i as i64),
            misdated: false,
        };
        vec![NewReport {
            host_id: "pi".into(),
            key_role: KeyRole::Sensor,
            received: 0,
            clock_offset_ms: Some(5),
            misdated: 2,
            readings: (0..readings).map(one).collect(),
        }]
    }

    /// What a replay gives back is what was kept: every report, its readings and their
    /// strings, in their order.
    #[test]
    fn a_packed_batch_replays_its_reports() {
        let mut reports = batch(3);
        reports[0].readings[1].alias = Some("hall".into());
        reports[0].readings[2].extra = Some("{\"bus\":1}".into());
        reports[0].readings[2].misdated = true;
        reports[0].readings[2].latest_at = None;
        reports.push(NewReport {
            host_id: "pi-2".into(),
            key_role: KeyRole::Relay,
            received: 7,
            clock_offset_ms: None,
            misdated: 0,
            readings: Vec::new(),
        });
        reports.extend(batch(1));
        let shown = |r: &NewReport| {
            let readings: Vec<_> = r
                .readings
                .iter()
                .map(|n| {
                    let NewReading {
                        sensor_id,
                        kind,
                        alias,
                        extra,
                        ts,
                        value,
                        latest_at,
                        misdated,
                    } = n.clone();
                    (sensor_id, kind, alias, extra, ts, value, latest_at, misdated)
                })
                .collect();
            (r.host_id.clone(), r.key_role, r.received, readings)
        };
        let acked = Acked::default();
        acked.keep(&reports, Instant::now());
        let replay = acked.replay();
        assert_eq!(
            replay.iter().map(shown).collect::<Vec<_>>(),
            reports.iter().map(shown).collect::<Vec<_>>()
        );
    }

    /// A replay is of the readings as first stored: their agent's misdated count and clock
    /// offset were counted and recorded then.
    #[test]
    fn a_replay_counts_nothing_twice() {
        let acked = Acked::default();
        acked.keep(&batch(3), Instant::now());
        let replay = acked.replay();
        assert_eq!(replay.iter().map(|r| r.readings.len()).sum::<usize>(), 3);
        assert!(replay.iter().all(|r| r.misdated == 0 && r.clock_offset_ms.is_none()));
    }
}
