// Building DOM nodes without innerHTML: text is always text (a sensor named "<b>" stays
// harmless), and listeners attach where the element is made.

/**
 * h('button', { class: 'btn', onclick: fn, 'aria-label': 'Raise target' }, child, ...)
 * `text` sets textContent; `on<event>` adds a listener; null/undefined/false attributes are
 * left out and `true` gives an empty (boolean) attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c);
  return el;
}
