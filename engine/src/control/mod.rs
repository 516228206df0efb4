//! Deciding when to heat and cool.
//!
//! [`decide`] is pure: [`Inputs`] in, [`Decision`] out; no I/O, no clock. It goes through the
//! layers of the contract (`hearth_proto::control`) in order:
//!
//! 1. target: the segment in force gives the setpoints (clamped by the frost floor and max
//!    ceiling, the cooling one widened to the auto deadband);
//! 2. [`fusion`]: every sensor is checked (no reading, stale, failed, implausible, stuck,
//!    outlier) and the segment's selection gives the effective temperature, or a fallback, or
//!    none;
//! 3. [`safety`]: sensor loss, frost floor, max ceiling and mode off decide on their own;
//! 4. otherwise the selected [`algorithm::Algorithm`] (from the [`plugins`] registry) proposes
//!    heat/cool;
//! 5. [`protection`]: the minimum on/off times and the changeover delay hold the equipment's
//!    state as the RELAYS report it, so they survive relay blips and engine restarts.
//!
//! Everything in this folder is pure: no database, no network, no clock. The loop
//! (`controller.rs`) gathers the inputs, calls [`decide`], records the decision and hands it to
//! the relay commander (`commander.rs`).
//!
//! Dependencies between the modules go one way: [`plugins`] (the registry) imports the
//! algorithms, the algorithms import [`algorithm`] (the trait and its types) and [`text`] (how
//! numbers read in reasons), and neither of those two knows an algorithm.

mod algorithm;
mod anticipate;
mod fusion;
mod hysteresis;
mod learn;
mod model;
mod plugins;
mod predictive;
mod protection;
mod safety;
mod text;

pub(crate) use algorithm::Proposal;
use algorithm::setpoints;
pub(crate) use anticipate::{default_band_c, schedule_hold_ratio};
#[cfg(test)]
pub(crate) use learn::{Coast, Rate};
pub(crate) use learn::{CoastWatch, Learned, Watched, learn};
pub(crate) use model::{Decision, Settings};
pub(crate) use protection::{Held, protect};
pub(crate) use safety::is_safety;
pub(crate) use text::span;

use hearth_proto::Timestamp;
use hearth_proto::control::{PluginInfo, SensorSource};
use hearth_proto::history::Run;
use hearth_proto::schedules::{Layer, RuleRef, Segment};

/// What a decision is made from.
#[derive(Debug, Clone)]
pub(crate) struct Inputs<'a> {
    pub(crate) now: Timestamp,
    /// Already checked by [`check_settings`]; an unknown algorithm or bad parameters still do
    /// not panic (hysteresis and default parameters stand in).
    pub(crate) settings: &'a Settings,
    /// The timeline: `[0]` contains `now`, the rest follow without gaps (at least 24 h ahead,
    /// which predictive start looks into).
    pub(crate) segments: &'a [Segment],
    /// Every known sensor.
    pub(crate) sensors: &'a [SensorSnapshot],
    /// A reading older than this is stale.
    pub(crate) stale_after: jiff::SignedDuration,
    /// What the relays report (not what was last decided).
    pub(crate) equipment: Equipment,
    /// Rates learned from the house's own runs.
    pub(crate) learned: &'a Learned,
    /// The recorded runs of the last [`STUCK_WINDOW`] at least (the open ones included): how
    /// long the equipment ran while a sensor's value stood still.
    pub(crate) runs: &'a [Run],
}

/// A sensor whose value has not moved while the heating or cooling ran this long in all is
/// stuck ([`fusion`]).
pub(crate) const STUCK_RUNTIME: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);
/// How far back the runs of [`Inputs::runs`] must reach: the runtime that makes a sensor stuck
/// is counted within this window, so a duty of a twelfth or more gets there.
pub(crate) const STUCK_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_hours(12);

/// The newest reading of one sensor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SensorSnapshot {
    pub(crate) id: String,
    /// Its alias, if any (reason texts use it).
    pub(crate) name: Option<String>,
    /// Null when the newest reading failed.
    pub(crate) value: Option<f64>,
    /// When the newest reading was taken; None: never.
    pub(crate) at: Option<Timestamp>,
    /// Since when the newest value has been the same; None: unknown (never stuck).
    pub(crate) value_since: Option<Timestamp>,
    /// Weight when the rule in force names no sensors (0: counted only when named).
    pub(crate) weight: f64,
    /// Calibration added to `value` after the plausibility checks (which judge what the
    /// probe itself said: 85.0 is the power-on value whatever the offset).
    pub(crate) offset_c: f64,
}

/// What the heating and cooling relays report.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Equipment {
    pub(crate) heat: Running,
    pub(crate) cool: Running,
}

/// One system's relay state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Running {
    pub(crate) on: bool,
    /// When it last switched (on: started; off: stopped, or its relay agent restarted); None =
    /// unknown → no hold. The minimum on/off times count from this.
    pub(crate) since: Option<Timestamp>,
    /// When it last stopped after really running (from the recorded runs); None: not lately.
    /// The changeover delay counts from this, not from `since`: a relay agent that restarted
    /// reports every output "off since now", and a cooling output that never ran must not
    /// hold the heat for the changeover delay.
    pub(crate) ran_until: Option<Timestamp>,
}

impl Running {
    pub(crate) const OFF_UNKNOWN: Running = Running { on: false, since: None, ran_until: None };
}

/// Decide from `inputs` alone: [`propose`], then the equipment protection of
/// `inputs.settings` against `inputs.equipment`.
pub(crate) fn decide(inputs: &Inputs<'_>) -> Decision {
    propose(inputs).protected(inputs.settings, inputs.now, inputs.equipment)
}

/// A decision before the equipment protection: what the target, fusion, safety and the
/// algorithm want. A zoned house stops here for each zone (`zones`): there the equipment, and
/// so its protection, belongs to the plant, which protects what its zones ask together.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Proposed {
    /// The decision as proposed: heat, cool, reason code and text are the proposal's, no hold.
    pub(crate) decision: Decision,
    pub(crate) proposal: Proposal,
}

impl Proposed {
    /// The decision once the minimum on/off times and changeover delay of `s` have held the
    /// `equipment` (as its relays report it).
    pub(crate) fn protected(self, s: &Settings, now: Timestamp, eq: Equipment) -> Decision {
        let held = protection::protect(s, now, eq, &self.proposal);
        self.held(&held)
    }

    /// The decision with a protection's verdict in place of the proposal's.
    pub(crate) fn held(self, held: &Held) -> Decision {
        Decision {
            heat: held.heat,
            cool: held.cool,
            reason_code: held.code,
            reason: held.reason.clone(),
            held_until: held.until,
            ..self.decision
        }
    }
}

/// Everything [`decide`] does but the equipment protection.
pub(crate) fn propose(inputs: &Inputs<'_>) -> Proposed {
    let s = inputs.settings;
    let now = inputs.now;
    // The segment in force; a timeline computed a moment before `now` still works.
    let current =
        inputs.segments.iter().position(|seg| seg.start <= now && now < seg.end).unwrap_or(0);
    let segment = inputs.segments.get(current);
    let upcoming = inputs.segments.get(current + 1..).unwrap_or(&[]);
    let (heat_sp, cool_sp) = match segment {
        Some(seg) => setpoints(s, seg.heat_c, seg.cool_c),
        // No timeline at all: hold the frost floor, cool only above the ceiling.
        None => setpoints(s, s.frost_floor_c, s.max_ceiling_c),
    };
    let rule = segment.map(|seg| seg.rule.clone()).unwrap_or_else(|| RuleRef {
        layer: Layer::Default,
        id: None,
        name: "default".to_owned(),
    });
    let selection = segment.map(|seg| seg.sensors.as_slice()).unwrap_or(&[]);
    let fused =
        fusion::fuse(now, inputs.sensors, selection, inputs.stale_after, s.outlier_c, inputs.runs);
    let algorithm = plugins::find(&s.algorithm).unwrap_or(plugins::default_algorithm());

    let proposal = match safety::check(s, now, &fused) {
        Some(verdict) => verdict,
        None => {
            // `check` returns None only with an effective temperature.
            let temp_c = fused.effective.unwrap_or(heat_sp);
            let params = plugins::params_or_defaults(algorithm, &s.params);
            let ctx = algorithm::Ctx {
                now,
                mode: s.mode,
                heat_c: heat_sp,
                cool_c: cool_sp,
                temp_c,
                temp_label: &fused.label,
                equipment: inputs.equipment,
                upcoming,
                settings: s,
                learned: inputs.learned,
            };
            algorithm.propose(&ctx, &params)
        }
    };

    let decision = Decision {
        at: now,
        mode: s.mode,
        algorithm: algorithm.id().to_owned(),
        heat: proposal.heat,
        cool: proposal.cool,
        effective_temp_c: fused.effective,
        heat_setpoint_c: heat_sp,
        cool_setpoint_c: cool_sp,
        rule,
        reason_code: proposal.code,
        reason: proposal.reason.clone(),
        sensor_source: if fused.effective.is_some() { fused.source } else { SensorSource::None },
        sensors: fused.inputs,
        expected_at: proposal.expected_at,
        outlook: proposal.outlook.clone(),
        held_until: None,
    };
    Proposed { decision, proposal }
}

/// Check settings from a client: every range, the algorithm exists, its parameters are valid.
/// Returns them with the algorithm's parameter defaults filled in. The message names the field.
pub(crate) fn check_settings(mut s: Settings) -> Result<Settings, String> {
    use hearth_proto::control as c;
    fn range<T: PartialOrd + std::fmt::Display>(
        field: &str,
        v: T,
        r: &std::ops::RangeInclusive<T>,
    ) -> Result<(), String> {
        if r.contains(&v) {
            Ok(())
        } else {
            Err(format!("{field} field must be between {} and {}, got {v}", r.start(), r.end()))
        }
    }
    range("frost_floor_c", s.frost_floor_c, &c::FROST_FLOOR_C)?;
    range("max_ceiling_c", s.max_ceiling_c, &c::MAX_CEILING_C)?;
    range("min_on_s", s.min_on_s, &c::MIN_ON_S)?;
    range("min_off_s", s.min_off_s, &c::MIN_OFF_S)?;
    range("changeover_s", s.changeover_s, &c::CHANGEOVER_S)?;
    range("auto_deadband_c", s.auto_deadband_c, &c::AUTO_DEADBAND_C)?;
    range("outlier_c", s.outlier_c, &c::OUTLIER_C)?;
    range("sensor_loss_duty_pct", s.sensor_loss_duty_pct, &c::SENSOR_LOSS_DUTY_PCT)?;
    let Some(algorithm) = plugins::find(&s.algorithm) else {
        let known: Vec<&str> = plugins::all().iter().map(|a| a.id()).collect();
        return Err(format!(
            "algorithm field must be one of {}, got {:?}",
            known.join(", "),
            s.algorithm
        ));
    };
    s.params = plugins::check_params(algorithm, &s.params)?;
    Ok(s)
}

/// The algorithms on offer, with their parameter schemas.
pub(crate) fn plugins() -> Vec<PluginInfo> {
    plugins::all().iter().map(|a| plugins::info(*a)).collect()
}

#[cfg(test)]
pub(crate) mod tests;
