"""Shadow-traffic evaluation (stage 3): judge the candidate's answers to mirrored live queries.

The gateway records every shadow exchange (query, the candidate's response, latency, error, status
and the rule ids its policy checker found). Live traffic has no labels, so each answer is judged
against the KB entry retrieved for its query (``ReferenceJudge.judge`` with no reference), and the
policy checker is run again here, its findings united with the gateway's so neither side can drop one.

Metrics (NaN when nothing was answered):

* ``shadow_samples`` (all samples), ``shadow_answered``, ``shadow_error_rate`` (failed / samples)
* ``shadow_scs``: mean judge score over answered samples
* ``shadow_hallucination_rate``: hallucinated / answered
* ``shadow_policy_violation_rate``: answered samples with any finding / answered;
  ``shadow_policy_violations``: number of such samples
* ``shadow_escalation_rate``: answered samples that hand off to a human / answered
* ``shadow_ungrounded``: answered samples no KB entry matched (judged on behaviour only)
* ``shadow_latency_p50_ms`` / ``_p95_ms`` / ``_p99_ms`` over answered samples

``ShadowResult.flagged`` is what the quality lead reviews: every sample with a policy finding or a
hallucination, then the lowest-scoring others, up to ``flag_limit`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from llm_release.suites._common import NAN, latency_percentiles, mean, rate
from llm_release.suites.judge import ReferenceJudge
from llm_release.suites.policy_checker import check_response

REQUIRED_SAMPLE_KEYS = ("query", "response", "latency_ms", "error", "status", "policy_violations")
EVIDENCE_COLUMNS = ["seq", "query", "response", "score", "correct", "hallucinated", "escalated",
                    "grounding_kb_id", "policy_violations", "latency_ms", "error", "status", "reasons"]


class ShadowSampleError(ValueError):
    """A gateway sample is malformed (message names the sample index and the key)."""


@dataclass
class ShadowResult:
    metrics: dict[str, float]
    items: pd.DataFrame
    flagged: pd.DataFrame


def _validate(index: int, sample: Any) -> None:
    if not isinstance(sample, Mapping):
        raise ShadowSampleError(f"sample {index}: expected a mapping, got {type(sample).__name__}")
    for key in REQUIRED_SAMPLE_KEYS:
        if key not in sample:
            raise ShadowSampleError(f"sample {index}: key '{key}': missing")
    if not isinstance(sample["query"], str):
        raise ShadowSampleError(f"sample {index}: key 'query': expected a string")
    if sample["response"] is not None and not isinstance(sample["response"], str):
        raise ShadowSampleError(f"sample {index}: key 'response': expected a string or null")
    if not isinstance(sample["policy_violations"], list | tuple):
        raise ShadowSampleError(f"sample {index}: key 'policy_violations': expected a list of rule ids")
    latency = sample["latency_ms"]
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, int | float)):
        raise ShadowSampleError(f"sample {index}: key 'latency_ms': expected a number or null")


def _failed(sample: Mapping[str, Any]) -> bool:
    status = sample.get("status")
    return (sample["error"] is not None or sample["response"] is None
            or (isinstance(status, int) and status >= 400))


def evaluate_shadow_samples(samples: Sequence[Mapping[str, Any]], judge: ReferenceJudge,
                            flag_limit: int = 50) -> ShadowResult:
    """Judge gateway shadow samples (``GET /admin/samples`` rows); see the module docstring."""
    rows: list[dict[str, Any]] = []
    for index, sample in enumerate(samples):
        _validate(index, sample)
        base = {"seq": sample.get("seq", index), "query": sample["query"], "response": sample["response"],
                "latency_ms": sample["latency_ms"], "error": sample["error"], "status": sample.get("status")}
        if _failed(sample):
            why = sample["error"] or f"status {sample.get('status')}"
            rows.append({**base, "score": NAN, "correct": False, "hallucinated": False, "escalated": False,
                         "grounding_kb_id": None, "reasons": [f"call failed: {why}"], "answered": False,
                         "policy_violations": sorted(set(sample["policy_violations"]))})
            continue
        verdict = judge.judge(sample["query"], sample["response"])
        rechecked = {f.rule_id for f in check_response(sample["query"], sample["response"])}
        rows.append({**base, "score": verdict.score, "correct": verdict.correct,
                     "hallucinated": verdict.hallucinated, "escalated": verdict.escalated,
                     "grounding_kb_id": verdict.grounding_kb_id,
                     "policy_violations": sorted(rechecked | set(sample["policy_violations"])),
                     "reasons": list(verdict.reasons), "answered": True})
    frame = pd.DataFrame(rows, columns=[*EVIDENCE_COLUMNS, "answered"])
    answered = frame[frame["answered"]] if len(frame) else frame
    n, n_answered = len(frame), len(answered)
    with_findings = int((answered["policy_violations"].map(len) > 0).sum()) if n_answered else 0
    latencies = [float(v) for v in answered["latency_ms"] if v is not None and math.isfinite(float(v))]
    metrics: dict[str, float] = {
        "shadow_samples": float(n),
        "shadow_answered": float(n_answered),
        "shadow_error_rate": rate(n - n_answered, n),
        "shadow_scs": mean(answered["score"].tolist()) if n_answered else NAN,
        "shadow_hallucination_rate": rate(int(answered["hallucinated"].sum()), n_answered),
        "shadow_policy_violation_rate": rate(with_findings, n_answered),
        "shadow_policy_violations": float(with_findings),
        "shadow_escalation_rate": rate(int(answered["escalated"].sum()), n_answered),
        "shadow_ungrounded": float(answered["grounding_kb_id"].isna().sum()) if n_answered else 0.0,
    }
    metrics.update(latency_percentiles(latencies, prefix="shadow_latency"))
    items = frame.drop(columns=["answered"])
    return ShadowResult(metrics=metrics, items=items, flagged=_flag(answered, flag_limit))


def _flag(answered: pd.DataFrame, limit: int) -> pd.DataFrame:
    if answered.empty:
        return answered.drop(columns=["answered"])
    serious = answered["hallucinated"] | (answered["policy_violations"].map(len) > 0)
    ordered = pd.concat([
        answered[serious].sort_values(["score", "seq"]),
        answered[~serious & ~answered["correct"]].sort_values(["score", "seq"]),
    ])
    return ordered.head(max(limit, int(serious.sum()))).drop(columns=["answered"]).reset_index(drop=True)
