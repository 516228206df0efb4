// Zones and plants in words, and the Zones & plants forms' bodies (assets/zones.js), without a
// browser: `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DEFAULT_ZONE, heldLeftS, holdsText, newPlant, pickZone, plantBody, plantState, readId, readWhole,
  relayChoices, withZone, zoneBody, zoneHeadline, zoneName, zoneTarget, zoned,
} from '../assets/zones.js';

const house = {
  zones: [
    { id: 'house', name: 'House', default: true },
    { id: 'bedroom', name: 'Bedroom', rules: 3, overrides: 1 },
  ],
  plants: [{ id: 'house', min_on_s: 120, min_off_s: 240, changeover_s: 900 }],
};

test('the default zone is asked about as before: no zone in the request', () => {
  assert.equal(withZone('/v1/control', DEFAULT_ZONE), '/v1/control');
  assert.equal(withZone('/v1/control', null), '/v1/control');
  assert.equal(withZone('/v1/control', 'bedroom'), '/v1/control?zone=bedroom');
  assert.equal(withZone('/v1/schedule/timeline?hours=24', 'bed_1'), '/v1/schedule/timeline?hours=24&zone=bed_1');
  assert.equal(withZone('/v1/overrides', 'a b&c'), '/v1/overrides?zone=a%20b%26c');
});

test('zones show only when the house has more than the default one', () => {
  assert.equal(zoned(null), false);
  assert.equal(zoned({ zones: [house.zones[0]] }), false);
  assert.equal(zoned(house), true);
  assert.equal(pickZone(house, 'bedroom'), 'bedroom');
  assert.equal(pickZone(house, 'attic'), 'house');
  assert.equal(pickZone(null, 'bedroom'), 'house');
  assert.equal(zoneName(house, 'bedroom'), 'Bedroom');
  assert.equal(zoneName(house, 'attic'), 'attic');
});

test('a zone says whether it calls, and its target follows what it calls for', () => {
  const d = { mode: 'auto', heat_setpoint_c: 20, cool_setpoint_c: 25 };
  assert.equal(zoneHeadline({ calling: 'heat' }), 'Calls for heat');
  assert.equal(zoneHeadline({ calling: 'cool' }), 'Calls for cooling');
  assert.equal(zoneHeadline({ calling: null }), 'Idle');
  assert.equal(zoneTarget({ decision: d, calling: 'heat' }), 20);
  assert.equal(zoneTarget({ decision: d, calling: 'cool' }), 25);
  assert.equal(zoneTarget({ decision: { ...d, mode: 'cool' }, calling: null }), 25);
  assert.equal(zoneTarget({ decision: null }), null);
});

test('a plant is running or not, with its code in words', () => {
  assert.deepEqual(plantState({ heat: true, cool: false, code: 'calling' }), { running: 'heating', label: 'Running' });
  assert.deepEqual(plantState({ heat: false, cool: false, code: 'valve_delay' }), { running: 'off', label: 'Waiting for valves' });
  assert.deepEqual(plantState({ heat: false, cool: true, code: 'min_on_time' }), { running: 'cooling', label: 'Minimum run time' });
  assert.equal(plantState({ code: 'something_new' }).label, 'something_new');
});

test("a protection counts down by the engine's clock, never below zero", () => {
  const at = '2026-12-03T10:00:00Z';
  assert.equal(heldLeftS(null, at, 0, 0), null);
  assert.equal(heldLeftS('2026-12-03T10:01:40Z', at, 1000, 1000), 100);
  assert.equal(heldLeftS('2026-12-03T10:01:40Z', at, 1000, 31000), 70);
  assert.equal(heldLeftS('2026-12-03T10:01:40Z', at, 1000, 500000), 0);
  assert.equal(heldLeftS('soon', at, 0, 0), null);
});

test('ids and numbers are checked before anything is sent, naming the field', () => {
  assert.equal(readId(' bedroom ', 'Zone'), 'bedroom');
  assert.throws(() => readId('Bedroom', 'Zone'), /Zone id/);
  assert.throws(() => readId('', 'Plant'), /Plant id/);
  assert.throws(() => readId('a'.repeat(33), 'Zone'), /Zone id/);
  assert.equal(readWhole('60', 'Valve delay'), 60);
  assert.equal(readWhole('', 'Maximum run', true), null);
  assert.throws(() => readWhole('', 'Valve delay'), /Valve delay/);
  assert.throws(() => readWhole('1.5', 'Overrun'), /Overrun/);
  assert.throws(() => readWhole('-1', 'Overrun'), /Overrun/);
});

test('the zone and plant bodies are what the engine reads', () => {
  assert.deepEqual(zoneBody({ name: ' Bedroom ', sensors: ['28-b1'], valves: ['r/v2'], heat_relay: '' }), {
    name: 'Bedroom', sensors: ['28-b1'], valves: ['r/v2'], heat_relay: null, cool_relay: null,
  });
  assert.throws(() => zoneBody({ name: ' ' }), /Zone name/);
  assert.throws(() => zoneBody({ name: 'x'.repeat(65) }), /Zone name/);
  const f = { ...newPlant(house), name: 'Boiler', heat_relay: 'r/boiler', cool_relay: 'r/ac', zones: ['house', 'bedroom'], valve_delay_s: '60', max_run_s: '' };
  assert.deepEqual(plantBody(f), {
    name: 'Boiler', kind: 'heat', heat_relay: 'r/boiler', cool_relay: null, zones: ['house', 'bedroom'],
    min_on_s: 120, min_off_s: 240, changeover_s: 900, max_run_s: null, valve_delay_s: 60, overrun_s: 0,
    min_calling_zones: 1, bypass_zone: null,
  });
  assert.equal(plantBody({ ...f, kind: 'cool' }).heat_relay, null);
  assert.equal(plantBody({ ...f, kind: 'cool' }).cool_relay, 'r/ac');
  assert.throws(() => plantBody({ ...f, overrun_s: 'x' }), /Overrun/);
});

test('relays to choose from: the function groups, then every output', () => {
  const got = relayChoices([{ host_id: 'r', output_id: 'valve-1', name: 'Valve 1', function: 'valve' }]);
  assert.deepEqual(got.map((c) => c.id), ['function:heat', 'function:cool', 'r/valve-1']);
  assert.equal(got[2].label, 'Valve 1 (r/valve-1)');
});

test('what a zone still holds, for the delete dialog', () => {
  assert.equal(holdsText(house.zones[1]), '3 rules and 1 override');
  assert.equal(holdsText({ rules: 1, overrides: 0 }), '1 rule');
  assert.equal(holdsText({}), '');
});
