"""The verdict records every judge returns (reference judge, claim judge), in one module without
dependencies so that both judges and their callers import them without cycles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ClaimLabel = Literal["supported", "contradicted", "unsupported"]
CLAIM_LABELS: tuple[str, ...] = ("supported", "contradicted", "unsupported")


@dataclass(frozen=True)
class ClaimVerdict:
    """One atomic claim of a response. ``score`` is the calibrated probability of ``label`` (for a faulty
    label: the probability that the claim is faulty); ``evidence`` is the evidence sentence it was compared
    with; ``features`` are the reviewer-readable numbers the model combined."""

    text: str
    label: ClaimLabel
    score: float
    evidence: str
    features: dict[str, float] = field(default_factory=dict)
    p_faulty: float = 0.0


@dataclass(frozen=True)
class Judgement:
    """The verdict on one response, with the evidence behind it."""

    score: float
    correct: bool
    hallucinated: bool
    escalated: bool
    reasons: tuple[str, ...] = ()
    fact_coverage: float | None = None
    similarity: float | None = None
    missing_facts: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()
    grounding_kb_id: str | None = None
    expected_escalation: bool | None = None
    claims: tuple[ClaimVerdict, ...] = ()
    grounding_how: str | None = None
    evidence: str | None = None
