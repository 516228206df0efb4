// Home's zones and plants, shown when the house has more than the default zone: a card per
// zone (its temperature, target, whether it calls and why, its valves and why) that puts the
// zone on the face, and a card per plant (running or not, why, a protection counting down).
// Filled from `GET /v1/house` and the `house` event; the words are zones.js's.

import { h } from "./dom.js";
import { fmtDuration, fmtTemp } from "./format.js";
import { heldLeftS, plantState, valveLine, zoneHeadline, zoneState, zoneTarget } from "./zones.js";

/** The two sections, empty and hidden until the house has zones. */
export function zoneSections() {
  const zonesEl = h('div', { class: 'zone-cards', id: 'home-zones' });
  const plantsEl = h('div', { class: 'plant-cards', id: 'home-plants' });
  return {
    zonesEl,
    plantsEl,
    zones: h('section', { class: 'home-zones', 'aria-labelledby': 'home-zones-title', hidden: true },
      h('h2', { id: 'home-zones-title', class: 'section-title', text: 'Zones' }), zonesEl),
    plants: h('section', { class: 'home-plants', 'aria-labelledby': 'home-plants-title', hidden: true },
      h('h2', { id: 'home-plants-title', class: 'section-title', text: 'Heating and cooling' }), plantsEl),
  };
}

// A badge's tone by what runs; idle and off keep the badge's muted one.
const TONE = { heating: 'badge-heat', cooling: 'badge-cool', idle: '', off: '' };
const RUNNING = { heating: 'Heating', cooling: 'Cooling', off: 'Off' };

/** The name people gave an output, else its relay id. */
function relayName(relays, id) {
  const r = relays.find((x) => `${x.host_id}/${x.output_id}` === id);
  return r ? r.name || r.output_id : id;
}

/** `#/?zone=…` keeps the page's own query (a kiosk stays a kiosk). */
const zoneLink = (id) => `#/?zone=${encodeURIComponent(id)}`;

function zoneCard(z, shown, relays) {
  const state = zoneState(z);
  const d = z.decision;
  const current = z.id === shown;
  return h('article', { class: `zone-card card state-${state}`, 'data-zone-card': z.id, 'aria-labelledby': `zone-name-${z.id}` },
    h('div', { class: 'zone-head' },
      h('h3', { class: 'zone-name', id: `zone-name-${z.id}`, text: z.name || z.id }),
      h('span', { class: `badge zone-calling ${TONE[state]}`, text: zoneHeadline(z) })),
    h('div', { class: 'zone-temps' },
      h('span', { class: 'zone-temp', text: fmtTemp(d?.effective_temp_c) }),
      h('span', { class: 'zone-target muted', text: `target ${fmtTemp(zoneTarget(z))}` })),
    h('p', { class: 'zone-why', text: z.text || d?.reason || '' }),
    z.valves?.length
      ? h('ul', { class: 'zone-valves', 'aria-label': `Valves of ${z.name || z.id}` }, z.valves.map((v) => {
        const line = valveLine(v);
        return h('li', { class: `zone-valve valve-${line.state}`, 'data-valve': v.relay },
          h('span', { class: 'valve-name', text: `${relayName(relays, v.relay)}: ${line.state}` }),
          line.reason ? h('span', { class: 'valve-reason muted', text: line.reason }) : null);
      }))
      : null,
    h('a', {
      class: 'btn btn-quiet zone-show', href: zoneLink(z.id), 'aria-current': current ? 'true' : null,
      text: current ? 'Shown above' : 'Show and change',
      'aria-label': current ? `${z.name || z.id} is shown above` : `Show and change ${z.name || z.id}`,
    }));
}

function plantHold(p, receivedAt, now) {
  const left = heldLeftS(p.held_until, p.at, receivedAt, now);
  if (left === null) return null;
  return left > 0.5 ? `protection ends in ${fmtDuration(left, true)}` : 'protection ends any moment';
}

function plantCard(p, receivedAt, now) {
  const { running, label } = plantState(p);
  const hold = plantHold(p, receivedAt, now);
  return h('article', { class: `plant-card card state-${running}`, 'data-plant-card': p.id },
    h('div', { class: 'zone-head' },
      h('h3', { class: 'plant-name', text: p.name || p.id }),
      h('span', { class: `badge plant-running ${TONE[running]}`, text: RUNNING[running] })),
    h('p', { class: 'plant-code', text: label }),
    h('p', { class: 'plant-reason muted', text: p.reason || '' }),
    hold ? h('p', { class: 'plant-hold', text: hold }) : null);
}

/**
 * Fill the sections from the house status (`null`: a one-zone house, nothing shown).
 * `shown` is the zone on the face; `relays` names the valves. Returns whether a plant's
 * protection is counting down (the caller re-renders every second while one is).
 */
export function renderZones(s, house, shown, relays, receivedAt, now = Date.now()) {
  const on = Boolean(house && house.zones?.length > 1);
  s.zones.hidden = !on;
  s.plants.hidden = !on || !house.plants?.length;
  if (!on) {
    s.zonesEl.replaceChildren();
    s.plantsEl.replaceChildren();
    return false;
  }
  s.zonesEl.replaceChildren(...house.zones.map((z) => zoneCard(z, shown, relays)));
  const plants = (house.plants || []).map((p) => ({ ...p, at: house.at }));
  s.plantsEl.replaceChildren(...plants.map((p) => plantCard(p, receivedAt, now)));
  return plants.some((p) => p.held_until);
}
