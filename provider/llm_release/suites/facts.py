"""Literal facts and quantities in support answers: normalised matching and extraction.

Support answers live or die by their numbers ("30 days", "$25", "5-10 business days"), so the judge
checks them literally rather than by word overlap. Two jobs:

* ``contains_fact(text, fact)``: does the answer state this key fact? Both sides are normalised first
  (case, "$25.00" -> "$25", "1,200" -> "1200", "thirty" -> "30", "30-day" -> "30 day", "5 to 10" ->
  "5-10", plural units -> singular, punctuation -> spaces) and the fact must occur as a whole-token run.
* ``extract_quantities(text)``: money amounts, percentages, durations and other standalone numbers, each
  as a ``Quantity`` that compares by kind, unit and value. A quantity in a response that the grounding
  text does not contain is what the judge calls a hallucination.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}
_UNIT_WORDS = r"(?:business |working )?(?:day|hour|minute|second|week|month|year|percent|dollar|%)"
_UNIT_AHEAD = rf"(?=[\s-]+{_UNIT_WORDS})"
# Number words count only before a unit ("thirty days"): "one of our agents" is not a quantity.
_NUMBER_WORD_RE = re.compile(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b" + _UNIT_AHEAD, re.IGNORECASE)

# Units are matched in their singular form after normalisation; the order matters (longest first).
DURATION_UNITS = ("business day", "working day", "minute", "second", "hour", "day", "week", "month", "year")
_UNIT_PLURAL_RE = re.compile(r"\b(business day|working day|minute|second|hour|day|week|month|year)s\b")

_NUM = r"\d+(?:\.\d+)?"


def _number_words_to_digits(text: str) -> str:
    return _NUMBER_WORD_RE.sub(lambda m: str(_NUMBER_WORDS[m.group(1).lower()]), text)


def normalize_text(text: str) -> str:
    """Lower-case, canonical numbers/units/ranges, punctuation to spaces, single spaces."""
    text = text.lower().replace("\u2013", "-").replace("\u2014", "-").replace("\u00a0", " ")
    text = _number_words_to_digits(text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,200 -> 1200
    text = re.sub(r"\$\s+(?=\d)", "$", text)  # "$ 25" -> "$25"
    text = re.sub(r"(\$\d+)\.00\b", r"\1", text)  # "$25.00" -> "$25"
    text = re.sub(r"(\d)\s*percent\b", r"\1%", text)
    # "5 to 10 business days", "between 3 and 5 days" -> "5-10 ...", "3-5 ..." (only before a unit)
    text = re.sub(rf"({_NUM})\s*(?:-|to|and)\s*({_NUM})(?=\s*{_UNIT_WORDS})", r"\1-\2", text)
    text = re.sub(r"(\d)-(?=[a-z])", r"\1 ", text)  # 30-day -> 30 day
    text = _UNIT_PLURAL_RE.sub(r"\1", text)
    # Keep characters that carry meaning in facts: $ % . (decimals) > (menu paths) @ & -
    text = re.sub(r"[^a-z0-9$%.>@&\-\s]", " ", text)
    text = re.sub(r"(?<!\d)\.|\.(?!\d)", " ", text)  # a dot only survives inside a number
    return re.sub(r"\s+", " ", text).strip()


def contains_fact(text: str, fact: str) -> bool:
    """True when the normalised fact occurs in the normalised text as a whole-token run."""
    needle = normalize_text(fact)
    if not needle:
        return False
    haystack = f" {normalize_text(text)} "
    return f" {needle} " in haystack


@dataclass(frozen=True, order=True)
class Quantity:
    """A checkable number in an answer. ``kind`` is money, percent, duration or number."""

    kind: str
    value: str
    unit: str = ""

    def __str__(self) -> str:
        if self.kind == "money":
            return f"${self.value}"
        if self.kind == "percent":
            return f"{self.value}%"
        return f"{self.value} {self.unit}".strip()


_MONEY_RE = re.compile(rf"\$({_NUM}(?:-\$?{_NUM})?)|(?<![\w.])({_NUM})\s*(?:dollars|usd)\b")
_PERCENT_RE = re.compile(rf"(?<![\w.])({_NUM}(?:-{_NUM})?)%")
_DURATION_RE = re.compile(
    rf"(?<![\w.$])({_NUM}(?:-{_NUM})?)\s+(" + "|".join(DURATION_UNITS) + r")\b"
)
# A bare number: not glued to letters (AES-256, 2FA, 8am), not a list marker at the start of a line.
_BARE_RE = re.compile(rf"(?<![\w.$%\-])({_NUM}(?:-{_NUM})?)(?![\w%]|\.\d|-[a-z])")
_LIST_MARKER_RE = re.compile(r"(?m)^\s*\d+[.)]\s")


def _canonical(value: str) -> str:
    parts = []
    for part in value.replace("$", "").split("-"):
        number = float(part)
        parts.append(str(int(number)) if number.is_integer() else f"{number:g}")
    return "-".join(parts)


def extract_quantities(text: str) -> set[Quantity]:
    """Money, percentages, durations and other standalone numbers stated in ``text``."""
    raw = _LIST_MARKER_RE.sub(" ", text)
    norm = normalize_text(raw)
    found: set[Quantity] = set()
    spans: list[tuple[int, int]] = []

    def taken(start: int, end: int) -> bool:
        return any(start < e and s < end for s, e in spans)

    for match in _MONEY_RE.finditer(norm):
        found.add(Quantity("money", _canonical(match.group(1) or match.group(2))))
        spans.append(match.span())
    for match in _PERCENT_RE.finditer(norm):
        if not taken(*match.span()):
            found.add(Quantity("percent", _canonical(match.group(1))))
            spans.append(match.span())
    for match in _DURATION_RE.finditer(norm):
        if not taken(*match.span()):
            unit = "business day" if match.group(2) == "working day" else match.group(2)
            found.add(Quantity("duration", _canonical(match.group(1)), unit))
            spans.append(match.span())
    for match in _BARE_RE.finditer(norm):
        if not taken(*match.span()):
            found.add(Quantity("number", _canonical(match.group(1))))
    return found


def numeric_values(text: str) -> set[str]:
    """Every number written anywhere in ``text`` (also inside tokens like AES-256), canonicalised."""
    norm = normalize_text(text)
    values = {_canonical(m.group(0)) for m in re.finditer(_NUM, norm)}
    values |= {_canonical(m.group(0)) for m in re.finditer(rf"{_NUM}-{_NUM}", norm)}
    return values


def unsupported_quantities(response: str, grounding: list[str]) -> list[Quantity]:
    """Quantities in ``response`` that no grounding text supports, sorted.

    Money, percentages and durations must match a grounding quantity of the same kind, unit and value
    ("30 days" does not support "30%" or "$30"). A bare number is supported by the same number anywhere
    in the grounding, since it has no unit to contradict.
    """
    allowed: set[Quantity] = set()
    values: set[str] = set()
    for text in grounding:
        allowed |= extract_quantities(text)
        values |= numeric_values(text)
    missing = []
    for quantity in extract_quantities(response):
        if quantity in allowed:
            continue
        if quantity.kind == "number" and quantity.value in values:
            continue
        missing.append(quantity)
    return sorted(missing)
