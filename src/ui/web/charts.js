// Charts drawn as SVG with their numbers also written as text (the answer
// is on the page, not only in a picture).
import { h, s } from './dom.js';

// Horizontal bars: rows [{key, count}], largest first.
export function barChart(title, rows, onPick) {
  const max = Math.max(1, ...rows.map((r) => r.count));
  const lineH = 20, labelW = 220, barW = 320;
  const svg = s('svg', { class: 'bars', width: labelW + barW + 70, height: rows.length * lineH + 4, role: 'img', 'aria-label': title },
    rows.map((r, i) => s('g', { transform: `translate(0,${i * lineH})` },
      s('text', { x: labelW - 6, y: 14, 'text-anchor': 'end' }, truncate(String(r.key || '(none)'), 32)),
      s('rect', { x: labelW, y: 3, height: 14, width: Math.max(1, (r.count / max) * barW), class: 'bar',
                  onclick: onPick ? () => onPick(r.key) : null }),
      s('text', { x: labelW + (r.count / max) * barW + 6, y: 14 }, String(r.count)))));
  return h('figure', { class: 'chart' }, h('figcaption', {}, title), svg);
}

// Counts over time: buckets [{start(ms), count}] of equal width `step` ms.
export function histogram(title, buckets, step) {
  const w = 760, hgt = 120, pad = 24;
  if (!buckets.length) return h('figure', { class: 'chart' }, h('figcaption', {}, title + ': no events'));
  const t0 = buckets[0].start, t1 = buckets[buckets.length - 1].start + step;
  const max = Math.max(1, ...buckets.map((b) => b.count));
  const x = (t) => pad + ((t - t0) / (t1 - t0)) * (w - 2 * pad);
  const svg = s('svg', { class: 'histogram', width: w, height: hgt + 30, role: 'img', 'aria-label': title },
    buckets.map((b) => s('rect', { x: x(b.start), width: Math.max(1, x(b.start + step) - x(b.start) - 1),
      y: hgt - (b.count / max) * (hgt - 10), height: (b.count / max) * (hgt - 10), class: 'bar' },
      s('title', {}, `${new Date(b.start).toISOString()}: ${b.count}`))),
    s('text', { x: pad, y: hgt + 20 }, new Date(t0).toISOString().slice(0, 16) + 'Z'),
    s('text', { x: w - pad, y: hgt + 20, 'text-anchor': 'end' }, new Date(t1).toISOString().slice(0, 16) + 'Z'),
    s('text', { x: 2, y: 12 }, String(max)));
  return h('figure', { class: 'chart' }, h('figcaption', {}, title), svg);
}

function truncate(t, n) {
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}
