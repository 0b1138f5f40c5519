"""English number words (cardinals, ordinals, decimals, years); pure functions.

``cardinal(1234567)`` -> "one million two hundred thirty-four thousand five hundred sixty-seven"
(American style: no "and"). ``ordinal(23)`` -> "twenty-third". ``year(1999)`` ->
"nineteen ninety-nine", ``year(2005)`` -> "two thousand five", ``year(2024)`` ->
"twenty twenty-four". ``decimal("3.14")`` -> "three point one four".

Limits: integers below 10**18; beyond that digits are read one by one.
"""

from __future__ import annotations

__all__ = ["cardinal", "decimal", "digits", "ordinal", "year"]

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**15, "quadrillion"), (10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORD_IRREGULAR = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}


def _below_1000(n: int) -> str:
    words: list[str] = []
    if n >= 100:
        words.append(f"{_ONES[n // 100]} hundred")
        n %= 100
    if n >= 20:
        tens = _TENS[n // 10]
        words.append(f"{tens}-{_ONES[n % 10]}" if n % 10 else tens)
    elif n or not words:
        words.append(_ONES[n])
    return " ".join(words)


def digits(s: str) -> str:
    return " ".join(_ONES[int(c)] for c in s if c.isdigit())


def cardinal(n: int) -> str:
    if n < 0:
        return f"minus {cardinal(-n)}"
    if n >= 10**18:
        return digits(str(n))
    if n < 1000:
        return _below_1000(n)
    words: list[str] = []
    for value, name in _SCALES:
        if n >= value:
            words.append(f"{_below_1000(n // value)} {name}")
            n %= value
    if n:
        words.append(_below_1000(n))
    return " ".join(words)


def ordinal(n: int) -> str:
    words = cardinal(n)
    head, sep, last = words.rpartition(" ")
    pre, dash, unit = last.rpartition("-")
    if unit in _ORD_IRREGULAR:
        unit = _ORD_IRREGULAR[unit]
    elif unit.endswith("y"):
        unit = unit[:-1] + "ieth"
    else:
        unit += "th"
    return f"{head}{sep}{pre}{dash}{unit}"


def year(n: int) -> str:
    if 2000 <= n <= 2009 or n % 1000 == 0 or not 1000 <= n <= 9999:
        return cardinal(n)
    hi, lo = divmod(n, 100)
    if lo == 0:
        return f"{cardinal(hi)} hundred"
    if lo < 10:
        return f"{cardinal(hi)} oh {_ONES[lo]}"
    return f"{cardinal(hi)} {cardinal(lo)}"


def decimal(s: str) -> str:
    """A number written with an optional sign, thousands commas and a decimal point."""
    s = s.replace(",", "")
    neg = s.startswith("-")
    s = s.lstrip("+-")
    whole, _, frac = s.partition(".")
    out = cardinal(int(whole or "0"))
    if frac:
        out += " point " + digits(frac)
    return f"minus {out}" if neg else out
