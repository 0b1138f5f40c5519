// Topology: client -> gateway -> deployment -> replica, each edge with req/s, success rate,
// p50/p95/p99, retries, breaker state and in-flight (from /admin/topology).
import { esc, ms, pct, rate, rateClass } from './format.js';

const BREAKER = { closed: 'ok', half_open: 'warn', open: 'bad' };

function edgesOf(topo, ctx, now) {
  const rows = [];
  const byCaller = new Map();
  for (const e of topo.edges) {
    const c = byCaller.get(e.caller) || { requests: 0, ok: 0, p99: null };
    c.requests += e.requests;
    c.ok += (e.success_rate ?? 0) * e.requests;
    c.p50 = Math.max(c.p50 ?? 0, e.p50_ms ?? 0);
    c.p95 = Math.max(c.p95 ?? 0, e.p95_ms ?? 0);
    c.p99 = Math.max(c.p99 ?? 0, e.p99_ms ?? 0);
    byCaller.set(e.caller, c);
  }
  for (const [caller, c] of byCaller) {
    rows.push({ from: caller, to: 'gateway', requests: c.requests, rps: ctx.rate(`c:${caller}`, c.requests, now),
      success_rate: c.requests ? c.ok / c.requests : null, p50_ms: c.p50, p95_ms: c.p95, p99_ms: c.p99, note: 'max over its edges' });
  }
  for (const [name, d] of Object.entries(topo.deployments)) {
    rows.push({ from: 'gateway', to: name, requests: d.requests, rps: ctx.rate(`d:${name}`, d.requests, now),
      success_rate: d.success_rate, p50_ms: d.p50_ms, p95_ms: d.p95_ms, p99_ms: d.p99_ms,
      retries: d.retry_budget.retries, note: `retry budget ${d.retry_budget.balance}` });
    for (const ep of d.endpoints) {
      rows.push({ from: name, to: ep.id, requests: ep.requests, rps: ctx.rate(`e:${name}/${ep.id}`, ep.requests, now),
        success_rate: ep.success_rate, p50_ms: ep.p50_ms, p95_ms: ep.p95_ms, p99_ms: ep.p99_ms,
        breaker: ep.breaker, in_flight: ep.in_flight, note: `ewma ${ms(ep.ewma_ms)} ms` });
    }
  }
  return rows;
}

function graph(topo, rows) {
  const callers = [...new Set(topo.edges.map((e) => e.caller))];
  if (!callers.length) callers.push('client');
  const deps = Object.keys(topo.deployments);
  const reps = deps.flatMap((d) => topo.deployments[d].endpoints.map((ep) => ({ dep: d, ep })));
  const rowsN = Math.max(callers.length, deps.length, reps.length, 1);
  const H = 44 * rowsN + 30, W = 1180;
  const col = [10, 320, 640, 960];
  const pos = new Map();
  const place = (key, x, i, n) => pos.set(key, [x, 10 + (H - 20) * (i + 0.5) / n]);
  callers.forEach((c, i) => place(`c:${c}`, col[0], i, callers.length));
  place('gateway', col[1], 0, 1);
  deps.forEach((d, i) => place(`d:${d}`, col[2], i, deps.length));
  reps.forEach((r, i) => place(`e:${r.ep.id}`, col[3], i, reps.length));
  const label = (r) => `${rate(r.rps)} req/s · ${pct(r.success_rate)} · p99 ${ms(r.p99_ms)} ms`;
  const find = (from, to) => rows.find((r) => r.from === from && r.to === to);
  let lines = '';
  const edge = (a, b, r, cls) => {
    const [x1, y1] = pos.get(a); const [x2, y2] = pos.get(b);
    const sx = x1 + 160, mx = (sx + x2) / 2;
    lines += `<path class="edge ${cls || ''}" d="M${sx},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}"/>`;
    // labels sit just before the edge's target, where edges fanning out of one node are apart
    if (r) lines += `<text text-anchor="end" x="${x2 - 8}" y="${y2 - 14}">${esc(label(r))}</text>`;
  };
  callers.forEach((c) => edge(`c:${c}`, 'gateway', find(c, 'gateway')));
  deps.forEach((d) => edge('gateway', `d:${d}`, find('gateway', d)));
  reps.forEach((r) => edge(`d:${r.dep}`, `e:${r.ep.id}`, find(r.dep, r.ep.id)));
  let nodes = '';
  const node = (key, text, cls) => {
    const [x, y] = pos.get(key);
    nodes += `<g class="node ${cls || ''}"><rect x="${x}" y="${y - 11}" width="160" height="22" rx="4"/>` +
      `<text x="${x + 6}" y="${y + 4}">${esc(text)}</text></g>`;
  };
  callers.forEach((c) => node(`c:${c}`, c));
  node('gateway', 'gateway');
  deps.forEach((d) => node(`d:${d}`, d));
  reps.forEach((r) => node(`e:${r.ep.id}`, `${r.ep.id} · ${r.ep.breaker}`, BREAKER[r.ep.breaker]));
  return `<svg viewBox="0 0 ${W} ${H}" width="100%" height="${H}" role="img" aria-label="topology graph">${lines}${nodes}</svg>`;
}

export function render(el, topo, ctx, now) {
  if (!topo) { el.innerHTML = '<p class="muted">no topology</p>'; return; }
  const rows = edgesOf(topo, ctx, now);
  const body = rows.map((r) => `<tr data-edge="${esc(`${r.from}->${r.to}`)}">
    <td>${esc(r.from)} → ${esc(r.to)}</td><td class="num">${rate(r.rps)}</td><td class="num">${r.requests}</td>
    <td class="num ${rateClass(r.success_rate)}">${pct(r.success_rate)}</td>
    <td class="num">${ms(r.p50_ms)}</td><td class="num">${ms(r.p95_ms)}</td><td class="num">${ms(r.p99_ms)}</td>
    <td class="num">${r.retries ?? ''}</td>
    <td>${r.breaker ? `<span class="badge ${BREAKER[r.breaker] || ''}">${esc(r.breaker)}</span>` : ''}</td>
    <td class="num">${r.in_flight ?? ''}</td><td class="muted">${esc(r.note || '')}</td></tr>`).join('');
  el.innerHTML = graph(topo, rows) + `<table class="edges"><thead><tr><th>edge</th><th class="num">req/s</th>
    <th class="num">requests</th><th class="num">success</th><th class="num">p50 ms</th><th class="num">p95 ms</th>
    <th class="num">p99 ms</th><th class="num">retries</th><th>breaker</th><th class="num">in-flight</th><th></th></tr></thead>
    <tbody>${body}</tbody></table>`;
}
