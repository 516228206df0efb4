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
// strokes keep their size on a phone and on a wide screen instead of being stretched. The
// arithmetic (ranges, ticks, gaps, tooltip rows) is chart-scale.js's; this module draws.

import { h } from "./dom.js";
import {
  HEAT_COLOR, COOL_COLOR, barAxis, runColor, runTitle, seriesColor, seriesRuns, setpointColor,
  setpointPath, summaryText, systemName, timeTicks, tooltipAt, valueRange,
} from "./chart-scale.js";

export { HEAT_COLOR, COOL_COLOR } from "./chart-scale.js";

/** A drag shorter than this (px) is a click or a crosshair move, not a zoom. */
const DRAG_PX = 8;

const swatch = (color) => h('span', { class: 'swatch', 'aria-hidden': 'true', style: { background: color } });

/** The plot's geometry at `width` px: margins, plot size and the two scales. */
function layout(data, width) {
  const height = width < 520 ? 240 : 320;
  // The top margin holds the axis unit, above the highest tick (not on top of it).
  const m = { l: 44, r: 12, t: 22, b: 30 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const { from, to } = data;
  const range = valueRange(data, ph < 200 ? 4 : 6);
  const x = (t) => m.l + ((t - from) / (to - from)) * pw;
  const y = (v) => m.t + (1 - (v - range.lo) / (range.hi - range.lo)) * ph;
  return { m, pw, ph, x, y, from, to, width, height, range };
}

function drawGrid(g) {
  const { m, pw, ph, x, y, from, to } = g;
  const axisText = (attrs, text) => h('svg:text', { class: 'chart-axis', ...attrs, text });
  return h('svg:g', { class: 'chart-grid', 'aria-hidden': 'true' },
    g.range.ticks.map(({ v, label }) => [
      h('svg:line', { x1: m.l, x2: m.l + pw, y1: y(v), y2: y(v) }),
      axisText({ x: m.l - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, label),
    ]),
    axisText({ x: m.l - 6, y: 4, 'text-anchor': 'end', 'dominant-baseline': 'hanging', class: 'chart-axis chart-unit' }, '°C'),
    timeTicks(from, to, pw).map((tk) => [
      h('svg:line', { x1: x(tk.t), x2: x(tk.t), y1: m.t, y2: m.t + ph, class: tk.major ? 'major' : '' }),
      axisText({ x: x(tk.t), y: m.t + ph + 18, 'text-anchor': 'middle' }, tk.label),
    ]));
}

/** Heating and cooling runs as bands, behind everything else. */
function drawRuns(g, runs) {
  const { m, ph, x, from, to } = g;
  return h('svg:g', { class: 'chart-runs' }, runs.map((r) => {
    const x0 = x(Math.max(r.start, from));
    const x1 = x(Math.min(r.end ?? Date.now(), to));
    return h('svg:rect', {
      x: x0, y: m.t, width: Math.max(1, x1 - x0), height: ph, class: `run run-${r.system}`, style: { fill: runColor(r.system) },
    }, h('svg:title', { text: runTitle(r) }));
  }));
}

function drawSetpoints(g, setpoints) {
  return setpoints.filter((sp) => sp.steps.length).map((sp) => h('svg:path', {
    d: setpointPath(sp.steps, g.from, g.to, g.x, g.y),
    class: `setpoint setpoint-${sp.kind}`, fill: 'none', style: { stroke: setpointColor(sp.kind) },
  }));
}

/** One sensor: the min–max band of downsampled buckets, the mean line, and every point. */
function drawSeries(g, s, si) {
  const { x, y } = g;
  const color = seriesColor(s, si);
  const runs = seriesRuns(s);
  // Buckets are drawn at their centre so the line sits where the readings were.
  const half = (s.bucketS || 0) * 500;
  const at = (p, v) => `${x(p.t + half).toFixed(1)},${y(v).toFixed(1)}`;
  const bands = s.bucketS > 0
    ? runs.map((seg) => {
      const top = seg.map((p) => at(p, p.max ?? p.mean));
      const bottom = seg.slice().reverse().map((p) => at(p, p.min ?? p.mean));
      return h('svg:path', { d: `M${top.join('L')}L${bottom.join('L')}Z`, class: 'series-band', style: { fill: color } });
    })
    : [];
  const lines = runs.map((seg) => h('svg:path', {
    d: seg.map((p, i) => `${i ? 'L' : 'M'}${at(p, p.mean)}`).join(''), class: 'series-line', fill: 'none', style: { stroke: color },
  }));
  // Every data point is in the DOM (tests and assistive tech look for them); on dense series
  // (more than one point per 6 px of the span the series covers) they are drawn with r=0 so
  // the line stays readable.
  const shown = runs.flat();
  const spanPx = shown.length ? x(shown[shown.length - 1].t) - x(shown[0].t) : 0;
  const dense = shown.length > Math.max(1, spanPx) / 6;
  const points = h('svg:g', { class: 'points', style: { fill: color } }, shown.map((p) => h('svg:circle', {
    class: 'point', cx: x(p.t + half).toFixed(1), cy: y(p.mean).toFixed(1), r: dense ? 0 : 2.5,
    'data-t': new Date(p.t).toISOString(), 'data-v': p.mean,
  })));
  return h('svg:g', { class: 'series', 'data-sensor-id': s.id }, bands, lines, points);
}

/** The whole SVG of `data` at geometry `g`, with the crosshair, selection and overlay returned
 * for the pointer handlers. */
function drawTimeChart(data, g, clipId) {
  const { m, pw, ph, x } = g;
  const svg = h('svg:svg', {
    viewBox: `0 0 ${g.width} ${g.height}`, width: '100%', height: g.height, role: 'img',
    'aria-label': summaryText(data), tabindex: 0, class: 'chart',
  },
  h('svg:defs', {}, h('svg:clipPath', { id: clipId }, h('svg:rect', { x: m.l, y: m.t, width: pw, height: ph }))),
  drawGrid(g),
  h('svg:g', { 'clip-path': `url(#${clipId})` },
    drawRuns(g, data.runs || []), drawSetpoints(g, data.setpoints || []), data.series.map((s, i) => drawSeries(g, s, i))));
  // "Now" marker when the range reaches the present.
  const now = Date.now();
  if (now > g.from && now <= g.to + 60e3) {
    const nx = x(Math.min(now, g.to));
    svg.append(h('svg:line', { x1: nx, x2: nx, y1: m.t, y2: m.t + ph, class: 'chart-now' }));
  }
  const cross = h('svg:line', { x1: 0, x2: 0, y1: m.t, y2: m.t + ph, class: 'chart-cross', visibility: 'hidden' });
  const overlay = h('svg:rect', { x: m.l, y: m.t, width: pw, height: ph, fill: 'transparent', class: 'chart-overlay' });
  const selection = h('svg:rect', { x: 0, y: m.t, width: 0, height: ph, class: 'chart-selection', visibility: 'hidden' });
  svg.append(cross, overlay, selection);
  return { svg, cross, overlay, selection };
}

/** The tooltip's content at `t`. */
function tooltipContent(data, t) {
  const tip = tooltipAt(data, t);
  return [
    h('div', { class: 'chart-tooltip-time', text: tip.time }),
    tip.rows.map((r) => h('div', { class: 'chart-tooltip-row' }, swatch(r.color), h('span', { text: `${r.label}: ${r.text}` }))),
    tip.run ? h('div', { class: `chart-tooltip-run run-${tip.run.system}`, text: systemName(tip.run.system) }) : null,
  ];
}

function legendItems(data) {
  const item = (color, label, cls) => h('li', { class: cls }, swatch(color), label);
  const runs = data.runs || [];
  return [
    data.series.map((s, si) => item(seriesColor(s, si), s.label, 'legend-series')),
    (data.setpoints || []).filter((sp) => sp.steps.length)
      .map((sp) => item(setpointColor(sp.kind), sp.label, `legend-setpoint legend-setpoint-${sp.kind}`)),
    runs.some((r) => r.system === 'heat') ? item(HEAT_COLOR, 'Heating', 'legend-run') : null,
    runs.some((r) => r.system === 'cool') ? item(COOL_COLOR, 'Cooling', 'legend-run') : null,
  ];
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
  const c = {
    data: initial, geom: null, drawn: null, crossT: null, opts, container,
    wrap: h('div', { class: 'chart-wrap' }),
    tooltip: h('div', { class: 'chart-tooltip', role: 'status', 'aria-live': 'off', hidden: true }),
    legend: h('ul', { class: 'chart-legend' }),
    clipId: `clip-${container.id || 'c'}`,
  };
  container.replaceChildren(c.wrap, c.legend);
  const ro = redrawOnResize(c.wrap, () => renderTimeChart(c));
  const draw = () => {
    renderTimeChart(c);
    c.legend.replaceChildren(...legendItems(c.data).flat().filter(Boolean));
  };
  draw();
  return {
    update(next) {
      c.data = next;
      draw();
    },
    destroy() {
      ro.disconnect();
      container.replaceChildren();
    },
  };
}

/** (Re)draws chart `c` at its box's width, keeping the focus and the crosshair. */
function renderTimeChart(c) {
  const width = Math.max(280, Math.floor(c.wrap.clientWidth || c.container.clientWidth || 600));
  c.geom = layout(c.data, width);
  c.drawn = drawTimeChart(c.data, c.geom, c.clipId);
  attachPointer(c);
  attachKeys(c);
  // A re-render replaces the SVG: keep the keyboard focus on the chart (after a zoom by key).
  const focused = c.wrap.contains(document.activeElement);
  c.wrap.replaceChildren(c.drawn.svg, c.tooltip);
  if (focused) c.drawn.svg.focus({ preventScroll: true });
  const { crossT } = c;
  if (crossT !== null && crossT >= c.geom.from && crossT <= c.geom.to) showAt(c, crossT);
  else if (crossT !== null) hide(c);
}

/** Dragging across the chart (mouse or pen) selects a span to zoom into; on touch a drag moves
 * the crosshair (and the page scrolls vertically), so phones zoom with the buttons. */
function attachPointer(c) {
  const { svg, overlay, selection } = c.drawn;
  const g = c.geom;
  const { from, to } = g;
  const fromEvent = (ev) => {
    const box = svg.getBoundingClientRect();
    const px = ((ev.clientX - box.left) / box.width) * g.width;
    return from + ((px - g.m.l) / g.pw) * (to - from);
  };
  const clampPx = (t) => Math.min(g.m.l + g.pw, Math.max(g.m.l, g.x(t)));
  let drag = null;
  overlay.addEventListener('pointerdown', (ev) => {
    const t = fromEvent(ev);
    showAt(c, t);
    if (ev.pointerType !== 'touch' && ev.button === 0 && c.opts.onZoom) {
      drag = { t0: t, x0: ev.clientX, moved: false };
      overlay.setPointerCapture?.(ev.pointerId);
    }
  });
  overlay.addEventListener('pointermove', (ev) => {
    const t = fromEvent(ev);
    showAt(c, t);
    if (!drag) return;
    drag.moved = drag.moved || Math.abs(ev.clientX - drag.x0) >= DRAG_PX;
    if (!drag.moved) return;
    const a = clampPx(Math.min(drag.t0, t));
    const b = clampPx(Math.max(drag.t0, t));
    selection.setAttribute('x', a);
    selection.setAttribute('width', Math.max(1, b - a));
    selection.setAttribute('visibility', 'visible');
  });
  const endDrag = (ev, apply) => {
    if (!drag) return;
    const { t0, moved } = drag;
    drag = null;
    selection.setAttribute('visibility', 'hidden');
    if (!apply || !moved) return;
    const t1 = Math.min(to, Math.max(from, fromEvent(ev)));
    const a = Math.max(from, Math.min(t0, t1));
    const b = Math.min(to, Math.max(t0, t1));
    if (b > a) c.opts.onZoom(a, b);
  };
  overlay.addEventListener('pointerup', (ev) => endDrag(ev, true));
  overlay.addEventListener('pointercancel', (ev) => endDrag(ev, false));
  overlay.addEventListener('pointerleave', (ev) => {
    if (ev.pointerType === 'mouse' && !drag) hide(c);
  });
  // Ctrl + wheel (also what a touchpad pinch sends) zooms around the pointer; a plain wheel
  // keeps scrolling the page.
  svg.addEventListener('wheel', (ev) => {
    if (!(ev.ctrlKey || ev.metaKey) || !c.opts.onZoom) return;
    ev.preventDefault();
    zoomAround(c, fromEvent(ev), ev.deltaY < 0 ? 0.8 : 1.25);
  }, { passive: false });
}

/** ← → move the crosshair, Escape hides it, + − zoom around it, 0 shows the whole range. */
function attachKeys(c) {
  const { svg } = c.drawn;
  const { from, to } = c.geom;
  const { onZoom, onReset } = c.opts;
  svg.addEventListener('keydown', (ev) => {
    const { key } = ev;
    const at = c.crossT ?? (from + to) / 2;
    if (key === 'ArrowRight' || key === 'ArrowLeft') {
      ev.preventDefault();
      const stepT = ((to - from) / 48) * (key === 'ArrowRight' ? 1 : -1);
      const base = c.crossT ?? (key === 'ArrowRight' ? from : to);
      showAt(c, Math.min(to, Math.max(from, base + stepT)));
    } else if (key === 'Escape') {
      hide(c);
    } else if ((key === '+' || key === '=' || key === '-' || key === '_') && onZoom) {
      ev.preventDefault();
      zoomAround(c, at, key === '+' || key === '=' ? 0.5 : 2);
    } else if (key === '0' && onReset) {
      ev.preventDefault();
      onReset();
    }
  });
  svg.addEventListener('blur', () => hide(c));
}

/** Ask for a span `factor` times as wide, `t` staying where it is on the screen. */
function zoomAround(c, t, factor) {
  const { from, to } = c.data;
  const share = (t - from) / (to - from);
  const span = (to - from) * factor;
  c.opts.onZoom(t - share * span, t - share * span + span);
}

function hide(c) {
  c.crossT = null;
  c.tooltip.hidden = true;
  if (c.drawn) c.drawn.cross.setAttribute('visibility', 'hidden');
}

/** The crosshair and the tooltip at `t`. */
function showAt(c, t) {
  if (!c.geom) return;
  const { x, from, to, width } = c.geom;
  const { wrap, tooltip } = c;
  t = Math.min(to, Math.max(from, t));
  c.crossT = t;
  const { cross } = c.drawn;
  cross.setAttribute('x1', x(t));
  cross.setAttribute('x2', x(t));
  cross.setAttribute('visibility', 'visible');
  tooltip.replaceChildren(...tooltipContent(c.data, t).flat().filter(Boolean));
  tooltip.hidden = false;
  // Keep the tooltip inside the chart: left of the crosshair on the right half.
  const px = (x(t) / width) * wrap.clientWidth;
  const right = px > wrap.clientWidth / 2;
  tooltip.style.top = '8px';
  tooltip.style.left = right ? '' : `${px + 10}px`;
  tooltip.style.right = right ? `${Math.max(0, wrap.clientWidth - px + 10)}px` : '';
}

/** The bars and their labels at `width` px. */
function drawBars(data, width) {
  const height = 180;
  const m = { l: 44, r: 8, t: 22, b: 28 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const totals = data.labels.map((_, i) => data.stacks.reduce((a, s) => a + (s.values[i] || 0), 0));
  const axis = barAxis(totals, data);
  const y = (v) => m.t + (1 - v / axis.unit.s / axis.top) * ph;
  const bw = pw / Math.max(1, data.labels.length);
  // Label every k-th bar so labels never overlap on a phone.
  const every = Math.max(1, Math.ceil(48 / bw));
  const axisText = (attrs, text) => h('svg:text', { class: 'chart-axis', ...attrs, text });
  const bar = (label, i) => {
    let acc = 0;
    const gx = m.l + i * bw + bw * 0.15;
    const rects = data.stacks.map((st) => {
      const v = st.values[i] || 0;
      const r = v > 0 ? h('svg:rect', { x: gx, y: y(acc + v), width: bw * 0.7, height: y(acc) - y(acc + v), style: { fill: st.color }, rx: 2 }) : null;
      acc += v;
      return r;
    });
    const title = `${label}: ${data.stacks.map((st) => `${st.label} ${axis.says(st.values[i] || 0)}`).join(', ')}`;
    return h('svg:g', { class: 'bar' }, rects, h('svg:title', { text: title }));
  };
  return h('svg:svg', {
    viewBox: `0 0 ${width} ${height}`, width: '100%', height, role: 'img', 'aria-label': data.ariaLabel || '', class: 'chart bar-chart',
  },
  h('svg:g', { class: 'chart-grid', 'aria-hidden': 'true' },
    axis.ticks.map((v) => [
      h('svg:line', { x1: m.l, x2: m.l + pw, y1: y(v * axis.unit.s), y2: y(v * axis.unit.s) }),
      axisText({ x: m.l - 6, y: y(v * axis.unit.s), 'text-anchor': 'end', 'dominant-baseline': 'middle' }, axis.tick(v)),
    ]),
    axis.unit.name ? axisText({ x: m.l - 6, y: 4, 'text-anchor': 'end', 'dominant-baseline': 'hanging', class: 'chart-axis chart-unit' }, axis.unit.name) : null),
  data.labels.map((label, i) => [
    bar(label, i),
    i % every === 0 ? axisText({ x: m.l + i * bw + bw / 2, y: m.t + ph + 18, 'text-anchor': 'middle' }, label) : null,
  ]));
}

/**
 * Stacked bars per category (e.g. runtime per day or per hour).
 * data = { labels: ["Mon 21", …], stacks: [{ label, color, values: [number] }], ariaLabel,
 *          duration: true (values are seconds) | format: (v) => string }
 * Every tick of an axis has the same unit, written once at its top ("min").
 */
export function barChart(container, data) {
  const wrap = h('div', { class: 'chart-wrap' });
  const legend = h('ul', { class: 'chart-legend' }, data.stacks.map((st) => h('li', {}, swatch(st.color), st.label)));
  container.replaceChildren(wrap, legend);
  const render = () => wrap.replaceChildren(drawBars(data, Math.max(280, Math.floor(wrap.clientWidth || 600))));
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
