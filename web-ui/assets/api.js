// The one module every view talks to hearth-web through: JSON requests with the session's
// CSRF header, the login dialog when a change needs a session, and one shared event stream.
// (How values read is format.js's.)

/** An error answer from hearth-web or the engine; `message` is the body's human `error`. */
export class ApiError extends Error {
  status;
  code;
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

// ---------------------------------------------------------------------------------------
// Session

let current = { authenticated: false, csrf: null, expires_at: null };
let loaded = null; // the first /api/session request, so early callers can wait for it

function setSession(s) {
  current = {
    authenticated: Boolean(s && s.authenticated),
    csrf: (s && s.csrf) || null,
    expires_at: (s && s.expires_at) || null,
  };
  // The header (login/logout buttons) listens for this; a plain DOM event keeps api.js free of
  // any knowledge of the page layout.
  window.dispatchEvent(new CustomEvent('hearth:session', { detail: current }));
}

/** Re-read the session from hearth-web (after login/logout, or when a request says 401). */
export async function refreshSession() {
  try {
    const res = await fetch('/api/session', { credentials: 'same-origin', cache: 'no-store' });
    if (res.ok) setSession(await res.json());
    else setSession(null);
  } catch {
    // Offline or hearth-web restarting: keep what we knew; the next request will tell.
  }
  return current;
}

/** The cached session: `{authenticated, csrf, expires_at}`. */
export function session() {
  if (!loaded) loaded = refreshSession();
  return current;
}

/** Ends the session (best effort: a dead session is as good as a logged-out one). */
export async function logout() {
  try {
    await fetch('/api/logout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: current.csrf ? { 'X-Hearth-CSRF': current.csrf } : {},
    });
  } catch {
    // Unreachable server: the local state still becomes "logged out" below.
  }
  setSession(null);
  await refreshSession();
}

// ---------------------------------------------------------------------------------------
// Login dialog (markup in index.html: dialog#login, input#login-token, #login-error)

let pendingLogin = null; // one dialog at a time; every caller waiting for it shares the answer

/**
 * Opens the login dialog unless a session exists. Resolves true once logged in, false when the
 * user cancelled.
 */
export async function requireLogin() {
  if (!loaded) loaded = refreshSession();
  await loaded;
  if (current.authenticated && !expired()) return true;
  if (pendingLogin) return pendingLogin;
  pendingLogin = openLoginDialog().finally(() => {
    pendingLogin = null;
  });
  return pendingLogin;
}

function expired() {
  if (!current.expires_at) return false;
  const t = Date.parse(current.expires_at);
  return Number.isFinite(t) && t <= Date.now();
}

function openLoginDialog() {
  const dlg = document.getElementById('login');
  const form = dlg && dlg.querySelector('form');
  const input = document.getElementById('login-token');
  const error = document.getElementById('login-error');
  const submit = document.getElementById('login-submit');
  if (!dlg || !form || !input || !error) return Promise.resolve(false);
  error.textContent = '';
  input.value = '';
  return new Promise((resolve) => {
    let ok = false;
    const onSubmit = async (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) {
        error.textContent = 'Enter the admin token.';
        input.focus();
        return;
      }
      submit && (submit.disabled = true);
      error.textContent = '';
      try {
        const res = await fetch('/api/login', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ token }),
        });
        const body = await readJson(res);
        if (!res.ok) {
          error.textContent =
            res.status === 401
              ? 'That token was not accepted. Check it and try again.'
              : (body && body.error) || `Login failed (HTTP ${res.status}).`;
          input.select();
          return;
        }
        setSession(body);
        ok = true;
        dlg.close('ok');
      } catch {
        error.textContent = 'Cannot reach the thermostat. Check the connection and try again.';
      } finally {
        submit && (submit.disabled = false);
      }
    };
    const onClose = () => {
      form.removeEventListener('submit', onSubmit);
      dlg.removeEventListener('close', onClose);
      input.value = ''; // never keep the credential in the page longer than needed
      resolve(ok);
    };
    form.addEventListener('submit', onSubmit);
    dlg.addEventListener('close', onClose);
    if (!dlg.open) dlg.showModal();
    input.focus();
  });
}

// ---------------------------------------------------------------------------------------
// Requests

async function readJson(res) {
  const text = await res.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * `api("GET", "/v1/sensors")` → the parsed JSON, or null for 204. Throws ApiError carrying the
 * server's `error` text. A change refused for want of a session opens the login dialog and is
 * retried once after a successful login.
 */
export async function api(method, path, body) {
  method = method.toUpperCase();
  const mutation = method !== 'GET' && method !== 'HEAD';
  if (mutation) {
    if (!loaded) loaded = refreshSession();
    await loaded;
  }
  let retriedLogin = false;
  let retriedCsrf = false;
  for (;;) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (mutation && current.csrf) headers['X-Hearth-CSRF'] = current.csrf;
    let res;
    try {
      res = await fetch('/api' + path, {
        method,
        headers,
        credentials: 'same-origin',
        cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'network', 'Cannot reach the thermostat. Check the connection.');
    }
    if (res.status === 401 && mutation && !retriedLogin) {
      // No session, or it expired since the page loaded: ask once, then try again.
      retriedLogin = true;
      setSession(null);
      if (await requireLogin()) continue;
      throw new ApiError(401, 'unauthorized', 'Log in to make changes.');
    }
    if (res.status === 403 && mutation && !retriedCsrf) {
      // A CSRF token from before a re-login (e.g. in another tab): fetch the current one and
      // retry once; a second 403 is a real refusal.
      retriedCsrf = true;
      const before = current.csrf;
      await refreshSession();
      if (current.authenticated && current.csrf && current.csrf !== before) continue;
    }
    if (res.status === 204) return null;
    const data = await readJson(res);
    if (!res.ok) {
      const msg = (data && data.error) || `${res.status} ${res.statusText || 'error'}`;
      throw new ApiError(res.status, (data && data.code) || 'http_' + res.status, msg);
    }
    return data;
  }
}

// ---------------------------------------------------------------------------------------
// Events: one EventSource for the whole page, shared by every view

// `house`: every zone's and plant's status, in a house with zones.
const TYPES = ['reading', 'decision', 'relay', 'house', 'changed', 'lagged'];
const listeners = new Map(TYPES.map((t) => [t, new Set()]));
let source = null;
let retryTimer = null;
let retryDelay = 1000;
let hadError = false;

function emit(type, data) {
  for (const fn of [...(listeners.get(type) || [])]) {
    try {
      fn(data);
    } catch (e) {
      console.error(`hearth: ${type} listener failed`, e);
    }
  }
}

function connect() {
  if (source) return;
  source = new EventSource('/api/events');
  source.addEventListener('open', () => {
    retryDelay = 1000;
    // Events may have been missed while the stream was down: tell views to re-read, the same
    // way the server says it.
    if (hadError) emit('lagged', { type: 'lagged', missed: 0, reconnected: true });
    hadError = false;
  });
  for (const t of TYPES) {
    source.addEventListener(t, (ev) => {
      let data = null;
      try {
        data = JSON.parse(ev.data);
      } catch {
        return;
      }
      emit(t, data);
    });
  }
  source.addEventListener('error', () => {
    hadError = true;
    // The browser retries by itself while the connection is merely interrupted; once it gives
    // up (CLOSED, e.g. hearth-web answered 502 during a restart) we reconnect with back-off.
    if (source && source.readyState === EventSource.CLOSED) {
      source = null;
      clearTimeout(retryTimer);
      retryTimer = setTimeout(() => {
        retryTimer = null;
        if (anyListeners()) connect();
      }, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30000);
    }
  });
}

function anyListeners() {
  for (const set of listeners.values()) if (set.size) return true;
  return false;
}

/** Subscribe to an event type; returns the unsubscribe function. */
export function on(type, fn) {
  const set = listeners.get(type);
  if (!set) throw new Error(`unknown event type ${type}`);
  set.add(fn);
  connect();
  return () => set.delete(fn);
}
