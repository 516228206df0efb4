// The schedule's rule editor: the dialog (built with h()), filling it from a rule, reading the
// rule back as typed. No checks beyond reading the fields: the engine's messages are the ones
// people should see, so an empty or odd value is sent as it is (or as null).

import { h } from "./dom.js";
import { SHORT_DAYS, WEEKDAYS, isoDate } from "./calendar.js";
import { whenSummary } from "./schedule-week.js";

const field = (label, input) => h('label', { class: 'field' }, h('span', { text: label }), input);
const quiet = (attrs, text) => h('button', { type: 'button', class: 'btn btn-quiet', ...attrs, text });
const numberInput = (id, name, placeholder) =>
  h('input', { id, name, type: 'number', step: '0.5', inputmode: 'decimal', placeholder });

function whenFieldsets() {
  return [
    h('fieldset', { class: 'when when-weekly' }, h('legend', { text: 'Days' }),
      h('div', { class: 'day-checks' }, WEEKDAYS.map((d, i) => h('label', { class: 'day-check' },
        h('input', { type: 'checkbox', name: 'day', value: d }), h('span', { text: SHORT_DAYS[i] })))),
      h('div', { class: 'day-presets' },
        quiet({ 'data-days': '0,1,2,3,4' }, 'Weekdays'), quiet({ 'data-days': '5,6' }, 'Weekend'),
        quiet({ 'data-days': '0,1,2,3,4,5,6' }, 'Every day'))),
    h('fieldset', { class: 'when when-exception' }, h('legend', { text: 'Date' }),
      field('Date', h('input', { id: 'rule-date', type: 'date' })),
      h('label', { class: 'check' }, h('input', { id: 'rule-allday', type: 'checkbox' }), ' All day')),
    h('fieldset', { class: 'when when-times' }, h('legend', { text: 'Time' }),
      h('div', { class: 'row' },
        field('Start', h('input', { id: 'rule-start', name: 'start', type: 'time' })),
        field('End', h('input', { id: 'rule-end', name: 'end', type: 'time' }))),
      h('p', { class: 'muted field-hint', text: 'An end at or before the start runs past midnight.' })),
    h('fieldset', { class: 'when when-cron' }, h('legend', { text: 'Repeat' }),
      field('Cron expression', h('input', { id: 'rule-cron', type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: '30 6 * * 1-5' })),
      h('p', { class: 'muted field-hint', text: 'minute hour day-of-month month day-of-week, local time' }),
      field('Duration (minutes)', h('input', { id: 'rule-duration', type: 'number', step: '1', inputmode: 'numeric' }))),
    h('fieldset', { class: 'when when-vacation' }, h('legend', { text: 'Away' }),
      h('div', { class: 'row' },
        field('From', h('input', { id: 'rule-from', type: 'datetime-local' })),
        field('To', h('input', { id: 'rule-to', type: 'datetime-local' })))),
  ];
}

/** The editor dialog, empty. */
export function ruleDialog() {
  const typeSelect = h('select', { id: 'rule-type', name: 'type' },
    [['weekly', 'Weekly'], ['cron', 'Cron (repeating)'], ['exception', 'Exception (one date)'], ['vacation', 'Vacation (away)']]
      .map(([value, text]) => h('option', { value, text })));
  return h('dialog', { id: 'rule-dialog', class: 'rule-dialog', 'aria-labelledby': 'rule-form-title' },
    h('form', { id: 'rule-form', novalidate: true },
      h('h2', { id: 'rule-form-title', text: 'Add rule' }),
      field('Name', h('input', { id: 'rule-name', name: 'name', type: 'text', autocomplete: 'off', maxlength: '200' })),
      field('Type', typeSelect),
      whenFieldsets(),
      h('fieldset', { class: 'setpoints' }, h('legend', { text: 'Target' }),
        h('div', { class: 'row' },
          field('Heat to (°C)', numberInput('rule-heat', 'heat_c', 'e.g. 21')),
          field('Cool above (°C, optional)', numberInput('rule-cool', 'cool_c', 'e.g. 25'))),
        h('label', { class: 'check' }, h('input', { id: 'rule-enabled', type: 'checkbox', checked: true }), ' Enabled')),
      h('details', { class: 'rule-sensors' },
        h('summary', { text: 'Sensors (optional; none = the default selection)' }), h('div', { class: 'sensor-picks' })),
      h('p', { id: 'rule-note', class: 'rule-note', role: 'status' }),
      h('p', { id: 'rule-error', class: 'form-error', role: 'alert' }),
      h('div', { class: 'dialog-actions' },
        h('button', { type: 'button', id: 'rule-delete', class: 'btn btn-danger', text: 'Delete' }),
        h('span', { class: 'spacer' }),
        h('button', { type: 'button', id: 'rule-cancel', class: 'btn', text: 'Cancel' }),
        h('button', { type: 'submit', id: 'rule-save', class: 'btn btn-primary', text: 'Save' }))));
}

/** A number field's value; null when empty or not a number ("21,5" reads as 21.5). */
export function numOrNull(input) {
  const v = input.value.trim();
  if (v === '') return null;
  const n = Number(v.replace(',', '.'));
  return Number.isFinite(n) ? n : null;
}

/** Shows the fieldsets of rule type `type`. */
export function showType($, type) {
  for (const fs of $('#rule-form').querySelectorAll('fieldset.when')) fs.hidden = true;
  const shown = { weekly: ['weekly', 'times'], exception: ['exception', 'times'], cron: ['cron'], vacation: ['vacation'] };
  for (const part of shown[type] || []) $(`.when-${part}`).hidden = false;
  syncAllDay($);
}

/** An all-day exception has no times to type. */
export function syncAllDay($) {
  const allDay = $('#rule-type').value === 'exception' && $('#rule-allday').checked;
  $('#rule-start').disabled = allDay;
  $('#rule-end').disabled = allDay;
}

function renderSensorPicks($, sensors, selected) {
  const box = $('.sensor-picks');
  if (!sensors.length) {
    box.replaceChildren(h('p', { class: 'muted', text: 'No sensors known yet.' }));
    return;
  }
  box.replaceChildren(...sensors.map((s) => {
    const sel = selected.find((x) => x.sensor_id === s.id);
    const name = s.name || s.alias || s.id;
    const check = h('input', { type: 'checkbox', name: 'sensor', value: s.id, checked: Boolean(sel) });
    const weight = h('input', { type: 'number', class: 'sensor-pick-weight', step: '0.5', inputmode: 'decimal', 'aria-label': `Weight of ${name}`, value: sel ? sel.weight ?? 1 : 1 });
    return h('div', { class: 'sensor-pick' }, h('label', { class: 'check' }, check, ` ${name}`), weight);
  }));
}

/** Puts `when` into the type-specific fields. */
function fillWhen($, w) {
  if (w.type === 'weekly') {
    for (const c of $('#rule-form').querySelectorAll('input[name=day]')) c.checked = w.days.includes(c.value);
    $('#rule-start').value = w.start;
    $('#rule-end').value = w.end;
  } else if (w.type === 'cron') {
    $('#rule-cron').value = w.expr;
    $('#rule-duration').value = w.duration_min;
  } else if (w.type === 'exception') {
    $('#rule-date').value = w.date;
    $('#rule-allday').checked = !w.start && !w.end;
    $('#rule-start').value = w.start || '';
    $('#rule-end').value = w.end || '';
  } else if (w.type === 'vacation') {
    $('#rule-from').value = w.start;
    $('#rule-to').value = w.end;
  }
}

/** Fills the editor for `rule` (null: a new one); `movedWhen` replaces its `when` after a
 * drag, so the move is only stored once the user saves it. */
export function fillEditor($, rule, movedWhen, sensors) {
  $('#rule-form').reset();
  $('#rule-error').textContent = '';
  $('#rule-note').textContent = '';
  $('#rule-form-title').textContent = rule ? `Edit “${rule.name}”` : 'Add rule';
  $('#rule-delete').hidden = !rule;
  // Sensible starting values so a new rule needs few taps.
  const today = new Date();
  $('#rule-date').value = isoDate(today);
  $('#rule-from').value = `${isoDate(today)}T18:00`;
  $('#rule-to').value = `${isoDate(new Date(today.getTime() + 7 * 86400e3))}T12:00`;
  $('#rule-duration').value = '60';
  $('#rule-enabled').checked = true;
  if (!rule) {
    // Name, times and setpoints start empty (form.reset above): typed values then never get
    // appended to a pre-filled one.
    $('#rule-type').value = 'weekly';
    renderSensorPicks($, sensors, []);
  } else {
    const w = movedWhen || rule.when;
    if (movedWhen) $('#rule-note').textContent = `Moved to ${whenSummary({ when: movedWhen })}. Save to keep it.`;
    $('#rule-name').value = rule.name;
    $('#rule-type').value = w.type;
    $('#rule-heat').value = rule.heat_c ?? '';
    $('#rule-cool').value = rule.cool_c ?? '';
    $('#rule-enabled').checked = rule.enabled !== false;
    fillWhen($, w);
    renderSensorPicks($, sensors, rule.sensors || []);
  }
  showType($, $('#rule-type').value);
}

function readWhen($) {
  const type = $('#rule-type').value;
  if (type === 'weekly') {
    const days = [...$('#rule-form').querySelectorAll('input[name=day]:checked')].map((c) => c.value);
    return { type, days, start: $('#rule-start').value, end: $('#rule-end').value };
  }
  if (type === 'cron') {
    const dur = $('#rule-duration').value.trim();
    return { type, expr: $('#rule-cron').value.trim(), duration_min: dur === '' ? null : Number(dur) };
  }
  if (type === 'exception') {
    const allDay = $('#rule-allday').checked;
    return {
      type,
      date: $('#rule-date').value,
      start: allDay ? null : $('#rule-start').value || null,
      end: allDay ? null : $('#rule-end').value || null,
    };
  }
  return { type, start: $('#rule-from').value, end: $('#rule-to').value };
}

/** The rule as typed. */
export function readRule($) {
  const picks = [...$('#rule-form').querySelectorAll('.sensor-pick')]
    .filter((p) => p.querySelector('input[name=sensor]').checked)
    .map((p) => {
      const w = numOrNull(p.querySelector('.sensor-pick-weight'));
      return { sensor_id: p.querySelector('input[name=sensor]').value, weight: w ?? 1 };
    });
  return {
    name: $('#rule-name').value.trim(),
    enabled: $('#rule-enabled').checked,
    when: readWhen($),
    heat_c: numOrNull($('#rule-heat')),
    cool_c: numOrNull($('#rule-cool')),
    sensors: picks,
  };
}
