"""The scopes and the route table: every public and admin route -> the scope it needs.

Both gateway servers look routes up here (``Guard``): the aiohttp app by the matched route's
template (``/v1/jobs/{id}``), the fast path by its hot routes' exact paths. A route missing
from the table needs ``admin`` (fail closed); tests/unit/auth/test_scopes.py walks both
route tables and proves every route has an entry.

Pseudo-scopes: :data:`PUBLIC` (no credential: health, the OpenAPI document and docs),
:data:`SIGNED` (the URL's own HMAC signature is the credential: presigned object URLs),
:data:`AUTHENTICATED` (any valid credential, whatever its scopes: models, usage).
"""

from __future__ import annotations

__all__ = [
    "ADMIN",
    "ALL_SCOPES",
    "AUTHENTICATED",
    "JOBS_READ",
    "JOBS_WRITE",
    "METRICS",
    "MT_TRANSLATE",
    "PUBLIC",
    "ROUTES",
    "SIGNED",
    "TTS_SPEAK",
    "VOICES_READ",
    "VOICES_WRITE",
    "parse_scopes",
    "scope_for",
]

TTS_SPEAK = "tts:speak"
MT_TRANSLATE = "mt:translate"
JOBS_WRITE = "jobs:write"
JOBS_READ = "jobs:read"
VOICES_WRITE = "voices:write"
VOICES_READ = "voices:read"
ADMIN = "admin"
METRICS = "metrics"
ALL_SCOPES = frozenset({TTS_SPEAK, MT_TRANSLATE, JOBS_WRITE, JOBS_READ, VOICES_WRITE, VOICES_READ, ADMIN, METRICS})

PUBLIC = "@public"
SIGNED = "@signed"
AUTHENTICATED = "@authenticated"

ROUTES: dict[tuple[str, str], str] = {
    # health and docs
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/{path}"): PUBLIC,
    # operators
    ("GET", "/metrics"): METRICS,
    ("GET", "/dashboard"): METRICS,
    ("GET", "/dashboard/{path}"): METRICS,
    # catalog and usage
    ("GET", "/v1/models"): AUTHENTICATED,
    ("GET", "/v1/usage"): AUTHENTICATED,
    # speech and voices
    ("POST", "/v1/audio/speech"): TTS_SPEAK,
    ("GET", "/v1/audio/voices"): VOICES_READ,
    ("GET", "/v1/audio/voices/{voice_id}"): VOICES_READ,
    ("POST", "/v1/audio/voices"): VOICES_WRITE,
    ("DELETE", "/v1/audio/voices/{voice_id}"): VOICES_WRITE,
    # translation (LibreTranslate, voxmesh, OpenAI chat)
    ("POST", "/translate"): MT_TRANSLATE,
    ("POST", "/detect"): MT_TRANSLATE,
    ("GET", "/languages"): MT_TRANSLATE,
    ("POST", "/v1/translations"): MT_TRANSLATE,
    ("POST", "/v1/chat/completions"): MT_TRANSLATE,
    # jobs
    ("POST", "/v1/jobs"): JOBS_WRITE,
    ("GET", "/v1/jobs"): JOBS_READ,
    ("GET", "/v1/jobs/{id}"): JOBS_READ,
    ("DELETE", "/v1/jobs/{id}"): JOBS_WRITE,
    ("GET", "/v1/jobs/{id}/result"): JOBS_READ,
    ("GET", "/v1/jobs/{id}/chapters"): JOBS_READ,
    ("GET", "/v1/objects/{key}"): SIGNED,
    # admin
    ("GET", "/admin/topology"): ADMIN,
    ("GET", "/admin/autoscaler"): ADMIN,
    ("GET", "/admin/stages"): ADMIN,
    ("PUT", "/admin/splits/{model}"): ADMIN,
    ("POST", "/admin/canaries"): ADMIN,
    ("GET", "/admin/canaries/{model}"): ADMIN,
    ("GET", "/admin/keys"): ADMIN,
    ("POST", "/admin/keys"): ADMIN,
    ("DELETE", "/admin/keys/{id}"): ADMIN,
    ("GET", "/admin/tenants"): ADMIN,
    ("POST", "/admin/tenants"): ADMIN,
    ("GET", "/admin/tenants/{name}"): ADMIN,
    ("PATCH", "/admin/tenants/{name}"): ADMIN,
}

# assets under a documented prefix share its scope, whatever the sub-route is called
_PREFIXES = (("/docs/", PUBLIC), ("/dashboard/", METRICS))


def scope_for(method: str, template: str | None) -> str:
    """The scope route ``method template`` needs. HEAD is GET's; an unmatched request
    (``template`` None: a 404/405 to be) needs any credential; an unlisted route ``admin``."""
    if template is None:
        return AUTHENTICATED
    if method == "HEAD":
        method = "GET"
    scope = ROUTES.get((method, template))
    if scope is not None:
        return scope
    for prefix, prefixed in _PREFIXES:
        if template.startswith(prefix) and method == "GET":
            return prefixed
    if any(t == template for (_, t) in ROUTES):
        return AUTHENTICATED  # a known path, another method: let the app answer 405
    return ADMIN


def parse_scopes(value: object) -> frozenset[str]:
    """Scopes from a space-separated string or a list of strings (JWT ``scope`` / ``scp``)."""
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, (list, tuple)):
        return frozenset(s for v in value if isinstance(v, str) for s in v.split())
    return frozenset()
