//! The demo's past: a few days of a house's temperature, so History and its charts show
//! something the moment the demo starts.
//!
//! The readings are made by a small model of the same house the live simulator heats (the
//! sensor agent's room: 6 °C/h of furnace, a 5 h time constant), in winter weather that is
//! coldest before dawn, under a hysteresis thermostat (±0.3 °C, 3 min minimum on and off)
//! following the demo's schedule as the engine reads it (its timeline, so setbacks fall where
//! the engine's time zone puts them). They reach the engine the way an agent's queued readings
//! do: `PUT /v1/sensors/backlog` with their timestamps, with the sensor agent's credential, so
//! they go through the same validation, ingest and rollups as live ones.

use hearth_proto::Timestamp;
use hearth_proto::client::EngineClient;
use hearth_proto::sensors::{MAX_BACKLOG_UPDATES, SensorBacklog, SensorReport, SensorUpdate};
use jiff::SignedDuration;

/// One reading a minute: what the charts' per-minute rollups are made of.
pub(crate) const STEP_S: i64 = 60;

/// The heating setpoint from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Setpoint {
    pub(crate) start: Timestamp,
    pub(crate) end: Timestamp,
    pub(crate) heat_c: f64,
}

/// The house's room temperature every [`STEP_S`] from `from` (inclusive) to `to` (exclusive),
/// as a sensor would read it (with a little noise). `utc_offset_s` puts the weather's daily
/// cycle on local time; `seed` picks the weather. Pure: the same inputs give the same readings.
pub(crate) fn house(
    from: Timestamp,
    to: Timestamp,
    setpoints: &[Setpoint],
    utc_offset_s: i64,
    seed: u64,
) -> Vec<(Timestamp, f64)> {
    const GAIN_C_PER_H: f64 = 6.0;
    const TAU_H: f64 = 5.0;
    const HYSTERESIS_C: f64 = 0.3;
    const MIN_ON_OFF_S: i64 = 180;
    // The furnace's heat reaches the room over minutes: the room overshoots a little after the
    // burner stops, as a real one does.
    const FURNACE_LAG_S: f64 = 240.0;

    let mut rng = SplitMix(seed);
    let dt_h = STEP_S as f64 / 3600.0;
    let furnace_follow = 1.0 - (-(STEP_S as f64) / FURNACE_LAG_S).exp();
    let setpoint_at = |t: Timestamp| {
        setpoints.iter().find(|s| s.start <= t && t < s.end).map(|s| s.heat_c).unwrap_or(20.0)
    };
    // Each local day a little warmer or colder than the last (a few degrees around 2 °C).
    let day_of = |t: Timestamp| (t.as_second() + utc_offset_s).div_euclid(86_400);
    let first_day = day_of(from);
    let days = usize::try_from(day_of(to) - first_day + 2).unwrap_or(0);
    let mut day_mean = Vec::with_capacity(days);
    let mut mean = 2.0;
    for _ in 0..days {
        mean = (mean + rng.uniform(-2.5, 2.5)).clamp(-6.0, 8.0);
        day_mean.push(mean);
    }
    let outside_at = |t: Timestamp| {
        let local = t.as_second() + utc_offset_s;
        let day = usize::try_from(day_of(t) - first_day).unwrap_or(0);
        let hour = local.rem_euclid(86_400) as f64 / 3600.0;
        // Warmest at 15:00, coldest at 03:00.
        let daily = 3.5 * (2.0 * std::f64::consts::PI * (hour - 15.0) / 24.0).cos();
        day_mean.get(day).copied().unwrap_or(2.0) + daily
    };

    let mut room = setpoint_at(from);
    let mut burner_on = false;
    let mut switched = from.as_second() - MIN_ON_OFF_S;
    let mut heat = 0.0; // the furnace's output reaching the room, 0..1
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let now_s = t.as_second();
        let sp = setpoint_at(t);
        if now_s - switched >= MIN_ON_OFF_S {
            let want = if room < sp - HYSTERESIS_C {
                true
            } else if room > sp + HYSTERESIS_C {
                false
            } else {
                burner_on
            };
            if want != burner_on {
                burner_on = want;
                switched = now_s;
            }
        }
        heat += (f64::from(u8::from(burner_on)) - heat) * furnace_follow;
        room += dt_h * (GAIN_C_PER_H * heat - (room - outside_at(t)) / TAU_H);
        let noise = (rng.uniform(-1.0, 1.0) + rng.uniform(-1.0, 1.0)) * 0.02;
        out.push((t, ((room + noise) * 100.0).round() / 100.0));
        t = match t.checked_add(SignedDuration::from_secs(STEP_S)) {
            Ok(next) => next,
            Err(_) => break,
        };
    }
    out
}

/// SplitMix64: a small, well-mixed generator, so the weather is the same for a seed.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        // The top 53 bits: an exact f64 in [0, 1).
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        lo + (hi - lo) * unit
    }
}

/// The UTC offset of an RFC 9557 local time such as `2026-03-29T03:30:00+02:00[Europe/Berlin]`,
/// in seconds (None when it has none).
fn utc_offset_s(local: &str) -> Option<i64> {
    let time = &local[local.find('T')? + 1..];
    let time = time.split('[').next()?;
    if time.ends_with('Z') {
        return Some(0);
    }
    let at = time.rfind(['+', '-'])?;
    let sign = if time[at..].starts_with('-') { -1 } else { 1 };
    let mut parts = time[at + 1..].split(':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next().unwrap_or("0").parse().ok()?;
    Some(sign * (hours * 3600 + minutes * 60))
}

/// What was seeded: how many readings, and the room's temperature at the end.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seeded {
    pub(crate) readings: usize,
    pub(crate) last_c: f64,
}

/// Send `days` days of the house's past, up to now, for `sensor` of `host` as that host's
/// backlog (`agent` must hold the host's agent credential; `api` reads the schedule).
pub(crate) async fn seed(
    api: &EngineClient,
    agent: &EngineClient,
    host: &str,
    sensor: &str,
    alias: &str,
    days: u32,
) -> anyhow::Result<Seeded> {
    let hours = days * 24;
    let now = Timestamp::now();
    // Whole minutes, so the readings fall on the rollups' minutes.
    let to = Timestamp::from_second(now.as_second() - now.as_second().rem_euclid(STEP_S))?;
    let from = to.checked_sub(SignedDuration::from_hours(i64::from(hours)))?;
    let timeline = api
        .timeline_from(from, hours)
        .await
        .map_err(|e| anyhow::anyhow!("reading the schedule's timeline: {e}"))?;
    let setpoints: Vec<Setpoint> = timeline
        .segments
        .iter()
        .map(|s| Setpoint { start: s.start, end: s.end, heat_c: s.heat_c })
        .collect();
    let offset = timeline.segments.last().and_then(|s| utc_offset_s(&s.end_local)).unwrap_or(0);
    let readings = house(from, to, &setpoints, offset, 0x4865_6172_7468);
    let last_c = readings.last().map_or(17.0, |(_, c)| *c);
    for chunk in readings.chunks(MAX_BACKLOG_UPDATES) {
        let updates = chunk
            .iter()
            .map(|&(at, value)| SensorUpdate {
                host_id: host.to_owned(),
                sensors: [(
                    sensor.to_owned(),
                    SensorReport {
                        kind: "simulated".to_owned(),
                        value: Some(value),
                        alias: Some(alias.to_owned()),
                        extra: None,
                        timestamp: Some(at),
                    },
                )]
                .into(),
                agent_time: None,
            })
            .collect();
        let backlog =
            SensorBacklog { host_id: host.to_owned(), updates, agent_time: Some(Timestamp::now()) };
        agent
            .sensor_backlog(&backlog)
            .await
            .map_err(|e| anyhow::anyhow!("the engine refused the seeded history: {e}"))?;
    }
    Ok(Seeded { readings: readings.len(), last_c })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    /// Three days under the demo's schedule in UTC: 20.5 °C, 17 °C from 22:30 to 06:00.
    fn three_days() -> (Timestamp, Timestamp, Vec<Setpoint>) {
        let from = at("2026-01-12T00:00:00Z");
        let mut setpoints = Vec::new();
        for day in 11..=14 {
            let d = |hm: &str, day: i32| at(&format!("2026-01-{day:02}T{hm}:00Z"));
            setpoints.push(Setpoint { start: d("06:00", day), end: d("22:30", day), heat_c: 20.5 });
            setpoints.push(Setpoint {
                start: d("22:30", day),
                end: d("06:00", day + 1),
                heat_c: 17.0,
            });
        }
        setpoints.push(Setpoint { start: from, end: at("2026-01-12T06:00:00Z"), heat_c: 17.0 });
        setpoints.sort_by_key(|s| s.start);
        (from, at("2026-01-15T00:00:00Z"), setpoints)
    }

    #[test]
    fn a_reading_a_minute_over_the_whole_range_and_the_same_for_a_seed() {
        let (from, to, setpoints) = three_days();
        let readings = house(from, to, &setpoints, 0, 7);
        assert_eq!(readings.len(), 3 * 24 * 60);
        assert_eq!(readings[0].0, from);
        assert!(readings.windows(2).all(|w| w[1].0.as_second() - w[0].0.as_second() == STEP_S));
        assert_eq!(readings, house(from, to, &setpoints, 0, 7));
        assert_ne!(readings, house(from, to, &setpoints, 0, 8), "the seed picks the weather");
    }

    #[test]
    fn the_house_is_held_near_the_setpoint_and_set_back_at_night() {
        let (from, to, setpoints) = three_days();
        let readings = house(from, to, &setpoints, 0, 7);
        let hour = |t: Timestamp| t.as_second().rem_euclid(86_400) / 3600;
        let mean = |keep: &dyn Fn(i64) -> bool| {
            let v: Vec<f64> =
                readings.iter().filter(|(t, _)| keep(hour(*t))).map(|(_, c)| *c).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        // The afternoons (long after the morning warm-up) sit within the band around 20.5.
        let day = mean(&|h| (12..22).contains(&h));
        assert!((day - 20.5).abs() < 0.3, "daytime mean {day:.2}");
        // Before dawn the setback has long taken hold: 17 °C, give or take the band.
        let night = mean(&|h| (3..6).contains(&h));
        assert!((night - 17.0).abs() < 0.5, "night mean {night:.2}");
        for (t, c) in &readings {
            assert!((15.0..22.0).contains(c), "{t}: {c}");
        }
    }

    #[test]
    fn the_furnace_cycles_a_few_times_an_hour_in_the_day() {
        let (from, to, setpoints) = three_days();
        let readings = house(from, to, &setpoints, 0, 7);
        // A cycle shows as the room turning from falling to rising: count the troughs of the
        // afternoon's readings (smoothed over 5 minutes to look past the sensor's noise).
        let afternoon: Vec<f64> = readings
            .iter()
            .filter(|(t, _)| (12..22).contains(&(t.as_second().rem_euclid(86_400) / 3600)))
            .map(|(_, c)| *c)
            .collect();
        let smooth: Vec<f64> = afternoon.windows(5).map(|w| w.iter().sum::<f64>() / 5.0).collect();
        let mut troughs = 0;
        let mut falling = false;
        for w in smooth.windows(2) {
            let d = w[1] - w[0];
            if d > 0.01 && falling {
                troughs += 1;
                falling = false;
            } else if d < -0.01 {
                falling = true;
            }
        }
        let per_hour = f64::from(troughs) / 30.0; // 3 afternoons of 10 h
        assert!((0.5..6.0).contains(&per_hour), "{per_hour:.1} cycles an hour");
    }

    #[test]
    fn offsets_are_read_from_local_times() {
        assert_eq!(utc_offset_s("2026-03-29T03:30:00+02:00[Europe/Berlin]"), Some(7200));
        assert_eq!(utc_offset_s("2026-01-10T08:00:00-05:00[America/New_York]"), Some(-18_000));
        assert_eq!(utc_offset_s("2026-01-10T08:00:00+05:30[Asia/Kolkata]"), Some(19_800));
        assert_eq!(utc_offset_s("2026-01-10T08:00:00Z"), Some(0));
        assert_eq!(utc_offset_s("2026-01-10T08:00:00+00:00[UTC]"), Some(0));
        assert_eq!(utc_offset_s("nonsense"), None);
    }
}
