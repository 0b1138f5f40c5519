"""Tenants, API keys and tenant-scoped jobs on real SQLite and real PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from voxmesh.auth.store import TenantStore
from voxmesh.errors import Conflict, InvalidRequest, NotFound
from voxmesh.storage.db import JobDB, NewChunk, NewJob
from voxmesh.storage.schema import api_keys


@pytest.fixture
async def store(sql_url: str) -> AsyncIterator[TenantStore]:
    s = await TenantStore.open(sql_url, key_cache_s=60.0)
    try:
        yield s
    finally:
        await s.close()


async def test_tenants_and_limits(store: TenantStore) -> None:
    t = await store.create_tenant("acme", requests_per_minute=600, chars_per_day=2_000_000)
    assert (t.requests_per_minute, t.chars_per_day, t.concurrent_jobs, t.disabled) == (600, 2_000_000, None, False)
    with pytest.raises(Conflict):
        await store.create_tenant("acme")
    with pytest.raises(InvalidRequest):
        await store.create_tenant("Not A Name")
    with pytest.raises(InvalidRequest):
        await store.create_tenant("globex", chars_per_day=-1)
    t = await store.update_tenant("acme", chars_per_day=None, concurrent_jobs=4, audio_seconds_per_month=10**10)
    assert (t.chars_per_day, t.concurrent_jobs, t.audio_seconds_per_month) == (None, 4, 10**10)
    with pytest.raises(InvalidRequest):
        await store.update_tenant("acme", colour="blue")
    with pytest.raises(NotFound):
        await store.update_tenant("nobody", chars_per_day=1)
    assert [x.name for x in await store.list_tenants()] == ["acme"]


async def test_keys_are_stored_hashed_and_checked(store: TenantStore) -> None:
    rec, key = await store.create_key("globex", frozenset({"tts:speak"}), name="ci")
    assert (await store.get_tenant("globex")).name == "globex"  # created on first key
    async with store.engine.connect() as conn:
        row = (await conn.execute(select(api_keys))).one()
    assert key not in str(tuple(row)) and key.split("_", 2)[2] not in str(tuple(row))
    assert len(row.secret_hash) == 64
    p = await store.lookup_key(key)
    assert p is not None and (p.tenant, p.subject, p.scopes) == ("globex", f"key:{rec.id}", {"tts:speak"})
    assert await store.lookup_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert await store.lookup_key("vxk_nothex_x") is None
    assert [k.id for k in await store.list_keys("globex")] == [rec.id]
    assert await store.list_keys("acme") == []
    revoked = await store.revoke_key(rec.id)
    assert revoked.revoked_at is not None
    assert await store.lookup_key(key) is None  # revocation drops the cache entry at once
    with pytest.raises(NotFound):
        await store.revoke_key("000000000000")


async def test_a_second_process_sees_a_revocation_within_the_cache_time(sql_url: str, store: TenantStore) -> None:
    other = await TenantStore.open(sql_url, key_cache_s=0.2)
    try:
        rec, key = await store.create_key("acme", frozenset({"tts:speak"}))
        assert await other.lookup_key(key) is not None
        await store.revoke_key(rec.id)
        assert await other.lookup_key(key) is not None  # cached
        time.sleep(0.25)
        assert await other.lookup_key(key) is None
    finally:
        await other.close()


async def test_jobs_belong_to_their_tenant(sql_url: str) -> None:
    db = await JobDB.open(sql_url)
    try:
        for i, tenant in enumerate(["acme", "globex", "acme", "default"]):
            job = NewJob(f"job{i}", "m", "v", "wav", {}, None, [], None, tenant)
            await db.create_job(job, [NewChunk(0, 0, "hi.", f"{i:064x}")], now=float(i))
        rows, _ = await db.list_jobs(10, tenant="acme")
        assert [r.id for r in rows] == ["job2", "job0"]
        assert [r.id for r in (await db.list_jobs(10))[0]] == ["job3", "job2", "job1", "job0"]
        assert (await db.get_job("job1", "globex")).tenant == "globex"
        with pytest.raises(NotFound) as other:
            await db.get_job("job1", "acme")
        with pytest.raises(NotFound) as missing:
            await db.get_job("nope", "acme")
        assert other.value.message.replace("job1", "X") == missing.value.message.replace("nope", "X")
    finally:
        await db.close()


async def test_a_cached_key_is_never_used_past_its_expiry(store: TenantStore) -> None:
    _, key = await store.create_key("acme", frozenset({"tts:speak"}), expires_in_s=0.5)
    assert await store.lookup_key(key) is not None  # cached for key_cache_s=60, but...
    time.sleep(0.6)
    assert await store.lookup_key(key) is None  # ...not past expires_at
