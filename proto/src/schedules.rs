//! Schedules, overrides (holds) and the timeline: what target is in force when, and why
//! (`/v1/schedules`, `/v1/overrides`, `/v1/schedule/default`, `/v1/schedule/timeline`).
//!
//! Times of day and dates are local wall-clock time in the engine's configured time zone, as
//! strings (`"06:30"`, `"2026-12-24"`, `"2026-12-24T18:00"`), so a rule means what a person
//! means ("6:30 every weekday") across daylight-saving changes. Instants are UTC timestamps.
//!
//! **Most specific wins.** Every rule belongs to a [`Layer`]; at any instant the in-force rule
//! of the highest layer wins: `override` > `date` (exceptions and vacations) > `day` (weekly
//! rules on some days, cron rules restricted by day) > `every_day` > `default`. Within a layer
//! the occurrence that started most recently wins (a short block inside a long one wins while it
//! lasts); remaining ties go to the lower id (the older rule).

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;

/// The earliest year a schedule date (`when.date`, `when.start`/`when.end` of a vacation) may
/// name.
pub const MIN_DATE_YEAR: i16 = 2000;
/// The latest year a schedule date may name.
pub const MAX_DATE_YEAR: i16 = 2999;
/// Longest rule name, characters.
pub const MAX_RULE_NAME_CHARS: usize = 80;
/// Heating setpoints of rules, overrides and the default target, °C.
pub const HEAT_C: RangeInclusive<f64> = 5.0..=30.0;
/// Cooling setpoints of rules, overrides and the default target, °C.
pub const COOL_C: RangeInclusive<f64> = 15.0..=35.0;
/// With both setpoints, the cooling one is at least this far above the heating one, °C.
pub const MIN_SETPOINT_GAP_C: f64 = 0.5;
/// Most sensors one rule, override or default target may name.
pub const MAX_SENSORS: usize = 32;
/// Largest weight of a sensor in a rule (weights are greater than 0).
pub const MAX_WEIGHT: f64 = 100.0;
/// `duration_min` of a cron rule, minutes (a week at most).
pub const CRON_DURATION_MIN: RangeInclusive<u32> = 1..=10_080;
/// `minutes` of a `for` hold (30 days at most).
pub const HOLD_MIN: RangeInclusive<u32> = 1..=43_200;
/// Longest vacation, and how far ahead an override may start, days.
pub const MAX_AHEAD_DAYS: i64 = 366;
/// `hours` of `GET /v1/schedule/timeline` (two weeks at most).
pub const TIMELINE_HOURS: RangeInclusive<u32> = 1..=336;
/// `hours` when the query leaves it out.
pub const DEFAULT_TIMELINE_HOURS: u32 = 24;

/// A day of the week.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Weekday {
    /// Monday.
    Monday,
    /// Tuesday.
    Tuesday,
    /// Wednesday.
    Wednesday,
    /// Thursday.
    Thursday,
    /// Friday.
    Friday,
    /// Saturday.
    Saturday,
    /// Sunday.
    Sunday,
}

impl Weekday {
    /// Every day of the week, Monday first.
    pub const ALL: [Weekday; 7] = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
}

/// A sensor a rule decides on, and its weight in the weighted mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorWeight {
    /// The sensor id.
    pub sensor_id: String,
    /// Its weight (default 1).
    #[serde(default = "one")]
    pub weight: f64,
}

fn one() -> f64 {
    1.0
}

/// When a rule is in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum When {
    /// Every week on `days`, from `start` to `end` (local `HH:MM`). An `end` at or before
    /// `start` crosses midnight: `days` are the days the range starts on. Layer `every_day` when
    /// all seven days are listed, else `day`.
    Weekly {
        /// The days the range starts on (at least one, each at most once).
        days: Vec<Weekday>,
        /// Local start time, `HH:MM`.
        start: String,
        /// Local end time, `HH:MM`.
        end: String,
    },
    /// Each time a cron expression fires (five fields: minute hour day-of-month month
    /// day-of-week, local time), for `duration_min` minutes. Layer `day` when the expression
    /// restricts day-of-month, month or day-of-week, else `every_day`.
    Cron {
        /// The expression, e.g. `30 6 * * 1-5`.
        expr: String,
        /// How long each occurrence lasts, minutes.
        duration_min: u32,
    },
    /// One date with its own target, all day or from `start` to `end` (local `HH:MM`; an end at
    /// or before the start runs into the next day). Layer `date`.
    Exception {
        /// The local date, `YYYY-MM-DD` (years 2000 to 2999).
        date: String,
        /// Local start time, `HH:MM`; default the start of the day.
        #[serde(default)]
        start: Option<String>,
        /// Local end time, `HH:MM`; default the end of the day.
        #[serde(default)]
        end: Option<String>,
    },
    /// Away: from one local date-time to another (`YYYY-MM-DDTHH:MM`). Layer `date`.
    Vacation {
        /// Local start, `YYYY-MM-DDTHH:MM`.
        start: String,
        /// Local end (exclusive), `YYYY-MM-DDTHH:MM`, after the start.
        end: String,
    },
}

/// How specific a rule is; higher layers win (see the module description).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// The default target: always in force when nothing else is.
    Default,
    /// Rules for every day (weekly on all seven days, cron without a day restriction).
    EveryDay,
    /// Rules for some days of the week (or month).
    Day,
    /// Date exceptions and vacations.
    Date,
    /// Overrides (holds).
    Override,
}

/// A schedule rule as the client sends it (`POST /v1/schedules`, `PUT /v1/schedules/{id}`).
/// At least one of `heat_c` and `cool_c` is required (in auto mode the engine widens the gap
/// between them to its configured deadband).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Weekday mornings", "when": {"type": "weekly",
    "days": ["monday", "tuesday", "wednesday", "thursday", "friday"], "start": "06:30",
    "end": "08:30"}, "heat_c": 21.0, "sensors": [{"sensor_id": "28-0000072a1b3c", "weight": 1}]}))]
pub struct NewRule {
    /// A name people recognise.
    pub name: String,
    /// Disabled rules are kept but never win (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When the rule is in force.
    pub when: When,
    /// Heating setpoint, °C; null: the default target's.
    #[serde(default)]
    pub heat_c: Option<f64>,
    /// Cooling setpoint, °C; null: the default target's.
    #[serde(default)]
    pub cool_c: Option<f64>,
    /// The sensors to decide on, with weights; empty: the default target's selection.
    #[serde(default)]
    pub sensors: Vec<SensorWeight>,
    /// The zone (id) whose schedule it belongs to; absent: the default zone (`house`). Always
    /// present in answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

fn yes() -> bool {
    true
}

/// A stored schedule rule (`GET /v1/schedules`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    /// Assigned by the engine.
    pub id: i64,
    /// The layer the rule belongs to, derived from `when`.
    pub layer: Layer,
    /// The rule as sent.
    #[serde(flatten)]
    pub rule: NewRule,
}

/// The default target: in force whenever no rule is (`GET`/`PUT /v1/schedule/default`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"heat_c": 19.0, "cool_c": 26.0, "sensors": []}))]
#[serde(deny_unknown_fields)]
pub struct DefaultTarget {
    /// Heating setpoint, °C.
    pub heat_c: f64,
    /// Cooling setpoint, °C.
    pub cool_c: f64,
    /// The sensors to decide on, with weights; empty: every sensor, weight 1.
    #[serde(default)]
    pub sensors: Vec<SensorWeight>,
}

/// How long an override holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
pub enum Hold {
    /// Until a given instant.
    Until {
        /// When the override ends.
        at: Timestamp,
    },
    /// For a duration from its start.
    For {
        /// Minutes.
        minutes: u32,
    },
    /// Until the schedule's first change after the override's start, as the schedule stands
    /// now: `end` follows later edits of the rules and the default target (a block added before
    /// the old change ends it at the block's start; an edit that changes what is in force now
    /// ends it at once); once ended it stays ended.
    NextChange,
    /// Until deleted.
    Indefinite,
}

/// An override as the client sends it (`POST /v1/overrides`). "Make it 22 now" is
/// `{"heat_c": 22, "hold": {"type": "next_change"}}`. At least one setpoint is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"heat_c": 22.0, "hold": {"type": "for", "minutes": 120}}))]
#[serde(deny_unknown_fields)]
pub struct NewOverride {
    /// Heating setpoint, °C; null: the schedule's.
    #[serde(default)]
    pub heat_c: Option<f64>,
    /// Cooling setpoint, °C; null: the schedule's.
    #[serde(default)]
    pub cool_c: Option<f64>,
    /// When it starts; default now. At most a year ahead. An override that would be over by
    /// the time it is stored (its end not after now) is refused.
    #[serde(default)]
    pub start: Option<Timestamp>,
    /// How long it holds.
    pub hold: Hold,
    /// The sensors to decide on; empty: the schedule's.
    #[serde(default)]
    pub sensors: Vec<SensorWeight>,
    /// The zone (id) it overrides the schedule of; absent: the default zone (`house`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone: Option<String>,
}

/// A stored override (`GET /v1/overrides`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Override {
    /// Assigned by the engine.
    pub id: i64,
    /// Heating setpoint, °C, if it sets one.
    pub heat_c: Option<f64>,
    /// Cooling setpoint, °C, if it sets one.
    pub cool_c: Option<f64>,
    /// The sensors it decides on (empty: the schedule's).
    pub sensors: Vec<SensorWeight>,
    /// When it starts.
    pub start: Timestamp,
    /// When it ends; null: indefinite.
    pub end: Option<Timestamp>,
    /// The hold as requested.
    pub hold: Hold,
    /// When it was created. Among overrides in force, the newest start wins.
    pub created: Timestamp,
    /// The zone (id) whose schedule it overrides.
    pub zone: String,
}

/// Names a rule in a timeline segment or a decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RuleRef {
    /// The rule's layer.
    pub layer: Layer,
    /// The rule or override id; null for the default target.
    pub id: Option<i64>,
    /// The rule's name (`default` for the default target, `override` for overrides).
    pub name: String,
}

/// A stretch of time with one target in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    /// Start (inclusive).
    pub start: Timestamp,
    /// End (exclusive).
    pub end: Timestamp,
    /// Local start, RFC 9557 (`2026-03-29T03:30:00+02:00[Europe/Berlin]`).
    pub start_local: String,
    /// Local end, RFC 9557.
    pub end_local: String,
    /// Heating setpoint in force, °C.
    pub heat_c: f64,
    /// Cooling setpoint in force, °C.
    pub cool_c: f64,
    /// The sensors decided on (empty: every sensor, weight 1).
    pub sensors: Vec<SensorWeight>,
    /// The rule that won.
    pub rule: RuleRef,
    /// The rules also in force that it beat, winner's closest rival first.
    pub beaten: Vec<RuleRef>,
}

/// Query of `GET /v1/schedule/timeline`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// How many hours ahead.
    pub hours: Option<u32>,
    /// Start instead of now (RFC 3339), e.g. to preview a day.
    pub from: Option<Timestamp>,
    /// The zone (id); absent: the default zone (`house`).
    pub zone: Option<String>,
}

/// `GET /v1/schedule/timeline`: the segments in force from `from` to `to`, in order, without
/// gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Timeline {
    /// The IANA time zone the schedule is read in, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// Start of the range; the first segment starts here (segments are clipped to the range).
    pub from: Timestamp,
    /// End of the range.
    pub to: Timestamp,
    /// The segments, in order, covering the range without gaps; adjacent ones differ in target
    /// or winner.
    pub segments: Vec<Segment>,
}

/// `DELETE /v1/overrides` ("resume the schedule"): how many overrides in force were ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OverridesEnded {
    /// Overrides that were in force and are ended now (future ones are kept).
    pub ended: u64,
}
