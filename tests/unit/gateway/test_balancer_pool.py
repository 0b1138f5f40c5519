from __future__ import annotations

import pytest

from voxmesh.gateway.balancer.pool import Add, Delta, Endpoint, Pool, Remove, Reset, Update

A = Endpoint("a", "http://127.0.0.1:1")
B = Endpoint("b", "http://127.0.0.1:2")
C = Endpoint("c", "http://127.0.0.1:3", identity="spiffe://voxmesh.local/worker/c", weight=2.0)


def test_events_in_sequence() -> None:
    pool = Pool()
    events: list[Update] = [Reset([A, B]), Add(C), Remove(A), Add(C), Remove("zzz"), Reset([B, C])]
    deltas = [pool.update(e) for e in events]
    assert deltas == [
        Delta((A, B), ()),
        Delta((C,), ()),
        Delta((), (A,)),
        Delta(),  # same endpoint again: no change
        Delta(),  # unknown id: nothing to remove
        Delta(),  # same set: nothing moves
    ]
    assert [ep.id for ep in pool] == ["b", "c"]
    assert "b" in pool and "a" not in pool and len(pool) == 2
    assert pool.get("c") == C


def test_changed_endpoint_under_same_id_is_replaced() -> None:
    pool = Pool([A])
    moved = Endpoint("a", "http://127.0.0.1:9")
    assert pool.update(Add(moved)) == Delta((moved,), (A,))
    assert pool.update(Reset([B])) == Delta((B,), (moved,))
    assert pool.update(Remove(B)) == Delta((), (B,))
    assert pool.endpoints() == ()


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError):
        Pool([A, A])
    with pytest.raises(ValueError):
        Endpoint("x", "http://h", weight=0)
    with pytest.raises(TypeError):
        Pool().update("nope")  # type: ignore[arg-type]
