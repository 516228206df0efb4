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
//! bounded by age ([`KEEP_FOR`]) and by count ([`KEEP_MOST`]): in a house that is every reading
//! of the last seconds; in a burst of thousands of readings a second it is the last few
//! batches, which are the ones still at risk. A batch is kept packed ([`Packed`]: its strings
//! in one buffer, three allocations whatever its size). Kept as the reports themselves, with
//! two small strings a reading, a burst's batches left the engine 1.1-1.3 MB larger a minute
//! after it than keeping nothing did, their freed slots scattered among what lives on; packed,
//! 0.2-0.6 MB, within the noise (the ingest benchmark's memory after a burst, `--profile
//! release-small`). When a fault turns the store degraded, aging stops ([`Acked::freeze`]):
//! however long the outage, the readings confirmed just before it are written again,
//! idempotently (readings are unique per sensor and time), when the storage recovers and before
//! it counts as healthy (`Store::try_recover`).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hearth_proto::agents::KeyRole;

use super::{NewReading, NewReport};

/// How long a committed batch is kept. A fault shows at the next write (a fraction of a
/// second in a busy house, a report interval in a quiet one) or at the next filesystem check
/// (`health::PROBE_EVERY`), which a commit the storage then loses preceded by moments.
pub(super) const KEEP_FOR: Duration = Duration::from_secs(10);
/// At most this many readings are kept (some 110 bytes each, packed): the memory of a burst.
pub(super) const KEEP_MOST: usize = 4_096;

#[derive(Debug, Default)]
struct State {
    /// Committed batches, oldest first, with when they were committed.
    batches: VecDeque<(Instant, Packed)>,
    /// Readings in `batches`.
    readings: usize,
    /// A fault was found: nothing ages out until the recovery has written it again.
    frozen: bool,
}

impl State {
    fn prune(&mut self, now: Instant) {
        if self.frozen {
            return;
        }
        while let Some((at, batch)) = self.batches.front() {
            // The newest batch stays however large it is: it is the one most at risk.
            let over = self.readings > KEEP_MOST && self.batches.len() > 1;
            if !over && now.saturating_duration_since(*at) < KEEP_FOR {
                break;
            }
            self.readings -= batch.readings.len();
            self.batches.pop_front();
        }
        if self.batches.is_empty() {
            // Give the burst's slots back, not only their contents.
            self.batches = VecDeque::new();
        }
    }
}

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
#[derive(Debug, Default)]
pub(super) struct Acked {
    state: Mutex<State>,
}

impl Acked {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Plain data, consistent after every statement: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A batch committed at `now`, about to be acknowledged.
    pub(super) fn keep(&self, batch: &[NewReport], now: Instant) {
        let packed = Packed::of(batch);
        let mut state = self.lock();
        state.readings += packed.readings.len();
        state.batches.push_back((now, packed));
        state.prune(now);
    }

    /// Let what is older than [`KEEP_FOR`] go (after a burst, when nothing else comes); the
    /// readings still kept.
    pub(super) fn prune(&self, now: Instant) -> usize {
        let mut state = self.lock();
        state.prune(now);
        state.readings
    }

    /// A fault was found at `now`: what was kept then is kept until [`Self::recovered`].
    pub(super) fn freeze(&self, now: Instant) {
        let mut state = self.lock();
        state.prune(now);
        state.frozen = true;
    }

    /// The kept reports, as a replay ([`Packed::replay`]).
    pub(super) fn replay(&self) -> Vec<NewReport> {
        self.lock().batches.iter().flat_map(|(_, batch)| batch.replay()).collect()
    }

    /// The replay is stored: aging goes on.
    pub(super) fn recovered(&self, now: Instant) {
        let mut state = self.lock();
        state.frozen = false;
        state.prune(now);
    }

    /// Readings kept (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.lock().readings
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

    #[test]
    fn batches_age_out_and_a_burst_keeps_its_newest_batches() {
        let acked = Acked::default();
        let t0 = Instant::now();
        acked.keep(&batch(10), t0);
        acked.keep(&batch(10), t0 + Duration::from_secs(5));
        assert_eq!(acked.len(), 20);
        acked.prune(t0 + KEEP_FOR);
        assert_eq!(acked.len(), 10, "the first batch aged out");
        acked.prune(t0 + KEEP_FOR + Duration::from_secs(5));
        assert_eq!(acked.len(), 0);

        // A burst: the newest batches up to the bound, and always the newest one whole.
        for _ in 0..10 {
            acked.keep(&batch(1_000), t0);
        }
        assert_eq!(acked.len(), 4_000);
        acked.keep(&batch(KEEP_MOST + 1), t0);
        assert_eq!(acked.len(), KEEP_MOST + 1);
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

    #[test]
    fn a_fault_keeps_what_was_acknowledged_until_the_recovery() {
        let acked = Acked::default();
        let t0 = Instant::now();
        acked.keep(&batch(3), t0);
        acked.freeze(t0 + Duration::from_secs(1));
        // An hour of outage, and more batches acknowledged by a write in flight.
        acked.keep(&batch(KEEP_MOST), t0 + Duration::from_secs(2));
        acked.prune(t0 + Duration::from_secs(3_600));
        let replay = acked.replay();
        assert_eq!(replay.iter().map(|r| r.readings.len()).sum::<usize>(), 3 + KEEP_MOST);
        // Counted and measured once, when first stored.
        assert!(replay.iter().all(|r| r.misdated == 0 && r.clock_offset_ms.is_none()));
        acked.recovered(t0 + Duration::from_secs(3_600));
        assert_eq!(acked.len(), 0, "aging goes on after the recovery");
    }
}
