// Small DOM helpers shared by the views: element building (text is always
// set as text, never parsed as HTML), tables, errors, times, and the
// receipt badge.

export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'class') e.className = v;
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, v);
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// An internal link: navigates without a reload (app.js handles data-nav).
export function link(href, text, attrs) {
  return h('a', { href, 'data-nav': true, ...(attrs || {}) }, text);
}

export function entryLink(index) {
  return link('/ui/entry/' + index, '#' + index, { title: 'entry ' + index + ': its bytes and receipt' });
}

// /ui/object/<kind>/<namespace>/<name>, or /ui/object/<kind>/<name> for a
// cluster-scoped object.
export function objectHref(resource, namespace, name) {
  const e = encodeURIComponent;
  return namespace ? `/ui/object/${e(resource)}/${e(namespace)}/${e(name)}` : `/ui/object/${e(resource)}/${e(name)}`;
}

export function table(columns, rows, attrs) {
  return h('table', attrs || {},
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', r.attrs || {}, r.cells.map((c) => h('td', {}, c))))));
}

export function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, err.message || String(err));
}

export function jsonBlock(value) {
  return h('pre', { class: 'json' }, JSON.stringify(value, null, 2));
}

// Times as the API gives them (RFC 3339 UTC), shortened for tables.
export function shortTime(t) {
  if (!t) return '';
  return String(t).replace('T', ' ').replace(/(\.\d{3})\d*Z$/, '$1Z');
}

export function parseTime(t) {
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? null : ms;
}

export function iso(ms) {
  return new Date(ms).toISOString();
}

// The line under a question's answer saying whether its receipt verified.
export function receiptLine(result, key) {
  if (!result) return null;
  const who = key.pinned ? 'the pinned key' : 'the key this server named (not pinned)';
  if (result.ok)
    return h('p', { class: 'verified', 'data-verified': 'ok' },
      `✓ Verified in this browser: the checkpoint of tree size ${result.size} is signed by ${who}, and ` +
      `${result.results.size} inclusion proof${result.results.size === 1 ? ' leads' : 's lead'} to its root.`,
      witnessLine(result.witnesses));
  return h('p', { class: 'failed', role: 'alert', 'data-verified': 'failed' },
    '✗ Verification failed: ' + result.error +
    [...result.results].filter(([, r]) => !r.ok).map(([i, r]) => ` (entry ${i}: ${r.error})`).join(''));
}

// Who cosigned the checkpoint an answer rests on (verify.js
// verifyCosignatures), or nothing without a witness policy.
export function witnessLine(w) {
  if (!w) return null;
  const names = w.witnessed.map((x) => `${x.name} (${iso(x.time * 1000)})`).join(', ');
  const failed = w.failed.map((x) => ` ${x.name}'s cosignature failed: ${x.error}.`).join('');
  if (w.met)
    return h('span', { class: 'witnessed', 'data-witnessed': 'met' },
      ` Witnessed by ${names || 'nobody'}: the quorum ${w.quorum} is met.${failed}`);
  return h('span', { class: 'failed', 'data-witnessed': 'not-met' },
    ` ✗ Not witnessed as the policy asks (${w.quorum}): cosigned by ${names || 'nobody'}.${failed}`);
}

// The mark beside one evidence index in a table.
export function proofMark(result, index) {
  const r = result && result.results.get(String(index));
  if (!r) return h('span', { class: 'muted', title: 'no proof yet (newer than the checkpoint)' }, '·');
  return r.ok ? h('span', { class: 'ok', title: 'inclusion proof verified' }, '✓')
              : h('span', { class: 'bad', title: r.error }, '✗');
}
