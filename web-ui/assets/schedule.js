// Schedule view: the week drawn as blocks per rule with "who wins when" from the engine's
// timeline, the next 24 hours segment by segment, the rule editor (weekly, cron, exception,
// vacation), the default target and the overrides in force.
//
// Rules are written in the engine's local time zone (Timeline.time_zone), so the week grid is
// laid out in that zone's wall-clock time, read from the timeline's `start_local`/`end_local`
// (RFC 9557), not from the browser's zone.
//
// Modules: schedule-week.js (the pure arithmetic: pieces, lanes, drags, texts), schedule-
// render.js (the page and its renderers), schedule-form.js (the editor dialog); this one holds
// the state, the loading and the actions.
//
// In a house with zones a picker chooses the zone the page acts on: the rules, the timeline,
// the overrides and the default target listed are that zone's (`?zone=`), and a rule saved
// is saved to it (`zone` in the body).

import { api, on } from "./api.js";
import { DAY_MIN, WEEKDAYS } from "./calendar.js";
import { h } from "./dom.js";
import { submit } from "./submit.js";
import { fillEditor, numOrNull, readRule, showType, syncAllDay } from "./schedule-form.js";
import {
  renderDefault, renderOverrides, renderRuleList, renderTimeline, renderWeek, skeleton,
} from "./schedule-render.js";
import { movedWeekly, weekOf } from "./schedule-week.js";
import { DEFAULT_ZONE, pickZone, withZone } from "./zones.js";
import { fillZonePicker, zonePicker } from "./zone-picker.js";

// ---- loading ------------------------------------------------------------------------------

async function loadAll(st) {
  const z = (path) => withZone(path, st.zoneId);
  const [rules, sensors, tl, ovr, def, control] = await Promise.all([
    api('GET', z('/v1/schedules')),
    api('GET', '/v1/sensors').catch(() => []),
    api('GET', z('/v1/schedule/timeline?hours=24')),
    api('GET', z('/v1/overrides')).catch(() => []),
    api('GET', z('/v1/schedule/default')).catch(() => null),
    api('GET', z('/v1/control')).catch(() => null),
  ]);
  st.rules = rules;
  st.zone = tl.time_zone;
  st.sensors = sensors;
  // The cooling setpoint only matters when cooling can run; in heat mode it is noise.
  st.coolMatters = !control || ['cool', 'auto'].includes(control.settings?.mode);
  const week = weekOf(tl, st.weekOffset);
  // 170 h: a week is 167–169 h across DST changes; pieces outside the 7 dates are dropped.
  week.tl = await api('GET', z(`/v1/schedule/timeline?hours=170&from=${encodeURIComponent(new Date(week.from).toISOString())}`));
  return { tl, week, ovr, def };
}

async function render(v) {
  const { st } = v;
  const gen = ++st.renderGen;
  let data;
  try {
    await loadZones(v);
    data = await loadAll(st);
  } catch (e) {
    if (!st.alive || gen !== st.renderGen) return;
    v.$('#timeline').replaceChildren(h('p', { class: 'form-error', role: 'alert', text: `Could not load the schedule: ${e.message}` }));
    return;
  }
  if (!st.alive || gen !== st.renderGen) return;
  renderTimeline(v, data.tl);
  renderWeek(v, data.week);
  renderRuleList(v);
  renderOverrides(v, data.ovr);
  renderDefault(v, data.def);
}

/** The house's zones (none from an engine without them) and the picker; a zone that is gone
 * gives way to the default one. */
async function loadZones(v) {
  const { st } = v;
  st.config = await api('GET', '/v1/zones').catch(() => null);
  st.zoneId = pickZone(st.config, st.zoneId);
  fillZonePicker(v.picker, st.config, st.zoneId);
}

/** Re-read once per burst (another device edited something, events were missed). */
function scheduleRender(v, delay = 300) {
  clearTimeout(v.st.timer);
  v.st.timer = setTimeout(() => {
    v.st.timer = null;
    if (v.st.alive) render(v);
  }, delay);
}

// ---- actions ------------------------------------------------------------------------------

function openEditor(v, rule, movedWhen = null) {
  v.st.editing = rule || null;
  fillEditor(v.$, rule, movedWhen, v.st.sensors);
  const dialog = v.$('#rule-dialog');
  if (!dialog.open) dialog.showModal();
  v.$('#rule-name').focus();
}

function closeEditor(v) {
  const dialog = v.$('#rule-dialog');
  if (dialog.open) dialog.close();
  v.st.editing = null;
}

/** Saves the rule as typed. The form stays open with everything as typed on a refusal; the
 * engine's text says what to fix. */
function saveRule(v) {
  const { $, st } = v;
  return submit({
    error: $('#rule-error'),
    button: $('#rule-save'),
    reveal: true,
    body: () => {
      // A rule stays in its zone when edited; a new one goes to the zone shown.
      const zone = st.editing?.zone || st.zoneId;
      return { ...readRule($), ...(zone !== DEFAULT_ZONE ? { zone } : {}) };
    },
    send: (body) => (st.editing ? api('PUT', `/v1/schedules/${st.editing.id}`, body) : api('POST', '/v1/schedules', body)),
    done: () => {
      closeEditor(v);
      return render(v);
    },
  });
}

async function deleteRule(v) {
  if (!v.st.editing) return;
  v.$('#rule-error').textContent = '';
  try {
    await api('DELETE', `/v1/schedules/${v.st.editing.id}`);
    closeEditor(v);
    await render(v);
  } catch (e) {
    v.$('#rule-error').textContent = e.message;
  }
}

async function endOverride(v, o, btn, err) {
  btn.disabled = true;
  err.textContent = '';
  try {
    await api('DELETE', `/v1/overrides/${o.id}`);
    scheduleRender(v, 0);
  } catch (e) {
    err.textContent = e.message;
    btn.disabled = false;
  }
}

function saveDefault(v) {
  const { $, st } = v;
  return submit({
    error: $('#default-error'),
    button: $('#default-save'),
    body: () => ({
      heat_c: numOrNull($('#default-heat')),
      cool_c: numOrNull($('#default-cool')),
      sensors: st.defaultTarget ? st.defaultTarget.sensors || [] : [],
    }),
    send: (body) => api('PUT', withZone('/v1/schedule/default', st.zoneId), body),
    done: () => {
      delete $('#default-form').dataset.dirty;
      scheduleRender(v, 0);
    },
  });
}

/** A block opens the editor on click; a weekly one can be dragged with a mouse or pen: up and
 * down in 15-minute steps, sideways by whole days, and the editor then opens with the moved
 * times to confirm. Touch is left to scrolling (the grid scrolls sideways on a phone). */
function blockActions(v, block, rule) {
  block.addEventListener('click', () => {
    if (v.st.dragJustEnded) {
      v.st.dragJustEnded = false;
      return;
    }
    openEditor(v, rule);
  });
  if (rule.when.type === 'weekly') block.addEventListener('pointerdown', (down) => dragBlock(v, block, rule, down));
}

function dragBlock(v, block, rule, down) {
  if (down.pointerType === 'touch' || down.button !== 0) return;
  const rect = block.parentElement.getBoundingClientRect();
  const perMin = rect.height / DAY_MIN;
  const drag = { moved: false, dMin: 0, dDay: 0 };
  const move = (ev) => {
    const dx = ev.clientX - down.clientX;
    const dy = ev.clientY - down.clientY;
    if (!drag.moved && Math.hypot(dx, dy) < 8) return;
    if (!drag.moved) {
      drag.moved = true;
      block.setPointerCapture(down.pointerId);
      block.classList.add('dragging');
    }
    ev.preventDefault();
    drag.dMin = Math.round(dy / perMin / 15) * 15;
    drag.dDay = Math.round(dx / rect.width);
    block.style.transform = `translate(${drag.dDay * rect.width}px, ${drag.dMin * perMin}px)`;
  };
  const up = () => {
    block.removeEventListener('pointermove', move);
    block.removeEventListener('pointerup', up);
    block.removeEventListener('pointercancel', up);
    if (!drag.moved) return;
    v.st.dragJustEnded = true;
    block.classList.remove('dragging');
    block.style.transform = '';
    if (drag.dMin || drag.dDay) openEditor(v, rule, movedWeekly(rule.when, drag.dMin, drag.dDay));
  };
  block.addEventListener('pointermove', move);
  block.addEventListener('pointerup', up);
  block.addEventListener('pointercancel', up);
}

/** Every listener of the page's fixed parts. */
function wire(v) {
  const { $ } = v;
  const form = $('#rule-form');
  const defForm = $('#default-form');
  defForm.addEventListener('input', () => {
    defForm.dataset.dirty = '1';
  });
  defForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveDefault(v);
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveRule(v);
  });
  $('#rule-delete').addEventListener('click', () => deleteRule(v));
  $('#rule-cancel').addEventListener('click', () => closeEditor(v));
  $('#rule-type').addEventListener('change', (ev) => showType($, ev.target.value));
  $('#rule-allday').addEventListener('change', () => syncAllDay($));
  for (const b of form.querySelectorAll('button[data-days]')) {
    b.addEventListener('click', () => {
      const want = b.dataset.days.split(',').map((i) => WEEKDAYS[Number(i)]);
      for (const c of form.querySelectorAll('input[name=day]')) c.checked = want.includes(c.value);
    });
  }
  $('#rule-add').addEventListener('click', () => openEditor(v, null));
  for (const b of v.root.querySelectorAll('button[data-week]')) {
    b.addEventListener('click', () => {
      const d = Number(b.dataset.week);
      v.st.weekOffset = d === 0 ? 0 : v.st.weekOffset + d;
      v.st.scrolledToToday = false;
      scheduleRender(v, 0);
    });
  }
}

export async function mount(el, ctx) {
  const v = {};
  // The picker changes the zone and re-reads at once; the default target's form starts afresh.
  v.picker = zonePicker((id) => {
    v.st.zoneId = id;
    delete v.$('#default-form').dataset.dirty;
    scheduleRender(v, 0);
  });
  const root = skeleton(v.picker.root);
  el.replaceChildren(root);
  // `zone` is the engine's time zone (rules are written in it); `zoneId` the house's zone shown.
  const st = {
    alive: true, weekOffset: 0, rules: [], sensors: [], editing: null, scrolledToToday: false,
    coolMatters: true, defaultTarget: null, zone: undefined, renderGen: 0, timer: null, dragJustEnded: false,
    zoneId: ctx?.params?.get('zone') || DEFAULT_ZONE, config: null,
  };
  Object.assign(v, { st, root, $: (sel) => root.querySelector(sel) });
  v.act = {
    openEditor: (rule) => openEditor(v, rule),
    endOverride: (o, btn, err) => endOverride(v, o, btn, err),
    blockActions: (block, rule) => blockActions(v, block, rule),
  };
  wire(v);
  // Live: re-read once per burst; the editor dialog is left alone so nobody loses what they
  // are typing. The timeline moves on as time passes: refresh it every few minutes.
  const offs = [on('changed', () => scheduleRender(v)), on('lagged', () => scheduleRender(v))];
  const tick = setInterval(() => {
    if (!document.hidden && !v.$('#rule-dialog').open) scheduleRender(v, 0);
  }, 5 * 60e3);
  showType(v.$, 'weekly');
  await render(v);
  return () => {
    st.alive = false;
    clearTimeout(st.timer);
    clearInterval(tick);
    for (const off of offs) off();
    if (v.$('#rule-dialog').open) v.$('#rule-dialog').close();
  };
}
