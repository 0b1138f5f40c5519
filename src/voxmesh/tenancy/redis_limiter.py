"""Buckets in Redis, shared by every gateway process that uses the same key prefix.

One Lua script per decision, so read-refill-check-charge is atomic across processes. The
script applies the rule of :func:`voxmesh.tenancy.bucket.evaluate` (admit iff every bucket
has ``tokens >= cost`` and ``tokens > 0``; charge all or none) and returns the refilled
token counts; Python builds the :class:`Decision` from them with that same function.

The clock is Redis's ``TIME``: every gateway sees one clock, whatever its host's says.
Keys: ``<prefix><tenant>:<bucket>`` hashes ``{t: tokens, u: updated}``, expiring once the
bucket would be full again (an absent key is a full bucket), so idle tenants cost nothing.

Limits: a Redis outage is not hidden: :meth:`take` raises ``Overloaded`` (503) rather than
admitting without limits (fail closed; a gateway serving paid traffic must not give it away).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from voxmesh.errors import Overloaded
from voxmesh.tenancy.bucket import BucketSpec, Decision, evaluate

__all__ = ["RedisLimiter"]

_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n = #KEYS
local tokens = {}
local ok = true
for i = 1, n do
  local cap = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local v = redis.call('HMGET', KEYS[i], 't', 'u')
  local tk = tonumber(v[1])
  local up = tonumber(v[2])
  if tk == nil or up == nil then
    tk = cap
  elseif now > up then
    tk = math.min(cap, tk + (now - up) * rate)
  end
  tokens[i] = tk
  if not (tk >= cost and tk > 0) then ok = false end
end
local out = {ok and 1 or 0}
for i = 1, n do
  local cap = tonumber(ARGV[3 * i - 2])
  local rate = tonumber(ARGV[3 * i - 1])
  local cost = tonumber(ARGV[3 * i])
  local left = tokens[i]
  if ok then left = left - cost end
  redis.call('HSET', KEYS[i], 't', string.format('%.17g', left), 'u', string.format('%.6f', now))
  redis.call('PEXPIRE', KEYS[i], math.ceil((cap - left) / rate * 1000) + 1000)
  out[#out + 1] = string.format('%.17g', tokens[i])
end
return out
"""

_DEBIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local v = redis.call('HMGET', KEYS[1], 't', 'u')
local tk = tonumber(v[1])
local up = tonumber(v[2])
if tk == nil or up == nil then
  tk = cap
elseif now > up then
  tk = math.min(cap, tk + (now - up) * rate)
end
tk = math.max(-cap, tk - amount)
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tk), 'u', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((cap - tk) / rate * 1000) + 1000)
return string.format('%.17g', tk)
"""


class RedisLimiter:
    """``client`` is a ``redis.asyncio.Redis``; see :meth:`from_url`."""

    def __init__(self, client: Any, key_prefix: str = "voxmesh:rl:") -> None:
        self.client = client
        self.prefix = key_prefix
        self._take = client.register_script(_TAKE)
        self._debit = client.register_script(_DEBIT)

    @classmethod
    def from_url(cls, url: str, key_prefix: str = "voxmesh:rl:") -> RedisLimiter:
        import redis.asyncio as aioredis

        return cls(aioredis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0), key_prefix)

    def _key(self, tenant: str, spec: BucketSpec) -> str:
        return f"{self.prefix}{tenant}:{spec.name}"

    async def take(self, tenant: str, buckets: Sequence[tuple[BucketSpec, float]]) -> Decision:
        if not buckets:
            return Decision(True, 0.0, ())
        from redis.exceptions import RedisError

        args: list[float] = []
        for spec, cost in buckets:
            args += [spec.capacity, spec.rate, cost]
        try:
            raw = await self._take(keys=[self._key(tenant, s) for s, _ in buckets], args=args)
        except RedisError as exc:
            raise Overloaded(f"rate limiter unavailable ({type(exc).__name__}): retry shortly",
                             retry_after=1.0) from exc
        tokens = [float(x) for x in raw[1:]]
        decision, _ = evaluate([s for s, _ in buckets], tokens, [c for _, c in buckets])
        return decision

    async def debit(self, tenant: str, spec: BucketSpec, amount: float) -> None:
        from redis.exceptions import RedisError

        try:
            await self._debit(keys=[self._key(tenant, spec)], args=[spec.capacity, spec.rate, amount])
        except RedisError as exc:
            raise Overloaded(f"rate limiter unavailable ({type(exc).__name__})", retry_after=1.0) from exc

    async def close(self) -> None:
        await self.client.aclose()
