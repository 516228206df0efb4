//! Deciding when to heat.
//!
//! `decide` is pure: [`Inputs`] in, [`Decision`] out, behind the [`Algorithm`] trait, so
//! schedules and other algorithms slot in without touching the loop. The loop (`run`) gathers the
//! inputs, calls the algorithm, records the decision and hands it to the relay commander. It is
//! event-driven: a committed reading or a settings change wakes it at once; a periodic tick
//! covers time-based changes (a minimum on time ending, a sensor going stale).

mod hysteresis;
mod run;

pub(crate) use hysteresis::Hysteresis;
pub(crate) use run::{Controller, ControllerConfig};

use hearth_proto::Timestamp;
use hearth_proto::control::{ControlSettings, Decision};

/// What the decision is made from.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    pub(crate) now: Timestamp,
    pub(crate) settings: ControlSettings,
    /// The heating setpoint in force.
    pub(crate) heat_c: f64,
    pub(crate) sensors: Vec<SensorSnapshot>,
    /// A reading older than this no longer counts.
    pub(crate) stale_after: jiff::SignedDuration,
    pub(crate) heat: HeatState,
}

/// The newest reading of one sensor.
#[derive(Debug, Clone)]
pub(crate) struct SensorSnapshot {
    pub(crate) id: String,
    pub(crate) value: Option<f64>,
    pub(crate) at: Option<Timestamp>,
}

/// Whether heat is running, and since when (None: unknown, e.g. just after a start).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HeatState {
    pub(crate) on: bool,
    pub(crate) since: Option<Timestamp>,
}

/// A decision algorithm.
pub(crate) trait Algorithm: Send + Sync {
    /// Decide from `inputs` alone: no I/O, no clock.
    fn decide(&self, inputs: &Inputs) -> Decision;
}
