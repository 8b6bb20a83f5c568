"""Gate and decision-score operators: verdicts from measurements, failing closed."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from llm_release.operators.base import ReleaseOperatorBase, jsonable


def collect_measurements(context: Any, task_ids: list[str]) -> dict[str, Any]:
    """Merge the ``metrics`` dicts pushed by the measuring tasks; a missing push is an error."""
    merged: dict[str, Any] = {}
    for task_id in task_ids:
        pushed = context["ti"].xcom_pull(task_ids=task_id)
        if not pushed or "metrics" not in pushed:
            raise AirflowFailException(f"no measurements from task {task_id!r}: the gate cannot measure")
        merged.update(pushed["metrics"])
    return merged


class ReleaseGateOperator(ReleaseOperatorBase):
    """Check a stage's exit criteria (policy ``gates[stage]``) against upstream measurements.

    Every threshold is direction-aware; a metric that is missing, None or NaN fails the check.
    The verdict (each check with observed value and reason) goes to the audit trail and XCom; a
    failed gate fails the task, which routes the run to the rejection path.
    """

    ui_color = "#fde2e2"

    def __init__(self, *, stage: str, measurement_tasks: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage
        self.measurement_tasks = measurement_tasks

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.gates import check_gate, stage_checks

        measurements = collect_measurements(context, self.measurement_tasks)
        thresholds = stage_checks(self.config.release_policy, self.stage)
        verdict = check_gate(thresholds, measurements)
        payload = {
            "stage": self.stage,
            "passed": verdict.passed,
            "checks": verdict.checks,
            "measurements": measurements,
        }
        self.record(context, "gate_verdict", payload, stage=self.stage)
        rel = self.release(context)
        self.registry.log_dict(rel.mlflow_run_id, jsonable(payload), f"gates/{self.stage}.json")
        lines = [
            f"  {'PASS' if c.passed else 'FAIL'} {c.metric} {c.op} {c.threshold}: "
            f"observed {c.observed} {c.reason or ''}"
            for c in verdict.checks
        ]
        self.log.info(
            "Gate %s %s\n%s", self.stage, "PASSED" if verdict.passed else "FAILED", "\n".join(lines)
        )
        result = jsonable(payload)
        if not verdict.passed:
            context["ti"].xcom_push(key="verdict", value=result)
            failed = "; ".join(
                f"{c.metric} {c.op} {c.threshold} (observed {c.observed}{', ' + c.reason if c.reason else ''})"
                for c in verdict.checks
                if not c.passed
            )
            raise AirflowFailException(f"gate '{self.stage}' failed: {failed}")
        return result


class DecisionScoreOperator(ReleaseOperatorBase):
    """Release decision engine (spec section 4) on the validation and shadow measurements.

    Inputs: policy compliance and SCS from the shadow sample (the live query distribution), task
    completion from the held-out validation set, p99 from the shadow sample. Bands: advance,
    enhanced review (adds the safety reviewer), remediation (blocked), reject (halted).
    """

    ui_color = "#fde2e2"
    VALIDATION_EVAL = "stage_2_validation.validation_eval"
    SHADOW_EVAL = "stage_3_staging.evaluate_shadow"

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.score import DecisionInputs, decision_score

        validation = collect_measurements(context, [self.VALIDATION_EVAL])
        shadow = collect_measurements(context, [self.SHADOW_EVAL])
        adversarial = collect_measurements(context, ["stage_2_validation.adversarial"])
        zero_tolerance = int((adversarial.get("policy_probe_violations") or 0) > 0) + int(
            (shadow.get("shadow_policy_violation_rate") or 0) > 0
        )
        compliance = shadow.get("shadow_policy_violation_rate")
        inputs = DecisionInputs(
            policy_compliance_rate=None if compliance is None else 1.0 - float(compliance),
            scs=shadow.get("shadow_scs"),
            task_completion_rate=validation.get("task_completion_rate"),
            p99_ms=shadow.get("shadow_latency_p99_ms"),
            zero_tolerance_failures=zero_tolerance,
        )
        score = decision_score(self.config.release_policy.decision_engine, inputs)
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
            raise AirflowFailException(
                f"decision score {score.total:.1f} is in band '{score.band}' "
                f"(minimum {self.config.release_policy.decision_engine.min_score}): release blocked"
            )
        return payload
