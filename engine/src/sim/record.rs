//! What every simulation records the same way: the probes read as the store keeps them, the
//! runs as the loop records them, the time a relay was on from its switch log.

use crate::control::Settings;
use hearth_proto::Timestamp;
use hearth_proto::control::System;
use hearth_proto::history::Run;

use super::house::{Probe, Rng};
use crate::control::{self, SensorSnapshot};

/// Every probe read now (each reading up to 20 s old), with since when its value has been the
/// same, as the store keeps it (`previous`: the last reads).
pub(super) fn read_probes(
    probes: &[Probe],
    now: Timestamp,
    rng: &mut Rng,
    previous: &[SensorSnapshot],
) -> Vec<SensorSnapshot> {
    probes
        .iter()
        .map(|p| {
            let age = jiff::SignedDuration::from_secs((rng.uniform() * 20.0) as i64);
            let value = Some(p.read(rng));
            let at = Some(now - age);
            let same = previous.iter().find(|s| s.id == p.id && s.value == value);
            SensorSnapshot {
                id: p.id.to_owned(),
                name: Some(p.name.to_owned()),
                value,
                at,
                value_since: same.map_or(at, |s| s.value_since),
                weight: 1.0,
                offset_c: 0.0,
            }
        })
        .collect()
}

/// A heat run starts (`on`) or the open one ends, at `now` with the temperature then.
pub(super) fn record_run(runs: &mut Vec<Run>, on: bool, now: Timestamp, temp_c: Option<f64>) {
    if on {
        runs.push(Run {
            system: System::Heat,
            start: now,
            end: None,
            start_temp_c: temp_c,
            end_temp_c: None,
        });
    } else if let Some(run) = runs.last_mut() {
        run.end = Some(now);
        run.end_temp_c = temp_c;
    }
}

/// The runs the loop would read at `now`: those of the stuck-sensor window.
pub(super) fn recent_runs(runs: &[Run], now: Timestamp) -> &[Run] {
    let window_start = now - control::STUCK_WINDOW;
    let recent = runs.partition_point(|r| r.end.is_some_and(|e| e < window_start));
    &runs[recent..]
}

/// Seconds a relay was on, from its switch log (starting off), until `end`.
pub(super) fn on_seconds(switches: &[(Timestamp, bool)], end: Timestamp) -> i64 {
    switches
        .chunks(2)
        .map(|c| match c {
            [(on, true), (off, false)] => off.as_second() - on.as_second(),
            [(on, true)] => end.as_second() - on.as_second(),
            _ => 0,
        })
        .sum()
}

/// The control settings a simulation decides with: the defaults and `algorithm`, checked with
/// the days. Errors: days out of 1..=3650, an unknown algorithm.
pub(super) fn settings(days: u32, algorithm: &str) -> Result<Settings, String> {
    if !(1..=3650).contains(&days) {
        return Err(format!("days must be between 1 and 3650, got {days}"));
    }
    control::check_settings(Settings { algorithm: algorithm.to_owned(), ..Settings::default() })
}

/// The outdoor temperatures seen: lowest, highest, mean.
#[derive(Debug, Clone, Copy)]
pub(super) struct Outdoor {
    pub(super) min_c: f64,
    pub(super) max_c: f64,
    sum_c: f64,
    n: u64,
}

impl Outdoor {
    pub(super) fn new() -> Self {
        Self { min_c: f64::MAX, max_c: f64::MIN, sum_c: 0.0, n: 0 }
    }

    pub(super) fn add(&mut self, c: f64) {
        (self.min_c, self.max_c, self.sum_c, self.n) =
            (self.min_c.min(c), self.max_c.max(c), self.sum_c + c, self.n + 1);
    }

    pub(super) fn mean_c(&self) -> f64 {
        self.sum_c / self.n.max(1) as f64
    }
}
