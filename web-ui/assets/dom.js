// The one way views build the page: elements made here, never parsed from HTML, so text is
// always text (a sensor named "<b>" stays harmless) and listeners attach where the element is
// made. SVG (the charts) goes through the same function with an `svg:` prefix.

const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * h('button', { class: 'btn', onclick: fn, 'aria-label': 'Raise target' }, child, ...)
 * h('svg:rect', { x: 4, width: 10 })
 * `text` sets textContent; `on<event>` adds a listener; `style` takes an object (custom
 * properties `--x` included); null/undefined/false attributes are left out and `true` gives
 * an empty (boolean) attribute. Children may be nested arrays; null/undefined are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const svg = tag.startsWith('svg:');
  const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') el.textContent = v;
    else if (k === 'style' && typeof v === 'object') setStyle(el, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function setStyle(el, style) {
  for (const [k, v] of Object.entries(style)) {
    if (k.startsWith('--')) el.style.setProperty(k, v);
    else el.style[k] = v;
  }
}
