// The HTTP API, as the console asks it: the same endpoints and the same
// credentials as any client (a bearer token the user gives, kept in this
// tab's sessionStorage; or the browser's client certificate). No state
// beyond the token and the pinned verifier key.

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function token() {
  return sessionStorage.getItem('annals.token') || '';
}
export function setToken(t) {
  if (t) sessionStorage.setItem('annals.token', t);
  else sessionStorage.removeItem('annals.token');
}

// The verifier key: the one the user pinned, else the one the server named
// in the page (reported as not pinned).
export function verifierKey() {
  const pinned = localStorage.getItem('annals.vkey');
  if (pinned) return { text: pinned, pinned: true };
  const served = document.querySelector('meta[name="annals-vkey"]')?.content || '';
  return { text: served, pinned: false };
}
export function pinVerifierKey(k) {
  if (k) localStorage.setItem('annals.vkey', k);
  else localStorage.removeItem('annals.vkey');
}

function headers(extra) {
  const h = new Headers(extra || {});
  const t = token();
  if (t) h.set('Authorization', 'Bearer ' + t);
  return h;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

async function errorOf(r) {
  const text = await r.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {}
  const why = (body && body.error) || text.trim() || r.statusText;
  return new ApiError(r.status, `${r.status}: ${why}`, body);
}

export async function getJson(path, params, signal) {
  const r = await fetch(path + query(params), { headers: headers(), signal });
  if (!r.ok) throw await errorOf(r);
  return r.json();
}

export async function getText(path, signal) {
  const r = await fetch(path, { headers: headers(), signal });
  if (!r.ok) throw await errorOf(r);
  return r.text();
}

// The server's witness policy (GET /v1/witnesses), parsed, or null: none,
// or not allowed to read it. Asked once per page.
let witnessPolicyAnswer = null;
export function witnessPolicy(parse) {
  if (!witnessPolicyAnswer)
    witnessPolicyAnswer = getJson('/v1/witnesses').then(parse).catch(() => null);
  return witnessPolicyAnswer;
}

// /v1/watch as a stream read with fetch (EventSource cannot send a bearer
// token). Calls onChange(change) per event, onOpen() once connected;
// resumes after a drop from the last index seen. Stops when `signal` aborts.
export async function watch(params, { onChange, onOpen, onError, signal }) {
  let last = null;
  while (!signal.aborted) {
    try {
      const h = headers({ Accept: 'text/event-stream' });
      if (last !== null) h.set('Last-Event-ID', String(last));
      const r = await fetch('/v1/watch' + query(params), { headers: h, signal });
      if (!r.ok) throw await errorOf(r);
      onOpen && onOpen();
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let end;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let id = null, data = '', event = 'message';
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data += line.slice(6);
            else if (line.startsWith('event: ')) event = line.slice(7);
          }
          if (event === 'error') throw new ApiError(0, 'the stream ended: ' + data, null);
          if (data && id !== null) {
            last = id;
            onChange(JSON.parse(data));
          }
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      onError && onError(e);
      if (e instanceof ApiError && e.status >= 400 && e.status < 500) return;
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}
