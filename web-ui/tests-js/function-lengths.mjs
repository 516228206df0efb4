// Lists the longest functions of the dashboard's scripts:
// `node web-ui/tests-js/function-lengths.mjs [N [DIR]]` (DIR: web-ui/assets/ unless given).
// A function is a `{…}` body after `=>` or after a parameter list that is not an if/for/while/
// switch/catch head; its length is the count of lines from its opening brace's line to its
// closing brace's, nested functions included. Strings, template literals, comments and regex
// literals are skipped so their braces do not count. Not a test: a measure for reviews.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[3] || new URL('../assets/', import.meta.url).pathname;
const NOT_FUNCTIONS = new Set(['if', 'for', 'while', 'switch', 'catch', 'with']);

/** The source with strings, comments and regex literals blanked (newlines kept). */
function codeOnly(src) {
  let out = '';
  let i = 0;
  const templates = []; // brace depth at each open `${`
  let depth = 0;
  const blank = (s) => s.replace(/[^\n]/g, ' ');
  const lastSignificant = () => out.replace(/\s+$/, '');
  const regexCanStart = () => {
    const prev = lastSignificant();
    return prev === '' || /[(,=:[!&|?{};+\-*%<>~^]$/.test(prev) || /\b(return|typeof|case)$/.test(prev);
  };
  const skipTemplate = () => {
    let j = i + 1;
    while (j < src.length && src[j] !== '`') {
      if (src[j] === '\\') j += 2;
      else if (src[j] === '$' && src[j + 1] === '{') {
        out += blank(src.slice(i, j + 2));
        templates.push(++depth);
        i = j + 2;
        return;
      } else j++;
    }
    out += blank(src.slice(i, j + 1));
    i = j + 1;
  };
  while (i < src.length) {
    const c = src[i];
    const two = src.slice(i, i + 2);
    if (two === '//') {
      const j = src.indexOf('\n', i);
      out += blank(src.slice(i, j < 0 ? src.length : j));
      i = j < 0 ? src.length : j;
    } else if (two === '/*') {
      const j = src.indexOf('*/', i + 2) + 2;
      out += blank(src.slice(i, j));
      i = j;
    } else if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out += blank(src.slice(i, j + 1));
      i = j + 1;
    } else if (c === '`') {
      skipTemplate();
    } else if (c === '}' && templates.length && templates[templates.length - 1] === depth) {
      templates.pop();
      depth--;
      // Back inside the template literal: skip on to its end or its next `${`.
      out += ' ';
      src = `${src.slice(0, i)}\`${src.slice(i + 1)}`;
      skipTemplate();
    } else if (c === '/' && regexCanStart()) {
      let j = i + 1;
      let cls = false;
      while (j < src.length && (cls || src[j] !== '/')) {
        if (src[j] === '\\') j++;
        else if (src[j] === '[') cls = true;
        else if (src[j] === ']') cls = false;
        j++;
      }
      out += blank(src.slice(i, j + 1));
      i = j + 1;
    } else {
      if (c === '{') depth++;
      if (c === '}') depth--;
      out += c;
      i++;
    }
  }
  return out;
}

/** Whether the `{` at `pos` of `code` opens a function body. */
function opensFunction(code, pos) {
  const before = code.slice(0, pos).replace(/\s+$/, '');
  if (before.endsWith('=>')) return true;
  if (!before.endsWith(')')) return false;
  let level = 0;
  let k = before.length - 1;
  for (; k >= 0; k--) {
    if (before[k] === ')') level++;
    else if (before[k] === '(') level--;
    if (level === 0) break;
  }
  const word = /([A-Za-z_$][\w$]*)\s*$/.exec(before.slice(0, k));
  return !(word && NOT_FUNCTIONS.has(word[1]));
}

function functionsOf(file, src) {
  const code = codeOnly(src);
  const lines = src.split('\n');
  const lineAt = (pos) => code.slice(0, pos).split('\n').length;
  const stack = [];
  const found = [];
  for (let i = 0; i < code.length; i++) {
    if (code[i] === '{') stack.push({ pos: i, fn: opensFunction(code, i) });
    if (code[i] === '}') {
      const open = stack.pop();
      if (open && open.fn) {
        const start = lineAt(open.pos);
        found.push({ file, start, lines: lineAt(i) - start + 1, head: lines[start - 1].trim().slice(0, 70) });
      }
    }
  }
  return found;
}

const all = readdirSync(dir)
  .filter((f) => f.endsWith('.js'))
  .flatMap((f) => functionsOf(f, readFileSync(join(dir, f), 'utf8')));
all.sort((a, b) => b.lines - a.lines);
for (const f of all.slice(0, Number(process.argv[2]) || 10)) {
  console.log(`${String(f.lines).padStart(4)}  ${f.file}:${f.start}  ${f.head}`);
}
