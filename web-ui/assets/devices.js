// Devices: every sensor (name, weight, calibration with a hint, why it does not count), every
// relay output (what it drives) and every agent (online, last seen, clock skew). Live readings
// and relay switches update in place; a row being edited is never overwritten.

import { api, on } from "./api.js";
import { fmtTemp, fmtAgo, fmtTime } from "./format.js";
import { toast } from "./toast.js";
import { h } from "./dom.js";

const FUNCTIONS = [
  ['heat', 'Heating'],
  ['cool', 'Cooling'],
  ['fan', 'Fan'],
  ['aux', 'Auxiliary heat'],
];
// Differences below this are sensor noise, not a calibration error worth a hint.
const HINT_MIN_C = 0.3;
const HINT_MAX_C = 5;


const round1 = (v) => Math.round(v * 10) / 10;
const signed = (v) => `${v > 0 ? '+' : v < 0 ? '−' : ''}${Math.abs(round1(v)).toFixed(1)}`;

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

function duration(s) {
  if (s === null || s === undefined) return '';
  s = Math.round(s);
  if (s < 90) return `${s} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 360) / 10} h`;
}

export async function mount(el) {
  const st = { sensors: [], decision: null, relays: [], agents: [], alive: true };
  const rows = new Map(); // sensor id → {root, display, inputs, dirty}

  const errorEl = h('p', { class: 'view-error', role: 'alert', hidden: true });
  const sensorsEl = h('div', { class: 'device-list two-col' });
  const relaysEl = h('div', { class: 'device-list two-col' });
  const agentsEl = h('div', { class: 'device-list two-col' });
  el.append(
    h('h1', { class: 'page-title', text: 'Devices' }),
    errorEl,
    h('h2', { class: 'section-title', id: 'dev-sensors', text: 'Sensors' }),
    h('p', {
      class: 'muted',
      text:
        'Weight counts a sensor in the average when a schedule rule names no sensors (0: never, e.g. outdoors). ' +
        'The offset is added to every reading.',
    }),
    sensorsEl,
    h('h2', { class: 'section-title', id: 'dev-relays', text: 'Relays' }),
    relaysEl,
    h('h2', { class: 'section-title', id: 'dev-agents', text: 'Agents' }),
    agentsEl,
  );

  // ----- sensors -------------------------------------------------------------------------
  const inputOf = (id) => (st.decision?.sensors || []).find((i) => i.id === id) || null;
  const displayName = (s) => s.name || s.alias || s.id;

  /**
   * The calibration hint: this sensor against the median of the other fresh sensors that the
   * latest decision counted (an outdoor sensor or an outlier would skew the reference).
   */
  function hintFor(s) {
    const v = s.latest?.value;
    if (s.stale || !Number.isFinite(v) || !(s.weight > 0)) return null;
    const counted = (o) => {
      const input = inputOf(o.id);
      return input ? input.used : o.weight > 0;
    };
    const others = st.sensors.filter(
      (o) => o.id !== s.id && !o.stale && Number.isFinite(o.latest?.value) && counted(o),
    );
    if (others.length < 1) return null;
    const ref = median(others.map((o) => o.latest.value));
    const diff = v - ref;
    // Small differences are noise; large ones are a different room or a broken sensor, which
    // an offset would only hide.
    if (Math.abs(diff) < HINT_MIN_C || Math.abs(diff) > HINT_MAX_C) return null;
    const suggested = round1((Number(s.offset_c) || 0) - diff);
    if (Math.abs(suggested) > 10) return null;
    const what = others.length === 1 ? displayName(others[0]) : 'the median of the others';
    return {
      text: `Reads ${Math.abs(round1(diff)).toFixed(1)} °C ${diff > 0 ? 'above' : 'below'} ${what}: offset ${signed(suggested)} °C?`,
      suggested,
    };
  }

  function sensorStatus(s) {
    const input = inputOf(s.id);
    const failed = s.latest && (s.latest.value === null || s.latest.value === undefined);
    if (input && input.used) {
      return { cls: 'ok', text: 'Counted', why: null };
    }
    if (input && input.excluded) {
      const cls = input.excluded === 'not_selected' ? 'muted' : input.excluded === 'stale' || input.excluded === 'no_reading' ? 'warn' : 'bad';
      const label = { no_reading: 'No reading', stale: 'Stale', failed: 'Failed', implausible: 'Implausible', stuck: 'Stuck', outlier: 'Outlier', not_selected: 'Not selected' }[input.excluded] || input.excluded;
      return { cls, text: label, why: input.detail || null };
    }
    if (failed) return { cls: 'bad', text: 'Failed', why: 'The last reading failed (the sensor did not answer or answered garbage).' };
    if (s.stale) {
      return {
        cls: 'warn',
        text: 'Stale',
        why: s.latest ? `stale: no reading for ${fmtAgo(s.latest.at).replace(' ago', '')}` : 'No reading yet.',
      };
    }
    return { cls: 'muted', text: 'Not counted', why: null };
  }

  function renderSensorDisplay(row, s) {
    const status = sensorStatus(s);
    const failed = s.latest && (s.latest.value === null || s.latest.value === undefined);
    const meta = [s.id, s.type, `host ${s.host_id}`];
    if (s.alias && s.alias !== s.name) meta.push(`alias “${s.alias}”`);
    meta.push(s.latest ? `read ${fmtAgo(s.latest.at)}` : 'never read');
    row.display.replaceChildren(
      h(
        'div',
        { class: 'device-head' },
        h('h3', { text: displayName(s) }),
        h('span', { class: `badge badge-${status.cls} sensor-state`, text: status.text }),
        h('span', { class: 'device-temp sensor-temp', text: failed ? '—' : fmtTemp(s.latest?.value) }),
      ),
      h('div', { class: 'device-meta', text: meta.join(' · ') }),
    );
    if (status.why) row.display.append(h('div', { class: 'device-why sensor-why', text: status.why }));
    const hint = hintFor(s);
    row.hint.hidden = !hint;
    if (hint) {
      row.hint.replaceChildren(
        h('span', { text: hint.text }),
        h('button', {
          type: 'button',
          class: 'btn btn-quiet',
          text: 'Use it',
          'aria-label': `Set the offset of ${displayName(s)} to ${signed(hint.suggested)} °C`,
          onclick: () => {
            row.inputs.offset.value = String(hint.suggested);
            row.dirty = true;
            row.inputs.offset.focus();
          },
        }),
      );
    }
  }

  function fillInputs(row, s) {
    row.inputs.name.value = s.name || '';
    row.inputs.name.placeholder = s.alias || s.id;
    row.inputs.weight.value = String(s.weight ?? 1);
    row.inputs.offset.value = String(s.offset_c ?? 0);
    row.dirty = false;
  }

  function buildSensorRow(s) {
    const uid = `s-${rows.size}`;
    const name = h('input', { class: 'sensor-name', id: `${uid}-name`, type: 'text', maxlength: '80', autocomplete: 'off' });
    const weight = h('input', { class: 'sensor-weight', id: `${uid}-weight`, type: 'number', min: '0', max: '10', step: '0.1', inputmode: 'decimal' });
    const offset = h('input', { class: 'sensor-offset', id: `${uid}-offset`, type: 'number', min: '-10', max: '10', step: '0.1', inputmode: 'decimal' });
    const save = h('button', { type: 'submit', class: 'btn btn-primary sensor-save', text: 'Save' });
    const error = h('p', { class: 'form-error', role: 'alert' });
    const display = h('div');
    const hint = h('div', { class: 'hint', hidden: true });
    const form = h(
      'form',
      { class: 'device-form', novalidate: true },
      h(
        'div',
        { class: 'device-fields' },
        h('label', { class: 'field', for: `${uid}-name` }, h('span', { text: 'Name' }), name),
        h('label', { class: 'field', for: `${uid}-weight` }, h('span', { text: 'Weight' }), weight),
        h('label', { class: 'field', for: `${uid}-offset` }, h('span', { text: 'Offset °C' }), offset),
      ),
      error,
      h('div', { class: 'device-actions' }, save),
    );
    const root = h('article', { class: 'card device-card', 'data-sensor-row': s.id }, display, hint, form);
    const row = { root, display, hint, inputs: { name, weight, offset }, error, save, dirty: false };
    for (const i of [name, weight, offset]) {
      i.addEventListener('input', () => {
        row.dirty = true;
      });
    }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      saveSensor(s.id, row);
    });
    fillInputs(row, s);
    return row;
  }

  async function saveSensor(id, row) {
    row.error.textContent = '';
    const num = (input, label) => {
      const raw = input.value.trim();
      if (raw === '' || input.validity.badInput) throw new Error(`${label} must be a number.`);
      return Number(raw);
    };
    let body;
    try {
      body = {
        name: row.inputs.name.value.trim() || null,
        weight: num(row.inputs.weight, 'Weight'),
        offset_c: num(row.inputs.offset, 'Offset'),
      };
    } catch (e) {
      row.error.textContent = e.message;
      return;
    }
    row.save.disabled = true;
    try {
      await api('PUT', `/v1/sensors/${encodeURIComponent(id)}/settings`, body);
      row.dirty = false;
      toast('Sensor saved.', 'ok');
      await load();
    } catch (e) {
      // Keep what was typed; say what the engine said.
      row.error.textContent = e.message || String(e);
    } finally {
      row.save.disabled = false;
    }
  }

  function renderSensors() {
    if (!st.sensors.length) {
      rows.clear();
      sensorsEl.replaceChildren(h('p', { class: 'muted', text: 'No sensors have reported yet.' }));
      return;
    }
    const keep = new Set();
    const ordered = [];
    for (const s of st.sensors) {
      let row = rows.get(s.id);
      if (!row) {
        row = buildSensorRow(s);
        rows.set(s.id, row);
      } else if (!row.dirty && !row.root.contains(document.activeElement)) {
        fillInputs(row, s);
      }
      renderSensorDisplay(row, s);
      keep.add(s.id);
      ordered.push(row.root);
    }
    for (const id of [...rows.keys()]) if (!keep.has(id)) rows.delete(id);
    sensorsEl.replaceChildren(...ordered);
  }

  // ----- relays --------------------------------------------------------------------------
  function relayDetails(r) {
    const out = [];
    const rep = r.reported;
    // The report's timers count from when it was made (age_s ago).
    const age = Number.isFinite(r.age_s) ? r.age_s : 0;
    const left = (s) => (s === null || s === undefined ? null : Math.max(0, s - age));
    if (rep) {
      const lease = left(rep.lease_remaining_s);
      if (lease !== null) out.push(lease > 0 ? `lease ${duration(lease)} left` : 'lease ran out');
      const pending = left(rep.pending_off_in_s);
      if (pending) out.push(`turns off in ${duration(pending)} (minimum on time)`);
      const blocked = left(rep.on_blocked_for_s);
      if (blocked) out.push(`can turn on in ${duration(blocked)} (minimum off time)`);
      if (rep.cycles !== undefined) out.push(`${rep.cycles} cycle${rep.cycles === 1 ? '' : 's'} since the agent started`);
    }
    // The engine's own count (age_s) when it gives one: this browser's clock may be off.
    out.push(Number.isFinite(r.age_s) ? `reported ${duration(r.age_s)} ago` : `reported ${fmtAgo(r.updated_at)}`);
    if (r.backend && !r.simulated) out.push(`backend ${r.backend}`);
    return out.join(' · ');
  }

  /** Why this relay's state may not be what the equipment does, in words; null when it is. */
  function relayWarnings(r) {
    const out = [];
    if (r.agent_reachable === false) {
      const since = r.agent_unreachable_since ? ` since ${fmtTime(r.agent_unreachable_since)}` : '';
      out.push(
        h('div', {
          class: 'device-why hint relay-unreachable',
          role: 'note',
          text:
            `Its relay agent has not answered${since}: “${r.state}” is what it last reported, ${duration(r.age_s)} ago. ` +
            'A running agent returns the output to its safe state when the lease runs out; a stopped one may leave it as it was until it restarts.',
        }),
      );
    }
    if (r.simulated) {
      out.push(
        h('div', {
          class: 'device-why hint relay-simulated',
          role: 'note',
          text: 'Simulated: this output switches no equipment (its relay agent runs with hardware "simulated").',
        }),
      );
    }
    return out;
  }

  let relaysDeferred = false;
  function renderRelays() {
    // Rebuilding while someone is choosing a function would close their select under them
    // (relay events come every few seconds while the equipment runs): redraw once they leave.
    const focused = document.activeElement;
    if (focused && relaysEl.contains(focused) && focused.matches('select')) {
      if (!relaysDeferred) {
        relaysDeferred = true;
        relaysEl.addEventListener('focusout', () => {
          relaysDeferred = false;
          if (st.alive) renderRelays();
        }, { once: true });
      }
      return;
    }
    if (!st.relays.length) {
      relaysEl.replaceChildren(h('p', { class: 'muted', text: 'No relay agent has registered yet.' }));
      return;
    }
    relaysEl.replaceChildren(
      ...st.relays.map((r) => {
        const key = `${r.host_id}/${r.output_id}`;
        const selId = `relay-fn-${key.replace(/[^A-Za-z0-9_-]/g, '_')}`;
        const sel = h('select', { class: 'relay-function', id: selId });
        const hintLabel = r.function_hint ? (FUNCTIONS.find(([v]) => v === r.function_hint)?.[1] || r.function_hint) : 'none';
        sel.append(h('option', { value: '', text: `Agent's hint (${hintLabel})` }));
        for (const [v, label] of FUNCTIONS) sel.append(h('option', { value: v, text: label }));
        sel.value = r.function || '';
        const error = h('p', { class: 'form-error', role: 'alert' });
        sel.addEventListener('change', async () => {
          error.textContent = '';
          sel.disabled = true;
          try {
            await api('PUT', `/v1/relays/${encodeURIComponent(r.host_id)}/${encodeURIComponent(r.output_id)}/function`, {
              function: sel.value || null,
            });
            toast(`${r.name || r.output_id} now drives ${sel.value ? sel.options[sel.selectedIndex].text.toLowerCase() : 'what the agent says'}.`, 'ok');
            await load();
          } catch (e) {
            error.textContent = e.message || String(e);
            sel.value = r.function || '';
          } finally {
            sel.disabled = false;
          }
        });
        const on = r.state === 'on';
        return h(
          'article',
          { class: 'card device-card', 'data-relay': key },
          h(
            'div',
            { class: 'device-head' },
            h('h3', { text: r.name || r.output_id }),
            h('span', {
              class: `badge relay-state ${on ? (r.function === 'cool' ? 'badge-cool' : 'badge-heat') : ''}`,
              text: on ? 'on' : 'off',
            }),
            r.simulated ? h('span', { class: 'badge badge-warn relay-backend', text: 'simulated' }) : null,
            r.agent_reachable === false ? h('span', { class: 'badge badge-bad relay-reach', text: 'unreachable' }) : null,
          ),
          h('div', { class: 'device-meta', text: `${key} · ${relayDetails(r)}` }),
          ...relayWarnings(r),
          r.command_error ? h('div', { class: 'device-why hint', text: `Refused the last command: ${r.command_error}` }) : null,
          h('label', { class: 'field', for: selId }, h('span', { text: 'Drives' }), sel),
          error,
        );
      }),
    );
  }

  // ----- agents --------------------------------------------------------------------------
  function renderAgents() {
    if (!st.agents.length) {
      agentsEl.replaceChildren(h('p', { class: 'muted', text: 'No agent has been heard from yet.' }));
      return;
    }
    agentsEl.replaceChildren(
      ...st.agents.map((a) => {
        const key = `${a.host_id}/${a.kind}`;
        const off = a.clock_offset_s;
        let clock = 'clock offset unknown';
        if (off !== null && off !== undefined) {
          const abs = Math.abs(off);
          clock = abs < 0.5 ? 'clock in sync' : `clock ${abs < 10 ? abs.toFixed(1) : Math.round(abs)} s ${off > 0 ? 'ahead of' : 'behind'} the engine`;
        }
        return h(
          'article',
          { class: 'card device-card', 'data-agent': key },
          h(
            'div',
            { class: 'device-head' },
            h('h3', { text: a.host_id }),
            h('span', { class: 'badge', text: a.kind === 'sensor' ? 'sensor agent' : 'relay agent' }),
            h('span', { class: `badge agent-online ${a.online ? 'badge-ok' : 'badge-bad'}`, text: a.online ? 'online' : 'offline' }),
          ),
          h(
            'div',
            { class: 'device-meta' },
            h('span', { class: 'agent-seen', text: `last seen ${fmtAgo(a.last_seen)}` }),
            ' · ',
            h('span', { class: 'agent-clock', text: clock }),
            a.url ? ` · ${a.url}` : '',
            a.backend ? h('span', { class: 'agent-backend', text: ` · backend ${a.backend}` }) : null,
          ),
          a.clock_skewed
            ? h('div', {
                class: 'hint agent-skew',
                role: 'note',
                text: 'Clock skewed: the engine re-times its readings by the offset, but fix the clock on this host (NTP).',
              })
            : null,
          a.unreachable_since
            ? h('div', {
                class: 'hint agent-unreachable',
                role: 'note',
                text: `No answer since ${fmtTime(a.unreachable_since)}${a.contact_error ? `: ${a.contact_error}` : ''}. Check that the agent runs (systemctl status hearth-relay-agent) and that the engine can reach ${a.url || 'it'}.`,
              })
            : a.contact_error
              ? h('div', { class: 'hint agent-error', role: 'note', text: `Its last answer was an error: ${a.contact_error}` })
              : null,
        );
      }),
    );
  }

  // ----- loading and live updates --------------------------------------------------------
  async function load() {
    const results = await Promise.allSettled([
      api('GET', '/v1/sensors').then((v) => (st.sensors = v || [])),
      api('GET', '/v1/control').then((v) => (st.decision = v?.decision || null)),
      api('GET', '/v1/relays').then((v) => (st.relays = v || [])),
      api('GET', '/v1/agents').then((v) => (st.agents = v || [])),
    ]);
    if (!st.alive) return;
    const failed = results.find((r) => r.status === 'rejected');
    errorEl.hidden = !failed;
    if (failed) errorEl.textContent = `Some data could not be loaded: ${failed.reason?.message || failed.reason}`;
    renderSensors();
    renderRelays();
    renderAgents();
  }

  const offs = [
    on('reading', (ev) => {
      const s = st.sensors.find((x) => x.id === ev.sensor_id);
      const row = rows.get(ev.sensor_id);
      if (!s || !row) {
        load();
        return;
      }
      s.latest = { at: ev.at, value: ev.value };
      s.stale = false;
      renderSensorDisplay(row, s);
    }),
    on('decision', (ev) => {
      st.decision = ev.decision || st.decision;
      for (const s of st.sensors) {
        const row = rows.get(s.id);
        if (row) renderSensorDisplay(row, s);
      }
    }),
    // The event carries only the new state; the agent's report (lease, protection timers)
    // changed with it, so re-read the relays rather than show a stale mix.
    on('relay', () => load()),
    on('changed', () => load()),
    on('lagged', () => load()),
  ];
  // Agents have no events: "last seen" and online/offline come from a gentle poll.
  const tick = setInterval(load, 30_000);

  await load();
  return () => {
    st.alive = false;
    clearInterval(tick);
    for (const off of offs) off();
  };
}
