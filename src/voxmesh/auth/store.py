"""Tenants and API keys in the metadata DB (SQLite or PostgreSQL, migration 0002).

:class:`TenantStore` is the only code that touches the ``tenants`` and ``api_keys`` tables;
the CLI (``voxmesh keys|tenants``), the admin routes and the guard go through it.
:meth:`TenantStore.lookup_key` is what the guard calls per request, behind a short cache
(``auth.key_cache_s``): a revoked key stops working on this gateway at once (the admin route
drops it from the cache) and on others within that time.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from voxmesh.auth.jwt import TENANT_RE
from voxmesh.auth.keys import hash_key, matches, new_key, parse_key
from voxmesh.auth.principal import Principal
from voxmesh.auth.scopes import ALL_SCOPES
from voxmesh.clock import Clock
from voxmesh.errors import Conflict, InvalidRequest, NotFound
from voxmesh.storage.engine import create_engine
from voxmesh.storage.migrate import migrate
from voxmesh.storage.schema import api_keys, tenants

__all__ = ["LIMIT_FIELDS", "ApiKey", "Tenant", "TenantStore", "check_scopes", "check_tenant"]

LIMIT_FIELDS = ("requests_per_minute", "chars_per_day", "audio_seconds_per_month", "concurrent_jobs", "max_job_chars")


@dataclass(frozen=True)
class Tenant:
    """A tenant and its limits; None means the deployment's default (read by the rate limiter)."""

    name: str
    created_at: float
    disabled: bool
    requests_per_minute: int | None
    chars_per_day: int | None
    audio_seconds_per_month: int | None
    concurrent_jobs: int | None
    max_job_chars: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"object": "tenant", **asdict(self)}


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant: str
    name: str
    scopes: frozenset[str]
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scopes"] = " ".join(sorted(self.scopes))
        return {"object": "api_key", **d}


def check_tenant(name: object) -> str:
    if not isinstance(name, str) or not TENANT_RE.match(name):
        raise InvalidRequest("tenant names are 1-63 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
                             param="tenant")
    return name


def check_scopes(value: object) -> frozenset[str]:
    if isinstance(value, str):
        scopes = frozenset(value.replace(",", " ").split())
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        scopes = frozenset(value)
    else:
        raise InvalidRequest("'scopes' must be a space-separated string or a list of scopes", param="scopes")
    unknown = scopes - ALL_SCOPES
    if not scopes or unknown:
        raise InvalidRequest(f"unknown scopes {sorted(unknown)}; use some of {' '.join(sorted(ALL_SCOPES))}"
                             if unknown else f"give at least one scope of {' '.join(sorted(ALL_SCOPES))}",
                             param="scopes")
    return scopes


def _limit(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequest(f"{name!r} must be a whole number >= 0 or null (the default)", param=name)
    return value


def _tenant(row: Any) -> Tenant:
    m = dict(row._mapping)
    m["disabled"] = bool(m["disabled"])
    return Tenant(**m)


def _key(row: Any) -> ApiKey:
    m = dict(row._mapping)
    m.pop("secret_hash")
    m["scopes"] = frozenset(m["scopes"].split())
    return ApiKey(**m)


class TenantStore:
    def __init__(self, engine: AsyncEngine, *, clock: Clock = time.time, key_cache_s: float = 5.0,
                 monotonic: Clock = time.monotonic) -> None:
        self.engine = engine
        self._clock = clock
        self._mono = monotonic
        self.key_cache_s = key_cache_s
        self._cache: dict[str, tuple[float, Principal | None]] = {}  # key hash -> (until, principal)
        self._disabled: dict[str, tuple[float, bool]] = {}  # tenant -> (until, disabled)

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> TenantStore:
        engine = create_engine(url)
        await migrate(engine)
        return cls(engine, **kwargs)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- tenants --------------------------------------------------------------------------

    async def create_tenant(self, name: str, **limits: Any) -> Tenant:
        check_tenant(name)
        values = {k: _limit(k, limits.get(k)) for k in LIMIT_FIELDS}
        extra = set(limits) - set(LIMIT_FIELDS)
        if extra:
            raise InvalidRequest(f"unknown tenant fields {sorted(extra)}; limits are {', '.join(LIMIT_FIELDS)}")
        try:
            async with self.engine.begin() as conn:
                await conn.execute(tenants.insert().values(name=name, created_at=self._clock(), disabled=False, **values))
        except IntegrityError as exc:
            raise Conflict(f"tenant {name!r} exists: change it with PATCH /admin/tenants/{name}") from exc
        return await self.get_tenant(name)

    async def ensure_tenant(self, name: str) -> Tenant:
        try:
            return await self.get_tenant(name)
        except NotFound:
            try:
                return await self.create_tenant(name)
            except Conflict:  # created meanwhile by another process
                return await self.get_tenant(name)

    async def get_tenant(self, name: str) -> Tenant:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(tenants).where(tenants.c.name == name))).first()
        if row is None:
            raise NotFound(f"no tenant {name!r}", param="name")
        return _tenant(row)

    async def list_tenants(self) -> list[Tenant]:
        async with self.engine.connect() as conn:
            return [_tenant(r) for r in (await conn.execute(select(tenants).order_by(tenants.c.name))).all()]

    async def update_tenant(self, name: str, **changes: Any) -> Tenant:
        """Set limits (None: back to the default) and ``disabled``."""
        values: dict[str, Any] = {}
        for k, v in changes.items():
            if k in LIMIT_FIELDS:
                values[k] = _limit(k, v)
            elif k == "disabled" and isinstance(v, bool):
                values[k] = v
            else:
                raise InvalidRequest(f"cannot set {k!r}: set one of {', '.join(LIMIT_FIELDS)} or 'disabled' (a boolean)",
                                     param=k)
        if values:
            async with self.engine.begin() as conn:
                res = await conn.execute(update(tenants).where(tenants.c.name == name).values(**values))
            if res.rowcount == 0:
                raise NotFound(f"no tenant {name!r}", param="name")
            self._cache.clear()  # a disabled tenant's keys stop at once here
            self._disabled.pop(name, None)
        return await self.get_tenant(name)

    # -- keys -----------------------------------------------------------------------------

    async def create_key(self, tenant: str, scopes: frozenset[str], *, name: str = "",
                         expires_in_s: float | None = None) -> tuple[ApiKey, str]:
        """A new key for ``tenant`` (created with default limits if new): ``(record, key)``;
        the key is returned this once only."""
        await self.ensure_tenant(check_tenant(tenant))
        check_scopes(sorted(scopes))
        if len(name) > 200:
            raise InvalidRequest("'name' must be at most 200 characters", param="name")
        key_id, key = new_key()
        now = self._clock()
        async with self.engine.begin() as conn:
            await conn.execute(api_keys.insert().values(
                id=key_id, tenant=tenant, name=name, scopes=" ".join(sorted(scopes)), secret_hash=hash_key(key),
                created_at=now, expires_at=None if expires_in_s is None else now + expires_in_s, revoked_at=None,
            ))  # fmt: skip
        return await self.get_key(key_id), key

    async def get_key(self, key_id: str) -> ApiKey:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).first()
        if row is None:
            raise NotFound(f"no API key {key_id!r}: see voxmesh keys ls", param="id")
        return _key(row)

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        q = select(api_keys).order_by(api_keys.c.tenant, api_keys.c.created_at)
        if tenant is not None:
            q = q.where(api_keys.c.tenant == tenant)
        async with self.engine.connect() as conn:
            return [_key(r) for r in (await conn.execute(q)).all()]

    async def revoke_key(self, key_id: str) -> ApiKey:
        async with self.engine.begin() as conn:
            await conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                               .values(revoked_at=self._clock()))
        self._cache.clear()
        return await self.get_key(key_id)

    async def lookup_key(self, key: str) -> Principal | None:
        """The principal of a valid key (known, not revoked, not expired, tenant enabled), else None."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        digest = hash_key(key)
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > self._mono():
            return hit[1]
        q = select(api_keys, tenants.c.disabled).join(tenants, tenants.c.name == api_keys.c.tenant).where(
            api_keys.c.id == parsed.id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(q)).first()
        principal = None
        ttl = self.key_cache_s
        live = row is not None and row.revoked_at is None and not row.disabled and (
            row.expires_at is None or row.expires_at > self._clock())
        if live and row is not None and matches(key, row.secret_hash):
            principal = Principal(tenant=row.tenant, subject=f"key:{row.id}",
                                  scopes=frozenset(row.scopes.split()), credential="api_key")
            if row.expires_at is not None:  # never cached past its expiry
                ttl = min(ttl, row.expires_at - self._clock())
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (self._mono() + ttl, principal)
        return principal

    async def is_disabled(self, tenant: str) -> bool:
        """Whether ``tenant`` is disabled (False for a tenant with no row), cached ``key_cache_s``."""
        hit = self._disabled.get(tenant)
        if hit is not None and hit[0] > self._mono():
            return hit[1]
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(tenants.c.disabled).where(tenants.c.name == tenant))).first()
        disabled = row is not None and bool(row.disabled)
        if len(self._disabled) > 10_000:
            self._disabled.clear()
        self._disabled[tenant] = (self._mono() + self.key_cache_s, disabled)
        return disabled
