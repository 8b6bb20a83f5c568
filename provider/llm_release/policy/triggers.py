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
    threshold: FiniteFloat
    evaluation: Evaluation
    minutes: Positive | None = None
    """Span for sustained/window; for ``sample``, an optional maximum age of the sample."""
    relative_to_baseline: bool = False
    action: TriggerAction
    applies_to_phases: list[Identifier] | None = None
    """None: every live rollout phase."""
    ratio_of: RatioCounts | None = None
    max_gap_minutes: Positive = Field(default=1.0)
    """Sustained only: a longer gap between consecutive samples breaks the run."""
    description: str = ""

    @model_validator(mode="after")
    def _minutes_match_evaluation(self) -> Trigger:
        if self.evaluation in ("sustained", "window") and self.minutes is None:
            raise ValueError(f"evaluation {self.evaluation!r} needs minutes")
        if self.evaluation == "instant" and self.minutes is not None:
            raise ValueError("evaluation 'instant' takes no minutes")
        if self.ratio_of is not None and self.evaluation != "window":
            raise ValueError("ratio_of is only used by evaluation 'window'")
        return self
