// Devices' Fallback panel of one relay output: the program its relay agent runs when it loses
// the engine (the engine's default or an admin's choice), the agent's fallback as the engine
// learned it ("in fallback since …, why"), and a form to choose the program: off, frost (a
// setpoint and a sensor: a probe on the agent's host or a sensor agent of the site), a blind
// duty, held open (valves only), or back to the engine's default. The engine's 422 is shown
// at the form, and what was typed stays. Built once per output and kept across the Devices
// list's reloads; texts and bodies are fallback.js's.

import { api } from "./api.js";
import { h } from "./dom.js";
import { submit } from "./submit.js";
import { toast } from "./toast.js";
import {
  fallbackStateText, fieldsOf, formValues, inForceText, modesFor, programBody, sensorChoices,
} from "./fallback.js";

/** A labelled control. */
function labelled(control, label) {
  return h('label', { class: 'field', for: control.id }, h('span', { text: label }), control);
}

/** The form's controls for output `uid`. */
function controls(uid) {
  const input = (key, attrs) => h('input', { id: `${uid}-${key}`, class: `fallback-${key}`, autocomplete: 'off', ...attrs });
  const number = (key, min, max, step) => input(key, { type: 'number', min, max, step, inputmode: 'decimal' });
  return {
    mode: h('select', { id: `${uid}-mode`, class: 'fallback-mode' }),
    setpoint: number('setpoint', '0', '15', '0.5'),
    sensor: h('select', { id: `${uid}-sensor`, class: 'fallback-sensor' }),
    url: input('url', { type: 'url', maxlength: '200' }),
    pct: number('pct', '0', '50', '1'),
    period: number('period', '60', '86400', '60'),
  };
}

/** What the form holds now, as fallback.js reads it. */
function valuesOf(c) {
  const v = {};
  for (const [key, el] of Object.entries(c)) v[key] = el.value;
  return v;
}

/** Show the fields the chosen mode uses (the sensor agent's URL only for a sensor agent). */
function showFields(p) {
  const { c, rows } = p;
  const used = fieldsOf(c.mode.value);
  rows.setpoint.hidden = !used.setpoint;
  rows.sensor.hidden = !used.sensor;
  rows.url.hidden = !used.sensor || !c.sensor.value.startsWith('agent:');
  rows.pct.hidden = !used.duty;
  rows.period.hidden = !used.duty;
}

/** Refill the choices (function, sensors) and, unless someone is editing, the values. */
function fill(p, r, sensors) {
  const { c } = p;
  const editing = p.dirty || p.root.contains(document.activeElement);
  const keep = { mode: c.mode.value, sensor: c.sensor.value };
  c.mode.replaceChildren(...modesFor(r.function).map(([value, text]) => h('option', { value, text })));
  c.sensor.replaceChildren(
    h('option', { value: '', text: 'None (blind duty)' }),
    ...sensorChoices(sensors, r.host_id).map(([value, text]) => h('option', { value, text })));
  if (editing) {
    c.mode.value = keep.mode;
    c.sensor.value = keep.sensor;
  } else {
    for (const [key, value] of Object.entries(formValues(r))) c[key].value = value;
  }
  showFields(p);
}

/** Build the panel of relay output `r`. */
function build(r, reload) {
  const key = `${r.host_id}/${r.output_id}`;
  const uid = `fb-${key.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const c = controls(uid);
  const labels = {
    setpoint: 'Setpoint °C', sensor: 'Sensor', url: "Sensor agent's URL (its status listener)", pct: 'Duty %', period: 'Period, s',
  };
  const rows = Object.fromEntries(Object.entries(labels).map(([k, text]) => [k, labelled(c[k], text)]));
  const p = {
    c,
    rows,
    dirty: false,
    inForce: h('p', { class: 'fallback-in-force' }),
    state: h('p', { class: 'fallback-state hint', role: 'note' }),
    error: h('p', { class: 'form-error fallback-error', role: 'alert' }),
    save: h('button', { type: 'submit', class: 'btn btn-primary fallback-save', text: 'Save' }),
  };
  const form = h('form', { class: 'device-form fallback-form', novalidate: true },
    h('div', { class: 'device-fields' }, labelled(c.mode, 'In fallback'), Object.values(rows)),
    p.error,
    h('div', { class: 'device-actions' }, p.save));
  for (const el of Object.values(c)) {
    el.addEventListener('input', () => { p.dirty = true; });
    el.addEventListener('change', () => showFields(p));
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit({
      error: p.error,
      button: p.save,
      body: () => programBody(valuesOf(c)),
      send: (body) => api('PUT', `/v1/relays/${encodeURIComponent(r.host_id)}/${encodeURIComponent(r.output_id)}/fallback`, body),
      done: () => {
        p.dirty = false;
        toast(`${r.name || r.output_id}: fallback program saved; the engine hands it to its relay agent.`, 'ok');
        return reload();
      },
    });
  });
  p.root = h('details', { class: 'fallback', 'data-fallback': key },
    h('summary', { text: 'Fallback' }), p.inForce, p.state, form);
  return p;
}

/**
 * The Fallback panel of relay output `r` (kept in `panels` by host/output across reloads),
 * brought up to date with `r` and the site's `sensors`; `reload` re-reads the Devices lists.
 */
export function fallbackPanel(panels, r, sensors, reload) {
  const key = `${r.host_id}/${r.output_id}`;
  if (!panels.has(key)) panels.set(key, build(r, reload));
  const p = panels.get(key);
  p.inForce.textContent = inForceText(r);
  const state = fallbackStateText(r.agent_fallback);
  p.state.textContent = state || '';
  p.state.hidden = !state;
  fill(p, r, sensors);
  return p.root;
}
