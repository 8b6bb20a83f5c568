"""Approval routing (spec section 3): which automated results need a human before the gate opens."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from llm_release.decisions.gates import CheckResult, check_one
from llm_release.policy import ApprovalRoute


class ReviewRequirement(BaseModel):
    model_config = ConfigDict(frozen=True)

    gate: str
    reason: str
    reviewer_action: str
    checks: list[CheckResult]


def required_reviews(
    routes: Sequence[ApprovalRoute], measurements: Mapping[str, Any], gates: Sequence[str] | None = None
) -> list[ReviewRequirement]:
    """Routes (optionally only those named in ``gates``) whose results must be reviewed by a person.

    ``on_condition`` routes need review when any check fails or is unmeasured (missing evidence
    goes to a person, never silently through).
    """
    needed: list[ReviewRequirement] = []
    for route in routes:
        if gates is not None and route.gate not in gates:
            continue
        if route.human_required == "always":
            needed.append(
                ReviewRequirement(
                    gate=route.gate,
                    reason="always reviewed by a human",
                    reviewer_action=route.reviewer_action,
                    checks=[],
                )
            )
        elif route.human_required == "on_condition":
            checks = [check_one(t, measurements.get(t.metric)) for t in route.human_review_unless]
            failed = [c for c in checks if not c.passed]
            if failed:
                needed.append(
                    ReviewRequirement(
                        gate=route.gate,
                        reason="; ".join(c.reason for c in failed),
                        reviewer_action=route.reviewer_action,
                        checks=checks,
                    )
                )
    return needed
