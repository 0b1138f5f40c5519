"""One test per rule of voxmesh.api.instructions."""

from __future__ import annotations

import pytest

from voxmesh.api.instructions import StyleHints, parse_instructions


@pytest.mark.parametrize(("text", "emotion"), [
    ("Speak in a cheerful and positive tone.", "happy"),
    ("Sound melancholy, like a rainy day", "sad"),
    ("You are FURIOUS about the delay", "angry"),
    ("Soothing bedtime-story voice", "calm"),
    ("Read it flat, matter-of-fact", "neutral"),
])
def test_rule1_emotion_words_select_a_preset(text: str, emotion: str) -> None:
    assert parse_instructions(text).emotion == emotion


def test_rule2_negated_words_are_ignored() -> None:
    assert parse_instructions("Do not sound angry at all.").emotion is None
    assert parse_instructions("Never sad; be cheerful").emotion == "happy"


def test_rule3_first_emotion_wins() -> None:
    assert parse_instructions("calm at first, then excited").emotion == "calm"


@pytest.mark.parametrize(("text", "speed"), [
    ("Talk very slowly please", 0.75),
    ("speak slowly and clearly", 0.88),
    ("read this quickly", 1.12),
    ("very fast, like an auctioneer", 1.25),
    ("don't speak slowly", 1.0),
    ("slowly at first, then quickly", 0.88),
])
def test_rule4_speed_words_multiply_speed(text: str, speed: float) -> None:
    assert parse_instructions(text).speed == speed


def test_no_instructions_change_nothing() -> None:
    assert parse_instructions(None) == StyleHints() == parse_instructions("Use a British accent.")
