"""Opening a release (entry rules, naming) and closing it (the outcome the run's state must tell)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.decisions.release import (
    OutcomeTasks,
    ReleaseRecord,
    ReleaseRefused,
    RevertTiming,
    VersionFacts,
    open_release,
    rejection_tickets,
    release_outcome,
    revert_timing,
)
from llm_release.policy import DEFAULT_PROFILE, load_policy

POLICY = load_policy(DEFAULT_PROFILE)
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # ISO week 2026-W47
CANDIDATE = VersionFacts(version="2", backend="candidate", endpoint_conn_id="llm_candidate")
PRODUCTION = VersionFacts(version="1", backend="stable", endpoint_conn_id="llm_stable")


def opened(policy=POLICY, **changes) -> ReleaseRecord:
    args = {
        "model_name": "support-llm",
        "model_type": "support-llm",
        "candidate": CANDIDATE,
        "production": PRODUCTION,
        "release_type": "prompt_minor",
        "change_summary": "clearer refund wording",
        "open_reviews": [],
        "used_version_names": [],
        "closed_outcomes": [],
        "now": NOW,
        "time_scale": 1.0,
        "airflow_run_id": "manual__1",
        **changes,
    }
    return open_release(policy, **args)


def test_open_release_names_scores_and_plans() -> None:
    record = opened(used_version_names=["support-llm-2026-W47-1-rejected"], closed_outcomes=["promoted"] * 3)
    assert record.version_name == "support-llm-2026-W47-2-dev" and record.release_id == "support-llm-2026-W47-2"
    assert record.risk.level == "low" and record.clean_release_streak == 3
    assert record.candidate.backend == "candidate" and record.production.version == "1"
    assert record.name_at("rejected", POLICY) == "support-llm-2026-W47-2-rejected"
    assert record.name_at("production", POLICY) == "support-llm-2026-W47-2-prod"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"open_reviews": ["PIR-7"]}, "post-incident review outstanding"),
        ({"production": None}, "no 'production' alias"),
        ({"production": VersionFacts(version="2", backend="candidate", endpoint_conn_id="c")}, "already in production"),
        ({"candidate": VersionFacts(version="2", backend="candidate")}, "llm_release.endpoint_conn_id missing"),
    ],
)
def test_open_release_refuses_with_the_reason(changes, message) -> None:
    with pytest.raises(ReleaseRefused, match=message):
        opened(**changes)


CUSTOM = POLICY.model_copy(
    update={
        "versioning": POLICY.versioning.model_copy(
            update={
                "template": "{type}.{year:04d}w{week:02d}.{increment}.{stage}",
                "stage_suffixes": {**POLICY.versioning.stage_suffixes, "rejected": "nogo", "production": "live"},
            }
        ),
        "decision_engine": POLICY.decision_engine.model_copy(
            update={
                "rejection": POLICY.decision_engine.rejection.model_copy(
                    update={"registry_tag_template": "rejected_{version}_on_{date}"}
                )
            }
        ),
    }
)


def test_names_and_rejection_tag_follow_the_policys_naming_settings() -> None:
    record = opened(CUSTOM)
    assert record.version_name == "support-llm.2026w47.1.dev" and record.release_id == "support-llm-2026-W47-1"
    assert record.name_at("rejected", CUSTOM) == "support-llm.2026w47.1.nogo"
    assert record.name_at("production", CUSTOM) == "support-llm.2026w47.1.live"
    assert record.rejection_tag(CUSTOM, date(2026, 11, 21)) == "rejected_support-llm-2026-W47-1_on_2026-11-21"
    assert opened().rejection_tag(POLICY, date(2026, 11, 21)) == "REJECTED-2026-11-21-support-llm-2026-W47-1"


def test_rejection_tag_is_idempotent_across_midnight() -> None:
    record = opened()
    earlier = "REJECTED-2026-11-20-support-llm-2026-W47-1"
    others = ["llm_release.status", "REJECTED-2026-11-19-support-llm-2026-W47-10", "REJECTED-xx-support-llm-2026-W47-1"]
    assert record.rejection_tag(POLICY, date(2026, 11, 21), [*others, earlier]) == earlier
    assert record.rejection_tag(POLICY, date(2026, 11, 21), others) == "REJECTED-2026-11-21-support-llm-2026-W47-1"


# --- release_outcome --------------------------------------------------------------------------------

TASKS = OutcomeTasks(prepare="prepare", promote="stage_5_production.promote", reject="reject", rollback="rollback")
ORDER = ["prepare", "stage_1_development.internal_eval", "stage_1_development.gate", "stage_5_production.promote",
         "reject", "rollback"]


def run(**states: str) -> dict[str, str]:
    """Task states of a run: everything upstream-failed unless given (as after an early failure)."""
    base = {task: "upstream_failed" for task in ORDER}
    base.update({"reject": "skipped", "rollback": "skipped"})
    return {**base, **{k.replace("__", "."): v for k, v in states.items()}}


def test_failed_prepare_is_a_failed_release_naming_the_refusal() -> None:
    # the run used to end "success": close_release skipped itself when prepare had failed
    outcome = release_outcome(
        run(prepare="failed"), TASKS, opened=False, task_order=ORDER,
        refusal="post-incident review outstanding for support-llm (ticket PIR-7)",
    )
    assert outcome.outcome == "failed" and not outcome.promoted and outcome.run_status == "FAILED"
    assert outcome.reason == "release not opened: post-incident review outstanding for support-llm (ticket PIR-7)"
    assert outcome.failed_tasks == ("prepare",)
    crashed = release_outcome(run(prepare="failed"), TASKS, opened=False)
    assert crashed.reason == "release not opened: task 'prepare' ended failed"


def test_outcomes_by_path() -> None:
    promoted = run(prepare="success", stage_1_development__internal_eval="success",
                   stage_1_development__gate="success", stage_5_production__promote="success")
    assert release_outcome(promoted, TASKS, opened=True).promoted
    assert release_outcome(promoted, TASKS, opened=True).run_status == "FINISHED"

    rejected = run(prepare="success", stage_1_development__internal_eval="success",
                   stage_1_development__gate="failed", reject="success")
    outcome = release_outcome(rejected, TASKS, opened=True, task_order=ORDER)
    assert (outcome.outcome, outcome.reason) == ("rejected", "failed stage_1_development.gate")

    rolled = {**promoted, "stage_5_production.promote": "upstream_failed", "rollback": "success",
              "stage_5_production.dwell_canary_tier_2": "failed"}
    outcome = release_outcome(rolled, TASKS, opened=True, rollback_trigger="error_rate_sustained")
    assert (outcome.outcome, outcome.reason) == ("rolled_back", "error_rate_sustained")

    crashed_reject = {**rejected, "reject": "failed"}
    outcome = release_outcome(crashed_reject, TASKS, opened=True, task_order=ORDER)
    assert outcome.outcome == "failed" and outcome.reason == "failed stage_1_development.gate, reject"

    nothing = run(prepare="success", stage_5_production__promote="skipped")
    outcome = release_outcome(nothing, TASKS, opened=True)
    assert outcome.outcome == "failed" and "ended without promotion" in outcome.reason


STATES = ["success", "failed", "upstream_failed", "skipped", None]


@given(st.fixed_dictionaries({task: st.sampled_from(STATES) for task in ORDER}), st.booleans())
def test_only_a_clean_promotion_is_a_success(states, opened_) -> None:
    outcome = release_outcome(states, TASKS, opened=opened_, task_order=ORDER)
    clean = (
        opened_
        and states["prepare"] == "success"
        and states["stage_5_production.promote"] == "success"
        and "failed" not in states.values()
        and "success" not in (states["reject"], states["rollback"])
    )
    assert outcome.promoted == clean
    assert outcome.run_status == ("FINISHED" if clean else "FAILED")
    assert outcome.reason
    assert list(outcome.failed_tasks) == [t for t in ORDER if states[t] == "failed"]


# --- what a rejection and a rollback leave behind -----------------------------------------------------


def test_rejection_tickets_follow_the_policy_and_the_blocking_band() -> None:
    assert rejection_tickets(POLICY, None) == ("remediation",)
    assert rejection_tickets(POLICY, "reject") == ("remediation", "incident")
    no_remediation = POLICY.model_copy(
        update={
            "decision_engine": POLICY.decision_engine.model_copy(
                update={
                    "rejection": POLICY.decision_engine.rejection.model_copy(
                        update={"create_remediation_ticket": False}
                    )
                }
            )
        }
    )
    assert rejection_tickets(no_remediation, None) == ()
    assert rejection_tickets(no_remediation, "reject") == ("incident",)
    assert rejection_tickets(no_remediation, "remediation") == ("remediation",)  # the 70-77 remediation queue
    assert rejection_tickets(no_remediation, "advance") == ()
    with pytest.raises(ValueError, match="unknown decision band"):
        rejection_tickets(POLICY, "nope")


def test_revert_timing_against_the_recovery_target() -> None:
    target = POLICY.recovery.previous_version_serve_seconds
    assert revert_timing(POLICY, 1.23456) == RevertTiming(seconds=1.235, target_seconds=target, within_target=True)
    assert not revert_timing(POLICY, target + 1).within_target
