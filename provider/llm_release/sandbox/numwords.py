"""Numbers as the sandbox bot writes them: digits ("1,200", "$6.95", "20%") or words ("twenty-five").

The bot's phrasings and its wrong-number fault write some numbers out in words, so both need one way to
find the numbers of a text by value and one way to spell a number. Small on purpose: whole numbers up
to the thousands are enough for the knowledge base, and a number it cannot spell stays in digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_WORD_VALUE = {word: value for value, word in enumerate(_UNITS)} | {
    word: 20 + 10 * i for i, word in enumerate(_TENS)
}
_SCALE = {"hundred": 100, "thousand": 1000}

_WORD = "|".join(sorted((*_WORD_VALUE, *_SCALE), key=len, reverse=True))
_WORD_NUMBER = rf"(?:{_WORD})(?:[- ](?:{_WORD}))*"
NUMBER_RE = re.compile(
    rf"(?P<digits>\$?\d+(?:,\d{{3}})*(?:\.\d+)?%?)|\b(?P<words>{_WORD_NUMBER})\b", re.IGNORECASE
)
"""A number in digits (with an optional ``$`` before or ``%`` after) or in words."""


@dataclass(frozen=True)
class NumberToken:
    """One number found in a text: where it is, what it says and its value."""

    start: int
    end: int
    text: str
    value: float
    spelled: bool


def words_value(text: str) -> int:
    """The value of a number written in words ("twenty-four" -> 24, "one hundred five" -> 105)."""
    total, current = 0, 0
    for word in re.split(r"[- ]+", text.lower()):
        if word in ("", "and"):
            continue
        if word in _WORD_VALUE:
            current += _WORD_VALUE[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            raise ValueError(f"not a number word: {word!r} in {text!r}")
    return total + current


def find_numbers(text: str) -> list[NumberToken]:
    """Every number of ``text`` in order, digits and words alike."""
    tokens: list[NumberToken] = []
    for match in NUMBER_RE.finditer(text):
        if match.group("digits"):
            raw = match.group("digits")
            value = float(raw.strip("$%").replace(",", ""))
            tokens.append(NumberToken(match.start(), match.end(), raw, value, False))
        else:
            raw = match.group("words")
            tokens.append(NumberToken(match.start(), match.end(), raw, float(words_value(raw)), True))
    return tokens


def number_values(text: str) -> set[float]:
    """The values of every number in ``text``; a range "3-5" gives 3 and 5."""
    return {token.value for token in find_numbers(text)}


def spell(value: int) -> str:
    """``value`` (0..9999) in words: 24 -> "twenty-four", 1200 -> "one thousand two hundred"."""
    if not 0 <= value <= 9999:
        raise ValueError(f"can only spell 0..9999, got {value}")
    if value < 20:
        return _UNITS[value]
    if value < 100:
        tens, unit = divmod(value, 10)
        return _TENS[tens - 2] + (f"-{_UNITS[unit]}" if unit else "")
    if value < 1000:
        hundreds, rest = divmod(value, 100)
        return f"{_UNITS[hundreds]} hundred" + (f" {spell(rest)}" if rest else "")
    thousands, rest = divmod(value, 1000)
    return f"{_UNITS[thousands]} thousand" + (f" {spell(rest)}" if rest else "")
