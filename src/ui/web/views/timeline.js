// Timeline: the objects of a namespace (or the cluster, or one kind) as rows
// over time, a mark per change coloured by what it did; zoom and pan from
// hours to months (buttons, keys, wheel, drag); a click on a mark shows the
// change, its user and its verified entry; live changes arrive from
// /v1/watch. The rows are also listed as text under the chart.
import * as api from '../api.js';
import { h, s, link, table, entryLink, objectHref, shortTime, iso } from '../dom.js';
import { parseVerifierKey, verifyEntryReceipt, payloadJson } from '../verify.js';

export const title = 'Timeline';

const WRITES = new Set(['create', 'update', 'patch', 'delete', 'deletecollection', 'ADDED', 'MODIFIED', 'DELETED']);
const MAX_EVENTS = 5000;
const PAGE = 5000;
// Asked of the server (verb= takes a list), so reads never fill the pages.
const WRITE_VERBS = [...WRITES].join(',');

export function markClass(verb) {
  if (verb === 'create' || verb === 'ADDED') return 'create';
  if (verb === 'delete' || verb === 'deletecollection' || verb === 'DELETED') return 'delete';
  return 'update';
}

// The rows: one per object (resource, namespace, name), in order of first change.
export function rowsOf(events) {
  const rows = new Map();
  for (const e of events) {
    if (!e.name) continue;
    const k = `${e.resource}\u0000${e.namespace}\u0000${e.name}`;
    if (!rows.has(k)) rows.set(k, { resource: e.resource, namespace: e.namespace, name: e.name, events: [] });
    rows.get(k).events.push(e);
  }
  return [...rows.values()];
}

export async function render(main, { params, navigate, signal }) {
  const f = { namespace: params.get('namespace') || '', kind: params.get('kind') || '', from: params.get('from') || '', to: params.get('to') || '' };
  const submit = (e) => {
    e.preventDefault();
    const t = e.target;
    navigate('/ui/timeline' + api.query({ namespace: t.namespace.value.trim(), kind: t.kind.value.trim(), from: t.from.value.trim(), to: t.to.value.trim() }));
  };
  main.append(h('h1', {}, 'Timeline'),
    h('form', { class: 'query', onsubmit: submit },
      h('label', {}, 'Namespace ', h('input', { name: 'namespace', value: f.namespace, size: 14, placeholder: '(whole cluster)' })),
      h('label', {}, 'Kind ', h('input', { name: 'kind', value: f.kind, size: 12, placeholder: '(every kind)' })),
      h('label', {}, 'From ', h('input', { name: 'from', value: f.from, size: 22, placeholder: 'RFC 3339 or -24h' })),
      h('label', {}, 'To ', h('input', { name: 'to', value: f.to, size: 22, placeholder: 'now' })),
      h('button', {}, 'Show')));
  const filters = { namespace: f.namespace, resource: f.kind };
  // Without a range: the last day that holds this namespace's events (an
  // incident is usually recent; zoom out for the rest).
  let from = f.from, to = f.to;
  if (!from || !to) {
    const hours = await api.getJson('/v1/events', { ...filters, group_by: 'hour' }, signal);
    const starts = hours.groups.map((g) => (typeof g.key === 'number' ? g.key * 3600e3 : Date.parse(g.key))).filter((x) => !Number.isNaN(x));
    if (!starts.length) {
      main.append(h('p', { id: 'summary', class: 'muted' }, 'No events here yet.'));
      return;
    }
    const last = Math.max(...starts) + 3600e3;
    to = to || iso(last);
    from = from || iso(Math.max(Math.min(...starts), Date.parse(to) - 86400e3));
  }
  const events = [];
  let truncated = false;
  const load = async () => {
    events.length = 0;
    let cursor;
    for (;;) {
      const page = await api.getJson('/v1/events', { ...filters, verb: WRITE_VERBS, from, to, limit: PAGE, cursor }, signal);
      for (const e of page.events) if (WRITES.has(e.verb)) events.push(e);
      if (!page.next_cursor) break;
      if (events.length >= MAX_EVENTS) {
        truncated = true;
        break;
      }
      cursor = page.next_cursor;
    }
  };
  await load();
  const t0 = Date.parse(from), t1 = Date.parse(to);
  const view = { from: Number.isNaN(t0) ? Date.now() - 86400e3 : t0, to: Number.isNaN(t1) ? Date.now() : t1 };
  if (view.to <= view.from) view.to = view.from + 3600e3;

  const summary = h('p', { id: 'summary' });
  const chart = h('div', { class: 'timeline', tabindex: '0', role: 'group',
    'aria-label': 'Timeline: arrow keys pan, + and - zoom, Tab moves between changes' });
  const detail = h('section', { class: 'detail', 'aria-live': 'polite' });
  const list = h('div', { class: 'rows' });
  const slider = h('input', { type: 'range', min: 0, max: 1000, value: 1000, 'aria-label': 'Time for "state at"' });
  const stateLink = link('', '');
  const live = h('input', { type: 'checkbox', id: 'live' });
  const liveStatus = h('span', { class: 'muted', role: 'status' });
  const controls = h('div', { class: 'controls' },
    h('button', { type: 'button', onclick: () => zoom(0.5), title: 'zoom in (+)' }, '+'),
    h('button', { type: 'button', onclick: () => zoom(2), title: 'zoom out (-)' }, '−'),
    h('button', { type: 'button', onclick: () => pan(-0.25), title: 'earlier (←)' }, '←'),
    h('button', { type: 'button', onclick: () => pan(0.25), title: 'later (→)' }, '→'),
    h('label', {}, ' State at ', slider, ' ', stateLink),
    h('label', {}, live, ' live'), ' ', liveStatus);
  main.append(summary, controls, chart, detail, h('h2', {}, 'Objects'), list);

  // The rows change only when the events do (a load, a live change); pan
  // and zoom redraw the chart alone, and the chart draws only the lanes in
  // its scrolled window (thousands of objects stay smooth).
  let rows = [];
  const rebuildRows = () => {
    rows = rowsOf(events);
    list.replaceChildren(table(['object', 'changes', 'first', 'last', 'last verb', 'last user'], rows.map((r) => {
      const last = r.events[r.events.length - 1];
      return { cells: [link(objectHref(r.resource, r.namespace, r.name), `${r.resource} ${r.namespace ? r.namespace + '/' : ''}${r.name}`),
        String(r.events.length), shortTime(r.events[0].time), shortTime(last.time), last.verb, last.user || ''] };
    }), { class: 'timeline-rows' }));
  };
  const drawView = () => {
    let inView = 0;
    for (const e of events) {
      const t = Date.parse(e.time);
      if (t >= view.from && t <= view.to) ++inView;
    }
    summary.textContent = `${inView} change${inView === 1 ? '' : 's'} to ${rows.length} object${rows.length === 1 ? '' : 's'}` +
      `${f.namespace ? ' in ' + f.namespace : ''} between ${iso(view.from)} and ${iso(view.to)}` +
      (truncated ? ` (the first ${MAX_EVENTS} changes of the range: zoom in for the rest)` : '') + '.';
    const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest('.mark');
    const keep = focused ? focused.dataset.index : null;
    chart.replaceChildren(drawChart(rows, view, showDetail, chart.scrollTop, chart.clientHeight || 700));
    if (keep) chart.querySelector(`.mark[data-index="${keep}"]`)?.focus();
    updateSlider();
  };
  const redraw = () => {
    rebuildRows();
    drawView();
  };
  let scrollFrame = 0;
  chart.addEventListener('scroll', () => {
    if (scrollFrame) return;
    scrollFrame = requestAnimationFrame(() => {
      scrollFrame = 0;
      const top = chart.scrollTop;
      chart.replaceChildren(drawChart(rows, view, showDetail, top, chart.clientHeight || 700));
      chart.scrollTop = top;
    });
  });
  const updateSlider = () => {
    const t = view.from + (view.to - view.from) * (Number(slider.value) / 1000);
    stateLink.setAttribute('href', '/ui/state' + api.query({ at: iso(t), namespace: f.namespace, kind: f.kind }));
    stateLink.textContent = iso(t);
  };
  slider.addEventListener('input', updateSlider);
  const setUrl = () => history.replaceState(null, '', '/ui/timeline' + api.query({ ...{ namespace: f.namespace, kind: f.kind }, from: iso(view.from), to: iso(view.to) }));
  let refetch = null;
  const changedView = () => {
    setUrl();
    drawView();
    // Outside what was fetched: fetch the new range (after the user pauses).
    if (view.from < Date.parse(from) || view.to > Date.parse(to) || truncated) {
      clearTimeout(refetch);
      refetch = setTimeout(async () => {
        from = iso(view.from);
        to = iso(view.to);
        truncated = false;
        await load();
        redraw();
      }, 400);
    }
  };
  const zoom = (factor, at) => {
    const c = at ?? (view.from + view.to) / 2;
    const span = Math.min(Math.max((view.to - view.from) * factor, 1e3), 5 * 365 * 86400e3);
    const ratio = (c - view.from) / (view.to - view.from);
    view.from = c - span * ratio;
    view.to = view.from + span;
    changedView();
  };
  const pan = (fraction) => {
    const d = (view.to - view.from) * fraction;
    view.from += d;
    view.to += d;
    changedView();
  };
  chart.addEventListener('keydown', (e) => {
    if (e.target !== chart) return;
    const k = { ArrowLeft: () => pan(-0.1), ArrowRight: () => pan(0.1), '+': () => zoom(0.5), '=': () => zoom(0.5), '-': () => zoom(2) }[e.key];
    if (k) {
      e.preventDefault();
      k();
    }
  });
  chart.addEventListener('wheel', (e) => {
    e.preventDefault();
    const svg = chart.querySelector('svg');
    const g = svg && svg.querySelector('.lanes');
    const box = g ? g.getBoundingClientRect() : chart.getBoundingClientRect();
    const at = view.from + ((e.clientX - box.left) / box.width) * (view.to - view.from);
    zoom(e.deltaY > 0 ? 1.25 : 0.8, at);
  }, { passive: false });
  let drag = null;
  chart.addEventListener('pointerdown', (e) => {
    if (e.target.closest('.mark')) return;
    drag = { x: e.clientX, from: view.from, to: view.to, width: chart.getBoundingClientRect().width };
  });
  window.addEventListener('pointerup', () => { drag = null; }, { signal });
  chart.addEventListener('pointermove', (e) => {
    if (!drag) return;
    const d = ((drag.x - e.clientX) / drag.width) * (drag.to - drag.from);
    view.from = drag.from + d;
    view.to = drag.to + d;
    drawView();
  });
  chart.addEventListener('pointerup', () => { if (drag) { drag = null; changedView(); } });

  async function showDetail(e) {
    detail.replaceChildren(h('h2', {}, `${e.verb} ${e.resource} ${e.namespace ? e.namespace + '/' : ''}${e.name}`),
      table(['field', 'value'], [['time', e.time], ['user', e.user || '(seen by the watch collector)'], ['code', String(e.code || '')],
        ['source IP', e.source_ip || ''], ['user agent', e.user_agent || ''], ['entry', entryLink(e.index)]].map(([k, v]) => ({ cells: [k, v] })), { class: 'kv' }),
      h('p', {}, link(objectHref(e.resource, e.namespace, e.name), 'Every action on this object, with what changed')),
      h('p', { class: 'muted' }, 'Verifying the entry…'));
    try {
      const a = await api.getJson('/v1/entries/' + e.index, {}, signal);
      const r = await verifyEntryReceipt(a, await parseVerifierKey(api.verifierKey().text));
      detail.lastChild.replaceWith(r.ok
        ? h('p', { class: 'verified', 'data-verified': 'ok' }, `✓ Entry ${e.index} verified in this browser (signature, leaf hash, inclusion in the tree of ${r.checkpoint.size}).`)
        : h('p', { class: 'failed', role: 'alert', 'data-verified': 'failed' }, `✗ Entry ${e.index} does not verify: ${r.error}`));
      if (r.ok) {
        const ev = payloadJson(r.entry.payload || new Uint8Array());
        if (ev) detail.append(h('details', {}, h('summary', {}, 'The audit event, from the verified entry'), h('pre', { class: 'json' }, JSON.stringify(ev, null, 2))));
      }
    } catch (err) {
      detail.lastChild.replaceWith(h('p', { class: 'failed', role: 'alert' }, err.message));
    }
  }

  live.addEventListener('change', () => {
    if (!live.checked) {
      liveCtl && liveCtl.abort();
      liveStatus.textContent = '';
      return;
    }
    liveCtl = new AbortController();
    signal.addEventListener('abort', () => liveCtl.abort());
    liveStatus.textContent = 'connecting…';
    api.watch({ namespace: f.namespace, resource: f.kind }, {
      signal: liveCtl.signal,
      onOpen: () => { liveStatus.textContent = 'live'; },
      onError: (err) => { liveStatus.textContent = 'reconnecting: ' + err.message; },
      onChange: (c) => {
        const ch = c.change;
        if (!ch || !WRITES.has(ch.verb) || !ch.name) return;
        events.push({ index: c.index, time: c.time, verb: ch.verb, user: ch.user, resource: ch.resource, namespace: ch.namespace,
                      name: ch.name, code: ch.code, source_ip: '', user_agent: '' });
        const t = Date.parse(c.time);
        if (t > view.to) { view.to = t + (view.to - view.from) * 0.05; setUrl(); }
        redraw();
      },
    });
  });
  let liveCtl = null;
  redraw();
}

// The chart's SVG at full height, with the lanes of rows that fall in
// [scrollTop, scrollTop + visible) (and a screen's margin each side) drawn.
function drawChart(rows, view, onPick, scrollTop = 0, visible = 700) {
  const labelW = 260, width = 1100, laneH = 22, top = 28;
  const firstLane = Math.max(0, Math.floor((scrollTop - top - visible) / laneH));
  const lastLane = Math.min(rows.length, Math.ceil((scrollTop + 2 * visible) / laneH));
  const w = width - labelW - 10;
  const x = (t) => labelW + ((t - view.from) / (view.to - view.from)) * w;
  const height = top + rows.length * laneH + 6;
  const ticks = [];
  const span = view.to - view.from;
  const steps = [1e3, 5e3, 15e3, 60e3, 300e3, 900e3, 3600e3, 6 * 3600e3, 86400e3, 7 * 86400e3, 30 * 86400e3, 365 * 86400e3];
  const step = steps.find((st) => span / st <= 8) || steps[steps.length - 1];
  for (let t = Math.ceil(view.from / step) * step; t <= view.to; t += step)
    ticks.push(s('g', {}, s('line', { x1: x(t), x2: x(t), y1: top - 6, y2: height, class: 'tick' }),
      s('text', { x: x(t) + 3, y: top - 10 }, step >= 86400e3 ? iso(t).slice(0, 10) : step >= 60e3 ? iso(t).slice(5, 16).replace('T', ' ') : iso(t).slice(11, 19))));
  const lanes = rows.slice(firstLane, lastLane).map((r, k) => {
    const i = firstLane + k;
    const y = top + i * laneH + laneH / 2;
    const times = r.events.map((e) => Date.parse(e.time));
    const marks = r.events.map((e, j) => {
      const t = times[j];
      if (t < view.from || t > view.to) return null;
      const cls = markClass(e.verb);
      const label = `${e.verb} by ${e.user || 'the watch collector'} at ${e.time} (entry ${e.index})`;
      const a = s('a', { class: 'mark ' + cls, tabindex: '0', role: 'button', 'aria-label': label, 'data-index': e.index,
        onclick: () => onPick(e), onkeydown: (k) => { if (k.key === 'Enter' || k.key === ' ') { k.preventDefault(); onPick(e); } } },
        s('title', {}, label),
        cls === 'delete' ? s('path', { d: `M${x(t) - 5},${y - 5}L${x(t) + 5},${y + 5}M${x(t) - 5},${y + 5}L${x(t) + 5},${y - 5}` })
                         : s('circle', { cx: x(t), cy: y, r: 5 }));
      return a;
    });
    // The object's life: from its first change to its deletion (or the edge of the view).
    const lastDelete = markClass(r.events[r.events.length - 1].verb) === 'delete' ? times[times.length - 1] : view.to;
    const lifeFrom = Math.max(view.from, times[0]), lifeTo = Math.min(view.to, lastDelete);
    return s('g', { class: 'lane' },
      s('text', { x: labelW - 8, y: y + 4, 'text-anchor': 'end' }, truncate(`${r.resource} ${r.name}`, 38)),
      lifeTo > lifeFrom ? s('line', { x1: x(lifeFrom), x2: x(lifeTo), y1: y, y2: y, class: 'life' }) : null,
      marks);
  });
  return s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'changes over time' },
    s('g', { class: 'ticks' }, ticks), s('g', { class: 'lanes' }, s('rect', { x: labelW, y: top, width: w, height: height - top, class: 'plot' }), lanes));
}

function truncate(t, n) {
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}
