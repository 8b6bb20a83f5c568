"""Quantities in support text, normalised so that the judge and the policy checker compare meanings.

A support answer states money ("$60", "sixty bucks", "USD 60"), percentages, durations ("thirty days",
"2 weeks", "5-10 business days"), availability ("24/7", "around the clock") and plain counts. Written
forms vary; the facts do not. ``parse_quantities`` finds each quantity with its span and a canonical
value, and ``same_quantity`` says whether two of them state the same thing (2 weeks == 14 days, money
by value). Tokens that look like numbers but are names are left out on purpose: phone numbers, version
numbers ("version 4.2", "TLS 1.2"), certifications ("SOC 2", "ISO 27001"), "AES-256", "2FA", ordinals
("1st", "second") and compounds such as "one-time" or "two-factor". A lone "one" is not a count
("one of our agents"); with a unit it is ("one hour").

Pure functions, no third-party imports: the policy checker copies this module as is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

QuantityKind = Literal["money", "percent", "duration", "count", "availability"]
KINDS: tuple[str, ...] = ("money", "percent", "duration", "count", "availability")


@dataclass(frozen=True)
class Quantity:
    """One stated quantity. ``value_hi`` is the upper end of a range ("5-10", "up to 50": lower end 0).

    ``unit``: currency code for money (USD, EUR, GBP), "%" for percent, the canonical duration unit
    (day, business day, week, month, year, hour, minute, second), "clock" for a time of day (a count
    in 24-hour hours), "" for other counts, "24/7" for availability. ``start``/``end`` index ``text``'s
    span in the parsed string.
    """

    kind: QuantityKind
    value: float
    value_hi: float | None
    unit: str
    start: int
    end: int
    text: str

    def __str__(self) -> str:
        def fmt(number: float) -> str:
            return str(int(number)) if float(number).is_integer() else f"{number:g}"

        span = fmt(self.value) if self.value_hi is None else f"{fmt(self.value)}-{fmt(self.value_hi)}"
        if self.kind == "money":
            return f"{self.unit} {span}"
        if self.kind == "percent":
            return f"{span}%"
        if self.kind == "availability":
            return "24/7"
        return f"{span} {self.unit}".strip()


# ------------------------------------------------------------------ number words
_UNITS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9}
_TEENS = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_WORD_VALUES = {"zero": 0, "a": 1, "an": 1, **_UNITS, **_TEENS, **_TENS}
_UNITS_RE = "|".join(_UNITS)
_SMALL_RE = rf"(?:(?:{'|'.join(_TENS)})(?:[\s-](?:{_UNITS_RE}))?|{'|'.join(_TEENS)}|{_UNITS_RE}|zero)"
_WORD_NUMBER_RE = rf"(?:(?:{_SMALL_RE}|a|an)\s+(?:hundred|thousand)(?:\s+(?:and\s+)?{_SMALL_RE})?|{_SMALL_RE})"
_DIGIT_NUMBER_RE = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_NUMBER_RE = re.compile(
    rf"(?<![\w.,])(?:(?P<digits>{_DIGIT_NUMBER_RE})|(?P<words>\b{_WORD_NUMBER_RE}\b))(?![\w]|\.\d|,\d)",
    re.IGNORECASE,
)


def words_to_number(phrase: str) -> float:
    """"fifty-five" -> 55, "a hundred" -> 100, "one hundred and twenty" -> 120 (ValueError otherwise)."""
    total = 0
    current = 0
    tokens = [t for t in re.split(r"[\s-]+", phrase.lower().strip()) if t and t != "and"]
    if not tokens:
        raise ValueError(f"not a number phrase: {phrase!r}")
    for token in tokens:
        if token in _WORD_VALUES:
            current += _WORD_VALUES[token]
        elif token == "hundred":
            current = max(current, 1) * 100
        elif token == "thousand":
            total += max(current, 1) * 1000
            current = 0
        else:
            raise ValueError(f"not a number phrase: {phrase!r} (unknown word {token!r})")
    return float(total + current)


def _number_value(match: re.Match[str]) -> float:
    if match.group("digits") is not None:
        return float(match.group("digits").replace(",", ""))
    return words_to_number(match.group("words"))


# ------------------------------------------------------------------ context patterns
_CURRENCY_PREFIX = re.compile(r"(?:US\$|\$|€|£|\b(?:USD|EUR|GBP)\s?)\s*$", re.IGNORECASE)
_CURRENCY_OF_PREFIX = {"$": "USD", "us$": "USD", "usd": "USD", "€": "EUR", "eur": "EUR", "£": "GBP", "gbp": "GBP"}
_CURRENCY_SUFFIX = re.compile(
    r"^\s*(?P<cur>dollars?|usd|bucks?|quid|euros?|eur|pounds?(?: sterling)?|gbp)\b", re.IGNORECASE
)
_CURRENCY_OF_SUFFIX = {
    "dollar": "USD", "dollars": "USD", "usd": "USD", "buck": "USD", "bucks": "USD", "quid": "GBP",
    "euro": "EUR", "euros": "EUR", "eur": "EUR", "pound": "GBP", "pounds": "GBP", "pounds sterling": "GBP",
    "gbp": "GBP",
}
_PERCENT_SUFFIX = re.compile(r"^\s*(?:%|percent\b|per cent\b|pct\b)", re.IGNORECASE)
_DURATION_SUFFIX = re.compile(
    r"^(?:\s+|\s*-\s*)(?P<qual>(?:business|working|calendar)[\s-]+)?"
    r"(?P<unit>days?|weeks?|wks?|months?|mos?|years?|yrs?|hours?|hrs?|h|minutes?|mins?|seconds?|secs?)\b",
    re.IGNORECASE,
)
_DURATION_CANON = {
    "day": "day", "days": "day", "week": "week", "weeks": "week", "wk": "week", "wks": "week",
    "month": "month", "months": "month", "mo": "month", "mos": "month", "year": "year", "years": "year",
    "yr": "year", "yrs": "year", "hour": "hour", "hours": "hour", "hr": "hour", "hrs": "hour", "h": "hour",
    "minute": "minute", "minutes": "minute", "min": "minute", "mins": "minute", "second": "second",
    "seconds": "second", "sec": "second", "secs": "second",
}
_DAYS_PER_UNIT = {
    "second": 1 / 86400, "minute": 1 / 1440, "hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.0, "year": 365.0,
}
_RANGE_JOIN = re.compile(r"^\s*(?:-|\u2013|\u2014|to|through|thru)\s*(?:US\$|\$|€|£)?\s*$", re.IGNORECASE)
_AND_JOIN = re.compile(r"^\s*and\s*(?:US\$|\$|€|£)?\s*$", re.IGNORECASE)
_BETWEEN_BEFORE = re.compile(r"\b(?:between|from)\s*(?:US\$|\$|€|£)?\s*$", re.IGNORECASE)
_UP_TO_BEFORE = re.compile(
    r"\b(?:up to|no more than|not more than|at most|a maximum of|maximum of|max(?:imum)?\.?|as much as)"
    r"\s*(?:US\$|\$|€|£|(?:USD|EUR|GBP)\s?)?\s*$",
    re.IGNORECASE,
)
# Names that carry a number: "SOC 2", "ISO 27001", "TLS 1.2", "HTTP 429", "version 4.2", "section 9".
_NAME_BEFORE = re.compile(
    r"(?:\b(?:version|v|ver|release|build|section|chapter|article|clause|step|tier|level|"
    r"type|option|model|iOS|iPhone|Android|Windows|macOS|Chrome|Firefox|Safari|Python|Node|room|suite|"
    r"ext|extension|no|number|#|ticket|case|order|reference)\.?)[\s#-]*$",
    re.IGNORECASE,
)
_NAME_BEFORE_CASE_SENSITIVE = re.compile(r"\b[A-Z]{2,}[A-Za-z]*[\s#-]*$")
_LETTER_HYPHEN_BEFORE = re.compile(r"[A-Za-z]-$")
_COMPOUND_AFTER = re.compile(r"^-(?!(?:day|week|month|year|hour|minute|second|business|working)s?\b)[A-Za-z]")
_PHONE_RE = re.compile(
    r"(?<![\w.])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{2,4}(?:[\s.-]\d{2,4}){2,}(?![\w.]\d)"
    r"|(?<![\w.])\+\d[\d\s.-]{6,}\d"
    r"|\b1-8\d\d-[A-Z0-9-]{7,}\b"
)
_VERSION_RE = re.compile(r"(?<![\w.])v?\d+(?:\.\d+){2,}\b|\bv\d+(?:\.\d+)?\b", re.IGNORECASE)
_AVAILABILITY_RE = re.compile(
    r"\b24\s*/\s*7(?:\s*/\s*365)?\b|\b24\s*x\s*7\b|\b(?:24|twenty[\s-]four)\s+hours\s+a\s+day(?:,?\s+(?:7|seven)\s+days\s+a\s+week)?\b"
    r"|\b(?:a)?round[\s-]the[\s-]clock\b|\b24\s*/\s*365\b",
    re.IGNORECASE,
)
_CLOCK_RE = re.compile(
    r"(?<![\w.:])(?P<h1>\d{1,2})(?::(?P<m1>\d{2}))?\s*(?P<p1>a\.?m\.?|p\.?m\.?)?"
    r"\s*(?:-|\u2013|to)\s*(?P<h2>\d{1,2})(?::(?P<m2>\d{2}))?\s*(?P<p2>a\.?m\.?|p\.?m\.?)(?![\w])"
    r"|(?<![\w.:])(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<p>a\.?m\.?|p\.?m\.?)(?![\w])"
    r"|(?<![\w.:])(?P<hh>\d{1,2}):(?P<mm>\d{2})(?![\w:])",
    re.IGNORECASE,
)


def _clock_hours(hour: str, minute: str | None, period: str | None) -> float:
    value = int(hour) % 24
    if period:
        p = period.lower().replace(".", "")
        value = value % 12 + (12 if p == "pm" else 0)
    return value + (int(minute) / 60 if minute else 0.0)


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


@dataclass
class _Token:
    start: int
    end: int
    value: float
    is_word: bool
    text: str


def _number_tokens(text: str, blocked: list[tuple[int, int]]) -> list[_Token]:
    tokens = []
    for match in _NUMBER_RE.finditer(text):
        start, end = match.span()
        if _overlaps(start, end, blocked):
            continue
        before = text[:start]
        after = text[end:]
        is_word = match.group("words") is not None
        money = bool(_CURRENCY_PREFIX.search(before))
        if not is_word and not money and (_LETTER_HYPHEN_BEFORE.search(before)
                                          or _NAME_BEFORE_CASE_SENSITIVE.search(before)):
            continue  # AES-256, SOC 2, TLS 1.2, HTTP 429
        if not is_word and not money and _NAME_BEFORE.search(before):
            continue  # version 4.2, section 9
        if _COMPOUND_AFTER.search(after):
            continue  # one-time, two-factor, 3-D
        tokens.append(_Token(start, end, _number_value(match), is_word, match.group(0)))
    return tokens


def parse_quantities(text: str) -> list[Quantity]:
    """Every quantity stated in ``text``, in order of appearance (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    found: list[Quantity] = []
    blocked: list[tuple[int, int]] = []
    for match in _AVAILABILITY_RE.finditer(text):
        found.append(Quantity("availability", 168.0, None, "24/7", match.start(), match.end(), match.group(0)))
        blocked.append(match.span())
    for pattern in (_PHONE_RE, _VERSION_RE):
        for match in pattern.finditer(text):
            if not _overlaps(*match.span(), blocked):
                blocked.append(match.span())
    for match in _CLOCK_RE.finditer(text):
        if _overlaps(*match.span(), blocked):
            continue
        if match.group("h1") is not None:
            p2 = match.group("p2")
            hi = _clock_hours(match.group("h2"), match.group("m2"), p2)
            lo = _clock_hours(match.group("h1"), match.group("m1"), match.group("p1") or p2)
            found.append(Quantity("count", lo, hi, "clock", match.start(), match.end(), match.group(0)))
        elif match.group("h") is not None:
            value = _clock_hours(match.group("h"), match.group("m"), match.group("p"))
            found.append(Quantity("count", value, None, "clock", match.start(), match.end(), match.group(0)))
        else:
            if int(match.group("hh")) > 23 or int(match.group("mm")) > 59:
                continue
            value = _clock_hours(match.group("hh"), match.group("mm"), None)
            found.append(Quantity("count", value, None, "clock", match.start(), match.end(), match.group(0)))
        blocked.append(match.span())

    tokens = _number_tokens(text, blocked)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        start, end = token.start, token.end
        value, value_hi = token.value, None
        before = text[:start]
        currency = None
        prefix = _CURRENCY_PREFIX.search(before)
        if prefix:
            currency = _CURRENCY_OF_PREFIX.get(prefix.group(0).strip().lower())
            start = prefix.start()
        # A range with the next number: "5-10", "5 to 10", "between 5 and 10", "$5 to $10".
        consumed = 1
        if index + 1 < len(tokens):
            nxt = tokens[index + 1]
            gap = text[token.end:nxt.start]
            joined = _RANGE_JOIN.match(gap) or (_AND_JOIN.match(gap) and _BETWEEN_BEFORE.search(
                text[:prefix.start() if prefix else token.start]))
            if joined and nxt.value >= value and (not gap.strip().startswith("-") or not (token.is_word or nxt.is_word)
                                                    or gap.strip() == "-"):
                value_hi = nxt.value
                end = nxt.end
                consumed = 2
        lead = text[:start]
        if value_hi is None and _UP_TO_BEFORE.search(before):
            value, value_hi = 0.0, token.value
        between = _BETWEEN_BEFORE.search(lead)
        if between and value_hi is not None:
            start = between.start()
        after = text[end:]
        kind: QuantityKind | None = None
        unit = ""
        suffix = _CURRENCY_SUFFIX.match(after)
        if currency is not None or suffix:
            kind = "money"
            if suffix:
                currency = currency or _CURRENCY_OF_SUFFIX[re.sub(r"\s+", " ", suffix.group("cur").lower())]
                end += suffix.end()
            unit = currency or "USD"
        elif (percent := _PERCENT_SUFFIX.match(after)) is not None:
            kind, unit = "percent", "%"
            end += percent.end()
        elif (duration := _DURATION_SUFFIX.match(after)) is not None:
            raw_unit = duration.group("unit").lower()
            if raw_unit == "h" and after[duration.end():duration.end() + 1].isalpha():
                duration = None
            else:
                kind = "duration"
                unit = _DURATION_CANON[raw_unit]
                qual = (duration.group("qual") or "").strip().lower()
                if unit == "day" and qual.startswith(("business", "working")):
                    unit = "business day"
                end += duration.end()
        if kind is None:
            # A bare count. "one"/"a" alone and "zero" are words, not facts ("one of our agents").
            if token.is_word and token.value <= 1 and value_hi is None:
                index += 1
                continue
            kind = "count"
        found.append(Quantity(kind, float(value), None if value_hi is None else float(value_hi), unit, start, end,
                              text[start:end]))
        index += consumed
    found.sort(key=lambda q: (q.start, q.end))
    return found


# ------------------------------------------------------------------ comparison
def _canonical(quantity: Quantity) -> tuple[str, str, float, float | None]:
    if quantity.kind == "duration" and quantity.unit in _DAYS_PER_UNIT:
        factor = _DAYS_PER_UNIT[quantity.unit]
        hi = None if quantity.value_hi is None else quantity.value_hi * factor
        return "duration", "day", quantity.value * factor, hi
    return quantity.kind, quantity.unit, quantity.value, quantity.value_hi


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))


def same_quantity(a: Quantity, b: Quantity) -> bool:
    """Do ``a`` and ``b`` state the same quantity? Units are normalised (2 weeks == 14 days, 48 hours ==
    2 days; business days only equal business days), money compares by value in the same currency,
    ranges compare both ends, every "24/7" is the same availability."""
    kind_a, unit_a, lo_a, hi_a = _canonical(a)
    kind_b, unit_b, lo_b, hi_b = _canonical(b)
    if kind_a != kind_b or unit_a != unit_b:
        return False
    if kind_a == "availability":
        return True
    return _close(lo_a, lo_b) and _close(hi_a, hi_b)


def supported_by(claim: Quantity, evidence: Iterable[Quantity]) -> bool:
    """Is ``claim`` stated by one of the ``evidence`` quantities? Same quantity, or a value that is an end
    of an evidence range ("within 10 business days" is supported by "5-10 business days"; "up to $50"
    by "$50"), or a sub-range of it. A count is also supported by any evidence value equal to it (a
    count has no unit to contradict)."""
    kind_c, unit_c, lo_c, hi_c = _canonical(claim)
    for item in evidence:
        if same_quantity(claim, item):
            return True
        kind_e, unit_e, lo_e, hi_e = _canonical(item)
        if kind_c == "count" and unit_c == "" and (_close(lo_c, lo_e) or _close(lo_c, hi_e)):
            return True
        if kind_c != kind_e or unit_c != unit_e:
            continue
        ends_e = [lo_e] + ([hi_e] if hi_e is not None else [])
        if hi_c is None and any(_close(lo_c, end) for end in ends_e):
            return True
        if hi_c is not None and lo_c == 0.0 and any(_close(hi_c, end) for end in ends_e):
            return True  # "up to 50" and "50"
        if hi_c is not None and hi_e is not None and lo_e - 1e-9 <= lo_c and hi_c <= hi_e + 1e-9:
            return True
    return False


def conflicts_with(claim: Quantity, evidence: Iterable[Quantity]) -> bool:
    """Does ``claim`` state a different value of a kind and unit dimension the evidence states? (A wrong
    number rather than an extra one: "45 days" where the evidence says "30 days".)"""
    kind_c, unit_c, _, _ = _canonical(claim)
    if kind_c in ("availability",) or (kind_c == "count" and unit_c == ""):
        return False
    evidence = list(evidence)
    same_dimension = [q for q in evidence if _canonical(q)[:2] == (kind_c, unit_c)]
    return bool(same_dimension) and not supported_by(claim, same_dimension)
