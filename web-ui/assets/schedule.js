// Schedule view: the week drawn as blocks per rule with "who wins when" from the engine's
// timeline, the next 24 hours segment by segment, the rule editor (weekly, cron, exception,
// vacation), the default target and the overrides in force.
//
// Rules are written in the engine's local time zone (Timeline.time_zone), so the week grid is
// laid out in that zone's wall-clock time, read from the timeline's `start_local`/`end_local`
// (RFC 9557), not from the browser's zone.

import { api, on } from "./api.js";
import { fmtTemp, fmtTime, fmtDay } from "./format.js";

const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
const SHORT = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const LAYER_NAMES = { default: 'Default', every_day: 'Every day', day: 'Some days', date: 'Date', override: 'Override' };
const DAY_MIN = 1440;

// ---------------------------------------------------------------------------------------
// Local calendar arithmetic on "YYYY-MM-DD" strings (time-zone free: UTC calendar math)

function dateParts(s) {
  const [y, m, d] = s.split('-').map(Number);
  return { y, m, d };
}
function addDays(s, n) {
  const { y, m, d } = dateParts(s);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}
/** 0 = Monday … 6 = Sunday. */
function weekdayIndex(s) {
  const { y, m, d } = dateParts(s);
  return (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
}
function dayLabel(s) {
  const { m, d } = dateParts(s);
  return `${SHORT[weekdayIndex(s)]} ${d} ${MONTHS[m - 1]}`;
}
/** "06:30" → 390; null when not a time. */
function minutes(hhmm) {
  const m = /^(\d{1,2}):(\d{2})/.exec(hhmm || '');
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}
function hhmm(min) {
  const h = Math.floor(min / 60) % 24;
  return `${String(h).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
}
/** RFC 9557 local time → { date, min, offset } in the engine's zone. */
function parseLocal(s) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::[\d.]+)?(Z|[+-]\d{2}:\d{2})?/.exec(s || '');
  if (!m) return null;
  return { date: m[1], min: Number(m[2]) * 60 + Number(m[3]), offset: m[4] || 'Z' };
}
function offsetMs(offset) {
  if (!offset || offset === 'Z') return 0;
  const sign = offset[0] === '-' ? -1 : 1;
  return sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6))) * 60e3;
}

/** Offset of `tz` at instant `t` (ms), via Intl; null when the browser does not know the zone. */
function zoneOffset(tz, t) {
  try {
    const f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
    const p = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
    const asUtc = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    return asUtc - Math.floor(t / 1000) * 1000;
  } catch {
    return null;
  }
}

/** The instant of local midnight starting `date` in `tz` (fallback: the given offset). */
function localMidnight(date, tz, fallbackOffset) {
  const { y, m, d } = dateParts(date);
  const wall = Date.UTC(y, m - 1, d);
  let t = wall - fallbackOffset;
  // Two rounds settle the offset even when midnight is near a DST change.
  for (let i = 0; i < 2; i++) {
    const off = zoneOffset(tz, t);
    if (off === null) break;
    t = wall - off;
  }
  return t;
}

/** Split a local [start, end) (date + minutes) into per-day pieces { date, s, e }. */
function splitDays(startDate, startMin, endDate, endMin) {
  const out = [];
  let d = startDate;
  for (let guard = 0; guard < 400 && d <= endDate; guard++) {
    const s = d === startDate ? startMin : 0;
    const e = d === endDate ? endMin : DAY_MIN;
    if (e > s) out.push({ date: d, s, e });
    d = addDays(d, 1);
  }
  return out;
}

function ruleColor(id) {
  // Golden-angle hues: consecutive ids get clearly different colours.
  return `hsl(${Math.round((Number(id) * 137.508 + 200) % 360)} 60% 45%)`;
}

function whenSummary(rule) {
  const w = rule.when;
  switch (w.type) {
    case 'weekly': {
      const idx = w.days.map((d) => WEEKDAYS.indexOf(d)).sort((a, b) => a - b);
      let days = idx.map((i) => SHORT[i]).join(', ');
      if (idx.length === 7) days = 'Every day';
      else if (idx.join() === '0,1,2,3,4') days = 'Mon–Fri';
      else if (idx.join() === '5,6') days = 'Sat, Sun';
      return `${days} ${w.start}–${w.end}`;
    }
    case 'cron':
      return `cron "${w.expr}" for ${w.duration_min} min`;
    case 'exception':
      return `${dayLabel(w.date)}${w.start || w.end ? ` ${w.start || '00:00'}–${w.end || '24:00'}` : ', all day'}`;
    case 'vacation':
      return `Away ${w.start.replace('T', ' ')} – ${w.end.replace('T', ' ')}`;
    default:
      return '';
  }
}

function setpointText(heat, cool) {
  const parts = [];
  if (heat !== null && heat !== undefined) parts.push(fmtTemp(heat));
  if (cool !== null && cool !== undefined) parts.push(`cool ${fmtTemp(cool)}`);
  return parts.join(' · ') || 'default target';
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k === 'style') {
      for (const [sk, sv] of Object.entries(v)) {
        if (sk.startsWith('--')) e.style.setProperty(sk, sv);
        else e.style[sk] = sv;
      }
    }
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function numOrNull(input) {
  const v = input.value.trim();
  if (v === '') return null;
  const n = Number(v.replace(',', '.'));
  return Number.isFinite(n) ? n : null;
}

// ---------------------------------------------------------------------------------------
// The view

const TEMPLATE = `
  <header class="view-head">
    <h1>Schedule</h1>
    <button type="button" id="rule-add" class="btn btn-primary">Add rule</button>
  </header>

  <section class="sched-card" aria-labelledby="tl-title">
    <h2 id="tl-title">Next 24 hours</h2>
    <div id="timeline" aria-live="polite"></div>
  </section>

  <section class="sched-card" aria-labelledby="week-title">
    <div class="week-nav">
      <h2 id="week-title">This week</h2>
      <button type="button" class="btn btn-quiet" data-week="-1" aria-label="Previous week">‹</button>
      <button type="button" class="btn btn-quiet" data-week="0">This week</button>
      <button type="button" class="btn btn-quiet" data-week="1" aria-label="Next week">›</button>
    </div>
    <p class="week-hint muted">Blocks are rules; the strip on the left of each day shows who wins.
      Hatched parts are beaten by a more specific rule. Tap a block to edit it.</p>
    <div class="week-scroll" tabindex="0" aria-label="Week view, scrolls sideways">
      <div id="week"></div>
    </div>
    <div class="week-unplaced"></div>
  </section>

  <section class="sched-card" aria-labelledby="rules-title">
    <h2 id="rules-title">Rules</h2>
    <ul class="rule-list"></ul>
  </section>

  <section class="sched-card" aria-labelledby="ovr-title">
    <h2 id="ovr-title">Overrides</h2>
    <ul id="override-list" class="override-list"></ul>
  </section>

  <section class="sched-card" aria-labelledby="def-title">
    <h2 id="def-title">Default target</h2>
    <p class="muted">In force whenever no rule is.</p>
    <form id="default-form" class="default-form" novalidate>
      <label class="field"><span>Heat to (°C)</span>
        <input id="default-heat" type="number" step="0.5" inputmode="decimal"></label>
      <label class="field"><span>Cool above (°C)</span>
        <input id="default-cool" type="number" step="0.5" inputmode="decimal"></label>
      <button type="submit" id="default-save" class="btn btn-primary">Save default</button>
      <p id="default-error" class="form-error" role="alert"></p>
    </form>
  </section>

  <dialog id="rule-dialog" class="rule-dialog" aria-labelledby="rule-form-title">
    <form id="rule-form" novalidate>
      <h2 id="rule-form-title">Add rule</h2>
      <label class="field"><span>Name</span>
        <input id="rule-name" name="name" type="text" autocomplete="off" maxlength="200"></label>
      <label class="field"><span>Type</span>
        <select id="rule-type" name="type">
          <option value="weekly">Weekly</option>
          <option value="cron">Cron (repeating)</option>
          <option value="exception">Exception (one date)</option>
          <option value="vacation">Vacation (away)</option>
        </select></label>

      <fieldset class="when when-weekly">
        <legend>Days</legend>
        <div class="day-checks">
          ${WEEKDAYS.map((d, i) => `<label class="day-check"><input type="checkbox" name="day" value="${d}"><span>${SHORT[i]}</span></label>`).join('')}
        </div>
        <div class="day-presets">
          <button type="button" class="btn btn-quiet" data-days="0,1,2,3,4">Weekdays</button>
          <button type="button" class="btn btn-quiet" data-days="5,6">Weekend</button>
          <button type="button" class="btn btn-quiet" data-days="0,1,2,3,4,5,6">Every day</button>
        </div>
      </fieldset>

      <fieldset class="when when-exception">
        <legend>Date</legend>
        <label class="field"><span>Date</span><input id="rule-date" type="date"></label>
        <label class="check"><input id="rule-allday" type="checkbox"> All day</label>
      </fieldset>

      <fieldset class="when when-times">
        <legend>Time</legend>
        <div class="row">
          <label class="field"><span>Start</span><input id="rule-start" name="start" type="time"></label>
          <label class="field"><span>End</span><input id="rule-end" name="end" type="time"></label>
        </div>
        <p class="muted field-hint">An end at or before the start runs past midnight.</p>
      </fieldset>

      <fieldset class="when when-cron">
        <legend>Repeat</legend>
        <label class="field"><span>Cron expression</span>
          <input id="rule-cron" type="text" autocomplete="off" spellcheck="false" placeholder="30 6 * * 1-5"></label>
        <p class="muted field-hint">minute hour day-of-month month day-of-week, local time</p>
        <label class="field"><span>Duration (minutes)</span>
          <input id="rule-duration" type="number" step="1" inputmode="numeric"></label>
      </fieldset>

      <fieldset class="when when-vacation">
        <legend>Away</legend>
        <div class="row">
          <label class="field"><span>From</span><input id="rule-from" type="datetime-local"></label>
          <label class="field"><span>To</span><input id="rule-to" type="datetime-local"></label>
        </div>
      </fieldset>

      <fieldset class="setpoints">
        <legend>Target</legend>
        <div class="row">
          <label class="field"><span>Heat to (°C)</span>
            <input id="rule-heat" name="heat_c" type="number" step="0.5" inputmode="decimal" placeholder="e.g. 21"></label>
          <label class="field"><span>Cool above (°C, optional)</span>
            <input id="rule-cool" name="cool_c" type="number" step="0.5" inputmode="decimal" placeholder="e.g. 25"></label>
        </div>
        <label class="check"><input id="rule-enabled" type="checkbox" checked> Enabled</label>
      </fieldset>

      <details class="rule-sensors">
        <summary>Sensors (optional; none = the default selection)</summary>
        <div class="sensor-picks"></div>
      </details>

      <p id="rule-note" class="rule-note" role="status"></p>
      <p id="rule-error" class="form-error" role="alert"></p>
      <div class="dialog-actions">
        <button type="button" id="rule-delete" class="btn btn-danger">Delete</button>
        <span class="spacer"></span>
        <button type="button" id="rule-cancel" class="btn">Cancel</button>
        <button type="submit" id="rule-save" class="btn btn-primary">Save</button>
      </div>
    </form>
  </dialog>
`;

export async function mount(root) {
  const view = el('section', { class: 'schedule-view' });
  view.innerHTML = TEMPLATE;
  root.replaceChildren(view);
  const $ = (sel) => view.querySelector(sel);

  const weekEl = $('#week');
  const weekScroll = $('.week-scroll');
  const weekTitle = $('#week-title');
  const unplaced = $('.week-unplaced');
  const timelineEl = $('#timeline');
  const ruleList = $('.rule-list');
  const overrideList = $('#override-list');
  const dialog = $('#rule-dialog');
  const form = $('#rule-form');
  const errorEl = $('#rule-error');
  const noteEl = $('#rule-note');
  const defForm = $('#default-form');

  let alive = true;
  let weekOffset = 0;
  let rules = [];
  let sensors = [];
  let editing = null; // the rule being edited, null for a new one
  let scrolledToToday = false;
  let coolMatters = true;

  // ---- data -------------------------------------------------------------------------

  async function loadAll() {
    const [r, s, tl, ovr, def, control] = await Promise.all([
      api('GET', '/v1/schedules'),
      api('GET', '/v1/sensors').catch(() => []),
      api('GET', '/v1/schedule/timeline?hours=24'),
      api('GET', '/v1/overrides').catch(() => []),
      api('GET', '/v1/schedule/default').catch(() => null),
      api('GET', '/v1/control').catch(() => null),
    ]);
    rules = r;
    // The cooling setpoint only matters when cooling can run; in heat mode it is noise.
    coolMatters = !control || ['cool', 'auto'].includes(control.settings?.mode);
    sensors = s;
    const week = await loadWeek(tl);
    return { tl, week, ovr, def };
  }

  /** The timeline of the shown week (Mon 00:00 to Mon 00:00, engine-local). */
  async function loadWeek(tl24) {
    const first = tl24.segments[0];
    const nowLocal = parseLocal(first ? first.start_local : '') || {
      date: new Date().toISOString().slice(0, 10), min: 0, offset: 'Z',
    };
    const monday = addDays(nowLocal.date, -weekdayIndex(nowLocal.date) + 7 * weekOffset);
    const from = localMidnight(monday, tl24.time_zone, offsetMs(nowLocal.offset));
    // 170 h: a week is 167–169 h across DST changes; pieces outside the 7 dates are dropped.
    const tl = await api('GET', `/v1/schedule/timeline?hours=170&from=${encodeURIComponent(new Date(from).toISOString())}`);
    const dates = Array.from({ length: 7 }, (_, i) => addDays(monday, i));
    return { tl, dates, today: nowLocal.date, nowMin: nowLocal.min, zone: tl24.time_zone };
  }

  // ---- rendering --------------------------------------------------------------------

  let renderGen = 0;
  async function render() {
    const gen = ++renderGen;
    let data;
    try {
      data = await loadAll();
    } catch (e) {
      if (!alive || gen !== renderGen) return;
      timelineEl.replaceChildren(el('p', { class: 'form-error', role: 'alert', text: `Could not load the schedule: ${e.message}` }));
      return;
    }
    if (!alive || gen !== renderGen) return;
    renderTimeline(data.tl);
    renderWeek(data.week);
    renderRuleList();
    renderOverrides(data.ovr);
    renderDefault(data.def);
  }

  function segTime(seg, firstDate) {
    const s = parseLocal(seg.start_local);
    const e = parseLocal(seg.end_local);
    if (!s || !e) return `${fmtTime(seg.start)}–${fmtTime(seg.end)}`;
    const sd = s.date !== firstDate ? `${SHORT[weekdayIndex(s.date)]} ` : '';
    const ed = e.date !== s.date && !(e.min === 0 && addDays(s.date, 1) === e.date) ? `${SHORT[weekdayIndex(e.date)]} ` : '';
    return `${sd}${hhmm(s.min)}–${ed}${e.min === 0 && e.date !== s.date && !ed ? '24:00' : hhmm(e.min)}`;
  }

  function renderTimeline(tl) {
    const from = Date.parse(tl.from);
    const to = Date.parse(tl.to);
    const firstDate = (parseLocal(tl.segments[0]?.start_local) || {}).date;
    const bar = el('div', { class: 'tl-bar', 'aria-hidden': 'true' });
    const list = el('ol', { class: 'tl-list' });
    if (!tl.segments.length) {
      timelineEl.replaceChildren(el('p', { class: 'muted', text: 'Nothing scheduled.' }));
      return;
    }
    for (const seg of tl.segments) {
      const s = Date.parse(seg.start);
      const e = Date.parse(seg.end);
      const color = seg.rule.id === null || seg.rule.id === undefined || seg.rule.layer === 'default'
        ? 'var(--sched-default, #8a8f98)'
        : seg.rule.layer === 'override' ? 'var(--sched-override, #d9480f)' : ruleColor(seg.rule.id);
      bar.append(el('span', {
        class: `tl-piece layer-${seg.rule.layer}`,
        title: `${segTime(seg, firstDate)} ${seg.rule.name} ${fmtTemp(seg.heat_c)}`,
        style: { left: `${((s - from) / (to - from)) * 100}%`, width: `${((e - s) / (to - from)) * 100}%`, background: color },
      }));
      const beaten = seg.beaten.length
        ? el('span', { class: 'seg-beaten', text: `beats ${seg.beaten.map((b) => b.name).join(', ')}` })
        : null;
      // Spaces between the parts keep the row's text readable ("06:00–08:30 Mornings 21.0 °C")
      // for screen readers and copy/paste; the grid lays them out.
      const li = el('li', { class: `segment layer-${seg.rule.layer}`, 'data-rule-name': seg.rule.name },
        el('span', { class: 'seg-swatch', 'aria-hidden': 'true', style: { background: color } }),
        el('span', { class: 'seg-time', text: segTime(seg, firstDate) }), ' ',
        el('span', { class: 'seg-name', text: seg.rule.name }), ' ',
        el('span', { class: 'seg-temp', text: fmtTemp(seg.heat_c) }), ' ',
        coolMatters ? el('span', { class: 'seg-cool muted', text: `cool ${fmtTemp(seg.cool_c)}` }) : null,
        beaten ? ' ' : null, beaten);
      const rule = rules.find((r) => r.id === seg.rule.id && seg.rule.layer !== 'override');
      if (rule) {
        li.classList.add('clickable');
        li.tabIndex = 0;
        li.setAttribute('aria-label', `${li.textContent.trim()}. Edit ${rule.name}`);
        li.addEventListener('click', () => openEditor(rule));
        li.addEventListener('keydown', (ev) => {
          if (ev.key === 'Enter' || ev.key === ' ') {
            ev.preventDefault();
            openEditor(rule);
          }
        });
      }
      list.append(li);
    }
    timelineEl.replaceChildren(bar, list);
  }

  /** Per-day pieces of a rule in the shown week, from its definition (null: not drawable). */
  function rulePieces(rule, dates, weekTl) {
    const w = rule.when;
    const inWeek = (p) => dates.includes(p.date);
    if (w.type === 'weekly') {
      const s = minutes(w.start);
      const e = minutes(w.end);
      if (s === null || e === null) return null;
      const out = [];
      for (const day of w.days) {
        const i = WEEKDAYS.indexOf(day);
        if (i < 0) continue;
        if (e > s) out.push({ date: dates[i], s, e });
        else {
          // Ends at or before it starts: runs past midnight into the next day (Sunday's tail
          // lands on this week's Monday, as the rule repeats every week).
          out.push({ date: dates[i], s, e: DAY_MIN });
          if (e > 0) out.push({ date: dates[(i + 1) % 7], s: 0, e });
        }
      }
      return out;
    }
    if (w.type === 'exception') {
      const s = w.start ? minutes(w.start) : 0;
      const e = w.end ? minutes(w.end) : DAY_MIN;
      if (s === null || e === null) return null;
      const pieces = e > s ? [{ date: w.date, s, e }] : splitDays(w.date, s, addDays(w.date, 1), e);
      return pieces.filter(inWeek);
    }
    if (w.type === 'vacation') {
      const a = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(w.start);
      const b = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(w.end);
      if (!a || !b) return null;
      return splitDays(a[1], minutes(a[2]), b[1], minutes(b[2])).filter(inWeek);
    }
    if (w.type === 'cron') {
      // Cron occurrences are the engine's to compute: take them from the week's timeline,
      // where the rule is in force as winner or beaten. Disabled rules never appear there.
      if (!rule.enabled) return null;
      const out = [];
      for (const p of weekTl) {
        if (p.winner.id === rule.id && p.winner.layer !== 'override') out.push({ date: p.date, s: p.s, e: p.e });
        else if (p.beaten.some((b) => b.id === rule.id && b.layer !== 'override')) out.push({ date: p.date, s: p.s, e: p.e });
      }
      // Adjacent pieces (split by a change of winner) form one occurrence.
      out.sort((x, y) => (x.date === y.date ? x.s - y.s : x.date < y.date ? -1 : 1));
      const merged = [];
      for (const p of out) {
        const last = merged[merged.length - 1];
        if (last && last.date === p.date && last.e === p.s) last.e = p.e;
        else merged.push({ ...p });
      }
      return merged;
    }
    return null;
  }

  function renderWeek(week) {
    const { tl, dates, today, nowMin } = week;
    const first = dates[0];
    const last = dates[6];
    weekTitle.textContent = weekOffset === 0
      ? `This week (${dayLabel(first)} – ${dayLabel(last)})`
      : `${dayLabel(first)} – ${dayLabel(last)}`;

    // Timeline pieces per day, in engine-local wall-clock time.
    const tlPieces = [];
    for (const seg of tl.segments) {
      const s = parseLocal(seg.start_local);
      const e = parseLocal(seg.end_local);
      if (!s || !e) continue;
      for (const p of splitDays(s.date, s.min, e.date, e.min)) {
        if (dates.includes(p.date)) tlPieces.push({ ...p, winner: seg.rule, beaten: seg.beaten, heat: seg.heat_c, cool: seg.cool_c });
      }
    }

    const head = [el('div', { class: 'week-corner', 'aria-hidden': 'true' })];
    const cols = [];
    const axis = el('div', { class: 'week-axis', 'aria-hidden': 'true' });
    for (let h = 0; h <= 24; h += 3) {
      axis.append(el('span', { class: 'week-hour', style: { top: `${(h / 24) * 100}%` }, text: `${String(h).padStart(2, '0')}:00` }));
    }
    dates.forEach((date, i) => {
      const isToday = date === today;
      head.push(el('div', { class: `week-dayhead${isToday ? ' today' : ''}`, role: 'columnheader' },
        el('span', { class: 'dow', text: SHORT[i] }), el('span', { class: 'dom', text: String(dateParts(date).d) })));
      const col = el('div', { class: `week-day${isToday ? ' today' : ''}`, 'data-date': date, 'aria-label': dayLabel(date), role: 'group' });
      // Who wins: a strip of the winning segments.
      const strip = el('div', { class: 'win-strip' });
      for (const p of tlPieces.filter((x) => x.date === date)) {
        const color = p.winner.layer === 'default' ? 'var(--sched-default, #8a8f98)'
          : p.winner.layer === 'override' ? 'var(--sched-override, #d9480f)' : ruleColor(p.winner.id);
        strip.append(el('span', {
          class: `win layer-${p.winner.layer}`,
          'data-winner-id': p.winner.id ?? '',
          title: `${hhmm(p.s)}–${p.e === DAY_MIN ? '24:00' : hhmm(p.e)} ${p.winner.name}: ${setpointText(p.heat, null)}${p.beaten.length ? ` (beats ${p.beaten.map((b) => b.name).join(', ')})` : ''}`,
          style: { top: `${(p.s / DAY_MIN) * 100}%`, height: `${((p.e - p.s) / DAY_MIN) * 100}%`, background: color },
        }));
      }
      col.append(strip);
      if (isToday) col.append(el('div', { class: 'now-line', style: { top: `${(nowMin / DAY_MIN) * 100}%` }, title: 'Now' }));
      cols.push(col);
    });

    // Rule blocks, laid out in lanes per day so overlapping rules sit side by side.
    const notDrawn = [];
    const byDay = new Map(dates.map((d) => [d, []]));
    for (const rule of rules) {
      const pieces = rulePieces(rule, dates, tlPieces);
      if (pieces === null) {
        notDrawn.push(rule);
        continue;
      }
      for (const p of pieces) if (byDay.has(p.date)) byDay.get(p.date).push({ ...p, rule });
    }
    dates.forEach((date, i) => {
      // Overlapping blocks form a cluster; within it each block takes the first free lane, and
      // the cluster's blocks share the column width (blocks that overlap nothing get it all).
      const items = byDay.get(date).sort((a, b) => a.s - b.s || b.e - a.e);
      let cluster = [];
      let clusterEnd = -1;
      let lanes = [];
      const closeCluster = () => {
        for (const it of cluster) it.lanes = lanes.length;
        cluster = [];
        lanes = [];
      };
      for (const it of items) {
        if (it.s >= clusterEnd) closeCluster();
        let lane = lanes.findIndex((endAt) => endAt <= it.s);
        if (lane < 0) {
          lane = lanes.length;
          lanes.push(0);
        }
        lanes[lane] = it.e;
        it.lane = lane;
        cluster.push(it);
        clusterEnd = Math.max(clusterEnd, it.e);
      }
      closeCluster();
      for (const it of items) {
        const r = it.rule;
        const n = Math.max(1, it.lanes);
        const timeText = `${hhmm(it.s)}–${it.e === DAY_MIN ? '24:00' : hhmm(it.e)}`;
        const block = el('button', {
          type: 'button',
          class: `block layer-${r.layer}${r.enabled ? '' : ' disabled'}`,
          'data-rule-id': r.id,
          title: `${r.name} · ${timeText} · ${setpointText(r.heat_c, r.cool_c)}${r.enabled ? '' : ' · disabled'}`,
          'aria-label': `${r.name}, ${SHORT[i]} ${timeText}, ${setpointText(r.heat_c, r.cool_c)}${r.enabled ? '' : ', disabled'}. Edit`,
          style: {
            top: `${(it.s / DAY_MIN) * 100}%`,
            height: `${((it.e - it.s) / DAY_MIN) * 100}%`,
            left: `calc(var(--strip-w) + (100% - var(--strip-w)) * ${it.lane / n})`,
            width: `calc((100% - var(--strip-w)) / ${n} - 2px)`,
            '--rule-color': ruleColor(r.id),
          },
        },
        el('span', { class: 'block-name', text: r.name }), ' ',
        el('span', { class: 'block-meta', text: `${timeText} ${r.heat_c !== null && r.heat_c !== undefined ? fmtTemp(r.heat_c) : ''}` }));
        // Hatch the parts where another rule wins (this one is beaten there).
        if (r.enabled) {
          for (const p of tlPieces) {
            if (p.date !== date || p.winner.id === r.id && p.winner.layer !== 'override') continue;
            const s = Math.max(p.s, it.s);
            const e = Math.min(p.e, it.e);
            if (e <= s) continue;
            block.append(el('span', {
              class: 'beaten-part',
              'aria-hidden': 'true',
              title: `beaten by ${p.winner.name}`,
              style: { top: `${((s - it.s) / (it.e - it.s)) * 100}%`, height: `${((e - s) / (it.e - it.s)) * 100}%` },
            }));
          }
        }
        block.addEventListener('click', () => {
          if (dragJustEnded) {
            dragJustEnded = false;
            return;
          }
          openEditor(r);
        });
        if (r.when.type === 'weekly') enableDrag(block, r);
        cols[i].append(block);
      }
    });

    weekEl.replaceChildren(...head, axis, ...cols);
    weekEl.setAttribute('aria-label', `Week of ${dayLabel(first)}`);

    unplaced.replaceChildren();
    const crons = rules.filter((r) => r.when.type === 'cron');
    if (notDrawn.length || crons.length) {
      const ul = el('ul', { class: 'unplaced-list' });
      for (const r of new Set([...crons, ...notDrawn])) {
        const b = el('button', { type: 'button', class: 'btn btn-quiet', 'data-edit-rule': r.id, text: `${r.name}: ${whenSummary(r)}${r.enabled ? '' : ' (disabled)'}` });
        b.addEventListener('click', () => openEditor(r));
        ul.append(el('li', {}, b));
      }
      unplaced.append(el('h3', { text: 'Repeating (cron) and other rules' }), ul);
    }

    // On a phone the grid scrolls sideways: show today first, once.
    if (!scrolledToToday && weekScroll.scrollWidth > weekScroll.clientWidth) {
      const col = weekEl.querySelector('.week-day.today');
      if (col) weekScroll.scrollLeft = Math.max(0, col.offsetLeft - 48);
      scrolledToToday = true;
    }
  }

  // Dragging a weekly block with a mouse or pen moves the rule: up/down in 15-minute steps,
  // sideways by whole days. The editor then opens with the moved times to confirm. Touch is
  // left to scrolling (the grid scrolls sideways on a phone); a tap opens the editor.
  let dragJustEnded = false;
  function enableDrag(block, rule) {
    block.addEventListener('pointerdown', (down) => {
      if (down.pointerType === 'touch' || down.button !== 0) return;
      const col = block.parentElement;
      const rect = col.getBoundingClientRect();
      const perMin = rect.height / DAY_MIN;
      let moved = false;
      let dMin = 0;
      let dDay = 0;
      const move = (ev) => {
        const dx = ev.clientX - down.clientX;
        const dy = ev.clientY - down.clientY;
        if (!moved && Math.hypot(dx, dy) < 8) return;
        if (!moved) {
          moved = true;
          block.setPointerCapture(down.pointerId);
          block.classList.add('dragging');
        }
        ev.preventDefault();
        dMin = Math.round(dy / perMin / 15) * 15;
        dDay = Math.round(dx / rect.width);
        block.style.transform = `translate(${dDay * rect.width}px, ${dMin * perMin}px)`;
      };
      const up = () => {
        block.removeEventListener('pointermove', move);
        block.removeEventListener('pointerup', up);
        block.removeEventListener('pointercancel', up);
        if (!moved) return;
        dragJustEnded = true;
        block.classList.remove('dragging');
        block.style.transform = '';
        if (!dMin && !dDay) return;
        const w = rule.when;
        const start = minutes(w.start) + dMin;
        const end = minutes(w.end) + dMin;
        // A start pushed past midnight moves the rule's days too.
        const shift = dDay + Math.floor(start / DAY_MIN);
        const wrap = (m) => ((m % DAY_MIN) + DAY_MIN) % DAY_MIN;
        const days = w.days.map((d) => WEEKDAYS[(((WEEKDAYS.indexOf(d) + shift) % 7) + 7) % 7]);
        openEditor(rule, { type: 'weekly', days, start: hhmm(wrap(start)), end: hhmm(wrap(end)) });
      };
      block.addEventListener('pointermove', move);
      block.addEventListener('pointerup', up);
      block.addEventListener('pointercancel', up);
    });
  }

  function renderRuleList() {
    ruleList.replaceChildren();
    if (!rules.length) {
      ruleList.append(el('li', { class: 'muted', text: 'No rules yet: the default target is in force all the time. Add one.' }));
      return;
    }
    const rank = { date: 0, day: 1, every_day: 2 };
    for (const r of [...rules].sort((a, b) => (rank[a.layer] ?? 3) - (rank[b.layer] ?? 3) || a.name.localeCompare(b.name))) {
      const b = el('button', { type: 'button', class: `rule-item${r.enabled ? '' : ' disabled'}`, 'data-edit-rule': r.id },
        el('span', { class: 'rule-swatch', 'aria-hidden': 'true', style: { background: ruleColor(r.id) } }),
        el('span', { class: 'rule-name', text: r.name }),
        el('span', { class: 'rule-when muted', text: whenSummary(r) }),
        el('span', { class: 'rule-temp', text: setpointText(r.heat_c, r.cool_c) }),
        el('span', { class: 'rule-layer muted', text: `${LAYER_NAMES[r.layer] || r.layer}${r.enabled ? '' : ' · disabled'}` }));
      b.addEventListener('click', () => openEditor(r));
      ruleList.append(el('li', {}, b));
    }
  }

  function renderOverrides(list) {
    overrideList.replaceChildren();
    const now = Date.now();
    const live = list.filter((o) => !o.end || Date.parse(o.end) > now);
    if (!live.length) {
      overrideList.append(el('li', { class: 'muted', text: 'None: the schedule is in force.' }));
      return;
    }
    for (const o of live) {
      const started = Date.parse(o.start) <= now;
      const when = `${started ? 'since' : 'from'} ${fmtDay(o.start)} ${fmtTime(o.start)}${o.end ? ` until ${fmtDay(o.end)} ${fmtTime(o.end)}` : ', until ended'}`;
      const btn = el('button', { type: 'button', class: 'btn override-end', 'data-override-id': o.id, 'aria-label': `End override ${setpointText(o.heat_c, o.cool_c)}`, text: 'End' });
      const err = el('span', { class: 'form-error', role: 'alert' });
      btn.addEventListener('click', async () => {
        btn.disabled = true;
        err.textContent = '';
        try {
          await api('DELETE', `/v1/overrides/${o.id}`);
          scheduleRender(0);
        } catch (e) {
          err.textContent = e.message;
          btn.disabled = false;
        }
      });
      overrideList.append(el('li', { class: 'override-item' },
        el('span', { class: 'ovr-temp', text: setpointText(o.heat_c, o.cool_c) }),
        el('span', { class: 'ovr-when muted', text: when }), btn, err));
    }
  }

  let defaultTarget = null;
  function renderDefault(def) {
    if (!def) return;
    defaultTarget = def;
    // Never overwrite what the user is typing there.
    const heat = $('#default-heat');
    const cool = $('#default-cool');
    if (!defForm.contains(document.activeElement) && !defForm.dataset.dirty) {
      heat.value = def.heat_c;
      cool.value = def.cool_c;
    }
  }

  defForm.addEventListener('input', () => {
    defForm.dataset.dirty = '1';
  });
  defForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const errEl = $('#default-error');
    errEl.textContent = '';
    const save = $('#default-save');
    save.disabled = true;
    try {
      await api('PUT', '/v1/schedule/default', {
        heat_c: numOrNull($('#default-heat')),
        cool_c: numOrNull($('#default-cool')),
        sensors: defaultTarget ? defaultTarget.sensors || [] : [],
      });
      delete defForm.dataset.dirty;
      scheduleRender(0);
    } catch (e) {
      errEl.textContent = e.message;
    } finally {
      save.disabled = false;
    }
  });

  // ---- editor -----------------------------------------------------------------------

  function showType(type) {
    for (const fs of form.querySelectorAll('fieldset.when')) fs.hidden = true;
    if (type === 'weekly') {
      $('.when-weekly').hidden = false;
      $('.when-times').hidden = false;
    } else if (type === 'exception') {
      $('.when-exception').hidden = false;
      $('.when-times').hidden = false;
    } else if (type === 'cron') {
      $('.when-cron').hidden = false;
    } else if (type === 'vacation') {
      $('.when-vacation').hidden = false;
    }
    syncAllDay();
  }

  function syncAllDay() {
    const allDay = $('#rule-type').value === 'exception' && $('#rule-allday').checked;
    $('#rule-start').disabled = allDay;
    $('#rule-end').disabled = allDay;
  }

  function renderSensorPicks(selected) {
    const box = $('.sensor-picks');
    box.replaceChildren();
    if (!sensors.length) {
      box.append(el('p', { class: 'muted', text: 'No sensors known yet.' }));
      return;
    }
    for (const s of sensors) {
      const sel = selected.find((x) => x.sensor_id === s.id);
      const name = s.name || s.alias || s.id;
      const check = el('input', { type: 'checkbox', name: 'sensor', value: s.id, checked: Boolean(sel) });
      const weight = el('input', { type: 'number', class: 'sensor-pick-weight', step: '0.5', inputmode: 'decimal', 'aria-label': `Weight of ${name}`, value: sel ? sel.weight ?? 1 : 1 });
      box.append(el('div', { class: 'sensor-pick' }, el('label', { class: 'check' }, check, ` ${name}`), weight));
    }
  }

  /** Opens the editor for `rule` (null: a new one); `movedWhen` replaces its `when` after a
   * drag, so the move is only stored once the user saves it. */
  function openEditor(rule, movedWhen = null) {
    editing = rule || null;
    form.reset();
    errorEl.textContent = '';
    noteEl.textContent = '';
    $('#rule-form-title').textContent = rule ? `Edit “${rule.name}”` : 'Add rule';
    $('#rule-delete').hidden = !rule;
    const today = new Date();
    const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
    // Sensible starting values so a new rule needs few taps.
    $('#rule-date').value = iso(today);
    $('#rule-from').value = `${iso(today)}T18:00`;
    $('#rule-to').value = `${iso(new Date(today.getTime() + 7 * 86400e3))}T12:00`;
    $('#rule-duration').value = '60';
    $('#rule-enabled').checked = true;
    if (!rule) {
      // Name, times and setpoints start empty (form.reset above): typed values then never get
      // appended to a pre-filled one.
      $('#rule-type').value = 'weekly';
      renderSensorPicks([]);
    } else {
      const w = movedWhen || rule.when;
      if (movedWhen) noteEl.textContent = `Moved to ${whenSummary({ when: movedWhen })}. Save to keep it.`;
      $('#rule-name').value = rule.name;
      $('#rule-type').value = w.type;
      $('#rule-heat').value = rule.heat_c ?? '';
      $('#rule-cool').value = rule.cool_c ?? '';
      $('#rule-enabled').checked = rule.enabled !== false;
      if (w.type === 'weekly') {
        for (const c of form.querySelectorAll('input[name=day]')) c.checked = w.days.includes(c.value);
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
      renderSensorPicks(rule.sensors || []);
    }
    showType($('#rule-type').value);
    if (!dialog.open) dialog.showModal();
    $('#rule-name').focus();
  }

  function closeEditor() {
    if (dialog.open) dialog.close();
    editing = null;
  }

  /** The rule as typed. No checks beyond reading the fields: the engine's messages are the
   * ones people should see, so an empty or odd value is sent as it is (or as null). */
  function formBody() {
    const type = $('#rule-type').value;
    let when;
    if (type === 'weekly') {
      when = {
        type,
        days: [...form.querySelectorAll('input[name=day]:checked')].map((c) => c.value),
        start: $('#rule-start').value,
        end: $('#rule-end').value,
      };
    } else if (type === 'cron') {
      const dur = $('#rule-duration').value.trim();
      when = { type, expr: $('#rule-cron').value.trim(), duration_min: dur === '' ? null : Number(dur) };
    } else if (type === 'exception') {
      const allDay = $('#rule-allday').checked;
      when = {
        type,
        date: $('#rule-date').value,
        start: allDay ? null : $('#rule-start').value || null,
        end: allDay ? null : $('#rule-end').value || null,
      };
    } else {
      when = { type, start: $('#rule-from').value, end: $('#rule-to').value };
    }
    const picks = [...form.querySelectorAll('.sensor-pick')]
      .filter((p) => p.querySelector('input[name=sensor]').checked)
      .map((p) => {
        const w = numOrNull(p.querySelector('.sensor-pick-weight'));
        return { sensor_id: p.querySelector('input[name=sensor]').value, weight: w ?? 1 };
      });
    return {
      name: $('#rule-name').value.trim(),
      enabled: $('#rule-enabled').checked,
      when,
      heat_c: numOrNull($('#rule-heat')),
      cool_c: numOrNull($('#rule-cool')),
      sensors: picks,
    };
  }

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    errorEl.textContent = '';
    const save = $('#rule-save');
    save.disabled = true;
    try {
      const body = formBody();
      if (editing) await api('PUT', `/v1/schedules/${editing.id}`, body);
      else await api('POST', '/v1/schedules', body);
      closeEditor();
      await render();
    } catch (e) {
      // The form stays open with everything as typed; the engine's text says what to fix.
      errorEl.textContent = e.message;
      errorEl.scrollIntoView({ block: 'nearest' });
    } finally {
      save.disabled = false;
    }
  });

  $('#rule-delete').addEventListener('click', async () => {
    if (!editing) return;
    errorEl.textContent = '';
    try {
      await api('DELETE', `/v1/schedules/${editing.id}`);
      closeEditor();
      await render();
    } catch (e) {
      errorEl.textContent = e.message;
    }
  });
  $('#rule-cancel').addEventListener('click', closeEditor);
  $('#rule-type').addEventListener('change', (ev) => showType(ev.target.value));
  $('#rule-allday').addEventListener('change', syncAllDay);
  for (const b of form.querySelectorAll('button[data-days]')) {
    b.addEventListener('click', () => {
      const want = b.dataset.days.split(',').map((i) => WEEKDAYS[Number(i)]);
      for (const c of form.querySelectorAll('input[name=day]')) c.checked = want.includes(c.value);
    });
  }
  $('#rule-add').addEventListener('click', () => openEditor(null));
  for (const b of view.querySelectorAll('button[data-week]')) {
    b.addEventListener('click', () => {
      const d = Number(b.dataset.week);
      weekOffset = d === 0 ? 0 : weekOffset + d;
      scrolledToToday = false;
      scheduleRender(0);
    });
  }

  // ---- live -------------------------------------------------------------------------

  // Another device edited something (or events were missed): re-read, once per burst. The
  // editor dialog is left alone so nobody loses what they are typing.
  let timer = null;
  function scheduleRender(delay = 300) {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      if (alive) render();
    }, delay);
  }
  const offs = [on('changed', () => scheduleRender()), on('lagged', () => scheduleRender())];
  // The timeline moves on as time passes: refresh it every few minutes.
  const tick = setInterval(() => {
    if (!document.hidden && !dialog.open) scheduleRender(0);
  }, 5 * 60e3);

  showType('weekly');
  await render();

  return () => {
    alive = false;
    clearTimeout(timer);
    clearInterval(tick);
    for (const off of offs) off();
    if (dialog.open) dialog.close();
  };
}
