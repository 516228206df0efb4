//! Validation of rules, overrides and the default target, and parsing of `when` into a
//! [`Recurrence`]. Error messages name the field path (`when.days field must ...`).

use std::collections::HashSet;

use hearth_proto::Timestamp;
use hearth_proto::schedules::{
    COOL_C, CRON_DURATION_MIN, DefaultTarget, HEAT_C, HOLD_MIN, Hold, Layer, MAX_AHEAD_DAYS,
    MAX_DATE_YEAR, MAX_RULE_NAME_CHARS, MAX_SENSORS, MAX_WEIGHT, MIN_DATE_YEAR, MIN_SETPOINT_GAP_C,
    NewOverride, NewRule, SensorWeight, Weekday, When,
};
use hearth_proto::sensors::MAX_SENSOR_ID_CHARS;
use jiff::SignedDuration;
use jiff::civil::{Date, DateTime};

use super::Recurrence;

/// End of day, `24:00`, in minutes.
const END_OF_DAY: u16 = 24 * 60;

/// Check a rule; its layer when valid.
pub(crate) fn check_rule(r: &NewRule) -> Result<Layer, String> {
    let chars = r.name.chars().count();
    if !(1..=MAX_RULE_NAME_CHARS).contains(&chars) || r.name.trim().is_empty() {
        return Err(format!(
            "name field must be 1 to {MAX_RULE_NAME_CHARS} characters, not blank, got {chars}"
        ));
    }
    if r.name.chars().any(char::is_control) {
        return Err("name field must not contain control characters".into());
    }
    check_setpoints(r.heat_c, r.cool_c)?;
    check_sensors(&r.sensors)?;
    let recurrence = recurrence(&r.when)?;
    Ok(layer(&recurrence))
}

/// Check a rule a client sends: [`check_rule`], and what a request must not say although an
/// older version stored it (a day named twice, a date in the year 0). Stored rules are read
/// with [`check_rule`] alone, so an upgrade never drops a rule that was in force.
pub(crate) fn check_new_rule(r: &NewRule) -> Result<Layer, String> {
    let layer = check_rule(r)?;
    let year = |s: &str, field: &str| -> Result<(), String> {
        let year = s.get(..4).and_then(|y| y.parse::<i16>().ok()).unwrap_or(0);
        if (MIN_DATE_YEAR..=MAX_DATE_YEAR).contains(&year) {
            Ok(())
        } else {
            Err(format!(
                "{field} field must be in the years {MIN_DATE_YEAR} to {MAX_DATE_YEAR}, got {s:?}"
            ))
        }
    };
    match &r.when {
        When::Weekly { days, .. } => {
            let mut seen = [false; 7];
            for (i, d) in days.iter().enumerate() {
                if std::mem::replace(&mut seen[weekday_index(*d)], true) {
                    let name = format!("{d:?}").to_lowercase();
                    return Err(format!("when.days[{i}] field names {name} a second time"));
                }
            }
        }
        When::Exception { date, .. } => year(date, "when.date")?,
        When::Vacation { start, end } => {
            year(start, "when.start")?;
            year(end, "when.end")?;
        }
        When::Cron { .. } => {}
    }
    Ok(layer)
}

/// Check an override against `now` (its start at most a year ahead, its end after its start).
pub(crate) fn check_override(o: &NewOverride, now: Timestamp) -> Result<(), String> {
    check_setpoints(o.heat_c, o.cool_c)?;
    check_sensors(&o.sensors)?;
    let start = o.start.unwrap_or(now);
    if start.duration_since(now) > SignedDuration::from_hours(MAX_AHEAD_DAYS * 24) {
        return Err(format!(
            "start field must be at most {MAX_AHEAD_DAYS} days ahead, got {start}"
        ));
    }
    match &o.hold {
        Hold::Until { at } if *at <= start => {
            Err(format!("hold.at field must be after the start ({start}), got {at}"))
        }
        // Stored, it would never be in force: almost certainly a typo in a date.
        Hold::Until { at } if *at <= now => {
            Err(format!("hold.at field is in the past ({at}); the override would never hold"))
        }
        Hold::For { minutes } if !HOLD_MIN.contains(minutes) => Err(format!(
            "hold.minutes field must be between {} and {}, got {minutes}",
            HOLD_MIN.start(),
            HOLD_MIN.end()
        )),
        Hold::For { minutes }
            if start
                .checked_add(SignedDuration::from_mins(i64::from(*minutes)))
                .is_ok_and(|end| end <= now) =>
        {
            Err(format!(
                "start field is too far in the past ({start}): the override would be over \
                 after {minutes} minutes, before now"
            ))
        }
        _ => Ok(()),
    }
}

/// Check the default target.
pub(crate) fn check_default(d: &DefaultTarget) -> Result<(), String> {
    check_setpoints(Some(d.heat_c), Some(d.cool_c))?;
    check_sensors(&d.sensors)
}

fn check_setpoints(heat: Option<f64>, cool: Option<f64>) -> Result<(), String> {
    if heat.is_none() && cool.is_none() {
        return Err("heat_c or cool_c field is required (at least one setpoint)".into());
    }
    if let Some(h) = heat
        && !(h.is_finite() && HEAT_C.contains(&h))
    {
        let (min, max) = (HEAT_C.start(), HEAT_C.end());
        return Err(format!("heat_c field must be between {min} and {max} °C, got {h}"));
    }
    if let Some(c) = cool
        && !(c.is_finite() && COOL_C.contains(&c))
    {
        let (min, max) = (COOL_C.start(), COOL_C.end());
        return Err(format!("cool_c field must be between {min} and {max} °C, got {c}"));
    }
    if let (Some(h), Some(c)) = (heat, cool)
        && c < h + MIN_SETPOINT_GAP_C
    {
        return Err(format!(
            "cool_c field must be at least heat_c + {MIN_SETPOINT_GAP_C} °C, got heat_c {h} and cool_c {c}"
        ));
    }
    Ok(())
}

fn check_sensors(sensors: &[SensorWeight]) -> Result<(), String> {
    if sensors.len() > MAX_SENSORS {
        return Err(format!(
            "sensors field must list at most {MAX_SENSORS} sensors, got {}",
            sensors.len()
        ));
    }
    let mut seen = HashSet::new();
    for (i, s) in sensors.iter().enumerate() {
        if !(1..=MAX_SENSOR_ID_CHARS).contains(&s.sensor_id.chars().count()) {
            return Err(format!(
                "sensors[{i}].sensor_id field must be 1 to {MAX_SENSOR_ID_CHARS} characters"
            ));
        }
        if !(s.weight.is_finite() && s.weight > 0.0 && s.weight <= MAX_WEIGHT) {
            return Err(format!(
                "sensors[{i}].weight field must be greater than 0 and at most {MAX_WEIGHT}, got {}",
                s.weight
            ));
        }
        if !seen.insert(s.sensor_id.as_str()) {
            return Err(format!(
                "sensors[{i}].sensor_id field names {:?} a second time",
                s.sensor_id
            ));
        }
    }
    Ok(())
}

/// `HH:MM` as minutes after midnight; `24:00` only where `end_of_day` is allowed.
fn hhmm(s: &str, field: &str, end_of_day: bool) -> Result<u16, String> {
    let bad = || {
        let range = if end_of_day { "00:00 to 24:00" } else { "00:00 to 23:59" };
        format!("{field} field must be a time HH:MM ({range}), got {s:?}")
    };
    let b = s.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return Err(bad());
    }
    let num = |i: usize| u16::from(b[i] - b'0') * 10 + u16::from(b[i + 1] - b'0');
    let (h, m) = (num(0), num(3));
    match (h, m) {
        (0..=23, 0..=59) => Ok(h * 60 + m),
        (24, 0) if end_of_day => Ok(END_OF_DAY),
        _ => Err(bad()),
    }
}

fn date(s: &str, field: &str) -> Result<Date, String> {
    let bad = || format!("{field} field must be a date YYYY-MM-DD, got {s:?}");
    if s.len() != 10 {
        return Err(bad());
    }
    s.parse::<Date>().map_err(|_| bad())
}

fn date_time(s: &str, field: &str) -> Result<DateTime, String> {
    let bad = || format!("{field} field must be a local date and time YYYY-MM-DDTHH:MM, got {s:?}");
    let (d, t) = s.split_once('T').ok_or_else(bad)?;
    let d = date(d, field).map_err(|_| bad())?;
    let t = hhmm(t, field, false).map_err(|_| bad())?;
    Ok(d.at((t / 60) as i8, (t % 60) as i8, 0, 0))
}

fn weekday_index(d: Weekday) -> usize {
    match d {
        Weekday::Monday => 0,
        Weekday::Tuesday => 1,
        Weekday::Wednesday => 2,
        Weekday::Thursday => 3,
        Weekday::Friday => 4,
        Weekday::Saturday => 5,
        Weekday::Sunday => 6,
    }
}

/// Parse `when`, with messages naming `when.<field>`.
pub(super) fn recurrence(when: &When) -> Result<Recurrence, String> {
    match when {
        When::Weekly { days, start, end } => {
            if days.is_empty() {
                return Err("when.days field must list at least one day".into());
            }
            let mut set = [false; 7];
            for d in days {
                set[weekday_index(*d)] = true;
            }
            let start = hhmm(start, "when.start", false)?;
            let end = hhmm(end, "when.end", true)?;
            Ok(Recurrence::Weekly { days: set, start, end })
        }
        When::Cron { expr, duration_min } => {
            let fields = expr.split_whitespace().count();
            if fields != 5 {
                return Err(format!(
                    "when.expr field must have five fields (minute hour day-of-month month \
                     day-of-week; no seconds or years), got {fields} in {expr:?}"
                ));
            }
            let cron = expr
                .parse::<croner::Cron>()
                .map_err(|e| format!("when.expr field is not a valid cron expression: {e}"))?;
            if !CRON_DURATION_MIN.contains(duration_min) {
                return Err(format!(
                    "when.duration_min field must be between {} and {}, got {duration_min}",
                    CRON_DURATION_MIN.start(),
                    CRON_DURATION_MIN.end()
                ));
            }
            let small = |v: Vec<u16>| -> Vec<i8> {
                v.into_iter().filter_map(|v| i8::try_from(v).ok()).collect()
            };
            let hours = small(cron.pattern.hours.values());
            let minutes = small(cron.pattern.minutes.values());
            Ok(Recurrence::Cron {
                cron: Box::new(cron),
                hours,
                minutes,
                duration: SignedDuration::from_mins(i64::from(*duration_min)),
            })
        }
        When::Exception { date: d, start, end } => {
            let date = date(d, "when.date")?;
            let start = start.as_deref().map(|s| hhmm(s, "when.start", false)).transpose()?;
            let end = end.as_deref().map(|s| hhmm(s, "when.end", true)).transpose()?;
            Ok(Recurrence::Exception {
                date,
                start: start.unwrap_or(0),
                end: end.unwrap_or(END_OF_DAY),
            })
        }
        When::Vacation { start, end } => {
            let start = date_time(start, "when.start")?;
            let end = date_time(end, "when.end")?;
            if end <= start {
                return Err(format!("when.end field must be after when.start, got {end}"));
            }
            let limit = start.checked_add(jiff::Span::new().days(MAX_AHEAD_DAYS));
            if limit.is_ok_and(|l| end > l) {
                return Err(format!(
                    "when.end field must be at most {MAX_AHEAD_DAYS} days after when.start"
                ));
            }
            Ok(Recurrence::Vacation { start, end })
        }
    }
}

/// The layer of a parsed `when`.
pub(super) fn layer(r: &Recurrence) -> Layer {
    match r {
        Recurrence::Weekly { days, .. } if days.iter().all(|d| *d) => Layer::EveryDay,
        Recurrence::Weekly { .. } => Layer::Day,
        Recurrence::Cron { cron, .. } => {
            let p = &cron.pattern;
            let months_restricted = p.months.values().len() < 12;
            if !p.is_dom_wildcard() || !p.is_dow_wildcard() || months_restricted {
                Layer::Day
            } else {
                Layer::EveryDay
            }
        }
        Recurrence::Exception { .. } | Recurrence::Vacation { .. } => Layer::Date,
    }
}
