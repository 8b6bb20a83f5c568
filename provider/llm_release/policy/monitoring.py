"""Spec section 6: monitored metrics with alert/critical thresholds, behavioural signals, escalation path."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_release.policy._base import FiniteFloat, Fraction, Identifier, Positive, StrictModel


class MonitoredMetric(StrictModel):
    """``direction`` says which way is bad: ``above`` alerts when value > alert (or >= with inclusive)."""

    metric: Identifier
    description: str = ""
    direction: Literal["above", "below"]
    alert: FiniteFloat
    critical: FiniteFloat
    relative_to_baseline: bool = False
    """Thresholds are fractions of the baseline (e.g. escalation > baseline + 20 %)."""
    cadence_minutes: Positive
    cadence: str = ""
    sample_fraction: Fraction | None = None
    """Share of traffic sampled for the measurement (live SCS: 2 %)."""

    @model_validator(mode="after")
    def _critical_beyond_alert(self) -> MonitoredMetric:
        alert, critical = self.alert, self.critical
        if self.relative_to_baseline and self.direction == "below":
            # fractions below the baseline: a larger fraction is the more severe drop
            alert, critical = 1 - alert, 1 - critical
        worse_or_equal = critical >= alert if self.direction == "above" else critical <= alert
        if not worse_or_equal:
            raise ValueError(
                f"critical ({self.critical:g}) must be at least as severe as alert ({self.alert:g}) "
                f"for direction {self.direction!r}"
            )
        return self


class BehavioralSignal(StrictModel):
    metric: Identifier
    description: str = ""
    alert_when: str
    alert_relative_increase: float | None = None
    """e.g. 0.15 = baseline + 15 %; 1.0 = a spike above 2x the daily baseline."""
    window_hours: Positive | None = None


class EscalationPath(StrictModel):
    alert_channels: list[str] = Field(min_length=1)
    on_call_response_minutes: Positive
    critical_notify_roles: list[Identifier] = []
    post_incident_review_hours: Positive


class MonitoringPolicy(StrictModel):
    llm_metrics: list[MonitoredMetric] = Field(min_length=1)
    system_metrics: list[MonitoredMetric] = Field(min_length=1)
    behavioral_signals: list[BehavioralSignal] = []
    escalation: EscalationPath

    @model_validator(mode="after")
    def _unique(self) -> MonitoringPolicy:
        names = [m.metric for m in [*self.llm_metrics, *self.system_metrics]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"monitored metric names must be unique, duplicated: {duplicates}")
        return self

    def metric(self, name: str) -> MonitoredMetric | None:
        """The LLM or system metric entry called ``name``."""
        return next((m for m in [*self.llm_metrics, *self.system_metrics] if m.metric == name), None)
