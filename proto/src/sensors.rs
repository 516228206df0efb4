//! Sensor readings: the seed contract `PUT /v1/sensors/update` and the sensor views.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;

/// `PUT /v1/sensors/update`: one report of one host's sensors (the seed contract, kept exactly;
/// the `timestamp` per sensor and `agent_time` are optional, additive extensions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"host_id": "myhostid", "sensors": {"1058F50F01080047": {
    "type": "DS18S20", "value": 24.3125, "alias": "some_alias", "extra": "arbitrary string"}}}))]
#[serde(deny_unknown_fields)]
pub struct SensorUpdate {
    /// The reporting host's stable id (Pi serial, machine id, or configured).
    pub host_id: String,
    /// Readings keyed by sensor id (the 1-Wire ROM id for DS18B20s, e.g. `28-0316a2797bff`).
    pub sensors: BTreeMap<String, SensorReport>,
    /// The agent's own clock when it sent this report, so the engine can flag a wrong clock and
    /// re-time the readings stamped by it (see `PUT /v1/sensors/update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_time: Option<Timestamp>,
}

/// Lowest reading the engine accepts, °C: the bottom of the DS18B20's range. A value outside
/// [`MIN_READING_C`]..=[`MAX_READING_C`] is not a temperature any supported probe can report
/// (−127 and −273.15 are error values, ±1e308 garbage): the report is refused (422) and
/// nothing of it is stored. A failed reading is sent as null.
pub const MIN_READING_C: f64 = -55.0;
/// Highest reading the engine accepts, °C: the top of the DS18B20's range.
pub const MAX_READING_C: f64 = 125.0;

/// The schema of [`SensorReport::value`], with the accepted range from the constants the
/// engine validates with (so the document cannot drift from the check).
fn reading_value_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
        .minimum(Some(MIN_READING_C))
        .maximum(Some(MAX_READING_C))
        .description(Some(format!(
            "Degrees Celsius ({MIN_READING_C} to {MAX_READING_C}, the DS18B20's range; a value \
             outside it is refused with 422), or null when the reading failed (recorded as a \
             failed reading)."
        )))
        .build()
}

/// One sensor's reading inside a [`SensorUpdate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorReport {
    /// The sensor type, e.g. `DS18B20`, `DS18S20`, `simulated`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Degrees Celsius ([`MIN_READING_C`] to [`MAX_READING_C`]), or null when the reading failed
    /// (recorded as a failed reading).
    #[schema(schema_with = reading_value_schema)]
    pub value: Option<f64>,
    /// A human name for the sensor as known to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Any string the agent wants stored with the sensor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
    /// When the reading was taken. Absent: the engine uses the time it received the report.
    /// Readings are unique per (sensor, timestamp), so a replayed reading is stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
}

/// Reply to an accepted [`SensorUpdate`] (201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SensorUpdateAck {
    /// Always `"ok"`.
    pub status: String,
    /// The ids of the sensors whose readings were stored, sorted by id, whatever the order of
    /// the request's keys.
    pub ids: Vec<String>,
    /// Management work waiting for this host's sensor agent (settings to fetch, commands to
    /// carry out); absent when there never was any. Additive: a client of the seed contract
    /// ignores it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<crate::manage::Pending>,
}

/// Longest sensor id, characters (1-Wire ids have 15). Ids hold no `/` and no control
/// characters: they appear in URL paths and logs.
pub const MAX_SENSOR_ID_CHARS: usize = 64;
/// Longest sensor `type`, characters.
pub const MAX_SENSOR_TYPE_CHARS: usize = 64;
/// Longest `alias` or `extra` of a reading, characters.
pub const MAX_REPORT_TEXT_CHARS: usize = 256;
/// Most updates one [`SensorBacklog`] may carry.
pub const MAX_BACKLOG_UPDATES: usize = 1000;
/// Most readings one [`SensorBacklog`] may carry, all its updates together.
pub const MAX_BACKLOG_READINGS: usize = 20_000;
/// `max_points` of a readings query.
pub const POINTS: RangeInclusive<u32> = 2..=10_000;
/// `max_points` when the query leaves it out.
pub const DEFAULT_POINTS: u32 = 500;

/// `PUT /v1/sensors/backlog`: reports an agent could not deliver when they were taken (engine
/// down or not found), replayed oldest first in one request.
///
/// Each update is validated like `PUT /v1/sensors/update`, and every reading must carry its
/// `timestamp`. While `agent_time` shows the agent's clock off by more than the engine's limit,
/// readings the offset places before their receipt are re-timed by it (the clock was off when
/// they were read too); the others are stored at their timestamps. No reading is refused for
/// its time. Readings are unique per (sensor, timestamp), so a backlog sent twice (the agent
/// died before it saw the answer) is stored once, and an old reading never replaces a sensor's
/// newer latest reading. All updates are stored in one commit, or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SensorBacklog {
    /// The reporting host; every update must carry the same `host_id`.
    pub host_id: String,
    /// The queued reports, oldest first.
    pub updates: Vec<SensorUpdate>,
    /// The agent's clock when it sent this request (as in [`SensorUpdate`]): records the agent's
    /// clock offset, by which the engine re-times the readings consistent with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_time: Option<Timestamp>,
}

/// Reply to an accepted [`SensorBacklog`] (201).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SensorBacklogAck {
    /// Always `"ok"`.
    pub status: String,
    /// How many updates were accepted (all of them).
    pub updates: usize,
    /// How many readings they carried (already stored ones included).
    pub readings: usize,
}

/// A sensor as the engine knows it (`GET /v1/sensors`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SensorInfo {
    /// The sensor id as reported.
    pub id: String,
    /// The host that reported it last.
    pub host_id: String,
    /// The sensor type as reported, e.g. `DS18B20`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The alias as reported, if any.
    pub alias: Option<String>,
    /// The `extra` string as reported, if any.
    pub extra: Option<String>,
    /// The name people gave the sensor ([`SensorSettings`]); shown instead of the alias.
    #[serde(default)]
    pub name: Option<String>,
    /// Weight when the rule in force names no sensors; 0: counted only when a rule names it.
    #[serde(default = "one")]
    pub weight: f64,
    /// Calibration offset, °C, already added to `latest.value`.
    #[serde(default)]
    pub offset_c: f64,
    /// The newest reading, if any, calibrated. Its `at` is when it was taken, or when the engine
    /// received it if its timestamp is later (an agent clock a little ahead): never after now.
    /// A reading stamped after its receipt by more than the clock skew limit never becomes the
    /// latest (see `misdated_readings` in `GET /v1/agents`).
    pub latest: Option<Reading>,
    /// True when the newest reading is older than the engine's staleness limit, or absent.
    pub stale: bool,
    /// Since when the newest value has been the same (the reading that first had it).
    #[serde(default)]
    pub value_since: Option<Timestamp>,
    /// True when the value has not moved while the heating or cooling ran for an hour in all:
    /// the probe is likely stuck, and the control loop leaves it out (exclusion `stuck`) until
    /// its value changes.
    #[serde(default)]
    pub stuck: bool,
}

fn one() -> f64 {
    1.0
}

/// Most characters of a sensor's name.
pub const MAX_SENSOR_NAME: usize = 64;
/// Largest default weight of a sensor.
pub const MAX_SENSOR_WEIGHT: f64 = 10.0;
/// Largest calibration offset either way, °C.
pub const MAX_SENSOR_OFFSET_C: f64 = 10.0;

/// `PUT /v1/sensors/{id}/settings` (admin): what people set for a sensor. The whole set is
/// replaced; readings stay stored as measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Living room", "weight": 1.0, "offset_c": -0.5}))]
#[serde(deny_unknown_fields)]
pub struct SensorSettings {
    /// A display name, or null (or empty) to show the agent's alias again.
    pub name: Option<String>,
    /// Weight when the rule in force names no sensors; 0 keeps a sensor (an outdoor probe,
    /// say) out of the default mean: it counts only where a rule names it.
    pub weight: f64,
    /// Calibration offset, °C, added to every reading the engine uses or serves
    /// (after the DS18B20 plausibility checks, which judge the raw value).
    pub offset_c: f64,
}

/// One stored reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Reading {
    /// When the reading was taken.
    pub at: Timestamp,
    /// Degrees Celsius, or null for a failed reading.
    pub value: Option<f64>,
}

/// Query of `GET /v1/sensors/{id}/readings`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsQuery {
    /// Start of the range (inclusive, RFC 3339). Default: 24 hours before `to`.
    pub from: Option<Timestamp>,
    /// End of the range (exclusive, RFC 3339). Default: now.
    pub to: Option<Timestamp>,
    /// At most this many points. When the range holds more readings, they are
    /// downsampled into this many equal time buckets with min/mean/max each.
    pub max_points: Option<u32>,
}

/// One point of a readings series (calibrated by the sensor's current offset): a raw reading (`count` 1, min = mean = max) or a bucket of
/// several.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Point {
    /// Start of the bucket, or the reading's time.
    pub at: Timestamp,
    /// Lowest value, °C; null when every reading in it failed.
    pub min: Option<f64>,
    /// Mean value, °C; null when every reading in it failed.
    pub mean: Option<f64>,
    /// Highest value, °C; null when every reading in it failed.
    pub max: Option<f64>,
    /// Readings with a value in the bucket.
    pub count: u32,
}

/// Reply of `GET /v1/sensors/{id}/readings`: points in time order, empty buckets left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReadingsPage {
    /// The sensor the readings belong to.
    pub sensor_id: String,
    /// Start of the range served (inclusive).
    pub from: Timestamp,
    /// End of the range served (exclusive).
    pub to: Timestamp,
    /// Width of each bucket, seconds; 0 when the points are raw readings.
    pub bucket_s: u64,
    /// The points, oldest first.
    pub points: Vec<Point>,
}
