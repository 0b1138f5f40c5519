// The autoscaler: each deployment's last decision (reason, message, per-metric proposals)
// and the supervisor's recent events (scale with its reason, spawn, ready, promote, drain).
import { esc, time } from './format.js';

export function render(el, auto) {
  if (!auto) { el.innerHTML = '<p class="muted">no autoscaler</p>'; return; }
  const decisions = Object.entries(auto.deployments).map(([name, d]) => {
    const dec = d.last_decision;
    if (!dec) return `<tr><td>${esc(name)}</td><td colspan="4" class="muted">no decision yet</td></tr>`;
    const props = dec.proposals.map((p) => `${esc(p.metric)} ${p.value} / ${p.target} → ${p.desired ?? '–'}`).join('; ');
    return `<tr data-decision="${esc(name)}"><td>${esc(name)}</td><td class="num">${dec.current} → ${dec.desired}</td>
      <td><span class="badge">${esc(dec.reason)}</span></td><td class="wrap">${esc(dec.message)}</td><td class="muted wrap">${props}</td></tr>`;
  }).join('');
  const events = auto.events.slice(-30).reverse().map((e) => {
    const { t, event, deployment, ...rest } = e;
    const fields = Object.entries(rest).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(' ');
    return `<tr data-event="${esc(event)}"><td>${time(t)}</td><td>${esc(event)}</td><td>${esc(deployment)}</td><td class="wrap">${fields}</td></tr>`;
  }).join('');
  el.innerHTML = `<table><thead><tr><th>deployment</th><th class="num">replicas</th><th>reason</th><th>decision</th>
    <th>inputs</th></tr></thead><tbody>${decisions}</tbody></table>
    <h3>Events <small class="muted">newest first</small></h3>
    <div class="scroll"><table class="events"><tbody>${events}</tbody></table></div>`;
}
