// Canaries (/admin/canaries/{model} for every split model): phase, weight, failed checks,
// and every step of the analysis with its reason and inputs.
import { esc, ms, pct } from './format.js';

const PHASE = { promoted: 'ok', rolled_back: 'bad', progressing: 'warn' };

export function render(el, canaries) {
  if (!canaries.length) { el.innerHTML = '<p class="muted">no canary analysis (POST /admin/canaries starts one)</p>'; return; }
  el.innerHTML = canaries.map((c) => {
    const t0 = c.log.length ? c.log[0].at : 0;  // a monotonic clock: show seconds since the first step
    const steps = [...c.log].reverse().map((e) => `<tr class="step"><td>+${Math.round(e.at - t0)} s</td>
      <td>${esc(e.decision)}</td><td class="num">${e.weight}%</td><td class="num">${e.failed_checks}</td>
      <td>${esc(e.reason)}</td><td class="muted">${pct(e.inputs.success_rate)} · p99 ${ms(e.inputs.p99_ms)} ms · ${e.inputs.requests} req</td></tr>`).join('');
    return `<div class="canary" data-model="${esc(c.model)}"><h3>${esc(c.model)}
      <span class="badge ${PHASE[c.phase] || ''} phase">${esc(c.phase)}</span>
      <small class="muted">weight <span class="weight">${c.weight}</span>% · failed checks ${c.failed_checks}</small></h3>
      <div class="scroll"><table><thead><tr><th>at</th><th>step</th><th class="num">weight</th><th class="num">failed</th>
      <th>reason</th><th>inputs</th></tr></thead><tbody>${steps}</tbody></table></div></div>`;
  }).join('');
}
