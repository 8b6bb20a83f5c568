"""End-to-end releases through a real Airflow, answered through its REST API by distinct users.

Order matters only for the last test: a rollback opens a post-incident review, which (by design)
blocks the next release of the model until it is closed; the test closes it when done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from release_stack import MODEL, ROLE_USERS, Stack

from llm_release.localstack.airflow_client import AirflowApiError, run_id_of, task_id_of
from llm_release.localstack.seed import register_sandbox_version

pytestmark = pytest.mark.e2e

RUN_TIMEOUT_S = 1200
HUMAN_DELAY_S = 10.0


def role_of(task_id: str) -> str:
    """Which approver role an approval task belongs to (its name says so). A page from a dwell sensor is
    assigned to the critical-notification roles; the ML lead is one of them."""
    name = task_id.rsplit(".", 1)[-1]
    if name.startswith("approve_"):
        return name.removeprefix("approve_")
    if name == "red_team_review":
        return "safety_reviewer"  # accepts the external red team's findings at High risk
    return "ml_lead"  # stage-2 human review and stage-5 confirmations are owned by the ML lead


def set_faults(stack: Stack, build: str, **faults: Any) -> None:
    port = stack.ports.candidate if build == "candidate" else stack.ports.stable
    resp = httpx.put(f"http://127.0.0.1:{port}/admin/faults", json=faults, timeout=10)
    resp.raise_for_status()


def reset_sandbox(stack: Stack) -> None:
    router = stack.router()
    router.set_weights({"stable": 100, "candidate": 0})
    router.set_shadow(None)
    set_faults(
        stack,
        "candidate",
        hallucination_rate=0.0,
        policy_violation_rate=0.0,
        error_rate=0.0,
        injection_susceptibility=0.0,
        persona_failure_rate=0.0,
        fabrication_rate=0.0,
        contradiction_rate=0.0,
        wrong_number_rate=0.0,
        omission_rate=0.0,
        persona_slip_rate=0.0,
        scopes=None,
    )


def candidate_live_requests(stack: Stack) -> float:
    from llm_release.integrations.metrics import GatewayMetricsSource

    snap = GatewayMetricsSource(f"http://127.0.0.1:{stack.ports.gateway}/metrics").scrape()
    series = snap.get("candidate", "live")
    return float(series.requests) if series is not None else 0.0


def drive_run(
    stack: Stack,
    dag_id: str,
    conf: dict[str, Any],
    role_users: dict[str, str] | None = None,
    on_poll: Callable[[], None] | None = None,
    refused: list[tuple[str, str]] | None = None,
    pages: list[dict[str, Any]] | None = None,
    page_answer: str = "Continue",
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Trigger a run as admin, answer every approval it asks for as the role's user, wait for the end.

    With ``refused`` given, each approval is first answered by a user who is *not* assigned to it;
    Airflow must refuse that (HTTP 403), and each refusal is appended to ``refused``. A page (a dwell
    sensor asking "Rollback" or "Continue") is answered with ``page_answer`` and appended to ``pages``.
    """
    users = {**ROLE_USERS, **(role_users or {})}
    admin = stack.client("admin")
    run = admin.trigger(dag_id, conf)
    run_id = run["dag_run_id"]
    answered: list[tuple[str, str]] = []
    first_seen: dict[str, float] = {}
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if on_poll is not None:
            on_poll()
        for detail in admin.pending_approvals(dag_id, run_id):
            # Answer like a person, seconds after the request appears. Airflow 3.3 fails an approval
            # answered before the scheduler has processed the executor event of its parking run
            # ("finished with state success, but the task instance's state attribute is queued"),
            # several seconds on a busy 2-core machine; an answer within 170 ms also killed one.
            task_id = task_id_of(detail)
            if (detail.get("task_instance") or {}).get("state") != "awaiting_input":
                continue
            if time.monotonic() - first_seen.setdefault(task_id, time.monotonic()) < HUMAN_DELAY_S:
                continue
            assert run_id_of(detail) == run_id
            user = users[role_of(task_id)]
            if "Continue" in (detail.get("options") or []):  # a page: the evidence is in its body
                stack.client(user).answer(dag_id, run_id, task_id, page_answer)
                if pages is not None:
                    pages.append({"task_id": task_id, "subject": detail.get("subject"), "answer": page_answer})
                break
            if refused is not None:
                outsider = next(u for u in ("dana", "carol", "bob", "alice") if u != user)
                with pytest.raises(AirflowApiError, match="403"):
                    stack.client(outsider).answer(dag_id, run_id, task_id, "Approve")
                refused.append((task_id, outsider))
            stack.client(user).answer(dag_id, run_id, task_id, "Approve")
            answered.append((task_id, user))
            break  # one answer per poll, as people do: rapid successive answers race in Airflow 3.3
        state = admin.get_run(dag_id, run_id)["state"]
        if state in ("success", "failed"):
            return {"run_id": run_id, "state": state, "tis": admin.task_instances(dag_id, run_id)}, answered
        time.sleep(1)
    tis = admin.task_instances(dag_id, run_id)
    # a run left running would hold the next scenario's run in the queue (one active run per DAG)
    admin.request("PATCH", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}", json={"state": "failed"})
    pytest.fail(
        f"run {run_id} not finished after {RUN_TIMEOUT_S}s: "
        f"{ {t: ti['state'] for t, ti in tis.items() if ti['state'] not in ('success', 'skipped')} }"
    )


def new_candidate(stack: Stack, description: str) -> str:
    return register_sandbox_version(stack.registry(), MODEL, "candidate", description).version


def test_a_good_candidate_is_released(stack: Stack) -> None:
    reset_sandbox(stack)
    version = new_candidate(stack, "good candidate")
    refused: list[tuple[str, str]] = []
    pages: list[dict[str, Any]] = []
    result, answered = drive_run(
        stack,
        "release_support_llm",
        {
            "candidate_version": version,
            "release_type": "prompt_minor",
            "change_summary": "clearer refund wording",
        },
        refused=refused,
        pages=pages,
    )
    print(f"pages answered 'Continue' during the good release: {pages}")
    assert len(refused) == len(answered) > 0  # Airflow refused every unassigned user
    states = {t: ti["state"] for t, ti in result["tis"].items()}
    assert result["state"] == "success", states
    assert states["stage_5_production.promote"] == "success"
    assert states["reject"] == "skipped" and states["rollback"] == "skipped"
    assert stack.router().get_weights() == {"stable": 0, "candidate": 100}
    assert stack.registry().get_alias(MODEL, "production").version == version

    approvers = [user for task_id, user in answered if ".approve_" in task_id]  # the stage-4 sign-off
    assert {"alice", "bob"} <= set(approvers)
    assert len(approvers) == len(set(approvers)), "each stage-4 role must be signed by a different person"

    release = stack.client("admin").xcom("release_support_llm", result["run_id"], "prepare")
    events = stack.audit(release["release_id"])
    kinds = [e.kind for e in events]
    # a gate passes, or is inconclusive and a person approved its review (the ML lead, answered above)
    opened = [e for e in events if e.kind == "gate_verdict" and (e.payload.get("passed")
                                                                  or e.payload.get("outcome") == "inconclusive")]
    gates = {e.payload.get("stage") for e in opened}
    undecided = {e.payload.get("stage") for e in opened if e.payload.get("outcome") == "inconclusive"}
    print(f"gates that went to a person: {sorted(undecided)}")
    reviewed = {t.split(".")[0] for t, _ in answered if t.endswith(".human_review")}
    assert {f"stage_{n}_{s}" for n, s in ((1, "development"), (2, "validation"), (3, "staging"))
            if s in undecided} <= reviewed
    assert {"development", "validation", "staging", "preproduction"} <= gates
    assert "decision_score" in kinds and "promotion" in kinds
    approvals = [e for e in events if e.kind == "approval"]
    signoff = [e for e in approvals if e.payload.get("purpose") == "stage 4 release sign-off"]
    assert sorted((e.payload["role"], e.actor) for e in signoff) == sorted(
        (role_of(t), u) for t, u in answered if ".approve_" in t
    )
    dwells = [
        e.payload["phase"] for e in events if e.kind == "dwell_result" and e.payload["status"] == "done"
    ]
    assert dwells[-5:] == ["canary_tier_1", "canary_tier_2", "progressive_25", "progressive_50", "full"]
    from llm_release.integrations.audit import JsonlAuditStore

    assert JsonlAuditStore(stack.audit_path).verify()[0]
    # promote the stable build back so the next scenario starts from the same production version
    stack.registry().set_alias(MODEL, "production", release["production"]["version"])


def test_b_policy_leaking_candidate_is_rejected_without_traffic(stack: Stack) -> None:
    reset_sandbox(stack)
    set_faults(stack, "candidate", policy_violation_rate=0.3)
    version = new_candidate(stack, "leaks refund promises")
    before = candidate_live_requests(stack)
    result, answered = drive_run(
        stack, "release_support_llm", {"candidate_version": version, "release_type": "finetune_recent_data"}
    )
    states = {t: ti["state"] for t, ti in result["tis"].items()}
    assert result["state"] == "failed"
    assert states["stage_1_development.gate"] == "failed"
    assert states["reject"] == "success"
    assert states["rollback"] == "skipped"
    assert answered == []
    assert candidate_live_requests(stack) == before, "a rejected candidate must never receive live traffic"
    assert stack.router().get_weights()["candidate"] == 0
    tags = stack.registry().resolve(MODEL, version=version).tags
    assert any(k.startswith("REJECTED-") for k in tags), tags
    release = stack.client("admin").xcom("release_support_llm", result["run_id"], "prepare")
    gate = [e for e in stack.audit(release["release_id"]) if e.kind == "gate_verdict"]
    failed = [c["metric"] for c in gate[0].payload["checks"] if not c["passed"]]
    assert "safety_policy_failures" in failed


def test_d_one_person_answering_two_roles_is_refused(stack: Stack) -> None:
    reset_sandbox(stack)
    version = new_candidate(stack, "good candidate, small team")
    before = candidate_live_requests(stack)
    result, answered = drive_run(
        stack,
        "release_support_llm_small_team",
        {
            "candidate_version": version,
            "release_type": "base_model_upgrade",
        },  # High risk: safety reviewer joins
        role_users={"support_ops_lead": "carol", "safety_reviewer": "carol"},
    )
    states = {t: ti["state"] for t, ti in result["tis"].items()}
    assert result["state"] == "failed"
    assert ("stage_4_preproduction.approve_support_ops_lead", "carol") in answered
    assert ("stage_4_preproduction.approve_safety_reviewer", "carol") in answered
    assert states["stage_4_preproduction.check_approvals"] == "failed"
    assert states["reject"] == "success"
    assert states["stage_5_production.set_traffic_canary_tier_1"] == "upstream_failed"
    assert candidate_live_requests(stack) == before
    release = stack.client("admin").xcom("release_support_llm_small_team", result["run_id"], "prepare")
    verdict = [
        e
        for e in stack.audit(release["release_id"])
        if e.kind == "gate_verdict" and e.payload.get("stage") == "preproduction"
    ]
    assert verdict and not verdict[-1].payload["passed"]
    assert any("carol" in p for p in verdict[-1].payload["problems"])


def failed_checks(stack: Stack, release_id: str) -> list[dict[str, Any]]:
    return [c for e in stack.audit(release_id) if e.kind == "gate_verdict"
            for c in e.payload.get("checks", []) if c.get("outcome", "fail" if not c["passed"] else "pass") == "fail"]


def test_e_refund_fabricator_is_stopped_before_live_traffic(stack: Stack) -> None:
    """Invented, number-free claims on a quarter of refund and billing-dispute answers only: the average
    hides them, the high-stakes category floors do not."""
    reset_sandbox(stack)
    set_faults(stack, "candidate", fabrication_rate=0.25,
               scopes={"fabrication": {"categories": ["refunds", "billing-dispute"]}})
    version = new_candidate(stack, "invents refund terms")
    before = candidate_live_requests(stack)
    result, _ = drive_run(
        stack, "release_support_llm", {"candidate_version": version, "release_type": "prompt_minor"}
    )
    states = {t: ti["state"] for t, ti in result["tis"].items()}
    assert result["state"] == "failed", states
    assert states["reject"] == "success"
    assert candidate_live_requests(stack) == before, "the fabricator must never receive live traffic"
    assert stack.router().get_weights()["candidate"] == 0
    release = stack.client("admin").xcom("release_support_llm", result["run_id"], "prepare")
    failed = failed_checks(stack, release["release_id"])
    named = [c for c in failed if c["metric"].startswith(("hs_refunds", "hs_billing_disputes",
                                                           "shadow_hs_refunds", "shadow_hs_billing_disputes"))]
    assert named, [c["reason"] for c in failed]
    print(f"stopped by: {[c['reason'] for c in named]}")


def test_f_canary_only_policy_violator_is_rolled_back(stack: Stack) -> None:
    """Clean offline and in shadow, violating policy once it serves live canary traffic: zero tolerance."""
    reset_sandbox(stack)
    set_faults(stack, "candidate", policy_violation_rate=0.5, scopes={"policy_violation": {"traffic": ["live"]}})
    version = new_candidate(stack, "misbehaves on live traffic")
    try:
        result, _ = drive_run(
            stack, "release_support_llm", {"candidate_version": version, "release_type": "prompt_minor"}
        )
        states = {t: ti["state"] for t, ti in result["tis"].items()}
        assert result["state"] == "failed", states
        assert states["stage_5_production.dwell_canary_tier_1"] == "failed", states
        assert states["rollback"] == "success"
        assert states["stage_5_production.promote"] == "upstream_failed"
        assert router_weights_reverted(stack)
        rollback = stack.client("admin").xcom("release_support_llm", result["run_id"], "rollback")
        assert "policy" in rollback["trigger"], rollback
    finally:
        from llm_release.integrations.tickets import LocalTicketStore

        tickets = LocalTicketStore(stack.tickets_dir)
        for ticket in tickets.list_open("post_incident_review"):
            tickets.close(ticket.ticket_id, "closed by the e2e test")
        reset_sandbox(stack)


def router_weights_reverted(stack: Stack) -> bool:
    return stack.router().get_weights() == {"stable": 100, "candidate": 0}


def test_c_error_rate_at_10_percent_rolls_back(stack: Stack) -> None:
    reset_sandbox(stack)
    version = new_candidate(stack, "breaks under load")
    router = stack.router()
    injected: list[float] = []

    def inject_when_at_10_percent() -> None:
        if not injected and router.get_weights().get("candidate") == 10:
            set_faults(stack, "candidate", error_rate=0.5)
            injected.append(time.monotonic())

    try:
        result, _ = drive_run(
            stack,
            "release_support_llm",
            {"candidate_version": version, "release_type": "prompt_minor"},
            on_poll=inject_when_at_10_percent,
        )
        states = {t: ti["state"] for t, ti in result["tis"].items()}
        assert injected, "the rollout never reached the 10 % phase"
        assert result["state"] == "failed"
        assert states["stage_5_production.dwell_canary_tier_2"] == "failed"
        assert states["rollback"] == "success"
        assert states["stage_5_production.promote"] == "upstream_failed"
        assert router.get_weights() == {"stable": 100, "candidate": 0}
        rollback = stack.client("admin").xcom("release_support_llm", result["run_id"], "rollback")
        assert "error_rate" in rollback["trigger"], rollback
        release = stack.client("admin").xcom("release_support_llm", result["run_id"], "prepare")
        events = [e for e in stack.audit(release["release_id"]) if e.kind == "rollback"]
        assert events and events[0].payload["trigger"] == rollback["trigger"]
        assert stack.registry().get_alias(MODEL, "production").version == release["production"]["version"]
        # the next release is refused until the post-incident review is closed
        blocked, _ = drive_run(
            stack, "release_support_llm", {"candidate_version": version, "release_type": "prompt_minor"}
        )
        assert {t: ti["state"] for t, ti in blocked["tis"].items()}["prepare"] == "failed"
    finally:
        from llm_release.integrations.tickets import LocalTicketStore

        tickets = LocalTicketStore(stack.tickets_dir)
        for ticket in tickets.list_open("post_incident_review"):
            tickets.close(ticket.ticket_id, "closed by the e2e test")
        set_faults(stack, "candidate", error_rate=0.0)
