// Toasts: a short message at the bottom of the screen. Here, below the views and the shell, so
// a view can say "Saved." without importing the shell that loads it.

import { h } from "./dom.js";

/** A short message in `#toasts`; `kind` is "info", "ok" or "error" (shown twice as long). */
export function toast(message, kind = 'info', ms = 4000) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const el = h('div', { class: `toast toast-${kind}`, text: message });
  box.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? ms * 2 : ms);
}
