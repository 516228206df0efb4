//! The live event stream (`GET /v1/events`, Server-Sent Events). Each SSE message's `event`
//! field is the [`Event`]'s `type`, its `data` the JSON of the event. A client that falls
//! behind receives a `lagged` event and should re-read the REST resources.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;
use crate::control::Decision;
use crate::relays::RelayState;

/// One event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A sensor reading was stored (live readings only; replayed backlogs are not streamed).
    Reading {
        /// The sensor id.
        sensor_id: String,
        /// When it was taken.
        at: Timestamp,
        /// °C (calibrated by the sensor's offset), or null for a failed reading.
        value: Option<f64>,
    },
    /// The loop's decision changed in anything a dashboard shows: outcome, reason (its text,
    /// with the temperature and the time left of a hold), temperature, setpoints, rule, mode.
    /// (Decisions are recorded for `GET /v1/control/decisions` only when the outcome, the
    /// reason code or the rule change.)
    Decision {
        /// The decision.
        decision: Box<Decision>,
    },
    /// A relay output changed state (as its agent reported).
    Relay {
        /// The relay agent's host.
        host_id: String,
        /// The output id.
        output_id: String,
        /// Its new state.
        state: RelayState,
    },
    /// Something a dashboard shows changed elsewhere: re-read it. `schedules`, `overrides`,
    /// `default` (the default target), `settings` (the control settings): re-read the timeline
    /// and `/v1/control`. `sensors` (a sensor's name, weight or calibration): re-read
    /// `/v1/sensors`. `relays`: a relay agent stopped or started answering the engine: re-read
    /// `/v1/relays` and `/v1/agents`.
    Changed {
        /// What changed: `schedules`, `overrides`, `default`, `settings`, `sensors`, `relays`.
        what: String,
    },
    /// This client missed `missed` events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

impl Event {
    /// The SSE `event:` name of this event: its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Reading { .. } => "reading",
            Self::Decision { .. } => "decision",
            Self::Relay { .. } => "relay",
            Self::Changed { .. } => "changed",
            Self::Lagged { .. } => "lagged",
        }
    }
}
