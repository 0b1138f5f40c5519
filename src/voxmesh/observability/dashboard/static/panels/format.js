// Formatting helpers the panels share.
export function esc(v) {
  return String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
export function ms(v) { return v === null || v === undefined ? '–' : v < 10 ? v.toFixed(1) : Math.round(v).toString(); }
export function pct(v) { return v === null || v === undefined ? '–' : `${(100 * v).toFixed(v >= 0.9995 || v === 0 ? 0 : 1)}%`; }
export function rate(v) { return v === null || v === undefined ? '–' : v.toFixed(v < 10 ? 1 : 0); }
export function rateClass(v) { return v === null || v === undefined ? '' : v >= 0.99 ? 'ok' : v >= 0.95 ? 'warn' : 'bad'; }
export function time(t) { return new Date(t * 1000).toLocaleTimeString(); }
