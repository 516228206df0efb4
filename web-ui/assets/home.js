// Home: the thermostat face. The temperature, what the system does and why, the target now and
// what comes next, +/− with a hold, the mode, and every sensor's card. Kept live by the event
// stream; timers refresh "what comes next", a hold's countdown and the "min ago" texts.
//
// The face shows ONE decision: its temperature, its state and its reason together (the engine
// publishes a decision whenever any of them changes), never a live reading beside an older
// reason. Readings update the sensor cards.
//
// In a house with zones the face, its controls and its sensors are one zone's (`?zone=`, the
// default zone without it); every request about it carries the zone, and cards below show
// every zone and plant (home-zones.js). A one-zone house reads and looks as it always did.
//
// Layout: the reason texts (pure); the skeleton; what the state says (mode, segment, targets);
// the renderers; loading; the actions (+/−, resume, mode, live events), wired in mount().

import { api, on, session, requireLogin } from "./api.js";
import { excludedTone, fmtAgo, fmtDay, fmtDuration, fmtExcluded, fmtTemp, fmtTime } from "./format.js";
import { toast } from "./toast.js";
import { h } from "./dom.js";
import { relayNotice } from "./relay-notice.js";
import { DEFAULT_ZONE, pickZone, withZone, zoneName, zoned } from "./zones.js";
import { renderZones, zoneSections } from "./home-zones.js";

const STEP = 0.5;
const DEBOUNCE_MS = 600;
const HEAT_RANGE = [5, 30]; // NewOverride.heat_c bounds
const COOL_RANGE = [15, 35]; // NewOverride.cool_c bounds
const remembered = { hold: 'next_change', hours: '2' };

const MODES = [
  ['heat', 'Heat'],
  ['cool', 'Cool'],
  ['auto', 'Auto'],
  ['off', 'Off'],
];

// The reason codes in everyday words; the engine's own reason text (with its numbers) is shown
// underneath for whoever wants the detail.
const PLAIN = {
  heat_below_band: 'Colder than the target, so the heating is on.',
  heat_above_band: 'Warm enough: the heating is off.',
  heat_in_band: 'Close to the target: holding the heating as it is.',
  cool_above_band: 'Warmer than the target, so the cooling is on.',
  cool_below_band: 'Cool enough: the cooling is off.',
  cool_in_band: 'Close to the target: holding the cooling as it is.',
  auto_deadband: 'Between the heating and cooling targets: nothing needs to run.',
  preheat: 'Starting early so it is warm in time for the next target.',
  precool: 'Starting early so it is cool in time for the next target.',
  heat_coast: 'Heating off early: the heat already in the radiators will finish the job.',
  min_on_time: 'Keeping the equipment on for its minimum run time.',
  min_off_time: 'Letting the equipment rest for its minimum off time.',
  changeover: 'Waiting between heating and cooling.',
  mode_off: 'The system is switched off.',
  frost_floor: 'Frost protection: heating to keep the house above the frost floor.',
  max_ceiling: 'Too hot: above the maximum ceiling, heating is blocked.',
  sensor_loss_duty: 'No usable sensor: heating in short timed bursts to stay safe.',
  sensor_loss_off: 'No usable sensor: everything stays off.',
};

/** The reason in everyday words; inside the band it depends on what is running. */
function plainReason(d) {
  if (d.reason_code === 'heat_in_band') {
    return d.heat
      ? 'Nearly at the target: the heating runs on until just above it.'
      : 'Close to the target: the heating stays off for now.';
  }
  if (d.reason_code === 'cool_in_band') {
    return d.cool
      ? 'Nearly at the target: the cooling runs on until just below it.'
      : 'Close to the target: the cooling stays off for now.';
  }
  return PLAIN[d.reason_code] || '';
}

const STATE_LABEL = {
  heating: 'Heating',
  cooling: 'Cooling',
  waiting: 'Waiting',
  idle: 'Idle',
  off: 'Off',
};

/** Seconds until a protection hold ends, counted from when the decision was received (its
 * `at` and `held_until` are both the engine's clock: no browser clock skew). */
function heldLeftS(d, now = Date.now()) {
  if (!d?.held_until) return null;
  const left = Date.parse(d.held_until) - Date.parse(d.at) - (now - (d.receivedAt ?? now));
  return Number.isFinite(left) ? left / 1000 : null;
}

/** Kept on one line when the status wraps: "heat in 9 min 42 s" breaks before, not inside. */
const together = (text) => text.replace(/ /g, '\u00a0');

/** "in 1 min 40 s", or "any moment" once the hold is over and the next decision is due. */
function countdown(d) {
  const left = heldLeftS(d);
  if (left === null) return '';
  return left > 0.5 ? `in ${fmtDuration(left, true)}` : 'any moment';
}

/** Which system a hold keeps off: the one the mode (and, in auto, the temperature) calls for. */
function heldSystem(d) {
  if (d.mode === 'cool') return 'cooling';
  if (d.mode === 'auto' && d.effective_temp_c !== null && d.effective_temp_c > d.cool_setpoint_c) {
    return 'cooling';
  }
  return 'heat';
}

/** What the system does: heating, cooling, waiting (held off by a protection), idle, off. */
function stateOf(d, mode) {
  if (d?.heat) return 'heating';
  if (d?.cool) return 'cooling';
  if (d && (d.reason_code === 'min_off_time' || d.reason_code === 'changeover')) return 'waiting';
  if (mode === 'off') return 'off';
  return 'idle';
}

// The state's why in a few words, where it needs no numbers.
const SHORT_REASON = {
  heat_below_band: 'Colder than the target',
  heat_above_band: 'Warm enough',
  cool_above_band: 'Warmer than the target',
  cool_below_band: 'Cool enough',
  auto_deadband: 'Between the heating and cooling targets',
  mode_off: 'Switched off',
  frost_floor: 'Frost protection',
  max_ceiling: 'Above the maximum ceiling',
  sensor_loss_duty: 'No usable sensor: short timed bursts',
  sensor_loss_off: 'No usable sensor',
};

/** Why, in a few words beside the state: "Minimum off time: heat in 1 min 40 s". */
function statusText(d) {
  if (!d) return '';
  const held = (what) => together(`${what} ${countdown(d)}`.trim());
  switch (d.reason_code) {
    case 'heat_in_band':
      return d.heat ? 'Nearly at the target' : 'Close to the target';
    case 'cool_in_band':
      return d.cool ? 'Nearly at the target' : 'Close to the target';
    case 'preheat':
    case 'precool':
      return d.outlook
        ? `Early start: ${fmtTemp(d.outlook.target_c)} by ${fmtTime(d.outlook.segment_start)}`
        : 'Early start for the next target';
    case 'min_on_time':
      return `Minimum run time: ${held('off')}`;
    case 'min_off_time':
      return `Minimum off time: ${held(heldSystem(d))}`;
    case 'changeover':
      return d.held_until ? `Changeover: ${held(heldSystem(d))}` : 'Changeover: waiting for the other system to stop';
    default:
      return SHORT_REASON[d.reason_code] || '';
  }
}

const clamp = (v, [lo, hi]) => Math.min(hi, Math.max(lo, v));
const round1 = (v) => Math.round(v * 10) / 10;

// ----- skeleton ----------------------------------------------------------------------------

function holdControls() {
  const holdSel = h('select', { id: 'hold', 'aria-label': 'Hold' },
    h('option', { value: 'next_change', text: 'Until the next change' }),
    h('option', { value: 'for', text: 'For a few hours' }),
    h('option', { value: 'indefinite', text: 'Until I resume' }));
  const holdHours = h('input', {
    id: 'hold-hours', type: 'number', min: '0.5', max: '720', step: '0.5', value: '2', inputmode: 'decimal', 'aria-label': 'Hold hours',
  });
  const holdHoursWrap = h('label', { class: 'hold-hours' }, holdHours, h('span', { text: 'h' }));
  // The hold chosen last is kept while the page is open (not across reloads: a fresh page
  // starts from the default, "until the next change").
  holdSel.value = remembered.hold;
  holdHours.value = remembered.hours;
  const syncHold = () => {
    holdHoursWrap.hidden = holdSel.value !== 'for';
    remembered.hold = holdSel.value;
    remembered.hours = holdHours.value;
  };
  holdSel.addEventListener('change', syncHold);
  holdHours.addEventListener('change', syncHold);
  syncHold();
  return { holdSel, holdHours, holdHoursWrap };
}

const tempButton = (id, label, symbol) =>
  h('button', { type: 'button', id, class: 'temp-btn', 'aria-label': label }, h('span', { 'aria-hidden': 'true', text: symbol }));

/** The face's and the controls' elements, empty: renderers fill them. */
function elements() {
  const els = {
    zoneEl: h('h2', { id: 'home-zone', class: 'home-zone', hidden: true }),
    tempEl: h('div', { id: 'home-temp', class: 'home-temp', 'aria-live': 'off', text: '—' }),
    stateEl: h('span', { id: 'home-state', class: 'home-state', text: '' }),
    // The state and why, together: "WAITING · Minimum off time: heat in 1 min 40 s".
    statusEl: h('span', { id: 'home-status', class: 'home-status', text: '' }),
    targetEl: h('span', { id: 'home-target', class: 'home-target', text: '—' }),
    targetLabel: h('span', { class: 'home-target-label', text: 'Target' }),
    coolEl: h('div', { class: 'home-cool muted', hidden: true }),
    nextEl: h('div', { id: 'home-next', class: 'home-next', text: '' }),
    plainEl: h('p', { class: 'home-plain' }),
    reasonEl: h('p', { id: 'home-reason', class: 'home-reason muted' }),
    expectEl: h('p', { class: 'home-expect muted', hidden: true }),
    equipEl: h('div', { class: 'home-equipment', 'aria-label': 'Equipment' }),
    downBtn: tempButton('temp-down', 'Lower target', '−'),
    upBtn: tempButton('temp-up', 'Raise target', '+'),
    resumeBtn: h('button', { type: 'button', id: 'home-resume', class: 'btn btn-primary', text: 'Resume schedule' }),
    overrideText: h('span', { class: 'override-text' }),
    modeBtns: MODES.map(([m, label]) =>
      h('button', { type: 'button', class: 'mode-btn', 'data-mode': m, 'aria-pressed': 'false', text: label })),
    sensorsEl: h('div', { class: 'sensor-cards' }),
    errorEl: h('p', { class: 'view-error', role: 'alert', hidden: true }),
    ...holdControls(),
  };
  els.overrideEl = h('div', { id: 'home-override', class: 'home-override', hidden: true, role: 'status' }, els.overrideText, els.resumeBtn);
  return els;
}

/** The page's sections around the elements. */
function layoutPage(els) {
  const face = h('section', { class: 'home-face', 'aria-label': 'Temperature' },
    h('div', { class: 'dial' },
      els.zoneEl,
      h('div', { class: 'home-state-box' }, els.stateEl, els.statusEl),
      els.tempEl,
      h('div', { class: 'home-target-row' }, els.targetLabel, els.targetEl),
      els.coolEl,
      els.nextEl));
  // The wall display has no header: without a session its controls give way to this.
  const kioskLogin = h('button', {
    type: 'button', id: 'kiosk-login', class: 'btn btn-primary kiosk-login', text: 'Log in to change the temperature', onclick: () => requireLogin(),
  });
  const controls = h('section', { class: 'home-controls', 'aria-label': 'Controls' },
    kioskLogin,
    h('div', { class: 'temp-buttons' }, els.downBtn, els.upBtn),
    h('div', { class: 'hold-row' }, h('span', { class: 'hold-label', text: 'Hold' }), els.holdSel, els.holdHoursWrap),
    els.overrideEl,
    h('div', { class: 'segmented mode-group', role: 'group', 'aria-label': 'Mode' }, els.modeBtns));
  const why = h('section', { class: 'home-why card', 'aria-label': 'Why' }, els.plainEl, els.reasonEl, els.expectEl, els.equipEl);
  const sensors = h('section', { class: 'home-sensors', 'aria-labelledby': 'home-sensors-title' },
    h('h2', { id: 'home-sensors-title', class: 'section-title', text: 'Sensors' }), els.sensorsEl);
  return { main: h('div', { class: 'home-main' }, face, controls), why, sensors };
}

// ----- what the state says -----------------------------------------------------------------

const modeOf = (st) => st.control?.settings?.mode || st.control?.decision?.mode || 'heat';

function currentSegment(st, now = Date.now()) {
  const segs = st.timeline?.segments || [];
  return segs.find((s) => Date.parse(s.start) <= now && now < Date.parse(s.end)) || null;
}

/** The setpoints in force now: the timeline's segment (overrides included), else the decision's. */
function targets(st) {
  const seg = currentSegment(st);
  if (seg) return { heat: seg.heat_c, cool: seg.cool_c };
  const d = st.control?.decision;
  if (d) return { heat: d.heat_setpoint_c, cool: d.cool_setpoint_c };
  return null;
}

/** Which setpoint the big number shows: the cooling one in cool mode, else the heating one. */
const primary = (st, t) => (t ? (modeOf(st) === 'cool' ? t.cool : t.heat) : null);
const segTargets = (s) => ({ heat: s.heat_c, cool: s.cool_c });

function whenText(iso) {
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? fmtTime(d) : `${fmtDay(d)} ${fmtTime(d)}`;
}

function activeOverride(st, now = Date.now()) {
  const live = st.overrides.filter(
    (o) => Date.parse(o.start) <= now && (o.end === null || o.end === undefined || Date.parse(o.end) > now),
  );
  // Among overrides in force the newest start wins (Override.created doc).
  live.sort((a, b) => Date.parse(b.start) - Date.parse(a.start) || b.id - a.id);
  return live[0] || null;
}

// ----- rendering ---------------------------------------------------------------------------

/** The big number with a smaller unit; textContent stays exactly fmtTemp's "19.8 °C". */
function showTemp(tempEl, c) {
  const text = fmtTemp(c);
  const m = /^(.*) (°C)$/.exec(text);
  if (!m) {
    tempEl.textContent = text;
    return;
  }
  tempEl.replaceChildren(m[1], h('span', { class: 'unit' }, ' ', m[2]));
}

/** The face: the decision's temperature, state and why, all from the same decision. */
function renderDecision(v) {
  const { st, els } = v;
  const d = st.control?.decision;
  showTemp(els.tempEl, d ? d.effective_temp_c : null);
  const s = st.control ? stateOf(d, modeOf(st)) : 'idle';
  els.stateEl.textContent = STATE_LABEL[s];
  v.el.dataset.state = s;
  renderStatus(v);
  els.plainEl.textContent = d ? plainReason(d) : st.control ? 'Waiting for the first decision…' : '';
  els.reasonEl.textContent = d ? d.reason : '';
  const expect = d ? expectText(d) : null;
  els.expectEl.hidden = !expect;
  if (expect) els.expectEl.textContent = expect;
}

/** When the target will be reached, or when an early start begins; null: nothing to say. */
function expectText(d) {
  if (d.expected_at && (d.heat || d.cool)) return `Expected to reach the target around ${whenText(d.expected_at)}.`;
  if (d.outlook && d.outlook.lead_s > 0 && !d.heat && !d.cool) {
    const start = new Date(Date.parse(d.outlook.segment_start) - d.outlook.lead_s * 1000);
    return `Will start around ${fmtTime(start)} to reach ${fmtTemp(d.outlook.target_c)} by ${fmtTime(d.outlook.segment_start)}.`;
  }
  return null;
}

/** The short why beside the state; a hold's countdown ticks every second while it runs. */
function renderStatus(v) {
  const { st, els } = v;
  const d = st.control?.decision;
  els.statusEl.textContent = d ? statusText(d) : st.control ? 'Waiting for the first decision' : '';
  const counting = heldLeftS(d) !== null;
  if (counting && !st.countdown) st.countdown = setInterval(() => renderStatus(v), 1000);
  if (!counting && st.countdown) {
    clearInterval(st.countdown);
    st.countdown = null;
  }
}

function renderTarget(v) {
  const { st, els } = v;
  const t = st.pending || targets(st);
  const m = modeOf(st);
  els.targetEl.textContent = fmtTemp(primary(st, t));
  els.targetEl.classList.toggle('pending', Boolean(st.pending));
  els.coolEl.hidden = !(t && m === 'auto');
  if (t && m === 'auto') els.coolEl.textContent = `Cooling above ${fmtTemp(t.cool)}`;
  els.targetLabel.textContent = m === 'cool' ? 'Cool to' : m === 'off' ? 'Schedule' : 'Heat to';
}

/** "until 22:00, then 17.0 °C": the next segment whose target differs from now's. */
function renderNext(v) {
  const { st, els } = v;
  const segs = st.timeline?.segments || [];
  const now = Date.now();
  const idx = segs.findIndex((s) => Date.parse(s.start) <= now && now < Date.parse(s.end));
  if (idx < 0) {
    els.nextEl.textContent = '';
    return;
  }
  const cur = segs[idx];
  const differs = (s) => (modeOf(st) === 'auto'
    ? s.heat_c !== cur.heat_c || s.cool_c !== cur.cool_c
    : primary(st, segTargets(s)) !== primary(st, segTargets(cur)));
  const next = segs.slice(idx + 1).find(differs);
  els.nextEl.textContent = next
    ? `until ${whenText(next.start)}, then ${fmtTemp(primary(st, segTargets(next)))}`
    : 'no change in the next day';
}

/** "Holding 22.0 °C until 18:00, when Evening starts (21.0 °C)." while an override holds. */
function renderOverride(v) {
  const { st, els } = v;
  const o = activeOverride(st);
  const seg = currentSegment(st);
  const byTimeline = seg && seg.rule && seg.rule.layer === 'override';
  els.overrideEl.hidden = !o && !byTimeline;
  if (!o && !byTimeline) return;
  const has = (x) => x !== null && x !== undefined;
  const heat = o ? o.heat_c : seg.heat_c;
  const cool = o ? o.cool_c : seg.cool_c;
  const m = modeOf(st);
  let held;
  if (m === 'cool') held = fmtTemp(has(cool) ? cool : heat);
  else if (m === 'auto' && has(heat) && has(cool)) held = `${fmtTemp(heat)} (cooling above ${fmtTemp(cool)})`;
  else held = fmtTemp(has(heat) ? heat : cool);
  if (o && !has(o.end)) {
    els.overrideText.textContent = `Holding ${held} until you resume.`;
    return;
  }
  const end = o ? o.end : seg.end;
  const then = afterText(st, segmentAt(v, end), seg);
  els.overrideText.textContent = `Holding ${held} until ${whenText(end)}${then ? `, ${then}` : ''}.`;
}

/** The segment that starts at `iso`: from the timeline shown, else read once (a hold may end
 * beyond the next 26 hours). */
function segmentAt(v, iso) {
  const { st } = v;
  const t = Date.parse(iso);
  const known = (st.timeline?.segments || []).find((x) => Date.parse(x.start) === t);
  if (known) return known;
  if (st.after?.end === iso) return st.after.segment;
  st.after = { end: iso, segment: null };
  api('GET', withZone(`/v1/schedule/timeline?${new URLSearchParams({ from: iso, hours: '1' })}`, st.zone))
    .then((tl) => {
      if (!st.alive || st.after?.end !== iso) return;
      st.after.segment = tl?.segments?.[0] || null;
      renderOverride(v);
    })
    .catch(() => {});
  return null;
}

/** What takes over when a hold ends: "when Evening starts", "then Day (21.0 °C)", "then the
 * default 20.0 °C". `now` is the segment in force (its beaten list: what runs underneath). */
function afterText(st, next, now) {
  if (!next) return '';
  const value = fmtTemp(primary(st, segTargets(next)));
  const r = next.rule;
  if (!r || r.layer === 'default') return `then the default ${value}`;
  if (r.layer === 'override') return `then another hold of ${value}`;
  const underneath = (now?.beaten || []).some((b) => b.id === r.id && b.layer === r.layer);
  return underneath ? `then ${r.name} (${value})` : `when ${r.name} starts (${value})`;
}

function renderModes(v) {
  const m = v.st.control?.settings?.mode;
  for (const b of v.els.modeBtns) b.setAttribute('aria-pressed', String(b.dataset.mode === m));
}

function renderEquipment(v) {
  v.els.equipEl.replaceChildren(...v.st.relays.filter((r) => r.function).map((r) =>
    h('span', { class: `chip chip-${r.state === 'on' ? r.function : 'off'}` }, `${r.name || r.output_id}: ${r.state === 'on' ? 'on' : 'off'}`)));
}

/** A sensor card's status: counted, excluded (and why), failed, stale, or not counted. */
function sensorStatus(input, latest, failed, stale) {
  if (input && input.used) {
    return { status: input.weight !== 1 ? `Counted (weight ${round1(input.weight)})` : 'Counted', cls: 'ok', detail: null };
  }
  if (input && input.excluded) {
    return { status: fmtExcluded(input.excluded), cls: excludedTone(input.excluded), detail: input.detail || null };
  }
  if (failed) return { status: 'Failed', cls: 'bad', detail: 'failed reading' };
  if (stale) {
    const detail = latest ? `stale: no reading for ${fmtAgo(latest.at).replace(' ago', '')}` : 'no reading yet';
    return { status: 'Stale', cls: 'warn', detail };
  }
  return { status: 'Not counted', cls: 'muted', detail: null };
}

function sensorCard(st, id) {
  const s = st.sensors.find((x) => x.id === id) || null;
  const input = (st.control?.decision?.sensors || []).find((x) => x.id === id) || null;
  const latest = s?.latest || (input && input.at ? { at: input.at, value: input.value } : null);
  const failed = latest && (latest.value === null || latest.value === undefined);
  const stale = s ? s.stale : input?.excluded === 'stale';
  const { status, cls, detail } = sensorStatus(input, latest, failed, stale);
  return h('article', { class: `sensor-card status-${cls}`, 'data-sensor-id': id },
    h('div', { class: 'sensor-name', text: s?.name || s?.alias || input?.name || s?.id || input?.id }),
    h('div', { class: 'sensor-temp', text: failed ? '—' : fmtTemp(latest ? latest.value : null) }),
    h('div', { class: `sensor-status badge badge-${cls}`, text: status }),
    detail ? h('div', { class: 'sensor-detail', text: detail }) : null,
    h('div', { class: 'sensor-age muted', text: latest ? `read ${fmtAgo(latest.at)}` : 'no reading yet' }));
}

function renderSensors(v) {
  const { st } = v;
  const ids = st.sensors.map((s) => s.id);
  for (const i of st.control?.decision?.sensors || []) if (!ids.includes(i.id)) ids.push(i.id);
  v.els.sensorsEl.replaceChildren(...(ids.length
    ? ids.map((id) => sensorCard(st, id))
    : [h('p', { class: 'muted', text: 'No sensors have reported yet.' })]));
}

function renderSensor(v, id) {
  const old = v.els.sensorsEl.querySelector(`[data-sensor-id="${CSS.escape(id)}"]`);
  if (!old) return renderSensors(v);
  old.replaceWith(sensorCard(v.st, id));
}

function renderAll(v) {
  renderDecision(v);
  renderTarget(v);
  renderNext(v);
  renderOverride(v);
  renderModes(v);
  renderSensors(v);
  renderEquipment(v);
  renderZoneCards(v);
}

/** The zones' and plants' cards, and the face's zone name; a plant's protection counts down
 * every second while one runs. */
function renderZoneCards(v) {
  const { st, els } = v;
  const many = zoned(st.config);
  els.zoneEl.hidden = !many;
  if (many) els.zoneEl.textContent = zoneName(st.config, st.zone);
  const counting = renderZones(v.zones, many ? st.house : null, st.zone, st.relays, st.houseAt);
  if (counting && !st.plantTick) st.plantTick = setInterval(() => renderZoneCards(v), 1000);
  if (!counting && st.plantTick) {
    clearInterval(st.plantTick);
    st.plantTick = null;
  }
}

// ----- loading -----------------------------------------------------------------------------

/** Keep `GET /v1/control`'s answer; its decision's countdown counts from now. */
function setControl(st, c) {
  if (c?.decision) c.decision.receivedAt = Date.now();
  st.control = c;
}

/** Moments after the engine starts its loop has not planned the house (503): the cards wait
 * for the `house` event instead of calling it a failure. */
function notPlannedYet(e) {
  if (e?.status !== 503) throw e;
}

/** Keep the house status; its protections count from now. */
function setHouse(st, house) {
  st.house = house;
  st.houseAt = Date.now();
}

async function load(v, parts = ['control', 'timeline', 'overrides', 'sensors', 'relays', 'house']) {
  const { st, els } = v;
  const z = (path) => withZone(path, st.zone);
  const jobs = {
    control: () => api('GET', z('/v1/control')).then((c) => setControl(st, c)),
    timeline: () => api('GET', z('/v1/schedule/timeline?hours=26')).then((t) => (st.timeline = t)),
    overrides: () => api('GET', z('/v1/overrides')).then((o) => (st.overrides = o || [])),
    sensors: () => api('GET', '/v1/sensors').then((s) => (st.sensors = s || [])),
    relays: () => api('GET', '/v1/relays').then((r) => (st.relays = r || [])),
    // Only a house with zones has anything to show here: a one-zone house asks nothing new.
    house: () => (zoned(st.config) ? api('GET', '/v1/house').then((h) => setHouse(st, h), notPlannedYet) : Promise.resolve()),
  };
  const results = await Promise.allSettled(parts.map((p) => jobs[p]()));
  if (!st.alive) return;
  const failed = results.filter((r) => r.status === 'rejected');
  els.errorEl.hidden = !failed.length;
  if (failed.length) els.errorEl.textContent = `Some data could not be loaded: ${failed[0].reason?.message || failed[0].reason}`;
  renderAll(v);
}

// ----- actions -----------------------------------------------------------------------------

/** +/−: the pending target moves at once; rapid presses coalesce into one override. */
async function press(v, delta) {
  const { st } = v;
  if (!session().authenticated) {
    // Ask first, so nobody watches a target change that will never be sent.
    if (!(await requireLogin())) return;
  }
  const base = st.pending || targets(st);
  if (!base) return;
  const m = modeOf(st);
  const next = { heat: base.heat, cool: base.cool };
  if (m !== 'cool') next.heat = clamp(round1(base.heat + delta), HEAT_RANGE);
  if (m === 'cool' || m === 'auto') next.cool = clamp(round1(base.cool + delta), COOL_RANGE);
  st.pending = next;
  renderTarget(v);
  clearTimeout(st.timer);
  st.timer = setTimeout(() => send(v), DEBOUNCE_MS);
}

function holdBody(els) {
  const kind = els.holdSel.value;
  if (kind === 'for') {
    const hours = Number(els.holdHours.value);
    const minutes = Math.round((Number.isFinite(hours) && hours > 0 ? hours : 2) * 60);
    return { type: 'for', minutes: Math.min(Math.max(minutes, 1), 43200) };
  }
  if (kind === 'indefinite') return { type: 'indefinite' };
  return { type: 'next_change' };
}

async function send(v) {
  const { st } = v;
  st.timer = null;
  if (!st.pending) return;
  if (st.sending) {
    // A press landed while the previous override was on its way: send again afterwards.
    st.timer = setTimeout(() => send(v), DEBOUNCE_MS);
    return;
  }
  const m = modeOf(st);
  const want = st.pending;
  const body = { hold: holdBody(v.els) };
  if (st.zone !== DEFAULT_ZONE) body.zone = st.zone;
  if (m !== 'cool') body.heat_c = want.heat;
  if (m === 'cool' || m === 'auto') body.cool_c = want.cool;
  st.sending = true;
  try {
    await api('POST', '/v1/overrides', body);
    await load(v, ['timeline', 'overrides', 'control']);
    // Keep showing the pending value until the fresh data says the same (no flicker back).
    if (st.pending === want) st.pending = null;
  } catch (e) {
    if (st.pending === want) st.pending = null;
    toast(e.message || String(e), 'error');
  } finally {
    st.sending = false;
    if (st.alive) renderAll(v);
  }
}

async function resume(v) {
  const btn = v.els.resumeBtn;
  btn.disabled = true;
  try {
    await api('DELETE', withZone('/v1/overrides', v.st.zone));
    v.st.pending = null;
    await load(v, ['timeline', 'overrides', 'control']);
    toast('Back on schedule.', 'ok');
  } catch (e) {
    toast(e.message || String(e), 'error');
  } finally {
    btn.disabled = false;
  }
}

async function chooseMode(v, m) {
  const { st, els } = v;
  if (!st.control || st.control.settings.mode === m) return;
  for (const x of els.modeBtns) x.disabled = true;
  try {
    // The PUT replaces the settings: send them all, fresh, with only the mode changed.
    const fresh = await api('GET', withZone('/v1/control', st.zone));
    setControl(st, fresh);
    await api('PUT', withZone('/v1/control/settings', st.zone), { ...fresh.settings, mode: m });
    await load(v, ['control', 'timeline']);
  } catch (e) {
    toast(e.message || String(e), 'error');
  } finally {
    for (const x of els.modeBtns) x.disabled = false;
    renderModes(v);
  }
}

/** The face shows a new decision of its zone. */
function showDecision(v, decision) {
  const { st } = v;
  if (!st.control) st.control = { settings: { mode: decision.mode }, decision: null };
  decision.receivedAt = Date.now();
  st.control.decision = decision;
  renderDecision(v);
  if (!st.pending) renderTarget(v);
  renderSensors(v);
}

/** The house's zones (an engine without zones answers 404: one zone, as before), and which
 * of them the face shows: the one asked for, else the default. */
async function loadZones(v) {
  const { st } = v;
  st.config = await api('GET', '/v1/zones').catch(() => null);
  if (!st.alive) return;
  st.zone = pickZone(st.config, st.wanted);
}

/** The event stream's handlers; returns the unsubscribers. */
function followEvents(v) {
  const { st } = v;
  return [
    // A reading moves its sensor's card. The face waits for the decision made from it (the
    // engine publishes one whenever the temperature it decides on changes), so the number and
    // the reason beside it never disagree.
    on('reading', (ev) => {
      const s = st.sensors.find((x) => x.id === ev.sensor_id);
      if (!s) return load(v, ['sensors']);
      s.latest = { at: ev.at, value: ev.value };
      s.stale = false;
      renderSensor(v, ev.sensor_id);
    }),
    // `decision` carries the default zone's; another zone's comes with the house status.
    on('decision', (ev) => {
      if (ev.decision && st.zone === DEFAULT_ZONE) showDecision(v, ev.decision);
    }),
    on('house', (ev) => {
      const house = ev.house || ev;
      setHouse(st, house);
      const mine = st.zone !== DEFAULT_ZONE && (house.zones || []).find((x) => x.id === st.zone);
      if (mine?.decision) showDecision(v, mine.decision);
      renderZoneCards(v);
    }),
    on('relay', (ev) => {
      const r = st.relays.find((x) => x.host_id === ev.host_id && x.output_id === ev.output_id);
      if (!r) return load(v, ['relays']);
      r.state = ev.state;
      renderEquipment(v);
    }),
    on('changed', (ev) => (ev.what === 'zones' ? loadZones(v).then(() => load(v)) : load(v, ['control', 'timeline', 'overrides']))),
    on('lagged', () => loadZones(v).then(() => load(v))),
  ];
}

/** The view's state, before anything is loaded. */
function initialState(wanted) {
  return {
    wanted, // the zone asked for (`?zone=`)
    zone: DEFAULT_ZONE, // the zone shown: the one asked for once the house is known to have it
    config: null, // GET /v1/zones: the house's zones and plants, null for an engine without
    house: null, // GET /v1/house and the `house` event, in a house with zones
    houseAt: 0, // when it was received: plant protections count from it
    plantTick: null,
    control: null, // ControlView
    timeline: null,
    overrides: [],
    sensors: [],
    relays: [],
    pending: null, // {heat, cool} while +/− presses are being collected or sent
    timer: null,
    countdown: null, // the 1 s timer of a protection hold's countdown, while one runs
    after: null, // {end, segment}: what follows a hold that ends beyond the timeline
    sending: false,
    alive: true,
  };
}

export async function mount(el, ctx) {
  const wanted = ctx?.params?.get('zone') || null;
  const st = initialState(wanted);
  const els = elements();
  const page = layoutPage(els);
  el.classList.add('home');
  if (ctx && ctx.kiosk) el.classList.add('home-kiosk');
  // A kiosk for one zone (`?zone=`) shows that zone alone; without one, every zone compactly.
  if (ctx && ctx.kiosk && wanted) el.classList.add('home-one-zone');
  // Above the face: when a heat or cool output is simulated or its agent does not answer.
  const notice = relayNotice();
  const zones = zoneSections();
  el.append(els.errorEl, notice.el, page.main, page.why, zones.zones, zones.plants, page.sensors);
  const v = { st, els, el, zones };
  els.upBtn.addEventListener('click', () => press(v, STEP));
  els.downBtn.addEventListener('click', () => press(v, -STEP));
  els.resumeBtn.addEventListener('click', () => resume(v));
  for (const b of els.modeBtns) b.addEventListener('click', () => chooseMode(v, b.dataset.mode));
  const offs = followEvents(v);
  // "What comes next", the override's end and the "min ago" texts move with the clock. Once a
  // minute re-reads the timeline (cheap) so a new day's segments appear.
  const tick = setInterval(() => load(v, ['timeline', 'overrides']), 60_000);
  await loadZones(v);
  await load(v);
  return () => {
    st.alive = false;
    clearInterval(tick);
    clearInterval(st.plantTick);
    notice.stop();
    clearInterval(st.countdown);
    // An unsent +/− still goes out: the user pressed it, leaving the page is no "cancel".
    if (st.timer) {
      clearTimeout(st.timer);
      send(v);
    }
    for (const off of offs) off();
  };
}
