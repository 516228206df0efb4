//! A house, its weather and its sensors: deterministic for a seed, no external crates.

use std::f64::consts::PI;

/// xorshift64* seeded through splitmix64: small, fast, deterministic; not for secrets.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        // splitmix64 spreads small seeds (0, 1, 2) over the state space; the state must not be 0.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 1 } else { z })
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-12);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
    }
}

/// Outdoor temperature: a daily sinusoid (coldest before dawn) plus multi-day weather swings
/// (an Ornstein–Uhlenbeck process: fronts come and go over days).
#[derive(Debug, Clone)]
pub(crate) struct Weather {
    mean_c: f64,
    daily_amplitude_c: f64,
    swing_c: f64,
    swing_sd_c: f64,
    swing_tau_s: f64,
}

impl Weather {
    /// A winter month of a temperate climate.
    pub(crate) fn winter() -> Self {
        Self {
            mean_c: 2.0,
            daily_amplitude_c: 3.5,
            swing_c: 0.0,
            swing_sd_c: 4.0,
            swing_tau_s: 2.5 * 86_400.0,
        }
    }

    /// Advance the swing by `dt_s`.
    pub(crate) fn step(&mut self, dt_s: f64, rng: &mut Rng) {
        let a = dt_s / self.swing_tau_s;
        self.swing_c += -self.swing_c * a + self.swing_sd_c * (2.0 * a).sqrt() * rng.normal();
    }

    /// The temperature at `second_of_day` (0..86400, UTC), °C.
    pub(crate) fn outdoor_c(&self, second_of_day: f64) -> f64 {
        let hours = second_of_day / 3600.0;
        // Coldest at 05:00, warmest at 17:00.
        self.mean_c - self.daily_amplitude_c * (2.0 * PI * (hours - 5.0) / 24.0).cos()
            + self.swing_c
    }
}

/// Two-node thermal model: the air (with furniture and inner surfaces) and the building mass,
/// losing heat to outside; a heater whose output lags (radiators warming up), an optional air
/// conditioner.
#[derive(Debug, Clone)]
pub(crate) struct House {
    /// Heat capacity of the air node, J/K.
    pub(crate) c_air: f64,
    /// Heat capacity of the mass node, J/K.
    pub(crate) c_mass: f64,
    /// Air ↔ mass conductance, W/K.
    pub(crate) h_air_mass: f64,
    /// Air → outside (windows, ventilation), W/K.
    pub(crate) ua_air: f64,
    /// Mass → outside (walls, roof), W/K.
    pub(crate) ua_mass: f64,
    /// Furnace output, W.
    pub(crate) heat_w: f64,
    /// Time constant of the heat source (burner, compressor, boiler water), s.
    pub(crate) heat_tau_s: f64,
    /// Time constant of the emitter in series with it (ducts, radiators, a screed), s; 0: none.
    pub(crate) emitter_tau_s: f64,
    /// Air-conditioner output, W (0: none).
    pub(crate) cool_w: f64,
    pub(crate) cool_tau_s: f64,
    /// People, appliances, W.
    pub(crate) gains_w: f64,
    pub(crate) air_c: f64,
    pub(crate) mass_c: f64,
    pub(super) heat_out_w: f64,
    pub(super) emitter_w: f64,
    pub(super) cool_out_w: f64,
}

impl House {
    /// A detached house: ~9 MJ/K, UA 150 W/K, 10 kW furnace with radiators. At 0 °C outside it
    /// warms about 3 °C/h from 17 °C and cools about 1.2 °C/h from 21 °C.
    pub(crate) fn typical(start_c: f64) -> Self {
        Self {
            c_air: 2.5e6,
            c_mass: 7.0e6,
            h_air_mass: 2000.0,
            ua_air: 100.0,
            ua_mass: 50.0,
            heat_w: 10_000.0,
            heat_tau_s: 180.0,
            emitter_tau_s: 0.0,
            cool_w: 0.0,
            cool_tau_s: 120.0,
            gains_w: 200.0,
            air_c: start_c,
            mass_c: start_c,
            heat_out_w: 0.0,
            emitter_w: 0.0,
            cool_out_w: 0.0,
        }
    }

    /// The heat the emitter gives the room now, W.
    pub(crate) fn heat_delivered_w(&self) -> f64 {
        if self.emitter_tau_s > 0.0 { self.emitter_w } else { self.heat_out_w }
    }

    /// Explicit Euler; stable for `dt_s` well below c_air / (h_air_mass + ua_air) ≈ 6 min.
    pub(crate) fn step(&mut self, dt_s: f64, outdoor_c: f64, heat: bool, cool: bool) {
        let heat_target = if heat { self.heat_w } else { 0.0 };
        let cool_target = if cool { self.cool_w } else { 0.0 };
        self.heat_out_w += (heat_target - self.heat_out_w) * (dt_s / self.heat_tau_s).min(1.0);
        if self.emitter_tau_s > 0.0 {
            self.emitter_w +=
                (self.heat_out_w - self.emitter_w) * (dt_s / self.emitter_tau_s).min(1.0);
        }
        self.cool_out_w += (cool_target - self.cool_out_w) * (dt_s / self.cool_tau_s).min(1.0);
        let to_mass = self.h_air_mass * (self.air_c - self.mass_c);
        let air_w = self.heat_delivered_w() - self.cool_out_w + self.gains_w
            - to_mass
            - self.ua_air * (self.air_c - outdoor_c);
        let mass_w = to_mass - self.ua_mass * (self.mass_c - outdoor_c);
        self.air_c += air_w * dt_s / self.c_air;
        self.mass_c += mass_w * dt_s / self.c_mass;
    }
}

/// A DS18B20 in a room: its own thermal lag, noise, 1/16 °C steps, a bias (a colder corner),
/// and now and then the 85 °C power-on value.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub(crate) id: &'static str,
    pub(crate) name: &'static str,
    pub(crate) bias_c: f64,
    pub(crate) tau_s: f64,
    pub(crate) noise_c: f64,
    /// Chance per reading of the power-on value.
    pub(crate) glitch: f64,
    state_c: Option<f64>,
}

impl Probe {
    pub(crate) fn new(id: &'static str, name: &'static str, bias_c: f64) -> Self {
        Self { id, name, bias_c, tau_s: 120.0, noise_c: 0.05, glitch: 0.002, state_c: None }
    }

    pub(crate) fn step(&mut self, dt_s: f64, air_c: f64) {
        let target = air_c + self.bias_c;
        let s = self.state_c.get_or_insert(target);
        *s += (target - *s) * (dt_s / self.tau_s).min(1.0);
    }

    pub(crate) fn read(&self, rng: &mut Rng) -> f64 {
        if rng.uniform() < self.glitch {
            return 85.0;
        }
        let v = self.state_c.unwrap_or(0.0) + self.noise_c * rng.normal();
        (v * 16.0).round() / 16.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_house_has_realistic_rates() {
        // Start in equilibrium at 17 °C with 0 °C outside, then heat for an hour.
        let mut h = House::typical(17.0);
        h.mass_c = 17.0 - 0.2;
        for _ in 0..3600 {
            h.step(1.0, 0.0, true, false);
        }
        let warmed = h.air_c - 17.0;
        assert!((2.0..5.0).contains(&warmed), "warmed {warmed} °C in an hour");
        let mut h = House::typical(21.0);
        for _ in 0..3600 {
            h.step(1.0, 0.0, false, false);
        }
        let cooled = 21.0 - h.air_c;
        assert!((0.5..2.0).contains(&cooled), "cooled {cooled} °C in an hour");
    }

    #[test]
    fn the_generator_is_deterministic_and_spread() {
        let a: Vec<u64> = (0..4).scan(Rng::new(1), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).scan(Rng::new(1), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
        let mut r = Rng::new(7);
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.05, "{mean} {var}");
    }
}
