"""Deferrable dwell sensors: the DAG waits in the triggerer, not in a worker slot.

``RolloutDwellSensor`` holds a rollout phase for its planned (time-scaled) dwell while the
:class:`RolloutDwellTrigger` checks the policy's pause, hold and automatic-rollback triggers;
``ShadowDwellSensor`` holds stage 3 until the shadow has run its planned time and mirrored enough
queries. A rollback event fails the task with the breached trigger's name, which sends the run down
the rollback path.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowFailException

from llm_release.hooks.metrics_source import MetricsSourceHook
from llm_release.operators.base import ReleaseOperatorBase, jsonable
from llm_release.triggers.rollout import RolloutDwellTrigger

MIN_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 30.0


class DwellSensorBase(ReleaseOperatorBase, BaseSensorOperator):
    """Shared deferral plumbing; subclasses say what to wait for."""

    ui_color = "#cfe2f3"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)

    def poll_seconds(self) -> float:
        minute = 60.0 * float(self.config.time_scale)
        return min(MAX_POLL_SECONDS, max(MIN_POLL_SECONDS, minute))

    def defer_for(self, trigger: RolloutDwellTrigger) -> None:
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=trigger.max_seconds + 120),
        )

    def stage_budget_hours(self, stage_id: str) -> float:
        """The spec's time budget of a stage (its upper bound), the ceiling for holding a phase."""
        return next(s for s in self.config.release_policy.stages if s.id == stage_id).time_budget_max_hours

    def poke(self, context: Any) -> bool:
        raise AirflowFailException(f"{type(self).__name__} only runs deferred (it never pokes)")


class RolloutDwellSensor(DwellSensorBase):
    """Hold one rollout phase; roll back on the spec's automatic triggers."""

    def __init__(self, *, phase: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase = phase

    def execute(self, context: Any) -> None:
        rel = self.release(context)
        traffic = context["ti"].xcom_pull(task_ids=f"stage_5_production.set_traffic_{self.phase}")
        dwell_s = float(traffic["dwell_seconds"])
        policy = self.config.release_policy
        urls = MetricsSourceHook(self.config.connections.metrics_conn_id).endpoints()
        triggers = [t.model_dump(mode="json") for t in (*policy.pause_triggers, *policy.rollback_triggers)]
        self.defer_for(
            RolloutDwellTrigger(
                mode="canary",
                phase=self.phase,
                candidate_backend=rel.candidate.backend,
                baseline_backend=rel.production.backend,
                metrics_url=urls["metrics_url"],
                samples_url=urls["samples_url"],
                dwell_seconds=dwell_s,
                minute_seconds=60.0 * float(self.config.time_scale),
                poll_seconds=self.poll_seconds(),
                max_seconds=max(
                    dwell_s * self.config.max_hold_factor, self.seconds(self.stage_budget_hours("production"))
                ),
                triggers=triggers,
                min_live_samples=self.config.live_sample_min,
                # a phase must have seen enough requests to evaluate every ratio trigger on real evidence
                min_requests=max((t["min_count"] or 1 for t in triggers if t.get("ratio_of")), default=1),
            )
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        self.record(context, "dwell_result", event, stage="production", suffix=f"/{self.phase}")
        self.log_json(f"Dwell {self.phase} ended: {event['status']}", event)
        if event["status"] == "done":
            return jsonable(event)
        trigger = event.get("trigger") or "dwell_not_completed"
        context["ti"].xcom_push(
            key="breach",
            value={"trigger": trigger, "phase": self.phase, "reason": event.get("reason"), "event": event},
        )
        if event["status"] == "rollback":
            raise AirflowFailException(
                f"automatic rollback trigger '{trigger}' breached at {self.phase}: {event.get('reason')}"
            )
        raise AirflowFailException(f"phase {self.phase} did not complete: {event.get('reason')}")


class ShadowDwellSensor(DwellSensorBase):
    """Hold stage 3 for the planned shadow time and at least the policy's number of mirrored queries."""

    def execute(self, context: Any) -> None:
        rel = self.release(context)
        plan = rel.plan
        start = context["ti"].xcom_pull(task_ids="stage_3_staging.start_shadow")
        dwell_s = self.seconds(plan.shadow_hours)
        urls = MetricsSourceHook(self.config.connections.metrics_conn_id).endpoints()
        budget_h = self.stage_budget_hours("staging")
        self.defer_for(
            RolloutDwellTrigger(
                mode="shadow",
                phase="shadow",
                candidate_backend=rel.candidate.backend,
                baseline_backend=rel.production.backend,
                metrics_url=urls["metrics_url"],
                samples_url=urls["samples_url"],
                dwell_seconds=dwell_s,
                minute_seconds=60.0 * float(self.config.time_scale),
                poll_seconds=self.poll_seconds(),
                max_seconds=max(dwell_s, self.seconds(budget_h)) * self.config.max_hold_factor,
                min_shadow_samples=int(plan.shadow_min_samples),
                shadow_since=int(start["since"]),
            )
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        self.record(context, "dwell_result", event, stage="staging", suffix="/shadow")
        if event["status"] != "done":
            raise AirflowFailException(f"shadow phase did not complete: {event.get('reason')}")
        self.log_json("Shadow dwell complete", event)
        return jsonable(event)
