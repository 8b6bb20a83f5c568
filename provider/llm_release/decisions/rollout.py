"""Rollout planning (spec sections 5 and 9): dwell times after risk mitigations and acceleration.

Dwell times in the policy are minimums. They only get shorter through the two documented
accelerations (clean-release streak; strong canary at 10 %), and only when the risk level allows
acceleration. Every change to a phase is recorded in its ``adjustments`` for reviewers and the audit.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from llm_release.decisions._numbers import as_finite
from llm_release.decisions.risk import RiskAssessment
from llm_release.policy import ReleasePolicy


class PlannedPhase(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: str
    traffic_percent: float
    dwell_hours: float
    base_dwell_hours: float
    requires_human_confirmation: bool
    adjustments: list[str]


class RolloutPlan(BaseModel):
    model_config = ConfigDict(frozen=True)

    risk_level: str
    phases: list[PlannedPhase]
    """Live phases (canary ... full); shadow is stage 3 and described by the shadow_* fields."""
    shadow_hours: float
    shadow_max_hours: float
    shadow_min_samples: int
    clean_release_streak: int
    acceleration_allowed: bool
    accelerated: bool = False
    notes: list[str] = []

    def phase(self, name: str) -> PlannedPhase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise ValueError(f"no phase {name!r} in the plan; phases: {[p.name for p in self.phases]}")

    @property
    def live_hours(self) -> float:
        return sum(p.dwell_hours for p in self.phases)


def _level_name(risk: RiskAssessment | str) -> str:
    return risk.level if isinstance(risk, RiskAssessment) else str(risk)


def plan_rollout(
    policy: ReleasePolicy, risk_level: RiskAssessment | str, clean_release_streak: int = 0
) -> RolloutPlan:
    """Derive the phase plan for a release at ``risk_level`` after ``clean_release_streak`` clean releases."""
    if clean_release_streak < 0:
        raise ValueError(f"clean_release_streak must be >= 0, got {clean_release_streak}")
    level = policy.risk.level_named(_level_name(risk_level))
    mit = level.mitigations
    rollout = policy.rollout
    streak_rule = rollout.clean_streak
    notes: list[str] = []

    shadow = rollout.shadow
    shadow_hours = shadow.dwell_hours
    shadow_max = shadow.max_dwell_hours or shadow.dwell_hours
    if mit.extended_shadow_min_hours is not None and mit.extended_shadow_min_hours > shadow_hours:
        shadow_hours = mit.extended_shadow_min_hours
        shadow_max = max(shadow_max, shadow_hours)
        notes.append(f"shadow extended to {shadow_hours:g} h ({level.name} risk)")

    streak_earned = clean_release_streak >= streak_rule.required_clean_releases
    streak_applies = streak_earned and mit.allow_acceleration
    if streak_earned and not streak_applies:
        notes.append(
            f"clean-release streak of {clean_release_streak} not applied: {level.name} risk forbids "
            "acceleration"
        )

    planned: list[PlannedPhase] = []
    for phase in rollout.live_phases:
        dwell = phase.dwell_hours
        adjustments: list[str] = []
        if streak_applies and phase.kind == "canary":
            if phase.name == streak_rule.tier_1_phase:
                if streak_rule.tier_1_dwell_hours < dwell:
                    dwell = streak_rule.tier_1_dwell_hours
                    adjustments.append(f"clean streak {clean_release_streak}: tier-1 dwell {dwell:g} h")
            else:
                dwell = dwell * (1 - streak_rule.other_canary_reduction)
                adjustments.append(
                    f"clean streak {clean_release_streak}: "
                    f"-{streak_rule.other_canary_reduction:.0%} -> {dwell:g} h"
                )
        if phase.kind == "canary" and mit.canary_dwell_multiplier != 1.0:
            dwell = dwell * mit.canary_dwell_multiplier
            adjustments.append(
                f"{level.name} risk: canary dwell x{mit.canary_dwell_multiplier:g} -> {dwell:g} h"
            )
        floor = mit.phase_min_dwell_hours.get(phase.name)
        if floor is not None and dwell < floor:
            dwell = floor
            adjustments.append(f"{level.name} risk: at least {floor:g} h")
        confirm = phase.name in mit.human_confirmation_before_phases
        if confirm:
            adjustments.append(
                f"{level.name} risk: human confirmation before moving to {phase.traffic_percent:g}%"
            )
        planned.append(
            PlannedPhase(
                name=phase.name,
                kind=phase.kind,
                traffic_percent=phase.traffic_percent,
                dwell_hours=dwell,
                base_dwell_hours=phase.dwell_hours,
                requires_human_confirmation=confirm,
                adjustments=adjustments,
            )
        )

    if mit.min_canary_total_hours is not None:
        canary = [p for p in planned if p.kind == "canary"]
        total = sum(p.dwell_hours for p in canary)
        if total < mit.min_canary_total_hours:
            last = canary[-1]
            extra = mit.min_canary_total_hours - total
            extended = last.model_copy(
                update={
                    "dwell_hours": last.dwell_hours + extra,
                    "adjustments": [
                        *last.adjustments,
                        f"{level.name} risk: canary +{extra:g} h to total {mit.min_canary_total_hours:g} h",
                    ],
                }
            )
            planned[planned.index(last)] = extended

    return RolloutPlan(
        risk_level=level.name,
        phases=planned,
        shadow_hours=shadow_hours,
        shadow_max_hours=shadow_max,
        shadow_min_samples=policy.shadow_min_samples,
        clean_release_streak=clean_release_streak,
        acceleration_allowed=mit.allow_acceleration,
        notes=notes,
    )


def accelerate(
    plan: RolloutPlan,
    canary_scs: Any,
    canary_p99_ms: Any,
    canary_error_rate: Any,
    policy: ReleasePolicy,
    *,
    baseline_scs: Any = None,
) -> tuple[RolloutPlan, bool, str]:
    """Shorten the later phases when the canary at 10 % is strong (spec section 5).

    Returns ``(plan, applied, reason)``; the plan is unchanged unless every condition holds. Missing
    or non-finite measurements never accelerate.
    """
    rule = policy.rollout.canary_acceleration
    if plan.accelerated:
        return plan, False, "already accelerated"
    if not plan.acceleration_allowed:
        return plan, False, f"{plan.risk_level} risk forbids acceleration"
    values = {"SCS": canary_scs, "p99": canary_p99_ms, "error rate": canary_error_rate}
    parsed: dict[str, float] = {}
    for name, value in values.items():
        number, problem = as_finite(value)
        if number is None:
            return plan, False, f"canary {name} {problem}; not accelerating"
        parsed[name] = number
    failures: list[str] = []
    if not parsed["SCS"] >= rule.min_scs:
        failures.append(f"SCS {parsed['SCS']:g} < {rule.min_scs:g}")
    if not parsed["p99"] <= rule.max_p99_ms:
        failures.append(f"p99 {parsed['p99']:g} ms > {rule.max_p99_ms:g} ms")
    if not parsed["error rate"] < rule.max_error_rate:
        failures.append(f"error rate {parsed['error rate']:g} >= {rule.max_error_rate:g}")
    if rule.max_scs_drop_from_baseline is not None:
        baseline, problem = as_finite(baseline_scs)
        if baseline is None or baseline <= 0:
            failures.append(f"baseline SCS {problem or 'not positive'} (needed for the SCS-delta rule)")
        else:
            drop = (baseline - parsed["SCS"]) / baseline
            if not drop < rule.max_scs_drop_from_baseline:
                failures.append(f"SCS drop from baseline {drop:.1%} >= {rule.max_scs_drop_from_baseline:.0%}")
    if failures:
        return plan, False, "not accelerating: " + "; ".join(failures)
    phases = []
    for phase in plan.phases:
        if phase.name in rule.target_phases:
            dwell = phase.dwell_hours * (1 - rule.dwell_reduction)
            note = (
                f"canary acceleration at {rule.measured_at_phase}: -{rule.dwell_reduction:.0%} -> {dwell:g} h"
            )
            phase = phase.model_copy(update={"dwell_hours": dwell, "adjustments": [*phase.adjustments, note]})
        phases.append(phase)
    reason = (
        f"accelerated: SCS {parsed['SCS']:g} >= {rule.min_scs:g}, "
        f"p99 {parsed['p99']:g} <= {rule.max_p99_ms:g} ms, "
        f"error rate {parsed['error rate']:g} < {rule.max_error_rate:g}"
    )
    return plan.model_copy(update={"phases": phases, "accelerated": True}), True, reason


def required_approvers(policy: ReleasePolicy, risk: RiskAssessment | str, decision_band: str) -> list[str]:
    """Stage-4 roles: always-required plus those the decision band and the risk level add (ordered)."""
    level = policy.risk.level_named(_level_name(risk))
    band = policy.decision_engine.band_named(decision_band)
    roles: list[str] = []
    for role in [
        *policy.approvals.always_required,
        *band.adds_approvers,
        *level.mitigations.additional_approvers,
    ]:
        if role not in roles:
            roles.append(role)
    return roles
