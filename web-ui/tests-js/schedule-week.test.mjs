// The schedule's week arithmetic (assets/schedule-week.js), without a browser: `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  beatenParts, blocksByDay, layoutLanes, movedWeekly, rulePieces, segmentTime, setpointText,
  sortRules, timelinePieces, weekOf, whenSummary,
} from '../assets/schedule-week.js';

// The week of Monday 23 March 2026; Berlin moves to summer time early on Sunday 29.
const DATES = ['2026-03-23', '2026-03-24', '2026-03-25', '2026-03-26', '2026-03-27', '2026-03-28', '2026-03-29'];
const weekly = (days, start, end, extra = {}) => ({ id: 1, name: 'W', enabled: true, layer: 'day', when: { type: 'weekly', days, start, end }, ...extra });
const seg = (start_local, end_local, rule, beaten = []) => ({ start_local, end_local, rule, beaten, heat_c: 20, cool_c: 25 });

test('the week shown, in the engine zone, across a DST change', () => {
  const tl = { time_zone: 'Europe/Berlin', segments: [seg('2026-03-26T10:15:00+01:00[Europe/Berlin]', '2026-03-26T11:00:00+01:00[Europe/Berlin]', {})] };
  const w = weekOf(tl, 0);
  assert.deepEqual(w.dates, DATES);
  assert.equal(w.today, '2026-03-26');
  assert.equal(w.nowMin, 615);
  assert.equal(w.from, Date.parse('2026-03-22T23:00:00Z'));
  const next = weekOf(tl, 1);
  assert.equal(next.dates[0], '2026-03-30');
  assert.equal(next.from, Date.parse('2026-03-29T22:00:00Z'), 'Monday after the change starts at 00:00 CEST');
  // A zone the runtime does not know: the timeline's own offset.
  const odd = weekOf({ ...tl, time_zone: 'No/Such_Zone' }, 0);
  assert.equal(odd.from, Date.parse('2026-03-22T23:00:00Z'));
  assert.equal(weekOf({ time_zone: 'UTC', segments: [] }, 0, '2026-03-25').dates[0], '2026-03-23');
});

test('weekly rules: a day per listed weekday, past midnight into the next (Sunday into Monday)', () => {
  assert.deepEqual(rulePieces(weekly(['monday', 'friday'], '06:30', '08:00'), DATES, []), [
    { date: '2026-03-23', s: 390, e: 480 }, { date: '2026-03-27', s: 390, e: 480 },
  ]);
  assert.deepEqual(rulePieces(weekly(['sunday'], '22:00', '06:00'), DATES, []), [
    { date: '2026-03-29', s: 1320, e: 1440 }, { date: '2026-03-23', s: 0, e: 360 },
  ]);
  assert.deepEqual(rulePieces(weekly(['sunday'], '22:00', '00:00'), DATES, []), [{ date: '2026-03-29', s: 1320, e: 1440 }]);
  assert.equal(rulePieces(weekly(['monday'], 'soon', '08:00'), DATES, []), null);
});

test('exceptions and vacations: only their days inside the week', () => {
  const exc = (date, start, end) => ({ enabled: true, when: { type: 'exception', date, start, end } });
  assert.deepEqual(rulePieces(exc('2026-03-25', null, null), DATES, []), [{ date: '2026-03-25', s: 0, e: 1440 }]);
  assert.deepEqual(rulePieces(exc('2026-03-29', '23:00', '01:00'), DATES, []), [{ date: '2026-03-29', s: 1380, e: 1440 }]);
  assert.deepEqual(rulePieces(exc('2026-04-02', null, null), DATES, []), []);
  const away = { enabled: true, when: { type: 'vacation', start: '2026-03-20T18:00', end: '2026-03-24T12:00' } };
  assert.deepEqual(rulePieces(away, DATES, []), [{ date: '2026-03-23', s: 0, e: 1440 }, { date: '2026-03-24', s: 0, e: 720 }]);
});

test('cron rules come from the timeline, adjacent pieces merged; disabled ones are not drawn', () => {
  const cron = { id: 7, name: 'C', enabled: true, layer: 'every_day', when: { type: 'cron', expr: '0 6 * * *', duration_min: 90 } };
  const other = { id: 8, layer: 'day', name: 'O' };
  const tl = timelinePieces([
    seg('2026-03-24T06:00:00Z', '2026-03-24T07:00:00Z', { id: 7, layer: 'every_day', name: 'C' }),
    seg('2026-03-24T07:00:00Z', '2026-03-24T07:30:00Z', other, [{ id: 7, layer: 'every_day', name: 'C' }]),
    seg('2026-03-24T07:30:00Z', '2026-03-24T09:00:00Z', other),
  ], DATES);
  assert.deepEqual(rulePieces(cron, DATES, tl), [{ date: '2026-03-24', s: 360, e: 450 }]);
  assert.equal(rulePieces({ ...cron, enabled: false }, DATES, tl), null);
  assert.deepEqual(beatenParts(cron, '2026-03-24', 360, 450, tl).map((p) => [p.s, p.e, p.winner.name]), [[420, 450, 'O']]);
});

test('timeline segments split at local midnight, outside days dropped', () => {
  const pieces = timelinePieces([seg('2026-03-22T20:00:00+01:00', '2026-03-23T02:00:00+01:00', { id: 1 })], DATES);
  assert.deepEqual(pieces.map((p) => [p.date, p.s, p.e]), [['2026-03-23', 0, 120]]);
});

test('overlapping blocks share lanes; a block that overlaps nothing gets the whole width', () => {
  const items = layoutLanes([{ s: 60, e: 120 }, { s: 0, e: 90 }, { s: 100, e: 200 }, { s: 300, e: 400 }]);
  assert.deepEqual(items.map((it) => [it.s, it.lane, it.lanes]), [[0, 0, 2], [60, 1, 2], [100, 0, 2], [300, 0, 1]]);
  const { byDay, notDrawn } = blocksByDay([weekly(['monday'], '06:00', '08:00'), { id: 2, enabled: true, when: { type: 'unknown' } }], DATES, []);
  assert.equal(byDay.get('2026-03-23').length, 1);
  assert.equal(notDrawn.length, 1);
});

test('a dragged weekly block moves its times, and its days when it crosses midnight', () => {
  const w = { type: 'weekly', days: ['monday', 'sunday'], start: '23:00', end: '01:00' };
  assert.deepEqual(movedWeekly(w, 30, 0), { type: 'weekly', days: ['monday', 'sunday'], start: '23:30', end: '01:30' });
  assert.deepEqual(movedWeekly(w, 90, 0), { type: 'weekly', days: ['tuesday', 'monday'], start: '00:30', end: '02:30' });
  assert.deepEqual(movedWeekly(w, -15, -1), { type: 'weekly', days: ['sunday', 'saturday'], start: '22:45', end: '00:45' });
});

test('what a rule says', () => {
  assert.equal(whenSummary(weekly(['friday', 'monday', 'tuesday', 'wednesday', 'thursday'], '06:30', '08:00')), 'Mon–Fri 06:30–08:00');
  assert.equal(whenSummary(weekly(['sunday', 'saturday'], '08:00', '10:00')), 'Sat, Sun 08:00–10:00');
  assert.equal(whenSummary(weekly(['sunday', 'monday'], '08:00', '10:00')), 'Mon, Sun 08:00–10:00');
  assert.equal(whenSummary({ when: { type: 'exception', date: '2026-03-25', start: null, end: null } }), 'Wed 25 Mar, all day');
  assert.equal(whenSummary({ when: { type: 'exception', date: '2026-03-25', start: '10:00', end: null } }), 'Wed 25 Mar 10:00–24:00');
  assert.equal(whenSummary({ when: { type: 'vacation', start: '2026-03-20T18:00', end: '2026-03-24T12:00' } }), 'Away 2026-03-20 18:00 – 2026-03-24 12:00');
  assert.equal(setpointText(21, null), '21.0 °C');
  assert.equal(setpointText(21, 25), '21.0 °C · cool 25.0 °C');
  assert.equal(setpointText(null, undefined), 'default target');
  const sorted = sortRules([{ name: 'b', layer: 'every_day' }, { name: 'a', layer: 'every_day' }, { name: 'z', layer: 'date' }]);
  assert.deepEqual(sorted.map((r) => r.name), ['z', 'a', 'b']);
});

test('a segment\'s time names the days it leaves', () => {
  const fallback = () => 'fallback';
  const s = (a, b) => segmentTime({ start_local: a, end_local: b }, '2026-03-23', fallback);
  assert.equal(s('2026-03-23T06:00:00Z', '2026-03-23T08:30:00Z'), '06:00–08:30');
  assert.equal(s('2026-03-23T22:00:00Z', '2026-03-24T00:00:00Z'), '22:00–24:00');
  assert.equal(s('2026-03-23T22:00:00Z', '2026-03-24T06:00:00Z'), '22:00–Tue 06:00');
  assert.equal(s('2026-03-24T06:00:00Z', '2026-03-24T07:00:00Z'), 'Tue 06:00–07:00');
  assert.equal(s(undefined, undefined), 'fallback');
});
