// Who had this IP: an IP and a time, or a pasted flow log line (Hubble
// JSON, {"time","src_ip","dst_ip"}, or an AWS VPC flow log record), to the
// pod that held each address then, its owners, labels and Services, the
// interval it held it, and the pods that held it before and after.
import * as api from '../api.js';
import { h, link, table, entryLink, objectHref, shortTime, receiptLine, proofMark, errorBox, iso } from '../dom.js';
import { parseVerifierKey, parseWitnessPolicy, verifyAnswerReceipt } from '../verify.js';

export const title = 'Who had this IP';

// The addresses and time of a pasted flow line, or null.
export function parseFlowLine(line) {
  const t = line.trim();
  if (!t) return null;
  if (t.startsWith('{')) {
    const j = JSON.parse(t);
    const f = j.flow || j;
    if (f.IP && f.time) return { time: f.time, ips: [f.IP.source, f.IP.destination].filter(Boolean) };
    if (j.time && (j.src_ip || j.dst_ip)) return { time: j.time, ips: [j.src_ip, j.dst_ip].filter(Boolean) };
    throw new Error('a JSON flow needs flow.time and flow.IP, or time with src_ip/dst_ip');
  }
  // AWS VPC flow log, default format: version account interface srcaddr dstaddr srcport dstport protocol packets bytes start end action status
  const f = t.split(/\s+/);
  if (f.length >= 14 && /^\d+$/.test(f[10])) return { time: iso(Number(f[10]) * 1000), ips: [f[3], f[4]].filter((x) => x !== '-') };
  throw new Error('not a flow line this page knows: Hubble JSON, {"time","src_ip","dst_ip"}, or an AWS VPC flow log record');
}

export async function render(main, { parts, params, navigate, signal }) {
  const ip = parts[0] || '';
  const at = params.get('at') || '';
  const go = (addr, time) => navigate('/ui/ip/' + encodeURIComponent(addr) + api.query({ at: time }));
  const submit = (e) => {
    e.preventDefault();
    go(e.target.ip.value.trim(), e.target.at.value.trim());
  };
  const flowSubmit = (e) => {
    e.preventDefault();
    const out = e.target.querySelector('.flow-result');
    out.replaceChildren();
    try {
      const f = parseFlowLine(e.target.flow.value);
      if (!f) return;
      out.append(h('p', {}, 'This flow\'s ends: ', f.ips.map((x, i) => [i ? ' and ' : '', link('/ui/ip/' + encodeURIComponent(x) + api.query({ at: f.time }), x)]), ` at ${f.time}.`));
      if (f.ips.length) go(f.ips[0], f.time);
    } catch (err) {
      out.append(errorBox(err));
    }
  };
  main.append(h('h1', {}, 'Who had this IP'),
    h('form', { class: 'query', onsubmit: submit },
      h('label', {}, 'IP ', h('input', { name: 'ip', value: ip, required: true, size: 22, placeholder: '10.244.0.3' })),
      h('label', {}, 'At ', h('input', { name: 'at', value: at, placeholder: 'now, -15m or RFC 3339' })),
      h('button', {}, 'Ask')),
    h('form', { class: 'query', onsubmit: flowSubmit },
      h('label', { class: 'wide' }, 'Or paste a flow log line ', h('textarea', { name: 'flow', rows: 2, cols: 80, spellcheck: 'false' })),
      h('button', {}, 'Resolve both ends'), h('div', { class: 'flow-result' })));
  if (!ip) return;
  const key = api.verifierKey();
  let a;
  try {
    a = await api.getJson('/v1/pods/by-ip/' + encodeURIComponent(ip), { at: at || 'now', proof: 'true' }, signal);
  } catch (e) {
    if (e.status !== 404) throw e;
    const n = (e.body && e.body.nearest) || {};
    main.append(h('p', { id: 'summary', class: 'muted' }, `No pod held ${ip} at ${at || 'now'}.`), neighbours(ip, n.before, n.after));
    return;
  }
  const k = await parseVerifierKey(key.text);
  k.witnesses = await api.witnessPolicy(parseWitnessPolicy);
  const proof = await verifyAnswerReceipt(a.receipt, k);
  const pod = a.pod;
  const iv = a.interval || {};
  main.append(
    h('p', { id: 'summary' }, `${ip} at ${a.at} was pod `, link(objectHref('pods', pod.namespace, pod.name), `${pod.namespace}/${pod.name}`),
      ` (${pod.phase || 'phase unknown'}${pod.state ? ', ' + pod.state : ''}), which held it from ${shortTime(iv.from)} to ${iv.to ? shortTime(iv.to) : 'now'}.`),
    receiptLine(proof, key),
    table(['field', 'value'], [
      ['namespace', pod.namespace], ['name', pod.name], ['uid', pod.uid], ['node', pod.node || ''],
      ['service account', pod.service_account || ''],
      ['labels', Object.entries(pod.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ')],
      ['held the IP', `${shortTime(iv.from)} → ${iv.to ? shortTime(iv.to) : 'still'}`],
    ].map(([k, v]) => ({ cells: [k, v] })), { class: 'kv', id: 'pod' }),
    h('h2', {}, 'Owners'),
    a.owners && a.owners.length ? table(['kind', 'name', 'entry', ''], a.owners.map((o) => ({
      cells: [o.kind, link(objectHref(o.kind, pod.namespace, o.name), o.name), o.index !== undefined ? entryLink(o.index) : '', proofMark(proof, o.index)] }))) : h('p', { class: 'muted' }, 'None.'),
    h('h2', {}, 'Services selecting it'),
    a.services && a.services.length ? table(['name', 'entry', ''], a.services.map((s) => ({
      cells: [link(objectHref('services', pod.namespace, s.name), s.name), s.index !== undefined ? entryLink(s.index) : '', proofMark(proof, s.index)] }))) : h('p', { class: 'muted' }, 'None.'),
    h('h2', {}, 'Evidence'),
    h('p', {}, (a.evidence || []).map((i) => [entryLink(i), ' ', proofMark(proof, i), ' '])));
  // Before and after: who held the address just before this interval began and just after it ended.
  const side = async (t) => {
    if (!t) return null;
    try {
      const b = await api.getJson('/v1/pods/by-ip/' + encodeURIComponent(ip), { at: t }, signal);
      return b.pod.uid === pod.uid ? null : { namespace: b.pod.namespace, name: b.pod.name, interval: b.interval };
    } catch (e) {
      if (e.status === 404) return (e.body && e.body.nearest) ? { none: true, nearest: e.body.nearest } : null;
      throw e;
    }
  };
  const before = iv.from ? await side(iso(Date.parse(iv.from) - 1)) : null;
  const after = iv.to ? await side(iv.to) : null;
  main.append(h('h2', {}, 'Before and after'), holders(ip, before, after));
}

function holders(ip, before, after) {
  const row = (label, x) => {
    if (!x) return { cells: [label, 'nobody known'] };
    if (x.none) {
      const n = label === 'before' ? x.nearest.before : x.nearest.after;
      return { cells: [label, n ? holderText(ip, n) : 'nobody'] };
    }
    return { cells: [label, holderText(ip, x)] };
  };
  return table(['', 'pod'], [row('before', before), row('after', after)], { id: 'neighbours' });
}

function holderText(ip, n) {
  const iv = n.interval || {};
  return h('span', {}, link(objectHref('pods', n.namespace, n.name || n.pod), `${n.namespace}/${n.name || n.pod}`),
    iv.from ? ` (${shortTime(iv.from)} → ${iv.to ? shortTime(iv.to) : 'still'}; `: ' (',
    link('/ui/ip/' + encodeURIComponent(ip) + api.query({ at: iv.from }), 'ask then'), ')');
}

function neighbours(ip, before, after) {
  return table(['', 'pod'], [
    { cells: ['before', before ? holderText(ip, before) : 'nobody'] },
    { cells: ['after', after ? holderText(ip, after) : 'nobody'] }], { id: 'neighbours' });
}
