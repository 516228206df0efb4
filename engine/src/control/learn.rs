//! How fast this house heats and cools, learned from its own recorded runs.
//!
//! There is no outdoor sensor, so the only history is the runs: how long each took and how
//! much the effective temperature moved. Runs of different lengths are not directly comparable:
//!
//! - the equipment has a dead time (radiators warming up, a duct filling with cold air): the
//!   first minutes of every run barely move the temperature, so a 12-minute hysteresis run shows
//!   a far lower °C/h than a 90-minute preheat;
//! - the rate falls as the house nears equilibrium, and with the weather.
//!
//! So the estimate is a line `duration = dead time + rise / rate` fitted to the runs, weighted
//! by recency (the weather changes) and trimmed of outliers (a window opened, a run cut by the
//! frost floor). Predictive start then asks "how long to rise ΔT?" as `dead + ΔT / rate`, which
//! fits both short and long runs. Without enough spread in the rises (all runs alike) the line
//! is not identifiable, and a recency-weighted median of the rates stands in (dead time 0).

use hearth_proto::Timestamp;
use hearth_proto::control::System;
use hearth_proto::history::Run;

/// Runs shorter than this are mostly dead time (or cut short by protection): not learned from.
const MIN_RUN_S: i64 = 10 * 60;
/// Only recent runs: the house and the season change.
const WINDOW_S: i64 = 14 * 86_400;
/// A run's weight halves every this many seconds of age.
const HALF_LIFE_S: f64 = 3.0 * 86_400.0;
/// Rates outside this are sensor trouble, not the house, °C/h.
const SANE_RATE: std::ops::RangeInclusive<f64> = 0.05..=20.0;
/// At most this much dead time is believed, seconds.
const MAX_DEAD_S: f64 = 3600.0;
/// The line needs rises spread at least this much (weighted standard deviation), °C.
const MIN_RISE_SPREAD_C: f64 = 0.4;
/// Fit the line from at least this many runs.
const MIN_FIT_RUNS: usize = 4;

/// A learned rate of one system.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Temperature change per hour once running, °C/h (positive for both systems).
    pub(crate) c_per_h: f64,
    /// Time before the temperature starts to move, seconds.
    pub(crate) dead_s: f64,
    /// How many runs it was learned from.
    pub(crate) samples: u32,
}

impl Rate {
    /// Seconds to move `delta_c` from a standing start (dead time included).
    pub(crate) fn lead_s(&self, delta_c: f64) -> f64 {
        self.dead_s + delta_c.max(0.0) / self.c_per_h * 3600.0
    }

    /// When a running system covers `gap_c` (dead time already spent); None when there is no
    /// gap.
    pub(crate) fn eta(&self, now: Timestamp, gap_c: f64) -> Option<Timestamp> {
        if gap_c <= 0.0 {
            return None;
        }
        let secs = gap_c / self.c_per_h * 3600.0;
        let d = jiff::SignedDuration::try_from_secs_f64(secs).ok()?;
        now.checked_add(d).ok()
    }
}

/// What the house taught.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Learned {
    pub(crate) heat: Option<Rate>,
    pub(crate) cool: Option<Rate>,
    /// How far the room keeps moving after the heat switches, observed (`CoastWatch`).
    pub(crate) heat_coast: Option<Coast>,
}

impl Learned {
    pub(crate) fn rate(&self, system: System) -> Option<Rate> {
        match system {
            System::Heat => self.heat,
            System::Cool => self.cool,
        }
    }
}

/// One usable run: rise in °C (positive), duration in hours, weight.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rise: f64,
    hours: f64,
    weight: f64,
}

fn samples(runs: &[Run], system: System, now: Timestamp) -> Vec<Sample> {
    runs.iter()
        .filter(|r| r.system == system)
        .filter_map(|r| {
            let end = r.end?;
            let secs = end.duration_since(r.start).as_secs();
            let age = now.duration_since(end).as_secs();
            if secs < MIN_RUN_S || !(0..=WINDOW_S).contains(&age) {
                return None;
            }
            let moved = r.end_temp_c? - r.start_temp_c?;
            let rise = if system == System::Heat { moved } else { -moved };
            let hours = secs as f64 / 3600.0;
            let rate = rise / hours;
            // A run that moved the wrong way (door open, sun) says nothing about the equipment.
            (rise.is_finite() && SANE_RATE.contains(&rate)).then(|| Sample {
                rise,
                hours,
                weight: 0.5f64.powf(age as f64 / HALF_LIFE_S),
            })
        })
        .collect()
}

fn weighted_median(mut pairs: Vec<(f64, f64)>) -> Option<f64> {
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = pairs.iter().map(|p| p.1).sum();
    let mut acc = 0.0;
    for (v, w) in &pairs {
        acc += w;
        if acc >= total / 2.0 {
            return Some(*v);
        }
    }
    None
}

/// Weighted least squares `hours = a + b·rise`; None when not identifiable.
fn fit(samples: &[Sample]) -> Option<(f64, f64)> {
    let w: f64 = samples.iter().map(|s| s.weight).sum();
    if samples.len() < MIN_FIT_RUNS || w <= 0.0 {
        return None;
    }
    let mx = samples.iter().map(|s| s.weight * s.rise).sum::<f64>() / w;
    let my = samples.iter().map(|s| s.weight * s.hours).sum::<f64>() / w;
    let sxx = samples.iter().map(|s| s.weight * (s.rise - mx).powi(2)).sum::<f64>() / w;
    let sxy = samples.iter().map(|s| s.weight * (s.rise - mx) * (s.hours - my)).sum::<f64>() / w;
    if sxx.sqrt() < MIN_RISE_SPREAD_C {
        return None;
    }
    let b = sxy / sxx;
    Some((my - b * mx, b))
}

/// Weighted least squares `hours = b·rise` (no dead time); None without a rise.
fn through_origin(samples: &[Sample]) -> Option<f64> {
    let sxx: f64 = samples.iter().map(|s| s.weight * s.rise * s.rise).sum();
    let sxy: f64 = samples.iter().map(|s| s.weight * s.rise * s.hours).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

fn estimate(samples: &[Sample]) -> Option<Rate> {
    if samples.is_empty() {
        return None;
    }
    let median_rate = || {
        let rate = weighted_median(samples.iter().map(|s| (s.rise / s.hours, s.weight)).collect());
        rate.map(|c_per_h| Rate { c_per_h, dead_s: 0.0, samples: samples.len() as u32 })
    };
    let Some((a, b)) = fit(samples) else { return median_rate() };
    // Trim runs far off the line (robust against a window left open), then fit again.
    let residuals: Vec<f64> = samples.iter().map(|s| (s.hours - a - b * s.rise).abs()).collect();
    let mad = weighted_median(residuals.iter().map(|r| (*r, 1.0)).collect()).unwrap_or(0.0);
    let limit = (3.0 * mad).max(5.0 / 60.0);
    let kept: Vec<Sample> =
        samples.iter().zip(&residuals).filter(|(_, r)| **r <= limit).map(|(s, _)| *s).collect();
    let Some((a, b)) = fit(&kept) else { return median_rate() };
    // A dead time cannot be negative. A line that needs one (long runs rising faster per
    // degree than short ones: a heavy house, whose air warms fast once the walls stop drawing
    // the heat) is fitted again through the origin: keeping its slope with the intercept cut
    // to 0 would overstate every long lead by the intercept.
    let (a, b) = if a < 0.0 { (0.0, through_origin(&kept).unwrap_or(b)) } else { (a, b) };
    if b <= 0.0 || !SANE_RATE.contains(&(1.0 / b)) {
        return median_rate();
    }
    Some(Rate {
        c_per_h: 1.0 / b,
        dead_s: (a * 3600.0).clamp(0.0, MAX_DEAD_S),
        samples: kept.len() as u32,
    })
}

/// How far the room keeps moving after the heat switches: the heat already in a furnace,
/// radiators or screed keeps arriving after the relay opens, and a cold emitter takes a while to
/// stop the fall after it closes. Learned by watching, not derived from the rate and dead time:
/// those come from the runs alone, and a dead time of 0 (runs too alike to fit a line) would
/// say there is no coast at all.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Coast {
    /// The peak after a switch-off minus the temperature at the switch-off, °C (≥ 0).
    pub(crate) up_c: f64,
    /// The temperature at a switch-on minus the lowest after it, °C (≥ 0).
    pub(crate) down_c: f64,
    /// How long after a switch-off the room peaks, seconds: the house's lag, emitters and
    /// probe included.
    pub(crate) lag_s: f64,
    /// How long after a switch-on the room stops falling, seconds.
    pub(crate) on_lag_s: f64,
    /// How fast the room rises in a cycle, from the trough after a switch-on to the next
    /// switch-off, °C/h; None until seen twice.
    pub(crate) rise_c_per_h: Option<f64>,
    /// How fast the room falls in a cycle, from the peak after a switch-off to the next
    /// switch-on, °C/h; None until seen twice. With the rise, the lags and the coast it says
    /// how long a cycle of a given band takes in this house (`anticipate::learned_width`).
    pub(crate) fall_c_per_h: Option<f64>,
    /// How fast the room falls with the heat off for long, °C/h: all the falls watched, over
    /// all the time they took, so the long ones (a setback) count most. A heavy house falls
    /// fast in a cycle (the air cools against warmer walls) but slowly over a night (the
    /// walls cool too); how long a setback takes to reach is this one. None with `fall_c_per_h`.
    pub(crate) long_fall_c_per_h: Option<f64>,
    /// How many switch-offs and switch-ons it was learned from.
    pub(crate) samples: u32,
}

/// A turn is over when the temperature has moved back this far from its extreme, °C: more
/// than a DS18B20 step and its noise, so a flat top is not cut at its first wobble.
const TURN_C: f64 = 0.2;
/// A turn not over after this long is taken as it stands (the house settled), seconds.
const MAX_TURN_S: i64 = 4 * 3600;
/// A rise or fall between a turn and the next switch is learned from only when it lasted at
/// least this long, seconds (shorter ones are mostly the probe's steps and noise) ...
const MIN_SLOPE_S: f64 = 10.0 * 60.0;
/// ... and at most this long (a room left off for a day says more about the weather than
/// about a cycle).
const MAX_SLOPE_S: f64 = 24.0 * 3600.0;
/// The recent turns kept per direction (a few days of cycling).
const KEEP_TURNS: usize = 64;

/// One observed turn: when it ended, how far the room went past the switch, °C, and how long
/// after the switch it reached its extreme, seconds. The same for a slope (`CoastWatch::rises`,
/// `falls`): when it ended, how far the room moved, °C, and in how long, seconds.
#[derive(Debug, Clone, Copy)]
struct Turn {
    at: Timestamp,
    past_c: f64,
    lag_s: f64,
}

/// The switch being watched: when and at what temperature, the extreme since, and which way.
#[derive(Debug, Clone, Copy)]
struct Watch {
    at: Timestamp,
    switched_c: f64,
    extreme_c: f64,
    extreme_at: Timestamp,
    heat_on: bool,
}

/// Watches the effective temperature after every switch of the heat for the peak (after
/// switch-off) or trough (after switch-on), from the same temperatures the decisions see: the
/// engine's loop and the simulator feed it every pass. Pure; memory only (after a restart the
/// coast is learned again within a few cycles).
#[derive(Debug, Clone, Default)]
pub(crate) struct CoastWatch {
    heat_on: Option<bool>,
    watch: Option<Watch>,
    ups: std::collections::VecDeque<Turn>,
    downs: std::collections::VecDeque<Turn>,
    /// The last turn's extreme (when, °C), while the room moves from it towards the next switch.
    turned: Option<(Timestamp, f64)>,
    /// The rise from each trough to the next switch-off, the fall from each peak to the next
    /// switch-on.
    rises: std::collections::VecDeque<Turn>,
    falls: std::collections::VecDeque<Turn>,
}

/// Append `turn` to `list`, dropping the oldest beyond `KEEP_TURNS`.
fn keep(list: &mut std::collections::VecDeque<Turn>, turn: Turn) {
    if list.len() == KEEP_TURNS {
        list.pop_front();
    }
    list.push_back(turn);
}

impl CoastWatch {
    /// One pass: the heat relay's state and the effective temperature (None: none usable).
    /// True when a turn ended and was learned (what is stored changed).
    pub(crate) fn observe(&mut self, now: Timestamp, heat_on: bool, temp_c: Option<f64>) -> bool {
        let switched = self.heat_on.is_some_and(|was| was != heat_on);
        self.heat_on = Some(heat_on);
        let Some(t) = temp_c.filter(|t| t.is_finite()) else {
            // Blind: whatever was being watched is unknown now.
            self.watch = None;
            self.turned = None;
            return false;
        };
        if switched {
            // The room moved from the last turn's extreme to here with the heat as it was: a
            // whole rise (switch-off) or fall (switch-on) of a cycle.
            let mut learned = false;
            if let Some((at, extreme_c)) = self.turned.take() {
                let secs = now.duration_since(at).as_secs_f64();
                let moved = if heat_on { extreme_c - t } else { t - extreme_c };
                if (MIN_SLOPE_S..=MAX_SLOPE_S).contains(&secs) && moved >= TURN_C {
                    let list = if heat_on { &mut self.falls } else { &mut self.rises };
                    keep(list, Turn { at: now, past_c: moved, lag_s: secs });
                    learned = true;
                }
            }
            // A switch before the turn ended: the room was still moving, so the turn seen is
            // only a lower bound of the coast; it is not learned from.
            self.watch =
                Some(Watch { at: now, switched_c: t, extreme_c: t, extreme_at: now, heat_on });
            return learned;
        }
        let Some(w) = self.watch.as_mut() else { return false };
        // Rising after switch-off (peak), falling after switch-on (trough).
        let sign = if w.heat_on { -1.0 } else { 1.0 };
        if sign * (t - w.extreme_c) > 0.0 {
            w.extreme_c = t;
            w.extreme_at = now;
        }
        let turned = sign * (w.extreme_c - t) >= TURN_C;
        let settled = now.duration_since(w.at).as_secs() >= MAX_TURN_S;
        if turned || settled {
            let turn = Turn {
                at: now,
                past_c: sign * (w.extreme_c - w.switched_c),
                lag_s: w.extreme_at.duration_since(w.at).as_secs_f64(),
            };
            let list = if w.heat_on { &mut self.downs } else { &mut self.ups };
            keep(list, turn);
            self.turned = Some((w.extreme_at, w.extreme_c));
            self.watch = None;
            return true;
        }
        false
    }

    /// The coast learned from the turns of the last 14 days before `now` (recency-weighted
    /// medians); None until both directions were seen at least twice.
    pub(crate) fn coast(&self, now: Timestamp) -> Option<Coast> {
        let median = |turns: &std::collections::VecDeque<Turn>, of: fn(&Turn) -> f64| {
            let pairs: Vec<(f64, f64)> = turns
                .iter()
                .filter_map(|t| {
                    let age = now.duration_since(t.at).as_secs();
                    (0..=WINDOW_S)
                        .contains(&age)
                        .then(|| (of(t), 0.5f64.powf(age as f64 / HALF_LIFE_S)))
                })
                .collect();
            let n = pairs.len();
            (n >= 2).then(|| weighted_median(pairs).map(|m| (m, n))).flatten()
        };
        let (up_c, ups) = median(&self.ups, |t| t.past_c)?;
        let (down_c, downs) = median(&self.downs, |t| t.past_c)?;
        let (lag_s, _) = median(&self.ups, |t| t.lag_s)?;
        let (on_lag_s, _) = median(&self.downs, |t| t.lag_s)?;
        let rate = |t: &Turn| t.past_c / t.lag_s * 3600.0;
        let (rise_c_per_h, fall_c_per_h) =
            (median(&self.rises, rate).map(|r| r.0), median(&self.falls, rate).map(|r| r.0));
        let recent = self.falls.iter().filter(|t| {
            let age = now.duration_since(t.at).as_secs();
            (0..=WINDOW_S).contains(&age)
        });
        // The least-squares line `moved = rate × time` through the falls: the long ones weigh
        // the most, as they should for how long a long fall takes.
        let (mt, tt) = recent
            .fold((0.0, 0.0), |(mt, tt), t| (mt + t.past_c * t.lag_s, tt + t.lag_s * t.lag_s));
        let long_fall_c_per_h = fall_c_per_h.and(Some(mt / tt * 3600.0));
        Some(Coast {
            up_c,
            down_c,
            lag_s,
            on_lag_s,
            rise_c_per_h,
            fall_c_per_h,
            long_fall_c_per_h,
            samples: (ups + downs) as u32,
        })
    }
}

/// The farthest a room is believed to coast past a switch, °C: no furnace, radiator or screed
/// carries a room 5 °C on, so a stored turn beyond it is not this house's.
const MAX_PAST_C: f64 = 5.0;

/// What `CoastWatch` learned, in the form the store keeps across restarts (the `settings` row
/// `learned`, `store::learned`): the turns it watched, so the medians and their recency weights
/// continue where they were.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Watched {
    ups: Vec<WatchedTurn>,
    downs: Vec<WatchedTurn>,
    rises: Vec<WatchedTurn>,
    falls: Vec<WatchedTurn>,
}

/// One turn as stored: when it ended (Unix seconds), how far past the switch, how long after.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
struct WatchedTurn {
    at_s: i64,
    past_c: f64,
    lag_s: f64,
}

impl CoastWatch {
    /// What was learned, to store.
    pub(crate) fn watched(&self) -> Watched {
        let out = |turns: &std::collections::VecDeque<Turn>| {
            turns
                .iter()
                .map(|t| WatchedTurn { at_s: t.at.as_second(), past_c: t.past_c, lag_s: t.lag_s })
                .collect()
        };
        Watched {
            ups: out(&self.ups),
            downs: out(&self.downs),
            rises: out(&self.rises),
            falls: out(&self.falls),
        }
    }

    /// A watch that starts from what was stored, or None when the stored model is not one this
    /// engine can trust: more turns than it keeps, a turn from the future (a clock that was
    /// wrong when it was written), a coast or lag out of bounds, a rise or fall the live watch
    /// would not have learned (shorter or longer than it watches, smaller than a turn, beyond
    /// any room's coast). One bad turn discards all of
    /// it: whatever wrote it did not write what this engine learns, and the coast is learned
    /// again within a few cycles anyway. Turns older than the learning window are dropped as
    /// the live watch would.
    pub(crate) fn restore(stored: &Watched, now: Timestamp) -> Option<CoastWatch> {
        let turns = |list: &[WatchedTurn],
                     past: std::ops::RangeInclusive<f64>,
                     lag: std::ops::RangeInclusive<f64>|
         -> Option<std::collections::VecDeque<Turn>> {
            if list.len() > KEEP_TURNS {
                return None;
            }
            let mut out = std::collections::VecDeque::with_capacity(list.len());
            for t in list {
                let at = Timestamp::from_second(t.at_s).ok()?;
                let age = now.duration_since(at).as_secs();
                let sane = age >= 0 && past.contains(&t.past_c) && lag.contains(&t.lag_s);
                if !sane {
                    return None;
                }
                if age <= WINDOW_S {
                    out.push_back(Turn { at, past_c: t.past_c, lag_s: t.lag_s });
                }
            }
            Some(out)
        };
        let (turn_c, turn_s) = (-MAX_PAST_C..=MAX_PAST_C, 0.0..=MAX_TURN_S as f64);
        let (slope_c, slope_s) = (TURN_C..=MAX_PAST_C, MIN_SLOPE_S..=MAX_SLOPE_S);
        Some(CoastWatch {
            heat_on: None,
            watch: None,
            ups: turns(&stored.ups, turn_c.clone(), turn_s.clone())?,
            downs: turns(&stored.downs, turn_c, turn_s)?,
            turned: None,
            rises: turns(&stored.rises, slope_c.clone(), slope_s.clone())?,
            falls: turns(&stored.falls, slope_c, slope_s)?,
        })
    }
}

/// Learn from `runs` (closed, at least 10 minutes, temperatures known, ended in the last 14
/// days before `now`).
pub(crate) fn learn(runs: &[Run], now: Timestamp) -> Learned {
    Learned {
        heat: estimate(&samples(runs, System::Heat, now)),
        cool: estimate(&samples(runs, System::Cool, now)),
        heat_coast: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::constant(1_800_000_000, 0);

    fn run(system: System, ago_h: f64, minutes: f64, from: f64, to: f64) -> Run {
        let end = NOW - jiff::SignedDuration::from_secs_f64(ago_h * 3600.0);
        Run {
            system,
            start: end - jiff::SignedDuration::from_secs_f64(minutes * 60.0),
            end: Some(end),
            start_temp_c: Some(from),
            end_temp_c: Some(to),
        }
    }

    /// Six days of heating, each with two runs of 0.6 °C (20.7 → 21.3) taking `short_min`
    /// and one of 4 °C (17 → 21) taking `long_min`.
    fn six_days_of_runs(short_min: f64, long_min: f64) -> Vec<Run> {
        let mut runs = Vec::new();
        for day in 0..6 {
            let ago = f64::from(day) * 24.0 + 2.0;
            runs.push(run(System::Heat, ago, short_min, 20.7, 21.3));
            runs.push(run(System::Heat, ago + 3.0, short_min, 20.7, 21.3));
            runs.push(run(System::Heat, ago + 6.0, long_min, 17.0, 21.0));
        }
        runs
    }

    #[test]
    fn dead_time_and_rate_from_short_and_long_runs() {
        // 6 min dead time, then 3 °C/h: 0.6 °C takes 18 min, 4 °C takes 86 min.
        let runs = six_days_of_runs(18.0, 86.0);
        let rate = learn(&runs, NOW).heat.unwrap_or_else(|| panic!("nothing learned"));
        assert!((rate.c_per_h - 3.0).abs() < 0.05, "{rate:?}");
        assert!((rate.dead_s - 360.0).abs() < 30.0, "{rate:?}");
        assert_eq!(rate.samples, 18);
        assert!((rate.lead_s(4.0) - 86.0 * 60.0).abs() < 60.0);
    }

    #[test]
    fn a_line_that_needs_a_negative_dead_time_is_fitted_through_the_origin() {
        // The long runs rise slower per degree than the short ones (0.6 °C in 10 min, 4 °C in
        // 150 min): the line's intercept is −15 min. Its slope with the intercept cut to 0
        // would ask 165 min for 4 °C; through the origin it asks about 146.
        let runs = six_days_of_runs(10.0, 150.0);
        let rate = learn(&runs, NOW).heat.unwrap_or_else(|| panic!("nothing learned"));
        assert_eq!(rate.dead_s, 0.0, "{rate:?}");
        let lead_min = rate.lead_s(4.0) / 60.0;
        assert!((lead_min - 146.0).abs() < 2.0, "{lead_min} min: {rate:?}");
    }

    #[test]
    fn only_closed_long_recent_runs_with_temperatures_count() {
        let mut open = run(System::Heat, 1.0, 60.0, 18.0, 20.0);
        open.end = None;
        let mut unknown = run(System::Heat, 1.0, 60.0, 18.0, 20.0);
        unknown.end_temp_c = None;
        let runs = [
            open,
            unknown,
            run(System::Heat, 1.0, 9.0, 18.0, 20.0), // too short
            run(System::Heat, 15.0 * 24.0, 60.0, 18.0, 20.0), // too old
            run(System::Heat, 1.0, 60.0, 20.0, 19.0), // fell while heating
            run(System::Cool, 1.0, 60.0, 26.0, 25.0),
        ];
        let learned = learn(&runs, NOW);
        assert_eq!(learned.heat, None);
        let cool = learned.cool.unwrap_or_else(|| panic!("no cool rate"));
        assert_eq!((cool.c_per_h, cool.samples), (1.0, 1));
    }

    #[test]
    fn the_coast_is_the_turn_after_each_switch() {
        let (w, t) = watched_cycles();
        let c = w.coast(t).unwrap_or_else(|| panic!("no coast"));
        assert!((c.up_c - 0.4).abs() < 1e-9 && (c.down_c - 0.1).abs() < 1e-9, "{c:?}");
        // The first switch-on is not watched (no state before it): 3 troughs and 4 peaks.
        assert_eq!(c.samples, 7);
        // A switch back before the turn ended (still rising) teaches nothing; blind neither.
        let mut w = CoastWatch::default();
        for (i, (heat, v)) in [
            (true, Some(20.0)),
            (false, Some(21.0)),
            (false, Some(21.3)),
            (true, Some(21.4)),
            (true, None),
            (false, Some(21.0)),
        ]
        .into_iter()
        .enumerate()
        {
            w.observe(NOW + jiff::SignedDuration::from_mins(i as i64), heat, v);
        }
        assert!(w.ups.is_empty() && w.downs.is_empty(), "{w:?}");
        assert_eq!(w.coast(NOW), None);
    }

    /// Four cycles watched a minute apart: on at 20.5, falls 0.1 more, rises to 21.0; off:
    /// rises 0.4 more (the peak 2 min after the switch-off), falls 0.2 back (the turn ends).
    fn watched_cycles() -> (CoastWatch, Timestamp) {
        let mut w = CoastWatch::default();
        let mut t = NOW;
        let on = [20.5, 20.45, 20.4, 20.5, 20.7, 20.9];
        let off = [21.0, 21.2, 21.4, 21.3, 21.2, 20.9, 20.7];
        for _ in 0..4 {
            for (heat, temps) in [(true, &on[..]), (false, &off[..])] {
                for v in temps {
                    w.observe(t, heat, Some(*v));
                    t += jiff::SignedDuration::from_mins(1);
                }
            }
        }
        (w, t)
    }

    /// Four cycles watched a minute apart, long enough to learn the rise and fall: the heat
    /// goes on, the room falls 0.1 °C more, then rises 0.05 °C a minute (3 °C/h) for 21 min;
    /// the heat goes off, the room rises 0.1 °C more, then falls 0.02 °C a minute (1.2 °C/h)
    /// for 51 min.
    fn long_cycles() -> (CoastWatch, Timestamp) {
        let mut w = CoastWatch::default();
        let (mut t, mut v) = (NOW, 20.5);
        let mut see = |w: &mut CoastWatch, heat: bool, v: f64| {
            w.observe(t, heat, Some(v));
            t += jiff::SignedDuration::from_mins(1);
        };
        for _ in 0..4 {
            v -= 0.02;
            see(&mut w, true, v);
            v -= 0.1;
            see(&mut w, true, v);
            for _ in 0..20 {
                v += 0.05;
                see(&mut w, true, v);
            }
            v += 0.05;
            see(&mut w, false, v);
            v += 0.1;
            see(&mut w, false, v);
            for _ in 0..50 {
                v -= 0.02;
                see(&mut w, false, v);
            }
        }
        (w, t)
    }

    #[test]
    fn the_rise_and_fall_of_a_cycle_are_from_the_turn_to_the_next_switch() {
        let (w, t) = long_cycles();
        let c = w.coast(t).unwrap_or_else(|| panic!("no coast"));
        let (rise, fall) = (c.rise_c_per_h.unwrap_or(0.0), c.fall_c_per_h.unwrap_or(0.0));
        assert!((rise - 3.0).abs() < 1e-6 && (fall - 1.2).abs() < 1e-6, "{c:?}");
        assert!(c.long_fall_c_per_h.is_some_and(|r| (r - 1.2).abs() < 1e-6), "{c:?}");
        // The first switch-on is not watched, so the first rise is not either: 3 of each.
        assert_eq!((w.rises.len(), w.falls.len()), (3, 3));
        assert!((c.on_lag_s - 60.0).abs() < 1e-9 && (c.lag_s - 60.0).abs() < 1e-9, "{c:?}");
        // Short cycles (a few minutes from the turn to the switch) teach no rate.
        let (short, t) = watched_cycles();
        let c = short.coast(t).unwrap_or_else(|| panic!("no coast"));
        assert_eq!((c.rise_c_per_h, c.fall_c_per_h), (None, None), "{c:?}");
        // Blind between the turn and the switch: the slope is not known, not learned.
        let mut w = CoastWatch::default();
        let mut t = NOW;
        for (heat, v) in [(true, 20.0), (false, 21.0), (false, 21.2), (false, 20.9)] {
            w.observe(t, heat, Some(v));
            t += jiff::SignedDuration::from_mins(1);
        }
        w.observe(t, false, None);
        w.observe(t + jiff::SignedDuration::from_mins(30), true, Some(20.0));
        assert!(w.falls.is_empty(), "{w:?}");
    }

    #[test]
    fn the_lag_is_the_time_to_the_peak() {
        let (w, t) = watched_cycles();
        let c = w.coast(t).unwrap_or_else(|| panic!("no coast"));
        assert!((c.lag_s - 120.0).abs() < 1e-9, "{c:?}");
    }

    #[test]
    fn a_stored_watch_restores_what_was_learned_and_nonsense_is_ignored() {
        let (w, t) = long_cycles();
        let stored = w.watched();
        assert!(!stored.rises.is_empty() && !stored.falls.is_empty(), "{stored:?}");
        let json = serde_json::to_string(&stored).unwrap_or_else(|e| panic!("{e}"));
        let read: Watched = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        let restored = CoastWatch::restore(&read, t).unwrap_or_else(|| panic!("not restored"));
        // The same, but for the last bit JSON's decimal text may round.
        let (Some(got), Some(was)) = (restored.coast(t), w.coast(t)) else {
            panic!("no coast restored")
        };
        let near = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-9,
            _ => false,
        };
        assert!(
            near(Some(got.up_c), Some(was.up_c))
                && near(Some(got.down_c), Some(was.down_c))
                && near(Some(got.lag_s), Some(was.lag_s))
                && near(Some(got.on_lag_s), Some(was.on_lag_s))
                && near(got.rise_c_per_h, was.rise_c_per_h)
                && near(got.fall_c_per_h, was.fall_c_per_h)
                && got.samples == was.samples,
            "{got:?} is not {was:?}"
        );
        // Turns older than the learning window are dropped, as the live watch ignores them.
        let later = t + jiff::SignedDuration::from_secs(WINDOW_S + 3600);
        let aged = CoastWatch::restore(&stored, later).unwrap_or_else(|| panic!("not restored"));
        assert_eq!(aged.coast(later), None);
        // One nonsense turn and nothing of it is trusted.
        let first = stored.ups[0];
        let nonsense = [
            ("a coast of 9 °C", WatchedTurn { past_c: 9.0, ..first }),
            ("not a number", WatchedTurn { past_c: f64::NAN, ..first }),
            ("a negative lag", WatchedTurn { lag_s: -1.0, ..first }),
            ("a lag beyond the watch", WatchedTurn { lag_s: 5.0 * 3600.0, ..first }),
            ("from the future", WatchedTurn { at_s: t.as_second() + 60, ..first }),
            ("out of time's range", WatchedTurn { at_s: i64::MAX, ..first }),
        ];
        for (what, turn) in nonsense {
            untrusted(&stored, t, what, turn, |w| &mut w.ups, |w| &mut w.downs);
        }
        let mut many = stored.clone();
        many.ups = vec![first; KEEP_TURNS + 1];
        assert!(CoastWatch::restore(&many, t).is_none(), "more turns than kept were trusted");
        // A rise or fall the live watch would not have learned is not trusted either.
        let slope = stored.falls[0];
        let nonsense = [
            ("shorter than watched", WatchedTurn { lag_s: 60.0, ..slope }),
            ("longer than watched", WatchedTurn { lag_s: 2.0 * MAX_SLOPE_S, ..slope }),
            ("smaller than a turn", WatchedTurn { past_c: 0.1, ..slope }),
            ("falling while it rose", WatchedTurn { past_c: -1.0, ..slope }),
            ("not a number", WatchedTurn { past_c: f64::NAN, ..slope }),
            ("from the future", WatchedTurn { at_s: t.as_second() + 60, ..slope }),
        ];
        for (what, turn) in nonsense {
            untrusted(&stored, t, what, turn, |w| &mut w.falls, |w| &mut w.rises);
        }
    }

    /// `turn` in place of the first of one list of `stored`, or added to another: either way
    /// nothing of it is restored.
    fn untrusted(
        stored: &Watched,
        t: Timestamp,
        what: &str,
        turn: WatchedTurn,
        replaced: fn(&mut Watched) -> &mut Vec<WatchedTurn>,
        added: fn(&mut Watched) -> &mut Vec<WatchedTurn>,
    ) {
        let mut bad = stored.clone();
        replaced(&mut bad)[0] = turn;
        assert!(CoastWatch::restore(&bad, t).is_none(), "{what} was trusted");
        let mut bad = stored.clone();
        added(&mut bad).push(turn);
        assert!(CoastWatch::restore(&bad, t).is_none(), "{what} was trusted");
    }

    #[test]
    fn alike_runs_give_the_median_rate() {
        let runs: Vec<Run> = [2.0, 2.1, 1.9, 9.0, 2.05]
            .iter()
            .enumerate()
            .map(|(i, r)| run(System::Heat, i as f64, 60.0, 18.0, 18.0 + r))
            .collect();
        let rate = learn(&runs, NOW).heat.unwrap_or_else(|| panic!("nothing learned"));
        assert!((rate.c_per_h - 2.05).abs() < 1e-9 && rate.dead_s == 0.0, "{rate:?}");
    }
}
