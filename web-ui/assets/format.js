// How every quantity reads, in one place and one function each, so "20.5 °C", "14 min" and
// "22:00" look the same on every page. Pure: no DOM, no clock read at load (Node's test runner
// imports it). Times are the runtime's local zone unless a zone name is given: the schedule
// page passes the engine's, in which its rules are written.

import { SHORT_DAYS, MONTHS, zoneParts } from "./calendar.js";

/** A value in °C without the unit, `digits` decimals; halves round away from zero, as the
 * engine's reason texts do (a DS18B20 reads in sixteenths: 17.25 is "17.3" in both places),
 * and never "-0.0". "—" when there is no value. */
export function tempNumber(c, digits = 1) {
  if (c === null || c === undefined || !Number.isFinite(Number(c))) return '—';
  const n = Number(c);
  const scale = 10 ** digits;
  const v = (Math.sign(n) * Math.round(Math.abs(n) * scale)) / scale;
  return (Object.is(v, -0) ? 0 : v).toFixed(digits);
}

/** "20.5 °C" with one decimal; "—" when there is no value. */
export function fmtTemp(c) {
  const n = tempNumber(c);
  return n === '—' ? n : `${n} °C`;
}

/** "19.0–21.5 °C". */
export function fmtTempRange(lo, hi) {
  return `${tempNumber(lo)}–${tempNumber(hi)} °C`;
}

/**
 * A duration for people: "40 s", "14 min", "2 h 05 min". `precise` keeps the seconds below
 * ten minutes ("1 min 40 s", for a countdown); otherwise minutes are rounded. "—" for none.
 */
export function fmtDuration(seconds, precise = false) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return '—';
  const s = Math.max(0, Math.round(Number(seconds)));
  if (s < 60) return `${s} s`;
  if (precise && s < 600) {
    const sec = s % 60;
    return sec ? `${Math.floor(s / 60)} min ${sec} s` : `${s / 60} min`;
  }
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h ${String(min % 60).padStart(2, '0')} min`;
}

const pad = (n) => String(n).padStart(2, '0');

/** The wall clock of an instant (RFC 3339 text, Date or epoch ms) in `tz`; null if invalid. */
function wall(when, tz) {
  const t = when instanceof Date ? when.getTime() : typeof when === 'number' ? when : Date.parse(when);
  if (!Number.isFinite(t)) return null;
  // A zone this runtime does not know reads in its own zone rather than not at all.
  const zoned = tz ? zoneParts(tz, t) : null;
  if (zoned) return zoned;
  const d = new Date(t);
  return {
    year: d.getFullYear(), month: d.getMonth() + 1, day: d.getDate(),
    hour: d.getHours(), minute: d.getMinutes(), weekday: (d.getDay() + 6) % 7,
  };
}

/** "HH:MM" (24 h) of an instant. */
export function fmtTime(when, tz) {
  const w = wall(when, tz);
  return w ? `${pad(w.hour)}:${pad(w.minute)}` : '—';
}

/** "Mon 21 Nov" of an instant. */
export function fmtDay(when, tz) {
  const w = wall(when, tz);
  return w ? `${SHORT_DAYS[w.weekday]} ${w.day} ${MONTHS[w.month - 1]}` : '—';
}

/** "Mon 21" of an instant (a chart's day tick). */
export function fmtWeekdayDate(when, tz) {
  const w = wall(when, tz);
  return w ? `${SHORT_DAYS[w.weekday]} ${w.day}` : '—';
}

/** "21 Nov" of an instant (a long chart's day tick). */
export function fmtDate(when, tz) {
  const w = wall(when, tz);
  return w ? `${w.day} ${MONTHS[w.month - 1]}` : '—';
}

/** "Mon 21 Nov 14:05". */
export function fmtDayTime(when, tz) {
  const w = wall(when, tz);
  return w ? `${fmtDay(when, tz)} ${fmtTime(when, tz)}` : '—';
}

/** "just now", "2 min ago", "3 h ago", "2 days ago" for an instant; "never" for none. */
export function fmtAgo(iso, now = Date.now()) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return 'never';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 36) return `${h} h ago`;
  const days = Math.round(h / 24);
  return `${days} day${days === 1 ? '' : 's'} ago`;
}

const EXCLUDED = {
  no_reading: 'No reading',
  stale: 'Stale',
  failed: 'Failed',
  implausible: 'Implausible',
  stuck: 'Stuck',
  outlier: 'Outlier',
  not_selected: 'Not selected',
};

/** Why the decision left a sensor out, in a word or two ("Stale"); the code when unknown. */
export function fmtExcluded(code) {
  return EXCLUDED[code] || code;
}

/** The badge tone of an exclusion: "muted" (by choice), "warn" (waiting for a reading), "bad". */
export function excludedTone(code) {
  if (code === 'not_selected') return 'muted';
  return code === 'stale' || code === 'no_reading' ? 'warn' : 'bad';
}
