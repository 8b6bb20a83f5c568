"""Building blocks shared by every policy model.

Every model forbids unknown keys so that a misspelt override in a user's YAML is an error rather than a
silently ignored setting: in a release policy an ignored threshold is a disabled safety check.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

ComparisonOp = Literal[">=", ">", "<=", "<", "==", "abs<="]
"""How an observed value is compared with a threshold. ``abs<=`` bounds a signed delta on both sides."""

StageId = Literal["development", "validation", "staging", "preproduction", "production"]
STAGE_IDS: tuple[str, ...] = ("development", "validation", "staging", "preproduction", "production")

RiskLevelName = Literal["low", "medium", "high", "critical"]
RISK_LEVEL_NAMES: tuple[str, ...] = ("low", "medium", "high", "critical")

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]*$"
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, max_length=64)]
"""Metric, role, phase and trigger names: lower snake case, so they are safe as XCom keys and task ids."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0), AfterValidator(_finite)]
NonNegative = Annotated[float, Field(ge=0.0), AfterValidator(_finite)]
Positive = Annotated[float, Field(gt=0.0), AfterValidator(_finite)]
Milliseconds = Annotated[float, Field(gt=0.0, le=600_000.0), AfterValidator(_finite)]
"""A latency in milliseconds: positive, at most ten minutes (a value in seconds or microseconds is caught
by the range of the field it goes to, e.g. 2.8 for 2800 fails the p50 <= p95 ordering or a floor)."""
Score = Annotated[float, Field(ge=0.0, le=100.0), AfterValidator(_finite)]
"""A decision-engine score on the spec's 0..100 scale."""


class StrictModel(BaseModel):
    """Base of all policy models: unknown keys are rejected (see module docstring)."""

    model_config = ConfigDict(extra="forbid")


class GateThreshold(StrictModel):
    """One measurable exit criterion: the gate passes this check when ``observed <op> value`` holds.

    ``metric`` is the name an operator pushes in its measurements mapping; a missing, NaN or infinite
    measurement fails the check (fail closed).
    """

    model_config = ConfigDict(extra="forbid")

    metric: Identifier
    op: ComparisonOp
    value: FiniteFloat
    description: str = ""
    source: str = ""
    """The policy field the value comes from (``performance.latency_p95_ms``), shown with the verdict."""
    interval: bool = False
    """The measurement must come with its evidence (n and an interval, ``decisions.evidence``): the check
    passes only when the interval lies on the passing side; without evidence it fails closed."""
    min_n: int | None = Field(default=None, ge=1)
    """Fewest samples the evidence may rest on; fewer is inconclusive (a person decides), never a pass."""
    breach_to_review: bool = False
    """A point check whose breach rests on a judge's verdict, not on a rule: a breach is inconclusive (a
    person looks at the evidence and decides), never a pass and never an automatic rejection."""
