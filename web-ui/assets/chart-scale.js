// The charts' arithmetic, pure (no DOM): value ranges and "nice" ticks, time ticks at local
// wall-clock boundaries, a series broken at its gaps, the setpoint step path, the tooltip's
// rows and the bar chart's one-unit axis. chart.js draws what these compute.

import {
  fmtDate, fmtDayTime, fmtDuration, fmtTemp, fmtTempRange, fmtTime, fmtWeekdayDate, tempNumber,
} from "./format.js";

// Colours are the stylesheet's (tokens.css, light and dark): these name its variables. They
// are applied through `style`, as SVG presentation attributes cannot hold var().
const PALETTE = [1, 2, 3, 4, 5, 6, 7].map((i) => `var(--chart-series-${i})`);
export const HEAT_COLOR = 'var(--chart-heat)';
export const COOL_COLOR = 'var(--chart-cool)';
const HEAT_TARGET_COLOR = 'var(--chart-target-heat)';
const COOL_TARGET_COLOR = 'var(--chart-target-cool)';

export const MINUTE = 60e3;
export const HOUR = 3600e3;
export const DAY = 24 * HOUR;

const present = (v) => v !== null && v !== undefined;
export const seriesColor = (s, i) => s.color || PALETTE[i % PALETTE.length];
export const setpointColor = (kind) => (kind === 'cool' ? COOL_TARGET_COLOR : HEAT_TARGET_COLOR);
export const runColor = (system) => (system === 'cool' ? COOL_COLOR : HEAT_COLOR);
export const systemName = (system) => (system === 'cool' ? 'Cooling' : 'Heating');

/** "Nice" tick step (1, 2, 2.5, 5 × 10^n) giving about `count` ticks over `span`. */
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

/** The °C axis: every value and setpoint drawn, padded, at least 2 °C tall, on nice ticks.
 * `ticks` is about how many (fewer on a short plot). */
export function valueRange(data, ticks) {
  const vals = [];
  for (const s of data.series) {
    for (const p of s.points) for (const v of [p.min, p.mean, p.max]) if (present(v)) vals.push(v);
  }
  for (const sp of data.setpoints || []) for (const st of sp.steps) if (st.v !== null) vals.push(st.v);
  let lo = vals.length ? Math.min(...vals) : 15;
  let hi = vals.length ? Math.max(...vals) : 25;
  if (hi - lo < 2) {
    const mid = (hi + lo) / 2;
    lo = mid - 1;
    hi = mid + 1;
  }
  const step = niceStep(hi - lo, ticks);
  lo = Math.floor((lo - step * 0.25) / step) * step;
  hi = Math.ceil((hi + step * 0.25) / step) * step;
  const values = [];
  for (let v = lo; v <= hi + 1e-9; v += step) values.push({ v, label: tempNumber(v, step < 1 ? 1 : 0) });
  return { lo, hi, step, ticks: values };
}

const TIME_STEPS = [
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY,
];

/**
 * Time ticks `{t, label, major}` at local-time boundaries. The step is the smallest candidate
 * that keeps labels about `minPx` apart on `width` px; hour steps start at local midnight so
 * labels read 00:00, 03:00…
 */
export function timeTicks(from, to, width, minPx = 64) {
  const span = to - from;
  const maxTicks = Math.max(2, Math.floor(width / minPx));
  const step = TIME_STEPS.find((s) => span / s <= maxTicks) ?? 14 * DAY;
  const d = new Date(from);
  d.setHours(0, 0, 0, 0);
  return step >= DAY ? dayTicks(d, from, to, Math.round(step / DAY)) : clockTicks(d, from, to, Math.round(step / MINUTE));
}

function dayTicks(d, from, to, days) {
  const ticks = [];
  const label = to - from > 10 * DAY ? fmtDate : fmtWeekdayDate;
  // Weekly steps start on a Monday so the axis reads like a calendar.
  if (days === 7 || days === 14) d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  while (d.getTime() <= to) {
    if (d.getTime() >= from) ticks.push({ t: d.getTime(), label: label(d), major: true });
    d.setDate(d.getDate() + days);
  }
  return ticks;
}

function clockTicks(d, from, to, minutes) {
  const ticks = [];
  // Start at the local hour before `from` (not midnight): a one-hour span needs a few dozen
  // steps, not a day's worth.
  if (minutes < 60) {
    d.setTime(Math.max(d.getTime(), from - HOUR));
    d.setMinutes(0, 0, 0);
  }
  while (d.getTime() <= to) {
    if (d.getTime() >= from) {
      const midnight = d.getHours() === 0 && d.getMinutes() === 0;
      const label = midnight ? fmtWeekdayDate(d) : fmtTime(d);
      ticks.push({ t: d.getTime(), label, major: midnight || (minutes < 60 && d.getMinutes() === 0) });
    }
    // setMinutes keeps local wall-clock steps right across DST changes.
    d.setMinutes(d.getMinutes() + minutes);
  }
  return ticks;
}

/** Index of the last element of sorted `arr` (by key) at or before `t`, or -1. */
export function bisect(arr, t, key = (x) => x.t) {
  let lo = 0;
  let hi = arr.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (key(arr[mid]) <= t) {
      ans = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return ans;
}

/** How far apart two points of a series may be and still be joined: 3 buckets, 15 min at least. */
const maxGapMs = (s) => Math.max(3 * (s.bucketS || 0) * 1000, 15 * 60e3);

/** The points with a value, in runs: a gap longer than maxGapMs (or a null) breaks the line. */
export function seriesRuns(s) {
  const runs = [];
  let cur = [];
  let prevT = null;
  for (const p of s.points) {
    if (!present(p.mean) || (prevT !== null && p.t - prevT > maxGapMs(s))) {
      if (cur.length) runs.push(cur);
      cur = [];
    }
    if (present(p.mean)) cur.push(p);
    prevT = p.t;
  }
  if (cur.length) runs.push(cur);
  return runs;
}

/** The SVG path of a setpoint's steps over [from, to) (a step holds until the next). */
export function setpointPath(steps, from, to, x, y) {
  let d = '';
  steps.forEach((st, i) => {
    const t0 = Math.max(st.t, from);
    const t1 = Math.min(i + 1 < steps.length ? steps[i + 1].t : to, to);
    if (t1 <= from || st.v === null) return;
    d += `M${x(t0).toFixed(1)},${y(st.v).toFixed(1)}H${x(t1).toFixed(1)}`;
    const next = steps[i + 1];
    if (next && next.v !== null && next.t < to) d += `V${y(next.v).toFixed(1)}`;
  });
  return d;
}

/** The chart in words, for its accessible name. */
export function summaryText(data) {
  const parts = [];
  for (const s of data.series) {
    const vals = s.points.flatMap((p) => [p.min ?? p.mean, p.max ?? p.mean]).filter(present);
    parts.push(vals.length ? `${s.label} ${fmtTempRange(Math.min(...vals), Math.max(...vals))}` : `${s.label} no readings`);
  }
  const runs = data.runs || [];
  const heat = runs.filter((r) => r.system === 'heat').length;
  const cool = runs.filter((r) => r.system === 'cool').length;
  let text = `${parts.join(', ') || 'No sensors'} over ${data.rangeLabel || 'the range'}`;
  if (heat || cool) text += `; ${heat} heating and ${cool} cooling runs`;
  return `${text}.`;
}

/** A series' point nearest to `t` (points drawn `half` ms later, at their bucket's centre),
 * within maxGapMs; null when there is none that close. */
export function nearestPoint(s, t, half = 0) {
  const i = bisect(s.points, t, (p) => p.t + half);
  let best = null;
  for (const j of [i, i + 1]) {
    const p = s.points[j];
    if (!p || !present(p.mean)) continue;
    if (!best || Math.abs(p.t + half - t) < Math.abs(best.t + half - t)) best = p;
  }
  return best && Math.abs(best.t + half - t) <= maxGapMs(s) ? best : null;
}

/** What the crosshair at `t` shows: a time, one row per series and setpoint, the run if any. */
export function tooltipAt(data, t, now = Date.now()) {
  const rows = data.series.map((s, si) => {
    const half = (s.bucketS || 0) * 500;
    const best = nearestPoint(s, t, half);
    let text = best ? fmtTemp(best.mean) : '—';
    if (best && s.bucketS > 0 && best.min !== null && best.max !== null && best.max - best.min >= 0.05) {
      text += ` (${tempNumber(best.min)}–${tempNumber(best.max)})`;
    }
    return { color: seriesColor(s, si), label: s.label, text };
  });
  for (const sp of data.setpoints || []) {
    const i = bisect(sp.steps, t);
    if (i >= 0 && sp.steps[i].v !== null) rows.push({ color: setpointColor(sp.kind), label: sp.label, text: fmtTemp(sp.steps[i].v) });
  }
  const run = (data.runs || []).find((r) => r.start <= t && (r.end ?? now) > t) || null;
  return { time: fmtDayTime(t), rows, run };
}

/** A run's title: "Heating Mon 21 Nov 14:05 – 14:35". */
export function runTitle(r) {
  return `${systemName(r.system)} ${fmtDayTime(r.start)} – ${r.end ? fmtTime(r.end) : 'now'}`;
}

/** Durations in seconds on one axis: the one unit that suits the largest value. */
export function durationUnit(maxS) {
  if (maxS >= 3600) return { name: 'h', s: 3600 };
  if (maxS >= 60) return { name: 'min', s: 60 };
  return { name: 's', s: 1 };
}

/**
 * A bar chart's value axis, in one unit with the same decimals on every tick (never "2.4 min,
 * 1.8 min, 36 s" on one axis): { unit: {name, s}, step, top, ticks: [v], tick(v), says(v) }.
 * `says` is a bar's value in words (a duration, or the tick format).
 */
export function barAxis(totals, data) {
  const maxV = Math.max(...totals, 0);
  const unit = data.duration ? durationUnit(maxV) : { name: data.unit || '', s: 1 };
  const maxU = maxV / unit.s;
  let step = niceStep(maxU || 1, 4);
  if (data.duration && unit.s === 1) step = Math.max(1, step);
  const top = Math.max(step, Math.ceil(maxU / step - 1e-9) * step);
  // As many decimals as the step has (0.25 → 2, 2.5 → 1, 5 → 0), the same on every tick.
  const decimals = (String(+step.toPrecision(6)).split('.')[1] || '').length;
  const tick = data.format && !data.duration ? data.format : (v) => v.toFixed(decimals);
  const ticks = [];
  for (let v = 0; v <= top + 1e-9; v += step) ticks.push(v);
  return { unit, step, top, ticks, tick, says: (v) => (data.duration ? fmtDuration(v) : tick(v)) };
}

/** A zoom request [from, to] kept inside `all` and at least `minSpan` wide; null (the whole
 * range) when it covers all of it. */
export function clampSpan(from, to, all, minSpan) {
  const span = Math.max(minSpan, to - from);
  if (span >= all.to - all.from) return null;
  const mid = (from + to) / 2;
  const a = Math.min(Math.max(mid - span / 2, all.from), all.to - span);
  return { from: a, to: a + span };
}

/** The span `factor` times as wide as [from, to] (0.5: in, 2: out) around its middle. */
export function scaleSpan({ from, to }, factor) {
  const mid = (from + to) / 2;
  const span = (to - from) * factor;
  return { from: mid - span / 2, to: mid + span / 2 };
}
