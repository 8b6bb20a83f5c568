"""Ratio triggers decide on enough requests: the window reaches back for evidence, or stays unmeasured."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions.breaches import MetricSample, classify_breaches
from llm_release.policy import Trigger

M = 60.0  # one minute = 60 s (unscaled)

ERROR_SUSTAINED = Trigger(
    name="error_rate_sustained_5min", metric="error_rate", op=">", threshold=0.025, evaluation="sustained",
    minutes=5, ratio_of={"numerator": "errors", "denominator": "requests"}, min_count=20, action="rollback",
)
ERROR_WINDOW = Trigger(
    name="error_rate_10min_window", metric="error_rate", op=">", threshold=0.015, evaluation="window",
    minutes=10, ratio_of={"numerator": "errors", "denominator": "requests"}, min_count=20, action="pause",
)


def windows(counts: list[tuple[float, float]], width: float = M) -> list[MetricSample]:
    """Abutting windows of ``width`` seconds with (requests, errors) each."""
    return [
        MetricSample(ts=(i + 1) * width, start_ts=i * width,
                     metrics={"requests": r, "errors": e, "error_rate": (e / r) if r else None})
        for i, (r, e) in enumerate(counts)
    ]


def test_one_error_in_two_requests_is_not_an_error_rate() -> None:
    verdict = classify_breaches([ERROR_SUSTAINED, ERROR_WINDOW], windows([(1, 0)] * 5 + [(2, 1)]), M)
    assert verdict.action == "ok"
    assert set(verdict.unmeasured) == {"error_rate_sustained_5min", "error_rate_10min_window"}


def test_the_window_reaches_back_until_it_has_enough_requests() -> None:
    # 3 requests a minute, 2 failing: 5 minutes hold only 15 requests, so the rate is taken over 7.
    # The first evaluation with 20 requests comes at minute 7; "sustained for 5 minutes" then needs the
    # breach at every evaluation up to minute 11.
    assert classify_breaches([ERROR_SUSTAINED], windows([(3, 2)] * 10), M).action == "ok"
    verdict = classify_breaches([ERROR_SUSTAINED], windows([(3, 2)] * 11), M)
    assert verdict.action == "rollback"
    assert "14/21 over 7 min" in verdict.hits[0].detail


def test_sustained_needs_history_covering_its_minutes() -> None:
    # plenty of requests, all failing, but only 2 minutes of history: not sustained for 5 minutes yet
    verdict = classify_breaches([ERROR_SUSTAINED], windows([(100, 50)] * 2), M)
    assert verdict.action == "ok" and verdict.hits == []


def test_a_clean_recent_window_outweighs_nothing_when_it_has_the_evidence() -> None:
    # old failures fall out of the 5-minute span once the recent minutes hold >= 20 requests
    verdict = classify_breaches([ERROR_SUSTAINED], windows([(50, 50)] * 5 + [(30, 0)] * 5), M)
    assert verdict.action == "ok"


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=6))
def test_never_a_hit_on_fewer_than_min_count_requests(pairs: list[tuple[int, int]]) -> None:
    counts = [(float(r), float(min(e, r))) for r, e in pairs]  # at most 18 requests in total
    verdict = classify_breaches([ERROR_SUSTAINED, ERROR_WINDOW], windows(counts), M)
    assert verdict.hits == []


def test_windows_without_requests_are_fresh_counts_not_a_stale_rate() -> None:
    """A thin canary serves no request in many short windows: its error rate is None there, but the
    counts (zero requests) are a fresh measurement, so the rate trigger reaches back for evidence
    instead of calling the whole trigger stale (which stopped the dwell clock in compressed time)."""
    history = windows([(400, 0)] + [(0, 0)] * 200)  # 200 empty minutes after the last request
    verdict = classify_breaches([ERROR_WINDOW], history, M, now=history[-1].ts)
    assert "error_rate_10min_window" not in verdict.unmeasured
    assert verdict.action == "ok"
