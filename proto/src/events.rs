//! The live event stream (`GET /v1/events`, Server-Sent Events). Each SSE message's `event`
//! field is the [`Event`]'s `type`, its `data` the JSON of the event. A client that falls
//! behind receives a `lagged` event and should re-read the REST resources.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;
use crate::control::Decision;
use crate::relays::RelayState;
use crate::zones::HouseStatus;

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
    /// The house plan changed in anything a dashboard shows: a zone's decision (as for
    /// `decision`), a valve or a plant with its reason (`GET /v1/house`). The `decision` event
    /// keeps carrying the default zone's decision.
    House {
        /// The house as the loop planned it.
        house: Box<HouseStatus>,
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
        /// What changed.
        what: Topic,
    },
    /// This client missed `missed` events.
    Lagged {
        /// How many.
        missed: u64,
    },
}

/// What a `changed` event asks a dashboard to re-read. Serialised as its lower-case name
/// (`"schedules"`), the strings the stream has always carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// The schedule rules: re-read the timeline.
    Schedules,
    /// The overrides (holds): re-read the timeline.
    Overrides,
    /// The default target: re-read the timeline.
    Default,
    /// The control settings: re-read `/v1/control`.
    Settings,
    /// A sensor's name, weight or calibration: re-read `/v1/sensors`.
    Sensors,
    /// A relay agent stopped or started answering the engine: re-read `/v1/relays` and
    /// `/v1/agents`.
    Relays,
    /// The zones or plants (`/v1/zones`): re-read them, and `/v1/house`.
    Zones,
}

impl Event {
    /// The SSE `event:` name of this event: its `type`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Reading { .. } => "reading",
            Self::Decision { .. } => "decision",
            Self::House { .. } => "house",
            Self::Relay { .. } => "relay",
            Self::Changed { .. } => "changed",
            Self::Lagged { .. } => "lagged",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The notices' wire format is the strings dashboards have always matched on.
    #[test]
    fn topics_are_serialised_as_the_names_dashboards_match() {
        let all = [
            (Topic::Schedules, "schedules"),
            (Topic::Overrides, "overrides"),
            (Topic::Default, "default"),
            (Topic::Settings, "settings"),
            (Topic::Sensors, "sensors"),
            (Topic::Relays, "relays"),
            (Topic::Zones, "zones"),
        ];
        for (topic, name) in all {
            let event = serde_json::to_value(Event::Changed { what: topic }).ok();
            assert_eq!(event, Some(serde_json::json!({"type": "changed", "what": name})));
            let back: Result<Event, _> =
                serde_json::from_value(serde_json::json!({"type": "changed", "what": name}));
            assert_eq!(back.ok(), Some(Event::Changed { what: topic }));
        }
    }
}
