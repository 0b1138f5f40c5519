from __future__ import annotations

import random
from collections import Counter

import pytest

from voxmesh.errors import InvalidRequest
from voxmesh.gateway.split import TrafficSplit


def test_ten_percent_split_within_three_points_over_2000_picks() -> None:
    for seed in range(20):
        split = TrafficSplit(random.Random(seed))
        split.set("voice", {"voice-v1": 90, "voice-v2": 10})
        picks = Counter(split.pick("voice") for _ in range(2000))
        assert abs(picks["voice-v2"] / 2000 - 0.10) <= 0.03, (seed, picks)


def test_changeable_at_run_time_and_zero_weights() -> None:
    split = TrafficSplit(random.Random(1))
    assert split.pick("plain") == "plain"  # no split: same-named deployment
    split.set("m", {"a": 1, "b": 0})
    assert {split.pick("m") for _ in range(200)} == {"a"}
    split.set("m", {"a": 0, "b": 3, "c": 0})
    assert {split.pick("m") for _ in range(200)} == {"b"}
    assert split.weights("m") == {"a": 0.0, "b": 3.0, "c": 0.0}
    assert split.models() == ["m"]
    split.clear("m")
    assert split.pick("m") == "m"


def test_seeded_is_deterministic() -> None:
    a, b = TrafficSplit(random.Random(9)), TrafficSplit(random.Random(9))
    for s in (a, b):
        s.set("m", {"x": 1, "y": 2, "z": 3})
    assert [a.pick("m") for _ in range(100)] == [b.pick("m") for _ in range(100)]


@pytest.mark.parametrize("weights", [{}, {"a": -1}, {"a": 0}, {"a": float("nan")}])
def test_rejects_bad_weights(weights: dict[str, float]) -> None:
    with pytest.raises(InvalidRequest):
        TrafficSplit().set("m", weights)
