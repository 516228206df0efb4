// Zones and plants for people: which zone a request is about, what a zone's and a plant's
// status says in words, and the bodies the Zones & plants forms send. Pure: no DOM, no clock
// read (Node's test runner imports it). The engine's checks are the real ones (its 422 names
// the problem); the forms check only what must be right before anything can be sent.

/** The zone every installation opens with; requests about it carry no `zone` at all, so a
 * one-zone house talks to the engine exactly as it always did. */
export const DEFAULT_ZONE = 'house';

/** A zone's or plant's id: what the engine accepts. */
export const ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/;
export const NAME_MAX = 64;

/** `path` about `zone`: `?zone=` (or `&zone=`) added unless it is the default zone. */
export function withZone(path, zone) {
  if (!zone || zone === DEFAULT_ZONE) return path;
  return `${path}${path.includes('?') ? '&' : '?'}zone=${encodeURIComponent(zone)}`;
}

/** Whether the house has zones worth showing: more than the default one. */
export function zoned(config) {
  return Boolean(config && Array.isArray(config.zones) && config.zones.length > 1);
}

/** The zone asked for when the house has it, else the default one. */
export function pickZone(config, wanted) {
  const zones = config?.zones || [];
  if (wanted && zones.some((z) => z.id === wanted)) return wanted;
  return DEFAULT_ZONE;
}

/** A zone's name from the house config (its id if unknown). */
export function zoneName(config, id) {
  return (config?.zones || []).find((z) => z.id === id)?.name || id;
}

// ----- status in words ---------------------------------------------------------------------

/** What a zone does: 'heating' or 'cooling' while it calls, else 'idle'. */
export function zoneState(z) {
  if (z?.calling === 'heat') return 'heating';
  if (z?.calling === 'cool') return 'cooling';
  return 'idle';
}

const CALLING = { heating: 'Calls for heat', cooling: 'Calls for cooling', idle: 'Idle' };

/** The headline of a zone's card: "Calls for heat", "Idle". */
export function zoneHeadline(z) {
  return CALLING[zoneState(z)];
}

/** The target a zone's decision works to: the cooling one in cool mode (or, in auto, while it
 * calls for cooling), else the heating one. */
export function zoneTarget(z) {
  const d = z?.decision;
  if (!d) return null;
  const cool = d.mode === 'cool' || (d.mode === 'auto' && z.calling === 'cool');
  return cool ? d.cool_setpoint_c : d.heat_setpoint_c;
}

/** "open" / "closed" and the engine's reason of one valve. */
export function valveLine(v) {
  return { state: v.open ? 'open' : 'closed', reason: v.reason || '' };
}

const PLANT_LABEL = {
  calling: 'Running',
  valve_delay: 'Waiting for valves',
  too_few_zones: 'Too few zones calling',
  idle: 'Idle',
  overrun: 'Running on (overrun)',
  min_on_time: 'Minimum run time',
  min_off_time: 'Minimum off time',
  changeover: 'Changeover',
  max_run: 'Resting after its maximum run',
  no_outlet: 'No open valve',
  safety_stop: 'Safety stop',
};

/** A plant's state: running heat/cool or off, and its code in words. */
export function plantState(p) {
  const running = p?.heat ? 'heating' : p?.cool ? 'cooling' : 'off';
  return { running, label: PLANT_LABEL[p?.code] || p?.code || '' };
}

/** Seconds until a plant's protection ends, counted from when the status was received (its
 * `at` and `held_until` are both the engine's clock, so the browser's clock does not count). */
export function heldLeftS(heldUntil, at, receivedAt, now) {
  if (!heldUntil) return null;
  const left = Date.parse(heldUntil) - Date.parse(at) - (now - receivedAt);
  return Number.isFinite(left) ? Math.max(0, left / 1000) : null;
}

// ----- the forms' bodies ------------------------------------------------------------------

/** An id as typed; throws an Error naming the field when the engine could not accept it. */
export function readId(raw, what) {
  const id = String(raw ?? '').trim();
  if (!ID_PATTERN.test(id)) {
    throw new Error(`${what} id: 1 to 32 lower-case letters, digits, "-" or "_", starting with a letter or digit.`);
  }
  return id;
}

function readName(raw, what) {
  const name = String(raw ?? '').trim();
  if (!name) throw new Error(`${what} name: give it a name.`);
  if (name.length > NAME_MAX) throw new Error(`${what} name: at most ${NAME_MAX} characters.`);
  return name;
}

/** A whole number of seconds (or a count) as typed; empty is `null` where `optional`. */
export function readWhole(raw, label, optional = false) {
  const text = String(raw ?? '').trim();
  if (text === '' && optional) return null;
  const n = Number(text);
  if (text === '' || !Number.isInteger(n) || n < 0) throw new Error(`${label}: a whole number, 0 or more.`);
  return n;
}

/** The body of `PUT /v1/zones/{id}` (the id goes in the path). */
export function zoneBody(f) {
  return {
    name: readName(f.name, 'Zone'),
    sensors: [...(f.sensors || [])],
    valves: [...(f.valves || [])],
    heat_relay: f.heat_relay || null,
    cool_relay: f.cool_relay || null,
  };
}

export const PLANT_KINDS = [
  ['heat', 'Heating'],
  ['cool', 'Cooling'],
  ['heat_cool', 'Heating and cooling'],
];

/** The body of `PUT /v1/plants/{id}`. */
export function plantBody(f) {
  const kind = PLANT_KINDS.some(([k]) => k === f.kind) ? f.kind : 'heat';
  return {
    name: readName(f.name, 'Plant'),
    kind,
    heat_relay: kind === 'cool' ? null : f.heat_relay || null,
    cool_relay: kind === 'heat' ? null : f.cool_relay || null,
    zones: [...(f.zones || [])],
    min_on_s: readWhole(f.min_on_s, 'Minimum on time'),
    min_off_s: readWhole(f.min_off_s, 'Minimum off time'),
    changeover_s: readWhole(f.changeover_s, 'Changeover'),
    max_run_s: readWhole(f.max_run_s, 'Maximum run', true),
    valve_delay_s: readWhole(f.valve_delay_s, 'Valve delay'),
    overrun_s: readWhole(f.overrun_s, 'Overrun'),
    min_calling_zones: readWhole(f.min_calling_zones, 'Minimum calling zones'),
    bypass_zone: f.bypass_zone || null,
  };
}

/** A new plant's starting values: the default plant's protection times, no valve delay. */
export function newPlant(config) {
  const base = (config?.plants || []).find((p) => p.id === DEFAULT_ZONE) || {};
  return {
    id: '', name: '', kind: 'heat', heat_relay: null, cool_relay: null, zones: [],
    min_on_s: base.min_on_s ?? 180, min_off_s: base.min_off_s ?? 300, changeover_s: base.changeover_s ?? 600,
    max_run_s: null, valve_delay_s: 0, overrun_s: 0, min_calling_zones: 1, bypass_zone: null,
  };
}

/** The relay ids a plant or a zone can name: every registered output (`host/output`) and the
 * two function groups. */
export function relayChoices(relays) {
  const outputs = (relays || []).map((r) => ({
    id: `${r.host_id}/${r.output_id}`,
    label: `${r.name || r.output_id} (${r.host_id}/${r.output_id})`,
    fn: r.function || r.function_hint || null,
  }));
  return [
    { id: 'function:heat', label: 'Every heating output', fn: 'heat' },
    { id: 'function:cool', label: 'Every cooling output', fn: 'cool' },
    ...outputs,
  ];
}

/** "3 rules and 1 override": what a zone still holds, for the delete dialog. */
export function holdsText(z) {
  const n = (count, one) => `${count} ${one}${count === 1 ? '' : 's'}`;
  const parts = [];
  if (z?.rules) parts.push(n(z.rules, 'rule'));
  if (z?.overrides) parts.push(n(z.overrides, 'override'));
  return parts.join(' and ');
}
