// The one way a view sends a form: its error line cleared, the body read (a thrown Error is the
// message shown, and nothing is sent), the button disabled while the request runs, then what
// follows a success; a refusal shows the engine's message and leaves what was typed in place.

/**
 * submit({ error, button, body: () => value, send: async (value) => …, done: async () => …,
 *          reveal }) → true once sent. `reveal` scrolls the error into view (long dialogs).
 */
export async function submit({ error, button, body, send, done, reveal = false }) {
  error.textContent = '';
  let value;
  try {
    value = body();
  } catch (e) {
    error.textContent = e.message;
    return false;
  }
  button.disabled = true;
  try {
    await send(value);
    if (done) await done();
    return true;
  } catch (e) {
    error.textContent = e.message || String(e);
    if (reveal) error.scrollIntoView({ block: 'nearest' });
    return false;
  } finally {
    button.disabled = false;
  }
}
