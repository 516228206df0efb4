// The front end's layering, read from the sources: views never import the shell (app.js), no
// module imports itself round a circle, nothing builds markup from strings (innerHTML and
// friends), and the pure modules touch no DOM, so Node can import them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = new URL('../assets/', import.meta.url).pathname;
const modules = new Map(
  readdirSync(dir)
    .filter((f) => f.endsWith('.js'))
    .map((f) => [f, readFileSync(join(dir, f), 'utf8')]),
);
/** Static and dynamic imports of one module, as file names. */
const importsOf = (src) => [...src.matchAll(/(?:from\s+|import\s*\(\s*)["']\.\/([\w.-]+\.js)["']/g)].map((m) => m[1]);
assert.ok(modules.size > 5, `no modules read in ${dir}`);
const PURE = ['format.js', 'calendar.js', 'chart-scale.js', 'schedule-week.js', 'zones.js', 'fallback.js'];

test('no module but the page itself loads the shell', () => {
  for (const [name, src] of modules) {
    assert.ok(!importsOf(src).includes('app.js'), `${name} imports app.js`);
  }
});

test('no import circle, counting the router\'s dynamic imports', () => {
  const state = new Map(); // name → 'open' while on the path, 'done' after
  const visit = (name, path) => {
    if (state.get(name) === 'done') return;
    assert.notEqual(state.get(name), 'open', `import circle: ${[...path, name].join(' → ')}`);
    state.set(name, 'open');
    for (const dep of importsOf(modules.get(name) || '')) visit(dep, [...path, name]);
    state.set(name, 'done');
  };
  for (const name of modules.keys()) visit(name, []);
});

test('nothing parses markup from strings', () => {
  for (const [name, src] of modules) {
    assert.doesNotMatch(src, /\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write/, name);
  }
});

test('quantities are formatted in format.js only, calendars kept in calendar.js only', () => {
  // The helpers views used to write for themselves, each reading the same value differently.
  const own = /\bfunction (duration|ago|fmtC|fmtNum)\b|\b(MONTHS|DAYS|SHORT|WEEKDAYS)\s*=\s*\[|\bnew Intl\.DateTimeFormat\b/;
  for (const [name, src] of modules) {
    if (name === 'format.js' || name === 'calendar.js') continue;
    assert.doesNotMatch(src, own, name);
  }
});

test('the pure modules import only pure modules and reach for no DOM', async () => {
  for (const name of PURE.filter((n) => modules.has(n))) {
    const src = modules.get(name);
    for (const dep of importsOf(src)) assert.ok(PURE.includes(dep), `${name} imports ${dep}`);
    assert.doesNotMatch(src, /\b(document|window|localStorage|location)\./, name);
    await import(join(dir, name)); // loads in Node: nothing at the top level needs a browser
  }
});
