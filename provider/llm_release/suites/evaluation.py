"""Labelled evaluation suite (stage 1 internal eval, stage 2 validation): correctness, safety, overlap.

Each labelled item's query goes to the model once; the ``ReferenceJudge`` scores the answer against
the item's reference and KB entry and the policy checker looks for violations. Failed calls count as
incorrect, not completed, not shown compliant and (for safety items) as safety failures: a model that
does not answer cannot pass a gate, and an error never shrinks the denominator of a pass rate. Items
with ``kb_id`` null are out of scope: only the hand-off behaviour is judged
(``ReferenceJudge.judge_behaviour``).

Metrics (``EvalResult.metrics``, flat ``dict[str, float]``; NaN = not measured, which fails any gate).
Every rate comes with the sample size it was computed on (``<rate>_n``), so a gate can refuse thin
evidence:

* ``eval_n`` items asked and judged (unanswered ones judged failed); ``eval_answered``; ``eval_errors``
  items left without an answer; ``eval_attempts`` / ``eval_failed_attempts`` every request the client
  made / every one that failed, retried ones included; ``eval_error_rate`` = failed attempts / attempts
  (a retry may rescue an item, it never hides the failure it retried)
* ``eval_pass_rate``: judged correct / ``eval_n``; ``scs`` (+ ``scs_n`` = ``eval_n``): mean judge score,
  a failed call scoring 0
* ``hallucination_rate`` (+ ``hallucination_n`` = answered): hallucinated / answered. It needs an answer
  to exist, so its n is the answered count; the unanswered items are ``eval_errors``, never "no
  hallucination"
* ``task_completion_rate`` (+ ``task_completion_n`` = ``eval_n``): journeys completed / n. A journey
  completes when the answer is correct, or, for items that expect a hand-off, when the model hands off
  without a policy finding or an invented quantity (the customer reaches a human with nothing false said)
* ``policy_compliance_rate`` (+ ``policy_compliance_n`` = ``eval_n``): answered items without a finding
  / n, an unanswered item is not shown compliant; ``policy_violations`` (+ ``policy_violations_n`` =
  answered items checked): number of findings, NaN when nothing was answered (nothing checked is not
  "no violation")
* ``safety_category_failures``: items failing safety: a ``safety_category`` item that is incorrect,
  unanswered or has a finding, plus any other item with a finding (a finding is a safety failure
  wherever it occurs); ``safety_category_n`` items with a safety category. With no safety-category item
  the set cannot show "no safety category failures": the count is NaN. It splits into
  ``safety_policy_failures`` (a policy finding or no answer: certain, zero tolerance) and
  ``safety_judged_failures`` (a safety-category answer the judge calls incorrect: the judge's verdict, which
  the gate sends to a person)
* ``latency_p50_ms``, ``latency_p95_ms``, ``latency_p99_ms`` (+ ``latency_n``) over every call, failed ones
  included (a timeout's latency is latency); a call whose latency is unknown (the client raised) counts
  as slower than every other, so a percentile that depends on it is NaN (``worst_case_latency_percentiles``)
* ``bleu`` (corpus BLEU-4, 0..100), ``rouge_l`` (mean ROUGE-L F, 0..1) against the references over all
  items; a failed call contributes an empty prediction
* with a baseline client: ``baseline_errors``; ``baseline_bleu`` / ``baseline_rouge_l`` over the items
  the baseline answered; ``bleu_delta`` / ``rouge_delta`` = (candidate - baseline) / baseline on those
  same items (the candidate's failures there still count as empty answers), ``delta_n`` their number.
  A baseline failure would otherwise lower the baseline's score and make the candidate look better;
  NaN when the baseline answered nothing or scores 0
* ``eval_kb_groups_n``, ``eval_kb_group_scs_variance_max``: population variance of the judge score
  across the items sharing a ``kb_id`` (paraphrases of one intent), max over intents with >= 2 items
  (information: the adversarial paraphrase suite is the gated one)

Evidence (``EvalResult.evidence``, given ``confidence``): every rate above (``eval_pass_rate``,
``hallucination_rate``, ``task_completion_rate``, ``policy_compliance_rate``, ``eval_error_rate``) with
its counts and Wilson interval, and ``scs`` with its bootstrap interval (``suites.uncertainty``). Given
``categories`` too, the same per knowledge-base category (``kb_<category>_*``) and per high-stakes
category (``hs_<name>_n`` / ``_scs`` / ``_hallucination_rate`` / ``_policy_violation_rate``) by the
item's labelled ``kb_id``; out-of-scope items (no ``kb_id``) belong to no category.

Attempts are counted with ``_common.attempt_counts``. The module also holds the latency helper the
shadow suite shares, ``worst_case_latency_percentiles``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from llm_release.decisions.evidence import Evidence
from llm_release.suites._common import NAN, attempt_counts, call_client, mean, rate
from llm_release.suites.datasets import EVAL_SCHEMA, is_missing, require_columns
from llm_release.suites.judge import ReferenceJudge
from llm_release.suites.judging import judge_batch
from llm_release.suites.metrics.textscores import corpus_bleu4, corpus_rouge_l
from llm_release.suites.policy_checker import check_responses
from llm_release.suites.types import ChatClient, Completion
from llm_release.suites.uncertainty import CategoryMap, category_evidence, overall_evidence

EVIDENCE_COLUMNS = [
    "id", "query", "response", "score", "correct", "hallucinated", "escalated", "expects_escalation",
    "completed", "findings", "safety_category", "safety_failure", "safety_judged", "latency_ms", "error",
    "reasons", "attempts", "failed_attempts",
]
PERCENTILES = (50, 95, 99)


# ----------------------------------------------------------------------------- shared fail-closed helpers
def _known_latency(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def worst_case_latency_percentiles(latencies_ms: Sequence[Any], prefix: str = "latency") -> dict[str, float]:
    """``{prefix}_p50_ms`` / ``_p95_ms`` / ``_p99_ms`` over every request, failed ones included.

    Linear interpolation like ``numpy.percentile``. A request whose latency is unknown (None, NaN: the
    client raised before timing it) is ranked slower than every known one; a percentile whose value
    would need it is unbounded and reported as NaN ("not measured"), never as the percentile of the
    requests that happened to be timed. Dropping them would make a flaky endpoint look fast.
    """
    values = list(latencies_ms)
    if not values:
        return {f"{prefix}_p{q}_ms": NAN for q in PERCENTILES}
    known = sorted(v for v in (_known_latency(x) for x in values) if v is not None)
    ranked = known + [math.inf] * (len(values) - len(known))
    out: dict[str, float] = {}
    for q in PERCENTILES:
        position = q / 100 * (len(ranked) - 1)
        low, high = math.floor(position), math.ceil(position)
        if math.isinf(ranked[high]):
            out[f"{prefix}_p{q}_ms"] = NAN
        else:
            out[f"{prefix}_p{q}_ms"] = ranked[low] + (ranked[high] - ranked[low]) * (position - low)
    return out


# ----------------------------------------------------------------------------- the suite
@dataclass
class EvalResult:
    """Metrics for MLflow/XCom plus the per-item evidence behind them."""

    metrics: dict[str, float]
    items: pd.DataFrame
    failed_calls: list[dict[str, Any]] = field(default_factory=list)
    """``{"id", "query", "error"}`` for every call that returned no answer."""
    evidence: dict[str, Evidence] = field(default_factory=dict)
    """Per metric: n and the interval (see the module docstring); empty without a confidence."""

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


def _overlap(completions: Sequence[Completion], references: Sequence[str]) -> tuple[float, float]:
    if not completions:
        return NAN, NAN
    predictions = [c.text if c.ok and c.text is not None else "" for c in completions]
    return corpus_bleu4(predictions, list(references)), corpus_rouge_l(predictions, list(references))


def _judge_answers(items: pd.DataFrame, completions: Sequence[Completion], judge: Any, compliance: Any
                   ) -> tuple[dict[int, Any], dict[int, list[str]]]:
    """Verdicts and policy findings for the answered items, by row position: labelled items in one judge
    batch (``judge_batch``), out-of-scope ones (no ``kb_id``) on their hand-off
    behaviour, and every answer through the policy checker in one pass."""
    answered = [i for i, c in enumerate(completions) if c.ok]
    rows = {i: items.iloc[i] for i in answered}
    labelled = [i for i in answered if _optional(rows[i]["kb_id"]) is not None]
    requests = [{"query": str(rows[i]["query"]), "response": completions[i].text,
                 "reference": str(rows[i]["reference"]), "required_facts": tuple(rows[i]["required_facts"]),
                 "expects_escalation": bool(rows[i]["expects_escalation"]), "kb_id": rows[i]["kb_id"]}
                for i in labelled]
    verdicts: dict[int, Any] = dict(zip(labelled, judge_batch(judge, requests), strict=True))
    for i in answered:
        if i not in verdicts:  # out-of-scope item: nothing in the KB grounds it, judge the hand-off
            verdicts[i] = judge.judge_behaviour(str(rows[i]["query"]), completions[i].text,
                                                expects_escalation=bool(rows[i]["expects_escalation"]))
    found = check_responses([(str(rows[i]["query"]), completions[i].text or "") for i in answered], compliance)
    return verdicts, {i: [f.rule_id for f in f_list] for i, f_list in zip(answered, found, strict=True)}


def run_eval_suite(
    client: ChatClient,
    items: pd.DataFrame,
    judge: ReferenceJudge,
    baseline_client: ChatClient | None = None,
    *,
    confidence: float | None = None,
    categories: CategoryMap | None = None,
    compliance: Any = None,
) -> EvalResult:
    """Ask ``client`` every item's query and measure the answers (see module docstring for metrics).

    ``compliance`` is the release policy's ``compliance`` section the policy checker applies (None: the
    shipped profile's).

    ``confidence`` (the policy's ``offline_metrics.confidence``) turns on the evidence; ``categories``
    the per-category metrics. Without them the gates that weigh intervals fail closed."""
    require_columns(items, EVAL_SCHEMA, "eval items")
    items = items.reset_index(drop=True)
    queries = [str(q) for q in items["query"]]
    references = [str(r) for r in items["reference"]]
    completions = call_client(client, queries)
    verdicts, findings_of = _judge_answers(items, completions, judge, compliance)

    rows: list[dict[str, Any]] = []
    for index, (item, completion) in enumerate(zip(items.itertuples(index=False), completions, strict=True)):
        expects = bool(item.expects_escalation)
        kb_id, safety_category = _optional(item.kb_id), _optional(item.safety_category)
        attempts, failed_attempts = attempt_counts([completion])
        if completion.ok:
            verdict = verdicts[index]
            findings = findings_of[index]
            score, correct, hallucinated, escalated = (verdict.score, verdict.correct, verdict.hallucinated,
                                                       verdict.escalated)
            completed = correct or (expects and escalated and not findings and not hallucinated)
            reasons = list(verdict.reasons)
        else:
            findings, score, correct, hallucinated, escalated, completed = [], 0.0, False, False, False, False
            reasons = [f"call failed: {completion.error or 'no answer'}"]
        safety_failure = bool(findings) or (safety_category is not None and not correct)
        # a rule's finding or no answer is certain; an answer the judge calls incorrect is the judge's verdict
        safety_judged = safety_category is not None and completion.ok and not findings and not correct
        rows.append({
            "id": item.id, "query": item.query, "response": completion.text if completion.ok else None,
            "score": score, "correct": correct, "hallucinated": hallucinated, "escalated": escalated,
            "expects_escalation": expects, "completed": completed, "findings": findings,
            "safety_category": safety_category, "safety_failure": safety_failure, "safety_judged": safety_judged,
            "latency_ms": completion.latency_ms,
            "error": None if completion.ok else (completion.error or "no answer"), "reasons": reasons,
            "attempts": attempts, "failed_attempts": failed_attempts, "kb_id": kb_id,
        })
    evidence = pd.DataFrame(rows, columns=[*EVIDENCE_COLUMNS, "kb_id"])

    n = len(evidence)
    answered = evidence[evidence["error"].isna()]
    n_answered = len(answered)
    n_safety = int(evidence["safety_category"].notna().sum())
    attempts_total, failed_total = attempt_counts(completions)
    metrics: dict[str, float] = {
        "eval_n": float(n),
        "eval_answered": float(n_answered),
        "eval_errors": float(n - n_answered),
        "eval_attempts": float(attempts_total),
        "eval_failed_attempts": float(failed_total),
        "eval_error_rate": rate(failed_total, attempts_total),
        "eval_pass_rate": rate(int(evidence["correct"].sum()), n),
        "scs": mean(evidence["score"].tolist()),
        "scs_n": float(n),
        "hallucination_rate": rate(int(answered["hallucinated"].sum()), n_answered),
        "hallucination_n": float(n_answered),
        "task_completion_rate": rate(int(evidence["completed"].sum()), n),
        "task_completion_n": float(n),
        "policy_violations": float(sum(len(f) for f in answered["findings"])) if n_answered else NAN,
        "policy_violations_n": float(n_answered),
        "policy_compliance_rate": rate(int((answered["findings"].map(len) == 0).sum()), n),
        "policy_compliance_n": float(n),
        "safety_category_failures": float(evidence["safety_failure"].sum()) if n_safety else NAN,
        "safety_judged_failures": float(evidence["safety_judged"].sum()) if n_safety else NAN,
        "safety_policy_failures": float((evidence["safety_failure"] & ~evidence["safety_judged"]).sum())
        if n_safety else NAN,
        "safety_category_n": float(n_safety),
        "latency_n": float(n),
    }
    metrics.update(worst_case_latency_percentiles(evidence["latency_ms"].tolist()))
    compliant = int((answered["findings"].map(len) == 0).sum())
    uncertainty = overall_evidence(
        confidence,
        rates={"eval_pass_rate": (int(evidence["correct"].sum()), n),
               "hallucination_rate": (int(answered["hallucinated"].sum()), n_answered),
               "task_completion_rate": (int(evidence["completed"].sum()), n),
               "policy_compliance_rate": (compliant, n),
               "eval_error_rate": (failed_total, attempts_total)},
        means={"scs": evidence["score"].astype(float).tolist()},
    )
    if confidence is not None and categories is not None:
        rows = evidence.assign(answered=evidence["error"].isna(), violated=evidence["findings"].map(len) > 0)
        per_category, category_found = category_evidence(rows, categories, confidence)
        metrics.update(per_category)
        uncertainty.update(category_found)
    metrics["bleu"], metrics["rouge_l"] = _overlap(completions, references)
    metrics.update(_kb_group_variance(evidence))

    if baseline_client is not None:
        metrics.update(_baseline_deltas(call_client(baseline_client, queries), completions, references))

    failed_calls = [
        {"id": row.id, "query": row.query, "error": row.error}
        for row in evidence.itertuples(index=False) if row.error is not None
    ]
    return EvalResult(metrics=metrics, items=evidence, failed_calls=failed_calls, evidence=uncertainty)


def _baseline_deltas(baseline: Sequence[Completion], candidate: Sequence[Completion],
                     references: Sequence[str]) -> dict[str, float]:
    """BLEU/ROUGE delta of the candidate vs the baseline on the items the baseline answered.

    A baseline failure is the baseline's problem, not evidence for the candidate: comparing on the
    baseline's answered items keeps it from lowering the bar, while the candidate's own failures on
    those items still count as empty answers.
    """
    paired = [index for index, completion in enumerate(baseline) if completion.ok]
    base_bleu, base_rouge = _overlap([baseline[i] for i in paired], [references[i] for i in paired])
    cand_bleu, cand_rouge = _overlap([candidate[i] for i in paired], [references[i] for i in paired])
    return {
        "baseline_errors": float(len(baseline) - len(paired)),
        "baseline_bleu": base_bleu,
        "baseline_rouge_l": base_rouge,
        "bleu_delta": _relative_delta(cand_bleu, base_bleu),
        "rouge_delta": _relative_delta(cand_rouge, base_rouge),
        "delta_n": float(len(paired)),
    }


def _kb_group_variance(evidence: pd.DataFrame) -> dict[str, float]:
    """Worst within-intent variance of the judge score on the eval set (failed calls score 0)."""
    grouped = evidence[evidence["kb_id"].notna()].groupby("kb_id")["score"]
    variances = [float(np.var(scores.to_numpy(dtype=float))) for _, scores in grouped if len(scores) >= 2]
    return {
        "eval_kb_groups_n": float(len(variances)),
        "eval_kb_group_scs_variance_max": float(np.max(variances)) if variances else NAN,  # NaN propagates
    }
