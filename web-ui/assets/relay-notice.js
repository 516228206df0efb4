// The relay notice on Home: a banner about the outputs the decision loop commands (heat and
// cool) when what the face shows is not what the equipment does. A relay agent the engine
// cannot reach leaves its outputs out of the engine's hands (the state shown is only the last
// one it reported); a simulated agent switches no equipment at all; an agent that lost the
// engine ran (or still runs) its fallback program on its own. Self-contained: it reads
// GET /v1/relays itself and follows the relay, changed and lagged events, so the view that
// mounts it only places its element.

import { api, on } from "./api.js";
import { fmtDuration, fmtTime } from "./format.js";
import { h } from "./dom.js";

const COMMANDED = new Set(['heat', 'cool']);

const names = (relays) => relays.map((r) => r.name || r.output_id).join(', ');

/** "heat on (2 min ago)" for each output of one unreachable agent, in one line. */
function unreachableLine(host, outs) {
  const since = outs[0].agent_unreachable_since;
  const age = (x) => (Number.isFinite(x) ? `${fmtDuration(x)} ago` : 'age unknown');
  const states = outs.map((r) => `${r.name || r.output_id} ${r.state} (${age(r.age_s)})`).join(', ');
  const one = outs.length === 1;
  return h('p', { class: 'relay-notice-unreachable' },
    h('strong', { text: `Relay agent ${host} has not answered since ${since ? fmtTime(since) : 'now'}.` }),
    ` Last known: ${states}. A running agent returns ${one ? 'it' : 'them'} to the safe state ` +
      `when the lease runs out; a stopped one may leave ${one ? 'it' : 'them'} as ` +
      `${one ? 'it was' : 'they were'} until it restarts.`);
}

/** How long ago a fallback that ended still gets a line: a day, so a morning look sees the
 * night's outage. */
const FALLBACK_SHOWN_MS = 24 * 3600 * 1000;

/** A line per relay agent that ran its fallback program: loud while it runs, a note for a day
 * after the engine took over. */
function fallbackLines(relays) {
  const byAgent = new Map();
  for (const r of relays) if (r.agent_fallback) byAgent.set(r.host_id, r.agent_fallback);
  const lines = [];
  for (const [host, f] of byAgent) {
    const why = f.why === 'no_engine_since_start' ? 'it restarted and never reached the engine' : 'it lost the engine';
    if (!f.ended_at) {
      lines.push(h('p', { class: 'relay-notice-fallback' },
        h('strong', { text: `Relay agent ${host} runs its fallback program since ${fmtTime(f.since)}` }),
        ` (${why}): it holds the frost setpoint (or a blind duty) on its own, not your schedule.`));
    } else if (Date.now() - Date.parse(f.ended_at) < FALLBACK_SHOWN_MS) {
      lines.push(h('p', { class: 'relay-notice-fallback-ended' },
        h('strong', { text: `Relay agent ${host} ran its fallback program` }),
        ` from ${fmtTime(f.since)} to ${fmtTime(f.ended_at)} (${why}).`));
    }
  }
  return lines;
}

/** Fills the banner from the relays: a line per unreachable agent (its outputs share its
 * fate), one for the simulated outputs; hidden when there is nothing to say. */
function render(el, relays) {
  const commanded = relays.filter((r) => COMMANDED.has(r.function));
  const unreachable = commanded.filter((r) => r.agent_reachable === false);
  const simulated = commanded.filter((r) => r.simulated);
  const byAgent = new Map();
  for (const r of unreachable) byAgent.set(r.host_id, [...(byAgent.get(r.host_id) || []), r]);
  const lines = [...byAgent].map(([host, outs]) => unreachableLine(host, outs));
  const fallbacks = fallbackLines(relays);
  lines.unshift(...fallbacks);
  if (simulated.length) {
    lines.push(h('p', { class: 'relay-notice-simulated' },
      h('strong', { text: 'Simulated relays' }),
      `: ${names(simulated)} switch${simulated.length === 1 ? 'es' : ''} no equipment ` +
        '(the relay agent runs with hardware "simulated"). Nothing heats or cools for real.'));
  }
  el.hidden = lines.length === 0;
  const running = relays.some((r) => r.agent_fallback && !r.agent_fallback.ended_at);
  el.classList.toggle('relay-notice-bad', unreachable.length > 0 || running);
  el.replaceChildren(...lines);
}

/** { el, stop }: the banner element (hidden while there is nothing to say) and its cleanup. */
export function relayNotice() {
  const el = h('div', { id: 'relay-notice', class: 'relay-notice', role: 'status', hidden: true });
  let alive = true;
  async function load() {
    let relays;
    try {
      relays = await api('GET', '/v1/relays');
    } catch {
      return; // The view's own error line says when the engine cannot be read.
    }
    if (alive) render(el, relays || []);
  }
  const offs = [
    on('relay', load),
    // The engine announces an agent that stops or starts answering as a `changed` "relays".
    on('changed', (ev) => {
      if (!ev || !ev.what || ev.what === 'relays') load();
    }),
    on('lagged', load),
  ];
  // The ages in the text move with the clock.
  const tick = setInterval(load, 30_000);
  load();
  return {
    el,
    stop() {
      alive = false;
      clearInterval(tick);
      for (const off of offs) off();
    },
  };
}
