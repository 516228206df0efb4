//! The benchmark's four house types: each a [`House`] parameter set and the equipment
//! protection its heater needs.
//!
//! The figures are typical published values, not one measured house:
//!
//! - heat-loss coefficients (W/K, fabric + ventilation) from the ranges of the UK's Standard
//!   Assessment Procedure (SAP 2012): about 250–350 W/K for an uninsulated solid-wall house of
//!   150 m², 150–200 W/K for a 1980s–2000s timber frame of 120 m², 100–130 W/K for a house
//!   built to the 2010s regulations;
//! - thermal masses from SAP 2012 Table 1e's thermal mass parameter (kJ/m²K of floor area):
//!   low 100 (timber frame, plasterboard), medium 250, high 450 (masonry walls and floors);
//!   the air node carries the air, furniture and inner linings, the mass node the rest;
//! - heater lag: a forced-air furnace delivers warm air within 1–2 minutes (heat exchanger,
//!   then ducts); cast-iron and steel-panel radiators on a boiler take 15–30 minutes to warm
//!   (their water content and the boiler's); a wet underfloor system in a 65 mm screed
//!   responds in hours (CIBSE Guide A and REHVA Guidebook 7 give 2–6 h); a heat pump on
//!   low-temperature radiators is in between;
//! - compressor protection: heat-pump makers ask for runs of 15–20 min at least and rests of
//!   5–10 min (anti-short-cycle timers), so the heat pump gets min on 20 min, min off 10 min;
//!   the others keep Hearth's defaults (3 min each).

use crate::control::Settings;

use super::house::House;

/// One house type of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HouseType {
    /// A light timber-frame house with a fast forced-air furnace.
    Timber,
    /// A heavy masonry house with radiators on a slow boiler.
    Masonry,
    /// A house heated by water pipes in a screed floor: hours of lag.
    Underfloor,
    /// A heat pump on low-temperature radiators: runs must be long.
    HeatPump,
}

impl HouseType {
    pub const ALL: [HouseType; 4] =
        [HouseType::Timber, HouseType::Masonry, HouseType::Underfloor, HouseType::HeatPump];

    /// The short name the benchmark table uses.
    pub fn name(self) -> &'static str {
        match self {
            HouseType::Timber => "timber, forced air",
            HouseType::Masonry => "masonry, radiators",
            HouseType::Underfloor => "underfloor",
            HouseType::HeatPump => "heat pump",
        }
    }

    /// The house at `start_c`, in equilibrium.
    pub(crate) fn house(self, start_c: f64) -> House {
        let base = House::typical(start_c);
        match self {
            // 120 m², low thermal mass (100 kJ/m²K ≈ 12 MJ/K, a third of it in the linings and
            // furniture that follow the air), 180 W/K; a 15 kW furnace (40–60 kBtu/h is the
            // usual size), 90 s heat exchanger, 30 s ducts.
            HouseType::Timber => House {
                c_air: 3.0e6,
                c_mass: 9.0e6,
                h_air_mass: 2500.0,
                ua_air: 80.0,
                ua_mass: 100.0,
                heat_w: 15_000.0,
                heat_tau_s: 90.0,
                emitter_tau_s: 30.0,
                ..base
            },
            // 150 m², high thermal mass (450 kJ/m²K ≈ 67 MJ/K) with masonry inner walls the air
            // exchanges with closely (≈ 600 m² at ~13 W/m²K), 300 W/K; an 18 kW boiler (5 min
            // to heat its water) and cast-iron radiators (20 min).
            HouseType::Masonry => House {
                c_air: 5.0e6,
                c_mass: 62.0e6,
                h_air_mass: 8000.0,
                ua_air: 100.0,
                ua_mass: 200.0,
                heat_w: 18_000.0,
                heat_tau_s: 300.0,
                emitter_tau_s: 1200.0,
                ..base
            },
            // 130 m², medium-high thermal mass (≈ 35 MJ/K), 115 W/K (2010s regulations); 7 kW
            // into a screed: the water in 1 h, the screed's surface 1.5 h after it.
            HouseType::Underfloor => House {
                c_air: 3.5e6,
                c_mass: 32.0e6,
                h_air_mass: 3000.0,
                ua_air: 50.0,
                ua_mass: 65.0,
                heat_w: 7000.0,
                heat_tau_s: 3600.0,
                emitter_tau_s: 5400.0,
                ..base
            },
            // 100 m², medium thermal mass (250 kJ/m²K = 25 MJ/K), 150 W/K; a 6 kW (thermal)
            // air-to-water heat pump (10 min to bring its flow up) on oversized radiators
            // (25 min).
            HouseType::HeatPump => House {
                c_air: 3.0e6,
                c_mass: 22.0e6,
                h_air_mass: 2500.0,
                ua_air: 60.0,
                ua_mass: 90.0,
                heat_w: 6000.0,
                heat_tau_s: 600.0,
                emitter_tau_s: 1500.0,
                ..base
            },
        }
    }

    /// The protection settings its heater needs, over `s`.
    pub(crate) fn protection(self, s: Settings) -> Settings {
        match self {
            HouseType::HeatPump => Settings { min_on_s: 1200, min_off_s: 600, ..s },
            _ => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// °C the air gains in `hours` of heating from equilibrium at 17 °C with 0 °C outside, and
    /// loses in `hours` unheated from 21 °C.
    fn rates(t: HouseType, hours: f64) -> (f64, f64) {
        let steps = (hours * 3600.0) as usize;
        // The mass where it settles under the air with 0 °C outside.
        let settled = |air: f64| {
            let mut h = t.house(air);
            h.mass_c = h.h_air_mass * air / (h.h_air_mass + h.ua_mass);
            h
        };
        let mut h = settled(17.0);
        for _ in 0..steps {
            h.step(1.0, 0.0, true, false);
        }
        let warmed = h.air_c - 17.0;
        let mut h = settled(21.0);
        for _ in 0..steps {
            h.step(1.0, 0.0, false, false);
        }
        (warmed, 21.0 - h.air_c)
    }

    #[test]
    fn each_house_warms_and_cools_as_its_type_does() {
        // (type, hours, warms at least, at most, cools at least, at most), °C. The underfloor
        // house goes on cooling in its first hour of heating: the screed is still warming.
        let cases = [
            (HouseType::Timber, 1.0, 2.5, 8.0, 0.5, 2.5),
            (HouseType::Masonry, 1.0, 0.8, 3.0, 0.2, 1.2),
            (HouseType::Underfloor, 1.0, -1.0, 0.6, 0.1, 1.0),
            (HouseType::Underfloor, 4.0, 1.0, 5.0, 0.3, 3.0),
            (HouseType::HeatPump, 1.0, 0.4, 2.5, 0.2, 1.5),
        ];
        for (t, hours, lo, hi, cool_lo, cool_hi) in cases {
            let (warmed, cooled) = rates(t, hours);
            println!(
                "{}: {hours} h: {warmed:+.2} °C heated, {:+.2} °C unheated",
                t.name(),
                -cooled
            );
            assert!((lo..hi).contains(&warmed), "{} warmed {warmed}", t.name());
            assert!((cool_lo..cool_hi).contains(&cooled), "{} cooled {cooled}", t.name());
        }
    }
}
