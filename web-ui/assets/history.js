// History view: every sensor's temperature over a day/week/month (downsampled by the engine),
// the setpoint in force as a step line, heating/cooling runs as bands, and runtime analytics
// per day.

import { api, on, fmtDay } from "./api.js";
import { timeChart, barChart, HEAT_COLOR, COOL_COLOR } from "./chart.js";

const HOUR = 3600e3;
const RANGES = {
  day: { ms: 24 * HOUR, label: 'the last day', days: 7 },
  week: { ms: 7 * 24 * HOUR, label: 'the last week', days: 7 },
  month: { ms: 30 * 24 * HOUR, label: 'the last 30 days', days: 30 },
};
// The engine returns at most 1000 decisions per request; a month of a busy system holds a few
// thousand, so the setpoint line is read in pages, up to this many.
const DECISION_PAGES = 6;
const DECISION_PAGE = 1000;

function sensorLabel(s) {
  return s.name || s.alias || s.id;
}

function fmtDuration(s) {
  if (s === 0) return '0 min';
  if (s < 60) return `${Math.round(s)} s`;
  const h = Math.floor(s / 3600);
  const min = Math.round((s % 3600) / 60);
  return h ? `${h} h ${String(min).padStart(2, '0')} min` : `${min} min`;
}

function qs(params) {
  return new URLSearchParams(params).toString();
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
  const heat = [];
  const cool = [];
  let usesCool = false;
  for (const d of all) {
    const t = Math.max(Date.parse(d.at), Date.parse(from));
    if (!heat.length || heat[heat.length - 1].v !== d.heat_setpoint_c) heat.push({ t, v: d.heat_setpoint_c });
    if (!cool.length || cool[cool.length - 1].v !== d.cool_setpoint_c) cool.push({ t, v: d.cool_setpoint_c });
    if (d.mode === 'cool' || d.mode === 'auto' || d.cool) usesCool = true;
  }
  return { heat, cool, usesCool, count: all.length };
}

export async function mount(el) {
  el.replaceChildren();
  const root = document.createElement('section');
  root.className = 'history-view';
  root.innerHTML = `
    <header class="view-head">
      <h1>History</h1>
      <div class="range-group" role="group" aria-label="Range">
        <button type="button" data-range="day" aria-pressed="true">Day</button>
        <button type="button" data-range="week" aria-pressed="false">Week</button>
        <button type="button" data-range="month" aria-pressed="false">Month</button>
      </div>
    </header>
    <div id="history-chart" class="chart-box" aria-busy="true"></div>
    <p class="history-status muted" role="status"></p>
    <section class="history-analytics" aria-labelledby="history-runtime-title">
      <h2 id="history-runtime-title">Runtime per day</h2>
      <div id="history-runtime" class="chart-box chart-box-small"></div>
      <details class="history-details">
      <summary>Per day: runtime, cycles per hour, duty cycle</summary>
      <div class="table-scroll">
        <table class="history-table">
          <caption class="visually-hidden">Runtime, cycles per hour and duty cycle per day</caption>
          <thead><tr><th scope="col">Day</th><th scope="col">System</th><th scope="col">Runtime</th>
            <th scope="col">Cycles</th><th scope="col">Cycles/h</th><th scope="col">Duty</th>
            <th scope="col">Rate</th></tr></thead>
          <tbody></tbody>
        </table>
      </div>
      </details>
    </section>`;
  el.appendChild(root);

  const chartBox = root.querySelector('#history-chart');
  const status = root.querySelector('.history-status');
  const runtimeBox = root.querySelector('#history-runtime');
  const tbody = root.querySelector('tbody');
  const buttons = [...root.querySelectorAll('button[data-range]')];

  let range = 'day';
  let chart = null;
  let bars = null;
  let alive = true;
  let generation = 0;

  async function loadChart() {
    const gen = ++generation;
    const r = RANGES[range];
    const toMs = Date.now();
    const to = new Date(toMs).toISOString();
    const from = new Date(toMs - r.ms).toISOString();
    chartBox.setAttribute('aria-busy', 'true');
    try {
      const sensors = await api('GET', '/v1/sensors');
      const [pages, runs, sp] = await Promise.all([
        // One sensor's failure leaves its series empty instead of blanking the whole chart.
        Promise.all(sensors.map((s) => api('GET', `/v1/sensors/${encodeURIComponent(s.id)}/readings?${qs({ from, to, max_points: 400 })}`)
          .catch(() => ({ bucket_s: 0, points: [] })))),
        api('GET', `/v1/runs?${qs({ from, to })}`),
        loadSetpoints(from, to),
      ]);
      if (!alive || gen !== generation) return;
      const series = sensors.map((s, i) => ({
        id: s.id,
        label: sensorLabel(s),
        bucketS: pages[i].bucket_s,
        points: pages[i].points.map((p) => ({ t: Date.parse(p.at), mean: p.mean, min: p.min, max: p.max })),
      }));
      const setpoints = [{ kind: 'heat', label: 'Heat target', steps: sp.heat }];
      if (sp.usesCool || runs.some((x) => x.system === 'cool')) setpoints.push({ kind: 'cool', label: 'Cool target', steps: sp.cool });
      const data = {
        from: Date.parse(from),
        to: toMs,
        rangeLabel: r.label,
        series,
        setpoints,
        runs: runs.map((x) => ({ system: x.system, start: Date.parse(x.start), end: x.end ? Date.parse(x.end) : null })),
      };
      const points = series.reduce((a, s) => a + s.points.filter((p) => p.mean !== null).length, 0);
      if (!sensors.length) status.textContent = 'No sensors yet.';
      else if (!points) status.textContent = `No readings yet for ${r.label}.`;
      else status.textContent = '';
      if (chart) chart.update(data);
      else chart = timeChart(chartBox, data);
    } catch (e) {
      if (!alive || gen !== generation) return;
      status.textContent = `Could not load the history: ${e.message}`;
    } finally {
      if (gen === generation) chartBox.setAttribute('aria-busy', 'false');
    }
  }

  async function loadAnalytics() {
    const r = RANGES[range];
    try {
      const stats = await api('GET', `/v1/analytics/daily?${qs({ days: r.days })}`);
      if (!alive) return;
      const dates = [...new Set(stats.map((s) => s.date))].sort();
      const bySys = (sys) => dates.map((d) => {
        const row = stats.find((s) => s.date === d && s.system === sys);
        return row ? row.runtime_s / 3600 : 0;
      });
      const label = (d) => fmtDay(`${d}T12:00:00`).replace(/\s+\S+$/, '');
      if (bars) bars.destroy();
      bars = null;
      tbody.replaceChildren();
      if (!dates.length) {
        runtimeBox.innerHTML = '<p class="empty muted">No heating or cooling runs yet.</p>';
        return;
      }
      // Axis ticks in hours: a new install's days hold seconds of runtime, a winter's hours.
      const fmtHours = (v) => {
        if (v === 0) return '0';
        if (v >= 1) return `${+v.toFixed(1)} h`;
        const min = v * 60;
        if (min >= 1) return `${+min.toFixed(min < 10 ? 1 : 0)} min`;
        return `${Math.round(min * 60)} s`;
      };
      const stacks = [];
      if (stats.some((s) => s.system === 'heat')) stacks.push({ label: 'Heating', color: HEAT_COLOR, values: bySys('heat') });
      if (stats.some((s) => s.system === 'cool')) stacks.push({ label: 'Cooling', color: COOL_COLOR, values: bySys('cool') });
      const total = stats.reduce((a, s) => a + s.runtime_s, 0);
      bars = barChart(runtimeBox, {
        labels: dates.map(label),
        stacks,
        format: fmtHours,
        ariaLabel: `Runtime per day over the last ${dates.length} days, ${fmtDuration(total)} in all.`,
      });
      // A week's table is short enough to show; a month's stays folded under the chart.
      root.querySelector('.history-details').open = dates.length <= 7;
      // Newest day first in the table: that is the one people look for.
      for (const s of [...stats].sort((a, b) => (a.date < b.date ? 1 : a.date > b.date ? -1 : 0))) {
        const tr = document.createElement('tr');
        const cells = [
          fmtDay(`${s.date}T12:00:00`),
          s.system === 'cool' ? 'Cooling' : 'Heating',
          fmtDuration(s.runtime_s),
          String(s.cycles),
          s.cycles_per_hour.toFixed(2),
          `${Math.round(s.duty_cycle * 100)} %`,
          s.rate_c_per_h === null || s.rate_c_per_h === undefined ? '—' : `${s.rate_c_per_h.toFixed(1)} °C/h`,
        ];
        for (const c of cells) {
          const td = document.createElement('td');
          td.textContent = c;
          tr.appendChild(td);
        }
        tbody.appendChild(tr);
      }
    } catch (e) {
      if (alive) runtimeBox.textContent = `Could not load the runtime: ${e.message}`;
    }
  }

  function reload() {
    loadChart();
    loadAnalytics();
  }

  for (const b of buttons) {
    b.addEventListener('click', () => {
      range = b.dataset.range;
      for (const o of buttons) o.setAttribute('aria-pressed', String(o === b));
      reload();
    });
  }

  // Live: new readings and decisions arrive all the time; re-read the chart at most once a
  // minute for them (the engine downsamples anyway), at once after a gap in the stream.
  let pending = null;
  const soon = () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      if (alive && !document.hidden) loadChart();
    }, 60e3);
  };
  const offs = [
    on('reading', soon),
    on('decision', soon),
    on('relay', soon),
    on('lagged', reload),
  ];

  reload();

  return () => {
    alive = false;
    clearTimeout(pending);
    for (const off of offs) off();
    if (chart) chart.destroy();
    if (bars) bars.destroy();
  };
}
