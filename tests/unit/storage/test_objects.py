from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voxmesh.clock import FakeClock
from voxmesh.errors import Forbidden, InvalidRequest, NotFound
from voxmesh.storage.fs import FsObjectStore
from voxmesh.storage.memory import MemoryObjectStore
from voxmesh.storage.objects import ObjectStore, UrlSigner, load_or_create_secret, validate_key

SECRET = b"s" * 32


@pytest.mark.parametrize(
    "key",
    ["", "/etc/passwd", "../x", "a/../b", "a/..", "a\\b", "a\x00b", ".hidden", "a//b", "a/", "a b", "ü", "x" * 513],
)
def test_bad_keys_rejected(key: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_key(key)


@pytest.mark.parametrize("key", ["a", "chunks/ab/abc.wav", "results/J1/audio.mp3", "x" * 512])
def test_good_keys(key: str) -> None:
    assert validate_key(key) == key


@given(st.text(max_size=40))
def test_validated_keys_stay_under_root(key: str) -> None:
    root = Path("/srv/objects")
    try:
        validate_key(key)
    except InvalidRequest:
        return
    assert os.path.normpath(root / key).startswith(str(root) + "/")


def _stores(tmp_path: Path) -> list[ObjectStore]:
    return [FsObjectStore(tmp_path / "o", UrlSigner(SECRET)), MemoryObjectStore()]


async def test_store_roundtrip(tmp_path: Path) -> None:
    for store in _stores(tmp_path):
        assert isinstance(store, ObjectStore)
        await store.put("a/b/c.bin", b"hello")
        await store.put("a/d.bin", b"x")
        await store.put("a/d.bin", b"y")  # overwrite
        assert await store.get("a/b/c.bin") == b"hello"
        assert await store.get("a/d.bin") == b"y"
        assert await store.exists("a/d.bin")
        assert await store.list("a/") == ["a/b/c.bin", "a/d.bin"]
        assert await store.list("a/b") == ["a/b/c.bin"]
        await store.delete("a/d.bin")
        await store.delete("a/d.bin")  # idempotent
        assert not await store.exists("a/d.bin")
        with pytest.raises(NotFound):
            await store.get("a/d.bin")
        with pytest.raises(InvalidRequest):
            await store.put("../evil", b"x")


async def test_fs_atomic_no_temp_left(tmp_path: Path) -> None:
    store = FsObjectStore(tmp_path / "o", UrlSigner(SECRET))
    await store.put("k/v", b"1" * 1000)
    assert list((tmp_path / "o" / ".tmp").iterdir()) == []
    assert (tmp_path / "o" / "k" / "v").read_bytes() == b"1" * 1000
    assert await store.list() == ["k/v"]  # the temp dir is not listed


def test_signer_expiry_and_tamper() -> None:
    clock = FakeClock(1_000_000.0)
    signer = UrlSigner(SECRET, base_url="http://h:1/", clock=clock)
    url = signer.sign("results/j/audio.wav", 60)
    parts = urlsplit(url)
    assert parts.netloc == "h:1" and parts.path == "/v1/objects/results/j/audio.wav"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    key = unquote(parts.path.removeprefix("/v1/objects/"))
    signer.verify(key, q["expires"], q["sig"])
    with pytest.raises(Forbidden, match="signature"):
        signer.verify("results/j/other.wav", q["expires"], q["sig"])
    with pytest.raises(Forbidden, match="signature"):
        signer.verify(key, str(int(q["expires"]) + 100), q["sig"])
    with pytest.raises(Forbidden):
        signer.verify(key, "soon", q["sig"])
    clock.advance(61)
    with pytest.raises(Forbidden, match="expired"):
        signer.verify(key, q["expires"], q["sig"])
    with pytest.raises(Forbidden, match="signature"):
        UrlSigner(b"t" * 32, clock=clock).verify(key, q["expires"], q["sig"])


def test_secret_file_shared(tmp_path: Path) -> None:
    a = load_or_create_secret(tmp_path / "k")
    b = load_or_create_secret(tmp_path / "k")
    assert a == b and len(a) >= 32
    assert (tmp_path / "k").stat().st_mode & 0o777 == 0o600
