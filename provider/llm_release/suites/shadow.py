"""Shadow-traffic evaluation (stage 3): judge the candidate's answers to mirrored live queries.

The gateway records every shadow exchange (query, the candidate's response, latency, error, status
and the rule ids its policy checker found). Live traffic has no labels, so each answer is judged
against the KB entry retrieved for its query (``ReferenceJudge.judge`` with no reference), and the
policy checker is run again here, its findings united with the gateway's so neither side can drop one.

A mirrored request that failed (error, no response, HTTP status >= 400) has nothing to judge, but it
is not ignored: it counts in ``shadow_requests``, ``shadow_errors`` and ``shadow_error_rate``, its
latency counts in the percentiles, and it never counts toward ``shadow_samples`` (the gate's "500+
sampled queries" means 500 judged answers, so half the traffic failing cannot fill the quota).

Metrics (NaN = not measured, which fails any gate):

* ``shadow_requests``: every mirrored request; ``shadow_errors``: requests without an answer;
  ``shadow_error_rate`` = errors / requests (the staging error-rate gate)
* ``shadow_samples``: answered (judged) pairs, the sample size of every quality rate below
* ``shadow_scs`` (+ ``shadow_scs_n``): mean judge score over answered pairs
* ``shadow_hallucination_rate`` (+ ``shadow_hallucination_n``): hallucinated / answered
* ``shadow_policy_violation_rate`` (+ ``shadow_policy_violation_n``): pairs with any finding / pairs
  checked. Checked pairs are the answered ones plus any failed request the gateway still reported a
  finding for (a violation is never dropped because the request also failed);
  ``shadow_policy_violations``: number of such pairs, NaN when nothing was checked
* ``shadow_escalation_rate`` (+ ``shadow_escalation_n``): answered pairs that hand off to a human / answered
* ``shadow_ungrounded``: answered pairs no KB entry matched (judged on behaviour only), NaN when none answered
* ``shadow_latency_p50_ms`` / ``_p95_ms`` / ``_p99_ms`` (+ ``shadow_latency_n`` = requests) over ALL
  requests, failed ones included (a timeout's latency is latency); a request without a recorded
  latency ranks as the slowest, so a percentile that depends on it is NaN
  (``evaluation.worst_case_latency_percentiles``); ``shadow_latency_unknown``: such requests

Evidence (``ShadowResult.evidence``, given ``confidence``): the rates above with their counts and Wilson
intervals, ``shadow_scs`` with its bootstrap interval; given ``categories`` too, the same per knowledge-base
category (``shadow_kb_<category>_*``) and per high-stakes category (``shadow_hs_<name>_*``), an answer
belonging to the categories of the entry the judge grounded it in (ungrounded answers: none).

``ShadowResult.flagged`` is what the quality lead reviews: every sample with a policy finding or a
hallucination (failed requests with a gateway finding included), then the lowest-scoring others, up
to ``flag_limit`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from llm_release.decisions.evidence import Evidence
from llm_release.suites._common import NAN, mean, rate
from llm_release.suites.evaluation import worst_case_latency_percentiles
from llm_release.suites.judge import ReferenceJudge
from llm_release.suites.judging import judge_batch
from llm_release.suites.policy_checker import check_responses
from llm_release.suites.uncertainty import CategoryMap, category_evidence, overall_evidence

REQUIRED_SAMPLE_KEYS = ("query", "response", "latency_ms", "error", "status", "policy_violations")
EVIDENCE_COLUMNS = ["seq", "query", "response", "score", "correct", "hallucinated", "escalated",
                    "grounding_kb_id", "policy_violations", "latency_ms", "error", "status", "reasons"]


class ShadowSampleError(ValueError):
    """A gateway sample is malformed (message names the sample index and the key)."""


@dataclass
class ShadowResult:
    """Stage-3 metrics, one evidence row per mirrored request, and the rows the quality lead reviews."""

    metrics: dict[str, float]
    items: pd.DataFrame
    flagged: pd.DataFrame
    evidence: dict[str, Evidence] = field(default_factory=dict)
    """Per metric: n and the interval (see the module docstring); empty without a confidence."""


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


def _latency_known(value: Any) -> bool:
    return value is not None and math.isfinite(float(value)) and float(value) >= 0


def evaluate_shadow_samples(samples: Sequence[Mapping[str, Any]], judge: ReferenceJudge,
                            flag_limit: int = 50, *, confidence: float | None = None,
                            categories: CategoryMap | None = None, compliance: Any = None) -> ShadowResult:
    """Judge gateway shadow samples (``GET /admin/samples`` rows); see the module docstring.

    ``confidence`` (the policy's ``offline_metrics.confidence``) turns on the evidence, ``categories`` the
    per-category metrics; without them the gates that weigh intervals fail closed."""
    for index, sample in enumerate(samples):
        _validate(index, sample)
    answered_samples = [s for s in samples if not _failed(s)]
    # one embedding batch for the judge and one checker pass for every answered sample
    verdicts = iter(judge_batch(judge, [{"query": s["query"], "response": s["response"]} for s in answered_samples]))
    findings = iter(check_responses([(s["query"], s["response"]) for s in answered_samples], compliance))
    rows: list[dict[str, Any]] = []
    for index, sample in enumerate(samples):
        base = {"seq": sample.get("seq", index), "query": sample["query"], "response": sample["response"],
                "latency_ms": sample["latency_ms"], "error": sample["error"], "status": sample.get("status")}
        if _failed(sample):
            why = sample["error"] or f"status {sample.get('status')}"
            rows.append({**base, "score": NAN, "correct": False, "hallucinated": False, "escalated": False,
                         "grounding_kb_id": None, "reasons": [f"call failed: {why}"], "answered": False,
                         "policy_violations": sorted(set(sample["policy_violations"]))})
            continue
        verdict = next(verdicts)
        rechecked = {f.rule_id for f in next(findings)}
        rows.append({**base, "score": verdict.score, "correct": verdict.correct,
                     "hallucinated": verdict.hallucinated, "escalated": verdict.escalated,
                     "grounding_kb_id": verdict.grounding_kb_id,
                     "policy_violations": sorted(rechecked | set(sample["policy_violations"])),
                     "reasons": list(verdict.reasons), "answered": True})
    frame = pd.DataFrame(rows, columns=[*EVIDENCE_COLUMNS, "answered"])
    frame["answered"] = frame["answered"].astype(bool)
    answered = frame[frame["answered"]]
    requests, n_answered = len(frame), len(answered)
    has_finding = frame["policy_violations"].map(len) > 0
    checked = frame["answered"] | has_finding  # a failed request the gateway found a violation in counts
    n_checked, with_findings = int(checked.sum()), int(has_finding.sum())
    unknown_latency = sum(not _latency_known(v) for v in frame["latency_ms"])
    metrics: dict[str, float] = {
        "shadow_requests": float(requests),
        "shadow_errors": float(requests - n_answered),
        "shadow_error_rate": rate(requests - n_answered, requests),
        "shadow_samples": float(n_answered),
        "shadow_scs": mean(answered["score"].tolist()),
        "shadow_scs_n": float(n_answered),
        "shadow_hallucination_rate": rate(int(answered["hallucinated"].sum()), n_answered),
        "shadow_hallucination_n": float(n_answered),
        "shadow_policy_violation_rate": rate(with_findings, n_checked),
        "shadow_policy_violation_n": float(n_checked),
        "shadow_policy_violations": float(with_findings) if n_checked else NAN,
        "shadow_escalation_rate": rate(int(answered["escalated"].sum()), n_answered),
        "shadow_escalation_n": float(n_answered),
        "shadow_ungrounded": float(answered["grounding_kb_id"].isna().sum()) if n_answered else NAN,
        "shadow_latency_n": float(requests),
        "shadow_latency_unknown": float(unknown_latency),
    }
    metrics.update(worst_case_latency_percentiles(frame["latency_ms"].tolist(), prefix="shadow_latency"))
    uncertainty = overall_evidence(
        confidence,
        rates={"shadow_error_rate": (requests - n_answered, requests),
               "shadow_hallucination_rate": (int(answered["hallucinated"].sum()), n_answered),
               "shadow_policy_violation_rate": (with_findings, n_checked),
               "shadow_escalation_rate": (int(answered["escalated"].sum()), n_answered)},
        means={"shadow_scs": answered["score"].astype(float).tolist()},
    )
    if confidence is not None and categories is not None:
        rows = answered.assign(kb_id=answered["grounding_kb_id"], violated=answered["policy_violations"].map(len) > 0)
        per_category, category_found = category_evidence(rows, categories, confidence, prefix="shadow_")
        metrics.update(per_category)
        uncertainty.update(category_found)
    items = frame.drop(columns=["answered"])
    return ShadowResult(metrics=metrics, items=items, flagged=_flag(frame, flag_limit), evidence=uncertainty)


def _flag(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Every serious row (finding or hallucination, answered or not), then the incorrect answered ones."""
    if frame.empty:
        return frame.drop(columns=["answered"])
    serious = frame["hallucinated"] | (frame["policy_violations"].map(len) > 0)
    weak = frame["answered"] & ~serious & ~frame["correct"]
    ordered = pd.concat([
        frame[serious].sort_values(["score", "seq"], na_position="first"),
        frame[weak].sort_values(["score", "seq"]),
    ])
    return ordered.head(max(limit, int(serious.sum()))).drop(columns=["answered"]).reset_index(drop=True)
