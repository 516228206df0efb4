// The charts' arithmetic (assets/chart-scale.js), without a browser: `node --test`. Time ticks
// follow the runtime's zone, so this file pins it (before anything reads the clock).
process.env.TZ = 'Europe/Berlin';

import { test } from 'node:test';
import assert from 'node:assert/strict';

const {
  barAxis, bisect, clampSpan, durationUnit, nearestPoint, niceStep, scaleSpan, seriesRuns,
  setpointPath, summaryText, timeTicks, tooltipAt, valueRange, HOUR, DAY, MINUTE,
} = await import('../assets/chart-scale.js');

test('nice steps', () => {
  assert.equal(niceStep(10, 5), 2);
  assert.equal(niceStep(9, 4), 2.5);
  assert.equal(niceStep(0.7, 4), 0.2);
  assert.equal(niceStep(3000, 4), 1000);
});

test('the °C axis holds every value and setpoint, at least 2 °C tall', () => {
  const data = { series: [{ points: [{ mean: 20, min: 19.5, max: 20.4 }] }], setpoints: [{ steps: [{ v: 21 }, { v: null }] }] };
  const r = valueRange(data, 6);
  assert.ok(r.lo <= 19.5 && r.hi >= 21, JSON.stringify(r));
  assert.equal(r.ticks[0].v, r.lo);
  const flat = valueRange({ series: [{ points: [{ mean: 20 }] }] }, 4);
  assert.ok(flat.hi - flat.lo >= 2);
  const empty = valueRange({ series: [] }, 4);
  assert.ok(empty.lo <= 15 && empty.hi >= 25);
  // Ticks straddling zero never read "-0".
  const cold = valueRange({ series: [{ points: [{ mean: -1.2 }, { mean: 0.8 }] }] }, 4);
  assert.ok(cold.ticks.some((t) => t.v === 0) && cold.ticks.every((t) => !/^-0(\.0)?$/.test(t.label)), JSON.stringify(cold.ticks));
});

test('time ticks at local boundaries: hours from midnight, days across a DST change', () => {
  const from = Date.parse('2026-03-28T12:00:00Z');
  const ticks = timeTicks(from, from + 2 * DAY, 600);
  assert.ok(ticks.length >= 2 && ticks.length <= 10, ticks.map((t) => t.label).join());
  for (const tk of ticks) assert.ok(tk.t >= from && tk.t <= from + 2 * DAY);
  // Local midnight of Sunday 29 March (CET, UTC+1) and of Monday 30 (CEST, UTC+2).
  const midnights = ticks.filter((t) => t.major).map((t) => new Date(t.t).toISOString());
  assert.ok(midnights.includes('2026-03-28T23:00:00.000Z'), midnights.join());
  assert.ok(midnights.includes('2026-03-29T22:00:00.000Z'), midnights.join());
  assert.equal(ticks.find((t) => t.t === Date.parse('2026-03-29T22:00:00Z')).label, 'Mon 30');
  const hour = timeTicks(Date.parse('2026-03-30T08:10:00Z'), Date.parse('2026-03-30T09:10:00Z'), 600);
  assert.ok(hour.every((t) => /^\d\d:\d\d$/.test(t.label)), hour.map((t) => t.label).join());
  assert.equal(hour.find((t) => t.t === Date.parse('2026-03-30T09:00:00Z'))?.label, '11:00');
  assert.ok(hour.every((t, i) => i === 0 || t.t - hour[i - 1].t === hour[1].t - hour[0].t));
  const month = timeTicks(Date.parse('2026-11-01T00:00:00Z'), Date.parse('2026-12-01T00:00:00Z'), 400);
  assert.match(month[0].label, /^\d{1,2} (Nov|Dec)$/);
  assert.ok(month.every((t) => new Date(t.t).getDay() === 1), 'weekly ticks on Mondays');
});

test('bisect', () => {
  const arr = [{ t: 1 }, { t: 3 }, { t: 5 }];
  assert.equal(bisect(arr, 0), -1);
  assert.equal(bisect(arr, 3), 1);
  assert.equal(bisect(arr, 4), 1);
  assert.equal(bisect(arr, 9), 2);
});

test('a series breaks at nulls and at gaps longer than three buckets or 15 minutes', () => {
  const p = (min, mean = 20) => ({ t: min * MINUTE, mean });
  const raw = { bucketS: 0, points: [p(0), p(1), p(2, null), p(3), p(20), p(21)] };
  assert.deepEqual(seriesRuns(raw).map((r) => r.map((x) => x.t / MINUTE)), [[0, 1], [3], [20, 21]]);
  const hourly = { bucketS: 3600, points: [p(0), p(120), p(600)] };
  assert.deepEqual(seriesRuns(hourly).map((r) => r.length), [2, 1]);
});

test('the setpoint path holds each step until the next and clips to the range', () => {
  const x = (t) => t;
  const y = (v) => v;
  assert.equal(setpointPath([{ t: 0, v: 20 }, { t: 10, v: 21 }], 5, 20, x, y), 'M5.0,20.0H10.0V21.0M10.0,21.0H20.0');
  assert.equal(setpointPath([{ t: 0, v: null }, { t: 10, v: 21 }], 0, 20, x, y), 'M10.0,21.0H20.0');
});

test('the tooltip reads temperatures as every other page does: never "-0.0 °C"', () => {
  const t0 = Date.parse('2026-11-23T12:00:00Z');
  const data = {
    series: [{ label: 'Garage', bucketS: 0, points: [{ t: t0, mean: -0.04, min: null, max: null }] }],
    setpoints: [{ kind: 'heat', label: 'Heat target', steps: [{ t: t0 - HOUR, v: 17.25 }] }],
    runs: [{ system: 'heat', start: t0 - 60e3, end: null }],
  };
  const tip = tooltipAt(data, t0 + 1000, t0 + 5000);
  assert.deepEqual(tip.rows.map((r) => `${r.label}: ${r.text}`), ['Garage: 0.0 °C', 'Heat target: 17.3 °C']);
  assert.equal(tip.run.system, 'heat');
  assert.equal(tip.time, 'Mon 23 Nov 13:00');
  assert.equal(tooltipAt(data, t0 + HOUR, t0).rows[0].text, '—', 'no point within 15 min');
  assert.equal(nearestPoint(data.series[0], t0 + 14 * MINUTE).mean, -0.04);
  assert.equal(summaryText({ ...data, rangeLabel: 'the last day' }), 'Garage 0.0–0.0 °C over the last day; 1 heating and 0 cooling runs.');
});

test('a bar axis in one unit with the same decimals on every tick', () => {
  assert.deepEqual(durationUnit(30), { name: 's', s: 1 });
  assert.deepEqual(durationUnit(600), { name: 'min', s: 60 });
  assert.deepEqual(durationUnit(7200), { name: 'h', s: 3600 });
  const a = barAxis([144, 108, 36], { duration: true });
  assert.equal(a.unit.name, 'min');
  const labels = a.ticks.map(a.tick);
  assert.ok(labels.every((l) => l.split('.')[1]?.length === labels[0].split('.')[1]?.length), labels.join());
  assert.ok(a.top * 60 >= 144);
  assert.equal(a.says(144), '2 min');
  assert.equal(barAxis([3], { duration: true }).step, 1, 'whole seconds at least');
  assert.equal(barAxis([], { format: (v) => `${v}%` }).tick(5), '5%');
});

test('zoom spans stay inside the range and at least the minimum wide', () => {
  const all = { from: 0, to: 1000 };
  assert.deepEqual(clampSpan(100, 200, all, 10), { from: 100, to: 200 });
  assert.deepEqual(clampSpan(100, 101, all, 10), { from: 95.5, to: 105.5 });
  assert.deepEqual(clampSpan(-50, 50, all, 10), { from: 0, to: 100 });
  assert.equal(clampSpan(-10, 2000, all, 10), null);
  assert.deepEqual(scaleSpan({ from: 100, to: 200 }, 0.5), { from: 125, to: 175 });
});
