// Devices: every sensor (name, weight, calibration with a hint, why it does not count), every
// relay output (what it drives, its fallback program: fallback-form.js) and every agent
// (online, last seen, clock skew; its remote settings — a sensor agent's interval, resolution,
// screen and each sensor's enabled/alias/offset, a relay agent's protection times — with what
// it applied or refused, and its commands with their results). Live readings and relay
// switches update in place; a row being edited is never overwritten.
//
// The house's zones and plants are zones-admin.js's section, fed by the same loads.
//
// Layout: the calibration hint and status texts (pure); the sensor rows (built once, kept while
// edited); relays; agents and their management panels (built once per agent, kept across
// reloads); loading and live events, wired in mount().

import { api, on } from "./api.js";
import { fallbackPanel } from "./fallback-form.js";
import { excludedTone, fmtAgo, fmtDuration, fmtExcluded, fmtTemp, fmtTime } from "./format.js";
import { toast } from "./toast.js";
import { h } from "./dom.js";
import { submit } from "./submit.js";
import { zonesAdmin } from "./zones-admin.js";

const FUNCTIONS = [
  ['heat', 'Heating'],
  ['cool', 'Cooling'],
  ['fan', 'Fan'],
  ['aux', 'Auxiliary heat'],
  ['valve', 'Zone valve / damper'],
];
// An output's "on" badge by what it drives: an open valve is no heat of its own.
const ON_BADGE = { cool: 'badge-cool', valve: 'badge-ok' };
// Differences below this are sensor noise, not a calibration error worth a hint.
const HINT_MIN_C = 0.3;
const HINT_MAX_C = 5;

const round1 = (v) => Math.round(v * 10) / 10;
const signed = (v) => `${v > 0 ? '+' : v < 0 ? '−' : ''}${Math.abs(round1(v)).toFixed(1)}`;
const displayName = (s) => s.name || s.alias || s.id;
const inputOf = (st, id) => (st.decision?.sensors || []).find((i) => i.id === id) || null;
const failedReading = (s) => s.latest && (s.latest.value === null || s.latest.value === undefined);

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// ----- sensors -----------------------------------------------------------------------------

/**
 * The calibration hint: this sensor against the median of the other fresh sensors that the
 * latest decision counted (an outdoor sensor or an outlier would skew the reference).
 */
function hintFor(st, s) {
  const v = s.latest?.value;
  if (s.stale || !Number.isFinite(v) || !(s.weight > 0)) return null;
  const counted = (o) => {
    const input = inputOf(st, o.id);
    return input ? input.used : o.weight > 0;
  };
  const others = st.sensors.filter(
    (o) => o.id !== s.id && !o.stale && Number.isFinite(o.latest?.value) && counted(o),
  );
  if (others.length < 1) return null;
  const diff = v - median(others.map((o) => o.latest.value));
  // Small differences are noise; large ones are a different room or a broken sensor, which
  // an offset would only hide.
  if (Math.abs(diff) < HINT_MIN_C || Math.abs(diff) > HINT_MAX_C) return null;
  const suggested = round1((Number(s.offset_c) || 0) - diff);
  if (Math.abs(suggested) > 10) return null;
  const what = others.length === 1 ? displayName(others[0]) : 'the median of the others';
  return {
    text: `Reads ${Math.abs(round1(diff)).toFixed(1)} °C ${diff > 0 ? 'above' : 'below'} ${what}: offset ${signed(suggested)} °C?`,
    suggested,
  };
}

function sensorStatus(st, s) {
  const input = inputOf(st, s.id);
  if (input && input.used) return { cls: 'ok', text: 'Counted', why: null };
  if (input && input.excluded) return { cls: excludedTone(input.excluded), text: fmtExcluded(input.excluded), why: input.detail || null };
  if (failedReading(s)) return { cls: 'bad', text: 'Failed', why: 'The last reading failed (the sensor did not answer or answered garbage).' };
  if (s.stale) {
    const why = s.latest ? `stale: no reading for ${fmtAgo(s.latest.at).replace(' ago', '')}` : 'No reading yet.';
    return { cls: 'warn', text: 'Stale', why };
  }
  return { cls: 'muted', text: 'Not counted', why: null };
}

/** The row's read-only part: name, status, temperature, facts, the why and the hint. */
function renderSensorDisplay(st, row, s) {
  const status = sensorStatus(st, s);
  const meta = [s.id, s.type, `host ${s.host_id}`];
  if (s.alias && s.alias !== s.name) meta.push(`alias “${s.alias}”`);
  meta.push(s.latest ? `read ${fmtAgo(s.latest.at)}` : 'never read');
  row.display.replaceChildren(
    h('div', { class: 'device-head' },
      h('h3', { text: displayName(s) }),
      h('span', { class: `badge badge-${status.cls} sensor-state`, text: status.text }),
      h('span', { class: 'device-temp sensor-temp', text: failedReading(s) ? '—' : fmtTemp(s.latest?.value) })),
    h('div', { class: 'device-meta', text: meta.join(' · ') }),
    status.why ? h('div', { class: 'device-why sensor-why', text: status.why }) : '',
  );
  const hint = hintFor(st, s);
  row.hint.hidden = !hint;
  if (!hint) return;
  row.hint.replaceChildren(
    h('span', { text: hint.text }),
    h('button', {
      type: 'button',
      class: 'btn btn-quiet',
      text: 'Use it',
      'aria-label': `Set the offset of ${displayName(s)} to ${signed(hint.suggested)} °C`,
      onclick: () => {
        row.inputs.offset.value = String(hint.suggested);
        row.dirty = true;
        row.inputs.offset.focus();
      },
    }),
  );
}

function fillInputs(row, s) {
  row.inputs.name.value = s.name || '';
  row.inputs.name.placeholder = s.alias || s.id;
  row.inputs.weight.value = String(s.weight ?? 1);
  row.inputs.offset.value = String(s.offset_c ?? 0);
  row.dirty = false;
}

function buildSensorRow(v, s) {
  const uid = `s-${v.rows.size}`;
  const number = (cls, key, min) => h('input', { class: cls, id: `${uid}-${key}`, type: 'number', min, max: '10', step: '0.1', inputmode: 'decimal' });
  const inputs = {
    name: h('input', { class: 'sensor-name', id: `${uid}-name`, type: 'text', maxlength: '80', autocomplete: 'off' }),
    weight: number('sensor-weight', 'weight', '0'),
    offset: number('sensor-offset', 'offset', '-10'),
  };
  const field = (key, label) => h('label', { class: 'field', for: `${uid}-${key}` }, h('span', { text: label }), inputs[key]);
  const row = {
    inputs,
    save: h('button', { type: 'submit', class: 'btn btn-primary sensor-save', text: 'Save' }),
    error: h('p', { class: 'form-error', role: 'alert' }),
    display: h('div'),
    hint: h('div', { class: 'hint', hidden: true }),
    dirty: false,
  };
  const form = h('form', { class: 'device-form', novalidate: true },
    h('div', { class: 'device-fields' }, field('name', 'Name'), field('weight', 'Weight'), field('offset', 'Offset °C')),
    row.error,
    h('div', { class: 'device-actions' }, row.save));
  row.root = h('article', { class: 'card device-card', 'data-sensor-row': s.id }, row.display, row.hint, form);
  for (const i of Object.values(inputs)) {
    i.addEventListener('input', () => {
      row.dirty = true;
    });
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveSensor(v, s.id, row);
  });
  fillInputs(row, s);
  return row;
}

/** The PUT body of a row; throws an Error naming a field that is not a number. */
function sensorBody(row) {
  const num = (input, label) => {
    const raw = input.value.trim();
    if (raw === '' || input.validity.badInput) throw new Error(`${label} must be a number.`);
    return Number(raw);
  };
  return {
    name: row.inputs.name.value.trim() || null,
    weight: num(row.inputs.weight, 'Weight'),
    offset_c: num(row.inputs.offset, 'Offset'),
  };
}

function saveSensor(v, id, row) {
  return submit({
    error: row.error,
    button: row.save,
    body: () => sensorBody(row),
    send: (body) => api('PUT', `/v1/sensors/${encodeURIComponent(id)}/settings`, body),
    done: () => {
      row.dirty = false;
      toast('Sensor saved.', 'ok');
      return load(v);
    },
  });
}

function renderSensors(v) {
  const { st, rows, els } = v;
  if (!st.sensors.length) {
    rows.clear();
    els.sensors.replaceChildren(h('p', { class: 'muted', text: 'No sensors have reported yet.' }));
    return;
  }
  const keep = new Set();
  const ordered = [];
  for (const s of st.sensors) {
    let row = rows.get(s.id);
    if (!row) {
      row = buildSensorRow(v, s);
      rows.set(s.id, row);
    } else if (!row.dirty && !row.root.contains(document.activeElement)) {
      fillInputs(row, s);
    }
    renderSensorDisplay(st, row, s);
    keep.add(s.id);
    ordered.push(row.root);
  }
  for (const id of [...rows.keys()]) if (!keep.has(id)) rows.delete(id);
  els.sensors.replaceChildren(...ordered);
}

// ----- relays ------------------------------------------------------------------------------

function relayDetails(r) {
  const out = [];
  const rep = r.reported;
  // The report's timers count from when it was made (age_s ago).
  const age = Number.isFinite(r.age_s) ? r.age_s : 0;
  const left = (s) => (s === null || s === undefined ? null : Math.max(0, s - age));
  if (rep) {
    const lease = left(rep.lease_remaining_s);
    if (lease !== null) out.push(lease > 0 ? `lease ${fmtDuration(lease)} left` : 'lease ran out');
    const pending = left(rep.pending_off_in_s);
    if (pending) out.push(`turns off in ${fmtDuration(pending)} (minimum on time)`);
    const blocked = left(rep.on_blocked_for_s);
    if (blocked) out.push(`can turn on in ${fmtDuration(blocked)} (minimum off time)`);
    if (rep.cycles !== undefined) out.push(`${rep.cycles} cycle${rep.cycles === 1 ? '' : 's'} since the agent started`);
  }
  // The engine's own count (age_s) when it gives one: this browser's clock may be off.
  out.push(Number.isFinite(r.age_s) ? `reported ${fmtDuration(r.age_s)} ago` : `reported ${fmtAgo(r.updated_at)}`);
  if (r.backend && !r.simulated) out.push(`backend ${r.backend}`);
  return out.join(' · ');
}

/** Why this relay's state may not be what the equipment does, in words. */
function relayWarnings(r) {
  const note = (cls, text) => h('div', { class: `device-why hint ${cls}`, role: 'note', text });
  const since = r.agent_unreachable_since ? ` since ${fmtTime(r.agent_unreachable_since)}` : '';
  return [
    r.agent_reachable === false
      ? note('relay-unreachable', `Its relay agent has not answered${since}: “${r.state}” is what it last reported, ${fmtDuration(r.age_s)} ago. ` +
        'A running agent returns the output to its safe state when the lease runs out; a stopped one may leave it as it was until it restarts.')
      : null,
    r.simulated
      ? note('relay-simulated', 'Simulated: this output switches no equipment (its relay agent runs with hardware "simulated").')
      : null,
  ];
}

/** The "Drives" select of a relay, saving on change. */
function functionSelect(v, r, selId, error) {
  const hintLabel = r.function_hint ? (FUNCTIONS.find(([f]) => f === r.function_hint)?.[1] || r.function_hint) : 'none';
  const sel = h('select', { class: 'relay-function', id: selId },
    h('option', { value: '', text: `Agent's hint (${hintLabel})` }),
    FUNCTIONS.map(([value, text]) => h('option', { value, text })));
  sel.value = r.function || '';
  sel.addEventListener('change', async () => {
    error.textContent = '';
    sel.disabled = true;
    try {
      await api('PUT', `/v1/relays/${encodeURIComponent(r.host_id)}/${encodeURIComponent(r.output_id)}/function`, {
        function: sel.value || null,
      });
      toast(`${r.name || r.output_id} now drives ${sel.value ? sel.options[sel.selectedIndex].text.toLowerCase() : 'what the agent says'}.`, 'ok');
      await load(v);
    } catch (e) {
      error.textContent = e.message || String(e);
      sel.value = r.function || '';
    } finally {
      sel.disabled = false;
    }
  });
  return sel;
}

function relayCard(v, r) {
  const key = `${r.host_id}/${r.output_id}`;
  const selId = `relay-fn-${key.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const error = h('p', { class: 'form-error', role: 'alert' });
  const isOn = r.state === 'on';
  return h('article', { class: 'card device-card', 'data-relay': key },
    h('div', { class: 'device-head' },
      h('h3', { text: r.name || r.output_id }),
      h('span', { class: `badge relay-state ${isOn ? ON_BADGE[r.function] || 'badge-heat' : ''}`, text: isOn ? 'on' : 'off' }),
      r.simulated ? h('span', { class: 'badge badge-warn relay-backend', text: 'simulated' }) : null,
      r.agent_reachable === false ? h('span', { class: 'badge badge-bad relay-reach', text: 'unreachable' }) : null),
    h('div', { class: 'device-meta', text: `${key} · ${relayDetails(r)}` }),
    relayWarnings(r),
    r.command_error ? h('div', { class: 'device-why hint', text: `Refused the last command: ${r.command_error}` }) : null,
    h('label', { class: 'field', for: selId }, h('span', { text: 'Drives' }), functionSelect(v, r, selId, error)),
    error,
    fallbackPanel(v.fallbacks, r, v.st.sensors, () => load(v)));
}

function renderRelays(v) {
  const { st, els } = v;
  // Rebuilding while someone is choosing a function or typing a fallback program would close
  // their select or take their caret (relay events come every few seconds while the equipment
  // runs): redraw once they leave.
  const focused = document.activeElement;
  if (focused && els.relays.contains(focused) && focused.matches('select, input')) {
    if (!st.relaysDeferred) {
      st.relaysDeferred = true;
      els.relays.addEventListener('focusout', () => {
        st.relaysDeferred = false;
        if (st.alive) renderRelays(v);
      }, { once: true });
    }
    return;
  }
  els.relays.replaceChildren(...(st.relays.length
    ? st.relays.map((r) => relayCard(v, r))
    : [h('p', { class: 'muted', text: 'No relay agent has registered yet.' })]));
}

// ----- agents ------------------------------------------------------------------------------

function clockText(off) {
  if (off === null || off === undefined) return 'clock offset unknown';
  const abs = Math.abs(off);
  return abs < 0.5 ? 'clock in sync' : `clock ${abs < 10 ? abs.toFixed(1) : Math.round(abs)} s ${off > 0 ? 'ahead of' : 'behind'} the engine`;
}

/** What is wrong with an agent, if anything: a skewed clock, no answer, an error answer. */
function agentNotes(a) {
  const note = (cls, text) => h('div', { class: `hint ${cls}`, role: 'note', text });
  let contact = null;
  if (a.unreachable_since) {
    contact = note('agent-unreachable', `No answer since ${fmtTime(a.unreachable_since)}${a.contact_error ? `: ${a.contact_error}` : ''}. Check that the agent runs (systemctl status hearth-relay-agent) and that the engine can reach ${a.url || 'it'}.`);
  } else if (a.contact_error) {
    contact = note('agent-error', `Its last answer was an error: ${a.contact_error}`);
  }
  const f = a.fallback;
  const fallback = f
    ? note(f.ended_at ? 'agent-fallback-ended' : 'agent-fallback',
      f.ended_at
        ? `Ran its fallback program (it lost the engine) from ${fmtTime(f.since)} to ${fmtTime(f.ended_at)}.`
        : `IN FALLBACK since ${fmtTime(f.since)}: it lost the engine and runs its own fallback program (frost setpoint or a blind duty).`)
    : null;
  return [
    fallback,
    a.clock_skewed ? note('agent-skew', 'Clock skewed: the engine re-times its readings by the offset, but fix the clock on this host (NTP).') : null,
    contact,
  ];
}

// ----- agents managed from the engine ------------------------------------------------------

// One panel for both agent kinds; what differs (the settings form, the command labels, what
// is in force) is the kind's entry in KINDS.

/** What an agent of `kind` last reported applying of the host's settings. */
const appliedOf = (state, kind) => (state?.applied || []).find((x) => x.agent === kind);

/** Behind the desired revision, for people. */
function behind(state, mine) {
  return mine.revision !== state.revision ? ` (revision ${mine.revision} of ${state.revision})` : '';
}

// DS18B20 resolutions: the step of a reading and the time a conversion takes.
const RESOLUTIONS = [
  ['', 'its own'],
  ['9', '9 bit (0.5 °C, 94 ms)'],
  ['10', '10 bit (0.25 °C, 188 ms)'],
  ['11', '11 bit (0.125 °C, 375 ms)'],
  ['12', '12 bit (0.0625 °C, 750 ms)'],
];

/** One sensor's settings in force on its agent, for people. */
function sensorInForce(s) {
  if (!s) return 'not reported by the agent yet';
  const offset = s.offset_c === undefined || s.offset_c === null ? '' : ` · ${s.offset_c >= 0 ? '+' : ''}${s.offset_c} °C`;
  return `in force: ${s.enabled === false ? 'off' : 'on'}${s.alias ? ` · "${s.alias}"` : ''}${offset}`;
}

/** A number from a form input: undefined when empty, an Error (shown at the form) when not a number. */
function numberIn(input, label) {
  const raw = input.value.trim();
  if (raw === '' && !input.validity.badInput) return undefined;
  const v = Number(raw);
  if (raw === '' || !Number.isFinite(v)) throw new Error(`${label} must be a number.`);
  return v;
}

/** One sensor's row: whether the agent reads it, its alias and an offset on the agent. */
function managedSensorRow(uid, id) {
  const rid = `${uid}-${id}`;
  const row = {
    id,
    enabled: h('select', { id: `${rid}-enabled`, class: 'manage-sensor-enabled' },
      ...[['', 'its own'], ['on', 'on'], ['off', 'off']].map(([value, text]) => h('option', { value, text }))),
    alias: h('input', { id: `${rid}-alias`, class: 'manage-sensor-alias', type: 'text', maxlength: '256', placeholder: 'its own' }),
    offset: h('input', { id: `${rid}-offset`, class: 'manage-sensor-offset', type: 'number', min: '-5', max: '5', step: '0.05', inputmode: 'decimal', placeholder: 'its own' }),
    now: h('span', { class: 'manage-sensor-now muted' }),
  };
  row.root = h('div', { class: 'manage-sensor', 'data-manage-sensor': id },
    h('span', { class: 'manage-sensor-id', text: id }),
    h('label', { class: 'field', for: row.enabled.id }, h('span', { text: 'Read' }), row.enabled),
    h('label', { class: 'field', for: row.alias.id }, h('span', { text: 'Alias' }), row.alias),
    h('label', { class: 'field', for: row.offset.id }, h('span', { text: 'Offset on the agent, °C' }), row.offset),
    row.now);
  return row;
}

/** A sensor row's inputs from the desired settings. */
function fillSensorRow(row, desired) {
  const d = desired.sensors?.[row.id] || {};
  row.enabled.value = d.enabled === undefined ? '' : d.enabled ? 'on' : 'off';
  row.alias.value = d.alias ?? '';
  row.offset.value = d.offset_c ?? '';
}

/** The sensor agent's settings: its report interval, the sensors' resolution, its screen and
 *  a row per sensor (the ones it reports running with, and any the settings name). What is
 *  left empty is the agent's own. */
function sensorForm(uid) {
  const number = (cls, min, max, step) => h('input', { id: `${uid}-${cls}`, class: `manage-${cls}`, type: 'number', min, max, step, inputmode: 'decimal', placeholder: 'its own' });
  const interval = number('interval', '1', '3600', '1');
  const resolution = h('select', { id: `${uid}-resolution`, class: 'manage-resolution' },
    ...RESOLUTIONS.map(([value, text]) => h('option', { value, text })));
  const rate = number('screen-rate', '0.1', '100', '0.1');
  const steps = number('screen-steps', '1', '1000', '1');
  const wrap = h('div', { class: 'manage-sensors' });
  const rows = new Map();
  const field = (input, text) => h('label', { class: 'field', for: input.id }, h('span', { text }), input);
  // New rows are added even while someone edits: nothing typed is touched, the focus stays.
  const sync = (state) => {
    const desired = state.desired?.sensor || {};
    const inForce = appliedOf(state, 'sensor')?.in_force?.sensor?.sensors || {};
    const added = [...new Set([...Object.keys(inForce), ...Object.keys(desired.sensors || {})])]
      .filter((id) => !rows.has(id));
    for (const id of added) {
      const row = managedSensorRow(uid, id);
      fillSensorRow(row, desired);
      rows.set(id, row);
    }
    if (added.length) wrap.replaceChildren(...[...rows.values()].sort((a, b) => a.id.localeCompare(b.id)).map((r) => r.root));
    for (const row of rows.values()) row.now.textContent = sensorInForce(inForce[row.id]);
  };
  return {
    fields: [
      field(interval, 'Report interval, s (empty: its own)'),
      field(resolution, 'Resolution'),
      field(rate, 'Screen: fastest change, °C/min'),
      field(steps, 'Screen: rejections before a new level'),
      // The agent's offset adds to the engine's own (the sensor's calibration above): set one.
      h('p', { class: 'hint muted manage-offset-note', text: 'An offset on the agent changes what it reports; the calibration above is the engine\'s and adds to it.' }),
      wrap,
    ],
    fill(state) {
      sync(state);
      const desired = state.desired?.sensor || {};
      interval.value = desired.interval_s ?? '';
      resolution.value = desired.resolution_bits ? String(desired.resolution_bits) : '';
      rate.value = desired.screen?.max_rate_c_per_min ?? '';
      steps.value = desired.screen?.step_rejections ?? '';
      for (const row of rows.values()) fillSensorRow(row, desired);
    },
    refresh: sync,
    body() {
      const sensor = {};
      const every = numberIn(interval, 'The interval');
      if (every !== undefined) sensor.interval_s = every;
      if (resolution.value) sensor.resolution_bits = Number(resolution.value);
      const sensors = {};
      for (const row of rows.values()) {
        const entry = {};
        if (row.enabled.value) entry.enabled = row.enabled.value === 'on';
        if (row.alias.value !== '') entry.alias = row.alias.value;
        const offset = numberIn(row.offset, `The offset of ${row.id}`);
        if (offset !== undefined) entry.offset_c = offset;
        if (Object.keys(entry).length) sensors[row.id] = entry;
      }
      if (Object.keys(sensors).length) sensor.sensors = sensors;
      const screen = {};
      const max = numberIn(rate, 'The screen\'s rate');
      if (max !== undefined) screen.max_rate_c_per_min = max;
      const n = numberIn(steps, 'The screen\'s rejections');
      if (n !== undefined) screen.step_rejections = n;
      if (Object.keys(screen).length) sensor.screen = screen;
      return { sensor: Object.keys(sensor).length ? sensor : undefined };
    },
    applied(state, mine) {
      const f = mine.in_force?.sensor || {};
      const bits = f.resolution_bits ? `${f.resolution_bits} bit` : 'the sensors\' own resolution';
      const screen = f.screen?.max_rate_c_per_min !== undefined
        ? `, screen ${f.screen.max_rate_c_per_min} °C/min after ${f.screen.step_rejections ?? '?'} rejections` : '';
      return `In force: report every ${f.interval_s ?? '?'} s, ${bits}${screen}${behind(state, mine)}, since ${fmtAgo(mine.at)}.`;
    },
  };
}

const PROTECTIONS = [
  ['min_on_s', 'Min on, s'],
  ['min_off_s', 'Min off, s'],
  ['max_on_s', 'Max on, s'],
];

/** Seconds for people: a protection time, or "none" (no maximum on time). */
const secs = (v) => (v === null || v === undefined ? 'none' : `${v}`);

/** One relay output's fields: its three protection times and what is in force. */
function outputRow(uid, r) {
  const inputs = {};
  for (const [key] of PROTECTIONS) {
    inputs[key] = h('input', { id: `${uid}-${r.output_id}-${key}`, class: `manage-${key}`, type: 'number', min: key === 'max_on_s' ? '1' : '0', max: '14400', step: '1', inputmode: 'numeric' });
  }
  const note = h('p', { class: 'manage-times muted' });
  const row = h('fieldset', { class: 'manage-output', 'data-output': r.output_id },
    h('legend', { text: `${r.name} (${r.output_id})` }),
    ...PROTECTIONS.map(([key, label]) => h('label', { class: 'field', for: inputs[key].id }, h('span', { text: label }), inputs[key])),
    note);
  return { inputs, note, row };
}

/** A relay agent's settings: each output's protection times, which the engine may only make
 *  stricter than the agent's own file (the agent refuses anything else, and says why). */
function relayForm(uid, outputsOf) {
  const rows = new Map();
  const wrap = h('div', { class: 'manage-outputs' });
  const sync = (state) => {
    const mine = appliedOf(state, 'relay');
    const known = outputsOf();
    for (const r of known) {
      if (rows.has(r.output_id)) continue;
      const row = outputRow(uid, r);
      rows.set(r.output_id, row);
      wrap.append(row.row);
    }
    for (const [id, row] of rows) {
      const local = mine?.local?.relay?.outputs?.[id];
      const force = mine?.in_force?.relay?.outputs?.[id] || known.find((r) => r.output_id === id)?.reported?.protection;
      const text = (t) => (t ? PROTECTIONS.map(([key]) => secs(t[key])).join(' / ') : '?');
      row.note.textContent = `Local (on / off / max on): ${text(local)} · in force: ${text(force)}`;
      // The agent's own value shows through an empty field ("none": no maximum on time).
      for (const [key] of PROTECTIONS) {
        if (local) row.inputs[key].placeholder = secs(local[key]);
      }
    }
  };
  return {
    fields: [wrap, h('p', { class: 'hint muted', text: 'Empty: the agent\'s own time. The engine may only make them stricter (longer minimum times, a shorter maximum on time) within the agent\'s local limits.' })],
    fill(state) {
      sync(state);
      for (const [id, row] of rows) {
        const want = state.desired?.relay?.outputs?.[id] || {};
        for (const [key] of PROTECTIONS) row.inputs[key].value = want[key] ?? '';
      }
    },
    refresh: sync,
    body() {
      const outputs = {};
      for (const [id, row] of rows) {
        for (const [key, label] of PROTECTIONS) {
          const input = row.inputs[key];
          const raw = input.value.trim();
          if (raw === '') continue;
          if (input.validity.badInput || !Number.isInteger(Number(raw))) throw new Error(`${id}: ${label} must be a whole number of seconds.`);
          (outputs[id] ||= {})[key] = Number(raw);
        }
      }
      return { relay: Object.keys(outputs).length ? { outputs } : undefined };
    },
    applied(state, mine) {
      return `Applied by the agent${behind(state, mine)}, ${fmtAgo(mine.at)}.`;
    },
  };
}

const KINDS = {
  sensor: {
    form: (uid) => sensorForm(uid),
    commands: [['identify', 'Identify'], ['rescan', 'Rescan bus'], ['diagnostics', 'Diagnostics'], ['restart', 'Restart']],
    sent: 'Settings sent; the agent picks them up with its next report.',
  },
  relay: {
    form: (uid, outputsOf) => relayForm(uid, outputsOf),
    // Identify blinks the LED and logs a banner: it never clicks a relay.
    commands: [['identify', 'Identify'], ['rescan', 'Read probe'], ['diagnostics', 'Diagnostics'], ['restart', 'Restart']],
    sent: 'Settings sent; the relay agent picks them up within seconds.',
  },
};

function commandRow(c) {
  const result = c.result ? h('details', {}, h('summary', { text: 'result' }), h('pre', { class: 'manage-result', text: JSON.stringify(c.result, null, 2) })) : null;
  return h('li', { class: `manage-command state-${c.state}`, 'data-command': c.command },
    h('span', { text: `${fmtTime(c.asked_at)} ${c.command} — ${c.state}` }),
    c.message ? h('span', { class: 'muted', text: ` · ${c.message}` }) : null,
    result);
}

function renderManage(p) {
  const { state, commands } = p;
  if (state && !p.dirty && !p.root.contains(document.activeElement)) p.form.fill(state);
  else if (state) p.form.refresh?.(state);
  const mine = appliedOf(state, p.kind);
  p.applied.textContent = !state ? ''
    : mine ? p.form.applied(state, mine)
      : state.revision ? 'Not yet picked up by the agent.' : 'Nothing set: the agent runs with its own configuration.';
  p.refused.replaceChildren(...((mine?.revision === state?.revision && mine?.refused) || []).map((r) =>
    h('li', { class: 'manage-refused', text: `Refused ${r.field}: ${r.reason}` })));
  p.log.replaceChildren(...(commands || []).slice(0, 10).map(commandRow));
}

async function reloadManage(p) {
  const host = encodeURIComponent(p.host);
  try {
    [p.state, p.commands] = await Promise.all([
      api('GET', `/v1/agents/${host}/settings`),
      api('GET', `/v1/agents/${host}/commands?agent=${p.kind}&limit=10`),
    ]);
    p.error.textContent = '';
  } catch (e) {
    p.error.textContent = e.message || String(e);
  }
  renderManage(p);
}

/** A command button of panel `p`: asks its agent, then shows the command in the log. */
function commandButton(p, command, label) {
  const b = h('button', { type: 'button', class: 'btn manage-command-btn', 'data-command': command, text: label });
  b.addEventListener('click', () => submit({
    error: p.error,
    button: b,
    body: () => ({ agent: p.kind, command }),
    send: (body) => api('POST', `/v1/agents/${encodeURIComponent(p.host)}/commands`, body),
    done: () => reloadManage(p),
  }));
  return b;
}

/** The management panel of an agent of `kind`: built once, kept across the list's reloads.
 *  `outputsOf` gives a relay agent's registered outputs. */
function managePanel(host, kind, outputsOf) {
  const uid = `m-${kind}-${host}`;
  const spec = KINDS[kind];
  const p = {
    host,
    kind,
    dirty: false,
    form: spec.form(uid, outputsOf),
    save: h('button', { type: 'submit', class: 'btn btn-primary manage-save', text: 'Save' }),
    error: h('p', { class: 'form-error', role: 'alert' }),
    applied: h('p', { class: 'manage-applied muted' }),
    refused: h('ul', { class: 'manage-refusals' }),
    log: h('ul', { class: 'manage-log' }),
  };
  const form = h('form', { class: 'device-form', novalidate: true },
    ...p.form.fields,
    h('div', { class: 'device-actions' }, p.save));
  const buttons = spec.commands.map(([command, label]) => commandButton(p, command, label));
  // `change` too: a field cleared by a script or an autofill fires no `input`.
  for (const type of ['input', 'change']) form.addEventListener(type, () => { p.dirty = true; });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit({
      error: p.error,
      button: p.save,
      // The document is the host's (both its agents'): the other agent's section is kept.
      body: () => ({ ...(p.state?.desired || {}), ...p.form.body() }),
      send: (body) => api('PUT', `/v1/agents/${encodeURIComponent(host)}/settings`, body),
      done: () => {
        p.dirty = false;
        toast(spec.sent, 'ok');
        return reloadManage(p);
      },
    });
  });
  p.root = h('details', { class: 'manage', 'data-manage': host, 'data-manage-kind': kind },
    h('summary', { text: 'Manage' }),
    form, p.applied, p.refused,
    h('div', { class: 'device-actions' }, ...buttons),
    p.error, p.log);
  // Read when opened, and every few seconds while open: a command's result comes back when
  // the agent has carried it out.
  p.root.addEventListener('toggle', () => {
    clearInterval(p.timer);
    if (p.root.open) {
      reloadManage(p);
      p.timer = setInterval(() => reloadManage(p), 3000);
    }
  });
  return p;
}

function agentCard(v, a) {
  const key = `${a.host_id}/${a.kind}`;
  if (!v.panels.has(key)) {
    v.panels.set(key, managePanel(a.host_id, a.kind, () => v.st.relays.filter((r) => r.host_id === a.host_id)));
  }
  const panel = v.panels.get(key).root;
  return h('article', { class: 'card device-card', 'data-agent': `${a.host_id}/${a.kind}` },
    h('div', { class: 'device-head' },
      h('h3', { text: a.host_id }),
      h('span', { class: 'badge', text: a.kind === 'sensor' ? 'sensor agent' : 'relay agent' }),
      h('span', { class: `badge agent-online ${a.online ? 'badge-ok' : 'badge-bad'}`, text: a.online ? 'online' : 'offline' }),
      a.fallback && !a.fallback.ended_at ? h('span', { class: 'badge badge-bad agent-in-fallback', text: 'in fallback' }) : null),
    h('div', { class: 'device-meta' },
      h('span', { class: 'agent-seen', text: `last seen ${fmtAgo(a.last_seen)}` }),
      ' · ',
      h('span', { class: 'agent-clock', text: clockText(a.clock_offset_s) }),
      a.url ? ` · ${a.url}` : '',
      a.backend ? h('span', { class: 'agent-backend', text: ` · backend ${a.backend}` }) : null),
    agentNotes(a),
    panel);
}

function renderAgents(v) {
  v.els.agents.replaceChildren(...(v.st.agents.length
    ? v.st.agents.map((a) => agentCard(v, a))
    : [h('p', { class: 'muted', text: 'No agent has been heard from yet.' })]));
}

// ----- loading and live updates ------------------------------------------------------------

async function load(v) {
  const { st, els } = v;
  const results = await Promise.allSettled([
    api('GET', '/v1/sensors').then((x) => (st.sensors = x || [])),
    api('GET', '/v1/control').then((x) => (st.decision = x?.decision || null)),
    api('GET', '/v1/relays').then((x) => (st.relays = x || [])),
    api('GET', '/v1/agents').then((x) => (st.agents = x || [])),
    // An engine without zones has no such route: the section stays hidden, nothing failed.
    api('GET', '/v1/zones').then((x) => (st.zones = x), () => (st.zones = null)),
  ]);
  if (!st.alive) return;
  const failed = results.find((r) => r.status === 'rejected');
  els.error.hidden = !failed;
  if (failed) els.error.textContent = `Some data could not be loaded: ${failed.reason?.message || failed.reason}`;
  renderSensors(v);
  renderRelays(v);
  renderAgents(v);
  v.zones.render(st.zones, st.sensors, st.relays);
}

function followEvents(v) {
  const { st, rows } = v;
  return [
    on('reading', (ev) => {
      const s = st.sensors.find((x) => x.id === ev.sensor_id);
      const row = rows.get(ev.sensor_id);
      if (!s || !row) return load(v);
      s.latest = { at: ev.at, value: ev.value };
      s.stale = false;
      renderSensorDisplay(st, row, s);
    }),
    on('decision', (ev) => {
      st.decision = ev.decision || st.decision;
      for (const s of st.sensors) {
        const row = rows.get(s.id);
        if (row) renderSensorDisplay(st, row, s);
      }
    }),
    // The event carries only the new state; the agent's report (lease, protection timers)
    // changed with it, so re-read the relays rather than show a stale mix.
    on('relay', () => load(v)),
    on('changed', () => load(v)),
    on('lagged', () => load(v)),
  ];
}

export async function mount(el) {
  const st = { sensors: [], decision: null, relays: [], agents: [], alive: true, relaysDeferred: false };
  const els = {
    error: h('p', { class: 'view-error', role: 'alert', hidden: true }),
    sensors: h('div', { class: 'device-list two-col' }),
    relays: h('div', { class: 'device-list two-col' }),
    agents: h('div', { class: 'device-list two-col' }),
  };
  // rows: sensor id → {root, display, inputs, dirty}; panels: host id → a sensor agent's panel;
  // fallbacks: host/output → a relay output's Fallback panel
  const v = { st, els, rows: new Map(), panels: new Map(), fallbacks: new Map() };
  v.zones = zonesAdmin(() => load(v));
  el.append(
    h('h1', { class: 'page-title', text: 'Devices' }),
    els.error,
    h('h2', { class: 'section-title', id: 'dev-sensors', text: 'Sensors' }),
    h('p', {
      class: 'muted',
      text:
        'Weight counts a sensor in the average when a schedule rule names no sensors (0: never, e.g. outdoors). ' +
        'The offset is added to every reading.',
    }),
    els.sensors,
    h('h2', { class: 'section-title', id: 'dev-relays', text: 'Relays' }),
    els.relays,
    h('h2', { class: 'section-title', id: 'dev-agents', text: 'Agents' }),
    els.agents,
    v.zones.root,
  );
  const offs = followEvents(v);
  // Agents have no events: "last seen" and online/offline come from a gentle poll.
  const tick = setInterval(() => load(v), 30_000);
  await load(v);
  return () => {
    st.alive = false;
    clearInterval(tick);
    for (const p of v.panels.values()) clearInterval(p.timer);
    for (const off of offs) off();
  };
}
