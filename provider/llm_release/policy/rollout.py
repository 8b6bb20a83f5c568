"""Spec section 5: rollout phases, acceleration rules and the serving requirements per phase."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, model_validator

from llm_release.policy._base import Fraction, Identifier, Positive, StrictModel

PhaseKind = Literal["shadow", "canary", "progressive", "full"]
_KIND_ORDER = {"shadow": 0, "canary": 1, "progressive": 2, "full": 3}


class RolloutPhase(StrictModel):
    name: Identifier
    kind: PhaseKind
    traffic_percent: float = Field(ge=0, le=100)
    dwell_hours: Positive
    """Minimum time at this phase (spec: dwell times are minimums, extension always permitted)."""
    max_dwell_hours: Positive | None = None
    """Shadow only: the upper end of the spec's 12-18 h range."""
    population: str = ""
    infrastructure: str = ""


class CanaryAcceleration(StrictModel):
    """If the canary at ``measured_at_phase`` is this good, later phases dwell less (spec section 5)."""

    measured_at_phase: Identifier
    min_scs: Fraction
    max_p99_ms: Positive
    """Inclusive: p99 <= max_p99_ms."""
    max_error_rate: Fraction
    """Strict: error rate < max_error_rate."""
    max_scs_drop_from_baseline: Fraction | None = None
    """Spec section 1: accelerate only when SCS is within this relative drop of the stable baseline.
    When set, acceleration needs the baseline SCS; without it the rule fails closed (no acceleration)."""
    target_phases: list[Identifier] = Field(min_length=1)
    dwell_reduction: Fraction
    """Fraction removed from the target phases' dwell (0.30 = 30 % shorter)."""


class CleanStreakAcceleration(StrictModel):
    """After N consecutive clean releases the canary dwells shrink (spec sections 1 and 5, DESIGN)."""

    required_clean_releases: int = Field(ge=1)
    tier_1_phase: Identifier
    tier_1_dwell_hours: Positive
    other_canary_reduction: Fraction


class LiveEvidencePolicy(StrictModel):
    """How much live evidence a rollout decision needs (DESIGN: measurement honesty).

    A rate computed on a handful of requests is evidence of neither a breach nor health: rate triggers
    compare the Wilson interval of the rate at ``confidence`` with their threshold (above: breach; below:
    clean; straddling: hold and gather more traffic). Live quality samples need ``min_judged_per_sample``
    judged answers and expire after ``max_sample_age_minutes``.
    """

    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Two-sided confidence of the Wilson interval around every live rate a trigger weighs."""
    min_judged_per_sample: int = Field(default=80, ge=1)
    """Fewest judged live answers an hourly quality sample (SCS, hallucination) needs to count."""
    max_sample_age_minutes: Positive = 90.0
    """A quality sample older than this is unmeasured (the hourly cadence plus slack), never reused."""
    clear_with_last_samples: int = Field(default=4, ge=1)
    """A latest quality sample whose rate straddles its line is cleared (never condemned) when this many
    latest samples pooled lie below it; 1 turns pooling off. A judge that flags a few per cent of good
    answers puts one hourly sample of a healthy candidate near a 5 % line; the pool keeps that noise from
    holding every phase while a breach still needs the latest sample alone."""


class RolloutPolicy(StrictModel):
    phases: list[RolloutPhase] = Field(min_length=2)
    """Shadow first (0 % traffic), traffic strictly increasing, ending at 100 %."""
    canary_skippable: Literal[False] = False
    """High user impact: canary stages cannot be skipped regardless of risk score."""
    total_window_hours: Positive | None = None
    """The spec's ~48 h from canary start to full-rollout confirmation (informational)."""
    canary_acceleration: CanaryAcceleration
    clean_streak: CleanStreakAcceleration
    evidence: LiveEvidencePolicy = LiveEvidencePolicy()

    @model_validator(mode="after")
    def _phases_ordered(self) -> RolloutPolicy:
        problems: list[str] = []
        names = [p.name for p in self.phases]
        if len(set(names)) != len(names):
            problems.append(f"phase names must be unique, got {names}")
        first, last = self.phases[0], self.phases[-1]
        if first.kind != "shadow" or first.traffic_percent != 0:
            problems.append("the first phase must be the shadow phase with traffic_percent 0")
        if [p.kind for p in self.phases].count("shadow") != 1:
            problems.append("exactly one shadow phase is required")
        if last.traffic_percent != 100 or last.kind != "full":
            problems.append("the last phase must be kind 'full' at traffic_percent 100")
        traffic = [p.traffic_percent for p in self.phases]
        if any(b <= a for a, b in itertools.pairwise(traffic)):
            problems.append(f"traffic_percent must be strictly increasing, got {traffic}")
        kinds = [_KIND_ORDER[p.kind] for p in self.phases]
        if kinds != sorted(kinds):
            problems.append("phases must go shadow -> canary -> progressive -> full")
        if "canary" not in {p.kind for p in self.phases}:
            problems.append("at least one canary phase is required (canary stages cannot be skipped)")
        for phase in self.phases:
            if phase.max_dwell_hours is not None:
                if phase.kind != "shadow":
                    problems.append(f"phase {phase.name}: max_dwell_hours is only for the shadow phase")
                elif phase.max_dwell_hours < phase.dwell_hours:
                    problems.append(f"phase {phase.name}: max_dwell_hours below dwell_hours")
        by_name = {p.name: p for p in self.phases}
        accel = self.canary_acceleration
        if accel.measured_at_phase not in by_name:
            problems.append(
                f"canary_acceleration.measured_at_phase {accel.measured_at_phase!r} is not a phase"
            )
        elif by_name[accel.measured_at_phase].kind != "canary":
            problems.append("canary_acceleration.measured_at_phase must be a canary phase")
        for target in accel.target_phases:
            if target not in by_name:
                problems.append(f"canary_acceleration.target_phases: {target!r} is not a phase")
            elif accel.measured_at_phase in by_name and names.index(target) <= names.index(
                accel.measured_at_phase
            ):
                problems.append(
                    f"canary_acceleration.target_phases: {target!r} is not after the measured phase"
                )
        tier_1 = self.clean_streak.tier_1_phase
        if tier_1 not in by_name or by_name[tier_1].kind != "canary":
            problems.append(f"clean_streak.tier_1_phase {tier_1!r} is not a canary phase")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def shadow(self) -> RolloutPhase:
        return self.phases[0]

    @property
    def live_phases(self) -> list[RolloutPhase]:
        """Phases that expose users to the candidate (everything after shadow)."""
        return self.phases[1:]

    def phase(self, name: str) -> RolloutPhase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise ValueError(f"unknown rollout phase {name!r}; valid: {[p.name for p in self.phases]}")
