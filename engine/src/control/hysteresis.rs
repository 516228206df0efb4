//! Bang-bang control with a hysteresis band and minimum on/off times.

use hearth_proto::control::{Decision, Mode, ReasonCode, SensorInput, SensorSource};
use hearth_proto::schedules::{Layer, RuleRef};

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
        let setpoint_c = inputs.heat_c;
        let hysteresis_c =
            s.params.get("hysteresis_c").and_then(serde_json::Value::as_f64).unwrap_or(0.3);
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
                    name: None,
                    value: snap.value,
                    at: snap.at,
                    weight: 1.0,
                    selected: true,
                    used: excluded.is_none(),
                    excluded: None,
                    detail: excluded,
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
            (Mode::Off | Mode::Cool | Mode::Auto, _) => {
                (false, ReasonCode::ModeOff, "heat off: mode is off".to_owned())
            }
            (Mode::Heat, None) => {
                (false, ReasonCode::SensorLossOff, "heat off: no fresh sensor reading".to_owned())
            }
            (Mode::Heat, Some(t)) if t < setpoint_c - hysteresis_c => (
                true,
                ReasonCode::HeatBelowBand,
                format!("heat on: {t:.2} °C < {:.2} − {:.2} °C", setpoint_c, hysteresis_c),
            ),
            (Mode::Heat, Some(t)) if t > setpoint_c + hysteresis_c => (
                false,
                ReasonCode::HeatAboveBand,
                format!("heat off: {t:.2} °C > {:.2} + {:.2} °C", setpoint_c, hysteresis_c),
            ),
            (Mode::Heat, Some(t)) => (
                inputs.heat.on,
                ReasonCode::HeatInBand,
                format!(
                    "heat stays {}: {t:.2} °C within {:.2} ± {:.2} °C",
                    if inputs.heat.on { "on" } else { "off" },
                    setpoint_c,
                    hysteresis_c
                ),
            ),
        };

        // Minimum on/off times protect the equipment from short cycles. They do not hold heat
        // on when the mode is off or no sensor is fresh: safety first.
        let (heat, code, reason) = match (inputs.heat.on, want) {
            (true, false) if code != ReasonCode::ModeOff && code != ReasonCode::SensorLossOff => {
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
            mode: s.mode,
            algorithm: "hysteresis".to_owned(),
            heat,
            cool: false,
            effective_temp_c: effective,
            heat_setpoint_c: setpoint_c,
            cool_setpoint_c: 26.0,
            rule: RuleRef { layer: Layer::Default, id: None, name: "default".to_owned() },
            reason_code: code,
            reason,
            sensor_source: if effective.is_some() {
                SensorSource::Selected
            } else {
                SensorSource::None
            },
            sensors,
            expected_at: None,
            outlook: None,
        }
    }
}
