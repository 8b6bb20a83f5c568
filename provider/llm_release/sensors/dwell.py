"""Deferrable dwell sensors: the DAG waits in the triggerer, not in a worker slot.

``RolloutDwellSensor`` holds a rollout phase for its planned (time-scaled) dwell while the
:class:`RolloutDwellTrigger` feeds observations to :func:`~llm_release.decisions.dwell.dwell_step`;
``ShadowDwellSensor`` holds stage 3 until the shadow has run its planned time and mirrored enough
answered queries. A rollback fails the task with the breached trigger's name (XCom ``breach``), which
sends the run down the rollback path.

Pages reach a person. When ``dwell_step`` pages (a ``manual_rollback_triggers`` trigger fired, or the
phase reached its limit without the evidence to decide), this sensor opens an Airflow Human-in-the-loop
request, as ``HITLOperator.execute`` does on Airflow 3.3 (``upsert_hitl_detail`` then
``TaskAwaitingInput``), assigned to the users mapped to ``monitoring.escalation.critical_notify_roles``,
with options "Rollback" / "Continue". It appears in Airflow's Required Actions. "Rollback" takes the
rollback path; "Continue" resumes the dwell from the persisted state with the page acknowledged. One
task handles any number of pages: a second ``upsert_hitl_detail`` on the same task instance clears the
previous answer and waits again (Airflow keeps one request per task try, so the subject and body shown
are those of the try's first page; every page's evidence is in XCom ``page`` and the audit trail).
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
TRIGGER_TIMEOUT_SLACK_SECONDS = 120.0
ROLLBACK = "Rollback"
CONTINUE = "Continue"
PAGE_OPTIONS = [ROLLBACK, CONTINUE]


class DwellSensorBase(ReleaseOperatorBase, BaseSensorOperator):
    """Shared deferral plumbing; subclasses say what to wait for."""

    ui_color = "#cfe2f3"

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)

    def poll_seconds(self) -> float:
        minute = 60.0 * float(self.config.time_scale)
        return min(MAX_POLL_SECONDS, max(MIN_POLL_SECONDS, minute))

    def minute_seconds(self) -> float:
        return 60.0 * float(self.config.time_scale)

    def defer_for(self, trigger: RolloutDwellTrigger) -> None:
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=trigger.hard_limit_seconds() + TRIGGER_TIMEOUT_SLACK_SECONDS),
        )

    def stage_budget_hours(self, stage_id: str) -> float:
        """The spec's time budget of a stage (its upper bound), the ceiling for holding a phase."""
        return next(s for s in self.config.release_policy.stages if s.id == stage_id).time_budget_max_hours

    def poke(self, context: Any) -> bool:
        raise AirflowFailException(f"{type(self).__name__} only runs deferred (it never pokes)")


class RolloutDwellSensor(DwellSensorBase):
    """Hold one rollout phase; roll back on the spec's automatic triggers; page a person on the manual ones.

    :param phase: the rollout phase (a live phase of the policy).
    :param previous_dwell_task_id: the previous phase's dwell task, whose final state (the baseline's
        last measured window, the live-quality samples) this phase continues from; None for the first.
    :param set_traffic_task_id: the task that set this phase's traffic (its XCom has ``dwell_seconds``).
    """

    def __init__(
        self,
        *,
        phase: str,
        previous_dwell_task_id: str | None = None,
        set_traffic_task_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.phase = phase
        self.previous_dwell_task_id = previous_dwell_task_id
        self.set_traffic_task_id = set_traffic_task_id or f"stage_5_production.set_traffic_{phase}"

    # --- timing ---------------------------------------------------------------------------------
    def dwell_seconds(self, context: Any) -> float:
        traffic = context["ti"].xcom_pull(task_ids=self.set_traffic_task_id)
        if not traffic or traffic.get("dwell_seconds") is None:
            raise AirflowFailException(f"no dwell time from task {self.set_traffic_task_id!r}")
        return float(traffic["dwell_seconds"])

    def max_seconds(self, dwell_s: float) -> float:
        return max(dwell_s * self.config.max_hold_factor, self.seconds(self.stage_budget_hours("production")))

    def build_trigger(
        self, context: Any, state: dict[str, Any] | None, phase_start: dict[str, Any] | None = None
    ) -> RolloutDwellTrigger:
        from llm_release.decisions.dwell import DwellPolicy

        rel = self.release(context)
        dwell_s = self.dwell_seconds(context)
        urls = MetricsSourceHook(self.config.connections.metrics_conn_id).endpoints()
        return RolloutDwellTrigger(
            mode="canary",
            phase=self.phase,
            candidate_backend=rel.candidate.backend,
            baseline_backend=rel.production.backend,
            metrics_url=urls["metrics_url"],
            samples_url=urls["samples_url"],
            dwell_seconds=dwell_s,
            minute_seconds=self.minute_seconds(),
            poll_seconds=self.poll_seconds(),
            max_seconds=self.max_seconds(dwell_s),
            dwell_policy=DwellPolicy.of(self.config.release_policy).model_dump(mode="json"),
            state=state,
            phase_start=phase_start,
        )

    def execute(self, context: Any) -> None:
        from llm_release.decisions.dwell import DwellState, start_dwell

        previous = None
        if self.previous_dwell_task_id:
            pushed = context["ti"].xcom_pull(task_ids=self.previous_dwell_task_id) or {}
            if pushed.get("dwell_state"):
                previous = DwellState.model_validate(pushed["dwell_state"])
            else:  # baseline-relative triggers stay unmeasured until n-1 serves enough traffic here
                self.log.warning("no dwell state from %s: this phase starts without a baseline",
                                 self.previous_dwell_task_id)
        state = start_dwell("canary", self.phase, previous)
        self.defer_for(self.build_trigger(context, state.model_dump(mode="json", exclude_defaults=True)))

    # --- the trigger's verdict --------------------------------------------------------------------
    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        summary = {k: v for k, v in event.items() if k not in ("dwell_state", "phase_start")}
        if event["status"] == "page":
            return self.page(context, event)
        self.record(context, "dwell_result", summary, stage="production", suffix=f"/{self.phase}")
        self.report_alerts(context, event)
        self.log_json(f"Dwell {self.phase} ended: {event['status']}", summary)
        if event["status"] == "done":  # the next phase continues from ``dwell_state``
            return jsonable({k: v for k, v in event.items() if k != "phase_start"})
        trigger = event.get("trigger") or "dwell_not_completed"
        self.push_breach(context, trigger, event.get("reason"), summary)
        if event["status"] == "rollback":
            raise AirflowFailException(
                f"automatic rollback trigger '{trigger}' breached at {self.phase}: {event.get('reason')}"
            )
        raise AirflowFailException(f"phase {self.phase} did not complete: {event.get('reason')}")

    def report_alerts(self, context: Any, event: dict[str, Any]) -> None:
        """Section 6 monitoring lines the phase crossed: each goes to the audit trail first, then the
        critical ones to ``monitoring.escalation.critical_notify_roles`` (a failing webhook is logged;
        the record stands)."""
        from llm_release.notifications.release import notify_release_event

        alerts = (event.get("dwell_state") or {}).get("alerts") or []
        if not alerts:
            return
        self.record(context, "monitoring_alert", {"phase": self.phase, "alerts": alerts}, stage="production",
                    suffix=f"/{self.phase}")
        critical = [a for a in alerts if a.get("level") == "critical"]
        for alert in alerts:
            self.log.warning("monitoring %s at %s: %s", alert.get("level"), self.phase, alert.get("detail"))
        if critical:
            details = {"trigger": "; ".join(str(a.get("detail")) for a in critical)}
            try:
                notify_release_event(self.config, "monitoring_critical", self.release(context), details, self.log)
            except Exception as exc:
                self.log.warning("critical monitoring notice not delivered: %s", exc)

    def push_breach(self, context: Any, trigger: str, reason: Any, event: dict[str, Any]) -> None:
        context["ti"].xcom_push(
            key="breach",
            value={"trigger": trigger, "phase": self.phase, "reason": reason, "event": jsonable(event)},
        )

    # --- pages: a person decides ------------------------------------------------------------------
    def page_assignees(self) -> list[dict[str, str]]:
        roles = self.config.release_policy.monitoring.escalation.critical_notify_roles
        users = sorted({user for role in roles for user in self.config.users_for(role)})
        return [{"id": user, "name": user} for user in users]

    def page(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """Open a Human-in-the-loop request with the page's evidence and wait for the answer."""
        from airflow.sdk.exceptions import TaskAwaitingInput
        from airflow.sdk.execution_time.hitl import upsert_hitl_detail

        page = event.get("page") or {}
        trigger = str(event.get("trigger") or page.get("trigger_name") or "page")
        number = int((event.get("dwell_state") or {}).get("pages_opened", 0)) or 1
        summary = {k: v for k, v in event.items() if k not in ("dwell_state", "phase_start")}
        assignees = self.page_assignees()
        if not assignees:
            roles = self.config.release_policy.monitoring.escalation.critical_notify_roles
            self.push_breach(context, trigger, f"page could not reach a person: no users for {roles}", summary)
            raise AirflowFailException(
                f"{trigger} at {self.phase} needs a person, but no users are mapped to the roles {roles}"
            )
        rel = self.release(context)
        self.record(
            context,
            "page",
            {"page": number, **summary},
            stage="production",
            suffix=f"/{self.phase}/page/{number}",
        )
        context["ti"].xcom_push(key="page", value=jsonable({**page, "phase": self.phase, "number": number}))
        self.log_json(f"Dwell {self.phase}: paging {[a['id'] for a in assignees]}", summary)
        upsert_hitl_detail(
            ti_id=context["task_instance"].id,
            options=PAGE_OPTIONS,
            subject=f"[{rel.release_id}] {self.phase}: {trigger} - roll back or continue?",
            body=page_body(rel.release_id, self.phase, trigger, page, event),
            defaults=None,
            multiple=False,
            params={},
            assigned_users=assignees,  # type: ignore[arg-type]
        )
        raise TaskAwaitingInput(method_name="page_answered", kwargs={"dwell": event}, timeout=None)

    def page_answered(self, context: Any, dwell: dict[str, Any], event: dict[str, Any]) -> Any:
        """The person's answer: "Rollback" fails the task on the rollback path, "Continue" resumes."""
        from llm_release.decisions.dwell import DwellState, acknowledge_page

        trigger = str(dwell.get("trigger") or "page")
        who = event.get("responded_by_user") or {}
        chosen = list(event.get("chosen_options") or [])
        answer = {
            "trigger": trigger,
            "phase": self.phase,
            "chosen": chosen,
            "responded_by": who,
            "responded_at": event.get("responded_at"),
            "timed_out": bool(event.get("timedout")),
        }
        number = int((dwell.get("dwell_state") or {}).get("pages_opened", 0)) or 1
        self.record(
            context,
            "page_answer",
            {"page": number, "answer": answer},
            stage="production",
            actor=str(who.get("id", "unknown")),
            suffix=f"/{self.phase}/answer/{number}",
        )
        summary = {k: v for k, v in dwell.items() if k not in ("dwell_state", "phase_start")}
        if chosen != [CONTINUE]:  # "Rollback", no answer, or anything unexpected: fail closed
            reason = f"{trigger} at {self.phase}: {ROLLBACK if chosen == [ROLLBACK] else 'no valid answer'}"
            reason += f" chosen by {who.get('id', 'nobody')}; {dwell.get('reason', '')}"
            self.push_breach(context, trigger, reason, {**summary, "answer": answer})
            raise AirflowFailException(f"manual rollback trigger '{trigger}' at {self.phase}: {reason}")
        state = DwellState.model_validate(dwell["dwell_state"])
        dwell_s = self.dwell_seconds(context)
        resumed = acknowledge_page(
            state, trigger, max_seconds=self.max_seconds(dwell_s), responder=str(who.get("id", ""))
        )
        self.log.info("Dwell %s: %s continued past %s; resuming", self.phase, who.get("id"), trigger)
        self.defer_for(
            self.build_trigger(
                context, resumed.model_dump(mode="json", exclude_defaults=True), dwell.get("phase_start")
            )
        )


def page_body(release_id: str, phase: str, trigger: str, page: dict[str, Any], event: dict[str, Any]) -> str:
    """Markdown for the person: what fired, the evidence, and what each option does."""

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)

    interval = page.get("interval")
    lines = [
        f"**Release** `{release_id}`, rollout phase **{phase}**: `{trigger}` needs a human decision.",
        "",
        f"{page.get('description') or ''}",
        "",
        f"* Metric: {page.get('metric') or 'n/a'}; observed {num(page.get('observed'))} "
        f"against the line {num(page.get('threshold'))}",
        f"* Interval: {num(interval[0])} .. {num(interval[1])}" if interval else "* Interval: n/a",
        f"* Sample size: {num(page.get('sample_size'))}; window: {num(page.get('window_minutes'))} policy minutes",
        f"* Evidence: {page.get('detail', '')}",
        f"* Dwell clock: {num(event.get('clean_seconds'))} s clean of {num(event.get('elapsed'))} s observed",
    ]
    others = [r for r in event.get("reasons", []) if not r.startswith(trigger)][:5]
    if others:
        lines += ["", "Other signals:", *[f"* {r}" for r in others]]
    lines += [
        "",
        f"**{ROLLBACK}** sends traffic back to the previous version now (the rollback path). "
        f"**{CONTINUE}** resumes the dwell; this trigger will not page again in this phase unless it clears "
        "and fires again (the inconclusive-evidence page grants another hold period instead).",
        "",
        "_Airflow keeps one request per task try: if this task pages again, this text stays that of the "
        "first page; the current page's evidence is in the task's XCom `page` and in the audit trail._",
    ]
    return "\n".join(lines)


class ShadowDwellSensor(DwellSensorBase):
    """Hold stage 3 for the planned shadow time and at least the policy's number of answered mirrored queries.

    :param start_shadow_task_id: the task that started mirroring (its XCom has the sample cursor ``since``).
    """

    def __init__(self, *, start_shadow_task_id: str = "stage_3_staging.start_shadow", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_shadow_task_id = start_shadow_task_id

    def execute(self, context: Any) -> None:
        rel = self.release(context)
        plan = rel.plan
        start = context["ti"].xcom_pull(task_ids=self.start_shadow_task_id)
        if not start or start.get("since") is None:
            raise AirflowFailException(f"no shadow sample cursor from task {self.start_shadow_task_id!r}")
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
                minute_seconds=self.minute_seconds(),
                poll_seconds=self.poll_seconds(),
                max_seconds=max(dwell_s, self.seconds(budget_h)) * self.config.max_hold_factor,
                min_shadow_samples=int(plan.shadow_min_samples),
                shadow_since=int(start["since"]),
            )
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        summary = {k: v for k, v in event.items() if k != "dwell_state"}
        self.record(context, "dwell_result", summary, stage="staging", suffix="/shadow")
        if event["status"] != "done":
            raise AirflowFailException(f"shadow phase did not complete: {event.get('reason')}")
        self.log_json("Shadow dwell complete", summary)
        return jsonable(summary)
