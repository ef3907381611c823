// Provenance: an object (and, with children, what it owns), every action
// on it with who did it and what changed, filtered by user, verb and time,
// and counts by user and by verb as charts. Each row carries its receipt.
import * as api from '../api.js';
import { h, link, table, entryLink, shortTime, receiptLine, proofMark } from '../dom.js';
import { barChart } from '../charts.js';
import { parseVerifierKey, parseWitnessPolicy, verifyAnswerReceipt } from '../verify.js';

export const title = 'Provenance';

const FILTERS = ['children', 'user', 'verb', 'since', 'until', 'reads'];

export async function render(main, { parts, params, navigate, signal }) {
  // /ui/object/<kind>/<namespace>/<name>, or /ui/object/<kind>/<name> (cluster-scoped).
  const kind = parts[0] || '';
  const [namespace, name] = parts.length >= 3 ? [parts[1], parts[2]] : ['', parts[1] || ''];
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  const submit = (e) => {
    e.preventDefault();
    const t = e.target;
    const ns = t.namespace.value.trim();
    const e2 = encodeURIComponent;
    const path = `/ui/object/${e2(t.kind.value.trim())}/` + (ns ? e2(ns) + '/' : '') + e2(t.name.value.trim());
    navigate(path + api.query({ children: t.children.checked ? 'true' : '', user: t.user.value.trim(), verb: t.verb.value.trim(),
                                since: t.since.value.trim(), until: t.until.value.trim(), reads: t.reads.checked ? 'true' : '' }));
  };
  main.append(h('h1', {}, 'Provenance'),
    h('form', { class: 'query', onsubmit: submit },
      h('label', {}, 'Kind ', h('input', { name: 'kind', value: kind, required: true, size: 12, placeholder: 'Deployment' })),
      h('label', {}, 'Namespace ', h('input', { name: 'namespace', value: namespace, size: 14 })),
      h('label', {}, 'Name ', h('input', { name: 'name', value: name, required: true, size: 24 })),
      h('label', {}, h('input', { type: 'checkbox', name: 'children', checked: f.children === 'true' }), ' and what it owns'),
      h('label', {}, h('input', { type: 'checkbox', name: 'reads', checked: f.reads === 'true' }), ' reads too'),
      h('label', {}, 'User ', h('input', { name: 'user', value: f.user, size: 16 })),
      h('label', {}, 'Verb ', h('input', { name: 'verb', value: f.verb, size: 8 })),
      h('label', {}, 'Since ', h('input', { name: 'since', value: f.since, size: 18 })),
      h('label', {}, 'Until ', h('input', { name: 'until', value: f.until, size: 18 })),
      h('button', {}, 'Show')));
  if (!kind || !name) return;
  const a = await api.getJson('/v1/history', { kind, namespace, name, children: f.children, since: f.since, until: f.until,
                                              verbs: f.reads === 'true' ? 'get,list,watch' : '', proof: 'true' }, signal);
  const key = api.verifierKey();
  const k = await parseVerifierKey(key.text);
  k.witnesses = await api.witnessPolicy(parseWitnessPolicy);
  const proof = await verifyAnswerReceipt(a.receipt, k);
  const events = a.events.filter((e) => (!f.user || e.user.username === f.user || e.impersonated_user?.username === f.user) &&
                                        (!f.verb || e.verb === f.verb));
  const count = (sel) => {
    const m = new Map();
    for (const e of events) m.set(sel(e), (m.get(sel(e)) || 0) + 1);
    return [...m].map(([key, count]) => ({ key, count })).sort((x, y) => y.count - x.count);
  };
  const here = (extra) => location.pathname + api.query({ ...f, ...extra });
  main.append(
    h('p', { id: 'summary' }, `${events.length} action${events.length === 1 ? '' : 's'} on ${kind} ${namespace ? namespace + '/' : ''}${name}` +
      (f.children === 'true' ? ' and what it owns' : '') + (events.length !== a.events.length ? ` (of ${a.events.length}, filtered)` : '') + '.'),
    receiptLine(proof, key),
    h('div', { class: 'charts' },
      barChart('Actions by user', count((e) => e.user.username || '(watch)'), (u) => navigate(here({ user: u }))),
      barChart('Actions by verb', count((e) => e.verb), (v) => navigate(here({ verb: v })))),
    table(['time', 'verb', 'user', 'object', 'code', 'what changed', 'entry', ''],
      events.map((e) => ({
        attrs: { 'data-index': e.index },
        cells: [shortTime(e.time), e.verb, userText(e), `${e.resource}${e.subresource ? '/' + e.subresource : ''} ${e.name}`,
                e.code || '', changesText(e.changes), entryLink(e.index), proofMark(proof, e.index)],
      })), { class: 'history' }));
}

function userText(e) {
  const u = e.user.username || '(seen by the watch collector)';
  return e.impersonated_user ? `${u} as ${e.impersonated_user.username}` : u;
}

// A JSON Patch, shortened to the paths it touches.
export function changesText(changes) {
  if (!changes || !changes.length) return '';
  if (changes.length === 1 && changes[0].path === '/') return changes[0].op === 'add' ? 'created' : changes[0].op === 'remove' ? 'deleted' : 'replaced';
  const paths = changes.slice(0, 4).map((c) => `${c.op} ${c.path}`);
  return h('details', {}, h('summary', {}, paths.join(', ') + (changes.length > 4 ? ` … (${changes.length})` : '')),
    h('pre', { class: 'json' }, JSON.stringify(changes, null, 2)));
}
