"""The one guard both gateway servers call: authenticate, authorize, admit.

    principal = await guard.check(Call(method, route, path, remote, authorization, api_key))

1. **scope** of the route from :mod:`voxmesh.auth.scopes` (PUBLIC and SIGNED routes stop here).
2. **authenticate** the credential: ``Authorization: Bearer <jwt | vxk_ API key>``, or the
   LibreTranslate ``api_key`` field (body or query) on translation routes.
   Mode ``none``: everyone is :data:`OPEN`; admin routes still answer only on loopback, or to
   ``Bearer <gateway.admin_token>`` when that is set (as before this module existed).
3. **authorize**: the principal holds the route's scope (``AUTHENTICATED`` routes need none).
4. **admit**: every hook in :attr:`Guard.hooks` runs with the principal; a hook refuses by
   raising a ``VoxmeshError`` (``QuotaExceeded`` -> 429). This is the one place a per-tenant
   check (rate limits, quotas, concurrency) plugs in for both servers. A hook may append
   ``(name, value)`` pairs to ``call.response_headers`` (``x-ratelimit-remaining-requests``...):
   both servers add them to the answer, success or error.

Failures are 401 (:class:`Unauthenticated`, with ``WWW-Authenticate``) or 403
(:class:`MissingScope`) and go to the audit log with a reason word, never the credential.
Each request is checked exactly once: the fast path checks its hot routes and relays the
rest unchecked to the aiohttp app, whose middleware checks them; no identity crosses the relay.

Two credentials of voxmesh's own: ``Bearer vxi_...`` (the stack's internal key in
``<data_dir>/internal.key``, for the job runners calling the gateway; scopes tts:speak and
mt:translate, tenant ``_system``) and ``gateway.admin_token`` (scope admin).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

from voxmesh.auth.audit import AuditLog
from voxmesh.auth.errors import MissingScope, Unauthenticated
from voxmesh.auth.jwt import TENANT_RE, JwtVerifier
from voxmesh.auth.keys import KEY_PREFIX
from voxmesh.auth.principal import ANONYMOUS, OPEN, Principal
from voxmesh.auth.scopes import ADMIN, AUTHENTICATED, MT_TRANSLATE, PUBLIC, SIGNED, TTS_SPEAK, scope_for
from voxmesh.auth.store import TenantStore
from voxmesh.errors import ConfigError, Forbidden, VoxmeshError
from voxmesh.settings import Settings

__all__ = ["INTERNAL_PREFIX", "ON_BEHALF_HEADER", "AdmissionHook", "Call", "Guard", "SettleHook", "api_key_from_body", "check_bind", "is_loopback",
           "load_internal_key"]

INTERNAL_PREFIX = "vxi_"
SYSTEM_TENANT = "_system"
# a job runner's chunk request names the job's tenant here, so an enrolled voice resolves
# for that tenant; only the internal key may name one, anyone else's header is ignored
ON_BEHALF_HEADER = "X-Voxmesh-Tenant"


@dataclass(frozen=True)
class Call:
    """What the guard needs of a request, whichever server parsed it. ``route`` is the matched
    route's template (None: no route matched); ``api_key`` the LibreTranslate field, if any."""

    method: str
    route: str | None
    path: str
    remote: str | None
    authorization: str | None = None
    api_key: str | None = None
    # the body (JSON or form bodies only) and its content type, for the admission hooks' cost
    body: bytes = field(default=b"", compare=False, repr=False)
    content_type: str = ""
    # ON_BEHALF_HEADER: the tenant a job runner's request works for (honoured for the internal key only)
    on_behalf: str | None = None
    # filled by admission hooks; the server adds them to whatever it answers
    response_headers: list[tuple[str, str]] = field(default_factory=list, compare=False)


AdmissionHook = Callable[[Principal, Call], Awaitable[None]]
# after the answer: (principal, call, status, response headers, body bytes sent)
SettleHook = Callable[[Principal, Call, int, Mapping[str, str], int], Awaitable[None]]


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_bind(settings: Settings) -> None:
    """Refuse (ConfigError, one line) to serve mode none on a non-loopback address."""
    auth = settings.auth
    if auth.mode == "none" and not auth.allow_insecure_none and not is_loopback(settings.server.host):
        raise ConfigError(
            f"auth.mode is none but the gateway binds {settings.server.host}: set VOXMESH_AUTH__MODE "
            "(jwt, api_keys or jwt+api_keys), bind 127.0.0.1, or set VOXMESH_AUTH__ALLOW_INSECURE_NONE=true")


def api_key_from_body(content_type: str, body: bytes) -> str | None:
    """The LibreTranslate ``api_key`` field of a JSON or url-encoded body, if any."""
    if not body:
        return None
    try:
        if content_type == "application/json":
            data = json.loads(body)
            value = data.get("api_key") if isinstance(data, dict) else None
            return value if isinstance(value, str) and value else None
        if content_type == "application/x-www-form-urlencoded":
            values = parse_qs(body.decode("latin-1")).get("api_key")
            return values[0] if values else None
    except (ValueError, UnicodeDecodeError):
        return None  # the route itself answers 400 for a broken body
    return None


class Guard:
    """Authentication, scopes and admission for both servers (see the module docstring)."""

    def __init__(self, settings: Settings, *, store: TenantStore | None = None, jwt: JwtVerifier | None = None,
                 internal_key: str | None = None, audit: AuditLog | None = None) -> None:
        self.cfg = settings.auth
        self.mode = settings.auth.mode
        self.admin_token = settings.gateway.admin_token
        self.store = store
        self.internal_key = internal_key
        self.audit = audit or AuditLog(None)
        if jwt is None and "jwt" in self.mode:
            jwt = JwtVerifier(settings.auth)
        self.jwt = jwt
        self.hooks: list[AdmissionHook] = []
        self.settle_hooks: list[SettleHook] = []
        self.outcomes: Counter[str] = Counter()

    @property
    def accepts_keys(self) -> bool:
        return self.mode in ("api_keys", "jwt+api_keys")

    def wants_body_key(self, scope: str) -> bool:
        """Whether a request without ``Authorization`` may carry its key in the body/query."""
        return self.accepts_keys and scope == MT_TRANSLATE

    # -- the one entry point -------------------------------------------------------------

    async def check(self, call: Call, scope: str | None = None) -> Principal:
        scope = scope or scope_for(call.method, call.route)
        if scope in (PUBLIC, SIGNED):
            self.outcomes["public"] += 1
            return OPEN if self.mode == "none" else ANONYMOUS
        try:
            principal = await self._authenticate(call, scope)
            self._authorize(principal, scope)
        except (Unauthenticated, MissingScope, Forbidden) as err:
            self.outcomes["denied"] += 1
            self.audit.record("auth_failure", "denied", what=f"{call.method} {call.path}",
                              reason=getattr(err, "reason", "forbidden"), status=err.status, remote=call.remote,
                              subject=_who(err), tenant=getattr(err, "tenant", None))
            raise
        self.outcomes["ok"] += 1
        await self.admit(principal, call)
        return principal

    async def admit(self, principal: Principal, call: Call) -> None:
        """Admission: per-tenant checks added by other subsystems (rate limits, quotas)."""
        for hook in self.hooks:
            await hook(principal, call)

    async def settle(self, principal: Principal, call: Call, status: int, headers: Mapping[str, str],
                     body_bytes: int) -> None:
        """After the answer: metering by other subsystems (usage per tenant)."""
        for hook in self.settle_hooks:
            await hook(principal, call, status, headers, body_bytes)

    def record_admin(self, principal: Principal, call: Call, status: int) -> None:
        self.audit.record("admin", status, what=f"{call.method} {call.path}", subject=principal.subject,
                          tenant=principal.tenant, credential=principal.credential, remote=call.remote)

    def metrics_text(self) -> str:
        lines = ["# HELP voxmesh_auth_checks_total requests checked by the guard, by outcome",
                 "# TYPE voxmesh_auth_checks_total counter"]
        lines += [f'voxmesh_auth_checks_total{{outcome="{k}"}} {v}' for k, v in sorted(self.outcomes.items())]
        return "\n".join(lines) + "\n"

    # -- steps ----------------------------------------------------------------------------

    def _secret_is(self, token: str, secret: str | None) -> bool:
        return secret is not None and hmac.compare_digest(token.encode(), secret.encode())

    async def _authenticate(self, call: Call, scope: str) -> Principal:
        if self.mode == "none":
            if scope != ADMIN:
                return OPEN
            token = _bearer(call.authorization)
            if self.admin_token is not None:
                if token is None or not self._secret_is(token, self.admin_token):
                    raise Unauthenticated("admin endpoints need 'Authorization: Bearer <gateway.admin_token>'",
                                          reason="missing" if token is None else "admin_token")
                return OPEN
            if not is_loopback(call.remote):
                raise Forbidden("admin endpoints answer only on loopback unless gateway.admin_token is set "
                                "or auth.mode authenticates callers")
            return OPEN
        token = _bearer(call.authorization)
        if token is None and call.api_key is not None and self.wants_body_key(scope):
            token = call.api_key
        if token is None:
            raise Unauthenticated(
                "this route needs a credential: send 'Authorization: Bearer <token or API key>'", reason="missing")
        if token.startswith(KEY_PREFIX):
            if not self.accepts_keys or self.store is None:
                raise Unauthenticated(f"API keys are not accepted here (auth.mode is {self.mode})", reason="key_mode")
            principal = await self.store.lookup_key(token)
            if principal is None:
                raise Unauthenticated("the API key is unknown, revoked or expired", reason="invalid_key")
            return principal
        if token.startswith(INTERNAL_PREFIX) and self._secret_is(token, self.internal_key):
            behalf = call.on_behalf if call.on_behalf and TENANT_RE.match(call.on_behalf) else None
            return Principal(tenant=behalf or SYSTEM_TENANT, subject="voxmesh-internal",
                             scopes=frozenset({TTS_SPEAK, MT_TRANSLATE}), credential="internal")
        if self._secret_is(token, self.admin_token):
            return Principal(tenant=SYSTEM_TENANT, subject="admin-token", scopes=frozenset({ADMIN}),
                             credential="admin_token")
        if self.jwt is not None and token.count(".") == 2:
            principal = await self.jwt.verify(token)
            if self.store is not None and await self.store.is_disabled(principal.tenant):
                raise Forbidden(f"tenant {principal.tenant!r} is disabled: ask an operator to enable it")
            return principal
        kinds = {"jwt": "a JWT", "api_keys": "an API key (vxk_...)", "jwt+api_keys": "a JWT or an API key (vxk_...)"}
        raise Unauthenticated(f"the bearer credential is not {kinds.get(self.mode, 'valid')}", reason="malformed")

    def _authorize(self, principal: Principal, scope: str) -> None:
        if scope == AUTHENTICATED or scope in principal.scopes:
            return
        have = " ".join(sorted(principal.scopes)) or "none"
        raise MissingScope(f"this route needs the scope {scope!r}; the credential has: {have}", scope=scope,
                           subject=principal.subject, tenant=principal.tenant)


def _bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise Unauthenticated("the Authorization header must be 'Bearer <token or API key>'", reason="malformed")
    return token


def _who(err: VoxmeshError) -> str | None:
    subject = getattr(err, "subject", None)
    return subject if isinstance(subject, str) else None


def load_internal_key(data_dir: Path) -> str:
    """The stack's internal credential (``vxi_`` + the secret in ``<data_dir>/internal.key``)."""
    from voxmesh.storage.objects import load_or_create_secret

    return INTERNAL_PREFIX + load_or_create_secret(data_dir / "internal.key").decode()
