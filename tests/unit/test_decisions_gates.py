"""Gate checks, approval routing and the drift verdict: fail closed on missing evidence."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions import check_gate, drift_verdict, required_reviews
from llm_release.policy import DEFAULT_PROFILE, GateThreshold, load_policy

POLICY = load_policy(DEFAULT_PROFILE)
STAGING_OK = {
    "shadow_scs": 0.86,
    "shadow_samples": 612,
    "shadow_hallucination_rate": 0.01,
    "shadow_policy_violation_rate": 0.0,
    "shadow_latency_p99_ms": 3100,
}


def test_staging_gate_passes_and_fails() -> None:
    assert check_gate(POLICY.gate("staging"), STAGING_OK).passed
    verdict = check_gate(POLICY.gate("staging"), {**STAGING_OK, "shadow_samples": 499})
    assert not verdict.passed
    assert [c.metric for c in verdict.failed] == ["shadow_samples"]
    assert "shadow_samples = 499, required shadow_samples >= 500: FAILED" in verdict.summary()
    # strict "<": exactly 3 % hallucination fails
    assert not check_gate(POLICY.gate("staging"), {**STAGING_OK, "shadow_hallucination_rate": 0.03}).passed


def test_abs_delta_gate() -> None:
    dev = {"eval_pass_rate": 0.93, "safety_category_failures": 0, "bleu_delta": -0.029, "rouge_delta": 0.01}
    assert check_gate(POLICY.gate("development"), dev).passed
    assert not check_gate(POLICY.gate("development"), {**dev, "bleu_delta": -0.031}).passed


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -math.inf, "0.9"])
def test_bad_measurements_fail_closed(bad: object) -> None:
    verdict = check_gate(POLICY.gate("staging"), {**STAGING_OK, "shadow_scs": bad})
    assert not verdict.passed
    (failed,) = verdict.failed
    assert failed.observed is None and "fails closed" in failed.reason


def test_missing_metric_and_empty_gate() -> None:
    partial = {k: v for k, v in STAGING_OK.items() if k != "shadow_latency_p99_ms"}
    verdict = check_gate(POLICY.gate("staging"), partial)
    assert not verdict.passed and "shadow_latency_p99_ms: not measured" in verdict.summary()
    with pytest.raises(ValueError, match="empty gate"):
        check_gate([], STAGING_OK)


def test_equality_operator() -> None:
    gate = [GateThreshold(metric="x", op="==", value=0.3)]
    assert check_gate(gate, {"x": 0.1 + 0.2}).passed
    assert not check_gate(gate, {"x": 0.31}).passed


@given(
    st.sampled_from([">=", ">", "<=", "<", "==", "abs<="]), st.floats(allow_nan=False, allow_infinity=False)
)
def test_nan_never_passes(op: str, value: float) -> None:
    gate = [GateThreshold(metric="m", op=op, value=value)]
    assert not check_gate(gate, {"m": math.nan}).passed
    assert not check_gate(gate, {}).passed


def test_approval_routing_table() -> None:
    clean = {
        "policy_violations": 0,
        "injection_resistance": 0.995,
        "bias_sentiment_disparity": 0.02,
        "bias_escalation_excess": 0.05,
        "bias_length_disparity": 0.03,
        "drift_js_divergence": 0.05,
    }
    assert [r.gate for r in required_reviews(POLICY.approval_routing, clean)] == ["preproduction"]
    # injection 98 % passes the gate (>= 97 %) but needs a human look (< 99 %)
    reviews = required_reviews(POLICY.approval_routing, {**clean, "injection_resistance": 0.98})
    assert [r.gate for r in reviews] == ["adversarial", "preproduction"]
    drift_missing = {k: v for k, v in clean.items() if k != "drift_js_divergence"}
    gates = [r.gate for r in required_reviews(POLICY.approval_routing, drift_missing, gates=["data_drift"])]
    assert gates == ["data_drift"]


def test_drift_verdict() -> None:
    drift = POLICY.drift
    assert drift_verdict(drift, 0.05, 0.01).status == "ok"
    assert drift_verdict(drift, 0.15, 0.01).status == "alert"
    blocked = drift_verdict(drift, 0.25, 0.01)
    assert blocked.status == "block" and blocked.requires_human_decision
    assert drift_verdict(drift, 0.05, 0.2).status == "insufficient_data"
    assert drift_verdict(drift, None).status == "insufficient_data"
    assert drift_verdict(drift, 0.12).status == "ok"  # "> 0.12" alerts; exactly 0.12 does not
