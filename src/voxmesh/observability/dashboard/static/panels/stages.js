// Per-stage latency of the workers (/admin/stages): mean per request over the last polls
// (from the cumulative sums), p95 since start, and the slowest stage of each deployment.
import { esc, ms } from './format.js';

const prev = new Map();

function recentMean(dep, stage, s) {
  const key = `${dep}/${stage}`;
  const p = prev.get(key);
  if (!p || s.requests <= p.requests) return { mean: p?.mean ?? s.mean_ms, window: p?.window ?? 'since start' };
  const mean = (s.sum_ms - p.sum_ms) / (s.requests - p.requests);
  const out = { mean, window: 'recent' };
  prev.set(key, { requests: s.requests, sum_ms: s.sum_ms, ...out });
  return out;
}

export function render(el, data) {
  if (!data || !Object.keys(data.deployments).length) { el.innerHTML = '<p class="muted">no stage figures yet</p>'; return; }
  el.innerHTML = Object.entries(data.deployments).map(([dep, per]) => {
    const rows = data.stages.filter((s) => per[s]).map((s) => {
      const fig = per[s];
      if (!prev.has(`${dep}/${s}`)) prev.set(`${dep}/${s}`, { requests: fig.requests, sum_ms: fig.sum_ms, mean: fig.mean_ms, window: 'since start' });
      return { stage: s, fig, ...recentMean(dep, s, fig) };
    });
    const top = rows.reduce((a, b) => (b.mean > a.mean ? b : a), rows[0]);
    const scale = Math.max(1, ...rows.map((r) => r.mean || 0));
    const body = rows.map((r) => `<tr data-stage="${esc(r.stage)}"><td>${esc(r.stage)}</td>
      <td><span class="bar ${r === top ? 'slow' : ''}" style="width:${Math.round(220 * (r.mean || 0) / scale)}px"></span></td>
      <td class="num">${ms(r.mean)}</td><td class="num">${ms(r.fig.p95_ms)}</td><td class="num">${r.fig.requests}</td></tr>`).join('');
    return `<div class="deployment" data-deployment="${esc(dep)}" data-slowest="${esc(top.stage)}">
      <h3>${esc(dep)} <small class="muted">slowest stage: <b class="slowest">${esc(top.stage)}</b> (${ms(top.mean)} ms, ${esc(top.window)})</small></h3>
      <table><thead><tr><th>stage</th><th></th><th class="num">mean ms</th><th class="num">p95 ms</th>
      <th class="num">requests</th></tr></thead><tbody>${body}</tbody></table></div>`;
  }).join('');
}
