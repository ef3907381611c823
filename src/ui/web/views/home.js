// The landing page: what the log holds, by resource and by user, each bar
// a link into search.
import * as api from '../api.js';
import { h, link } from '../dom.js';
import { barChart } from '../charts.js';

export const title = 'Overview';

export async function render(main, { navigate, signal }) {
  main.append(h('h1', {}, 'What the ledger holds'),
    h('p', {}, 'Every Kubernetes audit event, watch change and cloud record annals has taken, signed into an append-only Merkle log. Pick a view above, or start from a count below.'));
  const [byResource, byUser, byDay] = await Promise.all([
    api.getJson('/v1/events', { group_by: 'resource' }, signal),
    api.getJson('/v1/events', { group_by: 'user' }, signal),
    api.getJson('/v1/events', { group_by: 'day' }, signal),
  ]);
  const top = (g) => [...g.groups].sort((a, b) => b.count - a.count).slice(0, 15);
  main.append(
    h('p', { id: 'total' }, `${byResource.total} events in all, over ${byDay.groups.length} day${byDay.groups.length === 1 ? '' : 's'}.`),
    h('div', { class: 'charts' },
      barChart('Events by resource', top(byResource), (k) => navigate('/ui/search?resource=' + encodeURIComponent(k))),
      barChart('Events by user', top(byUser), (k) => navigate('/ui/search?user=' + encodeURIComponent(k)))),
    h('h2', {}, 'Days'),
    h('ul', { class: 'days' }, byDay.groups.map((g) => h('li', {},
      link(`/ui/search?from=${g.key}T00:00:00Z&to=${g.key}T23:59:59.999999Z`, String(g.key)), `: ${g.count} events`))));
}
