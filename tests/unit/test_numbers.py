"""Quantity normalisation: the forms support answers use, and the tokens that only look like numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.suites.numbers import (
    conflicts_with,
    parse_quantities,
    same_quantity,
    supported_by,
    words_to_number,
)


def one(text: str):
    found = parse_quantities(text)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("text", ["$60", "$60.00", "60 dollars", "USD 60", "60 USD", "sixty bucks", "sixty dollars"])
def test_money_forms_are_sixty_dollars(text):
    q = one(f"We can add {text} to your account.")
    assert (q.kind, q.value, q.value_hi, q.unit) == ("money", 60.0, None, "USD")
    assert same_quantity(q, one("$60"))


def test_other_currencies():
    assert (one("a hundred quid").value, one("a hundred quid").unit) == (100.0, "GBP")
    assert (one("€40").value, one("€40").unit) == (40.0, "EUR")
    assert not same_quantity(one("€40"), one("$40"))


@pytest.mark.parametrize("text,value", [("thirty", 30), ("fifty-five", 55), ("a hundred", 100),
                                        ("one hundred and twenty", 120), ("twelve", 12), ("two thousand", 2000)])
def test_spelled_out_numbers(text, value):
    assert words_to_number(text) == value
    q = one(f"within {text} days")
    assert (q.kind, q.value, q.unit) == ("duration", value, "day")


@pytest.mark.parametrize("text", ["5-10 business days", "5 to 10 business days", "between 5 and 10 business days",
                                  "five to ten business days"])
def test_ranges(text):
    q = one(f"Refunds arrive in {text}.")
    assert (q.kind, q.value, q.value_hi, q.unit) == ("duration", 5.0, 10.0, "business day")


def test_up_to_is_an_upper_bound():
    q = one("Support can add a credit of up to $50.")
    assert (q.kind, q.value, q.value_hi) == ("money", 0.0, 50.0)
    assert supported_by(q, [one("$50")])


@pytest.mark.parametrize(
    "text", ["24/7", "24x7", "around the clock", "round-the-clock", "24 hours a day, 7 days a week"])
def test_availability_is_one_quantity(text):
    q = one(f"Our chat is open {text}.")
    assert q.kind == "availability"


def test_durations_normalise_units():
    assert same_quantity(one("2 weeks"), one("14 days"))
    assert same_quantity(one("48 hours"), one("two days"))
    assert same_quantity(one("thirty days"), one("30-day"))
    assert not same_quantity(one("10 business days"), one("10 days"))
    assert not same_quantity(one("30 days"), one("30%"))


@pytest.mark.parametrize("text", [
    "Call +1 555 123 4567 today.", "Update to version 4.2.1.", "We hold SOC 2 and ISO 27001.", "AES-256 at rest.",
    "TLS 1.2 or higher.", "Turn on 2FA.", "your 1st invoice", "the second payment", "one of our agents",
    "a one-time code", "two-factor authentication", "HTTP 429", "section 9 of the Terms", "v2 of the API",
])
def test_name_like_tokens_are_not_quantities(text):
    assert parse_quantities(text) == []


def test_percent_and_counts_and_clock():
    kinds = [(q.kind, q.value, q.value_hi) for q in parse_quantities(
        "Saves 20% or ten percent; 600 requests per minute; open 8am-8pm; retry 3 times.")]
    assert kinds == [("percent", 20.0, None), ("percent", 10.0, None), ("count", 600.0, None),
                     ("count", 8.0, 20.0), ("count", 3.0, None)]


def test_spans_point_at_the_text():
    text = "Refunds within thirty days; credits up to fifty bucks."
    for q in parse_quantities(text):
        assert text[q.start:q.end] == q.text


def test_conflict_is_a_different_value_of_the_same_dimension():
    evidence = parse_quantities("Refunds within 30 days; 5-10 business days to arrive.")
    assert conflicts_with(one("45 days"), evidence)
    assert not conflicts_with(one("one month"), evidence)  # a month counts as 30 days
    assert supported_by(one("ten business days"), evidence)
    assert not conflicts_with(one("$20"), evidence)  # no money in the evidence: unsupported, not conflicting


def test_bad_input_is_a_type_error():
    with pytest.raises(TypeError):
        parse_quantities(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown word"):
        words_to_number("thirty banana")


_SMALL = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _spell(n: int) -> str:
    if n < 10:
        return _SMALL[n]
    if n < 20:
        return _TEENS[n - 10]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else f"-{_SMALL[n % 10]}")
    rest = n % 100
    return f"{_SMALL[n // 100]} hundred" + ("" if rest == 0 else f" and {_spell(rest)}")


@given(st.integers(min_value=2, max_value=999))
def test_spelled_and_digit_durations_agree(n):
    spelled = one(f"within {_spell(n)} days")
    digits = one(f"within {n} days")
    assert same_quantity(spelled, digits)


@given(st.integers(min_value=1, max_value=5000), st.integers(min_value=0, max_value=99))
def test_money_value_round_trips(dollars, cents):
    q = one(f"a charge of ${dollars:,}.{cents:02d} today")
    assert q.kind == "money" and abs(q.value - (dollars + cents / 100)) < 1e-9


@given(st.integers(min_value=1, max_value=60), st.sampled_from(["day", "week", "month", "year", "hour", "minute"]))
def test_same_quantity_is_reflexive_and_symmetric(n, unit):
    a = one(f"{n} {unit}s")
    b = one(f"{n} {unit}s")
    assert same_quantity(a, b) and same_quantity(b, a)
