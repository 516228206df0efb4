// The shell: hash router, header (nav, login/logout) and kiosk mode. Views are loaded on demand
// so each view's module only has to export mount(el, ctx) → unmount. Nothing imports this
// module: views reach the page through the lower layer (api.js, dom.js, toast.js, format.js).

import { session, refreshSession, requireLogin, logout } from "./api.js";
import { h } from "./dom.js";
import { toast } from "./toast.js";

const ROUTES = {
  home: () => import("./home.js"),
  history: () => import("./history.js"),
  schedule: () => import("./schedule.js"),
  devices: () => import("./devices.js"),
  settings: () => import("./settings.js"),
};
const TITLES = {
  home: 'Home',
  history: 'History',
  schedule: 'Schedule',
  devices: 'Devices',
  settings: 'Settings',
};

const search = new URLSearchParams(location.search);
// The wall display: `/?kiosk`, or `#/kiosk` (with `?zone=` after either for one zone's face);
// once a kiosk, the page stays one.
let kiosk = search.has('kiosk');

let unmount = null;
let generation = 0; // a newer navigation wins over a view that is still loading

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const name = path.split('/')[0] || 'home';
  // Query parameters of the page and of the hash both reach the view; the hash's win.
  const params = new URLSearchParams(location.search);
  for (const [k, v] of new URLSearchParams(query || '')) params.set(k, v);
  return { name, params };
}

/** The header's current link and the tab's title. */
function showRoute(name) {
  for (const a of document.querySelectorAll('.mainnav a')) {
    if (a.dataset.route === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = name === 'home' ? 'Hearth' : `${TITLES[name]} · Hearth`;
}

/** Unmounts the view shown; its failure never keeps the next one from loading. */
function leaveView() {
  if (!unmount) return;
  try {
    unmount();
  } catch (e) {
    console.error('hearth: unmount failed', e);
  }
  unmount = null;
}

async function route(ev) {
  const gen = ++generation;
  // A navigation (not the first load) starts the new page at its top, with the keyboard and
  // screen reader focus on it rather than on the link that was left behind.
  const navigated = ev instanceof HashChangeEvent;
  let { name, params } = parseHash();
  if (name === 'kiosk') becomeKiosk();
  if (kiosk) name = 'home'; // the wall display shows nothing else
  if (!ROUTES[name]) name = 'home';

  showRoute(name);
  const view = document.getElementById('view');
  leaveView();
  view.replaceChildren();
  view.dataset.view = name;
  view.setAttribute('aria-busy', 'true');

  let mod;
  try {
    mod = await ROUTES[name]();
  } catch (e) {
    if (gen !== generation) return;
    console.error(`hearth: loading view ${name} failed`, e);
    showViewError(view, `The ${TITLES[name]} page could not be loaded.`);
    return;
  }
  if (gen !== generation) return;
  const el = h('div', { class: `view view-${name}` });
  view.append(el);
  try {
    const ret = await mod.mount(el, { kiosk, params });
    if (gen !== generation) {
      // Navigated away while this view was still mounting: tear it down at once.
      if (typeof ret === 'function') ret();
      return;
    }
    unmount = typeof ret === 'function' ? ret : null;
    if (navigated) {
      window.scrollTo(0, 0);
      view.focus({ preventScroll: true });
    }
  } catch (e) {
    if (gen !== generation) return;
    console.error(`hearth: view ${name} failed`, e);
    showViewError(view, `The ${TITLES[name]} page failed: ${e && e.message ? e.message : e}`);
  } finally {
    if (gen === generation) view.removeAttribute('aria-busy');
  }
}

function becomeKiosk() {
  kiosk = true;
  document.documentElement.classList.add('kiosk');
}

function showViewError(view, text) {
  const p = h('p', { class: 'view-error', role: 'alert', text });
  const retry = h('button', { type: 'button', class: 'btn', text: 'Try again', onclick: () => route() });
  view.replaceChildren(p, retry);
  view.removeAttribute('aria-busy');
}

function renderSession(s) {
  const loginBtn = document.getElementById('login-open');
  const logoutBtn = document.getElementById('logout');
  if (!loginBtn || !logoutBtn) return;
  loginBtn.hidden = s.authenticated;
  logoutBtn.hidden = !s.authenticated;
  document.documentElement.classList.toggle('logged-in', s.authenticated);
}

// A session ends after idling on the server. Re-check when the expiry passes so the header
// says "Log in" again instead of pretending; the next change will ask anyway (api.js on 401).
let expiryTimer = null;
function watchExpiry(s) {
  clearTimeout(expiryTimer);
  if (!s.authenticated || !s.expires_at) return;
  const ms = Date.parse(s.expires_at) - Date.now();
  if (!Number.isFinite(ms)) return;
  // setTimeout overflows beyond ~24.8 days; sessions are far shorter, but clamp anyway.
  expiryTimer = setTimeout(async () => {
    const now = await refreshSession();
    if (!now.authenticated) toast('Your session has ended. Log in again to make changes.');
  }, Math.min(Math.max(ms + 1000, 1000), 2 ** 31 - 1));
}

function start() {
  if (kiosk) becomeKiosk();

  window.addEventListener('hearth:session', (ev) => {
    renderSession(ev.detail);
    watchExpiry(ev.detail);
  });
  renderSession(session());

  document.getElementById('login-open')?.addEventListener('click', async () => {
    if (await requireLogin()) toast('Logged in.', 'ok');
  });
  document.getElementById('logout')?.addEventListener('click', async () => {
    await logout();
    toast('Logged out.');
  });
  document.getElementById('login-cancel')?.addEventListener('click', () => {
    document.getElementById('login')?.close('cancel');
  });
  // The session may have ended while the tab slept (phone screen off): re-check on return.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') refreshSession();
  });

  window.addEventListener('hashchange', route);
  route();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
