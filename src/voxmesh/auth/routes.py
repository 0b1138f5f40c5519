"""Admin routes for tenants and API keys (scope ``admin``, checked by the guard).

    GET    /admin/tenants             every tenant and its limits
    POST   /admin/tenants             {"name", <limit>: int|null, ...}          -> 201
    GET    /admin/tenants/{name}
    PATCH  /admin/tenants/{name}      {<limit>: int|null, "disabled": bool}
    GET    /admin/keys                ?tenant=  (never a key's secret)
    POST   /admin/keys                {"tenant", "scopes", "name"?, "expires_in_s"?} -> 201, "key" shown once
    DELETE /admin/keys/{id}           revoke
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from voxmesh.auth.store import TenantStore, check_scopes
from voxmesh.errors import InvalidRequest

__all__ = ["setup_admin_routes"]


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body must be a JSON object")
    return data


def setup_admin_routes(app: web.Application, store: TenantStore) -> None:
    async def list_tenants(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [t.to_dict() for t in await store.list_tenants()]})

    async def create_tenant(request: web.Request) -> web.Response:
        data = await _json(request)
        name = data.pop("name", None)
        if not isinstance(name, str):
            raise InvalidRequest("'name' is required", param="name")
        tenant = await store.create_tenant(name, **data)
        return web.json_response(tenant.to_dict(), status=201)

    async def get_tenant(request: web.Request) -> web.Response:
        return web.json_response((await store.get_tenant(request.match_info["name"])).to_dict())

    async def patch_tenant(request: web.Request) -> web.Response:
        tenant = await store.update_tenant(request.match_info["name"], **await _json(request))
        return web.json_response(tenant.to_dict())

    async def list_keys(request: web.Request) -> web.Response:
        keys = await store.list_keys(request.query.get("tenant"))
        return web.json_response({"object": "list", "data": [k.to_dict() for k in keys]})

    async def create_key(request: web.Request) -> web.Response:
        data = await _json(request)
        unknown = set(data) - {"tenant", "scopes", "name", "expires_in_s"}
        if unknown:
            raise InvalidRequest(f"unknown fields {sorted(unknown)}: send tenant, scopes, name, expires_in_s")
        expires = data.get("expires_in_s")
        if expires is not None and (isinstance(expires, bool) or not isinstance(expires, (int, float)) or expires <= 0):
            raise InvalidRequest("'expires_in_s' must be a number of seconds > 0", param="expires_in_s")
        name = data.get("name", "")
        if not isinstance(name, str):
            raise InvalidRequest("'name' must be a string", param="name")
        record, key = await store.create_key(data.get("tenant"), check_scopes(data.get("scopes")),  # type: ignore[arg-type]
                                             name=name, expires_in_s=expires)
        return web.json_response({**record.to_dict(), "key": key}, status=201)

    async def revoke_key(request: web.Request) -> web.Response:
        return web.json_response((await store.revoke_key(request.match_info["id"])).to_dict())

    r = app.router
    r.add_get("/admin/tenants", list_tenants)
    r.add_post("/admin/tenants", create_tenant)
    r.add_get("/admin/tenants/{name}", get_tenant)
    r.add_patch("/admin/tenants/{name}", patch_tenant)
    r.add_get("/admin/keys", list_keys)
    r.add_post("/admin/keys", create_key)
    r.add_delete("/admin/keys/{id}", revoke_key)
