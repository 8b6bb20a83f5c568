"""Section 6 monitoring lines: which live metrics are past their alert or critical line.

The rollout's pause, page and rollback triggers decide what the pipeline does; these lines decide who
hears about it (alert: the release channel; critical: also ``monitoring.escalation.critical_notify_roles``).
A metric that was not measured is reported as unmeasured, never as healthy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from llm_release.decisions._numbers import as_finite
from llm_release.policy import MonitoredMetric, MonitoringPolicy


class MonitoringAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    level: Literal["alert", "critical"]
    observed: float
    line: float
    detail: str


class MonitoringReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    alerts: list[MonitoringAlert]
    unmeasured: list[str]

    @property
    def critical(self) -> list[MonitoringAlert]:
        return [a for a in self.alerts if a.level == "critical"]


def _line(entry: MonitoredMetric, level: str, baseline: float | None) -> float | None:
    value = float(entry.alert if level == "alert" else entry.critical)
    if not entry.relative_to_baseline:
        return value
    if baseline is None:
        return None
    return baseline * (1 + value) if entry.direction == "above" else baseline * (1 - value)


def _past(entry: MonitoredMetric, observed: float, line: float) -> bool:
    # "> 0 %" for policy violations: any violation is past the line; otherwise strictly beyond it.
    return observed > line if entry.direction == "above" else observed < line


def monitoring_report(
    monitoring: MonitoringPolicy, observed: Mapping[str, object], baseline: Mapping[str, object] | None = None
) -> MonitoringReport:
    """Compare ``observed`` live metrics with every monitored metric's alert and critical lines.

    Relative lines (escalation > baseline + 20 %, throughput drop > 20 % below baseline) need the
    baseline's value; without it the metric is unmeasured.
    """
    alerts: list[MonitoringAlert] = []
    unmeasured: list[str] = []
    entries = [*monitoring.llm_metrics, *monitoring.system_metrics]
    for entry in entries:
        value, _ = as_finite(observed.get(entry.metric))
        base, _ = as_finite((baseline or {}).get(entry.metric))
        if value is None:
            unmeasured.append(entry.metric)
            continue
        for level in ("critical", "alert"):
            line = _line(entry, level, base)
            if line is None:
                unmeasured.append(entry.metric)
                break
            if _past(entry, value, line):
                relative = f" (baseline {base:g})" if entry.relative_to_baseline else ""
                alerts.append(
                    MonitoringAlert(
                        metric=entry.metric,
                        level=level,  # type: ignore[arg-type]
                        observed=value,
                        line=line,
                        detail=f"{entry.metric} {value:g} past the {level} line {line:g}{relative}",
                    )
                )
                break
    return MonitoringReport(alerts=alerts, unmeasured=sorted(set(unmeasured)))
