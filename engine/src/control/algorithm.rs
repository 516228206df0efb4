//! What a decision algorithm is: the [`Algorithm`] trait, what it decides from ([`Ctx`]), what
//! it proposes ([`Proposal`]) and its parameters ([`ParamSpec`], [`Params`]).
//!
//! The algorithms (`hysteresis`, `predictive`) import this module; the registry (`plugins`)
//! imports them. Nothing here knows any algorithm, so dependencies go one way.

use std::collections::BTreeMap;

use hearth_proto::Timestamp;
use hearth_proto::control::{Mode, Outlook, ReasonCode};
use hearth_proto::schedules::Segment;

use super::{Equipment, Learned, Settings};

/// What an algorithm decides from: safety has passed, so there is an effective temperature
/// and the mode is heat, cool or auto.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub(crate) now: Timestamp,
    pub(crate) mode: Mode,
    /// The heating setpoint in force (clamped).
    pub(crate) heat_c: f64,
    /// The cooling setpoint in force (clamped, widened in auto).
    pub(crate) cool_c: f64,
    pub(crate) temp_c: f64,
    /// The effective temperature for reason texts, e.g. `living room 19.2 °C`.
    pub(crate) temp_label: &'a str,
    pub(crate) equipment: Equipment,
    /// The segments after the one in force.
    pub(crate) upcoming: &'a [Segment],
    /// For the setpoints of upcoming segments.
    pub(crate) settings: &'a Settings,
    pub(crate) learned: &'a Learned,
}

/// What an algorithm wants, before the equipment protection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Proposal {
    pub(crate) heat: bool,
    pub(crate) cool: bool,
    pub(crate) code: ReasonCode,
    pub(crate) reason: String,
    pub(crate) outlook: Option<Outlook>,
    pub(crate) expected_at: Option<Timestamp>,
}

impl Proposal {
    pub(crate) fn new(heat: bool, cool: bool, code: ReasonCode, reason: String) -> Self {
        Self { heat, cool, code, reason, outlook: None, expected_at: None }
    }
}

/// One numeric parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ParamSpec {
    pub(crate) key: &'static str,
    pub(crate) title: &'static str,
    pub(crate) description: &'static str,
    /// Whole numbers only (`"type": "integer"`).
    pub(crate) integer: bool,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) default: f64,
}

/// Checked parameter values, every key of the algorithm's specs present.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Params(BTreeMap<&'static str, f64>);

impl Params {
    /// The value of `spec` (its default if somehow missing).
    pub(crate) fn get(&self, spec: &ParamSpec) -> f64 {
        self.0.get(spec.key).copied().unwrap_or(spec.default)
    }
}

impl FromIterator<(&'static str, f64)> for Params {
    fn from_iter<I: IntoIterator<Item = (&'static str, f64)>>(values: I) -> Self {
        Self(values.into_iter().collect())
    }
}

/// A decision algorithm: pure, from [`Ctx`] alone.
pub(crate) trait Algorithm: Send + Sync + std::fmt::Debug {
    fn id(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn description(&self) -> &'static str;
    fn params(&self) -> &'static [ParamSpec];
    fn propose(&self, ctx: &Ctx<'_>, params: &Params) -> Proposal;
}

/// The setpoints in force: heat within [frost floor, max ceiling], cool at most the ceiling
/// and, in auto mode, at least the deadband above heat.
pub(crate) fn setpoints(s: &Settings, heat_c: f64, cool_c: f64) -> (f64, f64) {
    let heat = heat_c.max(s.frost_floor_c).min(s.max_ceiling_c);
    let mut cool = cool_c.min(s.max_ceiling_c);
    if s.mode == Mode::Auto {
        cool = cool.max(heat + s.auto_deadband_c);
    }
    (heat, cool)
}
