"""An engine never makes a session with more threads than its ``max_useful_threads``."""

from __future__ import annotations

from voxmesh.engines.registry import create_engine


def test_piper_capped_at_one_thread_keeps_one_session() -> None:
    engine = create_engine("piper", {"max_useful_threads": 1})
    engine.load(2)
    sessions = engine._loaded()
    assert sessions.threads == 1 and sessions.wait_narrow(timeout=0)
    assert sessions.pick(2) is sessions.wide and sessions.pick(1) is sessions.wide


def test_piper_uncapped_loads_with_every_thread() -> None:
    engine = create_engine("piper", {})
    assert engine.max_useful_threads is None
    engine.load(2)
    assert engine._loaded().threads == 2
