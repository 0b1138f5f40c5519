"""The Redis limiter on the machine's Redis: two processes share one bucket, atomically.

Each test uses its own key prefix and deletes its keys at the end; no Redis on
127.0.0.1:6379 skips with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voxmesh.settings import LimitsSettings
from voxmesh.tenancy import build_admission
from voxmesh.tenancy.bucket import BucketSpec
from voxmesh.tenancy.redis_limiter import RedisLimiter

REDIS_URL = "redis://127.0.0.1:6379/0"

# one "gateway": waits for the go file, then asks admit() as fast as it can, prints its counts
_PROBE = """
import asyncio, json, os, sys, time
from voxmesh.settings import LimitsSettings
from voxmesh.tenancy import build_admission

async def main():
    prefix, go, attempts = sys.argv[1], sys.argv[2], int(sys.argv[3])
    adm = build_admission(LimitsSettings(backend="redis", key_prefix=prefix, requests_per_minute=None,
                                         chars_per_day=500))
    while not os.path.exists(go):
        await asyncio.sleep(0.005)
    ok = refused = 0
    for _ in range(attempts):
        d = await adm.admit("shared", "POST /v1/audio/speech", 10)
        if d.allowed:
            ok += 1
        else:
            refused += 1
    await adm.close()
    print(json.dumps({"ok": ok, "refused": refused}))

asyncio.run(main())
"""


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    if not _redis_up():
        pytest.skip("no Redis on 127.0.0.1:6379")
    import redis.asyncio as aioredis

    p = f"voxmesh-test:{uuid.uuid4().hex[:10]}:"
    yield p
    client = aioredis.Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=p + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def test_two_processes_share_one_bucket(prefix: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _PROBE, prefix, str(go), "40"], stdout=subprocess.PIPE, env=env)
        for _ in range(2)
    ]
    await asyncio.sleep(1.5)  # both imported and waiting
    go.touch()
    counts = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        counts.append(json.loads(out))
    # 500 characters a day, 10 a request: exactly 50 of the 80 requests fit (refill: 0.006 chars/s)
    assert sum(c["ok"] for c in counts) == 50
    assert sum(c["refused"] for c in counts) == 30
    assert all(c["ok"] > 0 for c in counts)  # both really took part
    # usage of the refusals went to the shared store too
    adm = build_admission(LimitsSettings(backend="redis", key_prefix=prefix))
    usage = await adm.meter.store.get("shared")
    assert usage["shared"]["throttled"] == 30
    await adm.close()


async def test_redis_decisions_match_the_memory_rule(prefix: str) -> None:
    lim = RedisLimiter.from_url(REDIS_URL, prefix)
    spec = BucketSpec("requests", 3, 3600.0)
    got = [(await lim.take("t", [(spec, 1)])) for _ in range(4)]
    assert [d.allowed for d in got] == [True, True, True, False]
    assert got[2].headers()["x-ratelimit-remaining-requests"] == "0"
    assert got[3].retry_after == pytest.approx(1200, rel=0.01)  # one token at 3/hour
    assert got[3].headers()["Retry-After"] in ("1200", "1199")
    audio = BucketSpec("audio_seconds", 100, 100.0)
    await lim.debit("t", audio, 150)
    d = await lim.take("t", [(audio, 0)])
    assert not d.allowed and d.retry_after == pytest.approx(50, abs=1)
    ttl = await lim.client.pttl(f"{prefix}t:requests")
    assert 0 < ttl <= 3 * 1_200_000 + 1000  # expires once it would be full again
    await lim.close()


async def test_redis_down_fails_closed() -> None:
    lim = RedisLimiter.from_url("redis://127.0.0.1:1/0", "x:")
    from voxmesh.errors import Overloaded

    with pytest.raises(Overloaded):
        await lim.take("t", [(BucketSpec("requests", 1, 60.0), 1)])
    await lim.close()
