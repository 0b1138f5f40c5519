"""Auth for ``voxmesh up``: the tenant store, the guard, the admin routes.

    auth = await open_auth(settings)     # raises ConfigError for mode none on a public bind
    gateway = Gateway(..., guard=auth.guard)
    setup.append(auth.setup_routes)      # /admin/keys, /admin/tenants
    ...
    await auth.close()
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from voxmesh.auth.audit import AuditLog
from voxmesh.auth.guard import Guard, check_bind, load_internal_key
from voxmesh.auth.routes import setup_admin_routes
from voxmesh.auth.store import TenantStore
from voxmesh.errors import NotFound
from voxmesh.settings import Settings
from voxmesh.tenancy.limits import TenantLimits

__all__ = ["AuthWiring", "audit_path", "open_auth"]


def audit_path(settings: Settings) -> str:
    return str(settings.auth.audit_file or settings.data_dir / "audit.log")


@dataclass
class AuthWiring:
    guard: Guard
    store: TenantStore

    def setup_routes(self, app: web.Application) -> None:
        setup_admin_routes(app, self.store)

    async def tenant_limits(self, name: str) -> TenantLimits | None:
        """A tenant's own limits (None: no row, the settings' defaults apply)."""
        try:
            return TenantLimits.from_row(await self.store.get_tenant(name))
        except NotFound:
            return None

    async def close(self) -> None:
        await self.store.close()


async def open_auth(settings: Settings) -> AuthWiring:
    from pathlib import Path

    check_bind(settings)
    store = await TenantStore.open(settings.db_url(), key_cache_s=settings.auth.key_cache_s)
    audit = AuditLog(Path(audit_path(settings)))
    internal = load_internal_key(settings.data_dir) if settings.auth.mode != "none" else None
    try:
        guard = Guard(settings, store=store, internal_key=internal, audit=audit)
    except BaseException:
        await store.close()
        raise
    return AuthWiring(guard, store)
