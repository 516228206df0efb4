//! The control benchmark: every house type of `houses`, every Hearth algorithm and the two
//! baselines, the same seeded weather and sensor noise for all, in one table.

use std::fmt;

use super::{Controller, HouseType, SimReport, algorithms, run};

/// The algorithm the goal is checked for.
pub(crate) const CANDIDATE: &str = "anticipate";

/// Every run of a benchmark.
#[derive(Debug, Clone)]
pub struct Bench {
    pub reports: Vec<SimReport>,
}

/// Run the benchmark: `days` of winter with `seed`, per house type and controller.
pub fn bench(days: u32, seed: u64) -> Result<Bench, String> {
    let mut controllers = vec![Controller::GenericThermostat, Controller::Tpi];
    controllers.extend(algorithms().into_iter().map(Controller::Algorithm));
    let mut reports = Vec::new();
    for house in HouseType::ALL {
        for c in &controllers {
            reports.push(run(days, seed, c, Some(house))?);
        }
    }
    Ok(Bench { reports })
}

impl Bench {
    fn find(&self, house: HouseType, label: &str) -> Option<&SimReport> {
        self.reports.iter().find(|r| r.house == Some(house) && r.algorithm == label)
    }

    /// What the candidate misses of the goal in `house` (empty: met): discomfort at most a
    /// third of generic_thermostat's and below TPI's, no more cycles per hour than
    /// generic_thermostat, at most 2 % more energy than hysteresis, no protection violation.
    pub fn misses(&self, house: HouseType) -> Vec<String> {
        let (Some(me), Some(generic), Some(tpi), Some(hyst)) = (
            self.find(house, CANDIDATE),
            self.find(house, Controller::GenericThermostat.label()),
            self.find(house, Controller::Tpi.label()),
            self.find(house, "hysteresis"),
        ) else {
            return vec!["not run".to_owned()];
        };
        let mut misses = Vec::new();
        if me.discomfort_kh_per_day > generic.discomfort_kh_per_day / 3.0 {
            misses.push(format!(
                "discomfort {:.2} > ⅓ of generic_thermostat's {:.2}",
                me.discomfort_kh_per_day, generic.discomfort_kh_per_day
            ));
        }
        if me.discomfort_kh_per_day >= tpi.discomfort_kh_per_day {
            misses.push(format!(
                "discomfort {:.2} ≥ TPI's {:.2}",
                me.discomfort_kh_per_day, tpi.discomfort_kh_per_day
            ));
        }
        if me.cycles_per_hour > generic.cycles_per_hour {
            // In cycles too: rates a cycle or two apart print alike to two decimals.
            misses.push(format!(
                "{:.2} cycles/h > generic_thermostat's {:.2} ({} cycles against {})",
                me.cycles_per_hour, generic.cycles_per_hour, me.heat_cycles, generic.heat_cycles
            ));
        }
        if me.energy_kwh > hyst.energy_kwh * 1.02 {
            misses.push(format!(
                "energy {:.0} kWh > hysteresis's {:.0} + 2 %",
                me.energy_kwh, hyst.energy_kwh
            ));
        }
        if me.violations() > 0 {
            misses.push(format!("{} protection violations", me.violations()));
        }
        misses
    }
}

impl fmt::Display for Bench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = self.reports.first() {
            writeln!(
                f,
                "{} days, seed {} (outdoor {:.1}..{:.1} °C, mean {:.1} °C); occupied: comfort \
                 setpoint 21 °C, setback 17 °C",
                r.days, r.seed, r.outdoor_min_c, r.outdoor_max_c, r.outdoor_mean_c
            )?;
            writeln!(f)?;
        }
        writeln!(
            f,
            "| house | algorithm | discomfort K·h/day | within ±0.5 °C | largest overshoot °C \
             | cycles/h | energy kWh | Wh per K·h kept | protection violations | comfort start \
             p10/p50/p90 min |"
        )?;
        writeln!(f, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")?;
        for r in &self.reports {
            let pct = |p: f64| {
                r.arrival_percentile(p).map(|v| format!("{v:+.0}")).unwrap_or_else(|| "-".into())
            };
            writeln!(
                f,
                "| {} | {} | {:.2} | {:.1} % | {:.2} | {:.2} | {:.0} | {:.1} | {} | {} / {} / {} |",
                r.house.map_or("single", HouseType::name),
                r.algorithm,
                r.discomfort_kh_per_day,
                r.comfort * 100.0,
                r.max_overshoot_c,
                r.cycles_per_hour,
                r.energy_kwh,
                r.energy_kwh * 1000.0 / r.delta_t_kh.max(1.0),
                r.violations(),
                pct(10.0),
                pct(50.0),
                pct(90.0),
            )?;
        }
        writeln!(f)?;
        write!(f, "Goal for {CANDIDATE}:")?;
        for house in HouseType::ALL {
            let misses = self.misses(house);
            let verdict = if misses.is_empty() {
                "met".to_owned()
            } else {
                format!("missed ({})", misses.join("; "))
            };
            write!(f, "\n- {}: {verdict}", house.name())?;
            let found = self.find(house, CANDIDATE);
            if let Some((up, down, lag, _)) = found.and_then(|r| r.learned_coast) {
                // `max(0.0)`: a coast that turned the other way prints as 0, not as "−-0.00".
                write!(
                    f,
                    "; coast learned: +{:.2} / −{:.2} °C, peak {lag:.0} min after a switch-off",
                    up.max(0.0),
                    down.max(0.0)
                )?;
            }
            if let Some(band) = found.and_then(|r| r.learned_band_c) {
                let words = found.map(SimReport::cycle_words).unwrap_or_default();
                write!(f, "; switching band learned: {band:.2} °C{words}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_house_and_controller_is_run_and_hearth_keeps_its_protections() {
        let b = bench(3, 1).unwrap_or_else(|e| panic!("{e}"));
        let controllers = 2 + algorithms().len();
        assert_eq!(b.reports.len(), HouseType::ALL.len() * controllers);
        for r in &b.reports {
            if algorithms().contains(&r.algorithm) {
                assert_eq!(r.violations(), 0, "{r}");
            }
            assert!(r.heat_cycles > 0 && r.energy_kwh > 0.0, "{r}");
        }
        let table = b.to_string();
        assert!(table.contains("| heat pump | anticipate |"), "{table}");
        assert!(table.contains("Goal for anticipate:"), "{table}");
    }
}
