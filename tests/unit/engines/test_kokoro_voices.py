"""The 54-voice pack: checksum list, conversion from the npm tarball, refusal of tampering."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from voxmesh.engines import kokoro_voices as kv


def test_checksum_list_has_the_54_voices() -> None:
    sums = kv.expected_checksums()
    assert len(sums) == 54
    by_lang: dict[str, int] = {}
    for vid in sums:
        m = kv.voice_meta(vid)
        by_lang[m.native] = by_lang.get(m.native, 0) + 1
    assert by_lang["en"] == 28 and by_lang["zh"] == 8 and by_lang["ja"] == 5
    assert kv.voice_meta("bm_fable").accent == "British English" and kv.voice_meta("zm_yunxi").gender == "male"
    with pytest.raises(kv.VoicePackError):
        kv.voice_meta("xx_nope")


def _tarball(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_altered_voice_is_refused(tmp_path: Path) -> None:
    bad = np.zeros((510, 256), dtype="<f4").tobytes()
    tgz = _tarball(tmp_path / "k.tgz", {"package/voices/af_heart.bin": bad})
    with pytest.raises(kv.VoicePackError, match="does not match"):
        kv.convert_tarball(tgz, tmp_path / "out" / "voices.npz")
    assert not (tmp_path / "out" / "voices.npz").exists()


def test_conversion_round_trip_with_patched_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    tables = {v: rng.standard_normal((510, 256)).astype("<f4") for v in ("af_a", "zm_b")}
    sums = {v: hashlib.sha256(t.tobytes()).hexdigest() for v, t in tables.items()}
    monkeypatch.setattr(kv, "expected_checksums", lambda: sums)
    tgz = _tarball(tmp_path / "k.tgz", {f"package/voices/{v}.bin": t.tobytes() for v, t in tables.items()}
                   | {"package/LICENSE": b"Apache License 2.0"})
    dest = tmp_path / "pack" / "voices.npz"
    kv.convert_tarball(tgz, dest)
    loaded = kv.load_pack(dest)
    assert loaded is not None and set(loaded) == set(tables)
    assert np.array_equal(loaded["af_a"], tables["af_a"])
    assert (dest.parent / "LICENSE").read_text() == "Apache License 2.0"
    assert "Apache" in (dest.parent / "NOTICE").read_text()
    assert kv.fetch_pack(dest, npm="/nonexistent/npm") == dest  # already there: no npm needed
    (dest.parent / "SHA256SUMS").write_text("other\n")
    with pytest.raises(kv.VoicePackError, match="make setup"):
        kv.load_pack(dest)


def test_missing_npm_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(kv.VoicePackError, match="npm not found"):
        kv.fetch_pack(tmp_path / "voices.npz", npm="/nonexistent/npm")
    assert kv.load_pack(tmp_path / "voices.npz") is None


def test_installed_pack_matches_the_list() -> None:
    pack = kv.load_pack(kv.default_pack_path())
    if pack is None:
        pytest.skip("54-voice pack not set up (make setup)")
    assert len(pack) == 54 and all(t.shape == (510, 256) for t in pack.values())
