"""Operators that measure the candidate: evaluation, adversarial, bias and load suites.

Each pushes ``{"metrics": {...flat floats...}, "summary": {...small...}}`` and, for the suites that
report it, ``"evidence": {metric: decisions.evidence.Evidence as JSON}`` (n and the interval the gates
weigh); the full per-item evidence goes to the release's MLflow run as an artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_release.hooks.model_endpoint import ModelEndpointHook
from llm_release.operators.base import ReleaseOperatorBase, jsonable

if TYPE_CHECKING:
    from llm_release.decisions.release import ReleaseRecord


class SuiteOperatorBase(ReleaseOperatorBase):
    """Common steps: build the model client(s), run, log metrics + evidence to MLflow, push a summary."""

    ui_color = "#e2f0d9"

    def client_for(self, release: ReleaseRecord, which: str = "candidate") -> Any:
        """The endpoint client of the release's ``candidate`` or ``production`` version."""
        ref = release.candidate if which == "candidate" else release.production
        return ModelEndpointHook(ref.endpoint_conn_id).get_conn()

    def publish(self, context: Any, metrics: dict[str, Any], evidence: Any, summary: dict[str, Any],
                metric_evidence: Mapping[str, Any] | None = None) -> dict:
        """Log and push. ``metric_evidence`` (metric -> ``Evidence``) is pushed under ``"evidence"`` for
        the gate and kept in the MLflow run as ``evidence/<task>.intervals.json``."""
        rel = self.release(context)
        task_id = context["ti"].task_id
        clean = jsonable(metrics)
        skipped = self.registry.log_metrics(rel.mlflow_run_id, clean, prefix=f"{task_id}.")
        self.registry.log_dict(rel.mlflow_run_id, jsonable(evidence), f"evidence/{task_id}.json")
        if skipped:
            self.log.warning("metrics not logged to MLflow (missing or NaN): %s", skipped)
        self.log_json(f"{task_id} metrics", clean)
        pushed = {"metrics": clean, "summary": jsonable(summary)}
        if metric_evidence:
            intervals = jsonable(dict(metric_evidence))
            self.registry.log_dict(rel.mlflow_run_id, intervals, f"evidence/{task_id}.intervals.json")
            pushed["evidence"] = intervals
        return pushed

    def categories(self) -> Any:
        """The knowledge base's categories and the policy's high-stakes categories (``CategoryMap``)."""
        from llm_release.suites.knowledge_base import KnowledgeBase
        from llm_release.suites.uncertainty import CategoryMap

        high_stakes = self.config.release_policy.offline_metrics.high_stakes_categories
        return CategoryMap.from_kb(KnowledgeBase.load(), high_stakes)


def load_dataset(name: str, config: Any) -> Any:
    """A shipped (or overridden, by ``datasets.<name>`` in the config) data set, validated on load and
    refused when it holds fewer rows than the policy's floor for its suite."""
    from llm_release.decisions.gates import dataset_minimums
    from llm_release.suites import datasets

    loader = getattr(datasets, f"load_{name}", None)
    if loader is None:
        raise ValueError(f"unknown data set {name!r}: no suites.datasets.load_{name}")
    return loader(config.datasets.get(name), min_rows=dataset_minimums(config.release_policy).get(name))


def _records(frame: Any, limit: int | None = None) -> list[dict[str, Any]]:
    """DataFrame rows as JSON records (the evidence artifact), optionally only the first ``limit``."""
    rows = frame.head(limit) if limit is not None else frame
    return jsonable(rows.to_dict(orient="records"))


class EvaluationSuiteOperator(SuiteOperatorBase):
    """Run a labelled eval set through the candidate (and the production baseline for BLEU/ROUGE delta)."""

    def __init__(self, *, dataset: str, with_baseline: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset = dataset
        self.with_baseline = with_baseline

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.gates import gate_confidence
        from llm_release.suites.evaluation import run_eval_suite
        from llm_release.suites.judges import offline_judge

        rel = self.release(context)
        items = load_dataset(self.dataset, self.config)
        baseline = self.client_for(rel, "production") if self.with_baseline else None
        result = run_eval_suite(
            self.client_for(rel), items, offline_judge(), baseline_client=baseline,
            confidence=gate_confidence(self.config.release_policy), categories=self.categories(),
            compliance=self.config.release_policy.compliance,
        )
        failures = result.items[~result.items["correct"]]
        return self.publish(
            context,
            result.metrics,
            _records(result.items),
            {"dataset": self.dataset, "failed_items": _records(failures, 10)},
            metric_evidence=result.evidence,
        )


class AdversarialSuiteOperator(SuiteOperatorBase):
    """Prompt-injection, policy-boundary and persona probes (spec section 3, adversarial testing)."""

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.suites.adversarial import run_injection_suite, run_persona_suite, run_policy_probes

        rel = self.release(context)
        client = self.client_for(rel)
        compliance = self.config.release_policy.compliance
        injection = run_injection_suite(client, load_dataset("injection_probes", self.config), compliance)
        policy = run_policy_probes(client, load_dataset("policy_probes", self.config), compliance)
        persona = run_persona_suite(client, load_dataset("persona_probes", self.config))
        metrics = {**injection.metrics, **policy.metrics, **persona.metrics}
        evidence = {"injection": injection, "policy": policy, "persona": persona}
        summary = {
            "injection_failures": jsonable(injection.failures[:10]),
            "policy_failures": jsonable(policy.failures[:10]),
            "persona_failures": jsonable(persona.failures[:10]),
        }
        return self.publish(context, metrics, evidence, summary)


class BiasAuditOperator(SuiteOperatorBase):
    """Parity of sentiment, escalation and response length across demographic proxies (Fairlearn)."""

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.suites.bias import run_bias_audit

        rel = self.release(context)
        result = run_bias_audit(self.client_for(rel), load_dataset("bias_probes", self.config))
        return self.publish(context, result.metrics, result,
                            {"by_group": jsonable(result.by_group), "insufficient": jsonable(result.insufficient)})


class LoadTestOperator(SuiteOperatorBase):
    """Stage-2 performance gates: cold start, then an open-loop load at the policy's peak rate.

    Requests arrive as a Poisson process at ``performance.throughput_min_rps`` for
    ``performance.load_test_seconds``, whatever the endpoint does (open loop), and each latency counts
    from the request's intended send time, so queueing cannot hide (coordinated omission). Every attempt
    counts: a failure a retry hid is still an error. Cold start is the first request after asking the
    endpoint for a fresh replica; an endpoint that cannot scale up leaves it unmeasured (the gate fails).

    :param seed: seed of the arrival process and prompt order (reproducible runs).
    """

    def __init__(self, *, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.suites.load import run_performance_test

        rel = self.release(context)
        perf = self.config.release_policy.performance
        prompts = list(load_dataset("validation_set", self.config)["query"])
        result = run_performance_test(
            self.client_for(rel),
            prompts,
            rate_rps=perf.throughput_min_rps,
            duration_s=perf.load_test_seconds,
            seed=self.seed,
        )
        summary = {
            "offered_rps": result.metrics.get("load_offered_rps"),
            "achieved_rps": result.metrics.get("load_achieved_rps"),
            "cold_start": jsonable(getattr(result, "cold_start", None)),
        }
        return self.publish(context, result.metrics, result.metrics, summary)


class ParaphraseSuiteOperator(SuiteOperatorBase):
    """Core queries asked five ways: the SCS must not depend on the wording (spec section 3)."""

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.gates import dataset_minimums
        from llm_release.suites.judges import offline_judge
        from llm_release.suites.knowledge_base import KnowledgeBase
        from llm_release.suites.paraphrase import load_paraphrase_set, run_paraphrase_suite

        rel = self.release(context)
        kb = KnowledgeBase.load()
        policy = self.config.release_policy
        items = load_paraphrase_set(
            self.config.datasets.get("paraphrase_set"),
            variants_per_query=policy.adversarial.paraphrase.variants_per_query,
            kb=kb,
            min_rows=dataset_minimums(policy)["paraphrase_set"],
        )
        result = run_paraphrase_suite(
            self.client_for(rel),
            items,
            offline_judge(),
            variants_per_query=policy.adversarial.paraphrase.variants_per_query,
            max_variance=policy.adversarial.paraphrase.max_scs_variance,
        )
        return self.publish(context, result.metrics, _records(result.items),
                            {"worst_group": result.worst_group, "least_stable_groups": _records(result.groups, 5)})


class DriftCheckOperator(SuiteOperatorBase):
    """Query drift (spec section 3): JS divergence of SBERT embeddings, reference window vs now.

    The reference window is the recording of past production traffic (``datasets.traffic_queries``
    to override); the current window is the latest live queries the gateway served. Too few queries
    on either side gives "insufficient data": no divergence, so the approval routing sends the
    decision to a person instead of passing it.
    """

    def __init__(self, *, current_window: int = 500, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.current_window = current_window

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.data.traffic import load_traffic_queries
        from llm_release.hooks.metrics_source import MetricsSourceHook
        from llm_release.suites.drift import run_drift_check
        from llm_release.suites.embeddings import get_sentence_embedder

        rel = self.release(context)
        reference = load_traffic_queries(self.config.datasets.get("traffic_queries"))
        _, samples = MetricsSourceHook(self.config.connections.metrics_conn_id).get_conn()
        backend = rel.production.backend
        # the gateway keeps a bounded buffer of recent exchanges: take its newest live queries
        recent, _ = samples.fetch(backend, "live", since=0)
        current = [s["query"] for s in recent][-self.current_window:]
        result = run_drift_check(reference, current, get_sentence_embedder(),
                                 self.config.release_policy.drift)
        summary = {"status": result.status, "reason": result.reason,
                   "requires_human_decision": result.requires_human_decision}
        # "block" (above the hard threshold) pauses the release at the gate; "alert" and
        # "insufficient_data" go to a person through the approval routing.
        metrics = {**result.metrics, "drift_hard_block": 1.0 if result.status == "block" else 0.0}
        return self.publish(context, metrics, {"summary": summary, "clusters": _records(result.clusters)}, summary)
