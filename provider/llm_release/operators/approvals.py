"""Human decisions: approval routing, one approval task per role, the distinct-people check.

Approvals are Airflow's native Human-in-the-loop tasks (Required Actions in the UI, ``hitlDetails``
in the REST API), assigned to the users the release config maps to each role. A decision the spec
leaves to a person stays with a person: the DAG waits; it never answers for them.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException

from llm_release.hooks.model_endpoint import ModelEndpointHook
from llm_release.hooks.traffic_router import TrafficRouterHook
from llm_release.operators.base import ReleaseOperatorBase, jsonable

STAGE4 = "stage_4_preproduction"
RED_TEAM_TASK = f"{STAGE4}.red_team_review"

APPROVAL_BODY = """\
**Release** `{{ ti.xcom_pull(task_ids='prepare')['release_id'] }}` of model
`{{ ti.xcom_pull(task_ids='prepare')['model_name'] }}`: candidate version
{{ ti.xcom_pull(task_ids='prepare')['candidate']['version'] }} replacing
{{ ti.xcom_pull(task_ids='prepare')['production']['version'] }}.

* Release type: {{ ti.xcom_pull(task_ids='prepare')['release_type'] }};
  risk {{ ti.xcom_pull(task_ids='prepare')['risk']['score'] }}
  ({{ ti.xcom_pull(task_ids='prepare')['risk']['level'] }})
* Change: {{ ti.xcom_pull(task_ids='prepare')['change_summary'] or '(none given)' }}
{% set score = ti.xcom_pull(task_ids='stage_3_staging.decision_score') %}
{% if score %}* Decision score: {{ score['score']['total'] | round(1) }} (band {{ score['score']['band'] }})
{% endif %}
Approve as **{role_title}** ({purpose}). Each role must be answered by a different person.
"""


class RoleApprovalOperator(ReleaseOperatorBase, ApprovalOperator):
    """An approval for one role; its answer, with the responder's identity, goes to the audit trail.

    A "Reject" fails the task on purpose: it routes the run to the rejection path (registry tag,
    failure report, remediation ticket) instead of silently skipping the rest of the release.
    """

    template_fields = ("config_path", "subject", "body")
    ui_color = "#fce5cd"

    def __init__(
        self, *, role: str, role_title: str, purpose: str, approvers: list[str], config_path: str, **kwargs: Any
    ) -> None:
        self.role = role
        self.purpose = purpose
        super().__init__(
            config_path=config_path,
            subject=f"[{role_title}] {purpose}: " "{{ ti.xcom_pull(task_ids='prepare')['release_id'] }}",
            body=APPROVAL_BODY.replace("{role_title}", role_title).replace("{purpose}", purpose),
            assigned_users=[{"id": user, "name": user} for user in approvers],
            **kwargs,
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        ret = super(ApprovalOperator, self).execute_complete(context=context, event=event)
        chosen = ret["chosen_options"][0]
        who = ret.get("responded_by_user") or {}
        payload = {
            "role": self.role,
            "purpose": self.purpose,
            "decision": chosen,
            "responded_by": who,
            "responded_at": ret.get("responded_at"),
        }
        self.record(
            context,
            "approval",
            payload,
            stage=self.task_id.split(".", 1)[0],
            actor=str(who.get("id", "unknown")),
        )
        if chosen != self.APPROVE:
            raise AirflowFailException(f"{self.role} approval rejected by {who.get('id', 'unknown')}")
        return jsonable({**ret, "role": self.role})


class ApprovalRoutingOperator(ReleaseOperatorBase, BaseBranchOperator):
    """Choose which role approvals this release needs (risk level and decision-score band)."""

    def choose_branch(self, context: Any) -> list[str]:
        from llm_release.decisions.rollout import required_approvers

        rel = self.release(context)
        score = context["ti"].xcom_pull(task_ids="stage_3_staging.decision_score")
        band = score["score"]["band"] if score else None
        roles = required_approvers(self.config.release_policy, rel.risk.level, band)
        missing = [r for r in roles if not self.config.approvers.get(r)]
        if missing:
            raise AirflowFailException(
                f"no users mapped to required approver role(s) {missing} in the config"
            )
        red_team = rel.risk.controls.external_red_team_before_stage == "preproduction"
        self.record(
            context,
            "human_review",
            {"required_roles": roles, "band": band, "risk": rel.risk, "red_team_review": red_team},
            stage=STAGE4,
        )
        context["ti"].xcom_push(key="required_roles", value=roles)
        context["ti"].xcom_push(key="red_team_review", value=red_team)
        return [f"{STAGE4}.approve_{role}" for role in roles] + ([RED_TEAM_TASK] if red_team else [])


class ApprovalCheckOperator(ReleaseOperatorBase):
    """All required roles approved, each by a user mapped to that role, and no person twice."""

    def execute(self, context: Any) -> dict[str, Any]:
        ti = context["ti"]
        required = ti.xcom_pull(task_ids=f"{STAGE4}.route_approvals", key="required_roles")
        if not required:
            raise AirflowFailException("no record of the required approver roles: cannot confirm sign-off")
        problems: list[str] = []
        responders: dict[str, str] = {}
        for role in required:
            answer = ti.xcom_pull(task_ids=f"{STAGE4}.approve_{role}")
            if not answer:
                problems.append(f"{role}: no approval recorded")
                continue
            who = str((answer.get("responded_by_user") or {}).get("id", ""))
            if answer.get("chosen_options") != ["Approve"]:
                problems.append(f"{role}: answered {answer.get('chosen_options')}")
            if who not in self.config.approvers.get(role, []):
                problems.append(f"{role}: answered by {who!r}, who is not mapped to this role")
            responders[role] = who
        by_person: dict[str, list[str]] = {}
        for role, who in responders.items():
            by_person.setdefault(who, []).append(role)
        for who, roles in by_person.items():
            if len(roles) > 1 and self.config.release_policy.approvals.distinct_people:
                problems.append(
                    f"{who!r} approved {len(roles)} roles ({', '.join(roles)}); each role needs a different person"
                )
        if ti.xcom_pull(task_ids=f"{STAGE4}.route_approvals", key="red_team_review"):
            review = ti.xcom_pull(task_ids=RED_TEAM_TASK)  # a review acknowledgement, not a role sign-off
            if not review or review.get("chosen_options") != ["Approve"]:
                problems.append("the external red-team review required at this risk level was not accepted")
        payload = {
            "required_roles": required,
            "responders": responders,
            "problems": problems,
            "passed": not problems,
        }
        self.record(context, "gate_verdict", {"stage": "preproduction", **payload}, stage="preproduction")
        if problems:
            raise AirflowFailException("stage 4 sign-off refused: " + "; ".join(problems))
        return payload


class RollbackReadinessOperator(ReleaseOperatorBase):
    """Confirm the rollback path before any live traffic: n-1 is warm, routable and still production."""

    def execute(self, context: Any) -> dict[str, Any]:
        rel = self.release(context)
        prod = rel.production
        health = ModelEndpointHook(prod["endpoint_conn_id"]).get_conn().health()
        router = TrafficRouterHook(self.config.connections.router_conn_id).get_conn()
        backends = router.backends()
        alias = self.registry.get_alias(self.config.model_name, "production")
        problems = []
        if not health.ok:
            problems.append(f"production endpoint {prod['endpoint_conn_id']!r} is not healthy")
        if prod["backend"] not in backends:
            problems.append(f"router has no backend {prod['backend']!r} (has {sorted(backends)})")
        if alias is None or alias.version != prod["version"]:
            problems.append("registry alias 'production' no longer points at the version to roll back to")
        payload = {
            "production": prod,
            "healthy": health.ok,
            "health_detail": health.detail,
            "backends": sorted(backends),
            "problems": problems,
        }
        self.record(
            context,
            "gate_verdict",
            {"stage": "rollback_readiness", "passed": not problems, **payload},
            stage="preproduction",
        )
        if problems:
            raise AirflowFailException("rollback path not confirmed: " + "; ".join(problems))
        return payload


class ConfirmationRoutingOperator(ReleaseOperatorBase, BaseBranchOperator):
    """Ask for a human confirmation before this phase only when the risk level requires it."""

    def __init__(self, *, phase: str, confirm_task_id: str, continue_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase = phase
        self.confirm_task_id = confirm_task_id
        self.continue_task_id = continue_task_id

    def choose_branch(self, context: Any) -> str:
        planned = self.release(context).plan.phase(self.phase)
        return self.confirm_task_id if planned.requires_human_confirmation else self.continue_task_id


class HumanReviewRoutingOperator(ReleaseOperatorBase, BaseBranchOperator):
    """Spec section 3 approval routing: some passing results still need a person to look first."""

    def __init__(
        self, *, gate_task_id: str, review_task_id: str, continue_task_id: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.gate_task_id = gate_task_id
        self.review_task_id = review_task_id
        self.continue_task_id = continue_task_id

    def choose_branch(self, context: Any) -> str:
        from llm_release.decisions.routing import required_reviews

        verdict = context["ti"].xcom_pull(task_ids=self.gate_task_id)
        reviews = required_reviews(self.config.release_policy, verdict["measurements"])
        payload = {"stage": "validation", "review_required": bool(reviews), "reviews": jsonable(reviews)}
        self.record(context, "human_review", payload, stage="validation")
        context["ti"].xcom_push(key="reviews", value=jsonable(reviews))
        for review in reviews:
            self.log.warning("human review required (%s): %s", review.gate, review.reason)
        return self.review_task_id if reviews else self.continue_task_id
