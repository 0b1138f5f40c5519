"""S3ObjectStore against a real S3 server (SeaweedFS ``weed mini`` on loopback)."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest

from voxmesh.errors import InvalidRequest, NotFound, UpstreamError
from voxmesh.storage.s3 import S3ObjectStore

from .conftest import S3Server


async def _store(s3: S3Server, **kw: str) -> S3ObjectStore:
    store = S3ObjectStore(
        f"vm-{uuid.uuid4().hex[:10]}", endpoint_url=s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, **kw
    )
    await store.ensure_bucket()
    return store


async def test_roundtrip_list_delete(s3_server: S3Server) -> None:
    store = await _store(s3_server)
    await store.put("chunks/ab/abc.wav", b"RIFF....", content_type="audio/wav")
    await store.put("results/j1/audio.wav", b"x" * 100_000)
    await store.put("results/j1/audio.wav", b"y" * 10)  # overwrite
    assert await store.get("results/j1/audio.wav") == b"y" * 10
    assert await store.exists("chunks/ab/abc.wav") and not await store.exists("chunks/zz")
    assert await store.list("results/") == ["results/j1/audio.wav"]
    assert await store.list() == ["chunks/ab/abc.wav", "results/j1/audio.wav"]
    await store.delete("chunks/ab/abc.wav")
    await store.delete("chunks/ab/abc.wav")
    with pytest.raises(NotFound):
        await store.get("chunks/ab/abc.wav")
    with pytest.raises(InvalidRequest):
        await store.put("../../etc/passwd", b"x")


async def test_presigned_url_works_then_expires(s3_server: S3Server) -> None:
    store = await _store(s3_server)
    await store.put("results/j/audio.wav", b"audio-bytes")
    url = await store.presign_get("results/j/audio.wav", ttl_s=1)
    async with aiohttp.ClientSession() as s:
        async with s.get(url) as r:
            assert r.status == 200 and await r.read() == b"audio-bytes"
        async with s.get(url.replace("Signature=", "Signature=0")) as r:
            assert r.status == 403
        await asyncio.sleep(2.2)
        async with s.get(url) as r:
            assert r.status == 403


async def test_wrong_credentials_are_an_upstream_error(s3_server: S3Server) -> None:
    bad = S3ObjectStore("vm-nope", endpoint_url=s3_server.endpoint, access_key="wrong", secret_key="wrong")
    with pytest.raises(UpstreamError):
        await bad.put("k", b"x")
