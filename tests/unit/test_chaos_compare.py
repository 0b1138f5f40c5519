"""How the chaos soak (``benchmarks/chaos.py``) judges job results against its fault-free run.

The 30-minute soak reported 22 of 371 jobs "not byte-identical": they were the jobs whose
fault-free reference run had not finished when a fixed 240 s deadline ran out (the reference
stack runs every job again after the soak), and a missing reference result was counted as a
mismatch. A missing reference is an unfinished check, reported apart; the wait for the
reference ends when jobs stop finishing, not at a fixed time while they still finish.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import sys
import wave
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def chaos() -> Any:
    path = ROOT / "benchmarks" / "chaos.py"
    spec = importlib.util.spec_from_file_location("chaos_bench_under_test", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    try:
        spec.loader.exec_module(mod)
    except ImportError as exc:  # psutil, aiohttp, yaml: the test extra
        pytest.skip(f"the chaos benchmark's imports are missing: {exc}")
    return mod


def _wav(pcm: bytes, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


def test_a_job_without_reference_result_is_unchecked_not_differing(chaos: Any) -> None:
    results = {1: b"same", 2: b"got", 3: b"late"}
    reference = {1: b"same", 2: b"want"}  # job 3's reference run did not finish
    identical, mismatched, missing = chaos.classify_results(results, reference)
    assert identical == 1
    assert mismatched == [2]
    assert missing == [3]


def test_compare_chunks_names_the_chunk_lengths_offset_and_prefix(chaos: Any) -> None:
    a, b, c = b"\x01\x00" * 10, b"\x02\x00" * 8, b"\x03\x00" * 6
    ref = _wav(a + b + c)
    got = _wav(a + b[:10] + c)  # chunk 1 truncated to 5 samples
    diffs = chaos.compare_chunks(ref, got, [10, 8, 6], [10, 5, 6])
    assert diffs == [{"idx": 1, "bytes_ref": 16, "bytes_got": 10, "first_diff": 10,
                      "prefix": "got is a prefix of ref"}]
    assert chaos.compare_chunks(ref, _wav(a + b + c, 24000), [10, 8, 6], [10, 8, 6])[0]["prefix"] == "header only"


class _SlowQueue:
    """Stands in for the soak: one more job succeeds at each look at the job list."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.looks = 0

    async def list_jobs(self) -> dict[str, str]:
        self.looks += 1
        return {i: "succeeded" if k < self.looks else "running" for k, i in enumerate(self.ids)}


def test_wait_jobs_waits_while_jobs_keep_finishing(chaos: Any) -> None:
    jobs = [chaos.Job(f"j{k}", k, 0.0) for k in range(4)]
    stub = _SlowQueue([j.id for j in jobs])
    # each job takes one poll (0.5 s) to finish, 2 s for all: longer than the 0.8 s allowed
    # without progress, which progress keeps restarting
    states = asyncio.run(chaos.Soak.wait_jobs(stub, jobs, 0.8))
    assert set(states.values()) == {"succeeded"}


def test_wait_jobs_gives_up_when_nothing_finishes(chaos: Any) -> None:
    jobs = [chaos.Job("stuck", 0, 0.0)]

    class Stuck:
        async def list_jobs(self) -> dict[str, str]:
            return {"stuck": "running"}

    assert asyncio.run(chaos.Soak.wait_jobs(Stuck(), jobs, 0.6)) == {"stuck": "running"}
