// Calendar and time-zone arithmetic, pure (no DOM, no clock): dates as "YYYY-MM-DD" strings,
// times of day as minutes since midnight, instants as epoch milliseconds. The schedule's rules
// are written in the engine's time zone, so its wall-clock days are computed here from the
// engine's offsets and zone name, never from the browser's zone.

export const DAY_MIN = 1440;
/** The engine's weekday names (Weekday in the API), Monday first. */
export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
/** Short names, Monday first (index = weekdayIndex). */
export const SHORT_DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
export const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

const pad = (n) => String(n).padStart(2, '0');

/** "2026-03-29" → { y: 2026, m: 3, d: 29 }. */
export function dateParts(s) {
  const [y, m, d] = s.split('-').map(Number);
  return { y, m, d };
}

/** The date `n` days after `s` (calendar days: no time zone involved). */
export function addDays(s, n) {
  const { y, m, d } = dateParts(s);
  return new Date(Date.UTC(y, m - 1, d + n)).toISOString().slice(0, 10);
}

/** 0 = Monday … 6 = Sunday. */
export function weekdayIndex(s) {
  const { y, m, d } = dateParts(s);
  return (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
}

/** The Monday of the week holding `s`, `weeks` weeks on. */
export function mondayOf(s, weeks = 0) {
  return addDays(s, -weekdayIndex(s) + 7 * weeks);
}

/** "Mon 21 Nov" of a date string. */
export function dayLabel(s) {
  const { m, d } = dateParts(s);
  return `${SHORT_DAYS[weekdayIndex(s)]} ${d} ${MONTHS[m - 1]}`;
}

/** "06:30" → 390; null when not a time. */
export function minutes(text) {
  const m = /^(\d{1,2}):(\d{2})/.exec(text || '');
  return m ? Number(m[1]) * 60 + Number(m[2]) : null;
}

/** 390 → "06:30" (a whole day wraps to "00:00"). */
export function hhmm(min) {
  return `${pad(Math.floor(min / 60) % 24)}:${pad(min % 60)}`;
}

/** A day's end as people write it: 1440 → "24:00", else hhmm. */
export function hhmmEnd(min) {
  return min === DAY_MIN ? '24:00' : hhmm(min);
}

/** Minutes wrapped into one day (negative or past midnight). */
export function wrapDay(min) {
  return ((min % DAY_MIN) + DAY_MIN) % DAY_MIN;
}

/** RFC 9557 local time → { date, min, offset } in the zone it was written in; null if not one. */
export function parseLocal(s) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::[\d.]+)?(Z|[+-]\d{2}:\d{2})?/.exec(s || '');
  if (!m) return null;
  return { date: m[1], min: Number(m[2]) * 60 + Number(m[3]), offset: m[4] || 'Z' };
}

/** "+02:00" → 7 200 000; "Z" or none → 0. */
export function offsetMs(offset) {
  if (!offset || offset === 'Z') return 0;
  const sign = offset[0] === '-' ? -1 : 1;
  return sign * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6))) * 60e3;
}

/** Offset of zone `tz` at instant `t` (ms), via Intl; null when the zone is unknown. */
export function zoneOffset(tz, t) {
  const p = zoneParts(tz, t);
  if (!p) return null;
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(t / 1000) * 1000;
}

/** The wall clock of zone `tz` at `t`: { year, month, day, hour, minute, second, weekday }
 * (weekday 0 = Monday); the runtime's own zone when `tz` is undefined; null if unknown. */
export function zoneParts(tz, t) {
  let f;
  try {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', weekday: 'short',
    });
  } catch {
    return null;
  }
  const raw = Object.fromEntries(f.formatToParts(new Date(t)).map((x) => [x.type, x.value]));
  const out = { weekday: ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(raw.weekday) };
  for (const k of ['year', 'month', 'day', 'hour', 'minute', 'second']) out[k] = Number(raw[k]);
  return out;
}

/** The instant of local midnight starting `date` in `tz` (fallback: the given offset, ms). */
export function localMidnight(date, tz, fallbackOffset) {
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
export function splitDays(startDate, startMin, endDate, endMin) {
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

/** "YYYY-MM-DD" of a Date in the runtime's zone (what a date input shows). */
export function isoDate(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}
