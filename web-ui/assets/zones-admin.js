// Devices' Zones & plants: the house's zones (name, sensors, valves or dampers, relays of
// their own) and plants (kind, relays, zones served, valve delay, overrun, minimum calling
// zones, bypass zone, protection times), created, edited and deleted through the engine's
// `/v1/zones` and `/v1/plants`. The engine checks the whole house on every change: its 422
// names the problem and is shown at the form, which keeps what was typed. A zone that still
// has rules or overrides (409 `zone_not_empty`) can have them moved to another zone and be
// deleted in one go (`?move_to=`); one that still has valves is refused (422 `invalid_house`,
// naming them), shown at its row like any other refusal. Bodies and checks are zones.js's.

import { api } from "./api.js";
import { h } from "./dom.js";
import { fmtDuration } from "./format.js";
import { submit } from "./submit.js";
import { toast } from "./toast.js";
import {
  PLANT_KINDS, holdsText, newPlant, plantBody, readId, relayChoices, zoneBody, zoneName,
} from "./zones.js";

const relayKey = (r) => `${r.host_id}/${r.output_id}`;

// ----- form pieces ---------------------------------------------------------------------------

/** A labelled input. */
function field(id, label, attrs = {}) {
  const input = h('input', { id, name: id, type: 'text', autocomplete: 'off', ...attrs });
  return { input, root: h('label', { class: 'field', for: id }, h('span', { text: label }), input) };
}

/** A labelled select of `[value, text]` pairs, `none` the text of an empty choice. */
function choice(id, label, pairs, none = null) {
  const options = [...(none ? [['', none]] : []), ...pairs];
  const select = h('select', { id, name: id }, options.map(([value, text]) => h('option', { value, text })));
  return { select, root: h('label', { class: 'field', for: id }, h('span', { text: label }), select) };
}

/** A group of checkboxes of `[value, text]` pairs; `values()` reads the ticked ones. */
function ticks(name, legend, pairs, checked) {
  const boxes = pairs.map(([value, text]) => {
    const box = h('input', { type: 'checkbox', name, value, checked: checked.includes(value) });
    return h('label', { class: 'tick' }, box, h('span', { text }));
  });
  const root = h('fieldset', { class: 'ticks', 'data-ticks': name }, h('legend', { text: legend }),
    boxes.length ? boxes : h('p', { class: 'muted', text: 'None yet.' }));
  const values = () => [...root.querySelectorAll(`input[name="${name}"]:checked`)].map((b) => b.value);
  return { root, values };
}

/** Save and cancel, and the line where the engine's refusal is shown. */
function formEnd(prefix, onCancel) {
  const error = h('p', { id: `${prefix}-error`, class: 'form-error', role: 'alert' });
  const save = h('button', { type: 'submit', id: `${prefix}-save`, class: 'btn btn-primary', text: 'Save' });
  const cancel = h('button', { type: 'button', class: 'btn', text: 'Cancel', onclick: onCancel });
  return { error, save, root: [error, h('div', { class: 'device-actions' }, cancel, save)] };
}

/** A form's submit: `read` gives `{path, body}` (or throws an Error naming the field), the
 * body is PUT there; the engine's refusal stays at the form with what was typed. */
function putOnSubmit(a, form, end, message, read) {
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit({
      error: end.error,
      button: end.save,
      reveal: true,
      body: read,
      send: ({ path, body }) => api('PUT', path, body),
      done: () => saved(a, message),
    });
  });
}

// ----- zones ---------------------------------------------------------------------------------

/** The zone form, filled from `z` (a new zone when it has no id). */
function zoneForm(a, z) {
  const editing = Boolean(z.id);
  const id = field('zone-id', 'Id (letters, digits, - and _)', { value: z.id || '', disabled: editing, maxlength: '32', spellcheck: 'false' });
  const name = field('zone-name', 'Name', { value: z.name || '', maxlength: '64' });
  const outputs = a.relays.map((r) => [relayKey(r), `${r.name || r.output_id} (${relayKey(r)}${r.function ? `, ${r.function}` : ''})`]);
  const sensors = ticks('zone-sensor', 'Sensors', a.sensors.map((s) => [s.id, s.name || s.alias || s.id]), z.sensors || []);
  const valves = ticks('zone-valve', 'Valves or dampers (opened together)', outputs, z.valves || []);
  const heat = choice('zone-heat', 'Heating relay of its own', outputs, 'None');
  const cool = choice('zone-cool', 'Cooling relay of its own', outputs, 'None');
  heat.select.value = z.heat_relay || '';
  cool.select.value = z.cool_relay || '';
  const end = formEnd('zone', () => closeForm(a));
  const form = h('form', { id: 'zone-form', class: 'card device-form zone-form', novalidate: true },
    h('h3', { text: editing ? `Edit ${z.name}` : 'New zone' }),
    h('div', { class: 'device-fields' }, id.root, name.root), sensors.root, valves.root,
    h('div', { class: 'device-fields' }, heat.root, cool.root), end.root);
  putOnSubmit(a, form, end, 'Zone saved.', () => ({
    path: `/v1/zones/${encodeURIComponent(editing ? z.id : readId(id.input.value, 'Zone'))}`,
    body: zoneBody({ name: name.input.value, sensors: sensors.values(), valves: valves.values(), heat_relay: heat.select.value, cool_relay: cool.select.value }),
  }));
  return form;
}

/** A zone's delete: straight away when empty; with its rules and overrides moved, once
 * someone chose where, when the engine says it still has some. */
async function deleteZone(a, z, row) {
  const out = row.querySelector('.zone-delete-out');
  out.replaceChildren();
  try {
    await api('DELETE', `/v1/zones/${encodeURIComponent(z.id)}`);
    await saved(a, `${z.name} deleted.`);
  } catch (e) {
    if (e.code !== 'zone_not_empty') {
      out.replaceChildren(h('p', { class: 'form-error', role: 'alert', text: e.message }));
      return;
    }
    out.replaceChildren(moveOffer(a, z, e.message));
  }
}

/** "Move its rules and overrides to …": the other zones, and the retry with `?move_to=`. */
function moveOffer(a, z, message) {
  const others = a.config.zones.filter((x) => x.id !== z.id).map((x) => [x.id, x.name || x.id]);
  const target = choice(`zone-move-${z.id}`, 'Move its rules and overrides to', others);
  const error = h('p', { class: 'form-error', role: 'alert' });
  const go = h('button', { type: 'button', class: 'btn btn-danger zone-move', text: 'Move them and delete' });
  go.addEventListener('click', () => submit({
    error,
    button: go,
    body: () => target.select.value,
    send: (to) => api('DELETE', `/v1/zones/${encodeURIComponent(z.id)}?move_to=${encodeURIComponent(to)}`),
    done: () => saved(a, `${z.name} deleted; its rules and overrides moved to ${zoneName(a.config, target.select.value)}.`),
  }));
  const held = holdsText(z);
  return h('div', { class: 'hint zone-move-offer', role: 'note' },
    h('p', { text: held ? `${z.name} still has ${held}.` : message }), target.root, go, error);
}

function zoneRow(a, z) {
  const sensorName = (id) => {
    const s = a.sensors.find((x) => x.id === id);
    return s?.name || s?.alias || id;
  };
  const facts = [
    z.default ? 'every sensor no other zone names' : null,
    z.sensors?.length ? `sensors: ${z.sensors.map(sensorName).join(', ')}` : null,
    z.valves?.length ? `valves: ${z.valves.join(', ')}` : null,
    z.heat_relay ? `heating relay ${z.heat_relay}` : null,
    z.cool_relay ? `cooling relay ${z.cool_relay}` : null,
    holdsText(z) || null,
  ].filter(Boolean);
  const row = h('article', { class: 'card device-card', 'data-zone': z.id },
    h('div', { class: 'device-head' }, h('h3', { text: z.name }),
      z.default ? h('span', { class: 'badge', text: 'default zone' }) : null),
    h('div', { class: 'device-meta', text: [z.id, ...facts].join(' · ') }),
    h('div', { class: 'device-actions' },
      h('button', { type: 'button', class: 'btn zone-edit', text: 'Edit', 'aria-label': `Edit zone ${z.name}`, onclick: () => openForm(a, zoneForm(a, z)) }),
      z.default ? null : h('button', { type: 'button', class: 'btn btn-quiet zone-delete', text: 'Delete', 'aria-label': `Delete zone ${z.name}` })),
    h('div', { class: 'zone-delete-out' }));
  row.querySelector('.zone-delete')?.addEventListener('click', () => deleteZone(a, z, row));
  return row;
}

// ----- plants --------------------------------------------------------------------------------

/** The plant's number fields: [key, label]. */
const PLANT_TIMES = [
  ['valve_delay_s', 'Valve delay, s'],
  ['overrun_s', 'Overrun, s'],
  ['min_calling_zones', 'Minimum calling zones'],
  ['min_on_s', 'Minimum on, s'],
  ['min_off_s', 'Minimum off, s'],
  ['changeover_s', 'Changeover, s'],
  ['max_run_s', 'Maximum run, s (empty: none)'],
];

function plantForm(a, p) {
  const editing = Boolean(p.id);
  const id = field('plant-id', 'Id (letters, digits, - and _)', { value: p.id || '', disabled: editing, maxlength: '32', spellcheck: 'false' });
  const name = field('plant-name', 'Name', { value: p.name || '', maxlength: '64' });
  const kind = choice('plant-kind', 'Kind', PLANT_KINDS);
  kind.select.value = p.kind;
  const relays = relayChoices(a.relays).map((r) => [r.id, r.label]);
  const heat = choice('plant-heat', 'Heating relay', relays, 'None');
  const cool = choice('plant-cool', 'Cooling relay', relays, 'None');
  heat.select.value = p.heat_relay || '';
  cool.select.value = p.cool_relay || '';
  const zonePairs = a.config.zones.map((z) => [z.id, z.name || z.id]);
  const zones = ticks('plant-zone', 'Zones it serves', zonePairs, p.zones || []);
  const bypass = choice('plant-bypass', 'Bypass zone (kept open when it must run with no zone calling)', zonePairs, 'None');
  bypass.select.value = p.bypass_zone || '';
  const nums = Object.fromEntries(PLANT_TIMES.map(([key, label]) =>
    [key, field(`plant-${key.replace(/_/g, '-')}`, label, { type: 'number', min: '0', step: '1', inputmode: 'numeric', value: p[key] ?? '' })]));
  const end = formEnd('plant', () => closeForm(a));
  const form = h('form', { id: 'plant-form', class: 'card device-form plant-form', novalidate: true },
    h('h3', { text: editing ? `Edit ${p.name}` : 'New plant' }),
    h('div', { class: 'device-fields' }, id.root, name.root, kind.root, heat.root, cool.root),
    zones.root, bypass.root,
    h('div', { class: 'device-fields' }, Object.values(nums).map((n) => n.root)), end.root);
  const read = () => plantBody({
    name: name.input.value, kind: kind.select.value, heat_relay: heat.select.value, cool_relay: cool.select.value,
    zones: zones.values(), bypass_zone: bypass.select.value,
    ...Object.fromEntries(Object.entries(nums).map(([key, n]) => [key, n.input.value])),
  });
  putOnSubmit(a, form, end, 'Plant saved.', () => ({
    path: `/v1/plants/${encodeURIComponent(editing ? p.id : readId(id.input.value, 'Plant'))}`,
    body: read(),
  }));
  return form;
}

function plantRow(a, p) {
  const kindText = PLANT_KINDS.find(([k]) => k === p.kind)?.[1] || p.kind;
  const facts = [
    kindText,
    p.heat_relay ? `heating ${p.heat_relay}` : null,
    p.cool_relay ? `cooling ${p.cool_relay}` : null,
    `serves ${(p.zones || []).map((id) => zoneName(a.config, id)).join(', ') || 'no zone'}`,
    p.valve_delay_s ? `valve delay ${fmtDuration(p.valve_delay_s)}` : null,
    p.overrun_s ? `overrun ${fmtDuration(p.overrun_s)}` : null,
    p.min_calling_zones > 1 ? `at least ${p.min_calling_zones} zones calling` : null,
    p.bypass_zone ? `bypass ${zoneName(a.config, p.bypass_zone)}` : null,
  ].filter(Boolean);
  const error = h('p', { class: 'form-error', role: 'alert' });
  const del = h('button', { type: 'button', class: 'btn btn-quiet plant-delete', text: 'Delete', 'aria-label': `Delete plant ${p.name}` });
  del.addEventListener('click', () => submit({
    error,
    button: del,
    body: () => p.id,
    send: (pid) => api('DELETE', `/v1/plants/${encodeURIComponent(pid)}`),
    done: () => saved(a, `${p.name} deleted.`),
  }));
  return h('article', { class: 'card device-card', 'data-plant': p.id },
    h('div', { class: 'device-head' }, h('h3', { text: p.name })),
    h('div', { class: 'device-meta', text: [p.id, ...facts].join(' · ') }),
    h('div', { class: 'device-actions' },
      h('button', { type: 'button', class: 'btn plant-edit', text: 'Edit', 'aria-label': `Edit plant ${p.name}`, onclick: () => openForm(a, plantForm(a, p)) }),
      del),
    error);
}

// ----- the section ---------------------------------------------------------------------------

function openForm(a, form) {
  a.formEl.replaceChildren(form);
  a.formEl.hidden = false;
  form.querySelector('input:not([disabled]), select')?.focus();
  form.scrollIntoView({ block: 'nearest' });
}

function closeForm(a) {
  a.formEl.replaceChildren();
  a.formEl.hidden = true;
}

async function saved(a, message) {
  closeForm(a);
  toast(message, 'ok');
  await a.reload();
}

/** The section for the devices view: `render(config, sensors, relays)` after each load (a
 * null config, from an engine without zones, hides it). An open form is left alone. */
export function zonesAdmin(reload) {
  const a = {
    reload, config: null, sensors: [], relays: [],
    zonesEl: h('div', { class: 'device-list two-col', id: 'zone-list' }),
    plantsEl: h('div', { class: 'device-list two-col', id: 'plant-list' }),
    formEl: h('div', { class: 'zone-form-slot', hidden: true }),
  };
  const add = (text, id, make) => h('button', { type: 'button', id, class: 'btn', text, onclick: () => openForm(a, make()) });
  a.root = h('section', { class: 'zones-admin', 'aria-labelledby': 'dev-zones', hidden: true },
    h('h2', { class: 'section-title', id: 'dev-zones', text: 'Zones & plants' }),
    h('p', { class: 'muted', text: 'A zone is a room or area with its own sensors, schedule and target; a plant (boiler, heat pump, air conditioner) heats or cools the zones it serves through their valves or dampers.' }),
    h('div', { class: 'device-actions' },
      add('Add zone', 'zone-add', () => zoneForm(a, { sensors: [], valves: [] })),
      add('Add plant', 'plant-add', () => plantForm(a, newPlant(a.config)))),
    a.formEl,
    h('h3', { class: 'zones-admin-title', text: 'Zones' }), a.zonesEl,
    h('h3', { class: 'zones-admin-title', text: 'Plants' }), a.plantsEl);
  a.render = (config, sensors, relays) => {
    Object.assign(a, { config, sensors: sensors || [], relays: relays || [] });
    a.root.hidden = !config;
    // Relay events reload the devices every few seconds: the lists are rebuilt only when what
    // they show changed, so a delete's question or refusal stays on the screen.
    const names = (list, key) => list.map((x) => [key(x), x.name || null]);
    const shown = JSON.stringify([config, names(a.sensors, (s) => s.id), names(a.relays, relayKey)]);
    if (!config || shown === a.shown) return;
    a.shown = shown;
    a.zonesEl.replaceChildren(...config.zones.map((z) => zoneRow(a, z)));
    a.plantsEl.replaceChildren(...(config.plants.length
      ? config.plants.map((p) => plantRow(a, p))
      : [h('p', { class: 'muted', text: 'No plant yet.' })]));
  };
  return a;
}
