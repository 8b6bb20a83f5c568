"""Spec section 4: the Release Decision Engine's weights, component formulas, bands and rejection flow."""

from __future__ import annotations

import itertools
from typing import Literal

from pydantic import Field, model_validator

from llm_release.policy._base import Fraction, Identifier, NonNegative, Positive, StrictModel

BandName = Literal["advance", "enhanced_review", "remediation", "reject"]


class ComponentWeights(StrictModel):
    """Points each component can contribute; they must add up to 100."""

    safety: NonNegative
    accuracy: NonNegative
    user_simulation: NonNegative
    latency: NonNegative

    @model_validator(mode="after")
    def _sum_to_100(self) -> ComponentWeights:
        total = self.safety + self.accuracy + self.user_simulation + self.latency
        if abs(total - 100.0) > 1e-9:
            raise ValueError(f"weights must sum to 100, got {total:g}")
        return self


class LatencyBand(StrictModel):
    """``p99 <= max_p99_ms`` earns ``points``; the first matching band (in order) wins."""

    max_p99_ms: Positive
    points: NonNegative


class RoutingBand(StrictModel):
    """A score range and what happens to a release that lands in it (spec section 4 table)."""

    name: BandName
    min_score: float = Field(ge=0, le=100)
    """Inclusive lower bound; the band extends up to the next higher band's min_score (exclusive)."""
    advances_to_stage_4: bool
    adds_approvers: list[Identifier] = []
    """Extra stage-4 approvers (DESIGN: the safety reviewer joins for the whole 78-89 band)."""
    notify_roles: list[Identifier] = []
    creates_ticket: Literal["none", "remediation", "incident"] = "none"
    action: str = ""


class RejectionPolicy(StrictModel):
    """Rejection workflow (spec section 4)."""

    notify_roles: list[Identifier] = Field(min_length=1)
    channels: list[str] = Field(min_length=1)
    notify_within_minutes: Positive
    registry_tag_template: str = "REJECTED-{date}-{version}"
    create_remediation_ticket: bool = True
    block_next_release_until_review: bool = True

    @model_validator(mode="after")
    def _template_fields(self) -> RejectionPolicy:
        for placeholder in ("{date}", "{version}"):
            if placeholder not in self.registry_tag_template:
                raise ValueError(f"registry_tag_template must contain {placeholder}")
        return self


class DecisionEnginePolicy(StrictModel):
    """Weighted release score: safety, accuracy (SCS), user simulation, latency."""

    weights: ComponentWeights
    scs_target: Fraction = Field(gt=0)
    """Accuracy = min(SCS / scs_target, 1) x weight."""
    task_completion_target: Fraction = Field(gt=0)
    """User simulation = min(task completion / target, 1) x weight."""
    latency_bands: list[LatencyBand] = Field(min_length=1)
    latency_points_above_bands: NonNegative = 0.0
    """Points when p99 exceeds every band (spec: > 4,000 ms -> 0)."""
    routing_bands: list[RoutingBand] = Field(min_length=2)
    """Highest band first; the last band must start at 0."""
    rejection: RejectionPolicy

    @model_validator(mode="after")
    def _consistent(self) -> DecisionEnginePolicy:
        problems: list[str] = []
        maxima = [band.max_p99_ms for band in self.latency_bands]
        if any(b <= a for a, b in itertools.pairwise(maxima)):
            problems.append(f"latency_bands max_p99_ms must be strictly increasing, got {maxima}")
        points = [band.points for band in self.latency_bands] + [self.latency_points_above_bands]
        if any(b > a for a, b in itertools.pairwise(points)):
            problems.append(f"latency points must not increase with latency, got {points}")
        if max(points) > self.weights.latency:
            problems.append(
                f"latency points ({max(points):g}) exceed the latency weight ({self.weights.latency:g})"
            )
        mins = [band.min_score for band in self.routing_bands]
        fractional = [m for m in mins if 0 < m < 1]
        if fractional:
            problems.append(
                f"routing_bands min_score {fractional} look like fractions: scores are on the 0..100 scale "
                "(78, not 0.78)"
            )
        if any(b >= a for a, b in itertools.pairwise(mins)):
            problems.append(f"routing_bands must be ordered by strictly decreasing min_score, got {mins}")
        if mins[-1] != 0:
            problems.append(
                f"the last routing band must start at 0 so every score has a band, got {mins[-1]:g}"
            )
        names = [band.name for band in self.routing_bands]
        if len(set(names)) != len(names):
            problems.append(f"routing band names must be unique, got {names}")
        advancing = [band for band in self.routing_bands if band.advances_to_stage_4]
        if not advancing:
            problems.append("at least one routing band must advance to stage 4")
        else:
            flags = [band.advances_to_stage_4 for band in self.routing_bands]
            if flags != sorted(flags, reverse=True):
                problems.append("advancing bands must all lie above the non-advancing ones")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def min_score(self) -> float:
        """Minimum score to advance to stage 4 (spec: 78): the lowest advancing band's start, derived
        so that it can never disagree with the bands."""
        return min(band.min_score for band in self.routing_bands if band.advances_to_stage_4)

    def band_for(self, score: float) -> RoutingBand:
        """The routing band a total score falls in (bands are validated to cover 0..100)."""
        for band in self.routing_bands:
            if score >= band.min_score:
                return band
        return self.routing_bands[-1]

    def band_named(self, name: str) -> RoutingBand:
        for band in self.routing_bands:
            if band.name == name:
                return band
        raise ValueError(f"unknown decision band {name!r}; valid: {[b.name for b in self.routing_bands]}")
