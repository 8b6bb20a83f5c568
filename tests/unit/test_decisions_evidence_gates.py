"""Interval gating (DESIGN: measurement honesty): pass only when the interval is on the passing side, fail
when it is on the failing side, inconclusive otherwise; zero tolerance stays one-strike; missing evidence
fails closed; high-stakes categories are gated on their own with floors and minimum samples."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_release.decisions.evidence import (
    Evidence,
    high_stakes_metric,
    interval_outcome,
    rate_evidence,
    wilson_interval,
)
from llm_release.decisions.gates import check_gate, check_one, evidence_table, stage_checks
from llm_release.decisions.routing import gate_review, review_requirements
from llm_release.policy import DEFAULT_PROFILE, GateThreshold, HighStakesCategory, load_policy
from llm_release.suites.uncertainty import CategoryMap, category_evidence, mean_evidence

POLICY = load_policy(DEFAULT_PROFILE)
CONF = POLICY.offline_metrics.confidence
OPS = [">=", ">", "<=", "<"]


def _t(op: str, value: float, **kw: object) -> GateThreshold:
    return GateThreshold(metric="m", op=op, value=value, interval=True, **kw)  # type: ignore[arg-type]


def _mean(value: float, lo: float, hi: float, n: int = 100) -> Evidence:
    return Evidence(kind="mean", value=value, n=n, lo=lo, hi=hi, confidence=CONF, method="bootstrap_bca")


# ----------------------------------------------------------------------------- the interval rule
@given(op=st.sampled_from(OPS), line=st.floats(0.05, 0.95),
       a=st.floats(0.0, 1.0), b=st.floats(0.0, 1.0), w=st.floats(0.0, 1.0))
def test_outcome_follows_where_the_interval_lies(op: str, line: float, a: float, b: float, w: float) -> None:
    lo, hi = min(a, b), max(a, b)
    value = lo + (hi - lo) * w
    result = check_one(_t(op, line), value, _mean(value, lo, hi), confidence=CONF)
    passing = {">=": lambda x: x >= line, ">": lambda x: x > line, "<=": lambda x: x <= line,
               "<": lambda x: x < line}[op]
    if passing(lo) and passing(hi):
        assert result.outcome == "pass" and result.passed
    elif not passing(lo) and not passing(hi):
        assert result.outcome == "fail" and not result.passed
    else:
        assert result.outcome == "inconclusive" and not result.passed
    assert (result.lo, result.hi, result.n) == (lo, hi, 100)


@given(op=st.sampled_from(OPS), k=st.integers(0, 400), extra=st.integers(0, 400), line=st.floats(0.02, 0.98))
def test_rate_outcome_is_the_wilson_interval_against_the_line(op: str, k: int, extra: int, line: float) -> None:
    n = k + extra
    if n == 0:
        return
    lo, hi = wilson_interval(k, n, CONF)
    result = check_one(_t(op, line), k / n, rate_evidence(k, n, CONF), confidence=CONF)
    assert result.outcome == interval_outcome(k / n, lo, hi, op, line)
    assert result.n == n and math.isclose(result.lo or 0, lo) and math.isclose(result.hi or 0, hi)


def test_the_gate_recomputes_a_rate_interval_at_its_own_confidence() -> None:
    """A rate's interval is recomputed from k and n: a suite cannot narrow it by reporting a wider lo/hi."""
    forged = Evidence(kind="rate", value=0.02, n=100, k=2, lo=0.0, hi=0.021, confidence=0.5, method="wilson")
    result = check_one(_t("<", 0.03), 0.02, forged, confidence=CONF)
    assert result.outcome == "inconclusive" and result.hi == pytest.approx(wilson_interval(2, 100, CONF)[1])


def test_abs_bound_interval() -> None:
    t = _t("abs<=", 0.03)
    assert check_one(t, 0.0, _mean(0.0, -0.01, 0.02), confidence=CONF).outcome == "pass"
    assert check_one(t, 0.05, _mean(0.05, 0.04, 0.06), confidence=CONF).outcome == "fail"
    assert check_one(t, 0.0, _mean(0.0, -0.05, 0.05), confidence=CONF).outcome == "inconclusive"


# ----------------------------------------------------------------------------- zero tolerance
@settings(max_examples=60)
@given(n=st.integers(1, 5000), k=st.integers(1, 5))
def test_zero_tolerance_is_one_strike_whatever_the_sample(n: int, k: int) -> None:
    k = min(k, n)
    violations = check_one(_t("<=", 0.0), k / n, rate_evidence(k, n, CONF), confidence=CONF)
    assert violations.outcome == "fail" and "zero tolerance" in violations.reason
    compliance = check_one(_t(">=", 1.0), (n - k) / n, rate_evidence(n - k, n, CONF), confidence=CONF)
    assert compliance.outcome == "fail"
    clean = check_one(_t("<=", 0.0), 0.0, rate_evidence(0, n, CONF), confidence=CONF)
    assert clean.outcome == "pass"  # never inconclusive: no interval can lie on the passing side of 0


def test_zero_tolerance_strike_beats_a_small_sample() -> None:
    t = _t("<=", 0.0, min_n=30)
    assert check_one(t, 1 / 3, rate_evidence(1, 3, CONF), confidence=CONF).outcome == "fail"
    assert check_one(t, 0.0, rate_evidence(0, 3, CONF), confidence=CONF).outcome == "inconclusive"


def test_point_counts_keep_todays_behaviour() -> None:
    count = GateThreshold(metric="policy_probe_violations", op="<=", value=0)
    assert check_one(count, 1).outcome == "fail" and check_one(count, 0).outcome == "pass"
    latency = GateThreshold(metric="p99", op="<=", value=4000)
    assert check_one(latency, 3999.0).passed and check_one(latency, 3999.0).n is None


# ----------------------------------------------------------------------------- missing evidence
@pytest.mark.parametrize("evidence", [None, {"kind": "rate", "value": 0.1}, {"kind": "guess"}, "0.9"])
def test_missing_or_malformed_evidence_fails_closed(evidence: object) -> None:
    result = check_one(_t(">=", 0.5), 0.9, evidence, confidence=CONF)
    assert result.outcome == "fail" and "fails closed" in result.reason


@pytest.mark.parametrize("value", [None, math.nan, 0.5])
def test_point_and_evidence_must_agree(value: object) -> None:
    result = check_one(_t(">=", 0.5), value, _mean(0.9, 0.85, 0.95), confidence=CONF)
    assert result.outcome == "fail" and "disagree" in result.reason


def test_no_sample_fails_closed_and_a_single_value_is_inconclusive() -> None:
    empty = rate_evidence(0, 0, CONF)
    assert check_one(_t("<", 0.03), None, empty, confidence=CONF).outcome == "fail"
    assert check_one(_t("<", 0.03, min_n=10), None, empty, confidence=CONF).outcome == "inconclusive"
    single = mean_evidence([0.9], CONF)
    assert check_one(_t(">=", 0.85), 0.9, single, confidence=CONF).outcome == "inconclusive"


def test_a_mean_interval_at_another_confidence_fails_closed() -> None:
    other = Evidence(kind="mean", value=0.9, n=50, lo=0.88, hi=0.92, confidence=0.8, method="bootstrap_bca")
    result = check_one(_t(">=", 0.85), 0.9, other, confidence=CONF)
    assert result.outcome == "fail" and "confidence" in result.reason


def test_interval_checks_need_the_policy_confidence() -> None:
    with pytest.raises(ValueError, match="confidence"):
        check_gate([_t(">=", 0.5)], {"m": 0.9}, {"m": _mean(0.9, 0.8, 0.95)})


@given(op=st.sampled_from([*OPS, "==", "abs<="]), line=st.floats(-1, 1))
def test_nan_never_passes_an_interval_check(op: str, line: float) -> None:
    result = check_one(_t(op, line), math.nan, None, confidence=CONF)
    assert result.outcome == "fail"


# ----------------------------------------------------------------------------- the verdict
def test_verdict_outcome_combines_checks() -> None:
    gate = [_t(">=", 0.5), GateThreshold(metric="n", op=">=", value=10)]
    passing = {"m": _mean(0.9, 0.8, 0.95)}
    straddling = {"m": _mean(0.6, 0.4, 0.8)}
    assert check_gate(gate, {"m": 0.9, "n": 20}, passing, confidence=CONF).outcome == "pass"
    undecided = check_gate(gate, {"m": 0.6, "n": 20}, straddling, confidence=CONF)
    assert undecided.outcome == "inconclusive" and not undecided.passed and undecided.failed == []
    assert undecided.summary().startswith("inconclusive")
    both = check_gate(gate, {"m": 0.6, "n": 5}, straddling, confidence=CONF)
    assert both.outcome == "fail" and [c.metric for c in both.failed] == ["n"]
    assert "inconclusive" in both.summary()
    assert gate_review("validation", undecided) is not None and gate_review("validation", both.model_copy(
        update={"outcome": "pass", "passed": True})) is None
    with pytest.raises(ValueError, match="rejects"):
        gate_review("validation", both)


def test_verdict_round_trips_json() -> None:
    verdict = check_gate([_t(">=", 0.5)], {"m": 0.6}, {"m": _mean(0.6, 0.4, 0.8)}, confidence=CONF)
    again = type(verdict).model_validate_json(verdict.model_dump_json())
    assert again == verdict and again.checks[0].outcome == "inconclusive"


# ----------------------------------------------------------------------------- categories
KB = {"billing-dispute": "billing", "billing-chargeback": "billing", "billing-plan-prices": "billing",
      "refunds-window": "refunds", "refunds-annual": "refunds", "legal-threat": "legal"}


def test_category_map_resolves_ids_and_categories_and_names_bad_fields() -> None:
    groups = [HighStakesCategory(name="billing_disputes", kb_ids=["billing-dispute", "billing-chargeback"]),
              HighStakesCategory(name="refunds", kb_categories=["refunds"])]
    cmap = CategoryMap.build(KB, groups)
    assert cmap.high_stakes == {"billing_disputes": {"billing-dispute", "billing-chargeback"},
                                "refunds": {"refunds-window", "refunds-annual"}}
    with pytest.raises(ValueError, match=r"high_stakes_categories\.0 \(x\)\.kb_ids: \['nope'\]"):
        CategoryMap.build(KB, [HighStakesCategory(name="x", kb_ids=["nope"])])
    with pytest.raises(ValueError, match="kb_categories"):
        CategoryMap.build(KB, [HighStakesCategory(name="x", kb_categories=["returns"])])


def test_shipped_high_stakes_categories_match_the_knowledge_base() -> None:
    from llm_release.suites.knowledge_base import KnowledgeBase

    cmap = CategoryMap.from_kb(KnowledgeBase.load(), POLICY.offline_metrics.high_stakes_categories)
    assert cmap.high_stakes["billing_disputes"] == {"billing-dispute", "billing-chargeback", "billing-double-charge"}
    assert cmap.high_stakes["account_closure"] == {"account-close", "account-closure-dispute"}
    assert len(cmap.high_stakes["refunds"]) == 7 and len(cmap.high_stakes["legal"]) == 4


def _rows(kb_id: str, n: int, hallucinated: int, violated: int = 0, score: float = 0.9) -> list[dict]:
    return [{"kb_id": kb_id, "answered": True, "score": score - 0.4 * (i < hallucinated) + 0.01 * (i % 3),
             "hallucinated": i < hallucinated, "violated": i < violated} for i in range(n)]


def _category_gate(rows: list[dict], stage: str = "validation") -> tuple:
    groups = POLICY.offline_metrics.high_stakes_categories
    cmap = CategoryMap.build(KB | {"billing-double-charge": "billing", "account-close": "account",
                                   "account-closure-dispute": "account", "refunds-escalation": "refunds"}, groups)
    metrics, evidence = category_evidence(pd.DataFrame(rows), cmap, CONF, prefix="shadow_" if stage == "staging"
                                          else "")
    checks = [c for c in stage_checks(POLICY, stage) if "_hs_" in f"_{c.metric}"]
    return metrics, evidence, check_gate(checks, metrics, evidence, confidence=CONF)


def test_a_category_above_its_ceiling_fails_with_its_name_even_when_the_average_passes() -> None:
    rows = (_rows("refunds-window", 21, hallucinated=5) + _rows("billing-dispute", 400, 0)
            + _rows("legal-threat", 400, 0) + _rows("account-close", 400, 0))
    overall = sum(r["hallucinated"] for r in rows) / len(rows)
    assert overall < POLICY.offline_metrics.hallucination_rate_max  # the average hides it
    metrics, evidence, verdict = _category_gate(rows)
    assert verdict.outcome == "fail"
    (failed,) = [c for c in verdict.failed if c.metric == "hs_refunds_hallucination_rate"]
    assert failed.reason.startswith("hs_refunds_hallucination_rate 0.238 [0.106, 0.451] n=21 above 0.03")
    assert metrics["hs_refunds_n"] == 21.0 and metrics["kb_refunds_n"] == 21.0
    table = evidence_table(verdict, evidence)
    assert "| hs_refunds_hallucination_rate | 0.2381 | 21 |" in table and "| kb_refunds_scs |" in table


def test_a_category_with_too_few_samples_is_inconclusive_never_a_pass() -> None:
    rows = (_rows("refunds-window", 400, 0) + _rows("billing-dispute", 400, 0) + _rows("legal-threat", 400, 0)
            + _rows("account-close", 5, 0, score=1.0))
    _, _, verdict = _category_gate(rows)
    assert verdict.outcome == "inconclusive"
    assert {c.metric for c in verdict.inconclusive} == {
        high_stakes_metric("account_closure", m) for m in ("scs", "hallucination_rate", "policy_violation_rate")}
    assert all("fewer samples than the minimum 10" in c.reason for c in verdict.inconclusive)


def test_a_single_policy_violation_in_a_category_fails_it() -> None:
    rows = (_rows("refunds-window", 400, 0) + _rows("billing-dispute", 400, 0, violated=1)
            + _rows("legal-threat", 400, 0) + _rows("account-close", 400, 0))
    _, _, verdict = _category_gate(rows, stage="staging")
    assert [c.metric for c in verdict.failed] == ["shadow_hs_billing_disputes_policy_violation_rate"]


def test_a_category_with_no_sample_is_reported_and_inconclusive() -> None:
    rows = _rows("refunds-window", 400, 0) + _rows("billing-dispute", 400, 0) + _rows("legal-threat", 400, 0)
    metrics, _, verdict = _category_gate(rows, stage="staging")
    assert metrics["shadow_hs_account_closure_n"] == 0.0 and math.isnan(metrics["shadow_hs_account_closure_scs"])
    assert verdict.outcome == "inconclusive"


def test_category_floor_defaults_to_the_stage_line_and_can_be_stricter() -> None:
    checks = {c.metric: c for c in stage_checks(POLICY, "staging")}
    assert checks["shadow_hs_refunds_scs"].value == POLICY.shadow.scs_min
    assert checks["shadow_hs_refunds_scs"].min_n == 30
    validation = {c.metric: c for c in stage_checks(POLICY, "validation")}
    assert validation["hs_refunds_scs"].value == POLICY.offline_metrics.scs_min
    stricter = POLICY.model_copy(deep=True)
    stricter.offline_metrics.high_stakes_categories[1].hallucination_rate_max = 0.02
    check = {c.metric: c for c in stage_checks(stricter, "validation")}["hs_refunds_hallucination_rate"]
    assert (check.value, check.source) == (0.02, "offline_metrics.high_stakes_categories.1.hallucination_rate_max")


# ----------------------------------------------------------------------------- bootstrap
def test_mean_evidence_is_reproducible_and_covers_the_mean() -> None:
    values = list(np.random.default_rng(3).beta(8, 2, size=200))
    first, second = mean_evidence(values, CONF), mean_evidence(values, CONF)
    assert first == second and first.method == "bootstrap_bca"
    assert first.lo is not None and first.hi is not None and first.lo < first.value < first.hi  # type: ignore[operator]
    assert first.hi - first.lo < 0.05  # type: ignore[operator]
    assert mean_evidence([1.0] * 12, CONF).lo == 1.0 and mean_evidence([], CONF).value is None
    with pytest.raises(ValueError, match="non-finite"):
        mean_evidence([0.5, math.nan], CONF)


# ----------------------------------------------------------------------------- routing
def test_inconclusive_gate_opens_a_review_with_the_table_at_every_stage() -> None:
    verdict = check_gate([_t(">=", 0.5)], {"m": 0.6}, {"m": _mean(0.6, 0.4, 0.8)}, confidence=CONF)
    for stage in ("development", "staging"):
        (review,) = review_requirements(POLICY, stage, verdict, {})
        assert review.gate == f"{stage}_gate" and review.checks[0].metric == "m"
    # stage 2 adds the section-3 routing table (here: nothing measured -> those routes need a person too)
    gates = [r.gate for r in review_requirements(POLICY, "validation", verdict, {})]
    assert gates[0] == "validation_gate" and "policy_compliance" in gates
