//! What overrides every algorithm, in every mode: sensor loss, the frost floor, the max
//! ceiling, and mode off.

use hearth_proto::Timestamp;
use hearth_proto::control::{Mode, ReasonCode};

use super::Settings;
use super::algorithm::Proposal;
use super::fusion::Fused;
use super::text::{span, temp};

/// Sensor-loss duty runs in periods of this length, aligned to the Unix epoch, so it is a pure
/// function of the time and an engine restart neither repeats nor skips a run.
// A u32 always fits an i64 (`i64::from` is not usable in a const).
pub(crate) const DUTY_PERIOD_S: i64 = hearth_proto::control::SENSOR_LOSS_PERIOD_S as i64;

/// True for the codes safety decides: their "off" is immediate (no minimum on time holds it).
pub(crate) fn is_safety(code: ReasonCode) -> bool {
    matches!(
        code,
        ReasonCode::FrostFloor
            | ReasonCode::MaxCeiling
            | ReasonCode::SensorLossDuty
            | ReasonCode::SensorLossOff
            | ReasonCode::ModeOff
    )
}

/// The safety verdict, or None when the algorithm decides.
pub(crate) fn check(s: &Settings, now: Timestamp, fused: &Fused) -> Option<Proposal> {
    let Some(t) = fused.effective else { return Some(sensor_loss(s, now, &fused.loss)) };
    let label = &fused.label;
    if t < s.frost_floor_c {
        return Some(Proposal::new(
            true,
            false,
            ReasonCode::FrostFloor,
            format!("heat on: {label} < frost floor {} °C", temp(s.frost_floor_c)),
        ));
    }
    if t > s.max_ceiling_c {
        return Some(Proposal::new(
            false,
            true,
            ReasonCode::MaxCeiling,
            format!("heat off, cool on: {label} > max ceiling {} °C", temp(s.max_ceiling_c)),
        ));
    }
    (s.mode == Mode::Off).then(|| {
        Proposal::new(false, false, ReasonCode::ModeOff, format!("off: mode is off ({label})"))
    })
}

fn sensor_loss(s: &Settings, now: Timestamp, why: &str) -> Proposal {
    let duty = s.sensor_loss_duty_pct.min(100);
    let head = format!("no usable sensor ({why}), sensor-loss duty {duty} %");
    let on_s = DUTY_PERIOD_S * i64::from(duty) / 100;
    let phase = now.as_second().rem_euclid(DUTY_PERIOD_S);
    // Cool mode says it is the warm season: a frost duty would only heat a hot house.
    if s.mode == Mode::Cool {
        return Proposal::new(
            false,
            false,
            ReasonCode::SensorLossOff,
            format!("off: no usable sensor ({why}); no frost duty in cool mode"),
        );
    }
    if on_s == 0 {
        Proposal::new(false, false, ReasonCode::SensorLossOff, format!("heat off: {head}"))
    } else if phase < on_s {
        Proposal::new(
            true,
            false,
            ReasonCode::SensorLossDuty,
            format!("heat on: {head}: runs {} more", span(on_s - phase)),
        )
    } else {
        Proposal::new(
            false,
            false,
            ReasonCode::SensorLossOff,
            format!("heat off: {head}: next run in {}", span(DUTY_PERIOD_S - phase)),
        )
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::control::SensorSource;

    use super::*;

    fn lost() -> Fused {
        Fused {
            effective: None,
            source: SensorSource::None,
            inputs: Vec::new(),
            label: String::new(),
            loss: "living room stale 14 min".to_owned(),
        }
    }

    #[test]
    fn sensor_loss_duty_is_a_function_of_the_clock() {
        let s = Settings::default(); // 10 %: the first 3 minutes of every half hour
        // 1_800_000_000 is a multiple of 1800: a period starts there.
        let start = 1_800_000_000;
        let cases = [
            (
                start,
                true,
                "heat on: no usable sensor (living room stale 14 min), sensor-loss duty 10 %: runs 3 min more",
            ),
            (
                start + 179,
                true,
                "heat on: no usable sensor (living room stale 14 min), sensor-loss duty 10 %: runs 1 s more",
            ),
            (
                start + 180,
                false,
                "heat off: no usable sensor (living room stale 14 min), sensor-loss duty 10 %: next run in 27 min",
            ),
            (
                start + 1799,
                false,
                "heat off: no usable sensor (living room stale 14 min), sensor-loss duty 10 %: next run in 1 s",
            ),
            (
                start + 1800,
                true,
                "heat on: no usable sensor (living room stale 14 min), sensor-loss duty 10 %: runs 3 min more",
            ),
        ];
        for (secs, heat, reason) in cases {
            let now = Timestamp::constant(secs, 0);
            let p = check(&s, now, &lost()).unwrap_or_else(|| panic!("no verdict"));
            assert_eq!((p.heat, p.cool, p.reason.as_str()), (heat, false, reason), "{secs}");
            let code = if heat { ReasonCode::SensorLossDuty } else { ReasonCode::SensorLossOff };
            assert_eq!(p.code, code);
        }
        let cool = Settings { mode: Mode::Cool, ..s.clone() };
        let p = check(&cool, Timestamp::constant(start, 0), &lost());
        assert_eq!(
            p.map(|p| (p.heat, p.cool, p.code)),
            Some((false, false, ReasonCode::SensorLossOff))
        );
        let zero = Settings { sensor_loss_duty_pct: 0, ..s };
        let p = check(&zero, Timestamp::constant(start, 0), &lost());
        assert_eq!(p.map(|p| (p.heat, p.code)), Some((false, ReasonCode::SensorLossOff)));
    }
}
