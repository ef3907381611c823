// The console's shell: routes /ui/... paths to views (every view is a URL
// that can be pasted into a ticket), keeps the header's checkpoint line,
// and owns the credentials dialog.
import * as api from './api.js';
import { h, errorBox } from './dom.js';
import { parseVerifierKey, parseWitnessPolicy, verifyCheckpoint, verifyCosignatures } from './verify.js';
import * as home from './views/home.js';
import * as timeline from './views/timeline.js';
import * as state from './views/state.js';
import * as ip from './views/ip.js';
import * as object from './views/object.js';
import * as search from './views/search.js';
import * as entry from './views/entry.js';

const views = { '': home, timeline, state, ip, object, search, entry };

let current = null;  // the AbortController of the view on screen

export function navigate(href, replace) {
  if (replace) history.replaceState(null, '', href);
  else history.pushState(null, '', href);
  route();
}

async function route() {
  if (current) current.abort();
  current = new AbortController();
  const signal = current.signal;
  const url = new URL(location.href);
  const parts = url.pathname.replace(/^\/ui\/?/, '').split('/').map(decodeURIComponent);
  const name = parts.shift() || '';
  const view = views[name];
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const main = document.getElementById('main');
  main.replaceChildren();
  delete main.dataset.ready;
  if (!view) {
    main.append(errorBox(new Error('no such view: ' + url.pathname)));
    return;
  }
  document.title = (view.title || 'annals') + ' · annals';
  try {
    await view.render(main, { parts, params: url.searchParams, navigate, signal });
  } catch (e) {
    if (signal.aborted) return;
    if (e.status === 401) openSettings('This question needs credentials: ' + e.message);
    main.append(errorBox(e));
  }
  main.dataset.ready = 'true';
  // When the view had its answer on the page (bench/console_bench.py reads it).
  performance.mark('annals-ready', { detail: url.pathname });
}

// The header's line: the latest checkpoint, verified here.
export async function refreshLogStatus() {
  const out = document.getElementById('log-status');
  const key = api.verifierKey();
  try {
    const note = await api.getText('/log/checkpoint');
    const k = await parseVerifierKey(key.text);
    const cp = await verifyCheckpoint(note, k);
    const policy = await api.witnessPolicy(parseWitnessPolicy);
    const w = policy ? await verifyCosignatures(note, policy) : null;
    out.className = !w || w.met ? 'ok' : 'bad';
    out.textContent = `✓ ${cp.origin}: ${cp.size} entries, signed` + (key.pinned ? ' (pinned key)' : ' (key not pinned)') +
      (!w ? '' : w.met ? `, witnessed by ${w.witnessed.map((x) => x.name).join(', ') || 'nobody'}`
        : ` · ✗ not witnessed as the policy asks (${w.quorum})`);
  } catch (e) {
    out.className = 'bad';
    out.textContent = '✗ checkpoint: ' + e.message;
  }
}

function openSettings(why) {
  const d = document.getElementById('settings');
  const f = document.getElementById('settings-form');
  f.token.value = api.token();
  f.vkey.value = api.verifierKey().text;
  f.querySelector('.why')?.remove();
  if (why) f.prepend(h('p', { class: 'why error' }, why));
  if (!d.open) d.showModal();
}

function init() {
  document.addEventListener('click', (ev) => {
    const a = ev.target.closest('a[data-nav]');
    if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
    ev.preventDefault();
    navigate(a.getAttribute('href'));
  });
  window.addEventListener('popstate', route);
  document.getElementById('settings-button').addEventListener('click', () => openSettings());
  const d = document.getElementById('settings');
  d.addEventListener('close', () => {
    if (d.returnValue !== 'save') return;
    const f = document.getElementById('settings-form');
    api.setToken(f.token.value.trim());
    const served = document.querySelector('meta[name="annals-vkey"]')?.content || '';
    const k = f.vkey.value.trim();
    api.pinVerifierKey(k && k !== served ? k : '');
    refreshLogStatus();
    route();
  });
  refreshLogStatus();
  route();
}

init();
