// Settings: the decision loop's settings. The algorithm's parameters are rendered from the JSON
// schema its plugin publishes (GET /v1/plugins), so a new algorithm needs no UI change. The
// engine validates; its error text is shown and the form keeps what was typed.

import { api, on } from "./api.js";
import { toast } from "./toast.js";
import { h } from "./dom.js";


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

export async function mount(el) {
  const st = { settings: null, plugins: [], typed: new Map(), dirty: false, alive: true };

  const errorEl = h('p', { id: 'settings-error', class: 'form-error', role: 'alert' });
  const loadError = h('p', { class: 'view-error', role: 'alert', hidden: true });
  const modeSel = h('select', { id: 'settings-mode', name: 'mode' }, MODES.map(([v, t]) => h('option', { value: v, text: t })));
  const algoSel = h('select', { id: 'algorithm', name: 'algorithm' });
  const algoDesc = h('p', { class: 'plugin-desc', id: 'algorithm-desc' });
  const paramsEl = h('div', { id: 'plugin-params', class: 'settings-grid' });
  const saveBtn = h('button', { type: 'submit', id: 'settings-save', class: 'btn btn-primary', text: 'Save settings' });
  const resetBtn = h('button', { type: 'button', class: 'btn', text: 'Discard changes' });
  const dirtyNote = h('span', { class: 'muted', hidden: true, text: 'Changed elsewhere; saving replaces those changes.' });

  const fixedInputs = new Map(); // key → input
  const groupSets = GROUPS.map((g) =>
    h(
      'fieldset',
      {},
      h('legend', { text: g.legend }),
      h(
        'div',
        { class: 'settings-grid' },
        g.fields.map((f) => {
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
          fixedInputs.set(f.key, input);
          return h(
            'label',
            { class: 'field', for: f.id },
            h('span', { text: f.label }),
            input,
            h('span', { class: 'help', id: `${f.id}-help`, text: f.help }),
          );
        }),
      ),
    ),
  );

  const form = h(
    'form',
    { id: 'settings-form', class: 'settings-form', novalidate: true },
    h(
      'fieldset',
      {},
      h('legend', { text: 'Mode' }),
      h('label', { class: 'field', for: 'settings-mode' }, h('span', { text: 'What the system may do' }), modeSel),
    ),
    h(
      'fieldset',
      {},
      h('legend', { text: 'Algorithm' }),
      h('label', { class: 'field', for: 'algorithm' }, h('span', { text: 'Decision algorithm' }), algoSel),
      algoDesc,
      paramsEl,
    ),
    groupSets,
    errorEl,
    h('div', { class: 'form-actions' }, saveBtn, resetBtn, dirtyNote),
  );
  el.append(h('h1', { class: 'page-title', text: 'Settings' }), loadError, form);

  form.addEventListener('input', () => {
    st.dirty = true;
  });
  form.addEventListener('change', () => {
    st.dirty = true;
  });

  // ----- plugin parameters from the schema -----------------------------------------------
  const plugin = (id) => st.plugins.find((p) => p.id === id) || null;

  /** The parameters typed so far for the shown algorithm, so switching back and forth keeps them. */
  function captureTyped() {
    const id = paramsEl.dataset.algorithm;
    if (!id) return;
    const vals = {};
    for (const input of paramsEl.querySelectorAll('[name^="param-"]')) {
      const key = input.name.slice('param-'.length);
      vals[key] = input.type === 'checkbox' ? input.checked : input.value;
    }
    st.typed.set(id, vals);
  }

  function renderParams(id) {
    const p = plugin(id);
    paramsEl.dataset.algorithm = id;
    algoDesc.textContent = p ? p.description : '';
    const props = p?.params_schema?.properties || {};
    const typed = st.typed.get(id) || {};
    const stored = st.settings && st.settings.algorithm === id ? st.settings.params || {} : {};
    const nodes = [];
    for (const [key, schema] of Object.entries(props)) {
      const inputId = `param-${key}`;
      const label = schema.title || key;
      const helpId = `${inputId}-help`;
      const value = key in typed ? typed[key] : key in stored ? stored[key] : schema.default;
      const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
      let input;
      if (Array.isArray(schema.enum)) {
        input = h('select', { id: inputId, name: inputId }, schema.enum.map((v) => h('option', { value: String(v), text: String(v) })));
        input.value = value === undefined || value === null ? '' : String(value);
        input.dataset.kind = typeof schema.enum[0] === 'number' ? 'number' : 'string';
      } else if (type === 'boolean') {
        input = h('input', { id: inputId, name: inputId, type: 'checkbox' });
        input.checked = Boolean(value);
        input.dataset.kind = 'boolean';
        nodes.push(
          h(
            'div',
            { class: 'field' },
            h('label', { class: 'check-field', for: inputId }, input, h('span', { text: label })),
            schema.description ? h('span', { class: 'help', id: helpId, text: schema.description }) : null,
          ),
        );
        if (schema.description) input.setAttribute('aria-describedby', helpId);
        continue;
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
        input.value = value === undefined || value === null ? '' : String(value);
        input.dataset.kind = type;
      } else {
        input = h('input', { id: inputId, name: inputId, type: 'text' });
        input.value = value === undefined || value === null ? '' : String(value);
        input.dataset.kind = 'string';
      }
      const range = [];
      const lo = schema.minimum;
      const hi = schema.maximum;
      if (lo !== undefined && hi !== undefined) range.push(`${lo} to ${hi}`);
      else if (lo !== undefined) range.push(`at least ${lo}`);
      else if (hi !== undefined) range.push(`at most ${hi}`);
      if (schema.default !== undefined) range.push(`default ${schema.default}`);
      const help = [schema.description, range.length ? `(${range.join(', ')})` : ''].filter(Boolean).join(' ');
      if (help) input.setAttribute('aria-describedby', helpId);
      nodes.push(
        h(
          'label',
          { class: 'field', for: inputId },
          h('span', { text: label }),
          input,
          help ? h('span', { class: 'help', id: helpId, text: help }) : null,
        ),
      );
    }
    if (!nodes.length) nodes.push(h('p', { class: 'muted', text: 'This algorithm has no parameters.' }));
    paramsEl.replaceChildren(...nodes);
  }

  algoSel.addEventListener('change', () => {
    captureTyped();
    renderParams(algoSel.value);
  });

  // ----- fill / collect ------------------------------------------------------------------
  function fill() {
    const s = st.settings;
    if (!s) return;
    algoSel.replaceChildren(...st.plugins.map((p) => h('option', { value: p.id, text: p.name })));
    if (!plugin(s.algorithm)) {
      // Unknown to the list (a plugin removed): still show it so saving does not silently switch.
      algoSel.append(h('option', { value: s.algorithm, text: s.algorithm }));
    }
    algoSel.value = s.algorithm;
    modeSel.value = s.mode;
    for (const [key, input] of fixedInputs) input.value = s[key] === undefined || s[key] === null ? '' : String(s[key]);
    st.typed.clear();
    delete paramsEl.dataset.algorithm;
    renderParams(s.algorithm);
    st.dirty = false;
    dirtyNote.hidden = true;
  }

  /** The PUT body; throws an Error naming a field that is not a number. */
  function collect() {
    const body = { ...(st.settings || {}) };
    body.mode = modeSel.value;
    body.algorithm = algoSel.value;
    for (const [key, input] of fixedInputs) {
      const label = input.closest('label')?.querySelector('span')?.textContent || key;
      if (input.validity.badInput) throw new Error(`${label} must be a number.`);
      const raw = input.value.trim();
      // An emptied field takes the engine's default (fields left out of the PUT do).
      if (raw === '') delete body[key];
      else body[key] = Number(raw);
    }
    const params = {};
    for (const input of paramsEl.querySelectorAll('[name^="param-"]')) {
      const key = input.name.slice('param-'.length);
      const kind = input.dataset.kind;
      if (kind === 'boolean') {
        params[key] = input.checked;
        continue;
      }
      if (kind === 'number' || kind === 'integer') {
        if (input.validity && input.validity.badInput) throw new Error(`${key} must be a number.`);
        const raw = input.value.trim();
        if (raw !== '') params[key] = Number(raw); // empty: the schema's default
        continue;
      }
      if (input.value !== '') params[key] = input.value;
    }
    body.params = params;
    return body;
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errorEl.textContent = '';
    let body;
    try {
      body = collect();
    } catch (e) {
      errorEl.textContent = e.message;
      return;
    }
    saveBtn.disabled = true;
    try {
      await api('PUT', '/v1/control/settings', body);
      st.dirty = false;
      toast('Settings saved.', 'ok');
      await load();
    } catch (e) {
      // The form keeps what was typed: only the message changes.
      errorEl.textContent = e.message || String(e);
    } finally {
      saveBtn.disabled = false;
    }
  });

  resetBtn.addEventListener('click', () => {
    errorEl.textContent = '';
    fill();
  });

  async function load() {
    try {
      const [control, plugins] = await Promise.all([api('GET', '/v1/control'), api('GET', '/v1/plugins')]);
      if (!st.alive) return;
      st.settings = control.settings;
      st.plugins = plugins || [];
      loadError.hidden = true;
      if (st.dirty) dirtyNote.hidden = false;
      else fill();
    } catch (e) {
      if (!st.alive) return;
      loadError.hidden = false;
      loadError.textContent = `The settings could not be loaded: ${e.message || e}`;
    }
  }

  const offs = [
    on('changed', (ev) => {
      if (ev.what === 'settings') load();
    }),
    on('lagged', () => load()),
  ];

  await load();
  return () => {
    st.alive = false;
    for (const off of offs) off();
  };
}
