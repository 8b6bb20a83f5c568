"""Stage 4 (pre-production, spec section 2): who must sign off, whether they did, and the rollback path.

The spec makes stage 4 the one gate no automation may bypass: the ML lead and the support-ops lead
always sign, the decision band and the risk level add roles (the safety reviewer for scores 78-89 and
for High risk, the executive for Critical), High risk and above also need the external red team's
findings accepted (section 9), and nobody may sign twice (``approvals.distinct_people``). Live traffic
only starts once the previous version is confirmed as a warm rollback target (stage 5 entry).

These rules used to live inside the Airflow operators, untested. Here they are pure functions over
typed facts, so every combination of answers can be checked; the operators fetch the answers and the
router/registry facts, call these and persist the verdict.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from llm_release.decisions.risk import RiskAssessment
from llm_release.decisions.rollout import required_approvers
from llm_release.policy import STAGE_IDS, ReleasePolicy

SIGNOFF_STAGE = "preproduction"
"""The stage that holds the sign-off and, with it, the external red-team review."""


class ApprovalAnswer(BaseModel):
    """One person's answer to an approval request, as the sign-off rules need it."""

    model_config = ConfigDict(frozen=True)

    approved: bool
    """True only when the single chosen option was the approve option."""
    chosen_options: tuple[str, ...] = ()
    responded_by: str = ""
    """The responder's user id; empty when the answer does not say who gave it (which never passes)."""

    @classmethod
    def from_hitl(cls, result: Mapping[str, Any] | None, approve_option: str) -> ApprovalAnswer | None:
        """Read the result an Airflow Human-in-the-loop approval task returned (its XCom).

        ``None`` (no result: the task was skipped, failed or never answered) stays ``None``, which the
        rules read as "no approval recorded". Anything but exactly ``[approve_option]`` is not an approval.
        """
        if not result:
            return None
        chosen = tuple(str(option) for option in (result.get("chosen_options") or ()))
        user = result.get("responded_by_user") or {}
        who = str(user.get("id") or "") if isinstance(user, Mapping) else ""
        return cls(approved=chosen == (approve_option,), chosen_options=chosen, responded_by=who)


class SignoffRequirement(BaseModel):
    """What stage 4 needs for one release: the roles that sign and whether the red team must be accepted."""

    model_config = ConfigDict(frozen=True)

    roles: tuple[str, ...]
    red_team_review: bool
    band: str
    risk_level: str


class SignoffVerdict(BaseModel):
    """Whether stage 4 is signed off, and every reason it is not (for the approvers and the audit)."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    required_roles: tuple[str, ...]
    responders: dict[str, str]
    """Role -> the user id that answered it (only roles that have an answer)."""
    approvals_missing: int
    """Required roles without a valid approval from a person who signed nothing else."""
    red_team_required: bool
    red_team_accepted: bool
    problems: tuple[str, ...]


class RollbackPathVerdict(BaseModel):
    """Whether the previous version can take all traffic back before any live traffic moves."""

    model_config = ConfigDict(frozen=True)

    passed: bool
    rollback_path_ready: float
    """1.0 when ready, else 0.0 (the shape of the ``rollback_path_ready`` measurement)."""
    problems: tuple[str, ...]


def red_team_review_required(risk: RiskAssessment) -> bool:
    """Whether the risk level's ``external_red_team_before_stage`` asks for a red-team review at stage 4.

    The DAG holds that review in stage 4, before sign-off completes, so it satisfies "before
    pre-production" and "before production". A level asking for it before an earlier stage cannot be
    honoured by this pipeline; that raises (the release stops) instead of quietly skipping the review.
    """
    before = risk.controls.external_red_team_before_stage
    if before is None:
        return False
    if STAGE_IDS.index(before) < STAGE_IDS.index(SIGNOFF_STAGE):
        raise ValueError(
            f"risk level {risk.level!r} requires an external red-team review before stage {before!r}, but this "
            f"pipeline holds that review in stage {SIGNOFF_STAGE!r}; the release cannot honour the mitigation"
        )
    return True


def signoff_requirement(policy: ReleasePolicy, risk: RiskAssessment, band: str) -> SignoffRequirement:
    """Roles that must sign (always-required, the decision band's, the risk level's) and the red-team rule.

    ``band`` is the decision score's routing band name; without a band there is no requirement to
    compute (the caller must not guess one).
    """
    if not band:
        raise ValueError("no decision band: the sign-off requirement depends on the release decision score")
    roles = required_approvers(policy, risk, band)
    return SignoffRequirement(
        roles=tuple(roles),
        red_team_review=red_team_review_required(risk),
        band=band,
        risk_level=risk.level,
    )


def signoff_verdict(
    policy: ReleasePolicy,
    required_roles: Sequence[str],
    answers: Mapping[str, ApprovalAnswer | None],
    approvers_by_role: Mapping[str, Sequence[str]],
    red_team_required: bool,
    red_team_answer: ApprovalAnswer | None,
    *,
    red_team_role: str | None = None,
) -> SignoffVerdict:
    """Decide whether stage 4 is signed off.

    Passes only when every required role was approved by a user the release config maps to that
    role, no person answered for two roles when ``policy.approvals.distinct_people`` is set, and, when
    the risk level asks for it, the red-team review was accepted (by a user mapped to ``red_team_role``
    when given). The red-team acceptance acknowledges a review; it is not a second role signature, so it
    does not count against distinct people. An empty ``required_roles`` fails: nothing would be checked.
    """
    problems: list[str] = []
    required = tuple(dict.fromkeys(required_roles))
    if not required:
        problems.append("no required approver roles recorded: cannot confirm sign-off")
    responders: dict[str, str] = {}
    valid: list[str] = []
    for role in required:
        answer = answers.get(role)
        if answer is None:
            problems.append(f"{role}: no approval recorded")
            continue
        who = answer.responded_by
        if who:
            responders[role] = who
        ok = True
        if not answer.approved:
            problems.append(f"{role}: answered {list(answer.chosen_options)}, not an approval")
            ok = False
        if not who:
            problems.append(f"{role}: the answer does not say who gave it")
            ok = False
        elif who not in approvers_by_role.get(role, ()):
            problems.append(f"{role}: answered by {who!r}, who is not mapped to this role")
            ok = False
        if ok:
            valid.append(role)

    missing = len(required) - len(valid)
    if policy.approvals.distinct_people:
        by_person: dict[str, list[str]] = {}
        for role in valid:
            by_person.setdefault(responders[role], []).append(role)
        for who, roles in by_person.items():
            if len(roles) > 1:
                problems.append(
                    f"{who!r} approved {len(roles)} roles ({', '.join(roles)}); each role needs a different person"
                )
                missing += len(roles) - 1

    red_team_accepted = False
    if red_team_required:
        if red_team_answer is None:
            problems.append("the external red-team review required at this risk level was not answered")
        elif not red_team_answer.approved:
            problems.append(
                f"the external red-team review was answered {list(red_team_answer.chosen_options)}, not accepted"
            )
        elif red_team_role is not None and red_team_answer.responded_by not in approvers_by_role.get(
            red_team_role, ()
        ):
            problems.append(
                f"the external red-team review was accepted by {red_team_answer.responded_by or 'an unknown user'!r}, "
                f"who is not mapped to role {red_team_role!r}"
            )
        else:
            red_team_accepted = True

    return SignoffVerdict(
        passed=not problems,
        required_roles=required,
        responders=responders,
        approvals_missing=missing,
        red_team_required=red_team_required,
        red_team_accepted=red_team_accepted,
        problems=tuple(problems),
    )


def rollback_path_verdict(
    *,
    production_version: str,
    production_backend: str,
    endpoint_healthy: bool,
    router_backends: Sequence[str],
    production_alias_version: str | None,
) -> RollbackPathVerdict:
    """Stage 5 entry: "rollback procedure confirmed active" before any live traffic.

    The version to roll back to must answer its health check, be a backend the router can send traffic
    to, and still hold the registry's ``production`` alias (someone else moving production would make
    the rollback target wrong). Each failed condition is named.
    """
    problems: list[str] = []
    if not endpoint_healthy:
        problems.append(f"production version {production_version} does not answer its health check")
    if production_backend not in router_backends:
        problems.append(f"router has no backend {production_backend!r} (has {sorted(router_backends)})")
    if production_alias_version != production_version:
        problems.append(
            f"registry alias 'production' points at {production_alias_version or 'nothing'}, not at version "
            f"{production_version} to roll back to"
        )
    return RollbackPathVerdict(
        passed=not problems, rollback_path_ready=0.0 if problems else 1.0, problems=tuple(problems)
    )
