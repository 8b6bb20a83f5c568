"""Stage 5: set traffic per phase (with acceleration) and promote at the end."""

from __future__ import annotations

from typing import Any

from llm_release.hooks.traffic_router import TrafficRouterHook
from llm_release.operators.base import ReleaseOperatorBase, jsonable


class SetTrafficOperator(ReleaseOperatorBase):
    """Route ``traffic_percent`` of live traffic to the candidate for this phase.

    Decides the phase's effective dwell: the planned dwell, shortened by the spec's acceleration rule
    when the 10 % canary met it (SCS >= 0.88, p99 <= 2800 ms, error rate < 0.5 %). Idempotent: setting
    the same weights twice is a no-op.

    :param phase: the rollout phase (``policy.rollout.phases``) this task starts.
    :param canary_task_id: the dwell task of the phase the acceleration rule is measured at
        (``rollout.canary_acceleration.measured_at_phase``) when this phase comes after it; None for
        phases before or at it, which no canary measurement can shorten.
    :param config_path: the release config YAML. (templated)
    """

    ui_color = "#d9ead3"

    def __init__(self, *, phase: str, canary_task_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.phase = phase
        self.canary_task_id = canary_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.rollout import RolloutPlan, accelerate

        rel = self.release(context)
        plan: RolloutPlan = rel.plan
        acceleration: dict[str, Any] = {"applied": False, "reason": "no canary measurement before this phase"}
        canary = self._canary_summary(context)
        if canary is not None:
            plan, applied, reason = accelerate(
                plan,
                canary.get("scs"),
                canary.get("p99_ms"),
                canary.get("error_rate"),
                self.config.release_policy,
                baseline_scs=canary.get("baseline_scs"),
            )
            acceleration = {"applied": applied, "reason": reason, "canary": canary}

        cand, prod = rel.candidate.backend, rel.production.backend
        planned = plan.phase(self.phase)
        pct = int(planned.traffic_percent)
        router = TrafficRouterHook(self.config.connections.router_conn_id).get_conn()
        router.set_weights({prod: 100 - pct, cand: pct})
        dwell_s = self.seconds(planned.dwell_hours)
        result = {
            "phase": self.phase,
            "traffic_percent": pct,
            "dwell_hours": planned.dwell_hours,
            "dwell_seconds": dwell_s,
            "weights": router.get_weights(),
            "acceleration": acceleration,
        }
        self.record(context, "traffic_change", result, stage="production")
        self.log_json(f"Traffic set for {self.phase}", result)
        return jsonable(result)

    def _canary_summary(self, context: Any) -> dict[str, Any] | None:
        """The canary dwell's measurements, when this phase comes after the canary.

        A canary dwell that pushed nothing (or no measurements) gives an empty summary: ``accelerate``
        then sees every value unmeasured and does not shorten anything.
        """
        if self.canary_task_id is None:
            return None
        pushed = context["ti"].xcom_pull(task_ids=self.canary_task_id)
        return dict((pushed or {}).get("phase_metrics") or {})


class PromoteOperator(ReleaseOperatorBase):
    """Make the candidate the production version; keep the previous one as the warm rollback target.

    Refuses unless the candidate already serves all traffic (the last rollout phase completed).

    :param config_path: the release config YAML. (templated)
    """

    ui_color = "#b6d7a8"

    def execute(self, context: Any) -> dict[str, Any]:
        rel = self.release(context)
        cfg = self.config
        router = TrafficRouterHook(cfg.connections.router_conn_id).get_conn()
        weights = router.get_weights()
        cand = rel.candidate.backend
        if weights.get(cand) != 100:
            raise RuntimeError(
                f"refusing to promote: candidate {cand!r} serves {weights.get(cand)}% not 100%"
            )
        self.registry.promote(cfg.model_name, rel.candidate.version, rel.production.version)
        self.registry.set_version_tags(
            cfg.model_name,
            rel.candidate.version,
            {"llm_release.version_name": rel.name_at("production", cfg.release_policy)},
        )
        result = {
            "promoted_version": rel.candidate.version,
            "previous_version": rel.production.version,
            "previous_kept_warm_hours": cfg.release_policy.retention.previous_version_warm_hours,
            "weights": weights,
        }
        self.record(context, "promotion", result, stage="production")
        return result
