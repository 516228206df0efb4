//! Resolution, DST and validation of schedules, on fixed instants.

use hearth_proto::Timestamp;
use hearth_proto::schedules::{
    DefaultTarget, Hold, Layer, NewOverride, NewRule, Override, Rule, SensorWeight, Weekday, When,
};
use jiff::tz::TimeZone;

use super::*;

const WEEKDAYS: [Weekday; 5] =
    [Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday];
const ALL_DAYS: [Weekday; 7] = Weekday::ALL;

/// How far around an instant [`Schedule::at`] looks for the real edges of its segment.
const AT_LOOK_AROUND: SignedDuration = SignedDuration::from_hours(8 * 24);

impl Schedule {
    /// The segment in force at `t`, with its real start and end (found within
    /// [`AT_LOOK_AROUND`] either side of `t`; a segment longer than that is cut there): what
    /// the loop finds in the timeline it resolves, asked of one instant.
    fn at(&self, t: Timestamp) -> Segment {
        let from = t.checked_sub(AT_LOOK_AROUND).unwrap_or(Timestamp::MIN);
        let to = t.checked_add(AT_LOOK_AROUND).unwrap_or(Timestamp::MAX);
        let segments = self.resolve(from, to, true);
        segments
            .into_iter()
            .find(|s| s.start <= t && t < s.end)
            .unwrap_or_else(|| self.default_segment(t, t))
    }
}

fn tz(name: &str) -> TimeZone {
    TimeZone::get(name).expect("time zone in the bundled database")
}

fn utc(s: &str) -> Timestamp {
    s.parse().expect("RFC 3339 literal")
}

/// A civil `YYYY-MM-DDTHH:MM` in `zone` (unambiguous in the tests that use it).
fn local(zone: &TimeZone, s: &str) -> Timestamp {
    let dt: jiff::civil::DateTime = s.parse().expect("civil literal");
    zone.to_ambiguous_timestamp(dt).unambiguous().expect("unambiguous local time")
}

fn new_rule(name: &str, when: When, heat: Option<f64>, cool: Option<f64>) -> NewRule {
    NewRule {
        name: name.into(),
        enabled: true,
        when,
        heat_c: heat,
        cool_c: cool,
        sensors: vec![],
        zone: None,
    }
}

fn rule(id: i64, r: NewRule) -> Rule {
    let layer = check_rule(&r).expect("valid test rule");
    Rule { id, layer, rule: r }
}

fn weekly(days: &[Weekday], start: &str, end: &str) -> When {
    When::Weekly { days: days.to_vec(), start: start.into(), end: end.into() }
}

fn cron(expr: &str, duration_min: u32) -> When {
    When::Cron { expr: expr.into(), duration_min }
}

fn exception(date: &str) -> When {
    When::Exception { date: date.into(), start: None, end: None }
}

fn ovr(id: i64, heat: f64, start: Timestamp, end: Option<Timestamp>) -> Override {
    Override {
        id,
        heat_c: Some(heat),
        cool_c: None,
        sensors: vec![],
        start,
        end,
        hold: Hold::Indefinite,
        created: start,
        zone: "house".into(),
    }
}

fn schedule(zone: &TimeZone, rules: Vec<Rule>, overrides: Vec<Override>) -> Schedule {
    Schedule::new(zone.clone(), default_target(), rules, overrides)
}

/// The ids of a segment's winner and beaten list (`None`: the default).
fn ids(s: &Segment) -> (Option<i64>, Vec<Option<i64>>) {
    (s.rule.id, s.beaten.iter().map(|b| b.id).collect())
}

#[test]
fn most_specific_wins() {
    let berlin = tz("Europe/Berlin");
    // Wednesday 2026-01-14, CET.
    let at = |hhmm: &str| local(&berlin, &format!("2026-01-14T{hhmm}"));
    let wed = [Weekday::Wednesday];
    struct Case {
        name: &'static str,
        rules: Vec<Rule>,
        overrides: Vec<Override>,
        at: &'static str,
        winner: Option<i64>,
        layer: Layer,
        heat: f64,
        cool: f64,
        beaten: Vec<Option<i64>>,
    }
    let every_day = |id, s, e, heat| rule(id, new_rule("all", weekly(&ALL_DAYS, s, e), heat, None));
    let day = |id, s, e, heat| rule(id, new_rule("wed", weekly(&wed, s, e), heat, None));
    let cases = vec![
        Case {
            name: "nothing in force: the default",
            rules: vec![every_day(1, "08:00", "12:00", Some(19.0))],
            overrides: vec![],
            at: "13:00",
            winner: None,
            layer: Layer::Default,
            heat: 20.0,
            cool: 26.0,
            beaten: vec![],
        },
        Case {
            name: "every_day beats the default",
            rules: vec![every_day(1, "08:00", "12:00", Some(19.0))],
            overrides: vec![],
            at: "10:00",
            winner: Some(1),
            layer: Layer::EveryDay,
            heat: 19.0,
            cool: 26.0,
            beaten: vec![None],
        },
        Case {
            name: "day beats every_day even when every_day started later",
            rules: vec![
                every_day(1, "09:00", "11:00", Some(19.0)),
                day(2, "08:00", "12:00", Some(21.0)),
            ],
            overrides: vec![],
            at: "10:00",
            winner: Some(2),
            layer: Layer::Day,
            heat: 21.0,
            cool: 26.0,
            beaten: vec![Some(1), None],
        },
        Case {
            name: "date beats day",
            rules: vec![
                day(1, "08:00", "12:00", Some(21.0)),
                rule(2, new_rule("x", exception("2026-01-14"), Some(16.0), None)),
            ],
            overrides: vec![],
            at: "10:00",
            winner: Some(2),
            layer: Layer::Date,
            heat: 16.0,
            cool: 26.0,
            beaten: vec![Some(1), None],
        },
        Case {
            name: "vacation (date) beats every_day and day, closest rival first",
            rules: vec![
                every_day(1, "00:00", "24:00", Some(19.0)),
                day(2, "08:00", "12:00", Some(21.0)),
                rule(
                    3,
                    new_rule(
                        "away",
                        When::Vacation {
                            start: "2026-01-10T10:00".into(),
                            end: "2026-01-20T18:00".into(),
                        },
                        Some(12.0),
                        None,
                    ),
                ),
            ],
            overrides: vec![],
            at: "10:00",
            winner: Some(3),
            layer: Layer::Date,
            heat: 12.0,
            cool: 26.0,
            beaten: vec![Some(2), Some(1), None],
        },
        Case {
            name: "override beats date",
            rules: vec![rule(1, new_rule("x", exception("2026-01-14"), Some(16.0), None))],
            overrides: vec![ovr(7, 23.0, at("09:00"), None)],
            at: "10:00",
            winner: Some(7),
            layer: Layer::Override,
            heat: 23.0,
            cool: 26.0,
            beaten: vec![Some(1), None],
        },
        Case {
            name: "cron restricted by weekday (day) beats cron every day",
            rules: vec![
                rule(1, new_rule("c1", cron("0 8 * * *", 240), Some(19.0), None)),
                rule(2, new_rule("c2", cron("0 7 * * 3", 300), Some(22.0), None)),
            ],
            overrides: vec![],
            at: "10:00",
            winner: Some(2),
            layer: Layer::Day,
            heat: 22.0,
            cool: 26.0,
            beaten: vec![Some(1), None],
        },
        Case {
            name: "within a layer the later-started occurrence wins",
            rules: vec![day(1, "08:00", "12:00", Some(19.0)), day(2, "09:00", "10:00", Some(22.0))],
            overrides: vec![],
            at: "09:30",
            winner: Some(2),
            layer: Layer::Day,
            heat: 22.0,
            cool: 26.0,
            beaten: vec![Some(1), None],
        },
        Case {
            name: "the long block resumes after the short one",
            rules: vec![day(1, "08:00", "12:00", Some(19.0)), day(2, "09:00", "10:00", Some(22.0))],
            overrides: vec![],
            at: "10:30",
            winner: Some(1),
            layer: Layer::Day,
            heat: 19.0,
            cool: 26.0,
            beaten: vec![None],
        },
        Case {
            name: "equal start: the lower id wins, whatever the list order",
            rules: vec![day(5, "08:00", "12:00", Some(22.0)), day(3, "08:00", "12:00", Some(19.0))],
            overrides: vec![],
            at: "09:00",
            winner: Some(3),
            layer: Layer::Day,
            heat: 19.0,
            cool: 26.0,
            beaten: vec![Some(5), None],
        },
        Case {
            name: "a disabled rule never wins and is not listed",
            rules: vec![day(1, "08:00", "12:00", Some(19.0)), {
                let mut r = rule(2, new_rule("x", exception("2026-01-14"), Some(16.0), None));
                r.rule.enabled = false;
                r
            }],
            overrides: vec![],
            at: "10:00",
            winner: Some(1),
            layer: Layer::Day,
            heat: 19.0,
            cool: 26.0,
            beaten: vec![None],
        },
        Case {
            name: "a missing heat setpoint comes from the default",
            rules: vec![rule(
                1,
                new_rule("cool", weekly(&wed, "08:00", "12:00"), None, Some(24.0)),
            )],
            overrides: vec![],
            at: "10:00",
            winner: Some(1),
            layer: Layer::Day,
            heat: 20.0,
            cool: 24.0,
            beaten: vec![None],
        },
        Case {
            name: "overrides: the newest start wins",
            rules: vec![],
            overrides: vec![ovr(9, 23.0, at("09:30"), None), ovr(8, 18.0, at("09:00"), None)],
            at: "10:00",
            winner: Some(9),
            layer: Layer::Override,
            heat: 23.0,
            cool: 26.0,
            beaten: vec![Some(8), None],
        },
        Case {
            name: "overrides with equal start: the higher id (newer) wins",
            rules: vec![],
            overrides: vec![ovr(8, 18.0, at("09:00"), None), ovr(9, 23.0, at("09:00"), None)],
            at: "10:00",
            winner: Some(9),
            layer: Layer::Override,
            heat: 23.0,
            cool: 26.0,
            beaten: vec![Some(8), None],
        },
        Case {
            name: "an ended override is not in force",
            rules: vec![day(1, "08:00", "12:00", Some(19.0))],
            overrides: vec![ovr(8, 25.0, at("08:30"), Some(at("09:30")))],
            at: "10:00",
            winner: Some(1),
            layer: Layer::Day,
            heat: 19.0,
            cool: 26.0,
            beaten: vec![None],
        },
    ];
    for c in cases {
        let s = schedule(&berlin, c.rules, c.overrides);
        let seg = s.at(at(c.at));
        assert_eq!(ids(&seg), (c.winner, c.beaten), "{}", c.name);
        assert_eq!(seg.rule.layer, c.layer, "{}", c.name);
        assert_eq!((seg.heat_c, seg.cool_c), (c.heat, c.cool), "{}", c.name);
    }
}

#[test]
fn sensors_come_from_the_winner_else_the_default() {
    let berlin = tz("Europe/Berlin");
    let sw = |id: &str| SensorWeight { sensor_id: id.into(), weight: 1.0 };
    let default = DefaultTarget { heat_c: 20.0, cool_c: 26.0, sensors: vec![sw("hall")] };
    let mut own = new_rule("own", weekly(&ALL_DAYS, "08:00", "10:00"), Some(21.0), None);
    own.sensors = vec![sw("kitchen")];
    let none = new_rule("none", weekly(&ALL_DAYS, "10:00", "12:00"), Some(21.0), None);
    let s = Schedule::new(berlin.clone(), default, vec![rule(1, own), rule(2, none)], vec![]);
    let at = |hhmm: &str| s.at(local(&berlin, &format!("2026-01-14T{hhmm}")));
    assert_eq!(at("09:00").sensors, vec![sw("kitchen")]);
    assert_eq!(at("11:00").sensors, vec![sw("hall")]);
    assert_eq!(at("13:00").sensors, vec![sw("hall")]);
}

#[test]
fn an_override_keeps_what_it_leaves_open_from_the_schedule_underneath() {
    let berlin = tz("Europe/Berlin");
    let at = |hhmm: &str| local(&berlin, &format!("2026-01-14T{hhmm}"));
    let sw = |id: &str| SensorWeight { sensor_id: id.into(), weight: 1.0 };
    let mut r = new_rule("cool", weekly(&ALL_DAYS, "08:00", "12:00"), Some(19.0), Some(24.0));
    r.sensors = vec![sw("kitchen")];
    // Heat only, no sensors, from 09:00 on.
    let s = schedule(&berlin, vec![rule(1, r)], vec![ovr(4, 23.0, at("09:00"), None)]);
    let seg = s.at(at("10:00"));
    assert_eq!((seg.rule.id, seg.heat_c, seg.cool_c), (Some(4), 23.0, 24.0));
    assert_eq!(seg.sensors, vec![sw("kitchen")]);
    // After the rule ends, the default target is underneath.
    let seg = s.at(at("13:00"));
    assert_eq!((seg.rule.id, seg.heat_c, seg.cool_c), (Some(4), 23.0, 26.0));
    assert_eq!(seg.sensors, vec![]);
}

#[test]
fn timeline_is_clipped_ordered_gapless_and_merged() {
    let berlin = tz("Europe/Berlin");
    let rules = vec![
        rule(1, new_rule("mornings", weekly(&WEEKDAYS, "06:30", "08:30"), Some(21.0), None)),
        // Touches rule 1's end with its own start: two winners, not merged.
        rule(2, new_rule("late", weekly(&WEEKDAYS, "08:30", "09:00"), Some(21.0), None)),
        // Back-to-back firings of one rule merge into one segment.
        rule(3, new_rule("every 15", cron("*/15 12-13 * * *", 15), Some(19.0), None)),
    ];
    let s = schedule(&berlin, rules, vec![]);
    let from = local(&berlin, "2026-01-14T07:00");
    let to = local(&berlin, "2026-01-15T07:00");
    let t = s.timeline(from, to);
    assert_eq!(t.time_zone, "Europe/Berlin");
    assert_eq!(t.segments.first().map(|s| s.start), Some(from));
    assert_eq!(t.segments.last().map(|s| s.end), Some(to));
    for w in t.segments.windows(2) {
        assert_eq!(w[0].end, w[1].start, "no gaps");
        assert!(w[0].rule != w[1].rule || w[0].beaten != w[1].beaten, "merged");
    }
    let summary: Vec<(String, Option<i64>)> =
        t.segments.iter().map(|s| (s.start_local[11..16].to_string(), s.rule.id)).collect();
    let expect = [
        ("07:00", Some(1)),
        ("08:30", Some(2)),
        ("09:00", None),
        ("12:00", Some(3)),
        ("14:00", None),
        ("06:30", Some(1)),
    ];
    let expect: Vec<(String, Option<i64>)> =
        expect.iter().map(|(a, b)| (a.to_string(), *b)).collect();
    assert_eq!(summary, expect);
    assert_eq!(t.segments[0].start_local, "2026-01-14T07:00:00+01:00[Europe/Berlin]");
}

/// `(start, end)` in UTC of every segment won by rule `id` in `[from, to)`.
fn won_by(s: &Schedule, id: i64, from: &str, to: &str) -> Vec<(String, String)> {
    s.segments(utc(from), utc(to))
        .into_iter()
        .filter(|seg| seg.rule.id == Some(id))
        .map(|seg| (seg.start.to_string(), seg.end.to_string()))
        .collect()
}

fn spans(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn dst_europe_berlin() {
    let berlin = tz("Europe/Berlin");
    let sun = [Weekday::Sunday];
    let sat = [Weekday::Saturday];
    let r = |id, when| rule(id, new_rule("r", when, Some(21.0), None));
    let s = schedule(
        &berlin,
        vec![
            // 02:30 does not exist on 2026-03-29 (02:00 → 03:00): it starts at 03:30 CEST.
            r(1, weekly(&sun, "02:30", "04:00")),
            // Wholly inside the gap: both ends map to 03:00, the block does not happen.
            r(2, weekly(&sun, "02:00", "03:00")),
            // Crosses midnight into the DST night: 7 h in spring, 9 h in autumn.
            r(3, weekly(&sat, "22:00", "06:00")),
        ],
        vec![],
    );
    assert_eq!(
        won_by(&s, 1, "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z"),
        spans(&[("2026-03-29T01:30:00Z", "2026-03-29T02:00:00Z")])
    );
    let only_gap = schedule(&berlin, vec![r(2, weekly(&sun, "02:00", "03:00"))], vec![]);
    assert_eq!(won_by(&only_gap, 2, "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z"), spans(&[]));
    // The week before, an ordinary Sunday: 02:00–03:00 CET.
    assert_eq!(
        won_by(&only_gap, 2, "2026-03-21T12:00:00Z", "2026-03-23T00:00:00Z"),
        spans(&[("2026-03-22T01:00:00Z", "2026-03-22T02:00:00Z")])
    );
    // Rule 3 is beaten from 03:30 CEST by rule 1 (same layer, started later); it ends at 06:00
    // CEST = 04:00Z, 21:00Z + 7 h.
    assert_eq!(
        won_by(&s, 3, "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z"),
        spans(&[
            ("2026-03-28T21:00:00Z", "2026-03-29T01:30:00Z"),
            ("2026-03-29T02:00:00Z", "2026-03-29T04:00:00Z")
        ])
    );

    // Autumn, 2026-10-25 (03:00 CEST → 02:00 CET, 02:00–03:00 happens twice).
    let s = schedule(
        &berlin,
        vec![
            // Its wall-clock span including the repeated hour: 02:00 CEST to 03:00 CET, 2 h.
            r(1, weekly(&sun, "02:00", "03:00")),
            // Inside the fold: the earlier pass only.
            r(2, weekly(&sun, "02:15", "02:45")),
            r(3, weekly(&sat, "22:00", "06:00")),
        ],
        vec![],
    );
    assert_eq!(
        won_by(&s, 1, "2026-10-24T12:00:00Z", "2026-10-26T00:00:00Z"),
        spans(&[
            ("2026-10-25T00:00:00Z", "2026-10-25T00:15:00Z"),
            ("2026-10-25T00:45:00Z", "2026-10-25T02:00:00Z")
        ])
    );
    assert_eq!(
        won_by(&s, 2, "2026-10-24T12:00:00Z", "2026-10-26T00:00:00Z"),
        spans(&[("2026-10-25T00:15:00Z", "2026-10-25T00:45:00Z")])
    );
    // 22:00 CEST = 20:00Z to 06:00 CET = 05:00Z: 9 h, beaten by rules 1 and 2 meanwhile.
    let night = won_by(&s, 3, "2026-10-24T12:00:00Z", "2026-10-26T00:00:00Z");
    assert_eq!(night.first().map(|s| s.0.as_str()), Some("2026-10-24T20:00:00Z"));
    assert_eq!(night.last().map(|s| s.1.as_str()), Some("2026-10-25T05:00:00Z"));
}

#[test]
fn dst_america_new_york() {
    let ny = tz("America/New_York");
    let sun = [Weekday::Sunday];
    let sat = [Weekday::Saturday];
    let r = |id, when| rule(id, new_rule("r", when, Some(21.0), None));
    let s = schedule(
        &ny,
        vec![r(1, weekly(&sun, "02:30", "04:00")), r(3, weekly(&sat, "22:00", "06:00"))],
        vec![],
    );
    // 2026-03-08 02:00 EST → 03:00 EDT: 02:30 starts at 03:30 EDT = 07:30Z.
    assert_eq!(
        won_by(&s, 1, "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z"),
        spans(&[("2026-03-08T07:30:00Z", "2026-03-08T08:00:00Z")])
    );
    // Saturday 22:00 EST = 03:00Z to Sunday 06:00 EDT = 10:00Z: 7 h.
    let night = won_by(&s, 3, "2026-03-07T12:00:00Z", "2026-03-09T12:00:00Z");
    assert_eq!(night.first().map(|s| s.0.as_str()), Some("2026-03-08T03:00:00Z"));
    assert_eq!(night.last().map(|s| s.1.as_str()), Some("2026-03-08T10:00:00Z"));

    // 2026-11-01 02:00 EDT → 01:00 EST: 01:00–02:00 happens twice.
    let s = schedule(
        &ny,
        vec![r(1, weekly(&sun, "01:00", "02:00")), r(3, weekly(&sat, "22:00", "06:00"))],
        vec![],
    );
    // 01:00 EDT = 05:00Z to 02:00 EST = 07:00Z: the repeated hour included, 2 h.
    assert_eq!(
        won_by(&s, 1, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z"),
        spans(&[("2026-11-01T05:00:00Z", "2026-11-01T07:00:00Z")])
    );
    // Saturday 22:00 EDT = 02:00Z to Sunday 06:00 EST = 11:00Z: 9 h.
    let night = won_by(&s, 3, "2026-10-31T12:00:00Z", "2026-11-02T12:00:00Z");
    assert_eq!(night.first().map(|s| s.0.as_str()), Some("2026-11-01T02:00:00Z"));
    assert_eq!(night.last().map(|s| s.1.as_str()), Some("2026-11-01T11:00:00Z"));
}

#[test]
fn dst_cron_fires_once_in_gaps_and_folds() {
    let r = |id, expr| rule(id, new_rule("c", cron(expr, 20), Some(21.0), None));
    let cases = [
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-03-28T00:00:00Z",
            // 02:30 CET; 03:30 CEST (shifted out of the gap); 02:30 CEST.
            &["2026-03-28T01:30:00Z", "2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"][..],
        ),
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2026-10-24T00:00:00Z",
            // 02:30 CEST; the fold's earlier 02:30 (CEST) only; 02:30 CET.
            &["2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"][..],
        ),
        (
            "America/New_York",
            "30 2 * * *",
            "2026-03-07T05:00:00Z",
            &["2026-03-07T07:30:00Z", "2026-03-08T07:30:00Z", "2026-03-09T06:30:00Z"][..],
        ),
        (
            "America/New_York",
            "30 2 * * *",
            "2026-10-31T04:00:00Z",
            // 02:30 is not in New York's fold (01:00–02:00): an ordinary EST time on the day.
            &["2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z", "2026-11-02T07:30:00Z"][..],
        ),
        (
            "America/New_York",
            "30 1 * * *",
            "2026-10-31T04:00:00Z",
            // 01:30 happens twice on 2026-11-01: fires at the first (EDT), not again (EST).
            &["2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"][..],
        ),
    ];
    for (zone, expr, from, want) in cases {
        let s = schedule(&tz(zone), vec![r(1, expr)], vec![]);
        let from = utc(from);
        let to = from.checked_add(jiff::SignedDuration::from_hours(72)).expect("in range");
        let got: Vec<String> = s
            .segments(from, to)
            .into_iter()
            .filter(|seg| seg.rule.id == Some(1))
            .map(|seg| {
                assert_eq!(seg.end.duration_since(seg.start).as_mins(), 20, "{zone} {expr}");
                seg.start.to_string()
            })
            .collect();
        assert_eq!(got, want, "{zone} {expr}");
    }
}

#[test]
fn cron_firings_shifted_onto_one_instant_count_once() {
    let berlin = tz("Europe/Berlin");
    let s = schedule(
        &berlin,
        vec![rule(1, new_rule("c", cron("0,30 2-3 * * *", 10), Some(21.0), None))],
        vec![],
    );
    // On 2026-03-29: 02:00 → 03:00 and 02:30 → 03:30 coincide with the real 03:00 and 03:30.
    let got = won_by(&s, 1, "2026-03-28T23:00:00Z", "2026-03-29T03:00:00Z");
    assert_eq!(
        got,
        spans(&[
            ("2026-03-29T01:00:00Z", "2026-03-29T01:10:00Z"),
            ("2026-03-29T01:30:00Z", "2026-03-29T01:40:00Z")
        ])
    );
}

/// A realistic week with every kind of rule, for the derived-state and size tests.
fn household(zone: &TimeZone) -> Schedule {
    let weekend = [Weekday::Saturday, Weekday::Sunday];
    let rules = vec![
        rule(1, new_rule("nights", weekly(&ALL_DAYS, "22:30", "06:00"), Some(17.0), None)),
        rule(2, new_rule("mornings", weekly(&WEEKDAYS, "06:00", "08:30"), Some(21.0), None)),
        rule(3, new_rule("evenings", weekly(&WEEKDAYS, "17:00", "22:30"), Some(21.5), None)),
        rule(4, new_rule("weekend", weekly(&weekend, "08:00", "23:30"), Some(21.0), Some(25.0))),
        rule(5, new_rule("lunch", cron("0 12 * * 1-5", 60), Some(20.5), None)),
        rule(6, new_rule("airing", cron("15 2 * * *", 45), None, Some(27.0))),
        rule(7, new_rule("party", exception("2026-10-24"), Some(22.0), None)),
        rule(
            8,
            new_rule(
                "away",
                When::Vacation { start: "2026-03-30T10:00".into(), end: "2026-04-01T18:00".into() },
                Some(15.0),
                None,
            ),
        ),
        rule(
            9,
            new_rule(
                "late film",
                When::Exception {
                    date: "2026-10-25".into(),
                    start: Some("23:00".into()),
                    end: Some("01:30".into()),
                },
                Some(21.0),
                None,
            ),
        ),
    ];
    schedule(zone, rules, vec![])
}

#[test]
fn state_is_derived_not_edge_triggered() {
    for zone in ["Europe/Berlin", "America/New_York"] {
        let zone = tz(zone);
        let s = household(&zone);
        for from in ["2026-03-22T00:00:00Z", "2026-10-18T00:00:00Z", "2026-10-26T00:00:00Z"] {
            let from = utc(from);
            let to = from.checked_add(jiff::SignedDuration::from_hours(16 * 24)).expect("range");
            let timeline = s.segments(from, to);
            let mut t = from.checked_add(jiff::SignedDuration::from_hours(24)).expect("range");
            let last = to.checked_sub(jiff::SignedDuration::from_hours(24)).expect("range");
            let mut checked = 0;
            while t < last {
                let piece = timeline
                    .iter()
                    .find(|p| p.start <= t && t < p.end)
                    .expect("the timeline covers every instant");
                let now = s.at(t);
                if piece.start > from && piece.end < to {
                    assert_eq!(&now, piece, "at {t}");
                } else {
                    assert_eq!((&now.rule, &now.beaten), (&piece.rule, &piece.beaten), "at {t}");
                }
                checked += 1;
                t = t.checked_add(jiff::SignedDuration::from_mins(7)).expect("range");
            }
            assert!(checked > 2800, "{checked}");
        }
    }
}

#[test]
fn next_change_ignores_overrides_and_beaten_only_changes() {
    let berlin = tz("Europe/Berlin");
    let at = |hhmm: &str| local(&berlin, &format!("2026-01-14T{hhmm}"));
    let wed = [Weekday::Wednesday];
    let rules = vec![
        rule(1, new_rule("long", weekly(&wed, "06:00", "12:00"), Some(21.0), None)),
        // In force under rule 1 from 08:00 to 09:00: only the beaten list changes.
        rule(2, new_rule("under", weekly(&ALL_DAYS, "08:00", "09:00"), Some(19.0), None)),
    ];
    let overrides = vec![ovr(1, 25.0, at("07:00"), Some(at("07:30")))];
    let s = schedule(&berlin, rules, overrides);
    assert_eq!(s.next_change(at("07:00")), Some(at("12:00")));
    // From the default, the next change is the next rule's start (Thursday 08:00).
    assert_eq!(s.next_change(at("12:00")), Some(local(&berlin, "2026-01-15T08:00")));
    assert_eq!(schedule(&berlin, vec![], vec![]).next_change(at("07:00")), None);
}

/// A hold "until the next change" after an edit of the rules: it follows the schedule as it
/// stands now (past as it was, future as it is), never revived once over.
#[test]
fn a_hold_until_the_next_change_follows_later_edits() {
    let berlin = tz("Europe/Berlin");
    // Wednesday 2026-01-14, CET.
    let at = |hhmm: &str| local(&berlin, &format!("2026-01-14T{hhmm}"));
    let wed = [Weekday::Wednesday];
    let day = |end: &str, heat: f64| {
        rule(1, new_rule("Day", weekly(&ALL_DAYS, "07:00", end), Some(heat), None))
    };
    let block = |id, s, e| rule(id, new_rule("Evening", weekly(&wed, s, e), Some(23.0), None));
    // Before every edit: Day 07:00–22:30 at 21 °C, the default (20 °C) otherwise.
    let before = schedule(&berlin, vec![day("22:30", 21.0)], vec![]);
    struct Case {
        name: &'static str,
        rules: Vec<Rule>,
        default: DefaultTarget,
        /// The hold's start and end so far, the instant of the edit, the end wanted after it.
        start: Timestamp,
        end: Timestamp,
        now: Timestamp,
        want: Timestamp,
    }
    let d = default_target();
    // Pressed + at 18:00 (until Day ends at 22:30); the schedule is edited at 20:00.
    let case = |name, rules, want| Case {
        name,
        rules,
        default: d.clone(),
        start: at("18:00"),
        end: at("22:30"),
        now: at("20:00"),
        want,
    };
    let mut renamed = day("22:30", 21.0);
    renamed.rule.name = "Daytime".into();
    let mut disabled = day("22:30", 21.0);
    disabled.rule.enabled = false;
    let thursday = |hhmm: &str| local(&berlin, &format!("2026-01-15T{hhmm}"));
    let cases = vec![
        case("nothing that matters changed", vec![day("22:30", 21.0)], at("22:30")),
        case(
            "a rule on another day",
            vec![
                day("22:30", 21.0),
                rule(
                    2,
                    new_rule("Mon", weekly(&[Weekday::Monday], "06:00", "07:00"), Some(22.0), None),
                ),
            ],
            at("22:30"),
        ),
        case(
            "a block added later today: it is the next change",
            vec![day("22:30", 21.0), block(2, "21:00", "22:00")],
            at("21:00"),
        ),
        case("the coming edge moved later", vec![day("23:15", 21.0)], at("23:15")),
        case("the coming edge moved earlier", vec![day("21:15", 21.0)], at("21:15")),
        case(
            "the coming edge moved into the past: over now",
            vec![day("19:00", 21.0)],
            at("20:00"),
        ),
        case(
            "a block added over now: the edit is the change",
            vec![day("22:30", 21.0), block(2, "19:30", "21:00")],
            at("20:00"),
        ),
        case(
            "a block that ended before now changes nothing",
            vec![day("22:30", 21.0), block(2, "18:30", "19:00")],
            at("22:30"),
        ),
        case("the rule in force gets another setpoint", vec![day("22:30", 22.0)], at("20:00")),
        case("the rule in force is renamed", vec![renamed], at("22:30")),
        case("the rule in force is disabled", vec![disabled], at("20:00")),
        case("the rule in force is deleted", vec![], at("20:00")),
        Case {
            name: "the default in force is changed",
            rules: vec![day("22:30", 21.0)],
            default: DefaultTarget { heat_c: 18.0, ..d.clone() },
            start: at("23:00"),
            end: thursday("07:00"),
            now: at("23:30"),
            want: at("23:30"),
        },
        Case {
            name: "the default elsewhere is changed",
            rules: vec![day("22:30", 21.0)],
            default: DefaultTarget { heat_c: 18.0, ..d.clone() },
            start: at("18:00"),
            end: at("22:30"),
            now: at("20:00"),
            want: at("22:30"),
        },
        Case {
            name: "an ended hold stays ended",
            rules: vec![day("23:15", 21.0)],
            default: d.clone(),
            start: at("08:00"),
            end: at("19:00"),
            now: at("20:00"),
            want: at("19:00"),
        },
        Case {
            name: "a hold still to come: the new first change after its start",
            rules: vec![
                day("22:30", 21.0),
                rule(
                    2,
                    new_rule(
                        "Thu",
                        weekly(&[Weekday::Thursday], "12:00", "13:00"),
                        Some(22.0),
                        None,
                    ),
                ),
            ],
            default: d.clone(),
            start: thursday("08:00"),
            end: thursday("22:30"),
            now: at("20:00"),
            want: thursday("12:00"),
        },
        Case {
            name: "no change left within 14 days: the end it had",
            rules: vec![],
            default: d.clone(),
            start: at("23:00"),
            end: thursday("07:00"),
            now: at("23:30"),
            want: thursday("07:00"),
        },
    ];
    for c in cases {
        let after = Schedule::new(berlin.clone(), c.default, c.rules, vec![]);
        let got = next_change_hold_end(&before, &after, c.start, c.end, c.now);
        assert_eq!(got, c.want, "{}", c.name);
    }
}

#[test]
fn layers_of_rules() {
    // Six days, Monday twice: still not every day.
    let mut days6 = ALL_DAYS[..6].to_vec();
    days6.push(Weekday::Monday);
    let mut all_dup = ALL_DAYS.to_vec();
    all_dup.push(Weekday::Sunday);
    let cases = [
        (weekly(&ALL_DAYS, "06:00", "08:00"), Layer::EveryDay),
        // A request naming a day twice is refused (`check_new_rule`); one stored that way by
        // an older version stays in force.
        (weekly(&all_dup, "06:00", "08:00"), Layer::EveryDay),
        (weekly(&days6, "06:00", "08:00"), Layer::Day),
        (cron("30 6 * * *", 60), Layer::EveryDay),
        (cron("*/15 * * * *", 15), Layer::EveryDay),
        (cron("30 6 * * 1-5", 60), Layer::Day),
        (cron("30 6 1 * *", 60), Layer::Day),
        (cron("30 6 * 12 *", 60), Layer::Day),
        (exception("2026-12-24"), Layer::Date),
        (
            When::Vacation { start: "2026-12-24T10:00".into(), end: "2026-12-26T10:00".into() },
            Layer::Date,
        ),
    ];
    for (when, layer) in cases {
        assert_eq!(
            check_rule(&new_rule("r", when.clone(), Some(20.0), None)),
            Ok(layer),
            "{when:?}"
        );
    }
}

#[test]
fn bad_rules_name_the_field() {
    let ok = || new_rule("r", weekly(&WEEKDAYS, "06:00", "08:00"), Some(20.0), None);
    let with = |f: &dyn Fn(&mut NewRule)| {
        let mut r = ok();
        f(&mut r);
        r
    };
    let sw = |id: &str, weight| SensorWeight { sensor_id: id.into(), weight };
    let cases: Vec<(NewRule, &str)> = vec![
        (with(&|r| r.name = String::new()), "name field must be 1 to 80 characters"),
        (with(&|r| r.name = "x".repeat(81)), "name field must be 1 to 80 characters"),
        (with(&|r| r.heat_c = None), "heat_c or cool_c field is required"),
        (with(&|r| r.heat_c = Some(99.0)), "heat_c field must be between 5 and 30 °C, got 99"),
        (with(&|r| r.heat_c = Some(f64::NAN)), "heat_c field must be between 5 and 30 °C"),
        (with(&|r| r.cool_c = Some(40.0)), "cool_c field must be between 15 and 35 °C, got 40"),
        (with(&|r| r.cool_c = Some(20.2)), "cool_c field must be at least heat_c + 0.5 °C"),
        (
            with(&|r| r.when = weekly(&[], "06:00", "08:00")),
            "when.days field must list at least one day",
        ),
        (
            with(&|r| r.when = weekly(&WEEKDAYS, "25:00", "08:00")),
            "when.start field must be a time HH:MM (00:00 to 23:59), got \"25:00\"",
        ),
        (
            with(&|r| r.when = weekly(&WEEKDAYS, "24:00", "08:00")),
            "when.start field must be a time",
        ),
        (with(&|r| r.when = weekly(&WEEKDAYS, "6:00", "08:00")), "when.start field must be a time"),
        (with(&|r| r.when = weekly(&WEEKDAYS, "06:00", "08:60")), "when.end field must be a time"),
        (with(&|r| r.when = cron("0 30 6 * * *", 60)), "when.expr field must have five fields"),
        (with(&|r| r.when = cron("@daily", 60)), "when.expr field must have five fields"),
        (with(&|r| r.when = cron("61 6 * * *", 60)), "when.expr field is not a valid cron"),
        (
            with(&|r| r.when = cron("0 6 * * *", 0)),
            "when.duration_min field must be between 1 and 10080",
        ),
        (with(&|r| r.when = cron("0 6 * * *", 10_081)), "when.duration_min field"),
        (with(&|r| r.when = exception("2026-02-30")), "when.date field must be a date YYYY-MM-DD"),
        (
            with(&|r| {
                r.when = When::Vacation {
                    start: "2026-12-24T10:00".into(),
                    end: "2026-12-24T10:00".into(),
                }
            }),
            "when.end field must be after when.start",
        ),
        (
            with(&|r| {
                r.when = When::Vacation {
                    start: "2026-01-01T10:00".into(),
                    end: "2027-01-03T10:00".into(),
                }
            }),
            "when.end field must be at most 366 days after when.start",
        ),
        (
            with(&|r| {
                r.when = When::Vacation {
                    start: "2026-12-24 10:00".into(),
                    end: "2026-12-25T10:00".into(),
                }
            }),
            "when.start field must be a local date and time YYYY-MM-DDTHH:MM",
        ),
        (
            with(&|r| r.sensors = vec![sw("a", 0.0)]),
            "sensors[0].weight field must be greater than 0",
        ),
        (with(&|r| r.sensors = vec![sw("a", 1.0), sw("", 1.0)]), "sensors[1].sensor_id field"),
        (
            with(&|r| r.sensors = vec![sw("a", 1.0), sw("a", 2.0)]),
            "sensors[1].sensor_id field names \"a\" a second time",
        ),
        (
            with(&|r| r.sensors = (0..33).map(|i| sw(&i.to_string(), 1.0)).collect()),
            "at most 32 sensors",
        ),
    ];
    for (r, msg) in cases {
        match check_rule(&r) {
            Err(e) => assert!(e.contains(msg), "{e:?} lacks {msg:?}"),
            Ok(_) => panic!("accepted {r:?}, wanted {msg:?}"),
        }
    }
    // 24:00 is the end of the day, and an end before the start crosses midnight.
    assert!(check_rule(&with(&|r| r.when = weekly(&WEEKDAYS, "22:00", "24:00"))).is_ok());
    assert!(check_rule(&with(&|r| r.when = weekly(&WEEKDAYS, "22:00", "06:00"))).is_ok());
}

#[test]
fn bad_overrides_and_defaults_name_the_field() {
    let now = utc("2026-01-14T10:00:00Z");
    let o = |hold: Hold, start: Option<Timestamp>| NewOverride {
        heat_c: Some(22.0),
        cool_c: None,
        start,
        hold,
        sensors: vec![],
        zone: None,
    };
    assert_eq!(check_override(&o(Hold::NextChange, None), now), Ok(()));
    let far = utc("2027-01-20T10:00:00Z");
    let cases = [
        (o(Hold::For { minutes: 0 }, None), "hold.minutes field must be between 1 and 43200"),
        (o(Hold::Until { at: now }, None), "hold.at field must be after the start"),
        (o(Hold::Indefinite, Some(far)), "start field must be at most 366 days ahead"),
        (
            NewOverride { heat_c: None, ..o(Hold::Indefinite, None) },
            "heat_c or cool_c field is required",
        ),
    ];
    for (ov, msg) in cases {
        let e = check_override(&ov, now).expect_err(msg);
        assert!(e.contains(msg), "{e:?} lacks {msg:?}");
    }
    let d = DefaultTarget { heat_c: 22.0, cool_c: 22.0, sensors: vec![] };
    assert!(check_default(&d).is_err_and(|e| e.contains("cool_c field must be at least heat_c")));
    assert_eq!(check_default(&default_target()), Ok(()));
}

/// 100 rules over two weeks: the size the timeline API allows. Run in release with
/// `--nocapture` to see the time (no timing assertion: machines differ).
#[test]
fn a_two_week_timeline_of_a_hundred_rules() {
    let berlin = tz("Europe/Berlin");
    let mut rules = Vec::new();
    for i in 0..100_i64 {
        let h = i % 24;
        let when = match i % 4 {
            0 => weekly(&ALL_DAYS, &format!("{h:02}:00"), &format!("{:02}:30", (h + 3) % 24)),
            1 => weekly(&WEEKDAYS, &format!("{h:02}:15"), &format!("{:02}:45", (h + 1) % 24)),
            2 => cron(&format!("{} {h} * * *", i % 60), 90),
            _ => exception(&format!("2026-03-{:02}", 20 + i % 10)),
        };
        rules.push(rule(
            i + 1,
            new_rule(&format!("r{i}"), when, Some(15.0 + (i % 10) as f64), None),
        ));
    }
    let s = schedule(&berlin, rules, vec![]);
    let from = utc("2026-03-22T00:00:00Z");
    let to = from.checked_add(jiff::SignedDuration::from_hours(336)).expect("range");
    let mut fastest = std::time::Duration::MAX;
    for _ in 0..20 {
        let started = std::time::Instant::now();
        std::hint::black_box(s.timeline(from, to));
        fastest = fastest.min(started.elapsed());
    }
    let t = s.timeline(from, to);
    eprintln!("336 h, 100 rules: {} segments in {fastest:?} (fastest of 20)", t.segments.len());
    assert!(t.segments.len() > 336);
    assert_eq!(t.segments.last().map(|s| s.end), Some(to));

    // The densest rule there is: a firing every minute lasting a week, ~35,000 overlapping
    // occurrences in range. One segment, and still cheap.
    let dense = rule(1, new_rule("dense", cron("* * * * *", 10_080), Some(20.0), None));
    let s = schedule(&berlin, vec![dense], vec![]);
    let started = std::time::Instant::now();
    let t = s.timeline(from, to);
    eprintln!("336 h, a cron rule firing every minute for a week: {:?}", started.elapsed());
    assert_eq!(t.segments.len(), 1);
    assert_eq!(t.segments[0].rule.id, Some(1));
}
