"""Breach classification over time: instant, sustained, window and sample triggers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions import MetricSample, classify_breaches
from llm_release.policy import DEFAULT_PROFILE, Trigger, load_policy

POLICY = load_policy(DEFAULT_PROFILE)
TRIGGERS = POLICY.all_triggers()
BASELINE = {"escalation_rate": 0.10}
OK = {
    "error_rate": 0.001,
    "errors": 1,
    "requests": 1000,
    "p99_ms": 2500,
    "policy_violations": 0,
    "escalations": 100,
    "escalation_rate": 0.10,
    "novel_adversarial_patterns": 0,
}


def minutes(values: list[dict], step: float = 60.0, windows: bool = False, start: float = 0.0):
    return [
        MetricSample(
            ts=start + (i + 1) * step, metrics={**OK, **v}, start_ts=start + i * step if windows else None
        )
        for i, v in enumerate(values)
    ]


def classify(samples, phase=None, triggers=TRIGGERS, minute_seconds=60.0):
    return classify_breaches(triggers, samples, minute_seconds, BASELINE, phase)


def names(verdict) -> set[str]:
    return {h.trigger_name for h in verdict.hits}


def test_quiet_traffic_is_ok() -> None:
    samples = minutes([{}] * 12)
    samples[-1] = samples[-1].model_copy(update={"metrics": {**OK, "scs": 0.9, "hallucination_rate": 0.01}})
    verdict = classify(samples)
    assert verdict.action == "ok" and verdict.hits == []
    assert verdict.unmeasured == []


def test_policy_violation_rolls_back_immediately() -> None:
    verdict = classify(minutes([{}, {"policy_violations": 1}]))
    assert verdict.action == "rollback"
    assert {"policy_violation_rollback", "policy_violation_detected"} <= names(verdict)


def test_error_rate_sustained_needs_five_full_minutes() -> None:
    # Rates weigh evidence: each minute's 3 % rests on 10,000 requests, so every minute is confidently
    # above 2.5 % (30 of 1,000 would be inconclusive minute by minute; see test_decisions_dwell).
    bad = {"error_rate": 0.03, "errors": 300, "requests": 10000}
    # five 1-minute windows abutting -> covers 5 minutes -> rollback
    assert classify(minutes([bad] * 5, windows=True)).action == "rollback"
    # four windows only cover 4 minutes: not sustained, but the 10-minute window pauses (3 % > 1.5 %)
    four = classify(minutes([bad] * 4, windows=True))
    assert "error_rate_sustained_5min" not in names(four) and four.action == "pause"
    # point samples: 5 samples span only 4 minutes; 6 span 5
    assert "error_rate_sustained_5min" not in names(classify(minutes([bad] * 5)))
    assert "error_rate_sustained_5min" in names(classify(minutes([bad] * 6)))
    # a good minute in between resets the run
    assert "error_rate_sustained_5min" not in names(
        classify(minutes([bad] * 3 + [{}] + [bad] * 4, windows=True))
    )


def test_gap_breaks_sustained_run() -> None:
    bad = {"p99_ms": 5200}
    samples = minutes([bad] * 2) + minutes([bad] * 3, start=240)  # samples at 60,120 then 300,360,420
    assert "p99_over_5000_sustained_3min" not in names(classify(samples))
    contiguous = minutes([bad] * 4)
    assert "p99_over_5000_sustained_3min" in names(classify(contiguous))


def test_missing_value_breaks_run_and_is_unmeasured() -> None:
    samples = minutes([{"p99_ms": 5200}] * 5)
    samples[2] = samples[2].model_copy(update={"metrics": {**OK, "p99_ms": None}})
    assert "p99_over_5000_sustained_3min" not in names(classify(samples))
    latest_missing = minutes([{"p99_ms": 5200}] * 4 + [{"p99_ms": float("nan")}])
    verdict = classify(latest_missing)
    assert "p99_over_5000_sustained_3min" in verdict.unmeasured


def test_window_uses_counts_not_average_of_rates() -> None:
    # minute 1: 10/100 = 10 %; minute 2: 0/10000. Average of rates = 5 % (would pause);
    # the real rate is 10/10100 = 0.099 % (no pause).
    samples = minutes(
        [
            {"error_rate": 0.10, "errors": 10, "requests": 100},
            {"error_rate": 0.0, "errors": 0, "requests": 10000},
        ],
        windows=True,
    )
    assert "error_rate_10min_window" not in names(classify(samples))
    # without counts the worst sample is used (conservative)
    no_counts = minutes([{"error_rate": 0.10, "errors": None}, {"error_rate": 0.0}], windows=True)
    assert "error_rate_10min_window" in names(classify(no_counts))


def test_window_only_looks_back_its_span() -> None:
    old_bad = [{"error_rate": 0.5, "errors": 500, "requests": 1000}]
    samples = minutes(old_bad + [{}] * 10, windows=True)
    assert "error_rate_10min_window" not in names(classify(samples))


def test_latency_hold_then_pause() -> None:
    samples = minutes([{}, {}, {"p99_ms": 4200}])
    assert classify(samples).action == "hold"
    samples = minutes([{"p99_ms": 4200}] * 4)
    assert classify(samples).action == "pause"


def test_escalation_relative_to_baseline() -> None:
    # baseline 10 %; pause above 12.5 %, page above 13.5 %. Rates weigh evidence: 13 % of 30,000
    # requests is confidently above 12.5 % (13 % of 3,000 would be inconclusive, see test_dwell_findings)
    up = {"escalations": 1300, "requests": 10000, "escalation_rate": 0.13}
    verdict = classify(minutes([up] * 3, windows=True))
    assert "escalation_above_baseline" in names(verdict) and verdict.action == "pause"
    assert not verdict.page_required
    higher = classify(
        minutes([{"escalations": 1400, "requests": 10000, "escalation_rate": 0.14}] * 3, windows=True)
    )
    assert higher.page_required
    no_base = classify_breaches(TRIGGERS, minutes([up]), 60.0, None)
    assert "escalation_above_baseline" in no_base.unmeasured


def test_hourly_scs_sample_rolls_back_below_080_and_pauses_below_082() -> None:
    hourly = minutes([{}] * 5)
    low = [*hourly[:-1], hourly[-1].model_copy(update={"metrics": {**OK, "scs": 0.79}})]
    assert classify(low).action == "rollback"
    mid = [*hourly[:-1], hourly[-1].model_copy(update={"metrics": {**OK, "scs": 0.81}})]
    verdict = classify(mid)
    assert verdict.action == "pause" and "scs_below_pause_line" in names(verdict)
    # the latest sample *with* the metric counts even when newer minutes lack it
    later = [*mid, *minutes([{}] * 3, start=300)]
    assert "scs_below_pause_line" in names(classify(later))
    assert "scs_below_080_hourly" in classify(hourly).unmeasured


def test_scs_degraded_for_two_hours_pages() -> None:
    hours = [MetricSample(ts=h * 3600.0, metrics={**OK, "scs": 0.81}) for h in range(3)]
    verdict = classify(hours)
    assert verdict.page_required and "scs_degraded_over_2h" in names(verdict)
    assert not classify(hours[1:]).page_required


def test_phase_filter_and_time_scale() -> None:
    trigger = Trigger(
        name="t",
        metric="p99_ms",
        op=">",
        threshold=100,
        evaluation="instant",
        action="pause",
        applies_to_phases=["canary_tier_1"],
    )
    samples = minutes([{}])
    assert classify(samples, phase="canary_tier_1", triggers=[trigger]).action == "pause"
    assert classify(samples, phase="full", triggers=[trigger]).action == "ok"
    # with 0.03 s minutes, five abutting windows of 0.03 s are 5 minutes
    bad = {"error_rate": 0.05, "errors": 50, "requests": 1000}
    fast = minutes([bad] * 5, step=0.03, windows=True)
    assert "error_rate_sustained_5min" in names(classify(fast, minute_seconds=0.03))
    with pytest.raises(ValueError, match="minute_seconds"):
        classify(samples, minute_seconds=0)


def test_no_samples_means_everything_unmeasured() -> None:
    verdict = classify([])
    assert verdict.action == "ok" and set(verdict.unmeasured) == {t.name for t in TRIGGERS}


@given(st.integers(min_value=1, max_value=30), st.floats(min_value=0.01, max_value=120), st.booleans())
def test_sustained_never_fires_on_short_history(span: int, minute_seconds: float, windows: bool) -> None:
    trigger = Trigger(
        name="s",
        metric="p99_ms",
        op=">",
        threshold=1000,
        evaluation="sustained",
        minutes=float(span),
        action="rollback",
    )
    count = span if not windows else span - 1  # covers span-1 minutes either way
    samples = minutes([{"p99_ms": 9999}] * count, step=minute_seconds, windows=windows) if count else []
    verdict = classify_breaches([trigger], samples, minute_seconds)
    assert verdict.action == "ok"
    longer = minutes([{"p99_ms": 9999}] * (count + 1), step=minute_seconds, windows=windows)
    assert classify_breaches([trigger], longer, minute_seconds).action == "rollback"


actions = st.sampled_from(["hold", "pause", "rollback", "page"])


@given(st.lists(st.tuples(actions, st.booleans()), min_size=1, max_size=8))
def test_most_severe_action_wins(spec: list[tuple[str, bool]]) -> None:
    triggers = [
        Trigger(
            name=f"t{i}",
            metric="x",
            op=">" if fires else "<",
            threshold=0.5,
            evaluation="instant",
            action=action,
        )
        for i, (action, fires) in enumerate(spec)
    ]
    verdict = classify_breaches(triggers, [MetricSample(ts=1.0, metrics={"x": 1.0})], 60.0)
    severity = {"ok": 0, "hold": 1, "pause": 2, "rollback": 3}
    fired = [a for a, f in spec if f and a != "page"]
    expected = max(fired, key=severity.__getitem__) if fired else "ok"
    assert verdict.action == expected
    assert verdict.page_required == any(a == "page" and f for a, f in spec)
