"""Pause, rollback and paging triggers as data (spec sections 1, 5, 6 and 7).

A trigger fires when ``observed <op> threshold`` holds under its evaluation mode:

- ``instant``: the latest sample breaches.
- ``sustained``: every sample over the trailing ``minutes`` breaches and the samples cover the whole span
  without a gap longer than ``max_gap_minutes`` (a short history is not sustained yet).
- ``window``: the aggregate over the trailing ``minutes`` breaches (ratios from summed counts when
  ``ratio_of`` names them; never an average of rates).
- ``sample``: the latest sample that carries the metric (e.g. the hourly live-quality sample).

With ``relative_to_baseline`` the threshold is a fraction: ``>``/``>=`` compare with baseline x (1 + t),
``<``/``<=`` with baseline x (1 - t).

A trigger whose line is one of section 6's monitoring lines names it (``monitoring_line: critical``)
instead of restating the number: ``ReleasePolicy`` fills ``threshold`` from ``monitoring`` when it loads,
so the number has one home.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_release.policy._base import FiniteFloat, Identifier, Positive, StrictModel

TriggerAction = Literal["hold", "pause", "rollback", "page"]
Evaluation = Literal["instant", "sustained", "window", "sample"]


class RatioCounts(StrictModel):
    """The counters whose sums give a rate over a window, e.g. errors / requests."""

    numerator: Identifier
    denominator: Identifier


class Trigger(StrictModel):
    name: Identifier
    metric: Identifier
    op: Literal[">", ">=", "<", "<="]
    threshold: FiniteFloat | None = None
    """The line; None when ``monitoring_line`` names it (filled in by ``ReleasePolicy``)."""
    monitoring_line: Literal["alert", "critical"] | None = None
    """Take the threshold from ``monitoring``'s entry for this metric at this level."""
    evaluation: Evaluation
    minutes: Positive | None = None
    """Span for sustained/window; for ``sample``, an optional maximum age of the sample."""
    relative_to_baseline: bool = False
    action: TriggerAction
    applies_to_phases: list[Identifier] | None = None
    """None: every live rollout phase."""
    ratio_of: RatioCounts | None = None
    min_count: int | None = Field(default=None, ge=1)
    """Ratio triggers: fewest denominator events (e.g. requests) an evaluation may rest on. The window
    reaches further back until it holds that many; with fewer in the whole history the trigger is
    unmeasured, never a hit (one error in two requests is not "an error rate of 50 %")."""
    max_gap_minutes: Positive = Field(default=1.0)
    """Sustained only: a longer gap between consecutive samples breaks the run."""
    description: str = ""

    @model_validator(mode="after")
    def _minutes_match_evaluation(self) -> Trigger:
        if self.evaluation in ("sustained", "window") and self.minutes is None:
            raise ValueError(f"evaluation {self.evaluation!r} needs minutes")
        if self.evaluation == "instant" and self.minutes is not None:
            raise ValueError("evaluation 'instant' takes no minutes")
        if self.ratio_of is not None and self.evaluation == "instant":
            raise ValueError("ratio_of is only used by evaluations 'window', 'sustained' and 'sample'")
        if self.min_count is not None and self.ratio_of is None:
            raise ValueError("min_count needs ratio_of (it counts the ratio's denominator)")
        if self.threshold is None and self.monitoring_line is None:
            raise ValueError("give threshold or monitoring_line (the monitoring entry whose line it is)")
        if self.threshold is not None:
            problem = scale_problem(self.metric, self.threshold, relative=self.relative_to_baseline)
            if problem:
                raise ValueError(f"threshold: {problem}")
        return self


RATE_METRICS = frozenset({"scs", "coherence"})
"""Scores on a 0..1 scale that do not end in ``_rate``."""
COUNT_METRICS = frozenset({"policy_violations", "novel_adversarial_patterns", "errors", "requests", "escalations"})


def scale_problem(metric: str, value: float, *, relative: bool = False) -> str | None:
    """Why ``value`` is on the wrong scale for ``metric`` (97 for 0.97, 2.8 s for 2800 ms), or None.

    Rates and scores are fractions 0..1; relative-to-baseline lines are fractions 0..10 (+1000 % at
    most); latencies are milliseconds > 0 (below 10 they are almost surely seconds); counts are >= 0.
    """
    if relative:
        return None if 0 <= value <= 10 else f"{value:g} is not a fraction of the baseline (0.25 = +25 %)"
    if metric in RATE_METRICS or metric.endswith("_rate"):
        return None if 0 <= value <= 1 else f"{metric} is a fraction 0..1, got {value:g} (0.97, not 97)"
    if metric.endswith("_ms"):
        return None if value >= 10 else f"{metric} is in milliseconds, got {value:g} (2800, not 2.8)"
    if metric in COUNT_METRICS:
        return None if value >= 0 else f"{metric} is a count >= 0, got {value:g}"
    return None
