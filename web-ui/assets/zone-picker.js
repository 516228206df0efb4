// The zone picker: which zone a page acts on, in a house with more than the default zone
// (hidden otherwise, so a one-zone house's pages look as they always did).

import { h } from "./dom.js";
import { zoned } from "./zones.js";

/** A labelled select (`#zone-picker`), hidden until `fillZonePicker` finds zones. */
export function zonePicker(onChange) {
  const select = h('select', { id: 'zone-picker', class: 'zone-picker' });
  select.addEventListener('change', () => onChange(select.value));
  const root = h('label', { class: 'field zone-pick', for: 'zone-picker', hidden: true },
    h('span', { text: 'Zone' }), select);
  return { root, select };
}

/** The house's zones as the picker's options, `current` chosen. */
export function fillZonePicker(p, config, current) {
  p.root.hidden = !zoned(config);
  if (p.root.hidden) return;
  p.select.replaceChildren(...config.zones.map((z) => h('option', { value: z.id, text: z.name || z.id })));
  p.select.value = current;
}
