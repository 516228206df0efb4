//! The layer above every backend: per-sensor settings, the roster of sensors that must be
//! reported, and the plausibility screen.
//!
//! [`Screened`] wraps any [`TemperatureSource`] and, at each read:
//! 1. drops disabled sensors (the backends are also told not to read them);
//! 2. reports every sensor on the roster that the backend did not return as
//!    [`ReadError::Missing`]. The roster is every configured (enabled) sensor, always, plus every
//!    sensor seen since the agent started: an unplugged sensor keeps being reported as failed
//!    (value null) until the agent restarts, so the engine sees a failure rather than a sensor
//!    that went quiet. Restarting the agent is how a sensor removed on purpose is forgotten (or
//!    `enabled = false` in its `[[sensors]]` table);
//! 3. screens each raw value (before calibration, since the limits are the sensor's):
//!    - outside the DS18B20's range −55..125 °C (or not a number): [`ReadError::Implausible`].
//!      Unplugged sensors have been seen to read around −110 °C before failing;
//!    - exactly 85.000 °C, the power-on value of the scratchpad: [`ReadError::PowerOnValue`],
//!      unless the previous accepted reading was within [`POWER_ON_NEAR_C`] of 85 (then it is
//!      just a hot sensor);
//!    - a jump from the previous accepted value larger than the configured rate (°C per
//!      minute) times the time since that value, plus [`JUMP_TOLERANCE_C`] for quantisation and
//!      noise: [`ReadError::Implausible`]. So that a real step (a sensor moved from a cold
//!      garage into the living room) does not lock the sensor out forever, once a configured
//!      number of consecutive rejected readings agree with each other (each within the rate of
//!      the one before), the next agreeing reading is accepted as the new level;
//! 4. adds the sensor's calibration offset to accepted values.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use super::{RawReading, ReadError, TemperatureSource};

/// The DS18B20's measuring range, °C: what the engine accepts, too (`hearth_proto::sensors`).
pub const RANGE_C: (f64, f64) =
    (hearth_proto::sensors::MIN_READING_C, hearth_proto::sensors::MAX_READING_C);
/// The scratchpad's power-on temperature, °C (raw 0x0550).
pub const POWER_ON_C: f64 = 85.0;
/// An 85 °C reading is believed when the previous accepted reading was this close to 85 °C.
pub const POWER_ON_NEAR_C: f64 = 2.0;
/// Allowed on top of the rate limit: a few 1/16 °C steps of quantisation and sensor noise, so
/// two readings moments apart never trip the rate check.
pub const JUMP_TOLERANCE_C: f64 = 0.5;

/// The screen's tunable limits.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenRules {
    /// The fastest change a room can make, °C per minute.
    pub max_rate_c_per_min: f64,
    /// After this many consecutive rejected jumps that agree with each other, the next agreeing
    /// reading is accepted as a new level. 0 accepts every jump (turns the rate check off).
    pub step_rejections: u32,
}

impl Default for ScreenRules {
    fn default() -> Self {
        Self { max_rate_c_per_min: 5.0, step_rejections: 3 }
    }
}

/// One sensor's settings from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorSetting {
    /// The sensor id (matched case-insensitively).
    pub id: String,
    /// Added to every accepted reading, °C.
    pub offset_c: f64,
    /// False: neither read nor reported.
    pub enabled: bool,
}

/// A [`TemperatureSource`] with the settings, roster and screen applied (see the module docs).
#[derive(Debug)]
pub struct Screened<S> {
    inner: S,
    rules: ScreenRules,
    /// Settings by lower-case id.
    settings: BTreeMap<String, SensorSetting>,
    /// Sensors that must be reported, by lower-case id: (id as reported, type).
    roster: BTreeMap<String, (String, String)>,
    /// Screen state by lower-case id.
    tracks: BTreeMap<String, Track>,
}

#[derive(Debug, Default)]
struct Track {
    /// The last accepted raw value and when it was read.
    last: Option<(f64, Instant)>,
    /// Consecutive rejected jumps that agree with each other: a candidate new level.
    step: Option<Step>,
}

#[derive(Debug)]
struct Step {
    value: f64,
    at: Instant,
    rejected: u32,
}

impl<S: TemperatureSource> Screened<S> {
    /// Wrap `inner` with `rules` and the configured sensors' `settings`.
    pub fn new(inner: S, rules: ScreenRules, settings: Vec<SensorSetting>) -> Self {
        let mut roster = BTreeMap::new();
        for s in settings.iter().filter(|s| s.enabled) {
            roster.insert(s.id.to_ascii_lowercase(), (s.id.clone(), inner.kind_of(&s.id).into()));
        }
        let settings = settings.into_iter().map(|s| (s.id.to_ascii_lowercase(), s)).collect();
        Self { inner, rules, settings, roster, tracks: BTreeMap::new() }
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Change the rules and the sensors' settings while running (settings from the engine).
    /// A sensor disabled now leaves the roster and is no longer read; one enabled again starts
    /// afresh (its history is too old to screen against). `listed`: the lower-case ids that
    /// must be reported even when the bus does not have them (the configured sensors); a
    /// setting for any other id applies when that sensor shows up.
    pub fn reconfigure(
        &mut self,
        rules: ScreenRules,
        settings: Vec<SensorSetting>,
        listed: &BTreeSet<String>,
    ) {
        self.rules = rules;
        self.settings = settings.into_iter().map(|s| (s.id.to_ascii_lowercase(), s)).collect();
        let disabled: BTreeSet<String> =
            self.settings.iter().filter(|(_, s)| !s.enabled).map(|(k, _)| k.clone()).collect();
        for key in &disabled {
            self.roster.remove(key);
            self.tracks.remove(key);
        }
        for (key, s) in &self.settings {
            if s.enabled && listed.contains(key) && !self.roster.contains_key(key) {
                self.roster.insert(key.clone(), (s.id.clone(), self.inner.kind_of(&s.id).into()));
            }
        }
        self.inner.skip(&disabled);
    }

    /// Read through the layer as of `now` (a parameter so tests control time).
    pub fn read_at(&mut self, now: Instant) -> Vec<RawReading> {
        let time_scale = self.inner.time_scale();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for r in self.inner.read_all() {
            let key = r.id.to_ascii_lowercase();
            // A backend reporting one sensor twice would confuse the screen: first one wins.
            if self.is_disabled(&key) || !seen.insert(key.clone()) {
                continue;
            }
            self.roster.insert(key, (r.id.clone(), r.kind.clone()));
            out.push(r);
        }
        for (key, (id, kind)) in &self.roster {
            if !seen.contains(key) {
                out.push(RawReading {
                    id: id.clone(),
                    kind: kind.clone(),
                    value: Err(ReadError::Missing),
                });
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        for r in &mut out {
            let key = r.id.to_ascii_lowercase();
            let offset = self.settings.get(&key).map_or(0.0, |s| s.offset_c);
            let track = self.tracks.entry(key).or_default();
            r.value = match &r.value {
                Ok(raw) => screen(&self.rules, time_scale, track, &r.id, *raw, now)
                    .and_then(|v| calibrate(v, offset)),
                Err(e) => Err(e.clone()),
            };
        }
        out
    }

    fn is_disabled(&self, key: &str) -> bool {
        self.settings.get(key).is_some_and(|s| !s.enabled)
    }
}

impl<S: TemperatureSource> TemperatureSource for Screened<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn read_all(&mut self) -> Vec<RawReading> {
        self.read_at(Instant::now())
    }

    fn kind_of(&self, id: &str) -> &'static str {
        self.inner.kind_of(id)
    }

    fn time_scale(&self) -> f64 {
        self.inner.time_scale()
    }

    fn skip(&mut self, ids: &BTreeSet<String>) {
        self.inner.skip(ids);
    }

    fn set_resolution(&mut self, bits: Option<u8>) -> Result<(), String> {
        self.inner.set_resolution(bits)
    }
}

/// Add the offset; rounded to 0.1 m°C so `21.0625 + 0.3` is reported as 21.3625, not
/// 21.362499999999997. A calibrated value beyond the range the engine accepts (124.5 °C with
/// +1) is implausible: sent, it would make the engine refuse the whole report.
fn calibrate(raw: f64, offset_c: f64) -> Result<f64, ReadError> {
    let v = ((raw + offset_c) * 10_000.0).round() / 10_000.0;
    let (low, high) = RANGE_C;
    if (low..=high).contains(&v) {
        Ok(v)
    } else {
        Err(ReadError::Implausible(format!(
            "{raw} °C calibrated by {offset_c} °C is {v} °C, outside {low} to {high} °C"
        )))
    }
}

/// Screen one raw value against the sensor's history (see the module docs for the rules).
/// `time_scale` is the source's seconds per real second (rates are judged in source time).
fn screen(
    rules: &ScreenRules,
    time_scale: f64,
    track: &mut Track,
    id: &str,
    v: f64,
    now: Instant,
) -> Result<f64, ReadError> {
    let (low, high) = RANGE_C;
    if !v.is_finite() || v < low || v > high {
        return Err(ReadError::Implausible(format!(
            "{v} °C is outside the DS18B20 range of {low} to {high} °C"
        )));
    }
    if v == POWER_ON_C
        && !track.last.is_some_and(|(l, _)| (l - POWER_ON_C).abs() <= POWER_ON_NEAR_C)
    {
        return Err(ReadError::PowerOnValue);
    }
    if let Some((last, at)) = track.last {
        let allowed = |since: Instant| {
            let minutes = now.saturating_duration_since(since).as_secs_f64() * time_scale / 60.0;
            rules.max_rate_c_per_min * minutes + JUMP_TOLERANCE_C
        };
        if (v - last).abs() > allowed(at) {
            let rejected = match &track.step {
                Some(step) if (v - step.value).abs() <= allowed(step.at) => step.rejected + 1,
                _ => 1,
            };
            if rejected > rules.step_rejections {
                tracing::info!(
                    sensor = id,
                    from = last,
                    to = v,
                    "accepting a new temperature level after {} consistent readings",
                    rejected
                );
            } else {
                track.step = Some(Step { value: v, at: now, rejected });
                let secs = now.saturating_duration_since(at).as_secs_f64() * time_scale;
                return Err(ReadError::Implausible(format!(
                    "jump from {last} to {v} °C in {secs:.0} s is faster than {} °C per minute",
                    rules.max_rate_c_per_min
                )));
            }
        }
    }
    track.last = Some((v, now));
    track.step = None;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;

    /// A backend that returns scripted reads.
    #[derive(Debug, Default)]
    struct Script(VecDeque<Vec<RawReading>>);

    impl TemperatureSource for Script {
        fn name(&self) -> &'static str {
            "script"
        }
        fn read_all(&mut self) -> Vec<RawReading> {
            self.0.pop_front().unwrap_or_default()
        }
        fn kind_of(&self, id: &str) -> &'static str {
            crate::w1::device_kind(id)
        }
    }

    fn reading(id: &str, value: Result<f64, ReadError>) -> RawReading {
        RawReading { id: id.into(), kind: "DS18B20".into(), value }
    }

    /// Screen one sensor's values, one read per minute; the results.
    fn run(rules: ScreenRules, values: &[f64]) -> Vec<Result<f64, ReadError>> {
        let script = values.iter().map(|v| vec![reading("28-1", Ok(*v))]).collect();
        let mut s = Screened::new(Script(script), rules, Vec::new());
        let t0 = Instant::now();
        (0..values.len())
            .map(|i| {
                let got = s.read_at(t0 + Duration::from_secs(60 * i as u64));
                assert_eq!(got.len(), 1);
                got[0].value.clone()
            })
            .collect()
    }

    fn implausible(r: &Result<f64, ReadError>) -> bool {
        matches!(r, Err(ReadError::Implausible(_)))
    }

    #[test]
    fn range_limits() {
        let got = run(ScreenRules::default(), &[-110.0, -55.0, 125.5, f64::NAN]);
        assert!(implausible(&got[0]), "{got:?}");
        assert_eq!(got[1], Ok(-55.0));
        assert!(implausible(&got[2]) && implausible(&got[3]), "{got:?}");
        let Err(ReadError::Implausible(why)) = &got[0] else { return };
        assert!(why.contains("-110 °C is outside"), "{why}");
    }

    #[test]
    fn power_on_value_is_suspect_unless_the_sensor_was_hot() {
        // First reading 85: suspect. Then a normal room, then 85 again: suspect.
        let got = run(ScreenRules::default(), &[85.0, 21.0, 85.0, 21.0625]);
        assert_eq!(
            got,
            vec![Err(ReadError::PowerOnValue), Ok(21.0), Err(ReadError::PowerOnValue), Ok(21.0625)]
        );
        // A sensor on a hot pipe rising through 85 °C.
        let got = run(ScreenRules::default(), &[83.5, 84.0, 85.0, 85.5, 85.0]);
        assert_eq!(got, vec![Ok(83.5), Ok(84.0), Ok(85.0), Ok(85.5), Ok(85.0)]);
        // Repeated 85s (a sensor whose conversions never happen) never count as a new level.
        let got = run(ScreenRules::default(), &[21.0, 85.0, 85.0, 85.0, 85.0, 85.0]);
        assert!(got[1..].iter().all(|r| *r == Err(ReadError::PowerOnValue)), "{got:?}");
    }

    #[test]
    fn rejects_jumps_and_accepts_a_consistent_new_level() {
        // One minute apart at 5 °C/min: up to 5.5 °C is fine, 10 °C is not.
        let got = run(ScreenRules::default(), &[20.0, 25.5, 35.5]);
        assert_eq!(got[..2], [Ok(20.0), Ok(25.5)]);
        assert!(implausible(&got[2]), "{got:?}");

        // A single spike is rejected and the sensor carries on.
        let got = run(ScreenRules::default(), &[20.0, 60.0, 20.1]);
        assert_eq!((&got[0], implausible(&got[1]), &got[2]), (&Ok(20.0), true, &Ok(20.1)));

        // A real step: three rejections, then the new level is accepted and followed.
        let rules = ScreenRules { max_rate_c_per_min: 1.0, step_rejections: 3 };
        let got = run(rules.clone(), &[5.0, 20.0, 20.1, 20.2, 20.3, 20.4]);
        assert_eq!(got[0], Ok(5.0));
        assert!(got[1..4].iter().all(implausible), "{got:?}");
        assert_eq!(got[4..], [Ok(20.3), Ok(20.4)]);

        // Rejected values that disagree with each other (noise) restart the count.
        let got = run(rules, &[5.0, 20.0, 40.0, 20.0, 40.0, 20.0]);
        assert!(got[1..].iter().all(implausible), "{got:?}");

        // 0 turns the jump check off.
        let got = run(ScreenRules { max_rate_c_per_min: 1.0, step_rejections: 0 }, &[5.0, 50.0]);
        assert_eq!(got, vec![Ok(5.0), Ok(50.0)]);
    }

    #[test]
    fn the_allowance_grows_with_the_time_between_readings() {
        let mut s = Screened::new(
            Script(VecDeque::from([vec![reading("a", Ok(10.0))], vec![reading("a", Ok(19.0))]])),
            ScreenRules::default(),
            Vec::new(),
        );
        let t0 = Instant::now();
        s.read_at(t0);
        // 9 °C in two minutes is within 5 °C/min.
        assert_eq!(s.read_at(t0 + Duration::from_secs(120))[0].value, Ok(19.0));
    }

    #[test]
    fn rates_are_judged_in_the_sources_time() {
        /// A simulator running 60× real time.
        #[derive(Debug)]
        struct Fast(VecDeque<Vec<RawReading>>);
        impl TemperatureSource for Fast {
            fn name(&self) -> &'static str {
                "fast"
            }
            fn read_all(&mut self) -> Vec<RawReading> {
                self.0.pop_front().unwrap_or_default()
            }
            fn kind_of(&self, id: &str) -> &'static str {
                crate::w1::device_kind(id)
            }
            fn time_scale(&self) -> f64 {
                60.0
            }
        }
        let reads = VecDeque::from([vec![reading("a", Ok(17.0))], vec![reading("a", Ok(20.0))]]);
        let mut s = Screened::new(Fast(reads), ScreenRules::default(), Vec::new());
        assert_eq!(s.time_scale(), 60.0);
        let t0 = Instant::now();
        s.read_at(t0);
        // 3 °C in one real second is 3 °C in a simulated minute: plausible.
        assert_eq!(s.read_at(t0 + Duration::from_secs(1))[0].value, Ok(20.0));
    }

    #[test]
    fn settings_roster_and_calibration() {
        let script = Script(VecDeque::from([
            vec![
                reading("28-00000000000a", Ok(21.0625)),
                reading("28-00000000000b", Ok(19.0)),
                reading("28-00000000000c", Ok(85.0)),
            ],
            // b vanished; a read failed.
            vec![
                reading("28-00000000000a", Err(ReadError::Crc)),
                reading("28-00000000000c", Ok(20.0)),
            ],
        ]));
        let settings = vec![
            // Configured in upper case; the backend reports lower case.
            SensorSetting { id: "28-00000000000A".into(), offset_c: 0.3, enabled: true },
            SensorSetting { id: "28-00000000000c".into(), offset_c: 0.0, enabled: false },
            // Configured, never on the bus.
            SensorSetting { id: "28-00000000000d".into(), offset_c: -1.0, enabled: true },
        ];
        let mut s = Screened::new(script, ScreenRules::default(), settings);
        let t0 = Instant::now();
        let got: Vec<_> = s.read_at(t0).into_iter().map(|r| (r.id, r.kind, r.value)).collect();
        let want = vec![
            ("28-00000000000a", "DS18B20", Ok(21.3625)),
            ("28-00000000000b", "DS18B20", Ok(19.0)),
            ("28-00000000000d", "DS18B20", Err(ReadError::Missing)),
        ];
        let want: Vec<_> =
            want.into_iter().map(|(i, k, v)| (i.to_owned(), k.to_owned(), v)).collect();
        assert_eq!(got, want);

        let got: Vec<_> =
            s.read_at(t0 + Duration::from_secs(10)).into_iter().map(|r| (r.id, r.value)).collect();
        assert_eq!(
            got,
            vec![
                ("28-00000000000a".to_owned(), Err(ReadError::Crc)),
                ("28-00000000000b".to_owned(), Err(ReadError::Missing)),
                ("28-00000000000d".to_owned(), Err(ReadError::Missing)),
            ]
        );
        assert_eq!(s.name(), "script");
    }

    #[test]
    fn settings_change_while_running() {
        let read = || vec![reading("28-a", Ok(20.0)), reading("28-b", Ok(21.0))];
        let script = Script(VecDeque::from([read(), read(), read(), read()]));
        let mut s = Screened::new(script, ScreenRules::default(), Vec::new());
        let t0 = Instant::now();
        let ids =
            |got: Vec<RawReading>| got.into_iter().map(|r| (r.id, r.value)).collect::<Vec<_>>();
        assert_eq!(ids(s.read_at(t0)).len(), 2);
        // b disabled, a calibrated, and a configured sensor that is not on the bus.
        let settings = vec![
            SensorSetting { id: "28-A".into(), offset_c: 0.5, enabled: true },
            SensorSetting { id: "28-b".into(), offset_c: 0.0, enabled: false },
            SensorSetting { id: "28-c".into(), offset_c: 0.0, enabled: true },
        ];
        let listed = BTreeSet::from(["28-c".to_owned()]);
        s.reconfigure(ScreenRules::default(), settings.clone(), &listed);
        assert_eq!(
            ids(s.read_at(t0 + Duration::from_secs(10))),
            vec![("28-a".to_owned(), Ok(20.5)), ("28-c".to_owned(), Err(ReadError::Missing))]
        );
        // b enabled again: read and reported again; c no longer listed stays on the roster
        // (it is a sensor this run was told about) until the agent restarts.
        let mut again = settings;
        again[1].enabled = true;
        s.reconfigure(ScreenRules::default(), again, &BTreeSet::new());
        let got = ids(s.read_at(t0 + Duration::from_secs(20)));
        assert_eq!(got[1], ("28-b".to_owned(), Ok(21.0)), "{got:?}");
        // A tighter screen applies at the next read.
        let rules = ScreenRules { max_rate_c_per_min: 0.1, step_rejections: 3 };
        s.reconfigure(rules.clone(), Vec::new(), &BTreeSet::new());
        assert_eq!(s.rules, rules);
    }

    #[test]
    fn a_calibrated_value_beyond_what_the_engine_accepts_is_implausible() {
        let script = Script(VecDeque::from([vec![
            reading("28-00000000000a", Ok(124.5)),
            reading("28-00000000000b", Ok(-54.75)),
        ]]));
        let settings = vec![
            SensorSetting { id: "28-00000000000a".into(), offset_c: 1.0, enabled: true },
            SensorSetting { id: "28-00000000000b".into(), offset_c: -0.25, enabled: true },
        ];
        let mut s = Screened::new(script, ScreenRules::default(), settings);
        let got: Vec<_> = s.read_at(Instant::now()).into_iter().map(|r| r.value).collect();
        // Sent, 125.5 would make the engine refuse the whole report (and -55 is still fine).
        assert!(
            matches!(&got[0], Err(ReadError::Implausible(m)) if m.contains("125.5")),
            "{got:?}"
        );
        assert_eq!(got[1], Ok(-55.0));
    }
}
