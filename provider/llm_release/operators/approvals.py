"""Human decisions: approval routing, one approval task per role, the sign-off check, the rollback path.

Approvals are Airflow's native Human-in-the-loop tasks (Required Actions in the UI, ``hitlDetails``
in the REST API), assigned to the users the release config maps to each role. A decision the spec
leaves to a person stays with a person: the DAG waits; it never answers for them.

The rules (which roles sign, whether they did, distinct people, the red-team acceptance, the rollback
path) are ``decisions.signoff``; these operators fetch the answers and facts, call it and persist the
verdict. Every upstream task they read is named by ``pipeline.py`` through their constructor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowFailException

from llm_release.hooks.model_endpoint import ModelEndpointHook
from llm_release.hooks.traffic_router import TrafficRouterHook
from llm_release.operators.base import PREPARE_TASK_ID, ReleaseOperatorBase, jsonable

_RELEASE = f"ti.xcom_pull(task_ids='{PREPARE_TASK_ID}')"

APPROVAL_BODY = f"""\
**Release** `{{{{ {_RELEASE}['release_id'] }}}}` of model
`{{{{ {_RELEASE}['model_name'] }}}}`: candidate version
{{{{ {_RELEASE}['candidate']['version'] }}}} replacing
{{{{ {_RELEASE}['production']['version'] }}}}.

* Release type: {{{{ {_RELEASE}['release_type'] }}}};
  risk {{{{ {_RELEASE}['risk']['score'] }}}}
  ({{{{ {_RELEASE}['risk']['level'] }}}})
* Change: {{{{ {_RELEASE}['change_summary'] or '(none given)' }}}}
"""

DECISION_LINES = """\
{% set score = ti.xcom_pull(task_ids='{decision_task_id}') %}
{% if score %}* Decision score: {{ score['score']['total'] | round(1) }} (band {{ score['score']['band'] }})
{% endif %}"""

GATE_EVIDENCE_LINES = """\
{% set gate = ti.xcom_pull(task_ids='{gate_task_id}') %}
{% set reviews = ti.xcom_pull(task_ids='{route_task_id}', key='reviews') %}
{% if reviews %}
**Why a person decides:**
{% for review in reviews %}* {{ review['gate'] }}: {{ review['reason'] }}
{% endfor %}{% endif %}
{% if gate %}
**Gate {{ gate['stage'] }}: {{ gate['outcome'] | upper }}** (evidence: value, n, interval, threshold, outcome,
policy source)

{{ gate['evidence_table'] }}
{% endif %}"""

CLOSING_LINE = "\nApprove as **{role_title}** ({purpose}). Each role must be answered by a different person.\n"


def approval_body(role_title: str, purpose: str, decision_task_id: str | None,
                  gate_task_id: str | None = None, route_task_id: str | None = None) -> str:
    """The Jinja body shown to the approver: the release, its risk, (when known) its decision score and,
    for a gate review, why it was routed to a person and the gate's evidence table."""
    body = APPROVAL_BODY
    if decision_task_id is not None:
        body += DECISION_LINES.replace("{decision_task_id}", decision_task_id)
    if gate_task_id is not None and route_task_id is not None:
        body += GATE_EVIDENCE_LINES.replace("{gate_task_id}", gate_task_id).replace("{route_task_id}", route_task_id)
    return body + CLOSING_LINE.replace("{role_title}", role_title).replace("{purpose}", purpose)


def decision_band(context: Any, decision_task_id: str) -> str:
    """The routing band the decision score task pushed; a missing score is an error, never "no band"."""
    from llm_release.decisions.score import DecisionScore

    pushed = context["ti"].xcom_pull(task_ids=decision_task_id)
    if not pushed or "score" not in pushed:
        raise AirflowFailException(
            f"no decision score from task {decision_task_id!r}: the required approvers cannot be decided"
        )
    return DecisionScore.model_validate(pushed["score"]).band


class RoleApprovalOperator(ReleaseOperatorBase, ApprovalOperator):
    """An approval for one role; its answer, with the responder's identity, goes to the audit trail.

    A "Reject" fails the task on purpose: it routes the run to the rejection path (registry tag,
    failure report, remediation ticket) instead of silently skipping the rest of the release.

    :param role: the approver role id (``policy.approvals.roles``) this task asks.
    :param role_title: the role's title, shown to the approver.
    :param purpose: what is being approved, shown to the approver and kept in the audit trail.
    :param approvers: Airflow user ids the release config maps to ``role``; only they may answer.
    :param stage: the policy stage id (``validation``, ``preproduction``, ``production``) the audit
        record of the answer is filed under.
    :param decision_task_id: task whose XCom holds the release decision score, shown in the body;
        None where no score exists yet (stage 1-3 reviews).
    :param gate_task_id: for a gate review, the gate whose evidence table the body shows.
    :param route_task_id: for a gate review, the routing task whose reasons the body shows.
    :param config_path: the release config YAML. (templated)

    ``subject`` and ``body`` are templated (they read the release record and the decision score).
    """

    template_fields: Sequence[str] = ("config_path", "subject", "body")
    ui_color = "#fce5cd"

    def __init__(
        self,
        *,
        role: str,
        role_title: str,
        purpose: str,
        approvers: list[str],
        stage: str,
        config_path: str,
        decision_task_id: str | None = None,
        gate_task_id: str | None = None,
        route_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.role = role
        self.purpose = purpose
        self.stage = stage
        self.decision_task_id = decision_task_id
        super().__init__(
            config_path=config_path,
            subject=f"[{role_title}] {purpose}: " + "{{ " + _RELEASE + "['release_id'] }}",
            body=approval_body(role_title, purpose, decision_task_id, gate_task_id, route_task_id),
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
        self.record(context, "approval", payload, stage=self.stage, actor=str(who.get("id", "unknown")))
        if chosen != self.APPROVE:
            raise AirflowFailException(f"{self.role} approval rejected by {who.get('id', 'unknown')}")
        return jsonable({**ret, "role": self.role})


class ApprovalRoutingOperator(ReleaseOperatorBase, BaseBranchOperator):
    """Choose which role approvals this release needs (decision-score band and risk level, spec 2 and 9).

    :param decision_task_id: task whose XCom holds the release decision score.
    :param approval_task_ids: role id -> the approval task asking that role.
    :param red_team_task_id: the task where the external red team's findings are accepted.
    :param config_path: the release config YAML. (templated)
    """

    def __init__(
        self,
        *,
        decision_task_id: str,
        approval_task_ids: Mapping[str, str],
        red_team_task_id: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decision_task_id = decision_task_id
        self.approval_task_ids = dict(approval_task_ids)
        self.red_team_task_id = red_team_task_id

    def choose_branch(self, context: Any) -> list[str]:
        from llm_release.decisions.signoff import signoff_requirement

        rel = self.release(context)
        try:
            band = decision_band(context, self.decision_task_id)
            need = signoff_requirement(self.config.release_policy, rel.risk, band)
        except ValueError as exc:
            raise AirflowFailException(f"stage 4 sign-off cannot be routed: {exc}") from None
        unmapped = [r for r in need.roles if not self.config.approvers.get(r)]
        if unmapped:
            raise AirflowFailException(f"no users mapped to required approver role(s) {unmapped} in the config")
        no_task = [r for r in need.roles if r not in self.approval_task_ids]
        if no_task:
            raise AirflowFailException(f"the DAG has no approval task for required role(s) {no_task}")
        self.record(
            context,
            "human_review",
            {
                "required_roles": need.roles,
                "band": need.band,
                "risk": rel.risk,
                "red_team_review": need.red_team_review,
            },
            stage="preproduction",
        )
        context["ti"].xcom_push(key="required_roles", value=list(need.roles))
        context["ti"].xcom_push(key="red_team_review", value=need.red_team_review)
        chosen = [self.approval_task_ids[role] for role in need.roles]
        return chosen + ([self.red_team_task_id] if need.red_team_review else [])


class ApprovalCheckOperator(ReleaseOperatorBase):
    """Stage 4 sign-off: ``decisions.signoff.signoff_verdict`` over the approval tasks' answers.

    The requirement is recomputed from the release record and the decision score (not read back from
    the routing task), so a lost routing XCom can never shrink it.

    :param decision_task_id: task whose XCom holds the release decision score.
    :param approval_task_ids: role id -> the approval task asking that role.
    :param red_team_task_id: the task where the external red team's findings are accepted.
    :param red_team_role: role whose mapped users may accept the red-team review.
    :param config_path: the release config YAML. (templated)
    """

    def __init__(
        self,
        *,
        decision_task_id: str,
        approval_task_ids: Mapping[str, str],
        red_team_task_id: str,
        red_team_role: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.decision_task_id = decision_task_id
        self.approval_task_ids = dict(approval_task_ids)
        self.red_team_task_id = red_team_task_id
        self.red_team_role = red_team_role

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.signoff import ApprovalAnswer, signoff_requirement, signoff_verdict

        ti = context["ti"]
        rel = self.release(context)
        policy = self.config.release_policy
        try:
            need = signoff_requirement(policy, rel.risk, decision_band(context, self.decision_task_id))
        except ValueError as exc:
            raise AirflowFailException(f"stage 4 sign-off cannot be checked: {exc}") from None
        approve = ApprovalOperator.APPROVE
        answers = {
            role: ApprovalAnswer.from_hitl(ti.xcom_pull(task_ids=self.approval_task_ids[role]), approve)
            if role in self.approval_task_ids
            else None
            for role in need.roles
        }
        red_team = (
            ApprovalAnswer.from_hitl(ti.xcom_pull(task_ids=self.red_team_task_id), approve)
            if need.red_team_review
            else None
        )
        verdict = signoff_verdict(
            policy,
            need.roles,
            answers,
            self.config.approvers,
            need.red_team_review,
            red_team,
            red_team_role=self.red_team_role,
        )
        payload = jsonable(verdict)
        self.record(context, "gate_verdict", {"stage": "preproduction", **payload}, stage="preproduction")
        if not verdict.passed:
            raise AirflowFailException("stage 4 sign-off refused: " + "; ".join(verdict.problems))
        return payload


class RollbackReadinessOperator(ReleaseOperatorBase):
    """Confirm the rollback path before any live traffic: n-1 is warm, routable and still production.

    :param config_path: the release config YAML. (templated)
    """

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.signoff import rollback_path_verdict

        rel = self.release(context)
        prod = rel.production
        health = ModelEndpointHook(prod.endpoint_conn_id).get_conn().health()
        router = TrafficRouterHook(self.config.connections.router_conn_id).get_conn()
        backends = sorted(router.backends())
        alias = self.registry.get_alias(self.config.model_name, "production")
        verdict = rollback_path_verdict(
            production_version=prod.version,
            production_backend=prod.backend,
            endpoint_healthy=bool(health.ok),
            router_backends=backends,
            production_alias_version=None if alias is None else alias.version,
        )
        payload = {
            "production": prod,
            "healthy": health.ok,
            "health_detail": health.detail,
            "backends": backends,
            "metrics": {"rollback_path_ready": verdict.rollback_path_ready},
            "problems": verdict.problems,
        }
        self.record(
            context,
            "gate_verdict",
            {"stage": "rollback_readiness", "passed": verdict.passed, **payload},
            stage="preproduction",
        )
        if not verdict.passed:
            raise AirflowFailException("rollback path not confirmed: " + "; ".join(verdict.problems))
        return jsonable(payload)


class ConfirmationRoutingOperator(ReleaseOperatorBase, BaseBranchOperator):
    """Ask for a human confirmation before this phase only when the risk level requires it.

    :param phase: the rollout phase (``policy.rollout.phases``) about to start.
    :param confirm_task_id: the approval task asking for the confirmation.
    :param continue_task_id: the task that starts the phase when no confirmation is needed.
    :param config_path: the release config YAML. (templated)
    """

    def __init__(self, *, phase: str, confirm_task_id: str, continue_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase = phase
        self.confirm_task_id = confirm_task_id
        self.continue_task_id = continue_task_id

    def choose_branch(self, context: Any) -> str:
        planned = self.release(context).plan.phase(self.phase)
        return self.confirm_task_id if planned.requires_human_confirmation else self.continue_task_id


class HumanReviewRoutingOperator(ReleaseOperatorBase, BaseBranchOperator):
    """Send a stage's result to a person when it needs one (``decisions.routing.review_requirements``):
    an inconclusive gate at any stage, and at stage 2 the spec's section-3 approval routing (some
    passing results still need a person to look first).

    :param gate_task_id: the stage gate whose verdict (with its measurements) is routed.
    :param review_task_id: the approval task a person answers when a review is required.
    :param continue_task_id: the task that continues the stage when no review is required.
    :param stage: the policy stage id of the gate (default ``validation``).
    :param config_path: the release config YAML. (templated)
    """

    def __init__(
        self, *, gate_task_id: str, review_task_id: str, continue_task_id: str, stage: str = "validation",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.gate_task_id = gate_task_id
        self.review_task_id = review_task_id
        self.continue_task_id = continue_task_id
        self.stage = stage

    def choose_branch(self, context: Any) -> str:
        from llm_release.decisions.gates import GateVerdict
        from llm_release.decisions.routing import review_requirements

        pushed = context["ti"].xcom_pull(task_ids=self.gate_task_id)
        if not pushed or "measurements" not in pushed or "checks" not in pushed:
            raise AirflowFailException(
                f"no gate verdict from task {self.gate_task_id!r}: cannot tell whether a person must review"
            )
        try:
            verdict = GateVerdict.model_validate(pushed)
            reviews = review_requirements(self.config.release_policy, self.stage, verdict, pushed["measurements"])
        except ValueError as exc:
            raise AirflowFailException(f"gate {self.stage!r} verdict cannot be routed: {exc}") from None
        payload = {"stage": self.stage, "review_required": bool(reviews), "gate_outcome": verdict.outcome,
                   "reviews": jsonable(reviews)}
        self.record(context, "human_review", payload, stage=self.stage)
        context["ti"].xcom_push(key="reviews", value=jsonable(reviews))
        for review in reviews:
            self.log.warning("human review required (%s): %s", review.gate, review.reason)
        return self.review_task_id if reviews else self.continue_task_id
