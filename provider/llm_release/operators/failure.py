"""The two failure paths and the release's closing record.

* ``reject``: something failed before any live traffic (a gate, a suite, an approval). The candidate
  is tagged ``REJECTED-<date>-<version>`` in the registry (and kept), a failure report is written,
  people are notified and a remediation ticket is opened (spec section 4, rejection workflow).
* ``rollback``: something failed during the progressive rollout. Traffic returns to n-1, the
  registry alias stays on n-1, an incident and a post-incident review are opened; the next release
  of this model is refused until that review is closed (spec section 7).

Both use the trigger rule ``one_failed``, which also fires on ``upstream_failed``; they ask Airflow
which watched tasks really *failed* and skip themselves when none did.

``close_release`` is the DAG's only leaf (trigger rule ``all_done``), so its state is the run's state.
It always runs, asks ``decisions.release.release_outcome`` how the release ended, ends the MLflow
release run FINISHED or FAILED with the outcome and reason as tags, and fails unless the release was
promoted, including when ``prepare`` failed and no release was ever opened.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from llm_release.hooks.traffic_router import TrafficRouterHook
from llm_release.notifications.release import notify_release_event
from llm_release.operators.base import PREPARE_TASK_ID, ReleaseOperatorBase, jsonable
from llm_release.operators.prepare import MLFLOW_RUN_XCOM_KEY, REFUSAL_XCOM_KEY


def task_states(
    context: Any, *, task_ids: list[str] | None = None, group_id: str | None = None
) -> dict[str, str]:
    """States of this run's tasks among ``task_ids`` or in the task group ``group_id``, by task id."""
    ti = context["ti"]
    states = ti.get_task_states(
        dag_id=ti.dag_id, task_ids=task_ids, task_group_id=group_id, run_ids=[ti.run_id]
    )
    flat: dict[str, str] = {}
    for key, value in states.items():  # keyed by run id, then task id
        if isinstance(value, dict):
            flat.update({k: _state_name(v) for k, v in value.items()})
        else:
            flat[key] = _state_name(value)
    return flat


def _state_name(state: Any) -> str:
    return str(getattr(state, "value", state))


def failed_task_ids(
    context: Any, *, task_ids: list[str] | None = None, group_id: str | None = None
) -> list[str]:
    """Task ids in state ``failed`` (not ``upstream_failed``) among ``task_ids`` or in ``group_id``."""
    return sorted(
        t
        for t, state in task_states(context, task_ids=task_ids, group_id=group_id).items()
        if state == "failed"
    )


class RejectReleaseOperator(ReleaseOperatorBase):
    """Rejection workflow for a candidate that failed before live exposure.

    The tickets it opens are ``decisions.release.rejection_tickets``: a remediation ticket (when the
    policy asks for one) and, when the decision score blocked the release, whatever its band creates
    (an incident for a hard rejection).

    :param watched_task_ids: the pre-live tasks whose failure rejects the candidate (their ``verdict``
        XComs go into the failure report).
    :param decision_task_id: the decision-score task, whose band decides the extra ticket when it is
        the task that failed.
    :param config_path: the release config YAML. (templated)
    """

    ui_color = "#f4cccc"

    def __init__(self, *, watched_task_ids: list[str], decision_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watched_task_ids = watched_task_ids
        self.decision_task_id = decision_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.release import rejection_tickets

        failed = failed_task_ids(context, task_ids=self.watched_task_ids)
        if not failed:
            raise AirflowSkipException("no pre-production task failed; nothing to reject")
        rel = self.release(context)
        cfg = self.config
        ti = context["ti"]
        verdicts = {t: ti.xcom_pull(task_ids=t, key="verdict") for t in failed}
        router = TrafficRouterHook(cfg.connections.router_conn_id).get_conn()
        router.set_shadow(None)
        cand, prod = rel.candidate.backend, rel.production.backend
        if router.get_weights().get(cand, 0) != 0:
            router.set_weights({prod: 100, cand: 0})
        policy = cfg.release_policy
        version_name = rel.name_at("rejected", policy)
        existing = self.registry.resolve(cfg.model_name, version=rel.candidate.version).tags
        tag = rel.rejection_tag(policy, datetime.now(UTC).date(), existing)
        self.registry.mark_rejected(cfg.model_name, rel.candidate.version, version_name, tag)
        report = {
            "release_id": rel.release_id,
            "candidate_version": rel.candidate.version,
            "failed_tasks": failed,
            "verdicts": verdicts,
            "risk": rel.risk,
            "registry_tag": tag,
            "version_name": version_name,
        }
        self.registry.log_dict(rel.mlflow_run_id, jsonable(report), "failure_report.json")
        score = (verdicts.get(self.decision_task_id) or {}).get("score") or {}
        titles = {
            "remediation": f"Remediate rejected release {rel.release_id} ({', '.join(failed)})",
            "incident": f"Hard rejection of release {rel.release_id}: decision score band {score.get('band')}",
        }
        body = jsonable({**report, "model_name": cfg.model_name})
        report["tickets"] = [
            self.tickets.open_ticket(
                kind=kind,
                release_id=rel.release_id,
                title=titles[kind],
                body=body,
                dedupe_key=f"reject/{rel.release_id}" if kind == "remediation" else f"reject-{kind}/{rel.release_id}",
            ).ticket_id
            for kind in rejection_tickets(policy, score.get("band"))
        ]
        notify_release_event(cfg, "rejection", jsonable(rel), report, self.log)
        self.record(context, "rejection", report, stage="rejection")
        self.log_json("Release rejected", report)
        return jsonable(report)


class RollbackOperator(ReleaseOperatorBase):
    """Automatic rollback when a rollout task failed: n-1 takes all traffic again.

    :param watched_group_id: the rollout task group; a failed task in it triggers the rollback (a dwell
        sensor's ``breach`` XCom names the breached trigger).
    :param config_path: the release config YAML. (templated)
    """

    ui_color = "#ea9999"

    def __init__(self, *, watched_group_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.watched_group_id = watched_group_id

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.release import revert_timing

        failed = failed_task_ids(context, group_id=self.watched_group_id)
        if not failed:
            raise AirflowSkipException("no rollout task failed (the rollout never started or succeeded)")
        started = time.monotonic()
        rel = self.release(context)
        cfg = self.config
        ti = context["ti"]
        breaches = [b for b in (ti.xcom_pull(task_ids=t, key="breach") for t in failed) if b]
        trigger = breaches[0]["trigger"] if breaches else f"task failure: {', '.join(failed)}"
        cand, prod = rel.candidate.backend, rel.production.backend
        router = TrafficRouterHook(cfg.connections.router_conn_id).get_conn()
        router.set_weights({prod: 100, cand: 0})
        router.set_shadow(None)
        weights = router.get_weights()
        timing = revert_timing(cfg.release_policy, time.monotonic() - started)
        alias = self.registry.get_alias(cfg.model_name, "production")
        if alias is None or alias.version != rel.production.version:
            self.registry.revert_production(cfg.model_name, rel.production.version)
        self.registry.set_version_tags(
            cfg.model_name,
            rel.candidate.version,
            {
                "llm_release.status": "rolled_back",
                "llm_release.version_name": rel.name_at("rolled_back", cfg.release_policy),
            },
        )
        result = {
            "trigger": trigger,
            "breaches": breaches,
            "failed_tasks": failed,
            "weights_after": weights,
            "seconds_to_revert": timing.seconds,
            "revert_target_seconds": timing.target_seconds,
            "reverted_within_target": timing.within_target,
            "rolled_back_at": datetime.now(UTC).isoformat(),
        }
        if not timing.within_target:
            self.log.warning(
                "revert took %.1f s, over the %.0f s recovery target", timing.seconds, timing.target_seconds
            )
        recovery = cfg.release_policy.recovery
        body = jsonable({**result, "model_name": cfg.model_name, "release_id": rel.release_id})
        incident = self.tickets.open_ticket(
            kind="incident",
            release_id=rel.release_id,
            title=f"Rollback of {rel.release_id}: {trigger}",
            body={
                **body,
                "recovery_workflow": [{"at_minutes": s.at_minutes, "action": s.action} for s in recovery.workflow],
            },
            dedupe_key=f"incident/{rel.release_id}",
        )
        review = self.tickets.open_ticket(
            kind="post_incident_review",
            release_id=rel.release_id,
            title=f"Post-incident review for {rel.release_id}",
            body={
                **body,
                "due_within_hours": cfg.release_policy.monitoring.escalation.post_incident_review_hours,
                "requirements": list(recovery.post_incident_requirements),
            },
            dedupe_key=f"pir/{rel.release_id}",
        )
        result["tickets"] = [incident.ticket_id, review.ticket_id]
        notify_release_event(cfg, "rollback", jsonable(rel), result, self.log)
        self.record(context, "rollback", result, stage="production")
        self.log_json("Rolled back", result)
        return jsonable(result)


class CloseReleaseOperator(ReleaseOperatorBase):
    """Write the release's outcome and make the run's state tell it: success only when promoted.

    The outcome (``decisions.release.release_outcome``) goes to the audit trail (the clean-release streak
    is counted from these records) and to the MLflow release run, which ends FINISHED when promoted and
    FAILED otherwise, tagged ``llm_release.outcome`` and ``llm_release.reason``. Retrying converges: the
    audit event id and the run's end state are the same the second time.

    :param promote_task_id: the task that promotes the candidate to production.
    :param reject_task_id: the rejection path's task.
    :param rollback_task_id: the rollback path's task.
    :param config_path: the release config YAML. (templated)
    """

    def __init__(self, *, promote_task_id: str, reject_task_id: str, rollback_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.promote_task_id = promote_task_id
        self.reject_task_id = reject_task_id
        self.rollback_task_id = rollback_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.release import OutcomeTasks, ReleaseRecord, release_outcome

        ti = context["ti"]
        pushed = ti.xcom_pull(task_ids=PREPARE_TASK_ID)
        rel = ReleaseRecord.model_validate(pushed) if pushed else None
        states = {t: s for t, s in task_states(context).items() if t != self.task_id}
        dag = context.get("dag") or self.dag
        outcome = release_outcome(
            states,
            OutcomeTasks(
                prepare=PREPARE_TASK_ID,
                promote=self.promote_task_id,
                reject=self.reject_task_id,
                rollback=self.rollback_task_id,
            ),
            opened=rel is not None,
            task_order=[t.task_id for t in dag.topological_sort()] if dag is not None else (),
            refusal=ti.xcom_pull(task_ids=PREPARE_TASK_ID, key=REFUSAL_XCOM_KEY),
            rollback_trigger=(ti.xcom_pull(task_ids=self.rollback_task_id) or {}).get("trigger"),
        )
        payload = {
            "model_name": self.config.model_name,
            "outcome": outcome.outcome,
            "reason": outcome.reason,
            "failed_tasks": list(outcome.failed_tasks),
            "closed_at": datetime.now(UTC).isoformat(),
        }
        run_id = rel.mlflow_run_id if rel is not None else None
        run_id = run_id or ti.xcom_pull(task_ids=PREPARE_TASK_ID, key=MLFLOW_RUN_XCOM_KEY)
        if run_id:
            self.registry.end_release_run(
                run_id, outcome.run_status, outcome=outcome.outcome, reason=outcome.reason
            )
        if rel is not None:
            self.record(context, "release_closed", payload, stage="close", release_id=rel.release_id)
        name = rel.release_id if rel is not None else f"of {self.config.model_name} (run {ti.run_id})"
        self.log.info("Release %s closed: %s (%s)", name, outcome.outcome, outcome.reason)
        if not outcome.promoted:
            # This task is the DAG's only leaf (trigger rule all_done): it decides the run's state, so
            # a release that did not reach production must fail the run, and say why.
            raise AirflowFailException(f"release {name} {outcome.outcome.replace('_', ' ')}: {outcome.reason}")
        return payload
