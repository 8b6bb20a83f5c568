"""Ranges and scales per field: a number on the wrong scale is an error naming the field."""

from __future__ import annotations

import copy

import pytest

from llm_release.policy import DEFAULT_PROFILE, PolicyError
from llm_release.policy.loader import resolve_policy_document, validate_policy_mapping

BASE, _ = resolve_policy_document(DEFAULT_PROFILE)


def _problems(mutate) -> list[str]:
    doc = copy.deepcopy(BASE)
    mutate(doc)
    with pytest.raises(PolicyError) as err:
        validate_policy_mapping(doc, "policy.yaml")
    return err.value.problems


def _trigger(doc: dict, group: str, name: str) -> dict:
    return next(t for t in doc[group] if t["name"] == name)


def test_rate_given_as_percentage_is_refused():
    problems = _problems(lambda d: d["adversarial"]["prompt_injection"].update(min_pass_rate=97))
    assert any("adversarial.prompt_injection.min_pass_rate" in p for p in problems)


def test_score_given_as_fraction_is_refused():
    problems = _problems(lambda d: d["decision_engine"]["routing_bands"][1].update(min_score=0.78))
    assert any("decision_engine" in p and "0..100 scale" in p for p in problems)


def test_trigger_rate_on_wrong_scale_is_refused():
    name = "hallucination_over_5pct_hourly"
    problems = _problems(lambda d: _trigger(d, "rollback_triggers", name).update(threshold=5))
    assert any("rollback_triggers.4" in p and "0.97, not 97" in p for p in problems)


def test_latency_in_seconds_is_refused():
    problems = _problems(lambda d: _trigger(d, "rollback_triggers", "p99_over_5000_sustained_3min").update(threshold=5))
    assert any("milliseconds" in p for p in problems)
    problems = _problems(lambda d: d["performance"].update(latency_p95_ms=2.8))
    assert any("performance" in p and "latency_p95_ms" in p for p in problems)


def test_monitoring_alert_after_critical_is_refused():
    def swap(d):
        scs = next(m for m in d["monitoring"]["llm_metrics"] if m["metric"] == "scs")
        scs.update(alert=0.80, critical=0.84)

    assert any("monitoring.llm_metrics" in p and "at least as severe" in p for p in _problems(swap))


def test_monitoring_rate_on_wrong_scale_is_refused():
    def percent(d):
        err = next(m for m in d["monitoring"]["system_metrics"] if m["metric"] == "error_rate")
        err.update(alert=1, critical=2.5)

    assert any("monitoring.system_metrics.2" in p and "fraction" in p for p in _problems(percent))


def test_trigger_restating_a_monitoring_line_with_another_number_is_refused():
    problems = _problems(lambda d: _trigger(d, "rollback_triggers", "error_rate_sustained_5min").update(threshold=0.03))
    assert any("restates monitoring.error_rate.critical" in p for p in problems)


def test_trigger_takes_its_line_from_monitoring():
    doc = copy.deepcopy(BASE)
    err = next(m for m in doc["monitoring"]["system_metrics"] if m["metric"] == "error_rate")
    err["critical"] = 0.03
    policy = validate_policy_mapping(doc, "policy.yaml")
    trigger = next(t for t in policy.rollback_triggers if t.name == "error_rate_sustained_5min")
    assert trigger.threshold == 0.03
