"""The five promotion stages of spec section 2: purpose, entry/exit criteria, approver, time budget.

Measurable exit criteria live in ``ReleasePolicy.gates`` (keyed by stage id); this model carries the
rest of the stage table so the DAG can document itself and enforce time budgets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from llm_release.policy._base import Identifier, Positive, StageId, StrictModel


class StagePolicy(StrictModel):
    """One row group of spec section 2."""

    id: StageId
    number: int
    title: str
    purpose: str = ""
    entry_criteria: list[str]
    exit_criteria: list[str]
    approver: Literal["automated", "human"]
    """``human``: sign-off is mandatory and no automation may bypass it (spec flag 3, stage 4)."""
    approver_description: str = ""
    notify_roles: list[Identifier] = []
    """Who is told about the results (e.g. the ML engineer at stage 2, the quality lead at stage 3)."""
    time_budget_min_hours: Positive | None = None
    """Lower bound of the budget when the spec gives a range (stage 3: 12-18 h including peak traffic)."""
    time_budget_max_hours: Positive

    @model_validator(mode="after")
    def _budget_ordered(self) -> StagePolicy:
        if self.time_budget_min_hours is not None and self.time_budget_min_hours > self.time_budget_max_hours:
            raise ValueError(
                f"time_budget_min_hours ({self.time_budget_min_hours}) exceeds "
                f"time_budget_max_hours ({self.time_budget_max_hours})"
            )
        if not 1 <= self.number <= 5:
            raise ValueError(f"number must be 1..5, got {self.number}")
        return self
