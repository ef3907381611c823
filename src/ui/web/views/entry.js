// One entry: its receipt verified in the browser from the entry's own
// bytes (signature, leaf hash, inclusion proof, external payload digest),
// then the event as those bytes say, never as the server's "event" says.
import * as api from '../api.js';
import { h, link, table, jsonBlock, objectHref, errorBox } from '../dom.js';
import { parseVerifierKey, verifyEntryReceipt, payloadJson, b64decode } from '../verify.js';

export const title = 'Entry';

// The fields the table shows of a Kubernetes audit event, as the server
// reads them (state::ReadAuditFields).
function auditFields(ev) {
  const ref = ev.objectRef || {};
  return {
    verb: ev.verb, user: ev.user && ev.user.username, resource: ref.resource, subresource: ref.subresource,
    namespace: ref.namespace, name: ref.name, code: ev.responseStatus ? ev.responseStatus.code : undefined,
    time: ev.stageTimestamp || ev.timestamp,
  };
}

export async function render(main, { parts, navigate, signal }) {
  const index = parts[0] || '';
  main.append(h('h1', {}, 'Entry'),
    h('form', { class: 'query', onsubmit: (e) => { e.preventDefault(); navigate('/ui/entry/' + e.target.index.value.trim()); } },
      h('label', {}, 'Ledger index ', h('input', { name: 'index', value: index, inputmode: 'numeric', required: true, size: 12 })),
      h('button', {}, 'Show')));
  if (!index) return;
  const answer = await api.getJson('/v1/entries/' + encodeURIComponent(index), {}, signal);
  let blob = null;
  if (answer.payload_sha256) {
    const raw = await api.getJson('/v1/entries/' + encodeURIComponent(index), { payload: 'base64' }, signal);
    blob = b64decode(raw.payload_base64);
  }
  const key = api.verifierKey();
  let result;
  try {
    result = await verifyEntryReceipt(answer, await parseVerifierKey(key.text), blob);
  } catch (e) {
    result = { ok: false, steps: [{ what: 'failed', ok: false, detail: e.message }], error: e.message };
  }
  main.append(h('section', { class: result.ok ? 'proof verified' : 'proof failed', 'data-verified': result.ok ? 'ok' : 'failed',
                             role: result.ok ? null : 'alert' },
    h('h2', {}, result.ok ? `✓ Entry ${index} verified in this browser` : `✗ Entry ${index} does not verify`),
    h('ol', {}, result.steps.map((s) => h('li', { class: s.ok ? 'ok' : 'bad' }, `${s.ok ? '✓' : '✗'} ${s.what}: ${s.detail}`))),
    h('p', { class: 'hint' }, key.pinned ? 'Checked with the pinned verifier key.'
      : 'Checked with the key this server named (not pinned): set a key under "Credentials & key" to check against the log you expect.')));
  if (!result.ok) {
    main.append(errorBox(new Error('What the server sent for this entry is not what the log signed: nothing below is shown from it.')));
    return;
  }
  const { meta, payload } = result.entry;
  const ev = payloadJson(payload);
  // Metadata version 1 repeats an audit event's fields in "audit";
  // version 2 leaves them to the event.
  const a = meta.audit || (String(meta.type).startsWith('k8s.audit') && ev ? auditFields(ev) : {});
  const rows = [
    ['type', meta.type], ['source', meta.src], ['received', meta.rt], ['dedup key', meta.key],
    ['verb', a.verb], ['user', a.user], ['resource', a.resource && (a.resource + (a.subresource ? '/' + a.subresource : ''))],
    ['namespace', a.namespace], ['name', a.name], ['code', a.code], ['time', a.time],
  ].filter(([, v]) => v !== undefined && v !== '');
  main.append(h('h2', {}, 'What the entry says'),
    table(['field', 'value'], rows.map(([k, v]) => ({ cells: [k, String(v)] })), { class: 'kv' }));
  if (a.resource && a.name)
    main.append(h('p', {}, link(objectHref(a.resource, a.namespace, a.name), `Everything done to ${a.resource} ${a.namespace ? a.namespace + '/' : ''}${a.name}`)));
  main.append(h('h2', {}, ev ? 'The event, as stored' : 'The payload (not JSON)'),
    ev ? jsonBlock(ev) : h('pre', {}, new TextDecoder().decode(payload)));
}
