// Calendar and time-zone arithmetic (assets/calendar.js), without a browser: `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  addDays, dayLabel, hhmm, hhmmEnd, localMidnight, minutes, mondayOf, offsetMs, parseLocal,
  splitDays, weekdayIndex, wrapDay, zoneOffset,
} from '../assets/calendar.js';

test('calendar days: months, leap years, weekdays', () => {
  assert.equal(addDays('2026-02-28', 1), '2026-03-01');
  assert.equal(addDays('2028-02-28', 1), '2028-02-29');
  assert.equal(addDays('2026-01-01', -1), '2025-12-31');
  assert.equal(weekdayIndex('2026-11-23'), 0); // a Monday
  assert.equal(weekdayIndex('2026-11-29'), 6);
  assert.equal(mondayOf('2026-11-29'), '2026-11-23');
  assert.equal(mondayOf('2026-11-23', 1), '2026-11-30');
  assert.equal(mondayOf('2026-01-01', -1), '2025-12-22');
  assert.equal(dayLabel('2026-11-23'), 'Mon 23 Nov');
});

test('times of day', () => {
  assert.equal(minutes('06:30'), 390);
  assert.equal(minutes('6:05'), 365);
  assert.equal(minutes(''), null);
  assert.equal(minutes(undefined), null);
  assert.equal(hhmm(390), '06:30');
  assert.equal(hhmm(1440), '00:00');
  assert.equal(hhmmEnd(1440), '24:00');
  assert.equal(wrapDay(-15), 1425);
  assert.equal(wrapDay(1455), 15);
});

test('RFC 9557 local times and offsets', () => {
  assert.deepEqual(parseLocal('2026-03-29T03:15:00+02:00[Europe/Berlin]'), {
    date: '2026-03-29', min: 195, offset: '+02:00',
  });
  assert.deepEqual(parseLocal('2026-03-29T03:15Z'), { date: '2026-03-29', min: 195, offset: 'Z' });
  assert.equal(parseLocal('yesterday'), null);
  assert.equal(offsetMs('+02:00'), 2 * 3600e3);
  assert.equal(offsetMs('-05:30'), -5.5 * 3600e3);
  assert.equal(offsetMs('Z'), 0);
});

test('zone offsets and local midnight across DST changes', () => {
  assert.equal(zoneOffset('Europe/Berlin', Date.parse('2026-01-15T12:00:00Z')), 3600e3);
  assert.equal(zoneOffset('Europe/Berlin', Date.parse('2026-07-15T12:00:00Z')), 7200e3);
  assert.equal(zoneOffset('No/Such_Zone', 0), null);
  // The day of the spring change starts at 00:00 CET, the next one at 00:00 CEST.
  assert.equal(localMidnight('2026-03-29', 'Europe/Berlin', 0), Date.parse('2026-03-28T23:00:00Z'));
  assert.equal(localMidnight('2026-03-30', 'Europe/Berlin', 0), Date.parse('2026-03-29T22:00:00Z'));
  assert.equal(localMidnight('2026-11-01', 'America/New_York', 0), Date.parse('2026-11-01T04:00:00Z'));
  // An unknown zone falls back to the offset given.
  assert.equal(localMidnight('2026-03-29', 'No/Such_Zone', 3600e3), Date.parse('2026-03-28T23:00:00Z'));
});

test('a span split into per-day pieces', () => {
  assert.deepEqual(splitDays('2026-11-23', 1320, '2026-11-25', 60), [
    { date: '2026-11-23', s: 1320, e: 1440 },
    { date: '2026-11-24', s: 0, e: 1440 },
    { date: '2026-11-25', s: 0, e: 60 },
  ]);
  assert.deepEqual(splitDays('2026-11-23', 600, '2026-11-24', 0), [{ date: '2026-11-23', s: 600, e: 1440 }]);
  assert.deepEqual(splitDays('2026-11-23', 600, '2026-11-23', 600), []);
});
