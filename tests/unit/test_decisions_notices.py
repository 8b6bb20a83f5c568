"""Notices are addressed from the policy field that owns each audience (dead policy: notify_roles)."""

from __future__ import annotations

import pytest

from llm_release.decisions.notices import notice_roles
from llm_release.policy import DEFAULT_PROFILE, load_policy

POLICY = load_policy(DEFAULT_PROFILE)


def test_rejection_notice_goes_to_the_rejection_roles():
    assert notice_roles(POLICY, "rejection") == ["model_owner", "ml_lead", "release_manager"]


def test_remediation_band_adds_its_roles_without_duplicates():
    roles = notice_roles(POLICY, "rejection", band="remediation")
    assert roles == ["model_owner", "ml_lead", "release_manager", "support_ops_lead"]


def test_band_notify_roles_are_read():
    changed = POLICY.model_copy(deep=True)
    changed.decision_engine.band_named("remediation").notify_roles = ["quality_lead"]
    assert "quality_lead" in notice_roles(changed, "rejection", band="remediation")


def test_rollback_and_pages_go_to_the_critical_roles():
    for kind in ("rollback", "page", "monitoring_critical"):
        assert notice_roles(POLICY, kind) == ["ml_lead", "support_ops_lead"]


def test_stage_results_go_to_the_stage_roles():
    assert notice_roles(POLICY, "stage_result", stage="validation") == ["ml_engineer"]
    assert notice_roles(POLICY, "stage_result", stage="staging") == ["quality_lead"]
    with pytest.raises(ValueError, match="needs the stage"):
        notice_roles(POLICY, "stage_result")
