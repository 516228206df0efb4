//! Other open thermostats' control laws, reproduced from their published code for the
//! benchmark only (they are not offered to users). Each sees what Hearth's own algorithms see:
//! the effective temperature of Hearth's sensor fusion, the heating setpoint in force, and (TPI)
//! the outdoor temperature, as from an outdoor probe.

/// Home Assistant's `generic_thermostat` (`homeassistant/components/generic_thermostat/`
/// of home-assistant/core, `climate.py` `_async_control_heating`, constants in `const.py`):
/// heat on when `target >= current + cold_tolerance`, off when `current >= target +
/// hot_tolerance`, and no switch before the state has lasted `min_cycle_duration`.
#[derive(Debug, Clone)]
pub(crate) struct GenericThermostat {
    /// `cold_tolerance`: `DEFAULT_TOLERANCE = 0.3` in `const.py`.
    pub(crate) cold_tolerance_c: f64,
    /// `hot_tolerance`: `DEFAULT_TOLERANCE = 0.3` in `const.py`.
    pub(crate) hot_tolerance_c: f64,
    /// `min_cycle_duration` has no default (switching whenever the tolerance says); the
    /// benchmark sets it to the house's protection times, as a careful user would.
    pub(crate) min_cycle_s: i64,
    on: bool,
    /// Virtual second of the last switch.
    since_s: Option<i64>,
}

impl GenericThermostat {
    pub(crate) fn new(min_cycle_s: i64) -> Self {
        Self { cold_tolerance_c: 0.3, hot_tolerance_c: 0.3, min_cycle_s, on: false, since_s: None }
    }

    /// The heater's state after a new reading at second `now_s`.
    pub(crate) fn step(&mut self, now_s: i64, current_c: Option<f64>, target_c: f64) -> bool {
        // A missing reading changes nothing (HA keeps the heater as it is).
        let Some(current) = current_c else { return self.on };
        if self.since_s.is_some_and(|s| now_s - s < self.min_cycle_s) {
            return self.on;
        }
        let too_cold = target_c >= current + self.cold_tolerance_c;
        let too_hot = current >= target_c + self.hot_tolerance_c;
        let next = if self.on { !too_hot } else { too_cold };
        if next != self.on {
            self.on = next;
            self.since_s = Some(now_s);
        }
        self.on
    }
}

/// versatile_thermostat's TPI (jmcollin78/versatile_thermostat,
/// `custom_components/versatile_thermostat/prop_algorithm.py`, `PropAlgorithm.calculate`):
/// at the start of every cycle `on_percent = coef_int·(target − current) + coef_ext·(target −
/// outdoor)`, clamped to 0..1; the heater runs `on_percent · cycle` seconds, then rests. An on
/// time shorter than `minimal_activation_delay` is no run at all.
#[derive(Debug, Clone)]
pub(crate) struct Tpi {
    /// `tpi_coef_int`: 0.6 by default (`documentation/en/algorithms.md`).
    pub(crate) coef_int: f64,
    /// `tpi_coef_ext`: 0.01 by default (same page).
    pub(crate) coef_ext: f64,
    /// `cycle_min`: 5 minutes by default (the configuration schema's default).
    pub(crate) cycle_s: i64,
    /// `minimal_activation_delay`: 10 s by default (the configuration schema's default).
    pub(crate) minimal_activation_s: f64,
    cycle_start_s: Option<i64>,
    on_s: f64,
}

impl Tpi {
    pub(crate) fn new() -> Self {
        Self {
            coef_int: 0.6,
            coef_ext: 0.01,
            cycle_s: 5 * 60,
            minimal_activation_s: 10.0,
            cycle_start_s: None,
            on_s: 0.0,
        }
    }

    /// The share of the cycle to heat.
    pub(crate) fn on_percent(&self, current_c: f64, target_c: f64, outdoor_c: f64) -> f64 {
        let p = self.coef_int * (target_c - current_c) + self.coef_ext * (target_c - outdoor_c);
        p.clamp(0.0, 1.0)
    }

    /// The heater's state at second `now_s`.
    pub(crate) fn step(
        &mut self,
        now_s: i64,
        current_c: Option<f64>,
        target_c: f64,
        outdoor_c: f64,
    ) -> bool {
        let due = self.cycle_start_s.is_none_or(|s| now_s - s >= self.cycle_s);
        if due {
            self.cycle_start_s = Some(now_s);
            // Without a temperature the algorithm heats 0 % (its `calculate` with None).
            let p = current_c.map_or(0.0, |c| self.on_percent(c, target_c, outdoor_c));
            let on_s = p * self.cycle_s as f64;
            self.on_s = if on_s < self.minimal_activation_s { 0.0 } else { on_s };
        }
        let into = now_s - self.cycle_start_s.unwrap_or(now_s);
        (into as f64) < self.on_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_thermostat_follows_its_tolerances_and_min_cycle() {
        // Target 21 °C, tolerances 0.3 °C, min cycle 180 s; readings every 30 s. Checked by
        // hand against `_async_control_heating`: on at 20.7 (21 >= 20.7 + 0.3), not at 20.75;
        // off at 21.3, not at 21.25; a switch waits for 180 s in the state.
        let mut g = GenericThermostat::new(180);
        let trace = [
            (0, 20.75, false),
            (30, 20.7, true),
            (60, 21.4, true), // too hot, but on for only 30 s
            (180, 21.4, true),
            (210, 21.25, true), // 180 s on, but in the band: stays on
            (240, 21.3, false),
            (270, 20.5, false), // too cold, but off for only 30 s
            (420, 20.5, true),
        ];
        for (t, temp, want) in trace {
            assert_eq!(g.step(t, Some(temp), 21.0), want, "at {t} s, {temp} °C");
        }
        assert!(g.step(900, None, 21.0), "a missing reading changes nothing");
    }

    #[test]
    fn tpi_runs_its_share_of_each_cycle() {
        // Target 20, room 19.5, outdoor 5: 0.6·0.5 + 0.01·15 = 0.45 → 135 s of 300.
        let mut t = Tpi::new();
        assert!((t.on_percent(19.5, 20.0, 5.0) - 0.45).abs() < 1e-9);
        let trace = [(0, true), (120, true), (135, false), (299, false)];
        for (s, want) in trace {
            assert_eq!(t.step(s, Some(19.5), 20.0, 5.0), want, "at {s} s");
        }
        // Next cycle: room 20.2, outdoor 15: 0.6·(−0.2) + 0.01·5 < 0 → 0 %.
        assert!(!t.step(300, Some(20.2), 20.0, 15.0));
        // 20.1, outdoor 14: −0.06 + 0.06 = 0.0…; 19.99, 15: 0.006 + 0.05 → 16.8 s ≥ 10 s: runs.
        assert!(t.step(600, Some(19.99), 20.0, 15.0));
        assert!(!t.step(630, Some(19.99), 20.0, 15.0));
        // 20.05, outdoor 17: −0.03 + 0.03 ≈ 0 → under 10 s: no run. Cold room: all cycle.
        assert!(!t.step(900, Some(20.05), 20.0, 17.0));
        assert!(t.step(1200, Some(17.0), 20.0, 0.0) && t.step(1470, Some(17.0), 20.0, 0.0));
        // No temperature: 0 %.
        assert!(!t.step(1500, None, 20.0, 0.0));
    }
}
