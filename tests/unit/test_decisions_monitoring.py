"""Section 6 monitoring lines: alert vs critical, relative lines, unmeasured never healthy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions.monitoring import monitoring_report
from llm_release.policy import DEFAULT_PROFILE, load_policy

POLICY = load_policy(DEFAULT_PROFILE)


def test_monitoring_lines_alert_then_critical():
    report = monitoring_report(POLICY.monitoring, {"scs": 0.83, "error_rate": 0.03, "p99_ms": 3000})
    levels = {a.metric: a.level for a in report.alerts}
    assert levels == {"scs": "alert", "error_rate": "critical"}


def test_unmeasured_monitored_metric_is_reported_not_healthy():
    report = monitoring_report(POLICY.monitoring, {"scs": 0.9})
    assert "error_rate" in report.unmeasured and "scs" not in report.unmeasured
    assert report.alerts == []


def test_relative_line_needs_the_baseline():
    assert "escalation_rate" in monitoring_report(POLICY.monitoring, {"escalation_rate": 0.5}).unmeasured
    report = monitoring_report(POLICY.monitoring, {"escalation_rate": 0.14}, {"escalation_rate": 0.10})
    assert [(a.metric, a.level) for a in report.alerts] == [("escalation_rate", "critical")]


def test_any_policy_violation_is_critical():
    report = monitoring_report(POLICY.monitoring, {"policy_violation_rate": 0.001})
    assert [(a.metric, a.level) for a in report.alerts] == [("policy_violation_rate", "critical")]


@given(st.floats(min_value=0.0, max_value=1.0))
def test_critical_implies_past_alert_line(scs):
    report = monitoring_report(POLICY.monitoring, {"scs": scs})
    entry = POLICY.monitoring.metric("scs")
    level = next((a.level for a in report.alerts if a.metric == "scs"), None)
    if scs < entry.critical:
        assert level == "critical"
    elif scs < entry.alert:
        assert level == "alert"
    else:
        assert level is None
