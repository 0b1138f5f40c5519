"""``GET /v1/usage``: the caller's own usage; ``?tenant=T`` or ``?tenant=*`` (all) for ``admin``.

The handler reads the principal the auth guard put at ``request["principal"]`` (anything with
``.tenant`` and ``.scopes``). Without one (auth not configured: ``auth.mode=none``) the caller
is the tenant ``default``, with ``admin`` only on loopback, as the gateway's admin routes.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from voxmesh.errors import Forbidden, InvalidRequest
from voxmesh.tenancy.usage import UsageMeter

__all__ = ["ADMIN_SCOPE", "DEFAULT_TENANT", "PrincipalLike", "principal_of", "read_usage", "usage_handler"]

ADMIN_SCOPE = "admin"
DEFAULT_TENANT = "default"
_LOOPBACK = ("127.0.0.1", "::1")


class PrincipalLike(Protocol):
    @property
    def tenant(self) -> str: ...

    @property
    def scopes(self) -> Collection[str]: ...


@dataclass(frozen=True)
class _Anonymous:
    tenant: str
    scopes: frozenset[str]


def principal_of(request: web.Request) -> PrincipalLike:
    found: Any = request.get("principal")
    if found is not None:
        p: PrincipalLike = found
        return p
    admin = request.remote in _LOOPBACK
    return _Anonymous(DEFAULT_TENANT, frozenset({ADMIN_SCOPE}) if admin else frozenset())


async def read_usage(meter: UsageMeter, principal: PrincipalLike, tenant: str | None) -> dict[str, Any]:
    """The answer of ``GET /v1/usage``: a non-admin asking for another tenant gets 403."""
    if tenant is not None and tenant != principal.tenant and ADMIN_SCOPE not in principal.scopes:
        raise Forbidden("only the admin scope may read another tenant's usage: drop ?tenant=")
    if tenant is not None and not tenant.strip():
        raise InvalidRequest("'tenant' is empty: give a tenant id or '*' for all", param="tenant")
    wanted = None if tenant == "*" else (tenant or principal.tenant)
    totals = await meter.store.get(wanted)
    return {
        "object": "usage",
        "at": int(time.time()),
        "data": [{"tenant": t, **row} for t, row in totals.items()],
    }


def usage_handler(meter: UsageMeter) -> Any:
    async def handler(request: web.Request) -> web.Response:
        body = await read_usage(meter, principal_of(request), request.query.get("tenant"))
        return web.json_response(body)

    return handler
