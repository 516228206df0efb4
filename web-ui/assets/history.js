// History view: every sensor's temperature over the last hour, 6 hours, day, week or month
// (downsampled by the engine), the setpoint in force as a step line, heating/cooling runs as
// bands, and the runtime per period of that range. The chart zooms (drag across it, Ctrl +
// wheel, the buttons, or + / − / 0 on the focused chart); each zoom re-reads the readings for
// the span shown, so a zoomed month has the detail of an hour.
//
// Layout: the state (range, zoom) and its pure derivations; the loaders (engine → chart data);
// the skeleton and renderers; the actions (range, zoom, live updates) wired in mount().

import { api, on } from "./api.js";
import { fmtDay, fmtDayTime, fmtDuration, fmtTime } from "./format.js";
import { timeChart, barChart, HEAT_COLOR, COOL_COLOR } from "./chart.js";
import { clampSpan, scaleSpan } from "./chart-scale.js";
import { h } from "./dom.js";

const MIN = 60e3;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
/** The ranges offered, and the runtime shown under each: per period of the engine's
 * `GET /v1/analytics/periods` for the short ones, per day for the long ones. */
const RANGES = {
  '1h': { ms: HOUR, title: '1 h', label: 'the last hour', runtime: { hours: 1, period_min: 5 } },
  '6h': { ms: 6 * HOUR, title: '6 h', label: 'the last 6 hours', runtime: { hours: 6, period_min: 30 } },
  day: { ms: DAY, title: 'Day', label: 'the last day', runtime: { hours: 24, period_min: 60 } },
  week: { ms: 7 * DAY, title: 'Week', label: 'the last week', runtime: { days: 7 } },
  month: { ms: 30 * DAY, title: 'Month', label: 'the last 30 days', runtime: { days: 30 } },
};
const DEFAULT_RANGE = 'day';
/** The narrowest zoom: a few minutes still hold dozens of readings. */
const MIN_SPAN = 5 * MIN;
// The engine returns at most 1000 decisions per request; a month of a busy system holds a few
// thousand, so the setpoint line is read in pages, up to this many.
const DECISION_PAGES = 6;
const DECISION_PAGE = 1000;

function sensorLabel(s) {
  return s.name || s.alias || s.id;
}

function qs(params) {
  return new URLSearchParams(params).toString();
}

/** "Mon 21 Nov, 14:05–14:35", or with both days when the span crosses one. */
function spanText(from, to) {
  return fmtDay(from) === fmtDay(to)
    ? `${fmtDay(from)}, ${fmtTime(from)}–${fmtTime(to)}`
    : `${fmtDayTime(from)} – ${fmtDayTime(to)}`;
}

/** Runtime per period as the engine reports it: "per 5 minutes", "per half hour", "per day". */
function perText(runtime) {
  if (runtime.days) return 'per day';
  if (runtime.period_min === 60) return 'per hour';
  if (runtime.period_min === 30) return 'per half hour';
  return `per ${runtime.period_min} minutes`;
}

/** Setpoint steps over [from, to) from the recorded decisions (the setpoints really used). */
async function loadSetpoints(from, to) {
  const all = [];
  let cursor = to;
  for (let page = 0; page < DECISION_PAGES; page++) {
    const batch = await api('GET', `/v1/control/decisions?${qs({ from, to: cursor, limit: DECISION_PAGE })}`);
    all.push(...batch);
    if (batch.length < DECISION_PAGE) break;
    // Newest first: the next page ends before the oldest one seen ("to" is exclusive).
    cursor = batch[batch.length - 1].at;
  }
  // The decision in force when the range starts, so the line begins at the left edge.
  const before = await api('GET', `/v1/control/decisions?${qs({ to: from, limit: 1 })}`);
  all.push(...before);
  all.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return setpointSteps(all, from);
}

/** Decisions (oldest first) → the heat and cool step lines, and whether cooling matters. */
function setpointSteps(decisions, from) {
  const heat = [];
  const cool = [];
  let usesCool = false;
  for (const d of decisions) {
    const t = Math.max(Date.parse(d.at), Date.parse(from));
    if (!heat.length || heat[heat.length - 1].v !== d.heat_setpoint_c) heat.push({ t, v: d.heat_setpoint_c });
    if (!cool.length || cool[cool.length - 1].v !== d.cool_setpoint_c) cool.push({ t, v: d.cool_setpoint_c });
    if (d.mode === 'cool' || d.mode === 'auto' || d.cool) usesCool = true;
  }
  return { heat, cool, usesCool, count: decisions.length };
}

/** The runtime rows of a range: `{key, label, title, system, row}` from either analytics route. */
async function loadRuntime(runtime) {
  if (runtime.days) {
    const stats = await api('GET', `/v1/analytics/daily?${qs({ days: runtime.days })}`);
    return stats.map((row) => ({
      key: row.date,
      label: fmtDay(`${row.date}T12:00:00`).replace(/\s+\S+$/, ''),
      title: fmtDay(`${row.date}T12:00:00`),
      system: row.system,
      row,
    }));
  }
  const stats = await api('GET', `/v1/analytics/periods?${qs(runtime)}`);
  return stats.map((row) => ({
    key: row.start,
    label: fmtTime(row.start),
    title: `${fmtTime(row.start)}–${fmtTime(row.end)}`,
    system: row.system,
    row,
  }));
}

/** Everything the chart draws over [fromMs, toMs], read from the engine: { data, sensors }. */
async function loadChartData(fromMs, toMs, label) {
  const from = new Date(fromMs).toISOString();
  const to = new Date(toMs).toISOString();
  const sensors = await api('GET', '/v1/sensors');
  const [pages, runs, sp] = await Promise.all([
    // One sensor's failure leaves its series empty instead of blanking the whole chart.
    Promise.all(sensors.map((s) => api('GET', `/v1/sensors/${encodeURIComponent(s.id)}/readings?${qs({ from, to, max_points: 400 })}`)
      .catch(() => ({ bucket_s: 0, points: [] })))),
    api('GET', `/v1/runs?${qs({ from, to })}`),
    loadSetpoints(from, to),
  ]);
  const series = sensors.map((s, i) => ({
    id: s.id,
    label: sensorLabel(s),
    bucketS: pages[i].bucket_s,
    points: pages[i].points.map((p) => ({ t: Date.parse(p.at), mean: p.mean, min: p.min, max: p.max })),
  }));
  const setpoints = [{ kind: 'heat', label: 'Heat target', steps: sp.heat }];
  if (sp.usesCool || runs.some((x) => x.system === 'cool')) setpoints.push({ kind: 'cool', label: 'Cool target', steps: sp.cool });
  const data = {
    from: fromMs,
    to: toMs,
    rangeLabel: label,
    series,
    setpoints,
    runs: runs.map((x) => ({ system: x.system, start: Date.parse(x.start), end: x.end ? Date.parse(x.end) : null })),
  };
  return { data, sensors: sensors.length };
}

// ----- skeleton ----------------------------------------------------------------------------

function runtimeTable() {
  const tbody = h('tbody');
  const firstCol = h('th', { scope: 'col', text: 'Day' });
  const details = h('details', { class: 'history-details' },
    h('summary', { text: 'Runtime, cycles per hour, duty cycle' }),
    h('div', { class: 'table-scroll' },
      h('table', { class: 'history-table' },
        h('caption', { class: 'visually-hidden', text: 'Runtime, cycles per hour and duty cycle' }),
        h('thead', {}, h('tr', {}, firstCol,
          ['System', 'Runtime', 'Cycles', 'Cycles/h', 'Duty', 'Rate'].map((t) => h('th', { scope: 'col', text: t })))),
        tbody)));
  return { tbody, firstCol, details };
}

/** The page's elements, empty; renderers fill them. */
function skeleton() {
  const zoomButton = (id, label, symbol) =>
    h('button', { type: 'button', id, class: 'btn zoom-btn', 'aria-label': label, title: label },
      h('span', { 'aria-hidden': 'true', text: symbol }));
  const els = {
    rangeButtons: Object.entries(RANGES).map(([key, r]) =>
      h('button', { type: 'button', 'data-range': key, 'aria-pressed': 'false', text: r.title })),
    chartBox: h('div', { id: 'history-chart', class: 'chart-box', 'aria-busy': 'true' }),
    status: h('p', { class: 'history-status muted', role: 'status' }),
    spanEl: h('span', { id: 'history-span', class: 'history-span' }),
    zoomOut: zoomButton('history-zoom-out', 'Zoom out', '−'),
    zoomIn: zoomButton('history-zoom-in', 'Zoom in', '+'),
    zoomReset: h('button', { type: 'button', id: 'history-zoom-reset', class: 'btn', text: 'Whole range' }),
    runtimeTitle: h('h2', { id: 'history-runtime-title', text: 'Runtime' }),
    runtimeBox: h('div', { id: 'history-runtime', class: 'chart-box chart-box-small' }),
    ...runtimeTable(),
  };
  els.root = h('section', { class: 'history-view' },
    h('header', { class: 'view-head' }, h('h1', { text: 'History' }),
      h('div', { class: 'range-group', role: 'group', 'aria-label': 'Range' }, els.rangeButtons)),
    h('div', { class: 'zoom-bar', role: 'group', 'aria-label': 'Zoom' }, els.spanEl,
      h('span', { class: 'zoom-buttons' }, els.zoomOut, els.zoomIn, els.zoomReset)),
    els.chartBox,
    h('p', { class: 'history-hint muted', text: 'Drag across the chart to zoom into a span.' }),
    els.status,
    h('section', { class: 'history-analytics', 'aria-labelledby': 'history-runtime-title' }, els.runtimeTitle, els.runtimeBox, els.details));
  return els;
}

// ----- state -------------------------------------------------------------------------------

/** The whole range of the state's range: [now − range, now]. */
const whole = (st, now = Date.now()) => ({ from: now - RANGES[st.range].ms, to: now });
/** The span the chart shows. */
const shown = (st) => st.zoom || whole(st);

// ----- rendering ---------------------------------------------------------------------------

function renderRange(v) {
  for (const b of v.els.rangeButtons) b.setAttribute('aria-pressed', String(b.dataset.range === v.st.range));
}

function renderZoom(v) {
  const { st, els } = v;
  const { from, to } = shown(st);
  const r = RANGES[st.range];
  els.spanEl.textContent = st.zoom ? `Zoomed: ${spanText(from, to)}` : `Showing ${r.label}`;
  els.zoomIn.disabled = to - from <= MIN_SPAN;
  els.zoomOut.disabled = !st.zoom;
  els.zoomReset.disabled = !st.zoom;
}

function renderChart(v, data, sensorCount) {
  const { st, els } = v;
  const points = data.series.reduce((a, s) => a + s.points.filter((p) => p.mean !== null).length, 0);
  if (!sensorCount) els.status.textContent = 'No sensors yet.';
  else if (!points) els.status.textContent = `No readings for ${data.rangeLabel}.`;
  else els.status.textContent = '';
  // What the chart shows, for people's tools and the tests: the span in ISO form.
  els.chartBox.dataset.from = new Date(data.from).toISOString();
  els.chartBox.dataset.to = new Date(data.to).toISOString();
  if (st.chart) st.chart.update(data);
  else st.chart = timeChart(els.chartBox, data, { onZoom: (a, b) => zoomTo(v, a, b), onReset: () => resetZoom(v) });
}

/** The runtime bars and the table (newest first: that is the one people look for). */
function renderRuntime(v, rows) {
  const { st, els } = v;
  const r = RANGES[st.range];
  if (st.bars) st.bars.destroy();
  st.bars = null;
  els.tbody.replaceChildren();
  const keys = [...new Set(rows.map((x) => x.key))].sort();
  if (!keys.length) {
    els.runtimeBox.replaceChildren(h('p', { class: 'empty muted', text: 'No heating or cooling runs yet.' }));
    return;
  }
  const labels = new Map(rows.map((x) => [x.key, x.label]));
  const bySys = (sys) => keys.map((k) => rows.find((x) => x.key === k && x.system === sys)?.row.runtime_s ?? 0);
  const stacks = [];
  if (rows.some((x) => x.system === 'heat')) stacks.push({ label: 'Heating', color: HEAT_COLOR, values: bySys('heat') });
  if (rows.some((x) => x.system === 'cool')) stacks.push({ label: 'Cooling', color: COOL_COLOR, values: bySys('cool') });
  const total = rows.reduce((a, x) => a + x.row.runtime_s, 0);
  st.bars = barChart(els.runtimeBox, {
    labels: keys.map((k) => labels.get(k)),
    stacks,
    duration: true,
    ariaLabel: `Runtime ${perText(r.runtime)} over ${r.label}, ${fmtDuration(total)} in all.`,
  });
  // A short table is shown; a long one stays folded under the chart.
  els.details.open = rows.length <= 14;
  const newestFirst = [...rows].sort((a, b) => (a.key < b.key ? 1 : a.key > b.key ? -1 : 0));
  els.tbody.append(...newestFirst.map(runtimeRow));
}

function runtimeRow(x) {
  const s = x.row;
  const cells = [
    x.title,
    s.system === 'cool' ? 'Cooling' : 'Heating',
    fmtDuration(s.runtime_s),
    String(s.cycles),
    s.cycles_per_hour.toFixed(2),
    `${Math.round(s.duty_cycle * 100)} %`,
    s.rate_c_per_h === null || s.rate_c_per_h === undefined ? '—' : `${s.rate_c_per_h.toFixed(1)} °C/h`,
  ];
  return h('tr', {}, cells.map((c) => h('td', { text: c })));
}

// ----- actions -----------------------------------------------------------------------------

async function loadChart(v) {
  const { st, els } = v;
  const gen = ++st.generation;
  const { from, to } = shown(st);
  const label = st.zoom ? spanText(from, to) : RANGES[st.range].label;
  renderZoom(v);
  els.chartBox.setAttribute('aria-busy', 'true');
  try {
    const { data, sensors } = await loadChartData(from, to, label);
    if (!st.alive || gen !== st.generation) return;
    renderChart(v, data, sensors);
  } catch (e) {
    if (!st.alive || gen !== st.generation) return;
    els.status.textContent = `Could not load the history: ${e.message}`;
  } finally {
    if (gen === st.generation) els.chartBox.setAttribute('aria-busy', 'false');
  }
}

async function loadAnalytics(v) {
  const { st, els } = v;
  const r = RANGES[st.range];
  els.runtimeTitle.textContent = `Runtime ${perText(r.runtime)}`;
  els.firstCol.textContent = r.runtime.days ? 'Day' : 'Time';
  try {
    const rows = await loadRuntime(r.runtime);
    if (st.alive) renderRuntime(v, rows);
  } catch (e) {
    if (st.alive) els.runtimeBox.replaceChildren(h('p', { class: 'view-error', text: `Could not load the runtime: ${e.message}` }));
  }
}

/** Show [from, to], kept inside the range and at least MIN_SPAN wide; the whole range again
 * when it covers it. */
function zoomTo(v, from, to) {
  v.st.zoom = clampSpan(from, to, whole(v.st), MIN_SPAN);
  loadChart(v);
}

/** The buttons: a span `factor` times as wide (0.5: in, 2: out) around the middle. */
function zoomBy(v, factor) {
  const { from, to } = scaleSpan(shown(v.st), factor);
  zoomTo(v, from, to);
}

function resetZoom(v) {
  if (!v.st.zoom) return;
  v.st.zoom = null;
  loadChart(v);
}

function reload(v) {
  loadChart(v);
  loadAnalytics(v);
}

function chooseRange(v, range) {
  v.st.range = range;
  v.st.zoom = null;
  renderRange(v);
  // The range is in the address (a reload or a bookmark keeps it) without a navigation.
  history.replaceState(null, '', `#/history?range=${range}`);
  reload(v);
}

/** Live: new readings and decisions arrive all the time; re-read the chart at most once a
 * minute for them (the engine downsamples anyway), at once after a gap in the stream. A zoomed
 * chart stays where it was put. Returns the cleanup. */
function followEvents(v) {
  const { st } = v;
  let pending = null;
  const soon = () => {
    if (pending || st.zoom) return;
    pending = setTimeout(() => {
      pending = null;
      if (st.alive && !document.hidden && !st.zoom) loadChart(v);
    }, 60e3);
  };
  const offs = [on('reading', soon), on('decision', soon), on('relay', soon), on('lagged', () => reload(v))];
  return () => {
    clearTimeout(pending);
    for (const off of offs) off();
  };
}

export async function mount(el, ctx) {
  const asked = ctx?.params?.get('range');
  const st = {
    range: asked && RANGES[asked] ? asked : DEFAULT_RANGE,
    /** The zoomed span {from, to} (epoch ms), or null for the whole range up to now. */
    zoom: null,
    chart: null,
    bars: null,
    alive: true,
    generation: 0,
  };
  const v = { st, els: skeleton() };
  el.replaceChildren(v.els.root);
  const { els } = v;
  els.zoomIn.addEventListener('click', () => zoomBy(v, 0.5));
  els.zoomOut.addEventListener('click', () => zoomBy(v, 2));
  els.zoomReset.addEventListener('click', () => resetZoom(v));
  for (const b of els.rangeButtons) b.addEventListener('click', () => chooseRange(v, b.dataset.range));
  const stopEvents = followEvents(v);
  renderRange(v);
  reload(v);
  return () => {
    st.alive = false;
    stopEvents();
    if (st.chart) st.chart.destroy();
    if (st.bars) st.bars.destroy();
  };
}
