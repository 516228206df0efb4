//! Bang-bang control with a hysteresis band and minimum on/off times.

use hearth_proto::control::{Decision, Mode, ReasonCode, SensorInput};

use super::{Algorithm, Inputs};

/// Heat on below `setpoint − hysteresis`, off above `setpoint + hysteresis`, unchanged inside
/// the band; a minimum on/off time holds the current state until it has passed. The effective
/// temperature is the mean of the fresh sensors; with none, heat is off ("never keep the last
/// temperature forever").
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Hysteresis;

impl Algorithm for Hysteresis {
    fn decide(&self, inputs: &Inputs) -> Decision {
        let s = &inputs.settings;
        let sensors: Vec<SensorInput> = inputs
            .sensors
            .iter()
            .map(|snap| {
                let excluded = match (snap.value, snap.at) {
                    (_, None) => Some("no reading".to_owned()),
                    (_, Some(at)) if inputs.now.duration_since(at) > inputs.stale_after => {
                        Some(format!("stale: last reading at {at}"))
                    }
                    (None, Some(_)) => Some("failed: last reading was null".to_owned()),
                    (Some(_), Some(_)) => None,
                };
                SensorInput {
                    id: snap.id.clone(),
                    value: snap.value,
                    used: excluded.is_none(),
                    excluded,
                }
            })
            .collect();
        let used: Vec<f64> = sensors.iter().filter(|i| i.used).filter_map(|i| i.value).collect();
        let effective = (!used.is_empty()).then(|| used.iter().sum::<f64>() / used.len() as f64);

        let running_for = inputs.heat.since.map(|since| inputs.now.duration_since(since));
        let held = |min_s: u32| -> Option<i64> {
            let min = jiff::SignedDuration::from_secs(i64::from(min_s));
            running_for.filter(|d| *d < min).map(|d| (min - d).as_secs().max(1))
        };

        let (want, code, reason) = match (s.mode, effective) {
            (Mode::Off, _) => (false, ReasonCode::ModeOff, "heat off: mode is off".to_owned()),
            (Mode::Heat, None) => {
                (false, ReasonCode::NoSensors, "heat off: no fresh sensor reading".to_owned())
            }
            (Mode::Heat, Some(t)) if t < s.setpoint_c - s.hysteresis_c => (
                true,
                ReasonCode::BelowBand,
                format!("heat on: {t:.2} °C < {:.2} − {:.2} °C", s.setpoint_c, s.hysteresis_c),
            ),
            (Mode::Heat, Some(t)) if t > s.setpoint_c + s.hysteresis_c => (
                false,
                ReasonCode::AboveBand,
                format!("heat off: {t:.2} °C > {:.2} + {:.2} °C", s.setpoint_c, s.hysteresis_c),
            ),
            (Mode::Heat, Some(t)) => (
                inputs.heat.on,
                ReasonCode::InBand,
                format!(
                    "heat stays {}: {t:.2} °C within {:.2} ± {:.2} °C",
                    if inputs.heat.on { "on" } else { "off" },
                    s.setpoint_c,
                    s.hysteresis_c
                ),
            ),
        };

        // Minimum on/off times protect the equipment from short cycles. They do not hold heat
        // on when the mode is off or no sensor is fresh: safety first.
        let (heat, code, reason) = match (inputs.heat.on, want) {
            (true, false) if code != ReasonCode::ModeOff && code != ReasonCode::NoSensors => {
                match held(s.min_on_s) {
                    Some(left) => (
                        true,
                        ReasonCode::MinOnTime,
                        format!("heat held on: min on time, {left} s left ({reason})"),
                    ),
                    None => (false, code, reason),
                }
            }
            (false, true) => match held(s.min_off_s) {
                Some(left) => (
                    false,
                    ReasonCode::MinOffTime,
                    format!("heat held off: min off time, {left} s left ({reason})"),
                ),
                None => (true, code, reason),
            },
            _ => (want, code, reason),
        };

        Decision {
            at: inputs.now,
            heat,
            effective_temp_c: effective,
            setpoint_c: s.setpoint_c,
            reason_code: code,
            reason,
            sensors,
        }
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::Timestamp;
    use hearth_proto::control::ControlSettings;
    use jiff::SignedDuration;

    use super::*;
    use crate::control::{HeatState, SensorSnapshot};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn inputs(temps: &[Option<f64>], heat_on: bool, since: Option<i64>) -> Inputs {
        Inputs {
            now: t(1000),
            settings: ControlSettings {
                mode: Mode::Heat,
                setpoint_c: 20.0,
                hysteresis_c: 0.5,
                min_on_s: 120,
                min_off_s: 60,
            },
            sensors: temps
                .iter()
                .enumerate()
                .map(|(i, v)| SensorSnapshot { id: format!("s{i}"), value: *v, at: Some(t(990)) })
                .collect(),
            stale_after: SignedDuration::from_secs(60),
            heat: HeatState { on: heat_on, since: since.map(t) },
        }
    }

    #[test]
    fn below_band_turns_heat_on() {
        let d = Hysteresis.decide(&inputs(&[Some(19.0), Some(19.2)], false, None));
        assert!(d.heat);
        assert_eq!(d.reason_code, ReasonCode::BelowBand);
        assert_eq!(d.effective_temp_c, Some(19.1));
        assert!(d.reason.contains("19.10"), "{}", d.reason);
    }

    #[test]
    fn above_band_turns_heat_off_and_band_keeps_state() {
        let d = Hysteresis.decide(&inputs(&[Some(20.6)], true, None));
        assert_eq!((d.heat, d.reason_code), (false, ReasonCode::AboveBand));
        let d = Hysteresis.decide(&inputs(&[Some(20.3)], true, None));
        assert_eq!((d.heat, d.reason_code), (true, ReasonCode::InBand));
        let d = Hysteresis.decide(&inputs(&[Some(19.7)], false, None));
        assert_eq!((d.heat, d.reason_code), (false, ReasonCode::InBand));
    }

    #[test]
    fn min_on_and_off_times_hold_the_state() {
        // On for 100 s of a 120 s minimum: stays on although too warm.
        let d = Hysteresis.decide(&inputs(&[Some(21.0)], true, Some(900)));
        assert_eq!((d.heat, d.reason_code), (true, ReasonCode::MinOnTime));
        assert!(d.reason.contains("20 s left"), "{}", d.reason);
        // Off for 30 s of a 60 s minimum: stays off although too cold.
        let d = Hysteresis.decide(&inputs(&[Some(18.0)], false, Some(970)));
        assert_eq!((d.heat, d.reason_code), (false, ReasonCode::MinOffTime));
        // Minimum passed.
        let d = Hysteresis.decide(&inputs(&[Some(18.0)], false, Some(900)));
        assert_eq!((d.heat, d.reason_code), (true, ReasonCode::BelowBand));
    }

    #[test]
    fn stale_and_failed_sensors_drop_out() {
        let mut i = inputs(&[Some(15.0), None, Some(19.0)], false, None);
        i.sensors[0].at = Some(t(100)); // stale
        let d = Hysteresis.decide(&i);
        assert_eq!(d.effective_temp_c, Some(19.0));
        assert!(d.sensors[0].excluded.as_deref().is_some_and(|e| e.starts_with("stale")));
        assert!(d.sensors[1].excluded.as_deref().is_some_and(|e| e.starts_with("failed")));
        assert!(d.sensors[2].used);
    }

    #[test]
    fn no_fresh_sensor_means_heat_off_even_during_min_on() {
        let mut i = inputs(&[Some(15.0)], true, Some(990));
        i.sensors[0].at = Some(t(0));
        let d = Hysteresis.decide(&i);
        assert_eq!(
            (d.heat, d.reason_code, d.effective_temp_c),
            (false, ReasonCode::NoSensors, None)
        );
    }

    #[test]
    fn mode_off_never_heats() {
        let mut i = inputs(&[Some(10.0)], true, Some(999));
        i.settings.mode = Mode::Off;
        let d = Hysteresis.decide(&i);
        assert_eq!((d.heat, d.reason_code), (false, ReasonCode::ModeOff));
    }
}
