// The schedule view's page: its skeleton and the renderers of the next 24 hours, the week,
// the rule list, the overrides and the default target. Clicks are handed to `v.act` (the
// actions in schedule.js); the arithmetic is schedule-week.js's.

import { h } from "./dom.js";
import { DAY_MIN, SHORT_DAYS, dayLabel, parseLocal } from "./calendar.js";
import { fmtDay, fmtTemp, fmtTime } from "./format.js";
import {
  LAYER_NAMES, beatenParts, blocksByDay, dayOfMonth, pieceTime, ruleColor, segmentTime,
  setpointText, sortRules, timelinePieces, whenSummary, winnerColor,
} from "./schedule-week.js";
import { ruleDialog } from "./schedule-form.js";

const pct = (min) => `${(min / DAY_MIN) * 100}%`;
const card = (titleId, ...children) => h('section', { class: 'sched-card', 'aria-labelledby': titleId }, ...children);
const weekButton = (d, text, label) => h('button', { type: 'button', class: 'btn btn-quiet', 'data-week': d, 'aria-label': label, text });

function defaultCard() {
  const input = (id, label) => h('label', { class: 'field' }, h('span', { text: label }),
    h('input', { id, type: 'number', step: '0.5', inputmode: 'decimal' }));
  return card('def-title', h('h2', { id: 'def-title', text: 'Default target' }),
    h('p', { class: 'muted', text: 'In force whenever no rule is.' }),
    h('form', { id: 'default-form', class: 'default-form', novalidate: true },
      input('default-heat', 'Heat to (°C)'), input('default-cool', 'Cool above (°C)'),
      h('button', { type: 'submit', id: 'default-save', class: 'btn btn-primary', text: 'Save default' }),
      h('p', { id: 'default-error', class: 'form-error', role: 'alert' })));
}

/** The page, empty: renderers fill it; `picker` is the zone picker's element. */
export function skeleton(picker) {
  return h('section', { class: 'schedule-view' },
    h('header', { class: 'view-head' }, h('h1', { text: 'Schedule' }), picker,
      h('button', { type: 'button', id: 'rule-add', class: 'btn btn-primary', text: 'Add rule' })),
    card('tl-title', h('h2', { id: 'tl-title', text: 'Next 24 hours' }), h('div', { id: 'timeline', 'aria-live': 'polite' })),
    card('week-title',
      h('div', { class: 'week-nav' }, h('h2', { id: 'week-title', text: 'This week' }),
        weekButton(-1, '‹', 'Previous week'), weekButton(0, 'This week'), weekButton(1, '›', 'Next week')),
      h('p', { class: 'week-hint muted', text: 'Blocks are rules; the strip on the left of each day shows who wins. Hatched parts are beaten by a more specific rule. Tap a block to edit it.' }),
      h('div', { class: 'week-scroll', tabindex: '0', 'aria-label': 'Week view, scrolls sideways' }, h('div', { id: 'week' })),
      h('div', { class: 'week-unplaced' })),
    card('rules-title', h('h2', { id: 'rules-title', text: 'Rules' }), h('ul', { class: 'rule-list' })),
    card('ovr-title', h('h2', { id: 'ovr-title', text: 'Overrides' }), h('ul', { id: 'override-list', class: 'override-list' })),
    defaultCard(),
    ruleDialog());
}

/** A list item that opens the editor on click and on Enter or Space. */
function editable(li, rule, act) {
  li.classList.add('clickable');
  li.tabIndex = 0;
  li.setAttribute('aria-label', `${li.textContent.trim()}. Edit ${rule.name}`);
  li.addEventListener('click', () => act.openEditor(rule));
  li.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' || ev.key === ' ') {
      ev.preventDefault();
      act.openEditor(rule);
    }
  });
}

/** The next 24 hours: a bar of who wins, and the segments as a list. */
export function renderTimeline(v, tl) {
  const { st, $ } = v;
  const from = Date.parse(tl.from);
  const to = Date.parse(tl.to);
  if (!tl.segments.length) {
    $('#timeline').replaceChildren(h('p', { class: 'muted', text: 'Nothing scheduled.' }));
    return;
  }
  const firstDate = (parseLocal(tl.segments[0]?.start_local) || {}).date;
  const time = (seg) => segmentTime(seg, firstDate, (x) => `${fmtTime(x.start, st.zone)}–${fmtTime(x.end, st.zone)}`);
  const bar = h('div', { class: 'tl-bar', 'aria-hidden': 'true' });
  const list = h('ol', { class: 'tl-list' });
  for (const seg of tl.segments) {
    const s = Date.parse(seg.start);
    const e = Date.parse(seg.end);
    const color = winnerColor(seg.rule);
    bar.append(h('span', {
      class: `tl-piece layer-${seg.rule.layer}`,
      title: `${time(seg)} ${seg.rule.name} ${fmtTemp(seg.heat_c)}`,
      style: { left: `${((s - from) / (to - from)) * 100}%`, width: `${((e - s) / (to - from)) * 100}%`, background: color },
    }));
    const beaten = seg.beaten.length
      ? h('span', { class: 'seg-beaten', text: `beats ${seg.beaten.map((b) => b.name).join(', ')}` })
      : null;
    // Spaces between the parts keep the row's text readable ("06:00–08:30 Mornings 21.0 °C")
    // for screen readers and copy/paste; the grid lays them out.
    const li = h('li', { class: `segment layer-${seg.rule.layer}`, 'data-rule-name': seg.rule.name },
      h('span', { class: 'seg-swatch', 'aria-hidden': 'true', style: { background: color } }),
      h('span', { class: 'seg-time', text: time(seg) }), ' ',
      h('span', { class: 'seg-name', text: seg.rule.name }), ' ',
      h('span', { class: 'seg-temp', text: fmtTemp(seg.heat_c) }), ' ',
      st.coolMatters ? h('span', { class: 'seg-cool muted', text: `cool ${fmtTemp(seg.cool_c)}` }) : null,
      beaten ? ' ' : null, beaten);
    const rule = st.rules.find((r) => r.id === seg.rule.id && seg.rule.layer !== 'override');
    if (rule) editable(li, rule, v.act);
    list.append(li);
  }
  $('#timeline').replaceChildren(bar, list);
}

/** A day's column: its "who wins" strip and, today, the now line. */
function dayColumn(date, week, tlPieces) {
  const isToday = date === week.today;
  const col = h('div', { class: `week-day${isToday ? ' today' : ''}`, 'data-date': date, 'aria-label': dayLabel(date), role: 'group' });
  const strip = h('div', { class: 'win-strip' }, tlPieces.filter((x) => x.date === date).map((p) => h('span', {
    class: `win layer-${p.winner.layer}`,
    'data-winner-id': p.winner.id ?? '',
    title: `${pieceTime(p)} ${p.winner.name}: ${setpointText(p.heat, null)}${p.beaten.length ? ` (beats ${p.beaten.map((b) => b.name).join(', ')})` : ''}`,
    style: { top: pct(p.s), height: pct(p.e - p.s), background: winnerColor(p.winner) },
  })));
  col.append(strip);
  if (isToday) col.append(h('div', { class: 'now-line', style: { top: pct(week.nowMin) }, title: 'Now' }));
  return col;
}

/** A rule's block on one day, hatched where another rule wins. */
function ruleBlock(v, it, dayIndex, tlPieces) {
  const r = it.rule;
  const n = Math.max(1, it.lanes);
  const timeText = pieceTime(it);
  const sp = setpointText(r.heat_c, r.cool_c);
  const block = h('button', {
    type: 'button',
    class: `block layer-${r.layer}${r.enabled ? '' : ' disabled'}`,
    'data-rule-id': r.id,
    title: `${r.name} · ${timeText} · ${sp}${r.enabled ? '' : ' · disabled'}`,
    'aria-label': `${r.name}, ${SHORT_DAYS[dayIndex]} ${timeText}, ${sp}${r.enabled ? '' : ', disabled'}. Edit`,
    style: {
      top: pct(it.s),
      height: pct(it.e - it.s),
      left: `calc(var(--strip-w) + (100% - var(--strip-w)) * ${it.lane / n})`,
      width: `calc((100% - var(--strip-w)) / ${n} - 2px)`,
      '--rule-color': ruleColor(r.id),
    },
  },
  h('span', { class: 'block-name', text: r.name }), ' ',
  h('span', { class: 'block-meta', text: `${timeText} ${r.heat_c !== null && r.heat_c !== undefined ? fmtTemp(r.heat_c) : ''}` }));
  if (r.enabled) {
    for (const p of beatenParts(r, it.date, it.s, it.e, tlPieces)) {
      block.append(h('span', {
        class: 'beaten-part', 'aria-hidden': 'true', title: `beaten by ${p.winner.name}`,
        style: { top: `${((p.s - it.s) / (it.e - it.s)) * 100}%`, height: `${((p.e - p.s) / (it.e - it.s)) * 100}%` },
      }));
    }
  }
  v.act.blockActions(block, r);
  return block;
}

/** The week grid: day heads, the hour axis, a column per day with its blocks. */
export function renderWeek(v, week) {
  const { st, $ } = v;
  const { dates } = week;
  const [first, last] = [dates[0], dates[6]];
  $('#week-title').textContent = st.weekOffset === 0
    ? `This week (${dayLabel(first)} – ${dayLabel(last)})`
    : `${dayLabel(first)} – ${dayLabel(last)}`;
  const tlPieces = timelinePieces(week.tl.segments, dates);
  const head = [h('div', { class: 'week-corner', 'aria-hidden': 'true' })].concat(dates.map((date, i) =>
    h('div', { class: `week-dayhead${date === week.today ? ' today' : ''}`, role: 'columnheader' },
      h('span', { class: 'dow', text: SHORT_DAYS[i] }), h('span', { class: 'dom', text: dayOfMonth(date) }))));
  const axis = h('div', { class: 'week-axis', 'aria-hidden': 'true' }, Array.from({ length: 9 }, (_, k) =>
    h('span', { class: 'week-hour', style: { top: `${(k * 3 / 24) * 100}%` }, text: `${String(k * 3).padStart(2, '0')}:00` })));
  const { byDay, notDrawn } = blocksByDay(st.rules, dates, tlPieces);
  const cols = dates.map((date, i) => {
    const col = dayColumn(date, week, tlPieces);
    col.append(...byDay.get(date).map((it) => ruleBlock(v, it, i, tlPieces)));
    return col;
  });
  $('#week').replaceChildren(...head, axis, ...cols);
  $('#week').setAttribute('aria-label', `Week of ${dayLabel(first)}`);
  renderUnplaced(v, notDrawn);
  // On a phone the grid scrolls sideways: show today first, once.
  const scroll = $('.week-scroll');
  if (!st.scrolledToToday && scroll.scrollWidth > scroll.clientWidth) {
    const col = $('#week').querySelector('.week-day.today');
    if (col) scroll.scrollLeft = Math.max(0, col.offsetLeft - 48);
    st.scrolledToToday = true;
  }
}

/** Cron rules and rules the week cannot draw, as a list under it. */
function renderUnplaced(v, notDrawn) {
  const box = v.$('.week-unplaced');
  box.replaceChildren();
  const crons = v.st.rules.filter((r) => r.when.type === 'cron');
  if (!notDrawn.length && !crons.length) return;
  const items = [...new Set([...crons, ...notDrawn])].map((r) => h('li', {}, h('button', {
    type: 'button', class: 'btn btn-quiet', 'data-edit-rule': r.id,
    text: `${r.name}: ${whenSummary(r)}${r.enabled ? '' : ' (disabled)'}`,
    onclick: () => v.act.openEditor(r),
  })));
  box.append(h('h3', { text: 'Repeating (cron) and other rules' }), h('ul', { class: 'unplaced-list' }, items));
}

export function renderRuleList(v) {
  const list = v.$('.rule-list');
  if (!v.st.rules.length) {
    list.replaceChildren(h('li', { class: 'muted', text: 'No rules yet: the default target is in force all the time. Add one.' }));
    return;
  }
  list.replaceChildren(...sortRules(v.st.rules).map((r) => h('li', {}, h('button', {
    type: 'button', class: `rule-item${r.enabled ? '' : ' disabled'}`, 'data-edit-rule': r.id, onclick: () => v.act.openEditor(r),
  },
  h('span', { class: 'rule-swatch', 'aria-hidden': 'true', style: { background: ruleColor(r.id) } }),
  h('span', { class: 'rule-name', text: r.name }),
  h('span', { class: 'rule-when muted', text: whenSummary(r) }),
  h('span', { class: 'rule-temp', text: setpointText(r.heat_c, r.cool_c) }),
  h('span', { class: 'rule-layer muted', text: `${LAYER_NAMES[r.layer] || r.layer}${r.enabled ? '' : ' · disabled'}` })))));
}

/** The overrides in force or to come, each with its End button. */
export function renderOverrides(v, overrides) {
  const list = v.$('#override-list');
  const now = Date.now();
  const live = overrides.filter((o) => !o.end || Date.parse(o.end) > now);
  if (!live.length) {
    list.replaceChildren(h('li', { class: 'muted', text: 'None: the schedule is in force.' }));
    return;
  }
  list.replaceChildren(...live.map((o) => {
    const started = Date.parse(o.start) <= now;
    // In the engine's zone, as the rules and the week are.
    const at = (iso) => `${fmtDay(iso, v.st.zone)} ${fmtTime(iso, v.st.zone)}`;
    const when = `${started ? 'since' : 'from'} ${at(o.start)}${o.end ? ` until ${at(o.end)}` : ', until ended'}`;
    const err = h('span', { class: 'form-error', role: 'alert' });
    const btn = h('button', {
      type: 'button', class: 'btn override-end', 'data-override-id': o.id,
      'aria-label': `End override ${setpointText(o.heat_c, o.cool_c)}`, text: 'End',
      onclick: () => v.act.endOverride(o, btn, err),
    });
    return h('li', { class: 'override-item' },
      h('span', { class: 'ovr-temp', text: setpointText(o.heat_c, o.cool_c) }),
      h('span', { class: 'ovr-when muted', text: when }), btn, err);
  }));
}

/** The default target's fields; never overwrites what the user is typing there. */
export function renderDefault(v, def) {
  if (!def) return;
  v.st.defaultTarget = def;
  const form = v.$('#default-form');
  if (!form.contains(document.activeElement) && !form.dataset.dirty) {
    v.$('#default-heat').value = def.heat_c;
    v.$('#default-cool').value = def.cool_c;
  }
}
