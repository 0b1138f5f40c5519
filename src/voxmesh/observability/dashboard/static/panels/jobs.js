// Long-text jobs (/v1/jobs): how many wait, run, failed; each recent job's progress and error.
import { esc, time } from './format.js';

export function render(el, data) {
  if (!data) { el.innerHTML = '<p class="muted">no jobs service</p>'; return; }
  const byState = {};
  for (const j of data.data) byState[j.state] = (byState[j.state] || 0) + 1;
  const summary = Object.entries(byState).map(([s, n]) => `<span class="badge" data-state="${esc(s)}">${esc(s)} ${n}</span>`).join(' ');
  const rows = data.data.map((j) => {
    const done = j.chunks_total ? j.chunks_done / j.chunks_total : 0;
    return `<tr data-job="${esc(j.id)}"><td>${esc(j.id.slice(0, 8))}</td><td>${time(j.created_at)}</td><td>${esc(j.state)}</td>
      <td><span class="progress"><span style="width:${Math.round(100 * done)}%"></span></span> ${j.chunks_done}/${j.chunks_total}</td>
      <td class="num">${j.chunks_dead || ''}</td><td class="num">${j.eta_s === null ? '' : Math.round(j.eta_s) + ' s'}</td>
      <td class="wrap ${j.error ? 'error' : ''}">${esc(j.error || '')}</td></tr>`;
  }).join('');
  el.innerHTML = `<p>${summary || '<span class="muted">no jobs yet</span>'} <small class="muted">(the 20 newest)</small></p>
    <div class="scroll"><table><thead><tr><th>job</th><th>created</th><th>state</th><th>progress</th>
    <th class="num">failed chunks</th><th class="num">eta</th><th>error</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}
