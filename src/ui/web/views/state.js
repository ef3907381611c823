// State at T: the objects as they were at a time, and what changed between
// two times (appeared, vanished, changed), each row linked to its
// provenance and to the entry that made it so.
import * as api from '../api.js';
import { h, link, table, entryLink, objectHref, shortTime, receiptLine, proofMark } from '../dom.js';
import { parseVerifierKey, verifyAnswerReceipt } from '../verify.js';

export const title = 'State at T';

const FIELDS = ['at', 'compare', 'namespace', 'kind', 'selector'];

export async function render(main, { params, navigate, signal }) {
  const p = Object.fromEntries(FIELDS.map((f) => [f, params.get(f) || '']));
  const submit = (e) => {
    e.preventDefault();
    const q = {};
    for (const f of FIELDS) q[f] = e.target[f].value.trim();
    navigate('/ui/state' + api.query(q));
  };
  main.append(h('h1', {}, 'State at T'),
    h('form', { class: 'query', onsubmit: submit },
      h('label', {}, 'At ', h('input', { name: 'at', value: p.at, placeholder: '2024-05-01T10:30:00Z or -2h', required: true })),
      h('label', {}, 'Compare with ', h('input', { name: 'compare', value: p.compare, placeholder: '(optional) another time' })),
      h('label', {}, 'Namespace ', h('input', { name: 'namespace', value: p.namespace, size: 14 })),
      h('label', {}, 'Kind ', h('input', { name: 'kind', value: p.kind, placeholder: 'pods, Deployment…', size: 12 })),
      h('label', {}, 'Selector ', h('input', { name: 'selector', value: p.selector, placeholder: 'app=web', size: 14 })),
      h('button', {}, 'Show')));
  if (!p.at) return;
  const ask = (at) => api.getJson('/v1/state', { at, namespace: p.namespace, kind: p.kind, selector: p.selector, proof: 'true' }, signal);
  const key = api.verifierKey();
  const k = await parseVerifierKey(key.text);
  const first = await ask(p.at);
  const firstProof = await verifyAnswerReceipt(first.receipt, k);
  if (!p.compare) {
    main.append(h('p', { id: 'summary' }, `${first.count} object${first.count === 1 ? '' : 's'} existed at ${first.at}.`),
      receiptLine(firstProof, key), objectTable(first.objects, firstProof));
    return;
  }
  const second = await ask(p.compare);
  const secondProof = await verifyAnswerReceipt(second.receipt, k);
  const byUid = (a) => new Map(a.objects.map((o) => [o.uid, o]));
  const a = byUid(first), b = byUid(second);
  const appeared = second.objects.filter((o) => !a.has(o.uid));
  const vanished = first.objects.filter((o) => !b.has(o.uid));
  const changed = second.objects.filter((o) => a.has(o.uid) && a.get(o.uid).index !== o.index);
  main.append(
    h('p', { id: 'summary' }, `From ${first.at} (${first.count} objects) to ${second.at} (${second.count} objects): ` +
      `${appeared.length} appeared, ${vanished.length} vanished, ${changed.length} changed.`),
    receiptLine(firstProof, key), receiptLine(secondProof, key),
    h('h2', {}, `Appeared (${appeared.length})`), objectTable(appeared, secondProof),
    h('h2', {}, `Vanished (${vanished.length})`), objectTable(vanished, firstProof),
    h('h2', {}, `Changed (${changed.length})`), objectTable(changed, secondProof));
}

function objectTable(objects, proof) {
  if (!objects.length) return h('p', { class: 'muted' }, 'None.');
  return table(['kind', 'namespace', 'name', 'state', 'since', 'entry', ''],
    objects.map((o) => ({
      attrs: { 'data-uid': o.uid },
      cells: [o.resource, o.namespace, link(objectHref(o.resource, o.namespace, o.name), o.name), o.state,
              shortTime(o.since), entryLink(o.index), proofMark(proof, o.index)],
    })), { class: 'objects' });
}
