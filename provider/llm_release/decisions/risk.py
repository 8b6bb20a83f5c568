"""Release risk (spec section 9): baseline score per release type, level, and the mitigations it brings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from llm_release.policy import ApprovalsPolicy, RiskMitigations, RiskPolicy


class RiskAssessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    release_type: str
    score: int
    level: str
    mitigations: list[str]
    controls: RiskMitigations
    approvers_required: list[str]
    blocked_pending_executive: bool
    reasons: list[str]


def describe_mitigations(m: RiskMitigations) -> list[str]:
    """Readable lines for a level's mitigations (for reviewers and the audit trail)."""
    lines: list[str] = []
    if m.full_pipeline_reset:
        lines.append("full pipeline reset: treat as a new system launch")
    if m.extended_shadow_min_hours is not None:
        lines.append(f"extended shadow testing: at least {m.extended_shadow_min_hours:g} h")
    if m.bias_reaudit:
        lines.append("bias re-audit")
    if m.extra_adversarial_prompts:
        lines.append(f"expanded adversarial suite: +{m.extra_adversarial_prompts} prompts")
    for phase, hours in m.phase_min_dwell_hours.items():
        lines.append(f"{phase} dwell at least {hours:g} h")
    if m.canary_dwell_multiplier != 1.0:
        lines.append(f"canary dwell times x{m.canary_dwell_multiplier:g}")
    if m.min_canary_total_hours is not None:
        lines.append(f"extended canary: at least {m.min_canary_total_hours:g} h in canary")
    for phase in m.human_confirmation_before_phases:
        lines.append(f"human confirmation before {phase}")
    if m.external_red_team_before_stage:
        lines.append(f"external red-team review before stage {m.external_red_team_before_stage}")
    for role in m.additional_approvers:
        lines.append(f"{role} joins the stage-4 approval")
    if m.blocked_pending_executive:
        lines.append("release blocked pending executive approval")
    if not m.allow_acceleration:
        lines.append("no rollout acceleration")
    lines.extend(m.notes)
    return lines


def assess_risk(
    risk_policy: RiskPolicy,
    approvals_policy: ApprovalsPolicy,
    release_type: str,
    score_override: int | None = None,
) -> RiskAssessment:
    """Score a release by its type (or an explicit override 0..100) and list what the level requires.

    Unknown release types raise ``ValueError`` naming the valid ones.
    """
    rtype = risk_policy.release_type(release_type)
    reasons = [f"release type {rtype.id!r} has baseline risk {rtype.baseline_score}"]
    score = rtype.baseline_score
    if score_override is not None:
        if isinstance(score_override, bool) or not isinstance(score_override, int):
            raise ValueError(f"score_override must be an integer 0..100, got {score_override!r}")
        if not 0 <= score_override <= 100:
            raise ValueError(f"score_override must be within 0..100, got {score_override}")
        reasons.append(f"score overridden to {score_override}")
        score = score_override
    level = risk_policy.level_for(score)
    reasons.append(f"score {score} is in {level.name} ({level.min_score}-{level.max_score})")
    approvers = list(approvals_policy.always_required)
    for role in level.mitigations.additional_approvers:
        if role not in approvers:
            approvers.append(role)
    return RiskAssessment(
        release_type=rtype.id,
        score=score,
        level=level.name,
        mitigations=describe_mitigations(level.mitigations),
        controls=level.mitigations,
        approvers_required=approvers,
        blocked_pending_executive=level.mitigations.blocked_pending_executive,
        reasons=reasons,
    )
