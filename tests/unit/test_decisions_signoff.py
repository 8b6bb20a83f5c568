"""Stage 4 sign-off (spec sections 2 and 9): required roles, distinct people, red team, rollback path."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions.risk import assess_risk
from llm_release.decisions.signoff import (
    ApprovalAnswer,
    red_team_review_required,
    rollback_path_verdict,
    signoff_requirement,
    signoff_verdict,
)
from llm_release.policy import DEFAULT_PROFILE, load_policy

POLICY = load_policy(DEFAULT_PROFILE)
SAME_PERSON_ALLOWED = POLICY.model_copy(
    update={"approvals": POLICY.approvals.model_copy(update={"distinct_people": False})}
)
APPROVERS = {
    "ml_lead": ["alice"],
    "support_ops_lead": ["bob", "carol"],
    "safety_reviewer": ["carol"],
    "executive": ["dana"],
}
BASE = ("ml_lead", "support_ops_lead")


def yes(user: str) -> ApprovalAnswer:
    return ApprovalAnswer(approved=True, chosen_options=("Approve",), responded_by=user)


def no(user: str) -> ApprovalAnswer:
    return ApprovalAnswer(approved=False, chosen_options=("Reject",), responded_by=user)


def verdict(answers, roles=BASE, policy=POLICY, red_team=False, red_answer=None, red_role=None):
    return signoff_verdict(policy, roles, answers, APPROVERS, red_team, red_answer, red_team_role=red_role)


def test_every_required_role_approved_by_a_mapped_distinct_person_passes() -> None:
    result = verdict({"ml_lead": yes("alice"), "support_ops_lead": yes("bob")})
    assert result.passed and result.problems == () and result.approvals_missing == 0
    assert result.responders == {"ml_lead": "alice", "support_ops_lead": "bob"}


def test_one_person_signing_two_roles_is_refused_when_the_policy_wants_distinct_people() -> None:
    roles = (*BASE, "safety_reviewer")
    answers = {"ml_lead": yes("alice"), "support_ops_lead": yes("carol"), "safety_reviewer": yes("carol")}
    refused = verdict(answers, roles)
    assert not refused.passed and refused.approvals_missing == 1
    assert any("'carol' approved 2 roles" in p for p in refused.problems)
    assert verdict(answers, roles, policy=SAME_PERSON_ALLOWED).passed


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        ({"ml_lead": yes("alice")}, "support_ops_lead: no approval recorded"),
        ({"ml_lead": yes("alice"), "support_ops_lead": None}, "support_ops_lead: no approval recorded"),
        ({"ml_lead": yes("alice"), "support_ops_lead": no("bob")}, "not an approval"),
        ({"ml_lead": yes("alice"), "support_ops_lead": yes("dana")}, "'dana', who is not mapped"),
        ({"ml_lead": yes("alice"), "support_ops_lead": yes("")}, "does not say who gave it"),
    ],
)
def test_a_missing_refused_unmapped_or_anonymous_answer_is_refused(answers, problem) -> None:
    result = verdict(answers)
    assert not result.passed and result.approvals_missing == 1
    assert any(problem in p for p in result.problems), result.problems


def test_no_required_roles_fails_closed() -> None:
    result = verdict({}, roles=())
    assert not result.passed and "no required approver roles" in result.problems[0]


def test_red_team_acceptance_is_required_only_when_asked_and_must_come_from_its_role() -> None:
    answers = {"ml_lead": yes("alice"), "support_ops_lead": yes("bob")}
    assert verdict(answers, red_team=False, red_answer=None).passed
    missing = verdict(answers, red_team=True, red_answer=None)
    assert not missing.passed and not missing.red_team_accepted
    assert not verdict(answers, red_team=True, red_answer=no("carol")).passed
    outsider = verdict(answers, red_team=True, red_answer=yes("dana"), red_role="safety_reviewer")
    assert not outsider.passed and "not mapped to role 'safety_reviewer'" in outsider.problems[0]
    accepted = verdict(answers, red_team=True, red_answer=yes("carol"), red_role="safety_reviewer")
    assert accepted.passed and accepted.red_team_accepted


def test_the_red_team_reviewer_may_also_sign_a_role() -> None:
    # an acknowledgement of the red team's findings, not a second role signature
    answers = {"ml_lead": yes("alice"), "support_ops_lead": yes("carol")}
    assert verdict(answers, red_team=True, red_answer=yes("carol"), red_role="safety_reviewer").passed


@pytest.mark.parametrize(
    ("result", "approved", "who"),
    [
        ({"chosen_options": ["Approve"], "responded_by_user": {"id": "alice", "name": "Alice"}}, True, "alice"),
        ({"chosen_options": ["Reject"], "responded_by_user": {"id": "bob", "name": "bob"}}, False, "bob"),
        ({"chosen_options": ["Approve", "Reject"], "responded_by_user": {"id": "bob"}}, False, "bob"),
        ({"chosen_options": ["Approve"]}, True, ""),
        ({"chosen_options": ["Approve"], "responded_by_user": "alice"}, True, ""),
    ],
)
def test_answer_from_an_airflow_hitl_result(result, approved, who) -> None:
    answer = ApprovalAnswer.from_hitl(result, "Approve")
    assert answer is not None and answer.approved is approved and answer.responded_by == who


def test_no_hitl_result_is_no_answer() -> None:
    assert ApprovalAnswer.from_hitl(None, "Approve") is None
    assert ApprovalAnswer.from_hitl({}, "Approve") is None


def risk(release_type: str):
    return assess_risk(POLICY.risk, POLICY.approvals, release_type)


def test_requirement_follows_the_band_and_the_risk_level() -> None:
    low = signoff_requirement(POLICY, risk("prompt_minor"), "advance")
    assert low.roles == BASE and not low.red_team_review
    enhanced = signoff_requirement(POLICY, risk("prompt_minor"), "enhanced_review")
    assert enhanced.roles == (*BASE, "safety_reviewer")
    high = signoff_requirement(POLICY, risk("base_model_upgrade"), "advance")
    assert "safety_reviewer" in high.roles and high.red_team_review
    critical = signoff_requirement(POLICY, risk("full_replacement"), "advance")
    assert "executive" in critical.roles and critical.red_team_review


def test_requirement_without_a_band_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="no decision band"):
        signoff_requirement(POLICY, risk("prompt_minor"), "")


def test_red_team_before_an_earlier_stage_cannot_be_honoured_and_says_so() -> None:
    high = risk("base_model_upgrade")
    early = high.model_copy(
        update={"controls": high.controls.model_copy(update={"external_red_team_before_stage": "staging"})}
    )
    with pytest.raises(ValueError, match="before stage 'staging'"):
        red_team_review_required(early)
    late = high.model_copy(
        update={"controls": high.controls.model_copy(update={"external_red_team_before_stage": "production"})}
    )
    assert red_team_review_required(late)


USERS = ["alice", "bob", "carol", "dana", ""]
ROLES = list(APPROVERS)
answer_st = st.none() | st.builds(
    lambda ok, who: yes(who) if ok else no(who), st.booleans(), st.sampled_from(USERS)
)


@given(
    roles=st.lists(st.sampled_from(ROLES), min_size=1, max_size=4, unique=True),
    answers=st.fixed_dictionaries({r: answer_st for r in ROLES}),
    distinct=st.booleans(),
    red_team=st.booleans(),
    red_answer=answer_st,
)
def test_signoff_verdict_matches_the_rule(roles, answers, distinct, red_team, red_answer) -> None:
    policy = POLICY if distinct else SAME_PERSON_ALLOWED
    result = verdict(answers, tuple(roles), policy=policy, red_team=red_team, red_answer=red_answer,
                     red_role="safety_reviewer")
    signed = [answers[r] for r in roles]
    each_ok = all(
        a is not None and a.approved and a.responded_by in APPROVERS[r] for r, a in zip(roles, signed, strict=True)
    )
    people = [a.responded_by for a in signed if a is not None]
    distinct_ok = not distinct or len(set(people)) == len(people)
    red_ok = not red_team or (
        red_answer is not None and red_answer.approved and red_answer.responded_by in APPROVERS["safety_reviewer"]
    )
    assert result.passed == (each_ok and distinct_ok and red_ok)
    assert (result.approvals_missing == 0) == (each_ok and distinct_ok)
    assert result.passed == (not result.problems)


@pytest.mark.parametrize(
    ("healthy", "backends", "alias", "problem"),
    [
        (False, ["stable"], "1", "health check"),
        (True, ["other"], "1", "router has no backend 'stable'"),
        (True, ["stable"], "3", "points at 3"),
        (True, ["stable"], None, "points at nothing"),
    ],
)
def test_rollback_path_is_refused_for_each_missing_condition(healthy, backends, alias, problem) -> None:
    result = rollback_path_verdict(
        production_version="1", production_backend="stable", endpoint_healthy=healthy,
        router_backends=backends, production_alias_version=alias,
    )
    assert not result.passed and result.rollback_path_ready == 0.0
    assert len(result.problems) == 1 and problem in result.problems[0]


def test_rollback_path_ready() -> None:
    result = rollback_path_verdict(
        production_version="1", production_backend="stable", endpoint_healthy=True,
        router_backends=["stable", "candidate"], production_alias_version="1",
    )
    assert result.passed and result.rollback_path_ready == 1.0 and result.problems == ()
