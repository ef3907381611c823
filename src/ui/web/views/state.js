// State at T: the objects as they were at a time, and what changed between
// two times (appeared, vanished, changed), each row linked to its
// provenance and to the entry that made it so. The answer comes in pages
// (the API's limit and cursor, without the objects' bodies): a cluster of
// tens of thousands of objects shows its first page at once, and each page's
// receipt is verified as it arrives.
import * as api from '../api.js';
import { h, link, entryLink, objectHref, shortTime, receiptLine, proofMark } from '../dom.js';
import { parseVerifierKey, parseWitnessPolicy, verifyAnswerReceipt, mergeVerifications } from '../verify.js';

export const title = 'State at T';

const FIELDS = ['at', 'compare', 'namespace', 'kind', 'selector', 'limit'];
// A screen's worth first; a comparison reads whole answers in larger pages
// (fewer round trips).
const PAGE = 200;
const COMPARE_PAGE = 2000;
// A comparison needs both whole answers; past this many objects a side it
// asks for a narrower question instead of holding the tab.
const COMPARE_MAX = 50000;

export async function render(main, { params, navigate, signal }) {
  const p = Object.fromEntries(FIELDS.map((f) => [f, params.get(f) || '']));
  const page = Math.max(1, Math.min(10000, parseInt(p.limit, 10) || PAGE));
  const submit = (e) => {
    e.preventDefault();
    const q = {};
    for (const f of FIELDS) if (e.target[f]) q[f] = e.target[f].value.trim();
    if (p.limit) q.limit = p.limit;
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
  const key = api.verifierKey();
  const k = await parseVerifierKey(key.text);
  k.witnesses = await api.witnessPolicy(parseWitnessPolicy);
  // One page of the answer at a time, its receipt verified (for the
  // entries in `only`, if given: those shown).
  const ask = async (at, cursor, limit = page, verify = true) => {
    const a = await api.getJson('/v1/state', { at, namespace: p.namespace, kind: p.kind, selector: p.selector,
      bodies: 'false', proof: 'true', limit, cursor }, signal);
    if (verify) a.proof = await verifyAnswerReceipt(a.receipt, k);
    return a;
  };
  if (!p.compare) {
    const first = await ask(p.at);
    const summary = h('p', { id: 'summary' }, `${first.total} object${first.total === 1 ? '' : 's'} existed at ${first.at}.`);
    const shown = h('p', { id: 'shown', class: 'muted', role: 'status' });
    const line = h('div', {});
    const rows = objectTable();
    const more = h('button', { type: 'button', class: 'more' });
    const proofs = [];
    let n = 0;
    const add = (a) => {
      proofs.push(a.proof);
      rows.add(a.objects, a.proof);
      n += a.objects.length;
      line.replaceChildren(receiptLine(mergeVerifications(proofs), key));
      shown.textContent = n < a.total ? `Showing the first ${n} of ${a.total}, in kind, namespace and name order.` : '';
      more.hidden = !a.next_cursor;
      more.textContent = `Next ${Math.min(page, a.total - n)}`;
      more.onclick = async () => {
        more.disabled = true;
        try {
          add(await ask(p.at, a.next_cursor));
        } finally {
          more.disabled = false;
        }
      };
    };
    main.append(summary, line, shown, rows.table, more);
    add(first);
    return;
  }
  const status = h('p', { class: 'muted', role: 'status' }, 'Loading both answers…');
  main.append(status);
  // Both whole answers, page by page (the diff needs every object). Only
  // the rows shown (what appeared, vanished or changed) have their proofs
  // checked: an inclusion proof says an entry is in the log, and those of
  // rows not shown prove nothing on the page (nor could any proof show the
  // answer is complete).
  const whole = async (at) => {
    const out = { objects: [], receipts: [] };
    let cursor;
    for (;;) {
      const a = await ask(at, cursor, p.limit ? page : COMPARE_PAGE, false);
      out.at = a.at;
      out.total = a.total;
      if (a.total > COMPARE_MAX)
        throw new Error(`${a.total} objects existed at ${a.at}: too many to compare here (at most ${COMPARE_MAX}); narrow the question by namespace, kind or selector`);
      out.objects.push(...a.objects);
      out.receipts.push(a.receipt);
      status.textContent = `Loading: ${out.objects.length} of ${a.total} objects at ${a.at}…`;
      if (!a.next_cursor) break;
      cursor = a.next_cursor;
    }
    return out;
  };
  const verifyShown = async (side, rows) => {
    const shown = new Set(rows.map((o) => String(o.index)));
    return mergeVerifications(await Promise.all(side.receipts.map((r) => verifyAnswerReceipt({
      ...r, inclusion_proofs: Object.fromEntries(Object.entries(r.inclusion_proofs || {}).filter(([i]) => shown.has(i))),
    }, k))));
  };
  const [first, second] = await Promise.all([whole(p.at), whole(p.compare)]);
  status.remove();
  const byUid = (a) => new Map(a.objects.map((o) => [o.uid, o]));
  const a = byUid(first), b = byUid(second);
  const appeared = second.objects.filter((o) => !a.has(o.uid));
  const vanished = first.objects.filter((o) => !b.has(o.uid));
  const changed = second.objects.filter((o) => a.has(o.uid) && a.get(o.uid).index !== o.index);
  [first.proof, second.proof] = await Promise.all([verifyShown(first, vanished), verifyShown(second, [...appeared, ...changed])]);
  const section = (name, objects, proof) => {
    const t = objectTable();
    t.add(objects, proof);
    return [h('h2', {}, `${name} (${objects.length})`), objects.length ? t.table : h('p', { class: 'muted' }, 'None.')];
  };
  main.append(
    h('p', { id: 'summary' }, `From ${first.at} (${first.total} objects) to ${second.at} (${second.total} objects): ` +
      `${appeared.length} appeared, ${vanished.length} vanished, ${changed.length} changed.`),
    receiptLine(first.proof, key), receiptLine(second.proof, key),
    ...section('Appeared', appeared, second.proof), ...section('Vanished', vanished, first.proof),
    ...section('Changed', changed, second.proof));
}

// A table of objects that grows by add(objects, verification).
function objectTable() {
  const body = h('tbody', {});
  const table = h('table', { class: 'objects' },
    h('thead', {}, h('tr', {}, ['kind', 'namespace', 'name', 'state', 'since', 'entry', ''].map((c) => h('th', { scope: 'col' }, c)))),
    body);
  const add = (objects, proof) => {
    const rows = document.createDocumentFragment();
    for (const o of objects)
      rows.append(h('tr', { 'data-uid': o.uid }, [o.resource, o.namespace, link(objectHref(o.resource, o.namespace, o.name), o.name),
        o.state, shortTime(o.since), entryLink(o.index), proofMark(proof, o.index)].map((c) => h('td', {}, c))));
    body.append(rows);
  };
  return { table, add };
}
