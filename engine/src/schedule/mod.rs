//! What target is in force when, and why: schedule rules, overrides and the default target
//! resolved into a timeline. Pure code: no I/O, no clock (every function takes its instants).
//!
//! # Resolution ("most specific wins")
//!
//! Every enabled rule and every override is expanded into *occurrences*, half-open intervals
//! `[start, end)` of real time. The range asked for is cut at every occurrence edge, and in each
//! piece the in-force occurrences are ranked by
//! 1. layer (`override` > `date` > `day` > `every_day`), then
//! 2. the occurrence that started most recently (a short block inside a long one wins while it
//!    lasts), then
//! 3. for rules the lower id (the older rule), for overrides the higher id (the newer one).
//!
//! The first wins; the others, one entry per rule in the same order, are the `beaten` list,
//! followed by the default target, which is always in force underneath (when nothing else is in
//! force it wins and `beaten` is empty). A rule without `heat_c` or `cool_c` takes the default
//! target's; with no sensors it takes the default's selection. An override without a setpoint
//! or sensors takes them from the schedule underneath it (the best rule in force there, else the
//! default target), as `NewOverride` promises. Adjacent pieces with the same
//! winner and the same `beaten` list are merged (the same winner implies the same target).
//!
//! Everything is derived from the rules and an instant, never from edges seen: the state at `t`
//! is the same whether computed at `t` after a restart or as part of a timeline started days
//! earlier (tested). Occurrences are enumerated, not sampled: weekly rules once per local day,
//! cron rules per local day from the expression's matching hours and minutes.
//!
//! # Local time and daylight saving
//!
//! Times of day and dates are civil times in the schedule's time zone, turned into instants with
//! jiff's `Disambiguation::Compatible` (RFC 5545, Temporal):
//! - in a spring-forward gap a civil time moves forward by the gap: on 2026-03-29 in
//!   Europe/Berlin (02:00 → 03:00) a block starting 02:30 starts at 03:30 and a block
//!   02:00–03:00 vanishes that day (both ends map to 03:00);
//! - in an autumn fold the earlier instant is used, for starts and ends alike, so a block
//!   02:00–03:00 on 2026-10-25 in Berlin (03:00 → 02:00) runs 02:00 CEST to 03:00 CET, two
//!   hours: its wall-clock span including the repeated hour; a block 02:00–02:30 runs 02:00 to
//!   02:30 CEST, once;
//! - a range that crosses midnight ends at its civil end time on the next day, however long
//!   that is in real time on a DST night.
//!
//! Cron rules follow the same conversion, per matching civil time: a firing in a gap fires once,
//! at the shifted time (`30 2 * * *` fires 03:30 on the spring-forward day); a firing in a fold
//! fires once, at the earlier instant (not twice). Firings that land on the same instant (e.g.
//! `0,30 2-3 * * *` in a gap) count once. Each firing lasts `duration_min` minutes of real time.
//!
//! Times `HH:MM` run 00:00–23:59; an *end* may also be `24:00`, the end of the day (the next
//! day's 00:00).

mod parse;
mod resolve;
#[cfg(test)]
mod tests;

use hearth_proto::Timestamp;
use hearth_proto::schedules::{
    DefaultTarget, Layer, Override, Rule, RuleRef, SensorWeight, Timeline,
};
use jiff::SignedDuration;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;

pub(crate) use hearth_proto::schedules::Segment;
pub(crate) use parse::{check_default, check_new_rule, check_override, check_rule};

/// How far `next_change` looks ahead.
pub(crate) const NEXT_CHANGE_HORIZON: SignedDuration = SignedDuration::from_hours(14 * 24);

/// The default target when none is stored.
pub(crate) fn default_target() -> DefaultTarget {
    DefaultTarget { heat_c: 20.0, cool_c: 26.0, sensors: Vec::new() }
}

/// A rule's `when`, parsed.
#[derive(Debug, Clone)]
enum Recurrence {
    /// Starts on the listed weekdays (Monday = index 0) at `start` minutes after midnight, ends
    /// at `end` (at or before `start`: the next day).
    Weekly { days: [bool; 7], start: u16, end: u16 },
    /// Fires on matching days at each listed hour and minute, for `duration`.
    Cron { cron: Box<croner::Cron>, hours: Vec<i8>, minutes: Vec<i8>, duration: SignedDuration },
    /// One date, `start` to `end` (at or before `start`: the next day).
    Exception { date: Date, start: u16, end: u16 },
    /// From one civil date-time to another.
    Vacation { start: DateTime, end: DateTime },
}

/// Something that can win a piece of time: a rule or an override.
#[derive(Debug, Clone)]
struct Candidate {
    rule: RuleRef,
    /// Ties after layer and start: the larger wins (rules: −id, overrides: +id).
    tie: i64,
    /// Rules: filled from the default target. Overrides: as sent (`None`/empty: the schedule's
    /// underneath, resolved per piece).
    heat_c: Option<f64>,
    cool_c: Option<f64>,
    sensors: Vec<SensorWeight>,
}

#[derive(Debug, Clone)]
struct CompiledRule {
    candidate: usize,
    recurrence: Recurrence,
}

#[derive(Debug, Clone)]
struct CompiledOverride {
    candidate: usize,
    start: Timestamp,
    end: Option<Timestamp>,
}

/// Rules, overrides and the default target in one time zone: an immutable snapshot.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    tz: TimeZone,
    tz_name: String,
    default: DefaultTarget,
    rules: Vec<Rule>,
    candidates: Vec<Candidate>,
    compiled_rules: Vec<CompiledRule>,
    compiled_overrides: Vec<CompiledOverride>,
}

impl Schedule {
    /// Compile a snapshot. Rules that do not pass [`check_rule`] (stored by an older version)
    /// are kept for listing but never in force; disabled rules likewise.
    pub(crate) fn new(
        tz: TimeZone,
        default: DefaultTarget,
        rules: Vec<Rule>,
        overrides: Vec<Override>,
    ) -> Self {
        // A system zone read from a file without a name has no IANA name to show.
        let tz_name = tz.iana_name().unwrap_or("Etc/Unknown").to_owned();
        let mut candidates = Vec::new();
        let mut compiled_rules = Vec::new();
        for r in &rules {
            if !r.rule.enabled {
                continue;
            }
            let (Ok(layer), Ok(recurrence)) =
                (check_rule(&r.rule), parse::recurrence(&r.rule.when))
            else {
                continue;
            };
            compiled_rules.push(CompiledRule { candidate: candidates.len(), recurrence });
            candidates.push(Candidate {
                rule: RuleRef { layer, id: Some(r.id), name: r.rule.name.clone() },
                tie: -r.id,
                heat_c: Some(r.rule.heat_c.unwrap_or(default.heat_c)),
                cool_c: Some(r.rule.cool_c.unwrap_or(default.cool_c)),
                sensors: pick_sensors(&r.rule.sensors, &default.sensors),
            });
        }
        let mut compiled_overrides = Vec::new();
        for o in &overrides {
            compiled_overrides.push(CompiledOverride {
                candidate: candidates.len(),
                start: o.start,
                end: o.end,
            });
            candidates.push(Candidate {
                rule: RuleRef { layer: Layer::Override, id: Some(o.id), name: "override".into() },
                tie: o.id,
                heat_c: o.heat_c,
                cool_c: o.cool_c,
                sensors: o.sensors.clone(),
            });
        }
        Self { tz, tz_name, default, rules, candidates, compiled_rules, compiled_overrides }
    }

    pub(crate) fn default_target(&self) -> &DefaultTarget {
        &self.default
    }

    /// Every stored rule, enabled or not, by id.
    pub(crate) fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The segments in force in `[from, to)`: clipped to the range, in order, without gaps.
    pub(crate) fn segments(&self, from: Timestamp, to: Timestamp) -> Vec<Segment> {
        self.resolve(from, to, true)
    }

    /// [`Self::segments`] with the time zone and range.
    pub(crate) fn timeline(&self, from: Timestamp, to: Timestamp) -> Timeline {
        Timeline { time_zone: self.tz_name.clone(), from, to, segments: self.segments(from, to) }
    }

    /// The first instant after `after` at which the winner or the target changes, overrides
    /// left out (a "hold until the next change"); `None` when nothing changes within
    /// [`NEXT_CHANGE_HORIZON`].
    pub(crate) fn next_change(&self, after: Timestamp) -> Option<Timestamp> {
        let to = after.checked_add(NEXT_CHANGE_HORIZON).ok()?;
        let segments = self.resolve(after, to, false);
        let first = segments.first()?;
        segments.iter().find(|s| !same_target(s, first)).map(|s| s.start)
    }

    /// What the rules (overrides left out) put in force at `t`.
    fn rules_at(&self, t: Timestamp) -> Option<Segment> {
        let to = t.checked_add(SignedDuration::from_secs(1)).ok()?;
        self.resolve(t, to, false).into_iter().next()
    }

    fn default_ref() -> RuleRef {
        RuleRef { layer: Layer::Default, id: None, name: "default".into() }
    }

    fn default_segment(&self, start: Timestamp, end: Timestamp) -> Segment {
        Segment {
            start,
            end,
            start_local: self.local(start),
            end_local: self.local(end),
            heat_c: self.default.heat_c,
            cool_c: self.default.cool_c,
            sensors: self.default.sensors.clone(),
            rule: Self::default_ref(),
            beaten: Vec::new(),
        }
    }

    /// RFC 9557 local time, e.g. `2026-03-29T03:30:00+02:00[Europe/Berlin]`.
    fn local(&self, t: Timestamp) -> String {
        t.to_zoned(self.tz.clone()).to_string()
    }
}

/// Whether two segments put the same thing in force: the same winner (by layer and id, so
/// renaming a rule changes nothing) with the same setpoints and sensors.
fn same_target(a: &Segment, b: &Segment) -> bool {
    a.rule.layer == b.rule.layer
        && a.rule.id == b.rule.id
        && a.heat_c == b.heat_c
        && a.cool_c == b.cool_c
        && a.sensors == b.sensors
}

/// The end of an override held "until the next change" (started at `start`, ending at `end`
/// so far) after the rules were edited at `now`: the schedule before the edit was `before`,
/// after it `after`.
///
/// People expect the next change of the schedule as it stands now, not as it stood when they
/// pressed +. The schedule as it really unfolds is the old rules up to the edit and the new
/// ones from it, so the hold ends at its first change after `start` in that history:
/// - a hold that already ended stays ended (an edit never revives it);
/// - a hold that has not started yet ends at the new rules' first change after its start;
/// - an edit that changes what is in force at `now` (a block added or stretched over now, the
///   rule in force edited, disabled or deleted, the default target changed under it) is itself
///   that change: the hold ends at `now` and the newer intent wins;
/// - otherwise the hold ends at the new rules' next change after `now`, earlier or later than
///   before (a block added before the old change, the coming edge moved either way).
///
/// When the new rules do not change at all within [`NEXT_CHANGE_HORIZON`], the hold keeps the
/// end it had: it stays bounded, and it ends when people were told it would.
pub(crate) fn next_change_hold_end(
    before: &Schedule,
    after: &Schedule,
    start: Timestamp,
    end: Timestamp,
    now: Timestamp,
) -> Timestamp {
    if end <= now {
        return end;
    }
    if start > now {
        return after.next_change(start).unwrap_or(end);
    }
    let changed_now = match (before.rules_at(now), after.rules_at(now)) {
        (Some(was), Some(is)) => !same_target(&was, &is),
        (was, is) => was.is_some() != is.is_some(),
    };
    if changed_now {
        return now;
    }
    after.next_change(now).unwrap_or(end)
}

pub(super) fn pick_sensors(own: &[SensorWeight], default: &[SensorWeight]) -> Vec<SensorWeight> {
    if own.is_empty() { default.to_vec() } else { own.to_vec() }
}
