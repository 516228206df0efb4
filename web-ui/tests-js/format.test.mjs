// The dashboard's formatting (assets/format.js), without a browser: `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  excludedTone, fmtAgo, fmtDate, fmtDay, fmtDayTime, fmtDuration, fmtExcluded, fmtTemp, fmtTempRange, fmtTime,
  fmtWeekdayDate, tempNumber,
} from '../assets/format.js';

test('temperatures have one decimal, halves away from zero, never -0.0', () => {
  assert.equal(fmtTemp(20.5), '20.5 °C');
  assert.equal(fmtTemp(17.25), '17.3 °C');
  assert.equal(fmtTemp(-17.25), '-17.3 °C');
  assert.equal(fmtTemp(-0.04), '0.0 °C');
  assert.equal(fmtTemp(-0), '0.0 °C');
  assert.equal(fmtTemp('21'), '21.0 °C');
  for (const none of [null, undefined, NaN, Infinity, 'warm']) assert.equal(fmtTemp(none), '—');
  assert.equal(tempNumber(19.96, 0), '20');
  assert.equal(tempNumber(-0.4, 0), '0');
  assert.equal(fmtTempRange(19, 21.45), '19.0–21.5 °C');
});

test('durations: seconds, minutes, hours; precise keeps seconds below ten minutes', () => {
  assert.equal(fmtDuration(0), '0 s');
  assert.equal(fmtDuration(-5), '0 s');
  assert.equal(fmtDuration(40.4), '40 s');
  assert.equal(fmtDuration(89), '1 min');
  assert.equal(fmtDuration(14 * 60 + 20), '14 min');
  assert.equal(fmtDuration(2 * 3600 + 5 * 60), '2 h 05 min');
  assert.equal(fmtDuration(3599), '1 h 00 min');
  assert.equal(fmtDuration(100, true), '1 min 40 s');
  assert.equal(fmtDuration(120, true), '2 min');
  assert.equal(fmtDuration(700, true), '12 min');
  for (const none of [null, undefined, NaN]) assert.equal(fmtDuration(none), '—');
});

test('times and days in a named zone', () => {
  const t = '2026-03-29T00:30:00Z'; // 01:30 CET, the night Berlin moves to CEST (at 02:00)
  assert.equal(fmtTime(t, 'UTC'), '00:30');
  assert.equal(fmtTime(t, 'Europe/Berlin'), '01:30');
  assert.equal(fmtTime('2026-03-29T01:30:00Z', 'Europe/Berlin'), '03:30');
  assert.equal(fmtTime('2026-03-29T23:30:00Z', 'Europe/Berlin'), '01:30');
  assert.equal(fmtDay('2026-03-29T23:30:00Z', 'Europe/Berlin'), 'Mon 30 Mar');
  assert.equal(fmtDay('2026-03-29T23:30:00Z', 'UTC'), 'Sun 29 Mar');
  assert.equal(fmtDay('2026-01-01T00:00:00Z', 'America/New_York'), 'Wed 31 Dec');
  assert.equal(fmtWeekdayDate(Date.parse('2026-11-23T12:00:00Z'), 'UTC'), 'Mon 23');
  assert.equal(fmtDate(new Date('2026-11-23T12:00:00Z'), 'UTC'), '23 Nov');
  assert.equal(fmtDayTime('2026-11-23T14:05:00Z', 'UTC'), 'Mon 23 Nov 14:05');
  for (const f of [fmtTime, fmtDay, fmtDayTime]) assert.equal(f('not a time', 'UTC'), '—');
});

test('times without a zone are the runtime local zone', () => {
  const d = new Date(2026, 10, 23, 7, 5);
  assert.equal(fmtTime(d), '07:05');
  assert.equal(fmtDay(d), 'Mon 23 Nov');
});

test('ago', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');
  const ago = (s) => fmtAgo(new Date(now - s * 1000).toISOString(), now);
  assert.equal(ago(10), 'just now');
  assert.equal(ago(-30), 'just now');
  assert.equal(ago(120), '2 min ago');
  assert.equal(ago(3 * 3600), '3 h ago');
  assert.equal(ago(24 * 3600), '24 h ago');
  assert.equal(ago(48 * 3600), '2 days ago');
  assert.equal(fmtAgo(null, now), 'never');
});

test('a zone the runtime does not know reads in the runtime zone', () => {
  const d = new Date(2026, 10, 23, 7, 5);
  assert.equal(fmtTime(d, 'No/Such_Zone'), '07:05');
});

test('why a sensor is left out, and its tone', () => {
  assert.equal(fmtExcluded('stale'), 'Stale');
  assert.equal(fmtExcluded('not_selected'), 'Not selected');
  assert.equal(fmtExcluded('new_reason'), 'new_reason');
  assert.deepEqual(['not_selected', 'stale', 'no_reading', 'outlier'].map(excludedTone), ['muted', 'warn', 'warn', 'bad']);
});
