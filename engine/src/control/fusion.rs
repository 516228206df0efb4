//! The effective temperature: which sensors count, and their weighted mean.

use hearth_proto::Timestamp;
use hearth_proto::control::{Exclusion, SensorInput, SensorSource, System};
use hearth_proto::history::Run;
use hearth_proto::schedules::SensorWeight;
use jiff::SignedDuration;

use super::text::{span, temp};
use super::{STUCK_RUNTIME, SensorSnapshot};
use crate::readings::{calibrated, stale_age};

/// The DS18B20 reports 85.0 °C after power-on, before its first conversion.
const POWER_ON_C: f64 = 85.0;
/// The DS18B20 family's "no device / CRC error" value in many drivers.
const READ_ERROR_C: f64 = -127.0;
/// What a room can plausibly read (the DS18B20's range tops out at 125, rooms don't).
const PLAUSIBLE_C: std::ops::Range<f64> = -40.0..85.0;
/// Outliers are only judged against a median of at least this many sensors: with two, there
/// is no telling which one is wrong.
const OUTLIER_MIN_SENSORS: usize = 3;

/// The sensors' verdict.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fused {
    /// The weighted mean of the sensors used; None: sensor-loss mode.
    pub(crate) effective: Option<f64>,
    pub(crate) source: SensorSource,
    /// Every known sensor (and every selected one, known or not), in the order given.
    pub(crate) inputs: Vec<SensorInput>,
    /// The effective temperature for reason texts: `living room 19.2 °C`,
    /// `office 19.1, bedroom 18.7 (weighted 19.0 °C)`.
    pub(crate) label: String,
    /// Why no sensor counts, for sensor-loss reasons: `living room stale 14 min, office failed`.
    pub(crate) loss: String,
}

/// A sensor's health, before selection.
fn health(
    now: Timestamp,
    snap: &SensorSnapshot,
    stale_after: jiff::SignedDuration,
) -> Result<f64, (Exclusion, String, String)> {
    let Some(at) = snap.at else {
        return Err((Exclusion::NoReading, "no reading yet".into(), "no reading".into()));
    };
    if let Some(age) = stale_age(now, at, stale_after) {
        let ago = span(age.as_secs());
        return Err((
            Exclusion::Stale,
            format!("stale: last reading {ago} ago"),
            format!("stale {ago}"),
        ));
    }
    let Some(v) = snap.value else {
        return Err((
            Exclusion::Failed,
            "failed: the newest reading is null".into(),
            "failed".into(),
        ));
    };
    let why = if v == POWER_ON_C {
        Some(format!("{} °C is the DS18B20 power-on value", temp(v)))
    } else if v == READ_ERROR_C {
        Some(format!("{} °C is the DS18B20 read-error value", temp(v)))
    } else if !PLAUSIBLE_C.contains(&v) {
        // NaN lands here too.
        Some(format!("{} °C is outside −40..85 °C", temp(v)))
    } else {
        None
    };
    match why {
        Some(why) => Err((
            Exclusion::Implausible,
            format!("implausible: {why}"),
            format!("implausible {} °C", temp(v)),
        )),
        None => Ok(calibrated(v, snap.offset_c)),
    }
}

/// How long each system ran within `[since, now]`, by the recorded runs.
fn runtime(runs: &[Run], since: Timestamp, now: Timestamp) -> [(System, SignedDuration); 2] {
    [System::Heat, System::Cool].map(|system| {
        let ran = runs
            .iter()
            .filter(|r| r.system == system)
            .map(|r| {
                let (start, end) = (r.start.max(since), r.end.unwrap_or(now).min(now));
                if end > start { end.duration_since(start) } else { SignedDuration::ZERO }
            })
            .sum();
        (system, ran)
    })
}

/// A judged sensor whose value has stood still while the equipment ran [`STUCK_RUNTIME`] in
/// all: the detail and short texts of its exclusion.
///
/// Excluded rather than only flagged: a probe stuck below the setpoint keeps the heat on
/// without end (the ceiling judges the same frozen value), one stuck above it keeps the house
/// cold. Left out, it costs what any failed probe costs: the other sensors decide, or
/// sensor-loss mode runs its bounded duty. A real room moves by a DS18B20 step (1/16 °C, 1/2 °C
/// at 9-bit resolution) within an hour of heating, and the moment the value changes the probe
/// counts again, so a false verdict (a room at a plateau) undoes itself within a duty cycle.
fn stuck(snap: &SensorSnapshot, v: f64, runs: &[Run], now: Timestamp) -> Option<(String, String)> {
    let since = snap.value_since?;
    let ran = runtime(runs, since, now);
    let total: SignedDuration = ran.iter().map(|(_, d)| *d).sum();
    if total < STUCK_RUNTIME {
        return None;
    }
    let how = ran
        .iter()
        .filter(|(_, d)| !d.is_zero())
        .map(|(system, d)| {
            let what = match system {
                System::Heat => "the heating",
                System::Cool => "the cooling",
            };
            format!("{what} ran {}", span(d.as_secs()))
        })
        .collect::<Vec<_>>()
        .join(" and ");
    Some((
        format!(
            "stuck: {} °C unchanged for {} while {how}",
            temp(v),
            span(now.duration_since(since).as_secs())
        ),
        format!("stuck at {} °C", temp(v)),
    ))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

fn display_name(id: &str, name: Option<&str>) -> String {
    name.unwrap_or(id).to_owned()
}

/// Check every sensor and combine the selected ones. `selection` empty: every sensor, weight 1.
pub(crate) fn fuse(
    now: Timestamp,
    sensors: &[SensorSnapshot],
    selection: &[SensorWeight],
    stale_after: jiff::SignedDuration,
    outlier_c: f64,
    runs: &[Run],
) -> Fused {
    // Selected sensors the engine has never heard of still show, as "no reading".
    let mut all: Vec<SensorSnapshot> = sensors.to_vec();
    for sel in selection {
        if !all.iter().any(|s| s.id == sel.sensor_id) {
            all.push(SensorSnapshot {
                id: sel.sensor_id.clone(),
                name: None,
                value: None,
                at: None,
                value_since: None,
                weight: 1.0,
                offset_c: 0.0,
            });
        }
    }
    // No selection: every sensor with its own default weight; weight 0 means "only when a
    // rule names it" (an outdoor probe must not heat the house by default).
    let weight_of = |snap: &SensorSnapshot| -> Option<f64> {
        if selection.is_empty() {
            (snap.weight > 0.0).then_some(snap.weight)
        } else {
            selection.iter().find(|s| s.sensor_id == snap.id).map(|s| s.weight)
        }
    };

    let mut healths: Vec<Result<f64, (Exclusion, String, String)>> =
        all.iter().map(|s| health(now, s, stale_after)).collect();
    // Outliers are judged among the sensors meant to measure the same air: those the rule
    // names or, when it names none, those counting by default. A weight-0 probe (outdoors)
    // neither joins the median nor is judged by it.
    let judged: Vec<bool> = all
        .iter()
        .map(|s| {
            if selection.is_empty() {
                s.weight > 0.0
            } else {
                selection.iter().any(|w| w.sensor_id == s.id)
            }
        })
        .collect();
    // A stuck probe is judged among the same sensors: an outdoor probe that stands still
    // while the heat runs is no surprise. Before the median, which it must not pull.
    for ((h, snap), _) in healths.iter_mut().zip(&all).zip(&judged).filter(|(_, j)| **j) {
        if let Ok(v) = *h
            && let Some((detail, short)) = stuck(snap, v, runs, now)
        {
            *h = Err((Exclusion::Stuck, detail, short));
        }
    }
    let mut plausible: Vec<f64> = healths
        .iter()
        .zip(&judged)
        .filter(|(_, j)| **j)
        .filter_map(|(h, _)| h.as_ref().ok().copied())
        .collect();
    if plausible.len() >= OUTLIER_MIN_SENSORS {
        let mid = median(&mut plausible);
        for (h, _) in healths.iter_mut().zip(&judged).filter(|(_, j)| **j) {
            if let Ok(v) = *h {
                let off = (v - mid).abs();
                if off > outlier_c {
                    *h = Err((
                        Exclusion::Outlier,
                        format!(
                            "outlier: {} °C is {} °C from the median {} °C",
                            temp(v),
                            temp(off),
                            temp(mid)
                        ),
                        format!("outlier {} °C", temp(v)),
                    ));
                }
            }
        }
    }

    let mut inputs: Vec<SensorInput> = all
        .iter()
        .zip(&healths)
        .map(|(snap, h)| {
            let weight = weight_of(snap);
            let (excluded, detail) = match h {
                Ok(_) => (None, None),
                Err((e, d, _)) => (Some(*e), Some(d.clone())),
            };
            SensorInput {
                id: snap.id.clone(),
                name: snap.name.clone(),
                // Calibrated, as every view of the sensor shows it.
                value: snap.value.map(|v| calibrated(v, snap.offset_c)),
                at: snap.at,
                weight: weight.unwrap_or(0.0),
                selected: weight.is_some(),
                used: false,
                excluded,
                detail,
            }
        })
        .collect();

    // A weight that is not a positive number cannot count (the schedule API refuses them).
    let usable_selected: Vec<usize> = (0..all.len())
        .filter(|&i| healths[i].is_ok() && inputs[i].selected && inputs[i].weight > 0.0)
        .collect();
    let (source, used) = if !usable_selected.is_empty() {
        (SensorSource::Selected, usable_selected)
    } else {
        // Fallback: the usable sensors that count by default, with their default weights.
        let rest: Vec<usize> =
            (0..all.len()).filter(|&i| healths[i].is_ok() && all[i].weight > 0.0).collect();
        for &i in &rest {
            inputs[i].weight = all[i].weight;
        }
        (if rest.is_empty() { SensorSource::None } else { SensorSource::Fallback }, rest)
    };
    for (i, input) in inputs.iter_mut().enumerate() {
        if used.contains(&i) {
            input.used = true;
        } else if input.excluded.is_none() {
            input.excluded = Some(Exclusion::NotSelected);
            input.detail = Some(if selection.is_empty() {
                "default weight 0: counts only where a rule names it".to_owned()
            } else {
                "not selected by the rule in force".to_owned()
            });
            input.weight = 0.0;
        }
    }

    let value = |i: usize| healths[i].as_ref().ok().copied().unwrap_or(f64::NAN);
    let name = |i: usize| display_name(&all[i].id, all[i].name.as_deref());
    let total: f64 = used.iter().map(|&i| inputs[i].weight).sum();
    let effective = (!used.is_empty() && total > 0.0)
        .then(|| used.iter().map(|&i| value(i) * inputs[i].weight).sum::<f64>() / total);

    let label = match (effective, used.as_slice()) {
        (None, _) => String::new(),
        (Some(_), [one]) => format!("{} {} °C", name(*one), temp(value(*one))),
        (Some(e), many) => {
            let parts: Vec<String> =
                many.iter().map(|&i| format!("{} {}", name(i), temp(value(i)))).collect();
            let equal = many.iter().all(|&i| inputs[i].weight == inputs[many[0]].weight);
            let how = if equal { "mean" } else { "weighted" };
            format!("{} ({how} {} °C)", parts.join(", "), temp(e))
        }
    };
    let label = if source == SensorSource::Fallback && effective.is_some() {
        format!("{label} [fallback: no selected sensor usable]")
    } else {
        label
    };
    let loss = if all.is_empty() {
        "no sensor known".to_owned()
    } else {
        let parts: Vec<String> = (0..all.len())
            .filter_map(|i| healths[i].as_ref().err().map(|(_, _, short)| (i, short)))
            .map(|(i, short)| format!("{} {short}", name(i)))
            .collect();
        parts.join(", ")
    };
    Fused { effective, source, inputs, label, loss }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::constant(1_800_000_000, 0);

    fn snap(id: &str, value: Option<f64>, ago_s: Option<i64>) -> SensorSnapshot {
        SensorSnapshot {
            id: id.to_owned(),
            name: None,
            value,
            at: ago_s.map(|a| NOW - jiff::SignedDuration::from_secs(a)),
            value_since: ago_s.map(|a| NOW - jiff::SignedDuration::from_secs(a)),
            weight: 1.0,
            offset_c: 0.0,
        }
    }

    fn fuse_(sensors: &[SensorSnapshot], selection: &[SensorWeight]) -> Fused {
        fuse(NOW, sensors, selection, jiff::SignedDuration::from_secs(120), 5.0, &[])
    }

    fn sel(id: &str, weight: f64) -> SensorWeight {
        SensorWeight { sensor_id: id.to_owned(), weight }
    }

    #[test]
    fn every_exclusion_has_its_reason() {
        let sensors = [
            snap("fresh-a", Some(21.0), Some(10)),
            snap("fresh-b", Some(21.4), Some(10)),
            snap("fresh-c", Some(21.8), Some(10)),
            snap("never", None, None),
            snap("stale", Some(21.0), Some(14 * 60)),
            snap("failed", None, Some(10)),
            snap("power-on", Some(85.0), Some(10)),
            snap("read-error", Some(-127.0), Some(10)),
            snap("hot", Some(90.0), Some(10)),
            snap("outlier", Some(31.0), Some(10)),
        ];
        let f = fuse_(&sensors, &[]);
        let by_id = |id: &str| {
            f.inputs.iter().find(|i| i.id == id).cloned().unwrap_or_else(|| panic!("{id} missing"))
        };
        let cases = [
            ("never", Exclusion::NoReading, "no reading yet"),
            ("stale", Exclusion::Stale, "stale: last reading 14 min ago"),
            ("failed", Exclusion::Failed, "failed: the newest reading is null"),
            ("power-on", Exclusion::Implausible, "implausible: 85.0 °C is the DS18B20 power-on"),
            ("read-error", Exclusion::Implausible, "implausible: -127.0 °C is the DS18B20 read"),
            ("hot", Exclusion::Implausible, "implausible: 90.0 °C is outside −40..85 °C"),
            // The median of 21.0, 21.4, 21.8 and 31.0 is 21.6.
            ("outlier", Exclusion::Outlier, "outlier: 31.0 °C is 9.4 °C from the median 21.6 °C"),
        ];
        for (id, exclusion, detail) in cases {
            let input = by_id(id);
            assert_eq!(input.excluded, Some(exclusion), "{id}");
            assert!(!input.used, "{id}");
            let text = input.detail.unwrap_or_default();
            assert!(text.starts_with(detail), "{id}: {text}");
        }
        assert_eq!(f.source, SensorSource::Selected);
        assert_eq!(f.effective.map(|e| (e * 100.0).round()), Some(2140.0));
        assert_eq!(f.label, "fresh-a 21.0, fresh-b 21.4, fresh-c 21.8 (mean 21.4 °C)");
        assert_eq!(f.inputs.len(), sensors.len());
    }

    #[test]
    fn calibration_applies_after_the_plausibility_checks() {
        let mut living = snap("living", Some(20.0), Some(5));
        living.offset_c = -0.5;
        // 85.0 is the power-on value whatever the offset would make of it.
        let mut glitch = snap("glitch", Some(85.0), Some(5));
        glitch.offset_c = -0.5;
        let f = fuse_(&[living, glitch], &[]);
        assert_eq!(f.effective, Some(19.5));
        assert_eq!(f.inputs[0].value, Some(19.5), "inputs show the calibrated value");
        assert_eq!(f.inputs[1].excluded, Some(Exclusion::Implausible));
        assert_eq!(f.label, "living 19.5 °C");
    }

    #[test]
    fn default_weights_count_when_the_rule_names_no_sensor() {
        let mut hall = snap("hall", Some(20.0), Some(5));
        hall.weight = 3.0;
        let lounge = snap("lounge", Some(24.0), Some(5));
        let mut outdoor = snap("outdoor", Some(-5.0), Some(5));
        outdoor.weight = 0.0;
        let f = fuse_(&[hall.clone(), lounge.clone(), outdoor.clone()], &[]);
        assert_eq!(f.effective, Some(21.0), "(3 × 20 + 24) / 4");
        assert_eq!(f.inputs[2].excluded, Some(Exclusion::NotSelected));
        assert!(f.inputs[2].detail.as_deref().is_some_and(|d| d.contains("default weight 0")));

        // A rule naming the outdoor probe counts it, weight 0 by default or not.
        let f = fuse_(&[hall.clone(), lounge, outdoor.clone()], &[sel("outdoor", 1.0)]);
        assert_eq!(f.effective, Some(-5.0));

        // Fallback (the named sensor is stale): the default weights again, outdoor left out.
        let stale = snap("stale", Some(20.0), Some(600));
        let f = fuse_(&[hall, outdoor.clone(), stale], &[sel("stale", 1.0)]);
        assert_eq!((f.source, f.effective), (SensorSource::Fallback, Some(20.0)));
        assert_eq!(f.inputs[0].weight, 3.0);

        // Only a weight-0 sensor left: sensor loss, not heating by the outdoor temperature.
        let f = fuse_(&[outdoor], &[]);
        assert_eq!((f.source, f.effective), (SensorSource::None, None));
    }

    fn run(system: System, from_s_ago: i64, to_s_ago: Option<i64>) -> Run {
        let at = |ago: i64| NOW - jiff::SignedDuration::from_secs(ago);
        Run {
            system,
            start: at(from_s_ago),
            end: to_s_ago.map(at),
            start_temp_c: None,
            end_temp_c: None,
        }
    }

    #[test]
    fn a_value_that_stands_still_while_the_equipment_runs_is_stuck() {
        let fuse_runs = |sensors: &[SensorSnapshot], runs: &[Run]| {
            fuse(NOW, sensors, &[], jiff::SignedDuration::from_secs(120), 5.0, runs)
        };
        // Read 10 s ago, the same 18.5 °C for three hours.
        let mut hall = snap("hall", Some(18.5), Some(10));
        hall.value_since = Some(NOW - jiff::SignedDuration::from_hours(3));
        let lounge = snap("lounge", Some(20.0), Some(10));
        let mut outdoor = snap("outdoor", Some(-2.0), Some(10));
        outdoor.weight = 0.0;
        outdoor.value_since = hall.value_since;
        let sensors = [hall.clone(), lounge.clone(), outdoor];

        // The heat ran 40 min, then 25 min (still on), the cooling not at all: 65 min.
        let runs = [
            run(System::Heat, 2 * 3600, Some(2 * 3600 - 40 * 60)),
            run(System::Heat, 25 * 60, None),
        ];
        let f = fuse_runs(&sensors, &runs);
        assert_eq!(f.inputs[0].excluded, Some(Exclusion::Stuck));
        assert_eq!(
            f.inputs[0].detail.as_deref(),
            Some("stuck: 18.5 °C unchanged for 3 h 00 min while the heating ran 65 min")
        );
        assert_eq!(f.effective, Some(20.0), "the other sensor decides");
        // An outdoor probe (weight 0) standing still is no surprise.
        assert_eq!(f.inputs[2].excluded, Some(Exclusion::NotSelected));

        // Runs before the value last changed, or less than an hour in all, do not count.
        let before =
            [run(System::Heat, 5 * 3600, Some(3 * 3600 + 60)), run(System::Heat, 50 * 60, None)];
        assert!(fuse_runs(&sensors, &before).inputs[0].excluded.is_none());
        // No equipment ran: a steady room is a steady room.
        assert!(fuse_runs(&sensors, &[]).inputs[0].excluded.is_none());

        // The only sensor, stuck cold while the heat runs: sensor-loss mode, with the reason.
        let f = fuse_runs(
            &[hall.clone()],
            &[run(System::Cool, 4 * 3600, Some(3 * 3600)), run(System::Heat, 3600, None)],
        );
        assert_eq!((f.source, f.effective), (SensorSource::None, None));
        assert_eq!(f.loss, "hall stuck at 18.5 °C");
        assert!(
            f.inputs[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.ends_with("while the heating ran 60 min"))
        );

        // Its value moves: counted again at once.
        hall.value_since = Some(NOW - jiff::SignedDuration::from_secs(10));
        assert!(fuse_runs(&[hall], &runs).inputs[0].used);
    }

    #[test]
    fn two_sensors_never_make_an_outlier() {
        let f = fuse_(&[snap("a", Some(21.0), Some(1)), snap("b", Some(35.0), Some(1))], &[]);
        assert!(f.inputs.iter().all(|i| i.used));
        assert_eq!(f.effective, Some(28.0));
    }

    #[test]
    fn weighted_mean_of_the_selected_sensors_names_them() {
        let mut office = snap("28-1", Some(19.1), Some(5));
        office.name = Some("office".to_owned());
        let mut bedroom = snap("28-2", Some(18.7), Some(5));
        bedroom.name = Some("bedroom".to_owned());
        let other = snap("28-3", Some(22.0), Some(5));
        let f = fuse_(&[office, bedroom, other], &[sel("28-1", 3.0), sel("28-2", 1.0)]);
        assert_eq!(f.source, SensorSource::Selected);
        assert_eq!(f.label, "office 19.1, bedroom 18.7 (weighted 19.0 °C)");
        let third = &f.inputs[2];
        assert_eq!(
            (third.selected, third.used, third.excluded, third.weight),
            (false, false, Some(Exclusion::NotSelected), 0.0)
        );
        assert_eq!(f.inputs[0].weight, 3.0);
    }

    #[test]
    fn fallback_to_the_other_sensors_then_none() {
        let sensors = [snap("sel", Some(20.0), Some(600)), snap("other", Some(19.0), Some(5))];
        let f = fuse_(&sensors, &[sel("sel", 1.0)]);
        assert_eq!(f.source, SensorSource::Fallback);
        assert_eq!(f.effective, Some(19.0));
        assert!(f.inputs[1].used && !f.inputs[1].selected && f.inputs[1].weight == 1.0);
        assert_eq!(f.inputs[0].excluded, Some(Exclusion::Stale));
        assert!(f.label.contains("fallback"), "{}", f.label);

        let sensors = [snap("sel", Some(20.0), Some(600)), snap("other", None, Some(5))];
        let f = fuse_(&sensors, &[sel("sel", 1.0)]);
        assert_eq!((f.source, f.effective), (SensorSource::None, None));
        assert_eq!(f.loss, "sel stale 10 min, other failed");
    }

    #[test]
    fn an_unknown_selected_sensor_shows_as_never_read() {
        let f = fuse_(&[snap("a", Some(20.0), Some(5))], &[sel("ghost", 1.0)]);
        assert_eq!(f.source, SensorSource::Fallback);
        let ghost = &f.inputs[1];
        assert_eq!((ghost.id.as_str(), ghost.excluded), ("ghost", Some(Exclusion::NoReading)));
    }
}
