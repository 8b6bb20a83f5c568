"""Version names with ISO year/week (spec section 8)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions import next_increment, parse_version_name, rejected_tag, version_name
from llm_release.policy import STAGE_IDS


def test_spec_example() -> None:
    # 2025-05-26 is the Monday of ISO week 22 of 2025
    assert version_name("support-llm", date(2025, 5, 26), 3, "production") == "support-llm-2025-W22-3-prod"
    assert version_name("support-llm", date(2025, 5, 26), 3, "staging") == "support-llm-2025-W22-3-shadow"
    assert version_name("support-llm", date(2025, 5, 26), 3, "rejected") == "support-llm-2025-W22-3-rejected"
    assert version_name("support-llm", date(2025, 5, 26), 3, "prod") == "support-llm-2025-W22-3-prod"


def test_iso_year_edges() -> None:
    assert version_name("support-llm", date(2026, 12, 31), 1, "development") == "support-llm-2026-W53-1-dev"
    assert version_name("support-llm", date(2027, 1, 1), 1, "development") == "support-llm-2026-W53-1-dev"
    assert version_name("m", date(2024, 12, 30), 1, "validation") == "m-2025-W01-1-validation"
    assert version_name("m", date(2021, 1, 3), 2, "rolled_back") == "m-2020-W53-2-rolledback"


def test_parse_round_trip_and_errors() -> None:
    parsed = parse_version_name("support-llm-2026-W53-12-preprod")
    assert (parsed.model_type, parsed.iso_year, parsed.iso_week, parsed.increment, parsed.stage) == (
        "support-llm",
        2026,
        53,
        12,
        "preproduction",
    )
    assert parsed.with_stage("production") == "support-llm-2026-W53-12-prod"
    with pytest.raises(ValueError, match="has no week 53"):
        parse_version_name("support-llm-2025-W53-1-prod")
    with pytest.raises(ValueError, match="unknown stage suffix 'live'"):
        parse_version_name("support-llm-2025-W22-1-live")
    with pytest.raises(ValueError, match="not a version name"):
        parse_version_name("support-llm-2025-22-1-prod")
    for bad_inc in (0, -1, True):
        with pytest.raises(ValueError, match="increment"):
            version_name("m", date(2025, 1, 1), bad_inc, "production")
    with pytest.raises(ValueError, match="unknown stage"):
        version_name("m", date(2025, 1, 1), 1, "prodution")
    with pytest.raises(ValueError, match="model_type"):
        version_name("Support_LLM", date(2025, 1, 1), 1, "production")


def test_next_increment_counts_same_iso_week_any_stage() -> None:
    names = [
        "support-llm-2026-W53-1-rejected",
        "support-llm-2026-W53-2-prod",
        "other-2026-W53-7-prod",
        "support-llm-2026-W52-9-prod",
        "garbage",
        "support-llm-2027-W01-5-dev",
    ]
    assert next_increment(names, "support-llm", date(2027, 1, 1)) == 3
    assert next_increment(names, "support-llm", date(2027, 1, 4)) == 6
    assert next_increment([], "support-llm", date(2027, 1, 4)) == 1


def test_rejected_tag() -> None:
    assert (
        rejected_tag(date(2025, 5, 27), "support-llm-2025-W22-3")
        == "REJECTED-2025-05-27-support-llm-2025-W22-3"
    )


types = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,5}){0,3}", fullmatch=True)


@given(
    types,
    st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
    st.integers(min_value=1, max_value=999),
    st.sampled_from([*STAGE_IDS, "rejected", "rolled_back"]),
)
def test_round_trip(model_type: str, when: date, inc: int, stage: str) -> None:
    name = version_name(model_type, when, inc, stage)
    parsed = parse_version_name(name)
    iso = when.isocalendar()
    assert (parsed.model_type, parsed.iso_year, parsed.iso_week, parsed.increment, parsed.stage) == (
        model_type,
        iso.year,
        iso.week,
        inc,
        stage,
    )
    monday = date.fromisocalendar(iso.year, iso.week, 1)
    assert version_name(model_type, monday + timedelta(days=6), inc, stage) == name
