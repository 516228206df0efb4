// Settings: the decision loop's settings. The algorithm's parameters are rendered from the JSON
// schema its plugin publishes (GET /v1/plugins), so a new algorithm needs no UI change. The
// engine validates; its error text is shown and the form keeps what was typed.
//
// Layout: the fixed fields (a table); the form's skeleton; the plugin parameters from their
// schema; fill and collect; loading and saving, wired in mount().

import { api, on } from "./api.js";
import { toast } from "./toast.js";
import { h } from "./dom.js";
import { submit } from "./submit.js";

// The fixed settings (ControlSettings), in the order shown. `id`s for frost floor and max
// ceiling are part of the browser-test contract.
const GROUPS = [
  {
    legend: 'Safety',
    fields: [
      { key: 'frost_floor_c', id: 'frost-floor', label: 'Frost floor (°C)', min: 0, max: 15, step: 0.5, help: 'Below this the heating runs whatever the mode or schedule.' },
      { key: 'max_ceiling_c', id: 'max-ceiling', label: 'Maximum ceiling (°C)', min: 20, max: 45, step: 0.5, help: 'Above this the heating never runs; setpoints above it are clamped.' },
      { key: 'sensor_loss_duty_pct', id: 'sensor-loss-duty', label: 'Heat share without sensors (%)', min: 0, max: 50, step: 1, integer: true, help: 'With no usable sensor, heat runs this share of every 30 minutes (0: stays off).' },
      { key: 'outlier_c', id: 'outlier', label: 'Outlier distance (°C)', min: 1, max: 30, step: 0.5, help: 'With three or more sensors, one this far from their median drops out.' },
    ],
  },
  {
    legend: 'Equipment',
    fields: [
      { key: 'min_on_s', id: 'min-on', label: 'Minimum on time (s)', min: 0, max: 3600, step: 1, integer: true, help: 'Once on, heating or cooling stays on at least this long.' },
      { key: 'min_off_s', id: 'min-off', label: 'Minimum off time (s)', min: 0, max: 3600, step: 1, integer: true, help: 'Once off, it stays off at least this long.' },
      { key: 'changeover_s', id: 'changeover', label: 'Changeover delay (s)', min: 0, max: 7200, step: 1, integer: true, help: 'Between heating ending and cooling starting, and back.' },
      { key: 'auto_deadband_c', id: 'auto-deadband', label: 'Auto mode gap (°C)', min: 0.5, max: 10, step: 0.1, help: 'In auto mode the cooling setpoint stays at least this far above the heating one.' },
    ],
  },
];

const MODES = [
  ['heat', 'Heat'],
  ['cool', 'Cool'],
  ['auto', 'Auto (heat and cool)'],
  ['off', 'Off'],
];

// ----- skeleton ----------------------------------------------------------------------------

/** A fieldset of fixed number fields; registers each input in `inputs` (key → input). */
function groupFieldset(g, inputs) {
  return h('fieldset', {}, h('legend', { text: g.legend }), h('div', { class: 'settings-grid' }, g.fields.map((f) => {
    const input = h('input', {
      id: f.id,
      name: f.key,
      type: 'number',
      min: String(f.min),
      max: String(f.max),
      step: String(f.step),
      inputmode: f.integer ? 'numeric' : 'decimal',
      'aria-describedby': `${f.id}-help`,
    });
    inputs.set(f.key, input);
    return h('label', { class: 'field', for: f.id },
      h('span', { text: f.label }), input, h('span', { class: 'help', id: `${f.id}-help`, text: f.help }));
  })));
}

function elements() {
  const els = {
    errorEl: h('p', { id: 'settings-error', class: 'form-error', role: 'alert' }),
    loadError: h('p', { class: 'view-error', role: 'alert', hidden: true }),
    modeSel: h('select', { id: 'settings-mode', name: 'mode' }, MODES.map(([value, text]) => h('option', { value, text }))),
    algoSel: h('select', { id: 'algorithm', name: 'algorithm' }),
    algoDesc: h('p', { class: 'plugin-desc', id: 'algorithm-desc' }),
    paramsEl: h('div', { id: 'plugin-params', class: 'settings-grid' }),
    saveBtn: h('button', { type: 'submit', id: 'settings-save', class: 'btn btn-primary', text: 'Save settings' }),
    resetBtn: h('button', { type: 'button', class: 'btn', text: 'Discard changes' }),
    dirtyNote: h('span', { class: 'muted', hidden: true, text: 'Changed elsewhere; saving replaces those changes.' }),
    fixedInputs: new Map(), // key → input
  };
  els.form = h('form', { id: 'settings-form', class: 'settings-form', novalidate: true },
    h('fieldset', {}, h('legend', { text: 'Mode' }),
      h('label', { class: 'field', for: 'settings-mode' }, h('span', { text: 'What the system may do' }), els.modeSel)),
    h('fieldset', {}, h('legend', { text: 'Algorithm' }),
      h('label', { class: 'field', for: 'algorithm' }, h('span', { text: 'Decision algorithm' }), els.algoSel),
      els.algoDesc,
      els.paramsEl),
    GROUPS.map((g) => groupFieldset(g, els.fixedInputs)),
    els.errorEl,
    h('div', { class: 'form-actions' }, els.saveBtn, els.resetBtn, els.dirtyNote));
  return els;
}

// ----- plugin parameters from the schema ---------------------------------------------------

const plugin = (st, id) => st.plugins.find((p) => p.id === id) || null;
const asText = (value) => (value === undefined || value === null ? '' : String(value));

/** "(0.1 to 2, default 0.5)" from a schema's bounds and default. */
function rangeText(schema) {
  const range = [];
  const lo = schema.minimum;
  const hi = schema.maximum;
  if (lo !== undefined && hi !== undefined) range.push(`${lo} to ${hi}`);
  else if (lo !== undefined) range.push(`at least ${lo}`);
  else if (hi !== undefined) range.push(`at most ${hi}`);
  if (schema.default !== undefined) range.push(`default ${schema.default}`);
  return range.length ? `(${range.join(', ')})` : '';
}

/** The input of one non-boolean parameter, holding `value`. */
function paramInput(inputId, schema, type, value) {
  let input;
  if (Array.isArray(schema.enum)) {
    input = h('select', { id: inputId, name: inputId }, schema.enum.map((x) => h('option', { value: String(x), text: String(x) })));
    input.dataset.kind = typeof schema.enum[0] === 'number' ? 'number' : 'string';
  } else if (type === 'number' || type === 'integer') {
    input = h('input', {
      id: inputId,
      name: inputId,
      type: 'number',
      inputmode: type === 'integer' ? 'numeric' : 'decimal',
      step: type === 'integer' ? '1' : schema.multipleOf ? String(schema.multipleOf) : 'any',
      min: schema.minimum !== undefined ? String(schema.minimum) : null,
      max: schema.maximum !== undefined ? String(schema.maximum) : null,
      placeholder: schema.default !== undefined ? String(schema.default) : null,
    });
    input.dataset.kind = type;
  } else {
    input = h('input', { id: inputId, name: inputId, type: 'text' });
    input.dataset.kind = 'string';
  }
  input.value = asText(value);
  return input;
}

/** One parameter's field: a checkbox for a boolean, else a labelled input with its help. */
function paramField(key, schema, value) {
  const inputId = `param-${key}`;
  const helpId = `${inputId}-help`;
  const label = schema.title || key;
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (type === 'boolean' && !Array.isArray(schema.enum)) {
    const input = h('input', { id: inputId, name: inputId, type: 'checkbox', 'aria-describedby': schema.description ? helpId : null });
    input.checked = Boolean(value);
    input.dataset.kind = 'boolean';
    return h('div', { class: 'field' },
      h('label', { class: 'check-field', for: inputId }, input, h('span', { text: label })),
      schema.description ? h('span', { class: 'help', id: helpId, text: schema.description }) : null);
  }
  const input = paramInput(inputId, schema, type, value);
  const help = [schema.description, rangeText(schema)].filter(Boolean).join(' ');
  if (help) input.setAttribute('aria-describedby', helpId);
  return h('label', { class: 'field', for: inputId },
    h('span', { text: label }), input, help ? h('span', { class: 'help', id: helpId, text: help }) : null);
}

/** The parameters typed so far for the shown algorithm, so switching back and forth keeps them. */
function captureTyped(v) {
  const id = v.els.paramsEl.dataset.algorithm;
  if (!id) return;
  const vals = {};
  for (const input of v.els.paramsEl.querySelectorAll('[name^="param-"]')) {
    vals[input.name.slice('param-'.length)] = input.type === 'checkbox' ? input.checked : input.value;
  }
  v.st.typed.set(id, vals);
}

function renderParams(v, id) {
  const { st, els } = v;
  const p = plugin(st, id);
  els.paramsEl.dataset.algorithm = id;
  els.algoDesc.textContent = p ? p.description : '';
  const typed = st.typed.get(id) || {};
  const stored = st.settings && st.settings.algorithm === id ? st.settings.params || {} : {};
  const nodes = Object.entries(p?.params_schema?.properties || {}).map(([key, schema]) =>
    paramField(key, schema, key in typed ? typed[key] : key in stored ? stored[key] : schema.default));
  if (!nodes.length) nodes.push(h('p', { class: 'muted', text: 'This algorithm has no parameters.' }));
  els.paramsEl.replaceChildren(...nodes);
}

// ----- fill / collect ----------------------------------------------------------------------

function fill(v) {
  const { st, els } = v;
  const s = st.settings;
  if (!s) return;
  els.algoSel.replaceChildren(...st.plugins.map((p) => h('option', { value: p.id, text: p.name })));
  if (!plugin(st, s.algorithm)) {
    // Unknown to the list (a plugin removed): still show it so saving does not silently switch.
    els.algoSel.append(h('option', { value: s.algorithm, text: s.algorithm }));
  }
  els.algoSel.value = s.algorithm;
  els.modeSel.value = s.mode;
  for (const [key, input] of els.fixedInputs) input.value = asText(s[key]);
  st.typed.clear();
  delete els.paramsEl.dataset.algorithm;
  renderParams(v, s.algorithm);
  st.dirty = false;
  els.dirtyNote.hidden = true;
}

/** The algorithm's parameters as typed; an empty number takes the schema's default. */
function collectParams(paramsEl) {
  const params = {};
  for (const input of paramsEl.querySelectorAll('[name^="param-"]')) {
    const key = input.name.slice('param-'.length);
    const kind = input.dataset.kind;
    if (kind === 'boolean') {
      params[key] = input.checked;
    } else if (kind === 'number' || kind === 'integer') {
      if (input.validity && input.validity.badInput) throw new Error(`${key} must be a number.`);
      const raw = input.value.trim();
      if (raw !== '') params[key] = Number(raw);
    } else if (input.value !== '') {
      params[key] = input.value;
    }
  }
  return params;
}

/** The PUT body; throws an Error naming a field that is not a number. */
function collect(v) {
  const { st, els } = v;
  const body = { ...(st.settings || {}) };
  body.mode = els.modeSel.value;
  body.algorithm = els.algoSel.value;
  for (const [key, input] of els.fixedInputs) {
    const label = input.closest('label')?.querySelector('span')?.textContent || key;
    if (input.validity.badInput) throw new Error(`${label} must be a number.`);
    const raw = input.value.trim();
    // An emptied field takes the engine's default (fields left out of the PUT do).
    if (raw === '') delete body[key];
    else body[key] = Number(raw);
  }
  body.params = collectParams(els.paramsEl);
  return body;
}

// ----- loading and saving ------------------------------------------------------------------

function save(v) {
  return submit({
    error: v.els.errorEl,
    button: v.els.saveBtn,
    body: () => collect(v),
    send: (body) => api('PUT', '/v1/control/settings', body),
    done: () => {
      v.st.dirty = false;
      toast('Settings saved.', 'ok');
      return load(v);
    },
  });
}

async function load(v) {
  const { st, els } = v;
  try {
    const [control, plugins] = await Promise.all([api('GET', '/v1/control'), api('GET', '/v1/plugins')]);
    if (!st.alive) return;
    st.settings = control.settings;
    st.plugins = plugins || [];
    els.loadError.hidden = true;
    if (st.dirty) els.dirtyNote.hidden = false;
    else fill(v);
  } catch (e) {
    if (!st.alive) return;
    els.loadError.hidden = false;
    els.loadError.textContent = `The settings could not be loaded: ${e.message || e}`;
  }
}

export async function mount(el) {
  const st = { settings: null, plugins: [], typed: new Map(), dirty: false, alive: true };
  const els = elements();
  const v = { st, els };
  el.append(h('h1', { class: 'page-title', text: 'Settings' }), els.loadError, els.form);
  const touched = () => {
    st.dirty = true;
  };
  els.form.addEventListener('input', touched);
  els.form.addEventListener('change', touched);
  els.algoSel.addEventListener('change', () => {
    captureTyped(v);
    renderParams(v, els.algoSel.value);
  });
  els.form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    save(v);
  });
  els.resetBtn.addEventListener('click', () => {
    els.errorEl.textContent = '';
    fill(v);
  });
  const offs = [
    on('changed', (ev) => {
      if (ev.what === 'settings') load(v);
    }),
    on('lagged', () => load(v)),
  ];
  await load(v);
  return () => {
    st.alive = false;
    for (const off of offs) off();
  };
}
