//! The bounds the servers enforce on requests, written into their OpenAPI documents.
//!
//! Each bound is a constant next to the type it limits (`sensors::MAX_SENSOR_NAME`,
//! `history::DAYS`, ...); the handlers check those constants, and [`document`] writes the same
//! constants into the generated document as JSON Schema keywords (`minimum`, `maxLength`,
//! `pattern`, `maxItems`, ...) or, where JSON Schema cannot say it (a span between two fields,
//! a sum over items), as a sentence added to the field's description. utoipa's attributes take
//! only literals, so the bounds are applied to the generated document instead: a bound can
//! never say one number while the check enforces another.
//!
//! A schema is never stricter than the server: whatever it refuses, the server refuses too
//! (generated invalid requests must all be rejected). Patterns are built from the same
//! character classes the checks use ([`CONTROL`], [`WHITESPACE`]).

use std::ops::RangeInclusive;

use utoipa::openapi::path::{Operation, Parameter};
use utoipa::openapi::schema::{Array, Object};
use utoipa::openapi::{OpenApi, RefOr, Schema};

use crate::{agents, control, fallback, history, manage, relays, schedules, sensors, zones};

/// The control characters (Unicode `Cc`, what `char::is_control` says), as inclusive ranges.
pub const CONTROL: [RangeInclusive<char>; 2] = ['\u{0}'..='\u{1f}', '\u{7f}'..='\u{9f}'];

/// Unicode `White_Space` (what `char::is_whitespace` says), as inclusive ranges.
pub const WHITESPACE: [RangeInclusive<char>; 10] = [
    '\u{9}'..='\u{d}',
    ' '..=' ',
    '\u{85}'..='\u{85}',
    '\u{a0}'..='\u{a0}',
    '\u{1680}'..='\u{1680}',
    '\u{2000}'..='\u{200a}',
    '\u{2028}'..='\u{2029}',
    '\u{202f}'..='\u{202f}',
    '\u{205f}'..='\u{205f}',
    '\u{3000}'..='\u{3000}',
];

/// `ranges` as the inside of an ECMA-262 character class: `\u0000-\u001F...`.
fn class(ranges: &[RangeInclusive<char>]) -> String {
    ranges
        .iter()
        .map(|r| {
            let (a, b) = (u32::from(*r.start()), u32::from(*r.end()));
            if a == b { format!("\\u{a:04X}") } else { format!("\\u{a:04X}-\\u{b:04X}") }
        })
        .collect()
}

/// A string without control characters.
fn no_control() -> String {
    format!("^[^{}]*$", class(&CONTROL))
}

/// A JSON Schema bound.
#[derive(Debug, Clone)]
enum Bound {
    /// A number (or integer) in `min..=max`; `exclusive_min` makes `min` a strict lower bound.
    Number { min: Option<f64>, max: Option<f64>, exclusive_min: bool },
    /// A string of `min..=max` characters.
    Chars(RangeInclusive<usize>),
    /// A string matching an ECMA-262 regular expression.
    Pattern(String),
    /// An array of `min..=max` items.
    Items(RangeInclusive<usize>),
    /// An object whose keys are strings of `chars` characters matching `pattern`.
    Keys { chars: RangeInclusive<usize>, pattern: String },
    /// A sentence for people, appended to the description: what JSON Schema cannot say.
    Note(String),
    /// The value used when the field or parameter is left out.
    Default(serde_json::Value),
    /// One of these values only (JSON Schema `enum`).
    OneOf(Vec<serde_json::Value>),
}

impl From<u32> for Bound {
    fn from(default: u32) -> Self {
        Self::Default(default.into())
    }
}

fn range<T: Copy + Into<f64>>(r: &RangeInclusive<T>) -> Bound {
    Bound::Number {
        min: Some((*r.start()).into()),
        max: Some((*r.end()).into()),
        exclusive_min: false,
    }
}

/// Where a bound goes.
#[derive(Debug, Clone, Copy)]
enum At {
    /// A property of a component schema; in a tagged enum (`oneOf` of objects), of the
    /// variant whose `type` is `variant`.
    Field { schema: &'static str, variant: Option<&'static str>, field: &'static str },
    /// A parameter of every operation on `path`.
    Param { path: &'static str, name: &'static str },
}

const fn field(schema: &'static str, field: &'static str) -> At {
    At::Field { schema, variant: None, field }
}

const fn variant(schema: &'static str, variant: &'static str, field: &'static str) -> At {
    At::Field { schema, variant: Some(variant), field }
}

const fn param(path: &'static str, name: &'static str) -> At {
    At::Param { path, name }
}

/// Every bound, where it goes.
fn bounds() -> Vec<(At, Bound)> {
    let host_id = || {
        [
            Bound::Chars(1..=agents::MAX_HOST_ID_CHARS),
            Bound::Pattern(agents::HOST_ID_PATTERN.to_owned()),
        ]
    };
    let hhmm = "^([01][0-9]|2[0-3]):[0-5][0-9]$";
    let hhmm_or_24 = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$";
    let date = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$";
    let date_time = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T([01][0-9]|2[0-3]):[0-5][0-9]$";
    let span = format!("`from` and `to` may be at most {} days apart.", history::MAX_SPAN_DAYS);
    let mut all = vec![
        // Sensor reports.
        (
            field("SensorUpdate", "sensors"),
            Bound::Keys {
                chars: 1..=sensors::MAX_SENSOR_ID_CHARS,
                pattern: format!("^[^/{}]*$", class(&CONTROL)),
            },
        ),
        (field("SensorReport", "type"), Bound::Chars(1..=sensors::MAX_SENSOR_TYPE_CHARS)),
        (field("SensorReport", "alias"), Bound::Chars(0..=sensors::MAX_REPORT_TEXT_CHARS)),
        (field("SensorReport", "extra"), Bound::Chars(0..=sensors::MAX_REPORT_TEXT_CHARS)),
        (field("SensorBacklog", "updates"), Bound::Items(1..=sensors::MAX_BACKLOG_UPDATES)),
        (
            field("SensorBacklog", "updates"),
            Bound::Note(format!(
                "At most {} readings in all updates together.",
                sensors::MAX_BACKLOG_READINGS
            )),
        ),
        // Sensor settings.
        (field("SensorSettings", "name"), Bound::Chars(0..=sensors::MAX_SENSOR_NAME)),
        (field("SensorSettings", "name"), Bound::Pattern(no_control())),
        (field("SensorSettings", "weight"), range(&(0.0..=sensors::MAX_SENSOR_WEIGHT))),
        (
            field("SensorSettings", "offset_c"),
            range(&(-sensors::MAX_SENSOR_OFFSET_C..=sensors::MAX_SENSOR_OFFSET_C)),
        ),
        // Readings, runs, analytics, decisions, timeline.
        (param("/v1/sensors/{id}/readings", "max_points"), range(&sensors::POINTS)),
        (param("/v1/sensors/{id}/readings", "max_points"), sensors::DEFAULT_POINTS.into()),
        (param("/v1/sensors/{id}/readings", "from"), Bound::Note(span.clone())),
        (param("/v1/runs", "from"), Bound::Note(span)),
        (param("/v1/analytics/daily", "days"), range(&history::DAYS)),
        (param("/v1/analytics/daily", "days"), history::DEFAULT_DAYS.into()),
        (param("/v1/analytics/periods", "hours"), range(&history::PERIOD_HOURS)),
        (param("/v1/analytics/periods", "hours"), history::DEFAULT_PERIOD_HOURS.into()),
        (
            param("/v1/analytics/periods", "period_min"),
            Bound::OneOf(history::PERIOD_MINUTES.iter().map(|&m| m.into()).collect()),
        ),
        (param("/v1/analytics/periods", "period_min"), history::DEFAULT_PERIOD_MIN.into()),
        (param("/v1/control/decisions", "limit"), range(&control::DECISIONS_LIMIT)),
        (param("/v1/control/decisions", "limit"), control::DEFAULT_DECISIONS_LIMIT.into()),
        (param("/v1/schedule/timeline", "hours"), range(&schedules::TIMELINE_HOURS)),
        (param("/v1/schedule/timeline", "hours"), schedules::DEFAULT_TIMELINE_HOURS.into()),
        // Relays.
        (field("RelayRegistration", "url"), Bound::Chars(1..=relays::MAX_URL_CHARS)),
        (
            field("RelayRegistration", "url"),
            Bound::Pattern(format!("^https?://[^{}{}]*$", class(&CONTROL), class(&WHITESPACE))),
        ),
        (field("RelayRegistration", "outputs"), Bound::Items(1..=relays::MAX_OUTPUTS)),
        (
            field("RelayRegistration", "outputs"),
            Bound::Note(format!(
                "Each output's `id` is 1 to {} characters of `[A-Za-z0-9_-]`, its `name` at \
                 most {} characters.",
                agents::MAX_HOST_ID_CHARS,
                relays::MAX_OUTPUT_NAME_CHARS
            )),
        ),
        (field("RelayCommand", "lease_s"), range(&relays::LEASE_S)),
        // Fallback programs.
        (field("FallbackProgram", "after_s"), range(&fallback::AFTER_S)),
        (
            field("FallbackProgram", "outputs"),
            Bound::Note(format!(
                "Keys are the agent's output ids. A `frost` program's `setpoint_c` is {} to {} \
                 °C; a sensor's `id` and `host` are 1 to {} characters of `[A-Za-z0-9._-]`, \
                 its `url` an http:// URL without user info of at most {} characters, its \
                 `token` 1 to {} printable ASCII characters.",
                fallback::SETPOINT_C.start(),
                fallback::SETPOINT_C.end(),
                fallback::MAX_ID_CHARS,
                relays::MAX_URL_CHARS,
                fallback::MAX_TOKEN_CHARS
            )),
        ),
        (
            field("OutputFallbackChoice", "program"),
            Bound::Note(format!(
                "A `frost` program's `setpoint_c` is {} to {} °C; its sensor's `id` 1 to {} \
                 characters of `[A-Za-z0-9._-]`. A `sensor_agent` sensor names a sensor that \
                 host reports, its `url` an http:// URL without user info of at most {} \
                 characters, and no `token`: the engine fills it in (422 when one is sent).",
                fallback::SETPOINT_C.start(),
                fallback::SETPOINT_C.end(),
                fallback::MAX_ID_CHARS,
                relays::MAX_URL_CHARS
            )),
        ),
        (field("BlindDuty", "pct"), range(&fallback::DUTY_PCT)),
        (field("BlindDuty", "period_s"), range(&fallback::PERIOD_S)),
        // Agents managed from the engine.
        (
            field("SensorAgentSettings", "interval_s"),
            Bound::Number {
                min: Some(0.0),
                max: Some(manage::MAX_INTERVAL_S),
                exclusive_min: true,
            },
        ),
        (
            field("SensorAgentSettings", "interval_s"),
            Bound::Note(
                "The agent refuses a value outside its local remote_min_interval_s..=\
                 remote_max_interval_s and says so in the applied state."
                    .to_owned(),
            ),
        ),
        (
            field("RelayAgentSettings", "outputs"),
            Bound::Keys {
                chars: 1..=relays::MAX_OUTPUT_ID_CHARS,
                pattern: agents::HOST_ID_PATTERN.to_owned(),
            },
        ),
        (
            field("RelayAgentSettings", "outputs"),
            Bound::Note(format!("At most {} outputs.", relays::MAX_OUTPUTS)),
        ),
        (field("OutputProtection", "min_on_s"), range(&(0..=manage::MAX_PROTECTION_S))),
        (field("OutputProtection", "min_off_s"), range(&(0..=manage::MAX_PROTECTION_S))),
        (field("OutputProtection", "max_on_s"), range(&manage::MAX_ON_S)),
        (
            field("OutputProtection", "max_on_s"),
            Bound::Note(
                "The agent refuses a value that is not stricter than its local one (a longer \
                 min_on_s or min_off_s, a shorter max_on_s), beyond its local \
                 remote_max_protection_s (minimum times) or remote_min_max_on_s (maximum on \
                 time), or with max_on_s not more than min_on_s; it says so in the applied state."
                    .to_owned(),
            ),
        ),
        (field("SensorAgentSettings", "resolution_bits"), range(&manage::RESOLUTION_BITS)),
        (
            field("SensorAgentSettings", "sensors"),
            Bound::Keys {
                chars: 1..=sensors::MAX_SENSOR_ID_CHARS,
                pattern: format!("^[^/{}]*$", class(&CONTROL)),
            },
        ),
        (
            field("SensorAgentSettings", "sensors"),
            Bound::Note(format!(
                "At most {} sensors; ids are matched without regard to case, so two keys that \
                 differ only in case are refused.",
                manage::MAX_AGENT_SENSORS
            )),
        ),
        (field("AgentSensorSettings", "alias"), Bound::Chars(0..=sensors::MAX_REPORT_TEXT_CHARS)),
        (
            field("AgentSensorSettings", "offset_c"),
            range(&(-manage::MAX_AGENT_OFFSET_C..=manage::MAX_AGENT_OFFSET_C)),
        ),
        (
            field("ScreenSettings", "max_rate_c_per_min"),
            Bound::Number {
                min: Some(0.0),
                max: Some(manage::MAX_SCREEN_RATE_C_PER_MIN),
                exclusive_min: true,
            },
        ),
        (field("ScreenSettings", "step_rejections"), range(&(0..=manage::MAX_STEP_REJECTIONS))),
        (field("AppliedSettings", "refused"), Bound::Items(0..=manage::MAX_REFUSALS)),
        (
            field("AppliedSettings", "revision"),
            Bound::Note("At most the host's current settings revision.".to_owned()),
        ),
        (field("Refusal", "field"), Bound::Chars(0..=manage::MAX_MESSAGE_CHARS)),
        (field("Refusal", "field"), Bound::Pattern(no_control())),
        (field("Refusal", "reason"), Bound::Chars(0..=manage::MAX_MESSAGE_CHARS)),
        (field("Refusal", "reason"), Bound::Pattern(no_control())),
        (field("CommandReport", "message"), Bound::Chars(0..=manage::MAX_MESSAGE_CHARS)),
        (field("CommandReport", "message"), Bound::Pattern(no_control())),
        (
            field("CommandReport", "result"),
            Bound::Note(format!("At most {} bytes of JSON.", manage::MAX_RESULT_BYTES)),
        ),
        (param("/v1/agents/{host_id}/commands", "limit"), range(&manage::COMMANDS_LIMIT)),
        (param("/v1/agents/{host_id}/commands", "limit"), manage::DEFAULT_COMMANDS_LIMIT.into()),
        // Control settings.
        (field("ControlSettings", "frost_floor_c"), range(&control::FROST_FLOOR_C)),
        (field("ControlSettings", "max_ceiling_c"), range(&control::MAX_CEILING_C)),
        (field("ControlSettings", "min_on_s"), range(&control::MIN_ON_S)),
        (field("ControlSettings", "min_off_s"), range(&control::MIN_OFF_S)),
        (field("ControlSettings", "changeover_s"), range(&control::CHANGEOVER_S)),
        (field("ControlSettings", "auto_deadband_c"), range(&control::AUTO_DEADBAND_C)),
        (field("ControlSettings", "outlier_c"), range(&control::OUTLIER_C)),
        (field("ControlSettings", "sensor_loss_duty_pct"), range(&control::SENSOR_LOSS_DUTY_PCT)),
        // Schedules.
        (field("NewRule", "name"), Bound::Chars(1..=schedules::MAX_RULE_NAME_CHARS)),
        (field("NewRule", "name"), Bound::Pattern(no_control())),
        (field("NewRule", "name"), Bound::Note("Not blank.".to_owned())),
        (field("SensorWeight", "sensor_id"), Bound::Chars(1..=sensors::MAX_SENSOR_ID_CHARS)),
        (
            field("SensorWeight", "weight"),
            Bound::Number { min: Some(0.0), max: Some(schedules::MAX_WEIGHT), exclusive_min: true },
        ),
        (variant("When", "weekly", "days"), Bound::Items(1..=usize::MAX)),
        (variant("When", "weekly", "start"), Bound::Pattern(hhmm.to_owned())),
        (variant("When", "weekly", "end"), Bound::Pattern(hhmm_or_24.to_owned())),
        (
            variant("When", "cron", "expr"),
            Bound::Note(
                "Five fields: minute hour day-of-month month day-of-week (no seconds, no years)."
                    .to_owned(),
            ),
        ),
        (variant("When", "cron", "duration_min"), range(&schedules::CRON_DURATION_MIN)),
        (variant("When", "exception", "date"), Bound::Pattern(date.to_owned())),
        (variant("When", "exception", "start"), Bound::Pattern(hhmm.to_owned())),
        (variant("When", "exception", "end"), Bound::Pattern(hhmm_or_24.to_owned())),
        (variant("When", "vacation", "start"), Bound::Pattern(date_time.to_owned())),
        (variant("When", "vacation", "end"), Bound::Pattern(date_time.to_owned())),
        (
            variant("When", "vacation", "end"),
            Bound::Note(format!("At most {} days after `start`.", schedules::MAX_AHEAD_DAYS)),
        ),
        (variant("Hold", "for", "minutes"), range(&schedules::HOLD_MIN)),
        (
            field("NewOverride", "start"),
            Bound::Note(format!("At most {} days ahead.", schedules::MAX_AHEAD_DAYS)),
        ),
    ];
    let relay = || {
        [Bound::Chars(1..=zones::MAX_RELAY_CHARS), Bound::Pattern(zones::RELAY_PATTERN.to_owned())]
    };
    let relays = |max: usize| {
        [
            Bound::Items(0..=max),
            Bound::Note(format!(
                "Each a relay id (`{}`), at most once.",
                zones::RELAY_PATTERN.trim_start_matches('^').trim_end_matches('$')
            )),
        ]
    };
    for schema in ["NewZone", "NewPlant"] {
        all.extend([
            (field(schema, "name"), Bound::Chars(1..=zones::MAX_NAME_CHARS)),
            (field(schema, "name"), Bound::Pattern(no_control())),
            (field(schema, "name"), Bound::Note("Not blank.".to_owned())),
        ]);
        for r in ["heat_relay", "cool_relay"] {
            all.extend(relay().map(|b| (field(schema, r), b)));
        }
    }
    all.extend([
        (field("NewZone", "sensors"), Bound::Items(0..=zones::MAX_ZONE_SENSORS)),
        (
            field("NewZone", "sensors"),
            Bound::Note(format!(
                "Each a sensor id of 1 to {} characters, at most once.",
                sensors::MAX_SENSOR_ID_CHARS
            )),
        ),
        (field("NewPlant", "zones"), Bound::Items(0..=zones::MAX_ZONES)),
        (
            field("NewPlant", "zones"),
            Bound::Note("Each the id of an existing zone, at most once.".to_owned()),
        ),
        (field("NewPlant", "min_on_s"), range(&control::MIN_ON_S)),
        (field("NewPlant", "min_off_s"), range(&control::MIN_OFF_S)),
        (field("NewPlant", "changeover_s"), range(&control::CHANGEOVER_S)),
        (field("NewPlant", "max_run_s"), range(&zones::MAX_RUN_S)),
        (field("NewPlant", "max_run_s"), Bound::Note("At least `min_on_s`.".to_owned())),
        (field("NewPlant", "valve_delay_s"), range(&zones::VALVE_DELAY_S)),
        (field("NewPlant", "overrun_s"), range(&zones::OVERRUN_S)),
        (field("NewPlant", "min_calling_zones"), range(&(1..=zones::MAX_ZONES as u32))),
        (
            field("NewPlant", "min_calling_zones"),
            Bound::Note("At most the number of zones it serves.".to_owned()),
        ),
        (field("NewPlant", "bypass_zone"), Bound::Note("A zone it serves.".to_owned())),
    ]);
    all.extend(relays(zones::MAX_VALVES).map(|b| (field("NewZone", "valves"), b)));
    for path in ["/v1/zones/{zone_id}", "/v1/plants/{plant_id}"] {
        let name = path.rsplit('{').next().unwrap_or_default().trim_end_matches('}');
        all.extend([
            (param(path, name), Bound::Chars(1..=zones::MAX_ID_CHARS)),
            (param(path, name), Bound::Pattern(zones::ID_PATTERN.to_owned())),
        ]);
    }
    for schema in ["SensorUpdate", "SensorBacklog", "RelayRegistration"] {
        all.extend(host_id().map(|b| (field(schema, "host_id"), b)));
    }
    let setpoints = format!(
        "With both setpoints, `cool_c` must be at least `heat_c` + {} °C.",
        schedules::MIN_SETPOINT_GAP_C
    );
    let sensors = format!("At most {} sensors, each named once.", schedules::MAX_SENSORS);
    for schema in ["NewRule", "NewOverride", "DefaultTarget"] {
        all.extend([
            (field(schema, "heat_c"), range(&schedules::HEAT_C)),
            (field(schema, "cool_c"), range(&schedules::COOL_C)),
            (field(schema, "cool_c"), Bound::Note(setpoints.clone())),
            (field(schema, "sensors"), Bound::Items(0..=schedules::MAX_SENSORS)),
            (field(schema, "sensors"), Bound::Note(sensors.clone())),
        ]);
    }
    all
}

/// Write every bound into `doc`, where `doc` has its place: the component schemas and paths it
/// does not have belong to another service's document and are skipped. Returns the bounds
/// whose schema or path is in `doc` but whose field, variant or parameter is not (a renamed
/// field): empty when every bound found its place, which the services' tests assert.
pub fn document(doc: &mut OpenApi) -> Vec<String> {
    let mut misplaced = Vec::new();
    for (at, bound) in bounds() {
        match at {
            At::Field { schema, variant, field } => {
                let Some(components) = doc.components.as_mut() else { continue };
                let Some(RefOr::T(root)) = components.schemas.get_mut(schema) else { continue };
                match property(root, variant, field) {
                    Some(target) => apply(target, &bound),
                    None => misplaced.push(format!("{schema}.{}{field}", variant_label(variant))),
                }
            }
            At::Param { path, name } => {
                let Some(item) = doc.paths.paths.get_mut(path) else { continue };
                let mut found = false;
                for op in operations(item) {
                    let params = op.parameters.iter_mut().flatten().filter_map(|p| match p {
                        RefOr::T(p) => Some(p),
                        RefOr::Ref(_) => None,
                    });
                    for p in params.filter(|p| p.name == name) {
                        apply_param(p, &bound);
                        found = true;
                    }
                }
                if !found {
                    misplaced.push(format!("{path} ?{name}"));
                }
            }
        }
    }
    misplaced
}

fn variant_label(variant: Option<&str>) -> String {
    variant.map(|v| format!("<{v}>.")).unwrap_or_default()
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// The schema of `field` in `root` (in the variant tagged `variant`, for a tagged enum).
fn property<'a>(
    root: &'a mut Schema,
    variant: Option<&str>,
    field: &str,
) -> Option<&'a mut Schema> {
    let object = match (root, variant) {
        (Schema::Object(o), None) => o,
        (Schema::OneOf(one_of), Some(tag)) => {
            one_of.items.iter_mut().find_map(|item| match item {
                RefOr::T(Schema::Object(o)) if tagged(o, tag) => Some(o),
                _ => None,
            })?
        }
        _ => return None,
    };
    match object.properties.get_mut(field)? {
        RefOr::T(schema) => Some(schema),
        RefOr::Ref(_) => None,
    }
}

/// True when the object's `type` property is the single-value enum `tag`.
fn tagged(o: &Object, tag: &str) -> bool {
    matches!(o.properties.get("type"), Some(RefOr::T(Schema::Object(t)))
        if t.enum_values.as_deref() == Some(&[serde_json::Value::from(tag)][..]))
}

fn note(description: &mut Option<String>, sentence: &str) {
    *description = Some(match description.take() {
        Some(d) if !d.is_empty() => format!("{} {sentence}", d.trim_end()),
        _ => sentence.to_owned(),
    });
}

fn number(v: f64) -> utoipa::Number {
    // Whole numbers as integers: `maximum: 366`, not `366.0`, on integer parameters.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        utoipa::Number::Int(v as isize)
    } else {
        utoipa::Number::Float(v)
    }
}

fn apply(target: &mut Schema, bound: &Bound) {
    match (target, bound) {
        (Schema::Object(o), Bound::Number { min, max, exclusive_min }) => {
            let min = min.map(number);
            if *exclusive_min {
                o.exclusive_minimum = min;
                o.minimum = None;
            } else {
                o.minimum = min;
            }
            o.maximum = max.map(number);
        }
        (Schema::Object(o), Bound::Chars(r)) => {
            o.min_length = (*r.start() > 0).then_some(*r.start());
            o.max_length = Some(*r.end());
        }
        (Schema::Object(o), Bound::Pattern(p)) => o.pattern = Some(p.clone()),
        (Schema::Object(o), Bound::Keys { chars, pattern }) => {
            let mut names = Object::new();
            names.schema_type = utoipa::openapi::schema::Type::String.into();
            names.min_length = Some(*chars.start());
            names.max_length = Some(*chars.end());
            names.pattern = Some(pattern.clone());
            o.property_names = Some(Box::new(Schema::Object(names)));
        }
        (Schema::Object(o), Bound::Note(s)) => note(&mut o.description, s),
        (Schema::Object(o), Bound::Default(v)) => o.default = Some(v.clone()),
        (Schema::Object(o), Bound::OneOf(values)) => o.enum_values = Some(values.clone()),
        (Schema::Array(a), Bound::Items(r)) => items(a, r),
        (Schema::Array(a), Bound::Note(s)) => note(&mut a.description, s),
        // A bound that does not fit its schema's kind is a mistake in `bounds()`; the
        // services' tests catch it (`the_bounds_are_in_the_document`).
        _ => {}
    }
}

fn items(a: &mut Array, r: &RangeInclusive<usize>) {
    a.min_items = (*r.start() > 0).then_some(*r.start());
    a.max_items = (*r.end() < usize::MAX).then_some(*r.end());
}

fn apply_param(p: &mut Parameter, bound: &Bound) {
    if let Bound::Note(s) = bound {
        note(&mut p.description, s);
    } else if let Some(RefOr::T(schema)) = p.schema.as_mut() {
        apply(schema, bound);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_ranges(c: char, ranges: &[RangeInclusive<char>]) -> bool {
        ranges.iter().any(|r| r.contains(&c))
    }

    /// The character classes of the patterns are exactly what the checks use.
    #[test]
    fn classes_are_rusts() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(c.is_control(), in_ranges(c, &CONTROL), "{c:?}");
            assert_eq!(c.is_whitespace(), in_ranges(c, &WHITESPACE), "{c:?}");
        }
        assert_eq!(class(&CONTROL), "\\u0000-\\u001F\\u007F-\\u009F");
        assert_eq!(no_control(), "^[^\\u0000-\\u001F\\u007F-\\u009F]*$");
    }
}
