//! A family's week as a timeline (UTC): the schedule the simulation follows. The real resolver
//! can replace it; only `Vec<Segment>` crosses.

use hearth_proto::Timestamp;
use hearth_proto::schedules::{Layer, RuleRef, Segment, SensorWeight};
use jiff::civil::{Date, Weekday};

/// The comfort setpoint; segments with it are "occupied".
pub(crate) const COMFORT_C: f64 = 21.0;
/// The setback at night and while away.
pub(crate) const SETBACK_C: f64 = 17.0;
const COOL_C: f64 = 26.0;

pub(crate) fn rule(id: Option<i64>, name: &str) -> RuleRef {
    let layer = if id.is_some() { Layer::Day } else { Layer::Default };
    RuleRef { layer, id, name: name.to_owned() }
}

/// (start minute of day, end minute, rule id, name) of the comfort blocks of a day.
fn comfort_blocks(day: Weekday) -> &'static [(i64, i64, i64, &'static str)] {
    match day {
        Weekday::Saturday | Weekday::Sunday => &[(8 * 60, 23 * 60, 3, "weekend")],
        _ => &[
            (6 * 60 + 30, 8 * 60 + 30, 1, "weekday morning"),
            (17 * 60, 22 * 60 + 30, 2, "weekday evening"),
        ],
    }
}

/// Segments from `first` for `days` days, without gaps, adjacent ones differing.
pub(crate) fn day_plan(first: Date, days: u32, sensors: &[SensorWeight]) -> Vec<Segment> {
    let midnight = |d: Date| -> Timestamp {
        d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
    };
    let mut pieces: Vec<(Timestamp, f64, RuleRef)> = Vec::new();
    let mut day = first;
    for _ in 0..days {
        let base = midnight(day);
        let at = |min: i64| base + jiff::SignedDuration::from_mins(min);
        let mut cursor = 0;
        for &(start, end, id, name) in comfort_blocks(day.weekday()) {
            if start > cursor {
                pieces.push((at(cursor), SETBACK_C, rule(None, "default")));
            }
            pieces.push((at(start), COMFORT_C, rule(Some(id), name)));
            cursor = end;
        }
        pieces.push((at(cursor), SETBACK_C, rule(None, "default")));
        match day.tomorrow() {
            Ok(d) => day = d,
            Err(_) => break,
        }
    }
    let end = midnight(day);
    segments(pieces, end, sensors)
}

/// Timeline segments from (start, heating setpoint, rule) pieces ending at `end`; adjacent
/// equal pieces merge.
pub(crate) fn segments(
    mut pieces: Vec<(Timestamp, f64, RuleRef)>,
    end: Timestamp,
    sensors: &[SensorWeight],
) -> Vec<Segment> {
    pieces.dedup_by(|later, earlier| later.1 == earlier.1 && later.2 == earlier.2);
    let mut segments: Vec<Segment> = Vec::with_capacity(pieces.len());
    for (i, (start, heat_c, rule)) in pieces.iter().enumerate() {
        let stop = pieces.get(i + 1).map(|p| p.0).unwrap_or(end);
        segments.push(Segment {
            start: *start,
            end: stop,
            start_local: start.to_zoned(jiff::tz::TimeZone::UTC).to_string(),
            end_local: stop.to_zoned(jiff::tz::TimeZone::UTC).to_string(),
            heat_c: *heat_c,
            cool_c: COOL_C,
            sensors: sensors.to_vec(),
            rule: rule.clone(),
            beaten: Vec::new(),
        });
    }
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_has_the_family_blocks_without_gaps() {
        // 2026-01-05 is a Monday.
        let segs = day_plan(jiff::civil::date(2026, 1, 5), 7, &[]);
        for pair in segs.windows(2) {
            assert_eq!(pair[0].end, pair[1].start);
            assert_ne!(pair[0].heat_c, pair[1].heat_c);
        }
        let comfort = segs.iter().filter(|s| s.heat_c == COMFORT_C).count();
        assert_eq!(comfort, 5 * 2 + 2);
        assert_eq!(segs[1].start.to_string(), "2026-01-05T06:30:00Z");
        assert_eq!(segs[1].rule.name, "weekday morning");
    }
}
