// The dashboard's shell: poll the JSON the API serves, hand each panel its part.
// One module per panel (panels/*.js); each exports render(el, data, ctx).
import * as topology from './panels/topology.js';
import * as replicas from './panels/replicas.js';
import * as autoscaler from './panels/autoscaler.js';
import * as stages from './panels/stages.js';
import * as canary from './panels/canary.js';
import * as jobs from './panels/jobs.js';
import * as playground from './panels/playground.js';
import { AuthError, apiFetch, getJSON } from './api.js';

const params = new URLSearchParams(location.search);
const refreshS = Math.max(0.2, Number(params.get('refresh') || 1));
const HISTORY = 300;

// Per-second rates from counters, across polls.
const last = new Map();
const ctx = {
  history: [],            // [{t, autoscaler}] for charts over time
  rate(key, count, now) {
    const prev = last.get(key);
    last.set(key, [now, count]);
    if (!prev || now <= prev[0] || count < prev[1]) return null;
    return (count - prev[1]) / (now - prev[0]);
  },
};


function el(id) { return document.querySelector(`#${id} .body`); }

function safe(name, fn) {
  try { fn(); } catch (err) { el(name).innerHTML = `<p class="error">${String(err)}</p>`; }
}

let tickNo = 0;
let jobsData = null;

async function tick() {
  const now = performance.now() / 1000;
  const [topo, auto, stg] = await Promise.all([
    getJSON('/admin/topology'), getJSON('/admin/autoscaler'), getJSON('/admin/stages'),
  ]);
  const models = Object.keys((topo && topo.splits) || {});
  const canaries = (await Promise.all(models.map((m) => getJSON(`/admin/canaries/${encodeURIComponent(m)}`))))
    .filter((c) => c !== null);
  if (tickNo % 2 === 0) jobsData = await getJSON('/v1/jobs?limit=20').catch(() => null);
  tickNo += 1;
  ctx.history.push({ t: Date.now() / 1000, autoscaler: auto });
  if (ctx.history.length > HISTORY) ctx.history.shift();
  safe('topology', () => topology.render(el('topology'), topo, ctx, now));
  safe('replicas', () => replicas.render(el('replicas'), auto, ctx));
  safe('autoscaler', () => autoscaler.render(el('autoscaler'), auto, ctx));
  safe('stages', () => stages.render(el('stages'), stg, ctx));
  safe('canary', () => canary.render(el('canary'), canaries, ctx));
  safe('jobs', () => jobs.render(el('jobs'), jobsData, ctx));
  document.body.dataset.ticks = String(tickNo);
}

async function loop() {
  const status = document.getElementById('status');
  try {
    await tick();
    status.textContent = `live · every ${refreshS}s · ${new Date().toLocaleTimeString()}`;
    status.className = 'muted';
  } catch (err) {
    status.textContent = err instanceof AuthError ? err.message : `cannot reach the gateway: ${err.message}`;
    status.className = 'error';
  }
  setTimeout(loop, refreshS * 1000);
}

playground.init(el('playground'), getJSON, apiFetch);
loop();
