from __future__ import annotations

import random
from collections import Counter

from voxmesh.gateway.balancer.p2c import Candidate, PowerOfTwoChoices, Unavailable


def test_picks_cheaper_of_two_and_never_the_worst_of_three() -> None:
    p2c = PowerOfTwoChoices(random.Random(1))
    cands = [Candidate("fast", 0.01), Candidate("mid", 0.02), Candidate("slow", 0.5)]
    picks = Counter(p2c.choose(cands) for _ in range(3000))
    assert picks["slow"] == 0  # the most expensive endpoint loses every pair it is in
    # fast wins both of its pairs (2/3), mid wins only against slow (1/3)
    assert 0.62 < picks["fast"] / 3000 < 0.71
    assert 0.29 < picks["mid"] / 3000 < 0.38


def test_skips_ejected_and_saturated_and_says_why() -> None:
    p2c = PowerOfTwoChoices(random.Random(2))
    assert p2c.choose([]) is Unavailable.NO_ENDPOINTS
    ejected = [Candidate("a", 0.01, ejected=True), Candidate("b", 0.01, ejected=True)]
    assert p2c.choose(ejected) is Unavailable.ALL_EJECTED
    full = [Candidate("a", 0.01, in_flight=4, max_in_flight=4), Candidate("b", 0.01, ejected=True)]
    assert p2c.choose(full) is Unavailable.ALL_SATURATED
    mixed = [*full, Candidate("c", 9.0)]
    assert {p2c.choose(mixed) for _ in range(50)} == {"c"}


def test_exclude_avoids_failed_endpoint_unless_alone() -> None:
    p2c = PowerOfTwoChoices(random.Random(3))
    cands = [Candidate("a", 0.001), Candidate("b", 1.0)]
    assert {p2c.choose(cands, exclude=frozenset({"a"})) for _ in range(20)} == {"b"}
    assert p2c.choose(cands[:1], exclude=frozenset({"a"})) == "a"


def test_seeded_rng_is_deterministic() -> None:
    cands = [Candidate(str(i), 0.01 * (i % 3 + 1)) for i in range(8)]
    r1, r2 = PowerOfTwoChoices(random.Random(7)), PowerOfTwoChoices(random.Random(7))
    assert [r1.choose(cands) for _ in range(100)] == [r2.choose(cands) for _ in range(100)]
