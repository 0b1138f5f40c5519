from __future__ import annotations

import pytest

from voxmesh.text.numbers import cardinal, decimal, digits, ordinal, year


@pytest.mark.parametrize(("n", "words"), [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (42, "forty-two"), (100, "one hundred"),
    (101, "one hundred one"), (999, "nine hundred ninety-nine"), (1000, "one thousand"),
    (1234567, "one million two hundred thirty-four thousand five hundred sixty-seven"),
    (2_000_000_000, "two billion"), (-5, "minus five"),
])
def test_cardinal(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (8, "eighth"), (9, "ninth"), (12, "twelfth"),
    (20, "twentieth"), (21, "twenty-first"), (100, "one hundredth"), (103, "one hundred third"),
])
def test_ordinal(n: int, words: str) -> None:
    assert ordinal(n) == words


@pytest.mark.parametrize(("n", "words"), [
    (1999, "nineteen ninety-nine"), (2005, "two thousand five"), (2024, "twenty twenty-four"),
    (1900, "nineteen hundred"), (1905, "nineteen oh five"), (2000, "two thousand"),
])
def test_year(n: int, words: str) -> None:
    assert year(n) == words


def test_decimal_and_digits() -> None:
    assert decimal("3.14") == "three point one four"
    assert decimal("-0.5") == "minus zero point five"
    assert decimal("1,250") == "one thousand two hundred fifty"
    assert digits("007") == "zero zero seven"
