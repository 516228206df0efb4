// The schedule's week in numbers, pure (no DOM): which days and minutes each rule covers in the
// shown week (in the engine's wall-clock time), who wins where (from the engine's timeline),
// how overlapping blocks share a day's column, where a dragged block lands, and the texts that
// describe a rule. schedule-render.js draws what these compute.

import {
  DAY_MIN, SHORT_DAYS, WEEKDAYS, addDays, dateParts, dayLabel, hhmm, hhmmEnd, localMidnight,
  minutes, mondayOf, offsetMs, parseLocal, splitDays, weekdayIndex, wrapDay,
} from "./calendar.js";
import { fmtTemp } from "./format.js";

export const LAYER_NAMES = { default: 'Default', every_day: 'Every day', day: 'Some days', date: 'Date', override: 'Override' };
const DEFAULT_COLOR = 'var(--sched-default, #8a8f98)';
const OVERRIDE_COLOR = 'var(--sched-override, #d9480f)';

/** A rule's colour; golden-angle hues: consecutive ids get clearly different colours. */
export function ruleColor(id) {
  return `hsl(${Math.round((Number(id) * 137.508 + 200) % 360)} 60% 45%)`;
}

/** The colour of whoever wins a stretch of time: the default, an override, or a rule. */
export function winnerColor(rule) {
  if (rule.id === null || rule.id === undefined || rule.layer === 'default') return DEFAULT_COLOR;
  return rule.layer === 'override' ? OVERRIDE_COLOR : ruleColor(rule.id);
}

/** "Mon–Fri 06:30–08:00", "cron "…" for 30 min", "Mon 21 Nov, all day", "Away …". */
export function whenSummary(rule) {
  const w = rule.when;
  switch (w.type) {
    case 'weekly': {
      const idx = w.days.map((d) => WEEKDAYS.indexOf(d)).sort((a, b) => a - b);
      let days = idx.map((i) => SHORT_DAYS[i]).join(', ');
      if (idx.length === 7) days = 'Every day';
      else if (idx.join() === '0,1,2,3,4') days = 'Mon–Fri';
      else if (idx.join() === '5,6') days = 'Sat, Sun';
      return `${days} ${w.start}–${w.end}`;
    }
    case 'cron':
      return `cron "${w.expr}" for ${w.duration_min} min`;
    case 'exception':
      return `${dayLabel(w.date)}${w.start || w.end ? ` ${w.start || '00:00'}–${w.end || '24:00'}` : ', all day'}`;
    case 'vacation':
      return `Away ${w.start.replace('T', ' ')} – ${w.end.replace('T', ' ')}`;
    default:
      return '';
  }
}

/** "21.0 °C · cool 25.0 °C", or "default target" when a rule sets neither. */
export function setpointText(heat, cool) {
  const parts = [];
  if (heat !== null && heat !== undefined) parts.push(fmtTemp(heat));
  if (cool !== null && cool !== undefined) parts.push(`cool ${fmtTemp(cool)}`);
  return parts.join(' · ') || 'default target';
}

/** Rules in the order people read them: most specific layer first, then by name. */
export function sortRules(rules) {
  const rank = { date: 0, day: 1, every_day: 2 };
  return [...rules].sort((a, b) => (rank[a.layer] ?? 3) - (rank[b.layer] ?? 3) || a.name.localeCompare(b.name));
}

/** A timeline segment's time: "06:00–08:30", with weekdays when it leaves `firstDate`. */
export function segmentTime(seg, firstDate, fallback) {
  const s = parseLocal(seg.start_local);
  const e = parseLocal(seg.end_local);
  if (!s || !e) return fallback(seg);
  const sd = s.date !== firstDate ? `${SHORT_DAYS[weekdayIndex(s.date)]} ` : '';
  const ed = e.date !== s.date && !(e.min === 0 && addDays(s.date, 1) === e.date) ? `${SHORT_DAYS[weekdayIndex(e.date)]} ` : '';
  return `${sd}${hhmm(s.min)}–${ed}${e.min === 0 && e.date !== s.date && !ed ? '24:00' : hhmm(e.min)}`;
}

/**
 * The week to show, `weekOffset` weeks from the one holding the timeline's first segment:
 * its seven dates (Monday first), today, now's minute, and the instant its Monday starts in
 * the engine's zone (the timeline's own offset when the browser does not know the zone).
 */
export function weekOf(timeline, weekOffset, today = new Date().toISOString().slice(0, 10)) {
  const first = timeline.segments[0];
  const now = parseLocal(first ? first.start_local : '') || { date: today, min: 0, offset: 'Z' };
  const monday = mondayOf(now.date, weekOffset);
  return {
    dates: Array.from({ length: 7 }, (_, i) => addDays(monday, i)),
    today: now.date,
    nowMin: now.min,
    from: localMidnight(monday, timeline.time_zone, offsetMs(now.offset)),
  };
}

/** The week's timeline as per-day pieces { date, s, e, winner, beaten, heat, cool }. */
export function timelinePieces(segments, dates) {
  const out = [];
  for (const seg of segments) {
    const s = parseLocal(seg.start_local);
    const e = parseLocal(seg.end_local);
    if (!s || !e) continue;
    for (const p of splitDays(s.date, s.min, e.date, e.min)) {
      if (dates.includes(p.date)) out.push({ ...p, winner: seg.rule, beaten: seg.beaten, heat: seg.heat_c, cool: seg.cool_c });
    }
  }
  return out;
}

function weeklyPieces(w, dates) {
  const s = minutes(w.start);
  const e = minutes(w.end);
  if (s === null || e === null) return null;
  const out = [];
  for (const day of w.days) {
    const i = WEEKDAYS.indexOf(day);
    if (i < 0) continue;
    if (e > s) out.push({ date: dates[i], s, e });
    else {
      // Ends at or before it starts: runs past midnight into the next day (Sunday's tail
      // lands on this week's Monday, as the rule repeats every week).
      out.push({ date: dates[i], s, e: DAY_MIN });
      if (e > 0) out.push({ date: dates[(i + 1) % 7], s: 0, e });
    }
  }
  return out;
}

/** Cron occurrences are the engine's to compute: the pieces of the week's timeline where the
 * rule is in force, as winner or beaten, adjacent ones merged. Disabled rules never appear. */
function cronPieces(rule, tlPieces) {
  if (!rule.enabled) return null;
  const mine = (r) => r.id === rule.id && r.layer !== 'override';
  const out = tlPieces
    .filter((p) => mine(p.winner) || p.beaten.some(mine))
    .map((p) => ({ date: p.date, s: p.s, e: p.e }));
  out.sort((x, y) => (x.date === y.date ? x.s - y.s : x.date < y.date ? -1 : 1));
  const merged = [];
  for (const p of out) {
    const last = merged[merged.length - 1];
    if (last && last.date === p.date && last.e === p.s) last.e = p.e;
    else merged.push({ ...p });
  }
  return merged;
}

/** Per-day pieces { date, s, e } of a rule in the week of `dates`; null: not drawable. */
export function rulePieces(rule, dates, tlPieces) {
  const w = rule.when;
  const inWeek = (p) => dates.includes(p.date);
  if (w.type === 'weekly') return weeklyPieces(w, dates);
  if (w.type === 'exception') {
    const s = w.start ? minutes(w.start) : 0;
    const e = w.end ? minutes(w.end) : DAY_MIN;
    if (s === null || e === null) return null;
    const pieces = e > s ? [{ date: w.date, s, e }] : splitDays(w.date, s, addDays(w.date, 1), e);
    return pieces.filter(inWeek);
  }
  if (w.type === 'vacation') {
    const a = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(w.start);
    const b = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(w.end);
    if (!a || !b) return null;
    return splitDays(a[1], minutes(a[2]), b[1], minutes(b[2])).filter(inWeek);
  }
  if (w.type === 'cron') return cronPieces(rule, tlPieces);
  return null;
}

/**
 * One day's blocks laid out side by side: overlapping blocks form a cluster; within it each
 * takes the first free lane and the cluster's blocks share the width (`lanes` of them).
 * Sorts `items` ({s, e}) in place and sets `lane` and `lanes` on each; returns them.
 */
export function layoutLanes(items) {
  items.sort((a, b) => a.s - b.s || b.e - a.e);
  let cluster = [];
  let clusterEnd = -1;
  let lanes = [];
  const closeCluster = () => {
    for (const it of cluster) it.lanes = lanes.length;
    cluster = [];
    lanes = [];
  };
  for (const it of items) {
    if (it.s >= clusterEnd) closeCluster();
    let lane = lanes.findIndex((endAt) => endAt <= it.s);
    if (lane < 0) {
      lane = lanes.length;
      lanes.push(0);
    }
    lanes[lane] = it.e;
    it.lane = lane;
    cluster.push(it);
    clusterEnd = Math.max(clusterEnd, it.e);
  }
  closeCluster();
  return items;
}

/** The rule's pieces per date of the week, and the rules that cannot be drawn. */
export function blocksByDay(rules, dates, tlPieces) {
  const notDrawn = [];
  const byDay = new Map(dates.map((d) => [d, []]));
  for (const rule of rules) {
    const pieces = rulePieces(rule, dates, tlPieces);
    if (pieces === null) {
      notDrawn.push(rule);
      continue;
    }
    for (const p of pieces) if (byDay.has(p.date)) byDay.get(p.date).push({ ...p, rule });
  }
  for (const items of byDay.values()) layoutLanes(items);
  return { byDay, notDrawn };
}

/** The parts of a block [s, e) on `date` where another rule wins: { s, e, winner }. */
export function beatenParts(rule, date, s, e, tlPieces) {
  const out = [];
  for (const p of tlPieces) {
    if (p.date !== date || (p.winner.id === rule.id && p.winner.layer !== 'override')) continue;
    const a = Math.max(p.s, s);
    const b = Math.min(p.e, e);
    if (b > a) out.push({ s: a, e: b, winner: p.winner });
  }
  return out;
}

/** Where a weekly rule lands when its block is moved by `dMin` minutes and `dDay` days: a
 * start pushed past midnight moves its days too. */
export function movedWeekly(when, dMin, dDay) {
  const start = minutes(when.start) + dMin;
  const end = minutes(when.end) + dMin;
  const shift = dDay + Math.floor(start / DAY_MIN);
  const days = when.days.map((d) => WEEKDAYS[(((WEEKDAYS.indexOf(d) + shift) % 7) + 7) % 7]);
  return { type: 'weekly', days, start: hhmm(wrapDay(start)), end: hhmm(wrapDay(end)) };
}

/** "06:00–24:00" of a piece. */
export const pieceTime = (p) => `${hhmm(p.s)}–${hhmmEnd(p.e)}`;

/** A date's day of the month, for the column head. */
export const dayOfMonth = (date) => String(dateParts(date).d);
