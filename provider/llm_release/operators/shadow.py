"""Stage 3 shadow: mirror live traffic to the candidate, then judge what it answered."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from llm_release.hooks.metrics_source import MetricsSourceHook
from llm_release.hooks.traffic_router import TrafficRouterHook
from llm_release.operators.base import ReleaseOperatorBase
from llm_release.operators.suites import SuiteOperatorBase, _records


class StartShadowOperator(ReleaseOperatorBase):
    """Turn on mirroring to the candidate; remember where its shadow samples start.

    Pushes ``{"since": <sample cursor>, "backend": ...}``: the shadow dwell and the shadow evaluation
    count only samples after that cursor. A retry turns mirroring on again (a no-op for the router) and
    counts from its own, later cursor.

    :param config_path: the release config YAML. (templated)
    """

    def execute(self, context: Any) -> dict[str, Any]:
        rel = self.release(context)
        router = TrafficRouterHook(self.config.connections.router_conn_id).get_conn()
        _, samples = MetricsSourceHook(self.config.connections.metrics_conn_id).get_conn()
        cursor = samples.cursor_now(rel.candidate.backend, "shadow")
        backend = rel.candidate.backend
        router.set_shadow(backend)
        weights = router.get_weights()
        if weights.get(backend, 0) != 0:
            router.set_weights({rel.production.backend: 100, backend: 0})
        self.record(
            context,
            "traffic_change",
            {"shadow_target": backend, "weights": router.get_weights()},
            stage="staging",
        )
        return {"since": cursor, "backend": backend}


class EvaluateShadowOperator(SuiteOperatorBase):
    """Stop mirroring and evaluate the mirrored sample: SCS, hallucination, policy, latency.

    :param start_task_id: the task that turned mirroring on and pushed the sample cursor to start from.
    :param config_path: the release config YAML. (templated)
    """

    def __init__(self, *, start_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_task_id = start_task_id

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.gates import gate_confidence
        from llm_release.suites.judges import offline_judge
        from llm_release.suites.shadow import evaluate_shadow_samples

        rel = self.release(context)
        start = context["ti"].xcom_pull(task_ids=self.start_task_id)
        if not start or start.get("since") is None:
            raise AirflowFailException(
                f"no shadow start cursor from task {self.start_task_id!r}: cannot tell which samples are the shadow's"
            )
        router = TrafficRouterHook(self.config.connections.router_conn_id).get_conn()
        _, source = MetricsSourceHook(self.config.connections.metrics_conn_id).get_conn()
        router.set_shadow(None)
        self.record(context, "traffic_change", {"shadow_target": None}, stage="staging")
        samples, _ = source.fetch(rel.candidate.backend, "shadow", since=int(start["since"]))
        result = evaluate_shadow_samples(samples, offline_judge(),
                                         confidence=gate_confidence(self.config.release_policy),
                                         categories=self.categories(),
                                         compliance=self.config.release_policy.compliance)
        return self.publish(
            context,
            result.metrics,
            {"samples": samples, "flagged": result.flagged},
            {"flagged_for_quality_lead": _records(result.flagged, 10)},
            metric_evidence=result.evidence,
        )
