"""Rollout plans (spec sections 5 and 9): mitigations, accelerations, approvers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions import accelerate, assess_risk, plan_rollout, required_approvers
from llm_release.policy import DEFAULT_PROFILE, load_policy

POLICY = load_policy(DEFAULT_PROFILE)
BASE = {p.name: p.dwell_hours for p in POLICY.rollout.live_phases}


def dwells(plan) -> dict[str, float]:
    return {p.name: p.dwell_hours for p in plan.phases}


def test_low_risk_is_the_spec_table() -> None:
    plan = plan_rollout(POLICY, "low")
    assert dwells(plan) == {
        "canary_tier_1": 2,
        "canary_tier_2": 4,
        "progressive_25": 6,
        "progressive_50": 6,
        "full": 24,
    }
    assert [p.traffic_percent for p in plan.phases] == [2, 10, 25, 50, 100]
    assert (plan.shadow_hours, plan.shadow_max_hours, plan.shadow_min_samples) == (12, 18, 500)
    assert not any(p.requires_human_confirmation for p in plan.phases)


def test_medium_risk_extends_shadow_and_tier_2() -> None:
    plan = plan_rollout(POLICY, "medium")
    assert plan.shadow_hours == 24
    assert dwells(plan)["canary_tier_2"] == 8 and dwells(plan)["canary_tier_1"] == 2


def test_base_model_upgrade_plan() -> None:
    risk = assess_risk(POLICY.risk, POLICY.approvals, "base_model_upgrade")
    plan = plan_rollout(POLICY, risk)
    assert dwells(plan) == {
        "canary_tier_1": 4,
        "canary_tier_2": 8,
        "progressive_25": 6,
        "progressive_50": 6,
        "full": 24,
    }
    confirm = [p.name for p in plan.phases if p.requires_human_confirmation]
    assert confirm == ["progressive_25", "progressive_50"]
    assert "high risk: canary dwell x2 -> 4 h" in plan.phase("canary_tier_1").adjustments


def test_critical_canary_lasts_seven_days() -> None:
    plan = plan_rollout(POLICY, "critical")
    canary = sum(p.dwell_hours for p in plan.phases if p.kind == "canary")
    assert canary == 168


def test_clean_streak_shortens_canary_at_low_risk_only() -> None:
    plan = plan_rollout(POLICY, "low", clean_release_streak=3)
    assert dwells(plan)["canary_tier_1"] == 1
    assert dwells(plan)["canary_tier_2"] == pytest.approx(3.2)  # 4 h - 20 %
    assert plan_rollout(POLICY, "low", clean_release_streak=2).phase("canary_tier_1").dwell_hours == 2
    high = plan_rollout(POLICY, "high", clean_release_streak=5)
    assert high.phase("canary_tier_1").dwell_hours == 4
    assert any("not applied" in note for note in high.notes)
    # Medium allows the streak but its 8 h floor on tier 2 still holds
    medium = plan_rollout(POLICY, "medium", clean_release_streak=3)
    assert medium.phase("canary_tier_1").dwell_hours == 1 and medium.phase("canary_tier_2").dwell_hours == 8


def test_canary_acceleration() -> None:
    plan = plan_rollout(POLICY, "low")
    fast, applied, reason = accelerate(plan, 0.90, 2500, 0.001, POLICY, baseline_scs=0.90)
    assert applied, reason
    assert fast.phase("progressive_25").dwell_hours == pytest.approx(4.2)
    assert fast.phase("progressive_50").dwell_hours == pytest.approx(4.2)
    assert fast.phase("canary_tier_2").dwell_hours == 4
    again, applied_twice, _ = accelerate(fast, 0.90, 2500, 0.001, POLICY, baseline_scs=0.90)
    assert not applied_twice and again == fast


@pytest.mark.parametrize(
    ("scs", "p99", "err", "baseline", "why"),
    [
        (0.87, 2500, 0.001, 0.9, "SCS 0.87 < 0.88"),
        (0.9, 2801, 0.001, 0.9, "p99 2801"),
        (0.9, 2500, 0.005, 0.9, "error rate 0.005 >= 0.005"),
        (0.9, 2500, 0.001, None, "baseline SCS"),
        (0.9, 2500, 0.001, 0.95, "SCS drop from baseline"),
        (float("nan"), 2500, 0.001, 0.9, "NaN"),
        (0.9, None, 0.001, 0.9, "not measured"),
    ],
)
def test_acceleration_refused(scs, p99, err, baseline, why) -> None:
    plan = plan_rollout(POLICY, "low")
    same, applied, reason = accelerate(plan, scs, p99, err, POLICY, baseline_scs=baseline)
    assert not applied and same == plan and why in reason


def test_acceleration_forbidden_at_high_risk() -> None:
    plan = plan_rollout(POLICY, "high")
    _, applied, reason = accelerate(plan, 0.99, 100, 0.0, POLICY, baseline_scs=0.99)
    assert not applied and "forbids" in reason


def test_required_approvers() -> None:
    assert required_approvers(POLICY, "low", "advance") == ["ml_lead", "support_ops_lead"]
    assert required_approvers(POLICY, "low", "enhanced_review") == [
        "ml_lead",
        "support_ops_lead",
        "safety_reviewer",
    ]
    assert required_approvers(POLICY, "high", "advance") == ["ml_lead", "support_ops_lead", "safety_reviewer"]
    assert required_approvers(POLICY, "critical", "enhanced_review") == [
        "ml_lead",
        "support_ops_lead",
        "safety_reviewer",
        "executive",
    ]
    with pytest.raises(ValueError, match="unknown decision band"):
        required_approvers(POLICY, "low", "great")


@given(
    st.sampled_from(["low", "medium", "high", "critical"]),
    st.integers(min_value=0, max_value=10),
    st.booleans(),
)
def test_dwell_never_below_minimum_except_documented_acceleration(level, streak, accel) -> None:
    plan = plan_rollout(POLICY, level, streak)
    if accel:
        plan, _, _ = accelerate(plan, 0.95, 1000, 0.0, POLICY, baseline_scs=0.95)
    streak_rule = POLICY.rollout.clean_streak
    canary_rule = POLICY.rollout.canary_acceleration
    assert plan.shadow_hours >= POLICY.rollout.shadow.dwell_hours
    for phase in plan.phases:
        floor = BASE[phase.name]
        notes = " ".join(phase.adjustments)
        if "clean streak" in notes:
            floor = (
                streak_rule.tier_1_dwell_hours
                if phase.name == streak_rule.tier_1_phase
                else floor * (1 - streak_rule.other_canary_reduction)
            )
        if "canary acceleration" in notes:
            floor = floor * (1 - canary_rule.dwell_reduction)
        assert phase.dwell_hours >= floor - 1e-9, (phase, level, streak)
        if phase.dwell_hours < BASE[phase.name] - 1e-9:
            assert POLICY.risk.level_named(level).mitigations.allow_acceleration
            assert notes, "every shortened phase says why"
