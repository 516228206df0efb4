// A relay output's fallback program (what its relay agent does by itself when it loses the
// engine) in words, and the Fallback form's values and body (`PUT /v1/relays/{host}/{output}/
// fallback`), without the DOM: `node --test` checks them. The form is fallback-form.js's.

import { fmtDayTime, fmtDuration } from "./format.js";

// The form's modes: `default` sends `{"program": null}` (the engine's default for the output's
// function). `on` holds a zone valve or damper open: the engine refuses it for other outputs.
export const MODES = [
  ['default', "Engine's default"],
  ['off', 'Off (safe state)'],
  ['frost', 'Frost protection'],
  ['blind_duty', 'Blind duty'],
  ['on', 'Held open (valves only)'],
];

// What the agent's fallback program was started for, in words.
const WHY = {
  engine_silent: 'the engine was silent for a whole lease',
  no_engine_since_start: 'no engine since it started',
};

// Defaults of a new frost or duty choice: the engine's own (proto `fallback.rs`).
const DEFAULT_SETPOINT_C = 7;
const DEFAULT_PCT = 10;
const DEFAULT_PERIOD_S = 1800;

/** The modes offered for an output of function `fn`: `on` only for a valve. */
export function modesFor(fn) {
  return MODES.filter(([mode]) => mode !== 'on' || fn === 'valve');
}

/** A sensor choice's value in the form: `local:<id>`, `agent:<host>:<id>`, or '' (none). */
export function sensorValue(sensor) {
  if (!sensor) return '';
  return sensor.kind === 'local' ? `local:${sensor.id}` : `agent:${sensor.host}:${sensor.id}`;
}

/**
 * The sensors a frost program of the relay agent `hostId` may read: probes reported under its
 * own host id, then every other host's sensors (read over the LAN from that sensor agent).
 * Each `[value, text]`.
 */
export function sensorChoices(sensors, hostId) {
  const name = (s) => s.name || s.alias || s.id;
  const local = sensors.filter((s) => s.host_id === hostId)
    .map((s) => [`local:${s.id}`, `${name(s)} — probe on this host`]);
  const remote = sensors.filter((s) => s.host_id !== hostId)
    .map((s) => [`agent:${s.host_id}:${s.id}`, `${name(s)} — sensor agent ${s.host_id}`]);
  return [...local, ...remote];
}

/** An output program in words, e.g. "frost 7 °C from probe 28-… (blind 10 % of 30 min)". */
export function programText(p) {
  if (!p) return 'not known (the engine cannot read it now)';
  const duty = (d) => `${d.pct} % of ${fmtDuration(d.period_s)}`;
  switch (p.mode) {
    case 'off': return 'off (its safe state)';
    case 'on': return 'held on (a valve held open)';
    case 'blind_duty': return `blind duty: on ${duty(p)}`;
    case 'frost': {
      const s = p.sensor;
      const from = !s ? 'no sensor' : s.kind === 'local' ? `probe ${s.id} on its host` : `sensor ${s.id} of sensor agent ${s.host}`;
      return `frost ${p.setpoint_c} °C from ${from} (blind duty ${duty(p.blind)} without a reading)`;
    }
    default: return String(p.mode);
  }
}

/** The program in force and whose choice it is, as the Devices card says it. */
export function inForceText(r) {
  return `In fallback: ${programText(r.fallback_program)} — ${r.fallback_chosen ? "an admin's choice" : "the engine's default"}.`;
}

/** The agent's fallback as the engine learned it (`agent_fallback`), in words; null if none. */
export function fallbackStateText(f, tz) {
  if (!f) return null;
  const why = WHY[f.why] || f.why;
  return f.ended_at
    ? `Its agent ran this program from ${fmtDayTime(f.since, tz)} to ${fmtDayTime(f.ended_at, tz)} (${why}).`
    : `IN FALLBACK since ${fmtDayTime(f.since, tz)}: ${why}.`;
}

/** The form's values for the output's current program (chosen, else the defaults). */
export function formValues(r) {
  const p = r.fallback_chosen ? r.fallback_program : null;
  const blind = p?.mode === 'frost' ? p.blind : p?.mode === 'blind_duty' ? p : null;
  const sensor = p?.mode === 'frost' ? p.sensor : null;
  return {
    mode: p ? p.mode : 'default',
    setpoint: String(p?.setpoint_c ?? DEFAULT_SETPOINT_C),
    sensor: sensorValue(sensor),
    url: sensor?.kind === 'sensor_agent' ? sensor.url : '',
    pct: String(blind?.pct ?? DEFAULT_PCT),
    period: String(blind?.period_s ?? DEFAULT_PERIOD_S),
  };
}

/** A typed number; an Error naming the field when it is not one. */
function number(raw, label) {
  const text = String(raw ?? '').trim();
  const n = Number(text);
  if (text === '' || !Number.isFinite(n)) throw new Error(`${label} must be a number.`);
  return n;
}

/** The frost program's sensor from the form's values; an Error naming a missing URL. */
function sensorOf(v) {
  if (!v.sensor) return null;
  if (v.sensor.startsWith('local:')) return { kind: 'local', id: v.sensor.slice('local:'.length) };
  const [, host, ...id] = v.sensor.split(':');
  const url = String(v.url ?? '').trim();
  if (!url) throw new Error("The sensor agent's URL (the http address of its status listener) is needed.");
  return { kind: 'sensor_agent', url, host, id: id.join(':') };
}

/**
 * The PUT body for the form's values `v` ({mode, setpoint, sensor, url, pct, period}); throws an
 * Error naming a field that is not a number. Ranges are the engine's to check (its 422 names
 * the field).
 */
export function programBody(v) {
  const duty = () => ({ pct: number(v.pct, 'Duty %'), period_s: number(v.period, 'Period') });
  switch (v.mode) {
    case 'default': return { program: null };
    case 'off': return { program: { mode: 'off' } };
    case 'on': return { program: { mode: 'on' } };
    case 'blind_duty': return { program: { mode: 'blind_duty', ...duty() } };
    case 'frost': return {
      program: { mode: 'frost', setpoint_c: number(v.setpoint, 'Setpoint'), sensor: sensorOf(v), blind: duty() },
    };
    default: throw new Error(`Unknown mode ${v.mode}.`);
  }
}

/** Which of the form's fields a mode uses. */
export function fieldsOf(mode) {
  return {
    setpoint: mode === 'frost',
    sensor: mode === 'frost',
    duty: mode === 'frost' || mode === 'blind_duty',
  };
}
