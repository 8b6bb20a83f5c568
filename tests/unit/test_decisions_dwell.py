"""``dwell_step``: the dwell clock, evidence, pages, limits and the state carried between phases.

Times are real policy minutes (``minute_seconds`` = 60) and one observation is one one-minute window.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binomtest

from llm_release.decisions.breaches import MetricSample, classify_breaches, wilson_interval
from llm_release.decisions.dwell import (
    INCONCLUSIVE_PAGE,
    MAX_WINDOWS,
    UNREACHABLE_LIMIT_POLLS,
    DwellObservation,
    DwellPolicy,
    DwellState,
    JudgedAnswer,
    LiveQualityState,
    QualitySample,
    WindowCounts,
    acknowledge_page,
    dwell_step,
    phase_metrics,
    start_dwell,
)
from llm_release.policy import DEFAULT_PROFILE, Trigger, load_policy

POLICY = load_policy(DEFAULT_PROFILE)
RULES = DwellPolicy.of(POLICY)
M = 60.0
PHASE = "canary_tier_2"
DWELL = 30 * M
LIMIT = 120 * M
MIN_JUDGED = POLICY.rollout.evidence.min_judged_per_sample


def cand(**overrides: object) -> WindowCounts:
    """A healthy candidate minute: 200 requests, no errors, low latency, 5 % escalations."""
    base: dict[str, object] = dict(requests=200, errors=0, p50_ms=300.0, p99_ms=900.0, policy_violations=0)
    merged = {**base, **overrides}
    if "escalations" not in merged:
        requests = merged["requests"]
        merged["escalations"] = None if requests is None else int(requests) // 20  # type: ignore[call-overload]
    return WindowCounts(**merged)  # type: ignore[arg-type]


BASE = WindowCounts(requests=2000, errors=2, p50_ms=300.0, p99_ms=900.0, policy_violations=0, escalations=200)
GOOD = [JudgedAnswer(score=0.9, hallucinated=False)] * 2


def with_quality(state: DwellState, ts: float, scs: float = 0.9, judged: int = 120) -> DwellState:
    """A state whose latest hourly quality sample closed at ``ts``."""
    sample = QualitySample(opened_ts=ts - 3600, closed_ts=ts, judged=judged, score_sum=scs * judged)
    quality = LiveQualityState(
        closed=[sample], open=QualitySample(opened_ts=ts), phase_judged=judged, phase_score_sum=scs * judged
    )
    return state.model_copy(update={"quality": quality})


def step(state: DwellState, ts: float, *, candidate: WindowCounts | None = None, baseline: WindowCounts = BASE,
         judged: list[JudgedAnswer] = GOOD, dwell: float = DWELL, limit: float = LIMIT, **obs: object):
    observation = DwellObservation(
        ts=ts, start_ts=ts - M, candidate=candidate or cand(), baseline=baseline, candidate_judged=judged, **obs
    )
    return dwell_step(state, observation, POLICY, dwell_seconds=dwell, max_seconds=limit, minute_seconds=M)


def run(state: DwellState, minutes: int, start: float = M, **kwargs: object):
    verdicts = []
    for i in range(minutes):
        state, verdict = step(state, start + i * M, **kwargs)
        verdicts.append(verdict)
        if verdict.action in ("done", "failed", "rollback", "page"):
            break
    return state, verdicts


def ready(phase: str = PHASE) -> DwellState:
    return with_quality(start_dwell("canary", phase), ts=0.0)


# --------------------------------------------------------------------------- clock


def test_a_clean_phase_completes_after_its_dwell_with_enough_evidence() -> None:
    state, verdicts = run(ready(), 60)
    assert verdicts[-1].action == "done"
    assert state.clean_seconds >= DWELL and state.clean_seconds <= state.active_seconds
    # the 1.5 % window needs about 250 clean requests before its interval clears the line
    first = verdicts[0]
    assert first.action == "hold" and "error_rate_10min_window" in {h.trigger_name for h in first.inconclusive}
    metrics = phase_metrics(state)
    assert metrics["error_rate"] == 0.0 and metrics["requests"] == 200 * len(verdicts)
    assert metrics["error_rate_interval"][1] < 0.015 and metrics["scs"] == pytest.approx(0.9)


def test_the_clock_stops_while_a_rollback_trigger_is_unmeasured() -> None:
    state, _verdicts = run(ready(), 5)
    clean = state.clean_seconds
    state, verdict = step(state, 6 * M, candidate=cand(p99_ms=None))  # latency unmeasured this minute
    assert not verdict.clock_advanced and verdict.action == "hold" and state.clean_seconds == clean
    assert "p99_over_5000_sustained_3min" in {u.name for u in verdict.unmeasured if u.action == "rollback"}


def test_unmeasured_pause_and_page_triggers_are_reported_but_do_not_stop_the_clock() -> None:
    _state, verdicts = run(ready(), 10)
    last = verdicts[-1]
    assert last.clock_advanced
    missing = {u.name: u.action for u in last.unmeasured}
    assert missing == {"novel_adversarial_pattern": "pause", "novel_adversarial_pattern_live": "page"}


def test_a_phase_cannot_complete_with_too_few_requests_or_judged_answers() -> None:
    # plenty of clean time, but the quality sample came from the previous phase and no answer was judged here
    carried = start_dwell("canary", PHASE, ready())
    state, verdicts = run(carried, 40, judged=[])
    assert all(v.action != "done" for v in verdicts)
    assert state.clean_seconds >= DWELL
    assert any(f"judged live answers in this phase (need {MIN_JUDGED})" in r for r in verdicts[-1].reasons)
    state, verdict = step(state, 41 * M, judged=[JudgedAnswer(score=0.9, hallucinated=False)] * MIN_JUDGED)
    assert verdict.action == "done"


def test_quality_samples_older_than_the_policy_age_are_unmeasured() -> None:
    age = POLICY.rollout.evidence.max_sample_age_minutes
    state = with_quality(start_dwell("canary", PHASE), ts=0.0)
    _, fresh = step(state, age * M)
    assert "scs_below_080_hourly" not in {u.name for u in fresh.unmeasured}
    _, stale = step(state, (age + 1) * M)
    reasons = {u.name: u.reason for u in stale.unmeasured}
    assert "min old" in reasons["scs_below_080_hourly"] and not stale.clock_advanced


# --------------------------------------------------------------------------- evidence


def test_a_rate_straddling_its_line_holds_then_decides_on_more_traffic() -> None:
    state = ready()
    # 5 % errors at 20 requests a minute: the interval straddles 2.5 % -> no rollback, the clock stops
    # (3/60 is already confidently above the 1.5 % pause line, so the third minute pauses)
    state, first = run(state, 3, candidate=cand(requests=20, errors=1))
    assert [v.action for v in first] == ["hold", "hold", "pause"]
    assert all(not v.clock_advanced for v in first)
    assert all("error_rate_sustained_5min" in {h.trigger_name for h in v.inconclusive} for v in first)
    # the same rate on more traffic is evidence: the interval clears 2.5 % and the rollback fires
    state, later = run(state, 30, start=4 * M, candidate=cand(requests=400, errors=20))
    assert later[-1].action == "rollback" and later[-1].trigger == "error_rate_sustained_5min"
    hit = next(h for h in later[-1].hits if h.trigger_name == "error_rate_sustained_5min")
    assert hit.interval is not None and hit.interval[0] > 0.025 and hit.sample_size >= 20


def test_zero_tolerance_stays_one_strike() -> None:
    state, _verdicts = run(ready(), 3)
    _, verdict = step(state, 4 * M, candidate=cand(policy_violations=1))
    assert verdict.action == "rollback" and verdict.trigger == "policy_violation_rollback"


def test_a_pause_stops_the_clock_and_a_phase_held_past_its_limit_fails() -> None:
    state, verdicts = run(ready(), 5)
    clean = state.clean_seconds
    state, paused = run(state, 3, start=6 * M, candidate=cand(p99_ms=4500.0))
    assert [v.action for v in paused] == ["hold", "hold", "pause"]  # p99 > 4000: hold at once, pause after 3 min
    assert state.clean_seconds == clean
    state, verdicts = run(state, 200, start=9 * M, candidate=cand(p99_ms=4500.0), limit=20 * M)
    assert verdicts[-1].action == "failed" and "held past its limit" in verdicts[-1].reasons[0]


def test_an_inconclusive_phase_at_its_limit_goes_to_a_person_and_continue_grants_more_time() -> None:
    # no errors at 30 requests a minute: clearing the 1.5 % line takes ~250 requests, more than 8 minutes hold
    state, verdicts = run(ready(), 200, candidate=cand(requests=30, errors=0), limit=8 * M,
                          judged=[JudgedAnswer(score=0.9, hallucinated=False)] * 10)
    assert verdicts[-1].action == "page" and verdicts[-1].trigger == INCONCLUSIVE_PAGE
    assert verdicts[-1].page is not None and "dwell clock" in verdicts[-1].page.detail
    resumed = acknowledge_page(state, INCONCLUSIVE_PAGE, max_seconds=8 * M, responder="alice")
    assert resumed.extra_seconds == 8 * M and resumed.pages[-1].answer == "Continue"
    _, verdict = step(resumed, 9 * M + 3600, candidate=cand(requests=30, errors=0))
    assert verdict.action != "page"


def test_a_page_trigger_pages_once_until_it_clears() -> None:
    long = dict(dwell=10_000 * M, limit=10_000 * M)
    state, verdicts = run(ready(), 3, **long)
    high = cand(requests=2000, escalations=400)  # 20 % against a 10 % baseline: > baseline + 35 %
    state, verdict = step(state, 4 * M, candidate=high, **long)
    assert verdict.action == "page" and verdict.trigger == "escalation_over_baseline_35pct"
    assert verdict.page is not None and verdict.page.interval is not None and verdict.page.sample_size
    assert not verdict.clock_advanced
    state = acknowledge_page(state, verdict.trigger, max_seconds=LIMIT)
    state, again = step(state, 5 * M, candidate=high, **long)
    assert again.action == "pause" and "escalation_over_baseline_35pct" in state.acknowledged
    state, verdicts = run(state, 40, start=6 * M, candidate=cand(requests=2000, escalations=100), **long)
    assert "escalation_over_baseline_35pct" not in state.acknowledged  # cleared
    assert verdicts[-1].clock_advanced
    state, fired = run(state, 20, start=46 * M, candidate=cand(requests=2000, escalations=400), **long)
    assert fired[-1].action == "page" and fired[-1].trigger == "escalation_over_baseline_35pct"


def test_the_baseline_is_carried_into_the_full_phase() -> None:
    canary, _ = run(ready("progressive_50"), 3)
    assert canary.baseline["escalation_rate"].denominator == 3 * 2000
    full = start_dwell("canary", "full", canary)
    assert full.baseline == canary.baseline and full.windows == [] and full.clean_seconds == 0
    no_traffic = WindowCounts(requests=0, errors=0, p50_ms=None, p99_ms=None, policy_violations=0, escalations=0)
    state, verdict = step(full, 4 * M, baseline=no_traffic, candidate=cand(requests=2000, escalations=400))
    assert verdict.action == "page" and verdict.trigger == "escalation_over_baseline_35pct"
    assert state.baseline["escalation_rate"].phase == "progressive_50"
    _, orphan = step(start_dwell("canary", "full"), 4 * M, baseline=no_traffic)
    assert "escalation_above_baseline" in {u.name for u in orphan.unmeasured}


def test_an_unreachable_source_holds_then_fails() -> None:
    state = ready()
    for i in range(UNREACHABLE_LIMIT_POLLS - 1):
        state, verdict = dwell_step(state, DwellObservation(ts=float(i), error="refused"), POLICY,
                                    dwell_seconds=DWELL, max_seconds=LIMIT, minute_seconds=M)
        assert verdict.action == "hold" and not verdict.clock_advanced
    state, verdict = dwell_step(state, DwellObservation(ts=99.0, error="refused"), POLICY,
                                dwell_seconds=DWELL, max_seconds=LIMIT, minute_seconds=M)
    assert verdict.action == "failed" and "unreachable" in verdict.reasons[0]
    assert state.active_seconds == 0


def test_shadow_counts_answered_samples_over_the_planned_time() -> None:
    state = start_dwell("shadow", "shadow")
    kwargs = dict(dwell_seconds=10 * M, max_seconds=30 * M, minute_seconds=M, min_shadow_samples=100)
    for i in range(1, 11):
        state, verdict = dwell_step(state, DwellObservation(ts=i * M, start_ts=(i - 1) * M, answered=5), POLICY,
                                    **kwargs)
    assert verdict.action == "advance" and state.answered == 50  # time is up, samples are not
    for i in range(11, 21):
        state, verdict = dwell_step(state, DwellObservation(ts=i * M, answered=5), POLICY, **kwargs)
    assert verdict.action == "done" and state.answered == 100


def test_state_is_json_and_bounded() -> None:
    state, _ = run(ready(), MAX_WINDOWS + 30, dwell=10_000 * M, limit=10_000 * M)
    assert len(state.windows) == MAX_WINDOWS
    assert state.requests == 200 * (MAX_WINDOWS + 30)  # merged windows keep their counts
    assert state.windows[0].merged > 1 and state.windows[0].counts.p99_ms is None
    again = DwellState.model_validate(json.loads(json.dumps(state.model_dump(mode="json", exclude_defaults=True))))
    assert again == state


# --------------------------------------------------------------------------- properties


@given(st.integers(0, 400), st.integers(1, 400), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_wilson_interval_matches_scipy(k: int, n: int, confidence: float) -> None:
    k = min(k, n)
    ours = wilson_interval(k, n, confidence)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert ours == pytest.approx((ci.low, ci.high), abs=1e-9)


RATE = Trigger(name="r", metric="error_rate", op=">", threshold=0.025, evaluation="window", minutes=5,
               ratio_of={"numerator": "errors", "denominator": "requests"}, min_count=20, action="rollback")


@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), min_size=1, max_size=12))
def test_a_rate_breach_is_always_an_interval_above_the_line(pairs: list[tuple[int, int]]) -> None:
    samples = [
        MetricSample(
            ts=(i + 1) * M,
            start_ts=i * M,
            metrics={"requests": float(r), "errors": float(min(e, r)), "error_rate": min(e, r) / r if r else None},
        )
        for i, (r, e) in enumerate(pairs)
    ]
    verdict = classify_breaches([RATE], samples, M)
    for hit in verdict.hits:
        assert hit.interval is not None and hit.interval[0] > 0.025 and hit.sample_size >= 20
    for hit in verdict.inconclusive:
        assert hit.interval is not None and hit.interval[0] <= 0.025 < hit.interval[1]
    assert len(verdict.hits) + len(verdict.inconclusive) + len(verdict.clean) + len(verdict.unmeasured) == 1


maybe_int = st.one_of(st.none(), st.integers(0, 400))
windows = st.builds(
    lambda r, e, p99, v, esc: WindowCounts(
        requests=r, errors=None if e is None or r is None else min(e, r), p99_ms=p99, policy_violations=v,
        escalations=None if esc is None or r is None else min(esc, r),
    ),
    maybe_int, st.one_of(st.none(), st.integers(0, 30)), st.one_of(st.none(), st.floats(100, 6000)),
    st.one_of(st.none(), st.just(0)), maybe_int,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(windows, st.integers(0, 60)), min_size=1, max_size=40))
def test_the_clock_advances_only_on_measured_clean_evidence(script: list[tuple[WindowCounts, int]]) -> None:
    state = ready()
    min_requests = RULES.min_requests
    for i, (counts, judged) in enumerate(script):
        before = state.clean_seconds
        state, verdict = step(state, (i + 1) * M, candidate=counts, dwell=5 * M,
                              judged=[JudgedAnswer(score=0.9, hallucinated=False)] * judged)
        blind = [u for u in verdict.unmeasured if u.action == "rollback"]
        if verdict.clock_advanced:
            assert not blind and not verdict.inconclusive
            assert all(h.action == "page" for h in verdict.hits)  # only acknowledged pages may still fire
            assert state.clean_seconds == pytest.approx(before + M)
        else:
            assert state.clean_seconds == before
        if counts.policy_violations is None:
            assert "policy_violation_rollback" not in {h.trigger_name for h in verdict.hits}
            assert "policy_violation_rollback" in {u.name for u in blind}
        assert state.clean_seconds <= state.active_seconds + 1e-9
        if verdict.action == "done":
            assert state.requests >= min_requests and state.quality.phase_judged >= MIN_JUDGED
        if verdict.action in ("done", "failed", "rollback", "page"):
            break
