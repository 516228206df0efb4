//! `decide` end to end: every reason code, safety in every mode, protection from the relay
//! state, settings checks.

use std::collections::HashSet;

use hearth_proto::control::{Mode, ReasonCode, System};
use hearth_proto::schedules::SensorWeight;
use serde_json::json;

use super::*;

/// 2027-01-15T08:00:00Z; a multiple of 1800 s, so a sensor-loss duty period starts here.
pub(crate) const NOW: Timestamp = Timestamp::constant(1_800_000_000, 0);

pub(crate) fn at(offset_s: i64) -> Timestamp {
    NOW + jiff::SignedDuration::from_secs(offset_s)
}

pub(crate) fn segment(start: Timestamp, end: Timestamp, heat_c: f64, cool_c: f64) -> Segment {
    Segment {
        start,
        end,
        start_local: start.to_string(),
        end_local: end.to_string(),
        heat_c,
        cool_c,
        sensors: vec![SensorWeight { sensor_id: "28-1".to_owned(), weight: 1.0 }],
        rule: RuleRef { layer: Layer::Day, id: Some(4), name: "mornings".to_owned() },
        beaten: Vec::new(),
    }
}

/// A test case: the living room reads `temp` (None: its reading is stale), the relays report
/// `equipment`.
struct Case {
    settings: Settings,
    temp: Option<f64>,
    equipment: Equipment,
    /// The next segment (starting in `next_in_s`) heats to this; default: no change.
    next_heat: f64,
    next_cool: f64,
    next_in_s: i64,
    now: Timestamp,
    learned: Learned,
}

impl Case {
    fn new(mode: Mode, temp: f64) -> Self {
        Self {
            settings: Settings { mode, ..Settings::default() },
            temp: Some(temp),
            equipment: Equipment { heat: Running::OFF_UNKNOWN, cool: Running::OFF_UNKNOWN },
            next_heat: 20.5,
            next_cool: 25.0,
            next_in_s: 3 * 3600,
            now: NOW,
            learned: Learned::default(),
        }
    }

    fn algorithm(mut self, id: &str) -> Self {
        self.settings.algorithm = id.to_owned();
        self
    }

    fn heat(mut self, on: bool, since_s_ago: i64) -> Self {
        let since = Some(at(-since_s_ago));
        self.equipment.heat = Running { on, since, ran_until: since.filter(|_| !on) };
        self
    }

    fn cool(mut self, on: bool, since_s_ago: i64) -> Self {
        let since = Some(at(-since_s_ago));
        self.equipment.cool = Running { on, since, ran_until: since.filter(|_| !on) };
        self
    }

    fn decide(&self) -> Decision {
        let sensors = [SensorSnapshot {
            id: "28-1".to_owned(),
            name: Some("living room".to_owned()),
            value: Some(self.temp.unwrap_or(20.0)),
            at: Some(if self.temp.is_some() {
                self.now
            } else {
                self.now - jiff::SignedDuration::from_mins(14)
            }),
            value_since: None,
            weight: 1.0,
            offset_c: 0.0,
        }];
        let split = NOW + jiff::SignedDuration::from_secs(self.next_in_s);
        let segments = [
            segment(at(-3600), split, 20.5, 25.0),
            segment(split, at(24 * 3600), self.next_heat, self.next_cool),
        ];
        decide(&Inputs {
            now: self.now,
            settings: &self.settings,
            segments: &segments,
            sensors: &sensors,
            stale_after: jiff::SignedDuration::from_secs(120),
            equipment: self.equipment,
            learned: &self.learned,
            runs: &[],
        })
    }
}

#[test]
fn every_reason_code_has_an_input_that_produces_it() {
    use Mode::*;
    use ReasonCode::*;
    let preheat = || Case { next_heat: 22.0, next_in_s: 30 * 60, ..Case::new(Heat, 20.3) };
    let precool = || Case { next_cool: 23.0, next_in_s: 30 * 60, ..Case::new(Cool, 24.9) };
    let cases: Vec<(&str, Case, bool, bool, ReasonCode, &str)> = vec![
        (
            "below band",
            Case::new(Heat, 19.2),
            true,
            false,
            HeatBelowBand,
            "heat on: living room 19.2 °C < 20.5 − 0.3 °C",
        ),
        (
            "above band",
            Case::new(Heat, 21.0),
            false,
            false,
            HeatAboveBand,
            "heat off: living room 21.0 °C > 20.5 + 0.3 °C",
        ),
        (
            "in band keeps the relay on",
            Case::new(Heat, 20.5).heat(true, 600),
            true,
            false,
            HeatInBand,
            "heat stays on: living room 20.5 °C within 20.5 ± 0.3 °C",
        ),
        (
            "cool above",
            Case::new(Cool, 25.5),
            false,
            true,
            CoolAboveBand,
            "cool on: living room 25.5 °C > 25.0 + 0.3 °C",
        ),
        (
            "cool below",
            Case::new(Cool, 24.5).cool(true, 600),
            false,
            false,
            CoolBelowBand,
            "cool off: living room 24.5 °C < 25.0 − 0.3 °C",
        ),
        (
            "cool in band",
            Case::new(Cool, 25.0).cool(true, 600),
            false,
            true,
            CoolInBand,
            "cool stays on: living room 25.0 °C within 25.0 ± 0.3 °C",
        ),
        (
            "auto between",
            Case::new(Auto, 22.5),
            false,
            false,
            AutoDeadband,
            "idle: living room 22.5 °C between heat 20.5 + 0.3 and cool 25.0 − 0.3 °C",
        ),
        (
            "preheat",
            preheat().algorithm("predictive"),
            true,
            false,
            Preheat,
            "heat on: preheat for 22.0 °C in 30 min: living room 20.3 °C needs 61 min at 1.5 °C/h (default rate)",
        ),
        (
            "precool",
            precool().algorithm("predictive"),
            false,
            true,
            Precool,
            "cool on: precool for 23.0 °C in 30 min: living room 24.9 °C needs 101 min at 1 °C/h (default rate)",
        ),
        (
            "min on",
            Case::new(Heat, 21.0).heat(true, 60),
            true,
            false,
            MinOnTime,
            "heat held on: min on time, 2 min left (heat off: living room 21.0 °C > 20.5 + 0.3 °C)",
        ),
        (
            "min off",
            Case::new(Heat, 19.0).heat(false, 20),
            false,
            false,
            MinOffTime,
            "heat held off: min off time, 3 min left (heat on: living room 19.0 °C < 20.5 − 0.3 °C)",
        ),
        (
            "changeover",
            Case::new(Heat, 19.0).cool(false, 100),
            false,
            false,
            Changeover,
            "heat held off: changeover from cool, 4 min left (heat on: living room 19.0 °C < 20.5 − 0.3 °C)",
        ),
        (
            "mode off",
            Case::new(Off, 19.0).heat(true, 10),
            false,
            false,
            ModeOff,
            "off: mode is off (living room 19.0 °C)",
        ),
        (
            "frost floor in off",
            Case::new(Off, 5.0),
            true,
            false,
            FrostFloor,
            "heat on: living room 5.0 °C < frost floor 7.0 °C",
        ),
        (
            "ceiling cools in off",
            Case::new(Off, 31.0).heat(false, 3600),
            false,
            true,
            MaxCeiling,
            "heat off, cool on: living room 31.0 °C > max ceiling 30.0 °C",
        ),
        (
            "sensor loss duty",
            Case { temp: None, ..Case::new(Heat, 0.0) },
            true,
            false,
            SensorLossDuty,
            "heat on: no usable sensor (living room stale 14 min), sensor-loss duty 10 %: runs 3 min more",
        ),
        (
            "sensor loss off",
            Case { temp: None, now: at(600), ..Case::new(Heat, 0.0) },
            false,
            false,
            SensorLossOff,
            "heat off: no usable sensor (living room stale 14 min), sensor-loss duty 10 %: next run in 20 min",
        ),
    ];
    let mut seen = HashSet::new();
    for (name, case, heat, cool, code, reason) in cases {
        let d = case.decide();
        assert_eq!((d.heat, d.cool, d.reason_code), (heat, cool, code), "{name}: {}", d.reason);
        assert_eq!(d.reason, reason, "{name}");
        assert!(!(d.heat && d.cool), "{name}");
        let held = matches!(code, MinOnTime | MinOffTime | Changeover);
        assert_eq!(d.held_until.is_some(), held, "{name}: held until {:?}", d.held_until);
        assert_eq!(d.rule.name, "mornings");
        assert_eq!(d.sensors.len(), 1);
        seen.insert(code);
    }
    let all = [
        HeatBelowBand,
        HeatAboveBand,
        HeatInBand,
        CoolAboveBand,
        CoolBelowBand,
        CoolInBand,
        AutoDeadband,
        Preheat,
        Precool,
        MinOnTime,
        MinOffTime,
        Changeover,
        ModeOff,
        FrostFloor,
        MaxCeiling,
        SensorLossDuty,
        SensorLossOff,
    ];
    assert_eq!(seen, all.into_iter().collect::<HashSet<_>>());
}

#[test]
fn frost_floor_waits_for_min_off_but_safety_stops_at_once() {
    // Frost floor in off mode, heat stopped 60 s ago: min off holds it (short cycles break
    // compressors; three minutes do not freeze a house).
    let d = Case::new(Mode::Off, 5.0).heat(false, 60).decide();
    assert_eq!((d.heat, d.reason_code), (false, ReasonCode::MinOffTime));
    assert!(d.reason.contains("frost floor"), "{}", d.reason);
    // Heat on for 10 s, mode off / ceiling / sensor loss: off at once, no min on time.
    for case in [
        Case::new(Mode::Off, 20.0),
        Case::new(Mode::Heat, 31.0),
        Case { temp: None, now: at(600), ..Case::new(Mode::Heat, 0.0) },
    ] {
        let d = case.heat(true, 10).decide();
        assert!(!d.heat, "{}", d.reason);
        assert_ne!(d.reason_code, ReasonCode::MinOnTime);
    }
}

#[test]
fn protection_follows_the_relays_not_the_last_decision() {
    // Relay blip: the last decision was on, but the relay reports off since 20 s ago. The
    // heat stays off for the rest of the minimum off time, then starts.
    let blip = Case::new(Mode::Heat, 19.0).heat(false, 20);
    let d = blip.decide();
    assert_eq!((d.heat, d.reason_code), (false, ReasonCode::MinOffTime));
    assert!(d.reason.starts_with("heat held off: min off time, 3 min left"), "{}", d.reason);
    // When the hold ends, exactly: the relay's switch time plus the minimum off time.
    assert_eq!(d.held_until, Some(at(160)));
    let later = Case { now: at(159), ..Case::new(Mode::Heat, 19.0) }.heat(false, 20);
    assert_eq!(later.decide().reason_code, ReasonCode::MinOffTime);
    let d = Case { now: at(160), ..Case::new(Mode::Heat, 19.0) }.heat(false, 20).decide();
    assert_eq!((d.heat, d.reason_code), (true, ReasonCode::HeatBelowBand));

    // Engine restart: fresh inputs, the relay reports on since 60 s: an off wish is held for
    // min on − 60 s = 120 s, and not after.
    let restart = Case::new(Mode::Heat, 21.5).heat(true, 60);
    let d = restart.decide();
    assert_eq!((d.heat, d.reason_code), (true, ReasonCode::MinOnTime));
    assert_eq!(d.held_until, Some(at(120)));
    assert!(d.reason.starts_with("heat held on: min on time, 2 min left"), "{}", d.reason);
    let held = Case { now: at(119), ..Case::new(Mode::Heat, 21.5) }.heat(true, 60).decide();
    assert!(held.heat);
    let released = Case { now: at(120), ..Case::new(Mode::Heat, 21.5) }.heat(true, 60).decide();
    assert_eq!((released.heat, released.reason_code), (false, ReasonCode::HeatAboveBand));

    // Unknown switch time: nothing to hold.
    let d = Case::new(Mode::Heat, 21.5).decide();
    assert_eq!(d.reason_code, ReasonCode::HeatAboveBand);
}

#[test]
fn auto_never_runs_both_and_changes_over() {
    // Cooling still running, the house is cold: cooling stops (min on passed), heat waits.
    let d = Case::new(Mode::Auto, 19.0).cool(true, 3600).decide();
    assert_eq!((d.heat, d.cool, d.reason_code), (false, false, ReasonCode::Changeover));
    assert!(d.reason.contains("cool still running"), "{}", d.reason);
    // Both relays somehow on: only the wanted one stays.
    let d = Case::new(Mode::Auto, 19.0).cool(true, 10).heat(true, 10).decide();
    assert_eq!((d.heat, d.cool), (true, false));
}

#[test]
fn setpoints_are_clamped_and_widened() {
    let d = Case { next_heat: 40.0, ..Case::new(Mode::Heat, 20.0) }.decide();
    assert_eq!(d.heat_setpoint_c, 20.5);
    let s = Settings { mode: Mode::Auto, ..Settings::default() };
    assert_eq!(setpoints(&s, 35.0, 36.0), (30.0, 31.5));
    assert_eq!(setpoints(&s, 2.0, 24.0), (7.0, 24.0));
    assert_eq!(setpoints(&s, 23.0, 24.0), (23.0, 24.5));
}

#[test]
fn predictive_shows_its_outlook_before_it_starts_and_uses_the_learned_rate() {
    let learned = Learned {
        heat: Some(learn::Rate { c_per_h: 3.0, dead_s: 300.0, samples: 12 }),
        cool: None,
        heat_coast: None,
    };
    // 21.8 °C at 08:00 → (21.8 − 0.3 − 20.6) / 3 h + 5 min dead + 5 min margin = 28 min lead.
    let case = |in_s: i64| Case {
        next_heat: 21.8,
        next_in_s: in_s,
        learned: learned.clone(),
        ..Case::new(Mode::Heat, 20.6).algorithm("predictive")
    };
    let d = case(40 * 60).decide();
    assert_eq!(d.reason_code, ReasonCode::HeatInBand);
    let o = d.outlook.unwrap_or_else(|| panic!("no outlook"));
    assert_eq!((o.system, o.target_c, o.samples, o.lead_s), (System::Heat, 21.8, 12, 28 * 60));
    assert!(d.reason.ends_with("; heat for 21.8 °C in 40 min starts in 12 min"), "{}", d.reason);
    let d = case(28 * 60).decide();
    assert_eq!((d.heat, d.reason_code), (true, ReasonCode::Preheat));
    // Running towards 21.8 at 3 °C/h: 24 min.
    assert_eq!(d.expected_at, Some(at(24 * 60)));
    // Beyond the maximum lead: no outlook.
    assert_eq!(case(3 * 3600).decide().outlook, None);
}

#[test]
fn check_settings_names_the_field() {
    let ok = check_settings(Settings::default()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ok.params, json!({"hysteresis_c": 0.3}));
    let p = check_settings(Settings {
        algorithm: "predictive".to_owned(),
        params: json!({"margin_min": 10}),
        ..Settings::default()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.params["margin_min"], 10);
    assert_eq!(p.params["max_lead_min"], 120);
    let d = Settings::default;
    let cases = [
        (
            Settings { frost_floor_c: 20.0, ..d() },
            "frost_floor_c field must be between 0 and 15, got 20",
        ),
        (
            Settings { max_ceiling_c: f64::NAN, ..d() },
            "max_ceiling_c field must be between 20 and 45, got NaN",
        ),
        (Settings { min_on_s: 4000, ..d() }, "min_on_s field must be between 0 and 3600, got 4000"),
        (
            Settings { min_off_s: 4000, ..d() },
            "min_off_s field must be between 0 and 3600, got 4000",
        ),
        (
            Settings { changeover_s: 9000, ..d() },
            "changeover_s field must be between 0 and 7200, got 9000",
        ),
        (
            Settings { auto_deadband_c: 0.1, ..d() },
            "auto_deadband_c field must be between 0.5 and 10, got 0.1",
        ),
        (Settings { outlier_c: 0.0, ..d() }, "outlier_c field must be between 1 and 30, got 0"),
        (
            Settings { sensor_loss_duty_pct: 60, ..d() },
            "sensor_loss_duty_pct field must be between 0 and 50, got 60",
        ),
        (
            Settings { algorithm: "pid".to_owned(), ..d() },
            "algorithm field must be one of hysteresis, predictive, anticipate, got \"pid\"",
        ),
        (
            Settings { params: json!({"hysteresis_c": 9}), ..d() },
            "params.hysteresis_c field must be between 0.1 and 3, got 9",
        ),
    ];
    for (s, message) in cases {
        assert_eq!(check_settings(s), Err(message.to_owned()));
    }
    assert_eq!(
        plugins().iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["hysteresis", "predictive", "anticipate"]
    );
}
