//! Occurrence enumeration and the sweep that picks a winner in every piece of time.

use hearth_proto::Timestamp;
use hearth_proto::schedules::Layer;
use jiff::ToSpan;
use jiff::civil::{Date, DateTime};

use super::{Recurrence, Schedule, Segment, pick_sensors};

/// One interval `[start, end)` in which a candidate (rule or override) is in force.
#[derive(Debug, Clone, Copy)]
struct Occurrence {
    start: Timestamp,
    end: Timestamp,
    candidate: usize,
}

/// Pieces before merging: `order` ranks the candidates in force, winner first.
#[derive(Debug)]
struct Piece {
    start: Timestamp,
    end: Timestamp,
    order: Vec<usize>,
}

impl Schedule {
    /// Civil time to an instant, RFC 5545 / Temporal "compatible": a gap moves forward by its
    /// length, a fold takes the earlier instant.
    fn instant(&self, dt: DateTime) -> Option<Timestamp> {
        self.tz.to_ambiguous_timestamp(dt).compatible().ok()
    }

    /// `minutes` after the start of `date` (1440: the next day's midnight) as an instant.
    fn at_minutes(&self, date: Date, minutes: u16) -> Option<Timestamp> {
        let (date, minutes) = if minutes >= 24 * 60 {
            (date.tomorrow().ok()?, minutes - 24 * 60)
        } else {
            (date, minutes)
        };
        self.instant(date.at((minutes / 60) as i8, (minutes % 60) as i8, 0, 0))
    }

    /// A block that starts on `date` at `start` and ends at `end`, the next day when `end` is
    /// at or before `start`.
    fn block(&self, date: Date, start: u16, end: u16) -> Option<(Timestamp, Timestamp)> {
        let s = self.at_minutes(date, start)?;
        let e = if end > start {
            self.at_minutes(date, end)?
        } else {
            self.at_minutes(date.tomorrow().ok()?, end)?
        };
        Some((s, e))
    }

    fn local_date(&self, t: Timestamp) -> Date {
        self.tz.to_datetime(t).date()
    }

    /// Every occurrence of every enabled rule (and override, if asked) overlapping
    /// `[from, to)`. Enumeration starts early enough to find occurrences that began before
    /// `from` and still last: weekly and exception blocks last at most a day (and a DST hour),
    /// cron firings `duration_min`.
    fn occurrences(&self, from: Timestamp, to: Timestamp, overrides: bool) -> Vec<Occurrence> {
        let mut out = Vec::new();
        let first = self.local_date(from).checked_sub(2.days()).unwrap_or(Date::MIN);
        let last = self.local_date(to);
        let push = |out: &mut Vec<Occurrence>, span: Option<(Timestamp, Timestamp)>, c| {
            if let Some((start, end)) = span
                && start < end
                && start < to
                && end > from
            {
                out.push(Occurrence { start, end, candidate: c });
            }
        };
        for rule in &self.compiled_rules {
            let c = rule.candidate;
            match &rule.recurrence {
                Recurrence::Weekly { days, start, end } => {
                    for date in dates(first, last) {
                        if days[date.weekday().to_monday_zero_offset() as usize] {
                            push(&mut out, self.block(date, *start, *end), c);
                        }
                    }
                }
                Recurrence::Exception { date, start, end } => {
                    push(&mut out, self.block(*date, *start, *end), c);
                }
                Recurrence::Vacation { start, end } => {
                    let span = self.instant(*start).zip(self.instant(*end));
                    push(&mut out, span, c);
                }
                Recurrence::Cron { cron, hours, minutes, duration } => {
                    let back = duration.as_hours() / 24 + 2;
                    let first = self.local_date(from).checked_sub(back.days()).unwrap_or(Date::MIN);
                    let mut starts = Vec::new();
                    for date in dates(first, last) {
                        let (y, m, d) = (i32::from(date.year()), date.month() as u32, date.day());
                        let weekday = croner::time::Weekday::from_days_from_sunday(
                            date.weekday().to_sunday_zero_offset() as u32,
                        );
                        let p = &cron.pattern;
                        if !(p.month_match(m).unwrap_or(false)
                            && p.day_match(y, m, d as u32, weekday).unwrap_or(false))
                        {
                            continue;
                        }
                        for &h in hours {
                            for &min in minutes {
                                starts.extend(self.instant(date.at(h, min, 0, 0)));
                            }
                        }
                    }
                    // Civil times shifted out of a gap can land on another firing's instant.
                    starts.sort();
                    starts.dedup();
                    for s in starts {
                        push(&mut out, s.checked_add(*duration).ok().map(|e| (s, e)), c);
                    }
                }
            }
        }
        if overrides {
            for o in &self.compiled_overrides {
                push(&mut out, Some((o.start, o.end.unwrap_or(Timestamp::MAX))), o.candidate);
            }
        }
        out
    }

    /// The segments of `[from, to)`; overrides left out unless `overrides`.
    pub(super) fn resolve(&self, from: Timestamp, to: Timestamp, overrides: bool) -> Vec<Segment> {
        if from >= to {
            return Vec::new();
        }
        let mut occs = self.occurrences(from, to, overrides);
        let mut edges = vec![from, to];
        for o in &occs {
            edges.extend([o.start, o.end].into_iter().filter(|t| from < *t && *t < to));
        }
        edges.sort();
        edges.dedup();
        occs.sort_by_key(|o| o.start);

        let mut pieces: Vec<Piece> = Vec::new();
        let mut next = 0;
        let mut active: Vec<Occurrence> = Vec::new();
        let mut ranked: Vec<(Layer, Timestamp, i64, usize)> = Vec::new();
        for w in edges.windows(2) {
            let (a, b) = (w[0], w[1]);
            while next < occs.len() && occs[next].start <= a {
                let n = occs[next];
                // An occurrence of the same candidate that started no later and ends no later
                // can never rank it again: dropping it keeps the active set at most one per
                // candidate for cron rules (fixed duration), however densely they fire.
                active.retain(|o| !(o.candidate == n.candidate && o.end <= n.end));
                active.push(n);
                next += 1;
            }
            active.retain(|o| o.end > a);
            ranked.clear();
            ranked.extend(active.iter().map(|o| {
                let c = &self.candidates[o.candidate];
                (c.rule.layer, o.start, c.tie, o.candidate)
            }));
            ranked.sort_unstable_by(|x, y| y.cmp(x));
            // One entry per candidate: its most recent occurrence ranks it.
            let mut order: Vec<usize> = Vec::with_capacity(ranked.len());
            for &(.., c) in &ranked {
                if !order.contains(&c) {
                    order.push(c);
                }
            }
            match pieces.last_mut() {
                Some(last) if last.end == a && last.order == order => last.end = b,
                _ => pieces.push(Piece { start: a, end: b, order }),
            }
        }
        pieces.into_iter().map(|p| self.segment(p)).collect()
    }

    fn segment(&self, p: Piece) -> Segment {
        let Some((&winner, rest)) = p.order.split_first() else {
            return self.default_segment(p.start, p.end);
        };
        let c = &self.candidates[winner];
        let mut beaten: Vec<_> = rest.iter().map(|&i| self.candidates[i].rule.clone()).collect();
        beaten.push(Self::default_ref());
        // What an override leaves open comes from the schedule underneath it.
        let d = &self.default;
        let under =
            rest.iter().map(|&i| &self.candidates[i]).find(|u| u.rule.layer != Layer::Override);
        let (heat, cool, sensors) = match under {
            Some(u) => (u.heat_c.unwrap_or(d.heat_c), u.cool_c.unwrap_or(d.cool_c), &u.sensors),
            None => (d.heat_c, d.cool_c, &d.sensors),
        };
        Segment {
            start: p.start,
            end: p.end,
            start_local: self.local(p.start),
            end_local: self.local(p.end),
            heat_c: c.heat_c.unwrap_or(heat),
            cool_c: c.cool_c.unwrap_or(cool),
            sensors: pick_sensors(&c.sensors, sensors),
            rule: c.rule.clone(),
            beaten,
        }
    }
}

/// The dates `first..=last`.
fn dates(first: Date, last: Date) -> impl Iterator<Item = Date> {
    std::iter::successors(Some(first), move |d| d.tomorrow().ok().filter(|n| *n <= last))
        .take_while(move |d| *d <= last)
}
