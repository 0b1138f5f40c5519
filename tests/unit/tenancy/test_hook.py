"""The limits hook keeps serving while the tenants table cannot be read (a DB restart)."""

from __future__ import annotations

from voxmesh.auth.guard import Call
from voxmesh.auth.principal import Principal
from voxmesh.settings import LimitsSettings
from voxmesh.tenancy import TenantLimits, build_admission
from voxmesh.tenancy.hook import LimitsHook


async def test_an_unreadable_tenants_table_keeps_the_last_limits() -> None:
    now = [0.0]
    rows: list[TenantLimits | Exception] = [TenantLimits.from_row({"requests_per_minute": 6000}), OSError("down")]

    async def lookup(tenant: str) -> TenantLimits | None:
        got = rows.pop(0) if len(rows) > 1 else rows[0]
        if isinstance(got, Exception):
            raise got
        return got

    admission = build_admission(LimitsSettings())
    hook = LimitsHook(admission, lookup, ttl_s=5.0, clock=lambda: now[0])
    who = Principal("acme", "k", frozenset({"tts:speak"}), "api_key")
    body = b'{"model": "m", "input": "Hi.", "voice": "v"}'
    call = Call("POST", "/v1/audio/speech", "/v1/audio/speech", "127.0.0.1", body=body,
                content_type="application/json")
    await hook(who, call)
    assert hook.cached("acme") is not None and hook.cached("acme").requests_per_minute == 6000  # type: ignore[union-attr]
    now[0] = 10.0  # past the TTL: the read fails, the hook does not
    await hook(who, Call("POST", "/v1/audio/speech", "/v1/audio/speech", "127.0.0.1", body=body,
                         content_type="application/json"))
    assert hook.cached("acme").requests_per_minute == 6000  # type: ignore[union-attr]
