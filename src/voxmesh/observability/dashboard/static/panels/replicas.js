// Replicas per deployment: counts by state over time (kept by the page from its polls of
// /admin/autoscaler), in-flight and queue per replica, and the warm pool.
import { esc } from './format.js';

const STATES = [['serving', '#3fb950'], ['warm', '#58a6ff'], ['loading', '#d29922'], ['starting', '#a371f7'],
  ['draining', '#8b97a3'], ['crashed', '#f85149']];

function chart(name, history) {
  const pts = history.map((h) => ({ t: h.t, r: (h.autoscaler?.deployments?.[name]?.replicas) || {} }));
  const W = 480, H = 90;
  const max = Math.max(1, ...pts.map((p) => Math.max(...STATES.map(([s]) => p.r[s] || 0))));
  const t0 = pts.length ? pts[0].t : 0, t1 = pts.length ? pts[pts.length - 1].t : 1;
  const x = (t) => 30 + (W - 40) * (t1 > t0 ? (t - t0) / (t1 - t0) : 1);
  const y = (v) => H - 14 - (H - 24) * v / max;
  let out = `<text x="2" y="${y(max) + 4}">${max}</text><text x="2" y="${y(0) + 4}">0</text>`;
  for (const [s, color] of STATES) {
    if (!pts.some((p) => p.r[s])) continue;
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.r[s] || 0).toFixed(1)}`).join(' ');
    out += `<path d="${d}" stroke="${color}" fill="none" stroke-width="2" data-state="${s}"/>`;
  }
  const span = Math.round(t1 - t0);
  out += `<text x="${W - 90}" y="${H - 2}">last ${span}s</text>`;
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" height="${H}" aria-label="replicas of ${esc(name)} over time">${out}</svg>`;
}

export function render(el, auto, ctx) {
  if (!auto || !Object.keys(auto.deployments).length) { el.innerHTML = '<p class="muted">no managed deployments</p>'; return; }
  const legend = `<div class="legend">${STATES.map(([s, c]) => `<span style="color:${c}">■ ${s}</span>`).join('')}</div>`;
  el.innerHTML = legend + Object.entries(auto.deployments).map(([name, d]) => {
    const counts = Object.entries(d.replicas).map(([s, n]) => `${s} ${n}`).join(' · ') || 'none';
    const reps = d.list.map((r) => `<tr data-replica="${esc(r.id)}"><td>${esc(r.id)}</td><td>${esc(r.state)}</td>
      <td class="num">${r.in_flight ?? '–'}</td><td class="num">${r.queue ?? '–'}</td><td class="num">${r.restarts}</td></tr>`).join('');
    return `<div class="deployment" data-deployment="${esc(name)}"><h3>${esc(name)}
      <small class="muted">desired ${d.desired ?? '–'} (min ${d.min}, max ${d.max}) · ${esc(counts)} ·
      warm pool <span class="warm-pool">${d.warm_pool.size}/${d.warm_pool.target}</span></small></h3>
      ${chart(name, ctx.history)}
      <table><thead><tr><th>replica</th><th>state</th><th class="num">in-flight</th><th class="num">queue</th>
      <th class="num">restarts</th></tr></thead><tbody>${reps}</tbody></table></div>`;
  }).join('');
}
