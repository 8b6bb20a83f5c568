"""Ratio triggers decide on enough requests: the window reaches back for evidence, or stays unmeasured."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions.breaches import MetricSample, classify_breaches
from llm_release.policy import LiveEvidencePolicy, Trigger

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


# --- hourly quality samples: a straddling latest sample may be cleared by the last few, never condemned
HALLUCINATION_HOURLY = Trigger(
    name="hallucination_over_5pct_hourly", metric="hallucination_rate", op=">", threshold=0.05,
    evaluation="sample", ratio_of={"numerator": "hallucinated", "denominator": "judged"}, action="rollback",
)


def hourly(counts: list[tuple[int, int]]) -> list[MetricSample]:
    """Closed hourly samples of (judged, hallucinated)."""
    return [
        MetricSample(ts=(i + 1) * 60 * M, metrics={"judged": j, "hallucinated": h, "hallucination_rate": h / j})
        for i, (j, h) in enumerate(counts)
    ]


def _evidence(pool: int) -> LiveEvidencePolicy:
    return LiveEvidencePolicy(confidence=0.8, clear_with_last_samples=pool)


def test_a_straddling_hourly_sample_is_cleared_by_the_last_samples_pooled() -> None:
    # 3/80 alone straddles 5 % at 80 %; with the three hours before (2/80 each) 9/320 lies below it
    samples = hourly([(80, 2), (80, 2), (80, 2), (80, 3)])
    alone = classify_breaches([HALLUCINATION_HOURLY], samples, M, evidence=_evidence(1), now=samples[-1].ts)
    assert [h.trigger_name for h in alone.inconclusive] == ["hallucination_over_5pct_hourly"]
    pooled = classify_breaches([HALLUCINATION_HOURLY], samples, M, evidence=_evidence(4), now=samples[-1].ts)
    assert pooled.clean == ["hallucination_over_5pct_hourly"] and not pooled.inconclusive


def test_pooled_history_never_condemns_and_never_hides_a_breaching_latest_sample() -> None:
    # clean history does not excuse a latest hour at 12/80
    samples = hourly([(80, 0), (80, 0), (80, 0), (80, 12)])
    verdict = classify_breaches([HALLUCINATION_HOURLY], samples, M, evidence=_evidence(4), now=samples[-1].ts)
    assert verdict.action == "rollback"
    # bad history does not turn a straddling latest hour into a breach: it stays inconclusive
    samples = hourly([(80, 12), (80, 12), (80, 12), (80, 3)])
    verdict = classify_breaches([HALLUCINATION_HOURLY], samples, M, evidence=_evidence(4), now=samples[-1].ts)
    assert verdict.action == "ok" and [h.trigger_name for h in verdict.inconclusive] == [
        "hallucination_over_5pct_hourly"
    ]
    assert "do not clear it either" in verdict.inconclusive[0].detail


@given(st.lists(st.tuples(st.integers(20, 200), st.integers(0, 40)), min_size=1, max_size=6), st.integers(1, 6))
def test_pooling_only_ever_clears(pairs: list[tuple[int, int]], pool: int) -> None:
    samples = hourly([(j, min(h, j)) for j, h in pairs])
    alone = classify_breaches([HALLUCINATION_HOURLY], samples, M, evidence=_evidence(1), now=samples[-1].ts)
    pooled = classify_breaches([HALLUCINATION_HOURLY], samples, M, evidence=_evidence(pool), now=samples[-1].ts)
    assert pooled.action == alone.action  # a breach is the latest sample's alone
    if not alone.inconclusive:
        assert pooled.clean == alone.clean


# --- window rates: a breach must show in the latest tumbling block (each request tested once) -------
ESCALATION_WINDOW = Trigger(
    name="escalation_window", metric="escalation_rate", op=">", threshold=0.32, evaluation="window",
    minutes=2, ratio_of={"numerator": "escalations", "denominator": "requests"}, min_count=20, action="pause",
)


def handoffs(counts: list[tuple[int, int]]) -> list[MetricSample]:
    """One-minute windows of (requests, escalations)."""
    return [
        MetricSample(ts=(i + 1) * M, start_ts=i * M,
                     metrics={"requests": r, "escalations": e, "escalation_rate": e / r if r else None})
        for i, (r, e) in enumerate(counts)
    ]


def test_a_streak_split_across_blocks_is_not_re_tested_in_new_company() -> None:
    # the sliding span at minute 3 holds 11/20 (80 % interval above 0.32), but the blocks are minutes
    # 1-2 (7/20) and 3-4 (7/20): neither breaches, so the streak holds the phase instead of pausing it
    evidence = LiveEvidencePolicy(confidence=0.8)
    history = [(10, 2), (10, 5), (10, 6), (10, 1)]
    for end in range(1, len(history) + 1):
        verdict = classify_breaches([ESCALATION_WINDOW], handoffs(history[:end]), M, evidence=evidence)
        assert verdict.action == "ok", (end, verdict)
    at_three = classify_breaches([ESCALATION_WINDOW], handoffs(history[:3]), M, evidence=evidence)
    assert "not confirmed by its latest block: 7/20" in at_three.inconclusive[0].detail


def test_a_persistent_breach_still_pauses_on_its_block() -> None:
    evidence = LiveEvidencePolicy(confidence=0.8)
    verdict = classify_breaches([ESCALATION_WINDOW], handoffs([(10, 6)] * 4), M, evidence=evidence)
    assert verdict.action == "pause"
    assert "12/20 in the block of 2 min" in verdict.hits[0].detail


@given(st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15)), min_size=1, max_size=10))
def test_a_window_breach_is_always_a_block_above_the_line(pairs: list[tuple[int, int]]) -> None:
    evidence = LiveEvidencePolicy(confidence=0.8)
    verdict = classify_breaches(
        [ESCALATION_WINDOW], handoffs([(r, min(e, r)) for r, e in pairs]), M, evidence=evidence
    )
    for hit in verdict.hits:
        assert hit.interval is not None and hit.interval[0] > 0.32
        assert hit.sample_size is not None and hit.sample_size >= 20
