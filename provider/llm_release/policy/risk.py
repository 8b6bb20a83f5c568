"""Spec section 9: release-type baselines, risk levels, and the mitigations each level requires.

Mitigations are spelled out in full for every level (no implicit inheritance) so an override of one
level cannot silently weaken another; ``RiskPolicy`` checks that higher levels are never laxer.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from llm_release.policy._base import (
    RISK_LEVEL_NAMES,
    Identifier,
    NonNegative,
    Positive,
    RiskLevelName,
    StageId,
    StrictModel,
)


class ReleaseType(StrictModel):
    id: Identifier
    description: str = ""
    baseline_score: int = Field(ge=0, le=100)
    rationale: str = ""


class RiskMitigations(StrictModel):
    """Extra validation and rollout controls for one risk level."""

    extended_shadow_min_hours: Positive | None = None
    """Shadow (stage 3) dwell of at least this many hours (Medium: 24 h)."""
    bias_reaudit: bool = False
    extra_adversarial_prompts: int = Field(default=0, ge=0)
    phase_min_dwell_hours: dict[Identifier, Positive] = {}
    """Floors for named rollout phases (Medium+: canary_tier_2 8 h instead of 4)."""
    canary_dwell_multiplier: float = Field(default=1.0, ge=1.0)
    """High: canary dwell times doubled."""
    human_confirmation_before_phases: list[Identifier] = []
    """High+: a person must confirm before traffic moves to these phases (25 % and 50 %)."""
    external_red_team_before_stage: StageId | None = None
    additional_approvers: list[Identifier] = []
    """Stage-4 approvers beyond the always-required ones (High: safety reviewer; Critical: executive)."""
    full_pipeline_reset: bool = False
    min_canary_total_hours: Positive | None = None
    """Critical: the canary phases together last at least this long (7 days)."""
    blocked_pending_executive: bool = False
    allow_acceleration: bool = True
    """Whether the rollout may be shortened (clean-streak and canary acceleration). High risk doubles
    the canary dwells and Critical is treated as a new system, so shortening them would contradict the
    level's own mitigation."""
    notes: list[str] = []


class RiskLevel(StrictModel):
    name: RiskLevelName
    min_score: int = Field(ge=0, le=100)
    max_score: int = Field(ge=0, le=100)
    criteria: list[str] = []
    decision: str = ""
    """The 'acceptable risk threshold' row for this range."""
    mitigations: RiskMitigations = RiskMitigations()


class RiskPolicy(StrictModel):
    release_types: list[ReleaseType] = Field(min_length=1)
    levels: list[RiskLevel] = Field(min_length=1)
    """Ordered Low -> Critical, contiguous over 0..100."""

    @model_validator(mode="after")
    def _levels_contiguous(self) -> RiskPolicy:
        problems: list[str] = []
        ids = [t.id for t in self.release_types]
        if len(set(ids)) != len(ids):
            problems.append(f"release type ids must be unique, got {ids}")
        names = [level.name for level in self.levels]
        expected = [n for n in RISK_LEVEL_NAMES if n in names]
        if names != expected or len(set(names)) != len(names):
            problems.append(f"levels must be unique and ordered {list(RISK_LEVEL_NAMES)}, got {names}")
        if self.levels[0].min_score != 0:
            problems.append(f"the first level must start at 0, got {self.levels[0].min_score}")
        if self.levels[-1].max_score != 100:
            problems.append(f"the last level must end at 100, got {self.levels[-1].max_score}")
        for level in self.levels:
            if level.min_score > level.max_score:
                problems.append(
                    f"level {level.name}: min_score {level.min_score} > max_score {level.max_score}"
                )
        for lower, upper in zip(self.levels, self.levels[1:], strict=False):
            if upper.min_score != lower.max_score + 1:
                problems.append(
                    f"levels must be contiguous: {lower.name} ends at {lower.max_score} but "
                    f"{upper.name} starts at {upper.min_score}"
                )
            problems.extend(_laxer(lower, upper))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def level_for(self, score: int) -> RiskLevel:
        for level in self.levels:
            if level.min_score <= score <= level.max_score:
                return level
        raise ValueError(f"risk score {score} is outside 0..100")

    def level_named(self, name: str) -> RiskLevel:
        for level in self.levels:
            if level.name == name:
                return level
        raise ValueError(f"unknown risk level {name!r}; valid: {[lv.name for lv in self.levels]}")

    def release_type(self, type_id: str) -> ReleaseType:
        for release_type in self.release_types:
            if release_type.id == type_id:
                return release_type
        valid = ", ".join(t.id for t in self.release_types)
        raise ValueError(f"unknown release type {type_id!r}; valid release types: {valid}")


def _laxer(lower: RiskLevel, upper: RiskLevel) -> list[str]:
    """Reasons why ``upper``'s mitigations are weaker than ``lower``'s (empty when monotone)."""
    lo, hi = lower.mitigations, upper.mitigations
    where = f"level {upper.name} is laxer than {lower.name}"
    problems: list[str] = []

    def floor_weaker(a: NonNegative | None, b: NonNegative | None) -> bool:
        return a is not None and (b is None or b < a)

    if floor_weaker(lo.extended_shadow_min_hours, hi.extended_shadow_min_hours):
        problems.append(f"{where}: extended_shadow_min_hours")
    if floor_weaker(lo.min_canary_total_hours, hi.min_canary_total_hours):
        problems.append(f"{where}: min_canary_total_hours")
    for phase, hours in lo.phase_min_dwell_hours.items():
        if floor_weaker(hours, hi.phase_min_dwell_hours.get(phase)):
            problems.append(f"{where}: phase_min_dwell_hours.{phase}")
    if hi.canary_dwell_multiplier < lo.canary_dwell_multiplier:
        problems.append(f"{where}: canary_dwell_multiplier")
    if hi.extra_adversarial_prompts < lo.extra_adversarial_prompts:
        problems.append(f"{where}: extra_adversarial_prompts")
    for flag in ("bias_reaudit", "full_pipeline_reset", "blocked_pending_executive"):
        if getattr(lo, flag) and not getattr(hi, flag):
            problems.append(f"{where}: {flag}")
    if hi.allow_acceleration and not lo.allow_acceleration:
        problems.append(f"{where}: allow_acceleration")
    for listed in ("human_confirmation_before_phases", "additional_approvers"):
        missing = set(getattr(lo, listed)) - set(getattr(hi, listed))
        if missing:
            problems.append(f"{where}: {listed} lacks {sorted(missing)}")
    if lo.external_red_team_before_stage is not None and hi.external_red_team_before_stage is None:
        problems.append(f"{where}: external_red_team_before_stage")
    return problems
