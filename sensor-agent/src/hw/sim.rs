//! A simulated room heated by the simulated relay agent's heater.
//!
//! Not random numbers: a first-order thermal model,
//! `dT/dt = heat_gain·[heater on] − (T − T_outside)/tau`,
//! so the engine's control loop sees a room that warms while it heats and cools towards the
//! outside temperature when it stops, as a real house does. The heater state comes from the
//! world file the simulated relay agent writes ([`RelayWorld`]).

use std::path::PathBuf;
use std::time::Instant;

use hearth_common::simworld::RelayWorld;
use hearth_proto::relays::RelayFunction;

use super::{RawReading, TemperatureSource};

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

/// A DS18B20 at 12 bit resolves 1/16 °C.
fn round_to_sixteenth(c: f64) -> f64 {
    (c * 16.0).round() / 16.0
}

/// The simulated sensors in the simulated room.
#[derive(Debug)]
pub struct SimSource {
    model: RoomModel,
    sensor_ids: Vec<String>,
    world: PathBuf,
    time_scale: f64,
    /// The previous read: when, and whether the heater was on then.
    last: Option<(Instant, bool)>,
    /// True while the world file is unreadable, so that is logged once, not at every read.
    world_unreadable: bool,
}

impl SimSource {
    /// Simulate `model` with one sensor per id, the heater state from the `world` file, and
    /// `time_scale` simulated seconds per real second.
    pub fn new(model: RoomModel, sensor_ids: Vec<String>, world: PathBuf, time_scale: f64) -> Self {
        Self { model, sensor_ids, world, time_scale, last: None, world_unreadable: false }
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
        self.sensor_ids
            .iter()
            .enumerate()
            .map(|(i, id)| RawReading {
                id: id.clone(),
                kind: "simulated".to_owned(),
                value: Ok(round_to_sixteenth(self.model.temp_c + OFFSETS_C[i % OFFSETS_C.len()])),
            })
            .collect()
    }

    fn heater_on(&mut self) -> bool {
        match RelayWorld::read(&self.world) {
            Ok(world) => {
                if std::mem::take(&mut self.world_unreadable) {
                    tracing::info!(path = %self.world.display(), "simulated world file readable again");
                }
                world.is_on(RelayFunction::Heat)
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hearth_common::simworld::SimOutput;

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
        let ids = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
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
    fn unreadable_world_means_heater_off() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("world.json");
        std::fs::write(&path, "not json")?;
        let mut src =
            SimSource::new(RoomModel::new(20.0, 5.0), vec!["a".into()], path.clone(), HOUR);
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
