// How the page talks to the API: same origin, no cache, and a bearer token when the gateway
// has authentication on (the dashboard needs scope `metrics` or `admin`). The token is given
// once in the URL fragment (/dashboard#token=...: a fragment never reaches the server or its
// logs) and kept for the tab's session.
const KEY = 'voxmesh.token';
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  sessionStorage.setItem(KEY, fromHash);
  history.replaceState(null, '', location.pathname + location.search);
}

export class AuthError extends Error {}

export function apiFetch(url, options = {}) {
  const token = sessionStorage.getItem(KEY);
  const headers = { ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  return fetch(url, { cache: 'no-store', ...options, headers });
}

export async function getJSON(url) {
  const r = await apiFetch(url);
  if (r.status === 404) return null;
  if (r.status === 401 || r.status === 403) {
    throw new AuthError(`${url} needs a token with scope metrics: open /dashboard#token=YOUR_TOKEN`);
  }
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return r.json();
}
