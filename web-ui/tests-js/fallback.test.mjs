// A relay output's fallback program in words, and the Fallback form's values and bodies
// (assets/fallback.js), without a browser: `node --test`.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  fallbackStateText, fieldsOf, formValues, inForceText, modesFor, programBody, programText,
  sensorChoices,
} from '../assets/fallback.js';

const frost = {
  mode: 'frost', setpoint_c: 8, sensor: { kind: 'local', id: '28-a' }, blind: { pct: 10, period_s: 1800 },
};

test('held open is offered for valves only', () => {
  const modes = (fn) => modesFor(fn).map(([m]) => m);
  assert.deepEqual(modes('heat'), ['default', 'off', 'frost', 'blind_duty']);
  assert.deepEqual(modes(null), ['default', 'off', 'frost', 'blind_duty']);
  assert.deepEqual(modes('valve'), ['default', 'off', 'frost', 'blind_duty', 'on']);
});

test('the program in force says what it does and whose choice it is', () => {
  assert.equal(programText(frost), 'frost 8 °C from probe 28-a on its host (blind duty 10 % of 30 min without a reading)');
  const remote = { ...frost, sensor: { kind: 'sensor_agent', url: 'http://h:1', host: 'hall', id: '28-b' } };
  assert.match(programText(remote), /sensor 28-b of sensor agent hall/);
  assert.match(programText({ ...frost, sensor: null }), /from no sensor/);
  assert.equal(programText({ mode: 'blind_duty', pct: 20, period_s: 900 }), 'blind duty: on 20 % of 15 min');
  assert.equal(programText({ mode: 'off' }), 'off (its safe state)');
  assert.equal(programText(undefined), 'not known (the engine cannot read it now)');
  assert.match(inForceText({ fallback_program: { mode: 'off' }, fallback_chosen: false }), /the engine's default\.$/);
  assert.match(inForceText({ fallback_program: frost, fallback_chosen: true }), /an admin's choice\.$/);
});

test("the agent's fallback reads as running or ended, with why", () => {
  assert.equal(fallbackStateText(null), null);
  const since = '2026-01-05T06:00:00Z';
  const running = fallbackStateText({ since, why: 'engine_silent' }, 'UTC');
  assert.equal(running, 'IN FALLBACK since Mon 5 Jan 06:00: the engine was silent for a whole lease.');
  const ended = fallbackStateText({ since, why: 'no_engine_since_start', ended_at: '2026-01-05T07:30:00Z' }, 'UTC');
  assert.equal(ended, 'Its agent ran this program from Mon 5 Jan 06:00 to Mon 5 Jan 07:30 (no engine since it started).');
});

test("the sensors offered: the agent's own probes first, then the sensor agents' sensors", () => {
  const sensors = [
    { id: '28-b', host_id: 'hall', name: 'Hall' },
    { id: '28-a', host_id: 'boiler-pi', alias: 'pipe' },
  ];
  assert.deepEqual(sensorChoices(sensors, 'boiler-pi'), [
    ['local:28-a', 'pipe — probe on this host'],
    ['agent:hall:28-b', 'Hall — sensor agent hall'],
  ]);
});

test("the form starts from an admin's choice, else from the defaults", () => {
  assert.deepEqual(formValues({ fallback_program: frost, fallback_chosen: false }),
    { mode: 'default', setpoint: '7', sensor: '', url: '', pct: '10', period: '1800' });
  assert.deepEqual(formValues({ fallback_program: frost, fallback_chosen: true }),
    { mode: 'frost', setpoint: '8', sensor: 'local:28-a', url: '', pct: '10', period: '1800' });
  const remote = { ...frost, sensor: { kind: 'sensor_agent', url: 'http://h:1', host: 'hall', id: '28-b' } };
  assert.deepEqual(formValues({ fallback_program: remote, fallback_chosen: true }),
    { mode: 'frost', setpoint: '8', sensor: 'agent:hall:28-b', url: 'http://h:1', pct: '10', period: '1800' });
  assert.deepEqual(formValues({ fallback_program: { mode: 'blind_duty', pct: 20, period_s: 900 }, fallback_chosen: true }),
    { mode: 'blind_duty', setpoint: '7', sensor: '', url: '', pct: '20', period: '900' });
});

test('each mode sends the body the engine takes', () => {
  const v = { setpoint: '8', sensor: '', url: '', pct: '10', period: '1800' };
  assert.deepEqual(programBody({ ...v, mode: 'default' }), { program: null });
  assert.deepEqual(programBody({ ...v, mode: 'off' }), { program: { mode: 'off' } });
  assert.deepEqual(programBody({ ...v, mode: 'on' }), { program: { mode: 'on' } });
  assert.deepEqual(programBody({ ...v, mode: 'blind_duty' }), { program: { mode: 'blind_duty', pct: 10, period_s: 1800 } });
  assert.deepEqual(programBody({ ...v, mode: 'frost' }),
    { program: { mode: 'frost', setpoint_c: 8, sensor: null, blind: { pct: 10, period_s: 1800 } } });
  assert.deepEqual(programBody({ ...v, mode: 'frost', sensor: 'local:28-a' }).program.sensor, { kind: 'local', id: '28-a' });
  const remote = programBody({ ...v, mode: 'frost', sensor: 'agent:hall:28-b', url: ' http://10.0.0.5:8082 ' });
  assert.deepEqual(remote.program.sensor, { kind: 'sensor_agent', url: 'http://10.0.0.5:8082', host: 'hall', id: '28-b' });
});

test('a field that is not a number, or a missing URL, is named and nothing is sent', () => {
  const v = { mode: 'frost', setpoint: '', sensor: '', url: '', pct: '10', period: '1800' };
  assert.throws(() => programBody(v), /Setpoint must be a number/);
  assert.throws(() => programBody({ ...v, setpoint: '8', pct: 'x' }), /Duty % must be a number/);
  assert.throws(() => programBody({ ...v, mode: 'blind_duty', period: '' }), /Period must be a number/);
  assert.throws(() => programBody({ ...v, setpoint: '8', sensor: 'agent:hall:28-b' }), /URL/);
  // Out of range is the engine's to say (its 422 names the field).
  assert.equal(programBody({ ...v, setpoint: '40' }).program.setpoint_c, 40);
});

test('each mode shows only the fields it uses', () => {
  assert.deepEqual(fieldsOf('frost'), { setpoint: true, sensor: true, duty: true });
  assert.deepEqual(fieldsOf('blind_duty'), { setpoint: false, sensor: false, duty: true });
  for (const m of ['default', 'off', 'on']) assert.deepEqual(fieldsOf(m), { setpoint: false, sensor: false, duty: false });
});
