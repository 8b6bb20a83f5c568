"""Risk assessment (spec section 9)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions import assess_risk
from llm_release.policy import DEFAULT_PROFILE, load_policy

POLICY = load_policy(DEFAULT_PROFILE)


def assess(release_type: str, override: int | None = None):
    return assess_risk(POLICY.risk, POLICY.approvals, release_type, override)


@pytest.mark.parametrize(
    ("release_type", "score", "level"),
    [
        ("prompt_minor", 15, "low"),
        ("prompt_structural", 35, "medium"),
        ("finetune_recent_data", 45, "medium"),
        ("finetune_new_capability", 65, "high"),
        ("base_model_upgrade", 75, "high"),
        ("full_replacement", 90, "critical"),
    ],
)
def test_baselines(release_type: str, score: int, level: str) -> None:
    result = assess(release_type)
    assert (result.score, result.level) == (score, level)


def test_low_is_standard_pipeline() -> None:
    result = assess("prompt_minor")
    assert result.approvers_required == ["ml_lead", "support_ops_lead"]
    assert not result.blocked_pending_executive
    assert result.controls.canary_dwell_multiplier == 1.0 and result.controls.allow_acceleration


def test_medium_mitigations() -> None:
    result = assess("finetune_recent_data")
    assert result.controls.extended_shadow_min_hours == 24
    assert result.controls.bias_reaudit and result.controls.extra_adversarial_prompts == 50
    assert result.controls.phase_min_dwell_hours == {"canary_tier_2": 8}
    assert "expanded adversarial suite: +50 prompts" in result.mitigations


def test_base_model_upgrade_is_high_with_safety_reviewer() -> None:
    result = assess("base_model_upgrade")
    assert (result.score, result.level) == (75, "high")
    assert result.approvers_required == ["ml_lead", "support_ops_lead", "safety_reviewer"]
    assert result.controls.canary_dwell_multiplier == 2.0
    assert result.controls.human_confirmation_before_phases == ["progressive_25", "progressive_50"]
    assert result.controls.external_red_team_before_stage == "preproduction"


def test_critical_blocks_pending_executive() -> None:
    result = assess("full_replacement")
    assert result.blocked_pending_executive
    assert "executive" in result.approvers_required
    assert result.controls.min_canary_total_hours == 168 and result.controls.full_pipeline_reset


@pytest.mark.parametrize(
    ("override", "level"),
    [
        (0, "low"),
        (30, "low"),
        (31, "medium"),
        (60, "medium"),
        (61, "high"),
        (85, "high"),
        (86, "critical"),
        (100, "critical"),
    ],
)
def test_level_boundaries(override: int, level: str) -> None:
    assert assess("prompt_minor", override).level == level


def test_unknown_type_and_bad_override() -> None:
    with pytest.raises(ValueError, match="valid release types: prompt_minor, prompt_structural"):
        assess("model_swap")
    for bad in (-1, 101, 50.5, True):
        with pytest.raises(ValueError, match="score_override"):
            assess("prompt_minor", bad)  # type: ignore[arg-type]


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=100))
def test_higher_score_never_fewer_approvers(a: int, b: int) -> None:
    lo, hi = assess("prompt_minor", min(a, b)), assess("prompt_minor", max(a, b))
    assert set(lo.approvers_required) <= set(hi.approvers_required)
