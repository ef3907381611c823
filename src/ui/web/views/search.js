// Search: filters over the audit events, the matches as a table paged by
// the API's cursor (each page's receipt verified here), their counts over
// time as a histogram, and group-by counts as a chart.
import * as api from '../api.js';
import { h, link, table, entryLink, objectHref, shortTime, receiptLine, proofMark } from '../dom.js';
import { barChart, histogram } from '../charts.js';
import { parseVerifierKey, parseWitnessPolicy, verifyAnswerReceipt, mergeVerifications } from '../verify.js';

export const title = 'Search';

const FILTERS = ['from', 'to', 'user', 'verb', 'resource', 'namespace', 'name', 'code', 'q'];
const GROUPS = ['', 'user', 'verb', 'resource', 'namespace', 'code', 'source_ip', 'user_agent'];
const PAGE = 200;
const STEP_NAMES = { 3600000: 'hour', 86400000: 'day', 604800000: 'week', 2592000000: '30 days', 31536000000: '365 days' };

export async function render(main, { params, navigate, signal }) {
  const f = Object.fromEntries(FILTERS.map((k) => [k, params.get(k) || '']));
  const groupBy = params.get('group_by') || '';
  const submit = (e) => {
    e.preventDefault();
    const q = {};
    for (const k of FILTERS) q[k] = e.target[k].value.trim();
    q.group_by = e.target.group_by.value;
    navigate('/ui/search' + api.query(q));
  };
  main.append(h('h1', {}, 'Search'),
    h('form', { class: 'query', onsubmit: submit },
      FILTERS.map((k) => h('label', {}, k + ' ', h('input', { name: k, value: f[k], size: k === 'from' || k === 'to' ? 20 : 12 }))),
      h('label', {}, 'group by ', h('select', { name: 'group_by' }, GROUPS.map((g) => h('option', { value: g, selected: g === groupBy }, g || '(none)')))),
      h('button', {}, 'Search')));
  const filters = Object.fromEntries(Object.entries(f).filter(([, v]) => v));
  const key = api.verifierKey();
  const k = await parseVerifierKey(key.text);
  k.witnesses = await api.witnessPolicy(parseWitnessPolicy);
  const list = async (cursor) => {
    const page = await api.getJson('/v1/events', { ...filters, limit: PAGE, cursor, proof: 'true' }, signal);
    page.proof = await verifyAnswerReceipt(page.receipt, k);
    return page;
  };
  // The group-by is asked first but drawn last: counting a filtered group
  // over a long history can take seconds, and the table and histogram
  // should not wait for it.
  const grouped = groupBy ? api.getJson('/v1/events', { ...filters, group_by: groupBy }, signal) : null;
  grouped?.catch(() => {});  // its failure is shown where it is awaited
  const [byHour, first] = await Promise.all([
    api.getJson('/v1/events', { ...filters, group_by: 'hour' }, signal),
    list(),
  ]);
  const groupBox = h('div', { class: 'grouped' });
  main.append(h('p', { id: 'summary' }, `${byHour.total} matching event${byHour.total === 1 ? '' : 's'}.`),
    (() => { const b = hourBuckets(byHour.groups); return histogram('Matches per ' + STEP_NAMES[b.step], b.buckets, b.step); })(),
    groupBox);
  const body = h('tbody', {});
  const t = h('table', { class: 'events' },
    h('thead', {}, h('tr', {}, ['time', 'verb', 'user', 'resource', 'namespace', 'name', 'code', 'entry', ''].map((c) => h('th', { scope: 'col' }, c)))), body);
  const more = h('button', { type: 'button', class: 'more' }, 'More');
  const line = h('div', {});
  const proofs = [];
  main.append(line, t, more);
  const add = (page) => {
    proofs.push(page.proof);
    line.replaceChildren(receiptLine(mergeVerifications(proofs), key));
    for (const e of page.events)
      body.append(h('tr', { 'data-index': e.index }, [shortTime(e.time), e.verb, e.user + (e.impersonated_user ? ' as ' + e.impersonated_user : ''),
        e.resource + (e.subresource ? '/' + e.subresource : ''), e.namespace,
        e.name ? link(objectHref(e.resource, e.namespace, e.name), e.name) : '', String(e.code || ''), entryLink(e.index), proofMark(page.proof, e.index)].map((c) => h('td', {}, c))));
    more.hidden = !page.next_cursor;
    more.onclick = async () => add(await list(page.next_cursor));
  };
  add(first);
  performance.mark('annals-answer');
  if (grouped) {
    groupBox.append(h('p', { class: 'muted', role: 'status' }, `Counting by ${groupBy}…`));
    const byGroup = await grouped;
    const rows = [...byGroup.groups].sort((a, b) => b.count - a.count);
    groupBox.replaceChildren(barChart(`Matches by ${groupBy}`, rows.slice(0, 30), (k) => navigate('/ui/search' + api.query({ ...f, [groupBy]: k }))),
      table([groupBy, 'count'], rows.map((r) => ({ cells: [String(r.key), String(r.count)] })), { class: 'groups' }));
  }
}

// group_by=hour keys (hours since the epoch, or times) as histogram buckets
// ({buckets, step}), gaps filled.
export function hourBuckets(groups) {
  const start = (k) => (typeof k === 'number' ? k * 3600e3 : Date.parse(k));
  const m = new Map(groups.map((g) => [start(g.key), g.count]));
  const keys = [...m.keys()].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!keys.length) return { buckets: [], step: 3600e3 };
  const out = [];
  // The finest of hour, day, week, 30 and 365 days that needs at most 200 buckets.
  const span = keys[keys.length - 1] - keys[0] + 3600e3;
  const step = [3600e3, 86400e3, 7 * 86400e3, 30 * 86400e3, 365 * 86400e3].find((st) => span / st <= 200) || 365 * 86400e3;
  const buckets = new Map();
  for (const k of keys) {
    const b = Math.floor(k / step) * step;
    buckets.set(b, (buckets.get(b) || 0) + m.get(k));
  }
  for (let t = Math.floor(keys[0] / step) * step; t <= keys[keys.length - 1]; t += step) out.push({ start: t, count: buckets.get(t) || 0 });
  return { buckets: out, step };
}
