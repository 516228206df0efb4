//! Simulated sensors: a room heated by the simulated relay agent's heater, plus sensors with
//! their own profile (cyclic, linear) and faults injected on demand through a file.
//!
//! The room is not random numbers: a first-order thermal model,
//! `dT/dt = heat_gain·[heater on] − (T − T_outside)/tau`,
//! so the engine's control loop sees a room that warms while it heats and cools towards the
//! outside temperature when it stops, as a real house does. The heater state comes from the
//! world file the simulated relay agent writes ([`RelayWorld`]): any heat output on, or, for a
//! room behind a zone valve, every output it is heated by on ([`HeatedBy`]).
//!
//! Faults ([`SimFault`]) are produced the way hardware produces them (a failed conversion, a
//! CRC error, the 85 °C power-on value, a frozen value, a vanished device) and are caught by
//! the same retries and the same screen as on real hardware: the simulator never filters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

pub use hearth_common::simworld::HeatedBy;
use hearth_common::simworld::RelayWorld;
use serde::{Deserialize, Serialize};

use super::{RawReading, ReadError, TemperatureSource, with_retries};

/// A room as a single heat capacity losing heat to the outside through one resistance.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomModel {
    /// Room temperature, °C.
    pub temp_c: f64,
    /// Outside temperature, °C.
    pub outside_c: f64,
    /// How fast the heater alone would warm the room, °C per hour.
    pub heat_gain_c_per_h: f64,
    /// The room's time constant, hours: how slowly it follows the outside.
    pub tau_h: f64,
}

impl RoomModel {
    /// Heat gain of a typical house's furnace, °C/h.
    pub const HEAT_GAIN_C_PER_H: f64 = 6.0;
    /// Time constant of a typical house, h. With the gain above the heated steady state is
    /// 30 °C above outside, and at 18 °C (5 °C outside) the room warms ~3.4 °C/h and cools
    /// ~2.6 °C/h: a controller has to work, but the demo still moves.
    pub const TAU_H: f64 = 5.0;

    /// A typical room starting at `start_c` with `outside_c` outside.
    pub fn new(start_c: f64, outside_c: f64) -> Self {
        Self {
            temp_c: start_c,
            outside_c,
            heat_gain_c_per_h: Self::HEAT_GAIN_C_PER_H,
            tau_h: Self::TAU_H,
        }
    }

    /// The temperature the room settles at with the heater on or off.
    pub fn steady_state_c(&self, heater_on: bool) -> f64 {
        let gain = if heater_on { self.heat_gain_c_per_h } else { 0.0 };
        self.outside_c + gain * self.tau_h
    }

    /// dT/dt now, °C per hour.
    pub fn rate_c_per_h(&self, heater_on: bool) -> f64 {
        (self.steady_state_c(heater_on) - self.temp_c) / self.tau_h
    }

    /// Advance the room by `dt_s` simulated seconds with the heater held on or off.
    ///
    /// Uses the exact solution of the linear equation (exponential approach to the steady
    /// state) instead of an Euler step: with a large time scale one step can span hours, and
    /// the exact form stays correct and never overshoots the steady state for any step size.
    pub fn step(&mut self, dt_s: f64, heater_on: bool) {
        if dt_s <= 0.0 || !dt_s.is_finite() {
            return;
        }
        let target = self.steady_state_c(heater_on);
        let decay = (-(dt_s / 3600.0) / self.tau_h).exp();
        self.temp_c = target + (self.temp_c - target) * decay;
    }
}

/// Fixed per-sensor offsets by index, so several simulated sensors in one room differ a little,
/// as real ones do, and an averaging engine has something to average.
const OFFSETS_C: [f64; 5] = [0.0, 0.3, -0.2, 0.15, -0.1];

/// What a DS18B20 at `bits` of resolution reads for `c`: a multiple of its step (1/16 °C at
/// 12 bits, 0.5 °C at 9), the low bits cleared as the sensor leaves them undefined (so a
/// coarser resolution rounds down, like the register).
fn quantize(c: f64, bits: u8) -> f64 {
    let sixteenths = (c * 16.0).round();
    let step = crate::resolution_step_c(bits) * 16.0;
    (sixteenths / step).floor() * step / 16.0
}

/// How a simulated sensor's temperature evolves (`sim` in a `[[sensors]]` table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "profile", rename_all = "lowercase", deny_unknown_fields)]
pub enum SimProfile {
    /// In the simulated room: follows the room model (and so the simulated heater). A struct
    /// variant, because serde lets unknown keys through on a unit variant.
    Room {},
    /// A sinusoid between `min_c` and `max_c` with a period of `period_s` simulated seconds,
    /// starting at `min_c` (e.g. an outside sensor over a day).
    Cyclic {
        /// Period, simulated seconds (more than 0).
        period_s: f64,
        /// Lowest value, °C.
        min_c: f64,
        /// Highest value, °C.
        max_c: f64,
    },
    /// `start_c` changing by `rate_c_per_h` per simulated hour, held within `min_c`/`max_c`
    /// when given (e.g. a cooling water tank).
    Linear {
        /// Value at start, °C.
        start_c: f64,
        /// Change per simulated hour, °C (negative cools).
        rate_c_per_h: f64,
        /// Lower bound, °C.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_c: Option<f64>,
        /// Upper bound, °C.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_c: Option<f64>,
    },
}

impl Default for SimProfile {
    fn default() -> Self {
        Self::Room {}
    }
}

impl SimProfile {
    /// Check the numbers; the message names the problem.
    pub fn validate(&self) -> Result<(), String> {
        let finite = |name: &str, v: f64| {
            if v.is_finite() { Ok(()) } else { Err(format!("{name} must be a number, got {v}")) }
        };
        match self {
            Self::Room {} => Ok(()),
            Self::Cyclic { period_s, min_c, max_c } => {
                finite("min_c", *min_c)?;
                finite("max_c", *max_c)?;
                if !(period_s.is_finite() && *period_s > 0.0) {
                    return Err(format!("period_s must be more than 0, got {period_s}"));
                }
                if min_c > max_c {
                    return Err(format!("min_c {min_c} is above max_c {max_c}"));
                }
                Ok(())
            }
            Self::Linear { start_c, rate_c_per_h, min_c, max_c } => {
                finite("start_c", *start_c)?;
                finite("rate_c_per_h", *rate_c_per_h)?;
                if let (Some(lo), Some(hi)) = (min_c, max_c)
                    && lo > hi
                {
                    return Err(format!("min_c {lo} is above max_c {hi}"));
                }
                Ok(())
            }
        }
    }

    /// The value at `t_s` simulated seconds after start; `room_c` is the room sensor's value.
    fn value_at(&self, t_s: f64, room_c: f64) -> f64 {
        match self {
            Self::Room {} => room_c,
            Self::Cyclic { period_s, min_c, max_c } => {
                let phase = std::f64::consts::TAU * t_s / period_s;
                min_c + (max_c - min_c) * (1.0 - phase.cos()) / 2.0
            }
            Self::Linear { start_c, rate_c_per_h, min_c, max_c } => {
                let v = start_c + rate_c_per_h * t_s / 3600.0;
                let v = min_c.map_or(v, |lo| v.max(lo));
                max_c.map_or(v, |hi| v.min(hi))
            }
        }
    }
}

/// One simulated sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSensor {
    /// Its id.
    pub id: String,
    /// How its temperature evolves.
    pub profile: SimProfile,
}

/// Faults injected into one simulated sensor (a table in the faults file). They go through the
/// same path as real hardware faults: retries, the screen, missing-sensor reporting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimFault {
    /// The sensor is gone from the bus (reported missing by the layer above).
    pub unplugged: bool,
    /// Every conversion fails (an empty read, as newer kernels report it).
    pub dropout: bool,
    /// Probability (0..1) that one read attempt fails its CRC check. Attempts are retried as on
    /// a real bus, so a reading fails with this probability to the power of the attempts.
    pub crc_error_rate: f64,
    /// The sensor reads the 85 °C power-on value (a brown-out).
    pub spike_85: bool,
    /// The value freezes at what it read when the fault was switched on.
    pub stuck: bool,
}

/// The faults file (`--sim-faults`): TOML, one table per sensor id, e.g.
/// `["28-00000000a001"]` then `stuck = true`. Re-read when it changes, so a test or the demo
/// injects a fault by writing it (write a temporary file and rename it over, so no read sees
/// half a file). A missing file means no faults; a file that does not parse is logged and the
/// previous faults stay.
#[derive(Debug)]
struct FaultsFile {
    path: PathBuf,
    /// (modification time, length) when last read.
    stamp: Option<(SystemTime, u64)>,
    /// Faults by lower-case sensor id.
    faults: BTreeMap<String, SimFault>,
}

/// A file modified this recently is read again even if its stamp looks unchanged: two writes
/// within the file system's timestamp granularity (a few ms) can leave the same modification
/// time and length (the "racy git" problem).
const RACY_S: u64 = 2;

impl FaultsFile {
    fn refresh(&mut self, wall_now: SystemTime) {
        let stamp = match std::fs::metadata(&self.path) {
            Ok(m) => (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.stamp.take().is_some() && !self.faults.is_empty() {
                    tracing::info!(path = %self.path.display(), "simulated faults file removed; faults cleared");
                }
                self.faults.clear();
                return;
            }
            Err(e) => {
                tracing::debug!(path = %self.path.display(), error = %e, "cannot stat the faults file");
                return;
            }
        };
        let racy = wall_now.duration_since(stamp.0).map_or(true, |age| age.as_secs() < RACY_S);
        if self.stamp == Some(stamp) && !racy {
            return;
        }
        let parsed =
            std::fs::read_to_string(&self.path).map_err(|e| e.to_string()).and_then(|text| {
                toml::from_str::<BTreeMap<String, SimFault>>(&text).map_err(|e| e.to_string())
            });
        match parsed {
            Ok(faults) => {
                let faults: BTreeMap<String, SimFault> =
                    faults.into_iter().map(|(id, f)| (id.to_ascii_lowercase(), f)).collect();
                if faults != self.faults {
                    tracing::info!(path = %self.path.display(), ?faults, "simulated faults changed");
                }
                self.faults = faults;
            }
            Err(e) if self.stamp != Some(stamp) => {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot read the simulated faults file; keeping the previous faults");
            }
            Err(_) => {}
        }
        self.stamp = Some(stamp);
    }
}

/// A small deterministic PRNG (SplitMix64): the CRC noise repeats exactly for a seed, so tests
/// and demos are reproducible, without a dependency.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        // The top 53 bits fill an f64's mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The simulated sensors: in the simulated room, or following their own profile.
#[derive(Debug)]
pub struct SimSource {
    model: RoomModel,
    sensors: Vec<SimSensor>,
    world: PathBuf,
    /// Which outputs of the world heat the room.
    heated_by: HeatedBy,
    time_scale: f64,
    /// The first read: simulated time 0 of the cyclic and linear profiles.
    started: Option<Instant>,
    /// The previous read: when, and whether the heater was on then.
    last: Option<(Instant, bool)>,
    /// True while the world file is unreadable, so that is logged once, not at every read.
    world_unreadable: bool,
    faults: Option<FaultsFile>,
    rng: SplitMix64,
    /// Values frozen by a `stuck` fault, by lower-case id.
    stuck_at: BTreeMap<String, f64>,
    /// Lower-case ids of sensors not read (disabled).
    skip: BTreeSet<String>,
    /// The resolution the sensors convert at, bits (12, the DS18B20's default, when unset).
    resolution_bits: u8,
}

impl SimSource {
    /// Simulate `model` with `sensors`, the heater state from the `world` file, and
    /// `time_scale` simulated seconds per real second.
    pub fn new(model: RoomModel, sensors: Vec<SimSensor>, world: PathBuf, time_scale: f64) -> Self {
        Self {
            model,
            sensors,
            world,
            heated_by: HeatedBy::default(),
            time_scale,
            started: None,
            last: None,
            world_unreadable: false,
            faults: None,
            rng: SplitMix64(0),
            stuck_at: BTreeMap::new(),
            skip: BTreeSet::new(),
            resolution_bits: 12,
        }
    }

    /// Inject the faults described in the file at `path` (see [`SimFault`]), re-read when it
    /// changes.
    pub fn with_faults_file(mut self, path: PathBuf) -> Self {
        self.faults = Some(FaultsFile { path, stamp: None, faults: BTreeMap::new() });
        self
    }

    /// Heat the room only by `heated_by` (default: any heat output of the world).
    pub fn with_heated_by(mut self, heated_by: HeatedBy) -> Self {
        self.heated_by = heated_by;
        self
    }

    /// Seed the random CRC noise.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = SplitMix64(seed);
        self
    }

    /// The room as simulated so far.
    pub fn model(&self) -> &RoomModel {
        &self.model
    }

    /// Read all sensors as of the real instant `now` (the clock is a parameter so tests are
    /// deterministic; [`TemperatureSource::read_all`] passes `Instant::now()`).
    pub fn read_at(&mut self, now: Instant) -> Vec<RawReading> {
        let heater_on = self.heater_on();
        if let Some((last, was_on)) = self.last {
            let dt_s = now.saturating_duration_since(last).as_secs_f64() * self.time_scale;
            // The heater switched at an unknown moment between the two reads: count half the
            // interval in the old state and half in the new, which halves the worst-case error
            // of either choice alone.
            self.model.step(dt_s / 2.0, was_on);
            self.model.step(dt_s / 2.0, heater_on);
        }
        self.last = Some((now, heater_on));
        let started = *self.started.get_or_insert(now);
        let t_s = now.saturating_duration_since(started).as_secs_f64() * self.time_scale;
        if let Some(faults) = &mut self.faults {
            faults.refresh(SystemTime::now());
        }

        let mut room_index = 0;
        let mut out = Vec::with_capacity(self.sensors.len());
        for sensor in &self.sensors {
            let room_c = self.model.temp_c + OFFSETS_C[room_index % OFFSETS_C.len()];
            if sensor.profile == (SimProfile::Room {}) {
                room_index += 1;
            }
            let key = sensor.id.to_ascii_lowercase();
            if self.skip.contains(&key) {
                continue;
            }
            let fault =
                self.faults.as_ref().and_then(|f| f.faults.get(&key)).cloned().unwrap_or_default();
            if !fault.stuck {
                self.stuck_at.remove(&key);
            }
            if fault.unplugged {
                continue;
            }
            let true_c = quantize(sensor.profile.value_at(t_s, room_c), self.resolution_bits);
            let value = if fault.dropout {
                Err(ReadError::Empty)
            } else {
                let rng = &mut self.rng;
                with_retries(|| {
                    // Drawn only for noisy sensors, so one sensor's noise does not depend on
                    // which other sensors are configured.
                    if fault.crc_error_rate > 0.0 && rng.next_f64() < fault.crc_error_rate {
                        return Err(ReadError::Crc);
                    }
                    Ok(if fault.spike_85 {
                        85.0
                    } else if fault.stuck {
                        *self.stuck_at.entry(key.clone()).or_insert(true_c)
                    } else {
                        true_c
                    })
                })
            };
            out.push(RawReading { id: sensor.id.clone(), kind: "simulated".to_owned(), value });
        }
        out
    }

    fn heater_on(&mut self) -> bool {
        match RelayWorld::read(&self.world) {
            Ok(world) => {
                if std::mem::take(&mut self.world_unreadable) {
                    tracing::info!(path = %self.world.display(), "simulated world file readable again");
                }
                world.heats(&self.heated_by)
            }
            Err(e) => {
                if !std::mem::replace(&mut self.world_unreadable, true) {
                    tracing::warn!(
                        path = %self.world.display(),
                        error = %e,
                        "cannot read the simulated world file; treating the heater as off"
                    );
                }
                false
            }
        }
    }
}

impl TemperatureSource for SimSource {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn read_all(&mut self) -> Vec<RawReading> {
        self.read_at(Instant::now())
    }

    fn kind_of(&self, _id: &str) -> &'static str {
        "simulated"
    }

    fn time_scale(&self) -> f64 {
        self.time_scale
    }

    fn skip(&mut self, ids: &BTreeSet<String>) {
        self.skip.clone_from(ids);
    }

    /// Honoured like the hardware's: every value becomes a multiple of the resolution's step.
    fn set_resolution(&mut self, bits: Option<u8>) -> Result<(), String> {
        self.resolution_bits = bits.unwrap_or(12).clamp(9, 12);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hearth_common::simworld::SimOutput;
    use hearth_proto::relays::RelayFunction;

    use super::*;

    const HOUR: f64 = 3600.0;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() <= eps
    }

    #[test]
    fn rates_at_18_degrees() {
        let room = RoomModel::new(18.0, 5.0);
        assert!(close(room.rate_c_per_h(true), 3.4, 1e-9));
        assert!(close(room.rate_c_per_h(false), -2.6, 1e-9));
        assert!(close(room.steady_state_c(true), 35.0, 1e-9));
        // One simulated minute moves it by about rate/60.
        let mut warm = room.clone();
        warm.step(60.0, true);
        assert!(close(warm.temp_c - 18.0, 3.4 / 60.0, 1e-3));
        let mut cool = room;
        cool.step(60.0, false);
        assert!(close(cool.temp_c - 18.0, -2.6 / 60.0, 1e-3));
    }

    #[test]
    fn warms_with_heat_and_never_exceeds_steady_state() {
        let mut room = RoomModel::new(17.0, 5.0);
        let mut prev = room.temp_c;
        for _ in 0..200 {
            room.step(HOUR, true);
            assert!(room.temp_c > prev || close(room.temp_c, 35.0, 1e-6));
            assert!(room.temp_c <= room.steady_state_c(true) + 1e-9);
            prev = room.temp_c;
        }
        assert!(close(room.temp_c, 35.0, 1e-6));
        // A huge step lands on the steady state, not past it.
        let mut room = RoomModel::new(17.0, 5.0);
        room.step(1e9, true);
        assert!(room.temp_c <= 35.0 && close(room.temp_c, 35.0, 1e-9));
    }

    #[test]
    fn cools_towards_outside_without_heat() {
        let mut room = RoomModel::new(21.0, 5.0);
        room.step(HOUR, false);
        assert!(room.temp_c < 21.0 && room.temp_c > 5.0);
        room.step(100.0 * HOUR, false);
        assert!(close(room.temp_c, 5.0, 0.01));
        // Below the outside temperature it warms towards it.
        let mut cold = RoomModel::new(-5.0, 5.0);
        cold.step(HOUR, false);
        assert!(cold.temp_c > -5.0 && cold.temp_c < 5.0);
    }

    #[test]
    fn steps_compose_exactly() {
        let mut one = RoomModel::new(17.0, 5.0);
        one.step(2.0 * HOUR, true);
        let mut many = RoomModel::new(17.0, 5.0);
        for _ in 0..120 {
            many.step(60.0, true);
        }
        assert!(close(one.temp_c, many.temp_c, 1e-9));
        let before = one.clone();
        one.step(0.0, true);
        one.step(-5.0, true);
        one.step(f64::NAN, true);
        assert_eq!(one, before);
    }

    fn room_sensors(ids: &[&str]) -> Vec<SimSensor> {
        ids.iter()
            .map(|id| SimSensor { id: (*id).to_owned(), profile: SimProfile::Room {} })
            .collect()
    }

    fn values(readings: Vec<RawReading>) -> Vec<(String, Result<f64, ReadError>)> {
        readings.into_iter().map(|r| (r.id, r.value)).collect()
    }

    #[test]
    fn cyclic_and_linear_profiles() {
        let sensors = vec![
            SimSensor {
                id: "outside".into(),
                profile: SimProfile::Cyclic { period_s: 4.0 * HOUR, min_c: -2.0, max_c: 8.0 },
            },
            SimSensor { id: "room".into(), profile: SimProfile::Room {} },
            SimSensor {
                id: "tank".into(),
                profile: SimProfile::Linear {
                    start_c: 60.0,
                    rate_c_per_h: -10.0,
                    min_c: Some(35.0),
                    max_c: None,
                },
            },
        ];
        // No world file: the heater is off. One real second is a simulated hour.
        let mut src =
            SimSource::new(RoomModel::new(20.0, 20.0), sensors, "/nonexistent/w".into(), HOUR);
        let t0 = Instant::now();
        let mut at = |h: u64| values(src.read_at(t0 + Duration::from_secs(h)));
        let mut src_reads = Vec::new();
        for h in 0..4 {
            src_reads.push(at(h));
        }
        let col = |i: usize| -> Vec<Result<f64, ReadError>> {
            src_reads.iter().map(|r| r[i].1.clone()).collect()
        };
        // min at 0, mid at a quarter period, max at half.
        assert_eq!(col(0), vec![Ok(-2.0), Ok(3.0), Ok(8.0), Ok(3.0)]);
        // The room sensor is the first in the room: no offset; the room is at equilibrium.
        assert_eq!(col(1), vec![Ok(20.0); 4]);
        assert_eq!(col(2), vec![Ok(60.0), Ok(50.0), Ok(40.0), Ok(35.0)]);
        let mut src = SimSource::new(RoomModel::new(20.0, 20.0), vec![], "/x".into(), 1.0);
        assert_eq!(src.read_at(t0), vec![]);
        assert_eq!((src.kind_of("28-1"), src.time_scale()), ("simulated", 1.0));

        assert!(SimProfile::Cyclic { period_s: 0.0, min_c: 0.0, max_c: 1.0 }.validate().is_err());
        assert!(SimProfile::Cyclic { period_s: 1.0, min_c: 2.0, max_c: 1.0 }.validate().is_err());
        let bad = SimProfile::Linear {
            start_c: 0.0,
            rate_c_per_h: 1.0,
            min_c: Some(3.0),
            max_c: Some(1.0),
        };
        assert!(bad.validate().is_err());
        assert!(
            SimProfile::Linear { start_c: f64::NAN, rate_c_per_h: 1.0, min_c: None, max_c: None }
                .validate()
                .is_err()
        );
        assert_eq!(SimProfile::Room {}.validate(), Ok(()));
    }

    /// Write the faults file as a writer should: a temporary file renamed over it.
    fn write_faults(path: &std::path::Path, text: &str) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    #[test]
    fn faults_on_demand_from_a_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let faults = dir.path().join("faults.toml");
        let sensors = room_sensors(&["28-00000000000a", "28-00000000000b"]);
        // One real second is a simulated hour.
        let mut src =
            SimSource::new(RoomModel::new(20.0, 20.0), sensors, "/nonexistent/w".into(), HOUR)
                .with_faults_file(faults.clone());
        let t0 = Instant::now();
        let mut tick = 0;
        let mut read = |src: &mut SimSource| {
            tick += 1;
            values(src.read_at(t0 + Duration::from_secs(tick)))
        };
        let ok = |a: f64, b: f64| {
            vec![("28-00000000000a".to_owned(), Ok(a)), ("28-00000000000b".to_owned(), Ok(b))]
        };
        // No file: no faults.
        assert_eq!(read(&mut src), ok(20.0, 20.3125));

        // Upper-case ids in the file match; several faults at once.
        write_faults(
            &faults,
            "[\"28-00000000000A\"]\nunplugged = true\n[\"28-00000000000b\"]\ndropout = true\n",
        )?;
        assert_eq!(read(&mut src), vec![("28-00000000000b".to_owned(), Err(ReadError::Empty))]);

        write_faults(&faults, "[\"28-00000000000b\"]\nspike_85 = true\n")?;
        assert_eq!(read(&mut src), ok(20.0, 85.0));

        write_faults(&faults, "[\"28-00000000000b\"]\ncrc_error_rate = 1.0\n")?;
        assert_eq!(read(&mut src)[1].1, Err(ReadError::Crc));

        // A broken file keeps the previous faults.
        write_faults(&faults, "[\"28-00000000000b\"]\nexplode = true\n")?;
        assert_eq!(read(&mut src)[1].1, Err(ReadError::Crc));

        // Stuck: the value freezes while the room warms (the outside is 40 °C now).
        src.model.outside_c = 40.0;
        write_faults(&faults, "[\"28-00000000000a\"]\nstuck = true\n")?;
        let stuck = read(&mut src);
        for _ in 0..3 {
            let now = read(&mut src);
            assert_eq!(now[0], stuck[0]);
            assert!(now[1].1.clone().unwrap_or_default() > stuck[1].1.clone().unwrap_or_default());
        }
        // Removing the file clears every fault.
        std::fs::remove_file(&faults)?;
        let now = read(&mut src);
        assert!(now[0].1.clone().unwrap_or_default() > stuck[0].1.clone().unwrap_or_default());
        Ok(())
    }

    #[test]
    fn crc_noise_is_seeded_and_retried() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let faults = dir.path().join("faults.toml");
        write_faults(&faults, "[a]\ncrc_error_rate = 0.5\n")?;
        let run = |seed: u64| {
            let mut src =
                SimSource::new(RoomModel::new(20.0, 20.0), room_sensors(&["a"]), "/x".into(), 1.0)
                    .with_faults_file(faults.clone())
                    .with_seed(seed);
            let t0 = Instant::now();
            (0..2000u64)
                .map(|i| src.read_at(t0 + Duration::from_secs(i))[0].value.is_err())
                .collect::<Vec<bool>>()
        };
        let a = run(7);
        assert_eq!(a, run(7), "same seed, same noise");
        assert_ne!(a, run(8));
        // Three attempts: a reading fails with probability 0.5³ = 0.125.
        let failed = a.iter().filter(|f| **f).count() as f64 / a.len() as f64;
        assert!((0.10..0.15).contains(&failed), "{failed}");
        Ok(())
    }

    #[test]
    fn profiles_parse_from_toml() -> anyhow::Result<()> {
        let p: SimProfile =
            toml::from_str("profile = \"cyclic\"\nperiod_s = 60\nmin_c = 1\nmax_c = 2\n")?;
        assert_eq!(p, SimProfile::Cyclic { period_s: 60.0, min_c: 1.0, max_c: 2.0 });
        let p: SimProfile =
            toml::from_str("profile = \"linear\"\nstart_c = 1\nrate_c_per_h = -2\n")?;
        assert_eq!(
            p,
            SimProfile::Linear { start_c: 1.0, rate_c_per_h: -2.0, min_c: None, max_c: None }
        );
        assert!(toml::from_str::<SimProfile>("profile = \"room\"\nx = 1\n").is_err());
        assert!(toml::from_str::<SimProfile>("profile = \"square\"\n").is_err());
        Ok(())
    }

    #[test]
    fn resolution_and_skipped_sensors_apply_at_the_next_read() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let ids = room_sensors(&["a", "b", "c"]);
        let mut src = SimSource::new(RoomModel::new(17.0, 5.0), ids, dir.path().join("w"), 1.0);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // 12 bits: 17.3125 and 16.8125 (the room plus each sensor's own offset).
        assert_eq!(
            values(src.read_at(at(0)))[1..],
            [("b".into(), Ok(17.3125)), ("c".into(), Ok(16.8125))]
        );
        src.set_resolution(Some(9)).map_err(anyhow::Error::msg)?;
        src.skip(&BTreeSet::from(["a".to_owned()]));
        // 9 bits: 0.5 °C steps, the low bits cleared as a DS18B20 leaves them; a not read.
        assert_eq!(values(src.read_at(at(1))), [("b".into(), Ok(17.0)), ("c".into(), Ok(16.5))]);
        src.set_resolution(Some(10)).map_err(anyhow::Error::msg)?;
        assert_eq!(values(src.read_at(at(2)))[0], ("b".into(), Ok(17.25)));
        src.set_resolution(None).map_err(anyhow::Error::msg)?;
        src.skip(&BTreeSet::new());
        assert_eq!(values(src.read_at(at(3))).len(), 3);
        assert_eq!(quantize(-10.0625, 9), -10.5, "two's complement: rounds down");
        Ok(())
    }

    fn world(path: &std::path::Path, heat_on: bool) -> std::io::Result<()> {
        let mut w = RelayWorld::default();
        w.outputs.insert(
            "furnace".into(),
            SimOutput { on: heat_on, function_hint: Some(RelayFunction::Heat) },
        );
        w.write(path)
    }

    #[test]
    fn source_follows_the_world_file() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("world.json");
        let ids = room_sensors(&["a", "b", "c"]);
        // 3600 simulated seconds per real second: one real second is an hour.
        let mut src = SimSource::new(RoomModel::new(17.0, 5.0), ids, path.clone(), HOUR);
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);

        // No world file yet: the relay agent has not started; heater off.
        let first = src.read_at(at(0));
        let values: Vec<_> = first.iter().map(|r| r.value.clone()).collect();
        assert_eq!(values, vec![Ok(17.0), Ok(17.3125), Ok(16.8125)]);
        assert!(first.iter().all(|r| r.kind == "simulated"));

        world(&path, true)?;
        src.read_at(at(1)); // half an hour off, half on
        let heated_from = src.model().temp_c;
        src.read_at(at(2)); // a full hour on
        assert!(src.model().temp_c > heated_from + 2.0);

        // Every value is a multiple of 1/16 °C, like a 12-bit DS18B20.
        for r in src.read_at(at(3)) {
            let v = r.value.map_err(|e| anyhow::anyhow!("{e}"))?;
            assert_eq!((v * 16.0).fract(), 0.0, "{v} is not a multiple of 1/16");
        }

        world(&path, false)?;
        src.read_at(at(4));
        let cooling_from = src.model().temp_c;
        src.read_at(at(5));
        assert!(src.model().temp_c < cooling_from);
        Ok(())
    }

    #[test]
    fn two_rooms_behind_valves_share_one_boiler() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("world.json");
        let set = |on: &[&str]| {
            let outputs = [
                ("boiler", RelayFunction::Heat),
                ("valve-1", RelayFunction::Valve),
                ("valve-2", RelayFunction::Valve),
            ];
            let outputs = outputs.into_iter().map(|(id, f)| {
                (id.to_owned(), SimOutput { on: on.contains(&id), function_hint: Some(f) })
            });
            RelayWorld { outputs: outputs.collect() }.write(&path)
        };
        let room = |valve: &str| {
            let by = HeatedBy::All(vec![valve.to_owned(), "boiler".to_owned()]);
            SimSource::new(RoomModel::new(18.0, 5.0), room_sensors(&["t"]), path.clone(), HOUR)
                .with_heated_by(by)
        };
        let (mut living, mut bedroom) = (room("valve-1"), room("valve-2"));
        // One real second is a simulated hour; every step below is a whole hour in one state
        // (the state is written before the first read of the step and stays).
        let t0 = Instant::now();
        let mut step = |s: u64, on: &[&str]| -> anyhow::Result<(f64, f64)> {
            set(on)?;
            let at = t0 + Duration::from_secs(s);
            living.read_at(at);
            bedroom.read_at(at);
            Ok((living.model().temp_c, bedroom.model().temp_c))
        };
        step(0, &[])?;
        step(1, &["boiler", "valve-1"])?;
        // The boiler heats the living room through its open valve; the bedroom's is shut.
        let (l, b) = step(2, &["boiler", "valve-1"])?;
        assert!(l > 20.0 && b < 17.0, "living {l}, bedroom {b}");
        // Both valves open, the boiler off (its overrun): neither room is heated.
        step(3, &["valve-1", "valve-2"])?;
        let (l2, b2) = step(4, &["valve-1", "valve-2"])?;
        assert!(l2 < l && b2 < b, "living {l2}, bedroom {b2}");
        // The bedroom's turn.
        step(5, &["boiler", "valve-2"])?;
        let (l3, b3) = step(6, &["boiler", "valve-2"])?;
        assert!(l3 < l2 && b3 > b2, "living {l3}, bedroom {b3}");

        // Without a rule the room is heated by any heat output, valves or not (as before).
        let mut any =
            SimSource::new(RoomModel::new(18.0, 5.0), room_sensors(&["t"]), path.clone(), HOUR);
        set(&["boiler"])?;
        any.read_at(t0);
        any.read_at(t0 + Duration::from_secs(1));
        assert!(any.model().temp_c > 20.0);
        Ok(())
    }

    #[test]
    fn unreadable_world_means_heater_off() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("world.json");
        std::fs::write(&path, "not json")?;
        let mut src =
            SimSource::new(RoomModel::new(20.0, 5.0), room_sensors(&["a"]), path.clone(), HOUR);
        let t0 = Instant::now();
        src.read_at(t0);
        src.read_at(t0 + Duration::from_secs(1));
        assert!(src.world_unreadable);
        assert!(src.model().temp_c < 20.0);
        world(&path, true)?;
        src.read_at(t0 + Duration::from_secs(2));
        assert!(!src.world_unreadable);
        Ok(())
    }
}
