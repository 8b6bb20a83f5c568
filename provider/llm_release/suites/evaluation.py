"""Labelled evaluation suite (stage 1 internal eval, stage 2 validation): correctness, safety, overlap.

Each labelled item's query goes to the model once; the ``ReferenceJudge`` scores the answer against
the item's reference and KB entry and the policy checker looks for violations. Failed calls count as
incorrect, not completed and (for safety items) as safety failures: a model that does not answer
cannot pass a gate. Items with ``kb_id`` null are out of scope: only the hand-off behaviour is judged
(``ReferenceJudge.judge_behaviour``). Metrics (``EvalResult.metrics``, flat ``dict[str, float]``;
NaN = not measurable):

* ``n``, ``errors``, ``answered``
* ``eval_pass_rate``: judged correct / n;  ``scs``: mean judge score over n (failed calls score 0)
* ``hallucination_rate``: hallucinated / answered
* ``task_completion_rate``: journeys completed / n. A journey completes when the answer is correct, or,
  for items that expect a hand-off, when the model hands off without a policy finding or an invented
  quantity (the customer reaches a human with nothing false said)
* ``policy_violations``: number of policy-checker findings;  ``policy_compliance_rate``: answered items
  without a finding / answered
* ``safety_category_failures``: items failing safety: a ``safety_category`` item that is incorrect,
  unanswered or has a finding, plus any other item with a finding (a finding is a safety failure
  wherever it occurs)
* ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms`` over successful calls
* ``bleu`` (corpus BLEU-4, 0..100), ``rouge_l`` (mean ROUGE-L F, 0..1) against the references; a failed
  call contributes an empty prediction
* with a baseline client: ``baseline_bleu``, ``baseline_rouge_l``, ``baseline_errors``, ``bleu_delta``
  and ``rouge_delta`` = (candidate - baseline) / baseline (NaN when the baseline is 0)
* ``paraphrase_groups``, ``scs_paraphrase_variance_max``: population variance of the judge score across
  the items sharing a ``kb_id`` (paraphrases of one intent), max over intents with >= 2 items
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from llm_release.suites._common import NAN, call_client, latency_percentiles, mean, rate
from llm_release.suites.datasets import EVAL_SCHEMA, is_missing, require_columns
from llm_release.suites.judge import ReferenceJudge
from llm_release.suites.metrics.textscores import corpus_bleu4, corpus_rouge_l
from llm_release.suites.policy_checker import check_response
from llm_release.suites.types import ChatClient, Completion

EVIDENCE_COLUMNS = [
    "id", "query", "response", "score", "correct", "hallucinated", "escalated", "expects_escalation",
    "completed", "findings", "safety_category", "safety_failure", "latency_ms", "error", "reasons",
]


@dataclass
class EvalResult:
    """Metrics for MLflow/XCom plus the per-item evidence behind them."""

    metrics: dict[str, float]
    items: pd.DataFrame
    failed_calls: list[dict[str, Any]] = field(default_factory=list)
    """``{"id", "query", "error"}`` for every call that returned no answer."""

    def failures(self) -> pd.DataFrame:
        """Items that were not judged correct or broke policy, worst score first (for reviewers)."""
        bad = self.items[~self.items["correct"] | self.items["safety_failure"]]
        return bad.sort_values(["score", "id"]).reset_index(drop=True)


def _optional(value: Any) -> Any:
    return None if is_missing(value) else value


def _relative_delta(candidate: float, baseline: float) -> float:
    if not np.isfinite(candidate) or not np.isfinite(baseline) or baseline == 0:
        return NAN
    return (candidate - baseline) / baseline


def _overlap(completions: list[Completion], references: list[str]) -> tuple[float, float]:
    predictions = [c.text if c.ok else "" for c in completions]
    return corpus_bleu4(predictions, references), corpus_rouge_l(predictions, references)


def run_eval_suite(
    client: ChatClient,
    items: pd.DataFrame,
    judge: ReferenceJudge,
    baseline_client: ChatClient | None = None,
) -> EvalResult:
    """Ask ``client`` every item's query and measure the answers (see module docstring for metrics)."""
    require_columns(items, EVAL_SCHEMA, "eval items")
    items = items.reset_index(drop=True)
    queries = [str(q) for q in items["query"]]
    references = [str(r) for r in items["reference"]]
    completions = call_client(client, queries)

    rows: list[dict[str, Any]] = []
    for item, completion in zip(items.itertuples(index=False), completions, strict=True):
        expects = bool(item.expects_escalation)
        kb_id, safety_category = _optional(item.kb_id), _optional(item.safety_category)
        if completion.ok:
            if kb_id is None:  # out-of-scope item: nothing in the KB grounds it, judge the hand-off
                verdict = judge.judge_behaviour(item.query, completion.text, expects_escalation=expects)
            else:
                verdict = judge.judge(item.query, completion.text, reference=item.reference,
                                      required_facts=tuple(item.required_facts), expects_escalation=expects,
                                      kb_id=kb_id)
            findings = [f.rule_id for f in check_response(item.query, completion.text or "")]
            score, correct, hallucinated, escalated = (verdict.score, verdict.correct, verdict.hallucinated,
                                                       verdict.escalated)
            completed = correct or (expects and escalated and not findings and not hallucinated)
            reasons = list(verdict.reasons)
        else:
            findings, score, correct, hallucinated, escalated, completed = [], 0.0, False, False, False, False
            reasons = [f"call failed: {completion.error}"]
        safety_failure = bool(findings) or (safety_category is not None and not correct)
        rows.append({
            "id": item.id, "query": item.query, "response": completion.text, "score": score,
            "correct": correct, "hallucinated": hallucinated, "escalated": escalated,
            "expects_escalation": expects, "completed": completed, "findings": findings,
            "safety_category": safety_category, "safety_failure": safety_failure,
            "latency_ms": completion.latency_ms, "error": completion.error, "reasons": reasons,
            "kb_id": kb_id,
        })
    evidence = pd.DataFrame(rows, columns=[*EVIDENCE_COLUMNS, "kb_id"])

    n = len(evidence)
    answered = evidence[evidence["error"].isna() & evidence["response"].notna()]
    n_answered = len(answered)
    metrics: dict[str, float] = {
        "n": float(n),
        "errors": float(n - n_answered),
        "answered": float(n_answered),
        "eval_pass_rate": rate(int(evidence["correct"].sum()), n),
        "scs": mean(evidence["score"].tolist()),
        "hallucination_rate": rate(int(answered["hallucinated"].sum()), n_answered),
        "task_completion_rate": rate(int(evidence["completed"].sum()), n),
        "policy_violations": float(sum(len(f) for f in evidence["findings"])),
        "policy_compliance_rate": rate(int((answered["findings"].map(len) == 0).sum()), n_answered),
        "safety_category_failures": float(evidence["safety_failure"].sum()),
    }
    metrics.update(latency_percentiles(answered["latency_ms"].tolist()))
    metrics["bleu"], metrics["rouge_l"] = _overlap(completions, references)
    metrics.update(_paraphrase_variance(evidence))

    if baseline_client is not None:
        baseline = call_client(baseline_client, queries)
        metrics["baseline_errors"] = float(sum(not c.ok for c in baseline))
        metrics["baseline_bleu"], metrics["baseline_rouge_l"] = _overlap(baseline, references)
        metrics["bleu_delta"] = _relative_delta(metrics["bleu"], metrics["baseline_bleu"])
        metrics["rouge_delta"] = _relative_delta(metrics["rouge_l"], metrics["baseline_rouge_l"])

    failed_calls = [
        {"id": row.id, "query": row.query, "error": row.error}
        for row in evidence.itertuples(index=False) if row.error is not None or row.response is None
    ]
    return EvalResult(metrics=metrics, items=evidence, failed_calls=failed_calls)


def _paraphrase_variance(evidence: pd.DataFrame) -> dict[str, float]:
    grouped = evidence[evidence["kb_id"].notna()].groupby("kb_id")["score"]
    variances = [float(np.var(scores.to_numpy())) for _, scores in grouped if len(scores) >= 2]
    return {
        "paraphrase_groups": float(len(variances)),
        "scs_paraphrase_variance_max": max(variances) if variances else NAN,
    }
