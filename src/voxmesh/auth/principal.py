"""Who is calling: the :class:`Principal` every authenticated request carries.

aiohttp handlers read it at ``request["principal"]`` (the tenant at
``request["principal"].tenant``); the fast path's hot routes get it from the guard.
"""

from __future__ import annotations

from dataclasses import dataclass

from voxmesh.auth.scopes import ALL_SCOPES

__all__ = ["ANONYMOUS", "DEFAULT_TENANT", "OPEN", "Principal"]

DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Principal:
    """``credential``: ``jwt`` | ``api_key`` | ``none`` (mode none, or a public route), plus
    voxmesh's own ``internal`` (the job runners' stack key) and ``admin_token``
    (``gateway.admin_token``, kept for compatibility)."""

    tenant: str
    subject: str
    scopes: frozenset[str]
    credential: str

    def has(self, scope: str) -> bool:
        return scope in self.scopes


# mode none: every route is open (admin stays loopback-only, see Guard)
OPEN = Principal(tenant=DEFAULT_TENANT, subject="anonymous", scopes=ALL_SCOPES, credential="none")
# a public route in an authenticated mode: nobody in particular, no scopes
ANONYMOUS = Principal(tenant=DEFAULT_TENANT, subject="anonymous", scopes=frozenset(), credential="none")
