// Small dependency-free SVG charts for the History view.
//
// timeChart(): temperature series (mean line, min–max band for downsampled buckets), setpoint
// step lines, heating/cooling runs as vertical bands, local-time axis, °C axis, legend, a
// crosshair tooltip driven by pointer, touch and keyboard, and zoom requests (drag across the
// chart with a mouse or pen, Ctrl + wheel or a pinch on a touchpad, + / − / 0 on the focused
// chart) handed to the view, which re-reads its data for the new span.
// barChart(): stacked bars per category (runtime per day or per period), one unit per axis.
//
// The SVG is re-rendered at the container's pixel width (viewBox = real size), so text and
// strokes keep their size on a phone and on a wide screen instead of being stretched.

import { fmtDuration } from "./api.js";

const NS = 'http://www.w3.org/2000/svg';

// Colours are the stylesheet's (tokens.css, light and dark): these name its variables. They
// are applied through `style`, as SVG presentation attributes cannot hold var().
export const PALETTE = [1, 2, 3, 4, 5, 6, 7].map((i) => `var(--chart-series-${i})`);
export const HEAT_COLOR = 'var(--chart-heat)';
export const COOL_COLOR = 'var(--chart-cool)';
const HEAT_TARGET_COLOR = 'var(--chart-target-heat)';
const COOL_TARGET_COLOR = 'var(--chart-target-cool)';

const MINUTE = 60e3;
const HOUR = 3600e3;
const DAY = 24 * HOUR;
/** A drag shorter than this (px) is a click or a crosshair move, not a zoom. */
const DRAG_PX = 8;

function svgEl(name, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) e.setAttribute(k, String(v));
  }
  if (parent) parent.appendChild(e);
  return e;
}

function htmlEl(name, attrs = {}, text = null) {
  const e = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== null) e.textContent = text;
  return e;
}

/** "Nice" tick step (1, 2, 2.5, 5 × 10^n) giving about `count` ticks over `span`. */
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * mag >= raw) return m * mag;
  }
  return 10 * mag;
}

function fmtNum(v, digits = 1) {
  return Number(v).toFixed(digits);
}

function fmtC(v) {
  return v === null || v === undefined || Number.isNaN(v) ? '—' : `${fmtNum(v)} °C`;
}

// 24-hour "HH:MM" like api.js's fmtTime, whatever the browser's locale.
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const dayFmt = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric' });
const dayMonthFmt = new Intl.DateTimeFormat(undefined, { day: 'numeric', month: 'short' });
const fullFmt = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});

/**
 * Time ticks at local-time boundaries. The step is the smallest of the candidates that keeps
 * labels about `minPx` apart; hour steps start at local midnight so labels read 00:00, 03:00…
 */
function timeTicks(from, to, width, minPx = 64) {
  const span = to - from;
  const maxTicks = Math.max(2, Math.floor(width / minPx));
  const steps = [
    MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
    HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY,
  ];
  const step = steps.find((s) => span / s <= maxTicks) ?? 14 * DAY;
  const ticks = [];
  const d = new Date(from);
  d.setHours(0, 0, 0, 0);
  if (step >= DAY) {
    const days = Math.round(step / DAY);
    // Weekly steps start on a Monday so the axis reads like a calendar.
    if (days === 7 || days === 14) d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
    while (d.getTime() <= to) {
      if (d.getTime() >= from) ticks.push({ t: d.getTime(), label: span > 10 * DAY ? dayMonthFmt.format(d) : dayFmt.format(d), major: true });
      d.setDate(d.getDate() + days);
    }
  } else {
    const minutes = Math.round(step / MINUTE);
    // Start at the local hour before `from` (not midnight): a one-hour span needs a few
    // dozen steps, not a day's worth.
    if (minutes < 60) {
      d.setTime(Math.max(d.getTime(), from - HOUR));
      d.setMinutes(0, 0, 0);
    }
    while (d.getTime() <= to) {
      if (d.getTime() >= from) {
        const midnight = d.getHours() === 0 && d.getMinutes() === 0;
        const label = midnight ? dayFmt.format(d) : timeFmt.format(d);
        ticks.push({ t: d.getTime(), label, major: midnight || (minutes < 60 && d.getMinutes() === 0) });
      }
      // setMinutes keeps local wall-clock steps right across DST changes.
      d.setMinutes(d.getMinutes() + minutes);
    }
  }
  return ticks;
}

/** Index of the last element of sorted `arr` (by key) at or before `t`, or -1. */
function bisect(arr, t, key = (x) => x.t) {
  let lo = 0;
  let hi = arr.length - 1;
  let ans = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (key(arr[mid]) <= t) {
      ans = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return ans;
}

/**
 * A time-series chart in `container`.
 * data = {
 *   from, to: epoch ms of the x range,
 *   rangeLabel: "the last day" (for the accessible summary),
 *   series: [{ id, label, color?, bucketS, points: [{ t, mean, min, max }] }],
 *   setpoints: [{ kind: "heat"|"cool", label, steps: [{ t, v }] }] (a step holds until the next),
 *   runs: [{ system: "heat"|"cool", start, end }] (epoch ms; end null = still running),
 * }
 * opts = { onZoom(from, to), onReset() }: a span people asked to see (the view decides what it
 * shows, and calls update), and "the whole range again".
 * Returns { update(data), destroy() }.
 */
export function timeChart(container, initial, opts = {}) {
  let data = initial;
  let width = 0;
  let svg = null;
  let cross = null;
  let crossT = null;
  let geom = null;
  const wrap = htmlEl('div', { class: 'chart-wrap' });
  const tooltip = htmlEl('div', { class: 'chart-tooltip', role: 'status', 'aria-live': 'off' });
  tooltip.hidden = true;
  const legend = htmlEl('ul', { class: 'chart-legend' });
  container.replaceChildren(wrap, legend);

  function summary() {
    const parts = [];
    for (const s of data.series) {
      const vals = s.points.flatMap((p) => [p.min ?? p.mean, p.max ?? p.mean]).filter((v) => v !== null && v !== undefined);
      if (vals.length) parts.push(`${s.label} ${fmtNum(Math.min(...vals))}–${fmtNum(Math.max(...vals))} °C`);
      else parts.push(`${s.label} no readings`);
    }
    const runs = data.runs || [];
    const heat = runs.filter((r) => r.system === 'heat').length;
    const cool = runs.filter((r) => r.system === 'cool').length;
    let text = `${parts.join(', ') || 'No sensors'} over ${data.rangeLabel || 'the range'}`;
    if (heat || cool) text += `; ${heat} heating and ${cool} cooling runs`;
    return `${text}.`;
  }

  function render() {
    width = Math.max(280, Math.floor(wrap.clientWidth || container.clientWidth || 600));
    const height = width < 520 ? 240 : 320;
    // The top margin holds the axis unit, above the highest tick (not on top of it).
    const m = { l: 44, r: 12, t: 22, b: 30 };
    const pw = width - m.l - m.r;
    const ph = height - m.t - m.b;
    const { from, to } = data;

    // y range: every value and setpoint drawn, padded, at least 2 °C tall.
    const vals = [];
    for (const s of data.series) {
      for (const p of s.points) {
        for (const v of [p.min, p.mean, p.max]) if (v !== null && v !== undefined) vals.push(v);
      }
    }
    for (const sp of data.setpoints || []) for (const st of sp.steps) if (st.v !== null) vals.push(st.v);
    let lo = vals.length ? Math.min(...vals) : 15;
    let hi = vals.length ? Math.max(...vals) : 25;
    if (hi - lo < 2) {
      const mid = (hi + lo) / 2;
      lo = mid - 1;
      hi = mid + 1;
    }
    const ystep = niceStep(hi - lo, ph < 200 ? 4 : 6);
    lo = Math.floor((lo - ystep * 0.25) / ystep) * ystep;
    hi = Math.ceil((hi + ystep * 0.25) / ystep) * ystep;
    const x = (t) => m.l + ((t - from) / (to - from)) * pw;
    const y = (v) => m.t + (1 - (v - lo) / (hi - lo)) * ph;
    geom = { m, pw, ph, x, y, from, to, height };

    svg = svgEl('svg', {
      viewBox: `0 0 ${width} ${height}`,
      width: '100%',
      height,
      role: 'img',
      'aria-label': summary(),
      tabindex: 0,
      class: 'chart',
    });
    const defs = svgEl('defs', {}, svg);
    const clip = svgEl('clipPath', { id: `clip-${container.id || 'c'}` }, defs);
    svgEl('rect', { x: m.l, y: m.t, width: pw, height: ph }, clip);
    const clipRef = `url(#clip-${container.id || 'c'})`;

    // Grid and axes.
    const grid = svgEl('g', { class: 'chart-grid', 'aria-hidden': 'true' }, svg);
    for (let v = lo; v <= hi + 1e-9; v += ystep) {
      svgEl('line', { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v) }, grid);
      const label = svgEl('text', { x: m.l - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'chart-axis' }, grid);
      label.textContent = ystep < 1 ? fmtNum(v) : fmtNum(v, 0);
    }
    const unit = svgEl('text', { x: m.l - 6, y: 4, 'text-anchor': 'end', 'dominant-baseline': 'hanging', class: 'chart-axis chart-unit' }, grid);
    unit.textContent = '°C';
    for (const tk of timeTicks(from, to, pw)) {
      svgEl('line', { x1: x(tk.t), x2: x(tk.t), y1: m.t, y2: m.t + ph, class: tk.major ? 'major' : '' }, grid);
      const label = svgEl('text', { x: x(tk.t), y: m.t + ph + 18, 'text-anchor': 'middle', class: 'chart-axis' }, grid);
      label.textContent = tk.label;
    }

    const plot = svgEl('g', { 'clip-path': clipRef }, svg);

    // Runs behind everything else.
    const runsG = svgEl('g', { class: 'chart-runs' }, plot);
    for (const r of data.runs || []) {
      const x0 = x(Math.max(r.start, from));
      const x1 = x(Math.min(r.end ?? Date.now(), to));
      const rect = svgEl('rect', {
        x: x0, y: m.t, width: Math.max(1, x1 - x0), height: ph,
        class: `run run-${r.system}`,
      }, runsG);
      rect.style.fill = r.system === 'cool' ? COOL_COLOR : HEAT_COLOR;
      const title = svgEl('title', {}, rect);
      title.textContent = `${r.system === 'cool' ? 'Cooling' : 'Heating'} ${fullFmt.format(r.start)} – ${r.end ? timeFmt.format(r.end) : 'now'}`;
    }

    // Setpoint step lines.
    for (const sp of data.setpoints || []) {
      if (!sp.steps.length) continue;
      let d = '';
      sp.steps.forEach((st, i) => {
        const t0 = Math.max(st.t, from);
        const t1 = Math.min(i + 1 < sp.steps.length ? sp.steps[i + 1].t : to, to);
        if (t1 <= from || st.v === null) return;
        d += `M${x(t0).toFixed(1)},${y(st.v).toFixed(1)}H${x(t1).toFixed(1)}`;
        const next = sp.steps[i + 1];
        if (next && next.v !== null && next.t < to) d += `V${y(next.v).toFixed(1)}`;
      });
      svgEl('path', { d, class: `setpoint setpoint-${sp.kind}`, fill: 'none' }, plot)
        .style.stroke = sp.kind === 'cool' ? COOL_TARGET_COLOR : HEAT_TARGET_COLOR;
    }

    // Sensor series: band, line, points.
    data.series.forEach((s, si) => {
      const color = s.color || PALETTE[si % PALETTE.length];
      const g = svgEl('g', { class: 'series', 'data-sensor-id': s.id }, plot);
      // A gap longer than 3 buckets (or 15 min of raw readings) breaks the line: no data there.
      const maxGap = Math.max(3 * (s.bucketS || 0) * 1000, 15 * 60e3);
      const runsOf = [];
      let cur = [];
      let prevT = null;
      for (const p of s.points) {
        if (p.mean === null || p.mean === undefined || (prevT !== null && p.t - prevT > maxGap)) {
          if (cur.length) runsOf.push(cur);
          cur = [];
        }
        if (p.mean !== null && p.mean !== undefined) cur.push(p);
        prevT = p.t;
      }
      if (cur.length) runsOf.push(cur);
      // Buckets are drawn at their centre so the line sits where the readings were.
      const half = (s.bucketS || 0) * 500;
      if (s.bucketS > 0) {
        for (const seg of runsOf) {
          const top = seg.map((p) => `${x(p.t + half).toFixed(1)},${y(p.max ?? p.mean).toFixed(1)}`);
          const bottom = seg.slice().reverse().map((p) => `${x(p.t + half).toFixed(1)},${y(p.min ?? p.mean).toFixed(1)}`);
          svgEl('path', { d: `M${top.join('L')}L${bottom.join('L')}Z`, class: 'series-band' }, g).style.fill = color;
        }
      }
      for (const seg of runsOf) {
        const d = seg.map((p, i) => `${i ? 'L' : 'M'}${x(p.t + half).toFixed(1)},${y(p.mean).toFixed(1)}`).join('');
        svgEl('path', { d, class: 'series-line', fill: 'none' }, g).style.stroke = color;
      }
      // Every data point is in the DOM (tests and assistive tech look for them); on dense
      // series they are drawn with r=0 so the line stays readable.
      // Dense: more than one point per 6 px of the span the series covers.
      const shown = s.points.filter((p) => p.mean !== null && p.mean !== undefined);
      const spanPx = shown.length ? x(shown[shown.length - 1].t) - x(shown[0].t) : 0;
      const dense = shown.length > Math.max(1, spanPx) / 6;
      const pts = svgEl('g', { class: 'points' }, g);
      pts.style.fill = color;
      for (const p of s.points) {
        if (p.mean === null || p.mean === undefined) continue;
        svgEl('circle', {
          class: 'point', cx: x(p.t + half).toFixed(1), cy: y(p.mean).toFixed(1), r: dense ? 0 : 2.5,
          'data-t': new Date(p.t).toISOString(), 'data-v': p.mean,
        }, pts);
      }
      s._half = half;
    });

    // "Now" marker when the range reaches the present.
    const now = Date.now();
    if (now > from && now <= to + 60e3) {
      svgEl('line', { x1: x(Math.min(now, to)), x2: x(Math.min(now, to)), y1: m.t, y2: m.t + ph, class: 'chart-now' }, svg);
    }

    cross = svgEl('line', { x1: 0, x2: 0, y1: m.t, y2: m.t + ph, class: 'chart-cross', visibility: 'hidden' }, svg);
    const overlay = svgEl('rect', { x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent', class: 'chart-overlay' }, svg);
    const fromEvent = (ev) => {
      const box = svg.getBoundingClientRect();
      const px = ((ev.clientX - box.left) / box.width) * width;
      return from + ((px - m.l) / pw) * (to - from);
    };
    // Dragging across the chart (mouse or pen) selects a span to zoom into; on touch a drag
    // moves the crosshair (and the page scrolls vertically), so phones zoom with the buttons.
    const selection = svgEl('rect', { x: 0, y: m.t, width: 0, height: ph, class: 'chart-selection', visibility: 'hidden' }, svg);
    let drag = null;
    const px = (t) => Math.min(m.l + pw, Math.max(m.l, x(t)));
    overlay.addEventListener('pointerdown', (ev) => {
      const t = fromEvent(ev);
      showAt(t);
      if (ev.pointerType !== 'touch' && ev.button === 0 && opts.onZoom) {
        drag = { t0: t, x0: ev.clientX, moved: false };
        overlay.setPointerCapture?.(ev.pointerId);
      }
    });
    overlay.addEventListener('pointermove', (ev) => {
      const t = fromEvent(ev);
      showAt(t);
      if (!drag) return;
      drag.moved = drag.moved || Math.abs(ev.clientX - drag.x0) >= DRAG_PX;
      if (!drag.moved) return;
      const a = px(Math.min(drag.t0, t));
      const b = px(Math.max(drag.t0, t));
      selection.setAttribute('x', a);
      selection.setAttribute('width', Math.max(1, b - a));
      selection.setAttribute('visibility', 'visible');
    });
    const endDrag = (ev, apply) => {
      if (!drag) return;
      const { t0, moved } = drag;
      drag = null;
      selection.setAttribute('visibility', 'hidden');
      if (apply && moved) {
        const t1 = Math.min(to, Math.max(from, fromEvent(ev)));
        const a = Math.max(from, Math.min(t0, t1));
        const b = Math.min(to, Math.max(t0, t1));
        if (b > a) opts.onZoom(a, b);
      }
    };
    overlay.addEventListener('pointerup', (ev) => endDrag(ev, true));
    overlay.addEventListener('pointercancel', (ev) => endDrag(ev, false));
    overlay.addEventListener('pointerleave', (ev) => {
      if (ev.pointerType === 'mouse' && !drag) hide();
    });
    // Ctrl + wheel (also what a touchpad pinch sends) zooms around the pointer; a plain wheel
    // keeps scrolling the page.
    svg.addEventListener('wheel', (ev) => {
      if (!(ev.ctrlKey || ev.metaKey) || !opts.onZoom) return;
      ev.preventDefault();
      zoomAround(fromEvent(ev), ev.deltaY < 0 ? 0.8 : 1.25);
    }, { passive: false });
    svg.addEventListener('keydown', (ev) => {
      const stepT = (to - from) / 48;
      if (ev.key === 'ArrowRight' || ev.key === 'ArrowLeft') {
        ev.preventDefault();
        const base = crossT ?? (ev.key === 'ArrowRight' ? from : to);
        showAt(Math.min(to, Math.max(from, base + (ev.key === 'ArrowRight' ? stepT : -stepT))));
      } else if (ev.key === 'Escape') {
        hide();
      } else if ((ev.key === '+' || ev.key === '=') && opts.onZoom) {
        ev.preventDefault();
        zoomAround(crossT ?? (from + to) / 2, 0.5);
      } else if ((ev.key === '-' || ev.key === '_') && opts.onZoom) {
        ev.preventDefault();
        zoomAround(crossT ?? (from + to) / 2, 2);
      } else if (ev.key === '0' && opts.onReset) {
        ev.preventDefault();
        opts.onReset();
      }
    });
    svg.addEventListener('blur', hide);

    // A re-render replaces the SVG: keep the keyboard focus on the chart (after a zoom by key).
    const focused = wrap.contains(document.activeElement);
    wrap.replaceChildren(svg, tooltip);
    if (focused) svg.focus({ preventScroll: true });
    if (crossT !== null && crossT >= from && crossT <= to) showAt(crossT);
    else if (crossT !== null) hide();
  }

  /** Ask for a span `factor` times as wide, `t` staying where it is on the screen. */
  function zoomAround(t, factor) {
    const { from, to } = data;
    const share = (t - from) / (to - from);
    const span = (to - from) * factor;
    opts.onZoom(t - share * span, t - share * span + span);
  }

  function hide() {
    crossT = null;
    tooltip.hidden = true;
    if (cross) cross.setAttribute('visibility', 'hidden');
  }

  function showAt(t) {
    if (!geom) return;
    const { x, from, to } = geom;
    t = Math.min(to, Math.max(from, t));
    crossT = t;
    cross.setAttribute('x1', x(t));
    cross.setAttribute('x2', x(t));
    cross.setAttribute('visibility', 'visible');
    const rows = [];
    data.series.forEach((s, si) => {
      const color = s.color || PALETTE[si % PALETTE.length];
      const half = s._half || 0;
      const i = bisect(s.points, t, (p) => p.t + half);
      // Nearest of the two neighbours, within 3 buckets / 15 min, else nothing to show.
      let best = null;
      for (const j of [i, i + 1]) {
        const p = s.points[j];
        if (!p || p.mean === null || p.mean === undefined) continue;
        if (!best || Math.abs(p.t + half - t) < Math.abs(best.t + half - t)) best = p;
      }
      const tol = Math.max(3 * (s.bucketS || 0) * 1000, 15 * 60e3);
      if (best && Math.abs(best.t + half - t) > tol) best = null;
      let text = best ? fmtC(best.mean) : '—';
      if (best && s.bucketS > 0 && best.min !== null && best.max !== null && best.max - best.min >= 0.05) {
        text += ` (${fmtNum(best.min)}–${fmtNum(best.max)})`;
      }
      rows.push({ color, label: s.label, text });
    });
    for (const sp of data.setpoints || []) {
      const i = bisect(sp.steps, t);
      if (i >= 0 && sp.steps[i].v !== null) rows.push({ color: sp.kind === 'cool' ? COOL_TARGET_COLOR : HEAT_TARGET_COLOR, label: sp.label, text: fmtC(sp.steps[i].v) });
    }
    const run = (data.runs || []).find((r) => r.start <= t && (r.end ?? Date.now()) > t);
    tooltip.replaceChildren();
    tooltip.appendChild(htmlEl('div', { class: 'chart-tooltip-time' }, fullFmt.format(t)));
    for (const r of rows) {
      const row = htmlEl('div', { class: 'chart-tooltip-row' });
      const sw = htmlEl('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.background = r.color;
      row.append(sw, htmlEl('span', {}, `${r.label}: ${r.text}`));
      tooltip.appendChild(row);
    }
    if (run) tooltip.appendChild(htmlEl('div', { class: `chart-tooltip-run run-${run.system}` }, run.system === 'cool' ? 'Cooling' : 'Heating'));
    tooltip.hidden = false;
    // Keep the tooltip inside the chart: left of the crosshair on the right half.
    const px = (x(t) / width) * wrap.clientWidth;
    tooltip.style.top = '8px';
    if (px > wrap.clientWidth / 2) {
      tooltip.style.left = '';
      tooltip.style.right = `${Math.max(0, wrap.clientWidth - px + 10)}px`;
    } else {
      tooltip.style.right = '';
      tooltip.style.left = `${px + 10}px`;
    }
  }

  function renderLegend() {
    legend.replaceChildren();
    const item = (color, label, cls) => {
      const li = htmlEl('li', { class: cls });
      const sw = htmlEl('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.background = color;
      li.append(sw, document.createTextNode(label));
      legend.appendChild(li);
    };
    data.series.forEach((s, si) => item(s.color || PALETTE[si % PALETTE.length], s.label, 'legend-series'));
    for (const sp of data.setpoints || []) {
      if (sp.steps.length) item(sp.kind === 'cool' ? COOL_TARGET_COLOR : HEAT_TARGET_COLOR, sp.label, `legend-setpoint legend-setpoint-${sp.kind}`);
    }
    const runs = data.runs || [];
    if (runs.some((r) => r.system === 'heat')) item(HEAT_COLOR, 'Heating', 'legend-run');
    if (runs.some((r) => r.system === 'cool')) item(COOL_COLOR, 'Cooling', 'legend-run');
  }

  const ro = redrawOnResize(wrap, render);
  render();
  renderLegend();

  return {
    update(next) {
      data = next;
      render();
      renderLegend();
    },
    destroy() {
      ro.disconnect();
      container.replaceChildren();
    },
  };
}

/** Durations in seconds on one axis: the one unit that suits the largest value. */
function durationUnit(maxS) {
  if (maxS >= 3600) return { name: 'h', s: 3600 };
  if (maxS >= 60) return { name: 'min', s: 60 };
  return { name: 's', s: 1 };
}

/**
 * Stacked bars per category (e.g. runtime per day or per hour).
 * data = { labels: ["Mon 21", …], stacks: [{ label, color, values: [number] }], ariaLabel,
 *          duration: true (values are seconds) | format: (v) => string }
 * Every tick of an axis has the same unit, written once at its top ("min"), and the same
 * number of decimals: never "2.4 min, 1.8 min, 36 s" on one axis.
 */
export function barChart(container, data) {
  const wrap = htmlEl('div', { class: 'chart-wrap' });
  const legend = htmlEl('ul', { class: 'chart-legend' });
  container.replaceChildren(wrap, legend);
  for (const st of data.stacks) {
    const li = htmlEl('li');
    const sw = htmlEl('span', { class: 'swatch', 'aria-hidden': 'true' });
    sw.style.background = st.color;
    li.append(sw, document.createTextNode(st.label));
    legend.appendChild(li);
  }

  function render() {
    const width = Math.max(280, Math.floor(wrap.clientWidth || 600));
    const height = 180;
    const m = { l: 44, r: 8, t: 22, b: 28 };
    const pw = width - m.l - m.r;
    const ph = height - m.t - m.b;
    const n = data.labels.length;
    const totals = data.labels.map((_, i) => data.stacks.reduce((a, s) => a + (s.values[i] || 0), 0));
    const maxV = Math.max(...totals, 0);
    // The axis in one unit: durations in the unit of the largest bar, whole seconds at least.
    const unit = data.duration ? durationUnit(maxV) : { name: data.unit || '', s: 1 };
    const maxU = maxV / unit.s;
    let step = niceStep(maxU || 1, 4);
    if (data.duration && unit.s === 1) step = Math.max(1, step);
    const top = Math.max(step, Math.ceil(maxU / step - 1e-9) * step);
    // As many decimals as the step has (0.25 → 2, 2.5 → 1, 5 → 0), the same on every tick.
    const decimals = (String(+step.toPrecision(6)).split('.')[1] || '').length;
    const tick = data.format && !data.duration ? data.format : (v) => v.toFixed(decimals);
    const y = (v) => m.t + (1 - v / unit.s / top) * ph;
    const svg = svgEl('svg', { viewBox: `0 0 ${width} ${height}`, width: '100%', height, role: 'img', 'aria-label': data.ariaLabel || '', class: 'chart bar-chart' });
    const grid = svgEl('g', { class: 'chart-grid', 'aria-hidden': 'true' }, svg);
    for (let v = 0; v <= top + 1e-9; v += step) {
      svgEl('line', { x1: m.l, x2: m.l + pw, y1: y(v * unit.s), y2: y(v * unit.s) }, grid);
      const t = svgEl('text', { x: m.l - 6, y: y(v * unit.s), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'chart-axis' }, grid);
      t.textContent = tick(v);
    }
    if (unit.name) {
      const u = svgEl('text', { x: m.l - 6, y: 4, 'text-anchor': 'end', 'dominant-baseline': 'hanging', class: 'chart-axis chart-unit' }, grid);
      u.textContent = unit.name;
    }
    const bw = pw / Math.max(1, n);
    // Label every k-th bar so labels never overlap on a phone.
    const every = Math.max(1, Math.ceil(48 / bw));
    const says = (v) => (data.duration ? fmtDuration(v) : tick(v));
    data.labels.forEach((label, i) => {
      let acc = 0;
      const gx = m.l + i * bw + bw * 0.15;
      const g = svgEl('g', { class: 'bar' }, svg);
      for (const st of data.stacks) {
        const v = st.values[i] || 0;
        if (v > 0) {
          svgEl('rect', { x: gx, y: y(acc + v), width: bw * 0.7, height: y(acc) - y(acc + v), rx: 2 }, g).style.fill = st.color;
        }
        acc += v;
      }
      const title = svgEl('title', {}, g);
      title.textContent = `${label}: ${data.stacks.map((st) => `${st.label} ${says(st.values[i] || 0)}`).join(', ')}`;
      if (i % every === 0) {
        const t = svgEl('text', { x: m.l + i * bw + bw / 2, y: m.t + ph + 18, 'text-anchor': 'middle', class: 'chart-axis' }, svg);
        t.textContent = label;
      }
    });
    wrap.replaceChildren(svg);
  }

  const ro = redrawOnResize(wrap, render);
  render();
  return {
    destroy() {
      ro.disconnect();
      container.replaceChildren();
    },
  };
}

// Charts are drawn at their box's pixel width (crisp text, no stretched strokes): redraw when
// the width changes by more than a few pixels (rotating a phone, resizing a window).
function redrawOnResize(wrap, render) {
  let lastW = Math.floor(wrap.clientWidth);
  const ro = new ResizeObserver(() => {
    const w = Math.floor(wrap.clientWidth);
    if (w && Math.abs(w - lastW) > 4) {
      lastW = w;
      render();
    }
  });
  ro.observe(wrap);
  return ro;
}
