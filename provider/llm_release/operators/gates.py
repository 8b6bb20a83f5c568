"""Gate and decision-score operators: verdicts from measurements, failing closed."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from llm_release.operators.base import ReleaseOperatorBase, jsonable


def collect_measurements(context: Any, task_ids: list[str]) -> dict[str, Any]:
    """Merge the ``metrics`` dicts pushed by the measuring tasks.

    A missing push is an error, and so is one metric pushed by two tasks with different values: a
    silent overwrite could replace a failing value with a passing one.
    """
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    for task_id in task_ids:
        pushed = context["ti"].xcom_pull(task_ids=task_id)
        if not pushed or "metrics" not in pushed:
            raise AirflowFailException(f"no measurements from task {task_id!r}: the gate cannot measure")
        for metric, value in pushed["metrics"].items():
            if metric in merged and merged[metric] != value:
                raise AirflowFailException(
                    f"metric {metric!r} measured twice with different values: {merged[metric]!r} by task "
                    f"{source[metric]!r}, {value!r} by task {task_id!r}"
                )
            merged[metric], source[metric] = value, task_id
    return merged


def collect_evidence(context: Any, task_ids: list[str]) -> dict[str, Any]:
    """Merge the ``evidence`` dicts (metric -> n and interval) pushed by the measuring tasks; a task that
    pushed none contributes nothing (the gate fails closed on any interval check left without one). One
    metric's evidence pushed twice with different contents is an error, as for the metrics."""
    merged: dict[str, Any] = {}
    source: dict[str, str] = {}
    for task_id in task_ids:
        pushed = context["ti"].xcom_pull(task_ids=task_id) or {}
        for metric, value in (pushed.get("evidence") or {}).items():
            if metric in merged and merged[metric] != value:
                raise AirflowFailException(
                    f"evidence of {metric!r} reported twice with different contents, by task {source[metric]!r} "
                    f"and by task {task_id!r}"
                )
            merged[metric], source[metric] = value, task_id
    return merged


class ReleaseGateOperator(ReleaseOperatorBase):
    """Check a stage's exit criteria (policy ``gates[stage]``) against upstream measurements.

    Every threshold is direction-aware; a metric that is missing, None or NaN fails the check. Rates
    and means are weighed on their intervals (``decisions.gates.check_one``): pass, fail or inconclusive.
    The verdict (each check with observed value, n, interval and reason, and the evidence table) goes to
    the audit trail and XCom. A failed gate fails the task, which routes the run to the rejection path.
    An inconclusive gate (nothing failed, something undecided) does not pass: with
    ``inconclusive_to_review`` the task succeeds with ``outcome`` "inconclusive" and the routing task
    after it opens a human review with the evidence; without it the task fails (never a silent pass).

    :param stage: the policy stage id whose exit criteria this gate checks.
    :param measurement_tasks: the tasks whose pushed ``metrics`` (and ``evidence``) the gate checks
        (every one must have pushed metrics; a missing push fails the gate).
    :param inconclusive_to_review: True when ``pipeline.py`` wired a review routing after this gate.
    :param config_path: the release config YAML. (templated)
    """

    ui_color = "#fde2e2"

    def __init__(self, *, stage: str, measurement_tasks: list[str], inconclusive_to_review: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.measurement_tasks = measurement_tasks
        self.inconclusive_to_review = inconclusive_to_review

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.gates import check_gate, evidence_table, gate_confidence, stage_checks

        policy = self.config.release_policy
        measurements = collect_measurements(context, self.measurement_tasks)
        evidence = collect_evidence(context, self.measurement_tasks)
        thresholds = stage_checks(policy, self.stage)
        verdict = check_gate(thresholds, measurements, evidence, confidence=gate_confidence(policy))
        table = evidence_table(verdict, evidence)
        payload = {
            "stage": self.stage,
            "passed": verdict.passed,
            "outcome": verdict.outcome,
            "checks": verdict.checks,
            "measurements": measurements,
            "evidence": evidence,
            "evidence_table": table,
        }
        self.record(context, "gate_verdict", payload, stage=self.stage)
        rel = self.release(context)
        self.registry.log_dict(rel.mlflow_run_id, jsonable(payload), f"gates/{self.stage}.json")
        lines = [f"  {c.outcome.upper()} {c.reason}" for c in verdict.checks]
        self.log.info("Gate %s %s\n%s\n%s", self.stage, verdict.outcome.upper(), "\n".join(lines), table)
        self._notify(rel, verdict)
        result = jsonable(payload)
        if verdict.outcome == "inconclusive" and self.inconclusive_to_review:
            self.log.warning("gate %s inconclusive: a person decides (%s)", self.stage, verdict.summary())
            return result
        if not verdict.passed:
            context["ti"].xcom_push(key="verdict", value=result)
            raise AirflowFailException(f"gate '{self.stage}' {verdict.summary()}")
        return result


    def _notify(self, rel: Any, verdict: Any) -> None:
        """Tell the stage's ``notify_roles`` the result (stage 2: the ML engineer; stage 3: the quality lead,
        who reviews the flagged samples). The verdict is already in the audit trail, so a failing webhook
        is logged, never allowed to change the gate's outcome."""
        from llm_release.decisions.notices import notice_roles
        from llm_release.notifications.release import notify_release_event

        if not notice_roles(self.config.release_policy, "stage_result", stage=self.stage):
            return
        details = {"stage": self.stage, "passed": verdict.passed, "outcome": verdict.outcome,
                   "summary": verdict.summary()}
        try:
            notify_release_event(self.config, "stage_result", rel, details, self.log, stage=self.stage)
        except Exception as exc:  # the audit record stands; the notice is best effort
            self.log.warning("stage %s result notice not delivered: %s", self.stage, exc)


class DecisionScoreOperator(ReleaseOperatorBase):
    """Release decision engine (spec section 4) on the validation, adversarial and shadow measurements.

    ``decisions.score.decision_inputs`` turns the three tasks' metrics into the score's inputs (nothing
    unmeasured is defaulted) and ``decision_score`` scores and routes them. Bands: advance, enhanced
    review (adds the safety reviewer), remediation (blocked), reject (halted). A band that does not
    advance fails this task, which sends the run down the rejection path.

    :param validation_task_id: the held-out validation eval (task completion, policy violations).
    :param adversarial_task_id: the adversarial suite (policy-boundary probe violations).
    :param shadow_task_id: the shadow-sample evaluation (compliance, SCS, p99).
    :param config_path: the release config YAML. (templated)
    """

    ui_color = "#fde2e2"

    def __init__(
        self, *, validation_task_id: str, adversarial_task_id: str, shadow_task_id: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.validation_task_id = validation_task_id
        self.adversarial_task_id = adversarial_task_id
        self.shadow_task_id = shadow_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.score import decision_inputs, decision_score

        inputs = decision_inputs(
            collect_measurements(context, [self.validation_task_id]),
            collect_measurements(context, [self.shadow_task_id]),
            collect_measurements(context, [self.adversarial_task_id]),
        )
        engine = self.config.release_policy.decision_engine
        score = decision_score(engine, inputs)
        payload = jsonable({"inputs": inputs, "score": score})
        self.record(context, "decision_score", payload, stage="staging")
        rel = self.release(context)
        self.registry.log_metrics(
            rel.mlflow_run_id,
            {
                "decision_score": score.total,
                **{f"decision_score.{k}": v for k, v in score.components.items()},
            },
        )
        self.log.info(
            "Release decision score %.1f (%s)\n%s", score.total, score.band, "\n".join(score.explanation)
        )
        if not score.advances_to_stage_4:
            context["ti"].xcom_push(key="verdict", value=payload)
            why = f"unmeasured {', '.join(score.unmeasured_components)}; " if score.unmeasured_components else ""
            raise AirflowFailException(
                f"decision score {score.total:.1f} is in band '{score.band}' ({why}minimum {engine.min_score:g} "
                "with every component measured): release blocked"
            )
        return payload
