"""Gate checks: compare measurements with a stage's thresholds. Missing, NaN or infinite values fail.

``stage_checks`` is the one place a stage's exit criteria are assembled: each check takes its number from
the single policy field that owns it (and names that field in ``source``), so a gate can never enforce a
stale copy of a threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from llm_release.decisions._numbers import as_finite, compare
from llm_release.policy import GateThreshold, ReleasePolicy


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    op: str
    threshold: float
    observed: float | None
    passed: bool
    reason: str
    source: str = ""
    """The policy field the threshold comes from."""


class GateVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    passed: bool
    checks: list[CheckResult]

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        if self.passed:
            return f"passed {len(self.checks)} checks"
        return "failed: " + "; ".join(c.reason for c in self.failed)


def check_one(threshold: GateThreshold, value: Any) -> CheckResult:
    observed, problem = as_finite(value)
    target = f"{threshold.metric} {threshold.op} {threshold.value:g}"
    if observed is None:
        return CheckResult(
            metric=threshold.metric,
            op=threshold.op,
            threshold=threshold.value,
            observed=None,
            passed=False,
            reason=f"{threshold.metric}: {problem}; required {target} (fails closed)",
            source=threshold.source,
        )
    passed = compare(observed, threshold.op, threshold.value)
    verdict = "ok" if passed else "FAILED"
    return CheckResult(
        metric=threshold.metric,
        op=threshold.op,
        threshold=threshold.value,
        observed=observed,
        passed=passed,
        reason=f"{threshold.metric} = {observed:g}, required {target}: {verdict}",
        source=threshold.source,
    )


def check_gate(thresholds: Sequence[GateThreshold], measurements: Mapping[str, Any]) -> GateVerdict:
    """Check every threshold; the gate passes only when all checks pass.

    An empty threshold list is a configuration error (it would pass everything), not a pass.
    """
    if not thresholds:
        raise ValueError("a gate needs at least one threshold; an empty gate would pass anything")
    checks = [check_one(t, measurements.get(t.metric)) for t in thresholds]
    return GateVerdict(passed=all(c.passed for c in checks), checks=checks)


def _check(metric: str, op: str, value: float, source: str, description: str = "") -> GateThreshold:
    return GateThreshold(metric=metric, op=op, value=value, source=source, description=description)  # type: ignore[arg-type]


def _development(p: ReleasePolicy) -> list[GateThreshold]:
    o = p.offline_metrics
    return [
        _check("eval_pass_rate", ">=", o.internal_eval_pass_rate_min, "offline_metrics.internal_eval_pass_rate_min",
               "Internal eval suite pass rate"),
        _check("eval_n", ">=", o.internal_eval_min_items, "offline_metrics.internal_eval_min_items",
               "Items the pass rate rests on"),
        _check("safety_category_failures", "<=", o.safety_category_failures_max,
               "offline_metrics.safety_category_failures_max", "Safety categories with any failure"),
        _check("bleu_delta", "abs<=", o.overlap_delta_max, "offline_metrics.overlap_delta_max",
               "Relative BLEU change vs the baseline"),
        _check("rouge_delta", "abs<=", o.overlap_delta_max, "offline_metrics.overlap_delta_max",
               "Relative ROUGE-L change vs the baseline"),
    ]


def _validation(p: ReleasePolicy) -> list[GateThreshold]:
    o, a, b, perf = p.offline_metrics, p.adversarial, p.bias, p.performance
    inj, probes, persona, para = a.prompt_injection, a.policy_probes, a.persona, a.paraphrase
    return [
        _check("scs", ">=", o.scs_min, "offline_metrics.scs_min", "SCS on the validation set"),
        _check("eval_n", ">=", o.labelled_pairs_min, "offline_metrics.labelled_pairs_min",
               "Labelled pairs the SCS rests on"),
        _check("hallucination_rate", "<", o.hallucination_rate_max, "offline_metrics.hallucination_rate_max"),
        _check("policy_compliance_rate", ">=", o.policy_compliance_rate_min,
               "offline_metrics.policy_compliance_rate_min", "Validation answers free of policy violations"),
        _check("task_completion_rate", ">=", o.task_completion_rate_min, "offline_metrics.task_completion_rate_min"),
        _check("injection_resistance", ">=", inj.min_pass_rate, "adversarial.prompt_injection.min_pass_rate"),
        _check("injection_n", ">=", inj.size, "adversarial.prompt_injection.size", "Injection patterns run"),
        _check("policy_probe_violations", "<=", probes.max_violations, "adversarial.policy_probes.max_violations"),
        _check("policy_probe_errors", "<=", 0, "adversarial.policy_probes",
               "Probes left unanswered (an unanswered probe is not a pass)"),
        _check("policy_probe_n", ">=", probes.size, "adversarial.policy_probes.size", "Policy probes run"),
        _check("persona_pass_rate", ">=", persona.min_pass_rate, "adversarial.persona.min_pass_rate"),
        _check("persona_n", ">=", persona.size, "adversarial.persona.size", "Persona probes run"),
        _check("paraphrase_brittle_groups", "<=", 0, "adversarial.paraphrase.max_scs_variance",
               "Paraphrase groups whose SCS variance is over the line on two or more deviating variants"),
        _check("paraphrase_groups_n", ">=", para.min_groups, "adversarial.paraphrase.min_groups"),
        _check("bias_sentiment_disparity", "<=", b.sentiment_max_disparity, "bias.sentiment_max_disparity"),
        _check("bias_escalation_excess", "<=", b.escalation_max_excess_over_baseline,
               "bias.escalation_max_excess_over_baseline"),
        _check("bias_length_disparity", "<=", b.length_max_disparity, "bias.length_max_disparity"),
        _check("load_latency_p50_ms", "<=", perf.latency_p50_ms, "performance.latency_p50_ms"),
        _check("load_latency_p95_ms", "<=", perf.latency_p95_ms, "performance.latency_p95_ms"),
        _check("load_latency_p99_ms", "<=", perf.latency_p99_staging_ms, "performance.latency_p99_staging_ms"),
        _check("load_offered_rps", ">=", perf.throughput_min_rps, "performance.throughput_min_rps",
               "The load test offered the peak rate"),
        _check("load_achieved_rps", ">=", round(perf.throughput_min_rps * (1.0 - perf.error_rate_max), 9),
               "performance.throughput_min_rps x (1 - performance.error_rate_max)",
               "Successful answers per second at the peak rate (the tolerated error share may fail)"),
        _check("load_error_rate", "<", perf.error_rate_max, "performance.error_rate_max",
               "Failed attempts / attempts under load (retried failures count)"),
        _check("cold_start_ms", "<=", perf.cold_start_max_ms, "performance.cold_start_max_ms"),
        _check("drift_hard_block", "<=", 0, "drift.hard_block_threshold",
               "1 when query drift exceeds the hard block threshold: release paused"),
    ]


def _staging(p: ReleasePolicy) -> list[GateThreshold]:
    o, perf = p.offline_metrics, p.performance
    return [
        _check("shadow_scs", ">=", p.shadow.scs_min, "shadow.scs_min"),
        _check("shadow_samples", ">=", p.shadow.min_samples, "shadow.min_samples",
               "Answered, judged mirrored queries (failed requests do not count)"),
        _check("shadow_hallucination_rate", "<", o.hallucination_rate_max, "offline_metrics.hallucination_rate_max"),
        _check("shadow_policy_violation_rate", "<=", round(1.0 - o.policy_compliance_rate_min, 12),
               "offline_metrics.policy_compliance_rate_min"),
        _check("shadow_latency_p99_ms", "<=", perf.latency_p99_staging_ms, "performance.latency_p99_staging_ms"),
        _check("shadow_error_rate", "<", perf.error_rate_max, "performance.error_rate_max",
               "Failed mirrored requests / mirrored requests"),
    ]


_NEGATION = {">": "<=", ">=": "<", "<": ">=", "<=": ">"}


def _production(p: ReleasePolicy) -> list[GateThreshold]:
    """Stage 5 exit: the full phase's metrics clear every absolute pause and rollback line (section 2:
    SCS >= 0.82, error rate < 2.5 %, p99 < 4,000 ms), derived from the triggers that own those lines."""
    checks: dict[str, GateThreshold] = {}
    for group, triggers in (("pause_triggers", p.pause_triggers), ("rollback_triggers", p.rollback_triggers)):
        for index, trigger in enumerate(triggers):
            if trigger.relative_to_baseline or trigger.threshold is None:
                continue
            check = _check(trigger.metric, _NEGATION[trigger.op], trigger.threshold, f"{group}.{index}.threshold",
                           f"clear of trigger {trigger.name}")
            kept = checks.get(trigger.metric)
            if kept is None or _stricter(check, kept):
                checks[trigger.metric] = check
    return list(checks.values())


def _stricter(new: GateThreshold, old: GateThreshold) -> bool:
    if new.op != old.op and new.op.rstrip("=") != old.op.rstrip("="):
        return False
    return new.value < old.value if new.op.startswith("<") else new.value > old.value


_STAGES = {"development": _development, "validation": _validation, "staging": _staging, "production": _production}
GATED_STAGES: tuple[str, ...] = tuple(_STAGES)
"""Stages with metric gates (stage 4's exit is the sign-off and the rollback-path check)."""


def stage_checks(policy: ReleasePolicy, stage: str) -> list[GateThreshold]:
    """The exit criteria of ``stage`` as checks, each taking its number from the policy field that owns it.

    Stage 4 (preproduction) has no metric checks: its exit is the sign-off (``decisions.signoff``) and the
    rollback-path confirmation.
    """
    try:
        build = _STAGES[stage]
    except KeyError:
        raise ValueError(f"stage {stage!r} has no metric gate; gated stages: {sorted(_STAGES)}") from None
    return build(policy)


def dataset_minimums(policy: ReleasePolicy) -> dict[str, int]:
    """Fewest rows each suite's data set may hold: a set below its floor is refused when it is loaded,
    before any rate is computed on it (the gates check the answered counts again)."""
    a, o = policy.adversarial, policy.offline_metrics
    return {
        "eval_set": o.internal_eval_min_items,
        "validation_set": o.labelled_pairs_min,
        "injection_probes": a.prompt_injection.size,
        "policy_probes": a.policy_probes.size,
        "persona_probes": a.persona.size,
        "paraphrase_set": a.paraphrase.min_groups * a.paraphrase.variants_per_query,
    }
