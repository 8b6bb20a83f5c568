"""Adversarial paraphrase suite (spec section 3): the core query set paraphrased 5 ways.

A support bot that answers "How do I reset my password?" correctly but "I can't remember my password,
how do I get a new one?" wrongly is brittle in a way an average score hides. The suite asks every
paraphrase once, judges each answer with the ``ReferenceJudge`` against the group's shared reference,
and measures how much the judge score moves inside each group of paraphrases.

Metrics (``ParaphraseResult.metrics``, flat ``dict[str, float]``; NaN = not measured, fails any gate):

* ``paraphrase_scs_variance_max``: the worst group's population variance (``numpy.var``) of the judge
  scores within the group. This is the gated number (spec "< 0.06", ``policy.adversarial.paraphrase``):
  one brittle intent among twenty is a brittle bot, and an average would hide it.
  ``ParaphraseResult.worst_group`` names that group (``summary()`` carries it into the evidence).
* ``paraphrase_scs_variance_mean``: mean of the groups' variances (information only).
* ``paraphrase_brittle_groups`` / ``paraphrase_inconclusive_groups`` (with the policy's line): groups
  over it on two or more deviating variants (brittle: the gate fails) or on a single one (a person
  reviews them, see ``CONCLUSIVE_DEVIATIONS``). Every group is gated on its own; none is averaged.
* ``paraphrase_groups_n`` (groups, the n of the two above), ``paraphrase_groups_unmeasured`` (groups
  without a single answer), ``paraphrase_min_group_n`` (items in the smallest group: a gate can require
  the spec's 5 variants).
* ``paraphrase_n`` (items asked), ``paraphrase_answered``, ``paraphrase_errors`` (items left without an
  answer), ``paraphrase_attempts`` / ``paraphrase_failed_attempts`` (every request, retried failures
  included) and ``paraphrase_error_rate`` = failed attempts / attempts.
* ``paraphrase_scs_mean``: mean judge score over all ``paraphrase_n`` items, a failed call scoring 0.

Fail closed: a group with failed answers cannot look stable. An unanswered paraphrase could have been
answered anyhow, so its group's variance is the worst case: each failed variant takes whichever score,
0 or 1, makes the variance largest (variance is convex in each score, so an extreme is the maximum).
A group answered well except for one failure thus counts as inconsistent (the failure as a 0), and a
group answered badly except for one failure as well (the failure as a 1). A group in which *no* call
was answered has variance NaN: nothing was measured, and the max is then NaN, so the gate fails rather
than passing on silence. Consistently wrong answers are consistent (variance 0): correctness is the
SCS gates' job, not this one's. In the item evidence a failed call scores 0 (``paraphrase_scs_mean``).

The shipped set (``data/paraphrase_set.jsonl``): 20 knowledge-base intents across all categories x 5
hand-written paraphrases that repeat no eval, validation or KB question; reference, required facts and
escalation label are the KB entry's. With lexical retrieval only, the sandbox bot had a mean group
variance of 0.03 on it but a worst group of 0.15 (four paraphrases, in four groups, defeated TF-IDF);
with its retrieval cascade (``sandbox.retrieval``) one group is left over the line on one variant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llm_release.suites._common import NAN, attempt_counts, call_client, mean, rate
from llm_release.suites.datasets import (  # the same field checks as the other data sets
    DatasetError,
    Schema,
    _boolean,
    _text,
    _text_list,
    check_min_rows,
    is_missing,
    read_rows,
    require_columns,
)
from llm_release.suites.judge import ReferenceJudge
from llm_release.suites.types import ChatClient

SHIPPED_FILE = "paraphrase_set.jsonl"
VARIANTS_PER_QUERY = 5
"""Spec: 'core query set paraphrased 5 ways' (``policy.adversarial.paraphrase.variants_per_query``)."""
GROUP_SHARED_FIELDS = ("kb_id", "reference", "required_facts", "expects_escalation")
"""Paraphrases of one query ask the same thing, so they share what a correct answer must contain."""

ITEM_COLUMNS = [
    "id", "group_id", "kb_id", "query", "response", "score", "correct", "hallucinated", "escalated",
    "expects_escalation", "latency_ms", "error", "reasons",
]
GROUP_COLUMNS = [
    "group_id", "kb_id", "n", "answered", "errors", "variance", "answered_variance", "mean_score",
    "min_score", "max_score", "deviating", "worst_id", "worst_query",
]
CONCLUSIVE_DEVIATIONS = 2
"""Variants on the minority side of a group's verdicts (correct vs not; a failed call is not correct)
that make its over-the-line variance conclusive. Five answers cannot tell one slip from a brittle intent
(1 of 5 inconsistent: 95 % Wilson interval 4-62 %, straddling the 6.5 % inconsistency a 0.06 variance
allows); two can (12-77 %, above it)."""


def _facts_in_reference(record: dict[str, Any]) -> tuple[str, str] | None:
    reference = record["reference"].lower()
    missing = [fact for fact in record["required_facts"] if fact.lower() not in reference]
    return ("required_facts", f"not found in reference: {missing}") if missing else None


PARAPHRASE_SCHEMA = Schema(
    "paraphrase item",
    {
        "id": _text,
        "group_id": _text,
        "kb_id": _text,
        "query": _text,
        "reference": _text,
        "required_facts": _text_list(0),
        "expects_escalation": _boolean,
    },
    _facts_in_reference,
)


def shipped_paraphrase_path() -> Path:
    return Path(str(resources.files("llm_release.data").joinpath(SHIPPED_FILE)))


def normalise_wording(query: str) -> str:
    """Lower case, punctuation and spacing removed: two queries equal under this are not paraphrases."""
    return " ".join(re.sub(r"[^\w]+", " ", query.lower()).split())


def _line_numbers(rows: Sequence[Any]) -> dict[str, int]:
    """id -> line number of ``read_rows``' (line, record) rows, for group-level errors (no second read)."""
    return {row.data["id"]: row.line for row in rows}


def _comparable(value: Any) -> Any:
    """Lists, tuples and arrays compare by content (a caller's DataFrame may hold any of them)."""
    if isinstance(value, list | tuple | np.ndarray):
        return tuple(str(item) for item in value)
    return None if is_missing(value) else value


def check_groups(items: pd.DataFrame, variants_per_query: int | None, where: Any) -> None:
    """Group rules; ``where(item_id, field, reason)`` builds the error message.

    Every group has ``variants_per_query`` items (at least 2 when None: one query has no variance),
    the items share ``GROUP_SHARED_FIELDS`` and no two of them are the same words in another case or
    punctuation.
    """
    minimum = 2 if variants_per_query is None else variants_per_query
    for group_id, group in items.groupby("group_id", sort=False):
        first = group.iloc[0]
        if len(group) < minimum or (variants_per_query is not None and len(group) != variants_per_query):
            wanted = f"exactly {variants_per_query}" if variants_per_query is not None else "at least 2"
            raise DatasetError(where(first["id"], "group_id",
                                     f"group {group_id!r} has {len(group)} item(s), {wanted} required"))
        seen: dict[str, str] = {}
        for row in group.itertuples(index=False):
            for name in GROUP_SHARED_FIELDS:
                if _comparable(getattr(row, name)) != _comparable(first[name]):
                    raise DatasetError(where(row.id, name, f"differs from {first['id']!r} in group {group_id!r}"))
            wording = normalise_wording(row.query)
            if wording in seen:
                raise DatasetError(where(row.id, "query", f"same wording as {seen[wording]!r}: not a paraphrase"))
            seen[wording] = row.id


def load_paraphrase_set(
    path: str | Path | None = None,
    variants_per_query: int | None = VARIANTS_PER_QUERY,
    kb: Any = None,
    *,
    min_rows: int | None = None,
    max_bytes: int | None = None,
) -> pd.DataFrame:
    """Load and validate a paraphrase set (default: the shipped one).

    Errors name ``file:line: field``. With ``kb``, every ``kb_id`` must name a knowledge-base entry. A
    ``path`` is an override from a release config, so a missing file names ``datasets.paraphrase_set``;
    ``min_rows`` refuses a set with fewer items (paraphrases, not groups).
    """
    source = shipped_paraphrase_path() if path is None else Path(path)
    field = None if path is None else "datasets.paraphrase_set"
    rows = read_rows(source, PARAPHRASE_SCHEMA, field=field, max_bytes=max_bytes)
    check_min_rows(source, len(rows), min_rows, "paraphrase_set")
    frame = pd.DataFrame([row.data for row in rows], columns=PARAPHRASE_SCHEMA.columns, dtype=object)
    frame["expects_escalation"] = frame["expects_escalation"].astype(bool)
    lines = _line_numbers(rows)

    def where(item_id: str, field: str, reason: str) -> str:
        return f"{source}:{lines.get(item_id, '?')}: field '{field}': {reason}"

    check_groups(frame, variants_per_query, where)
    if kb is not None:
        known = {entry.id for entry in kb.entries}
        for item_id, kb_id in zip(frame["id"], frame["kb_id"], strict=True):
            if kb_id not in known:
                raise DatasetError(where(item_id, "kb_id", f"no knowledge-base entry {kb_id!r}"))
    return frame


@dataclass
class ParaphraseResult:
    """Metrics for MLflow/XCom, per-item evidence and the per-group variances behind them."""

    metrics: dict[str, float]
    items: pd.DataFrame
    groups: pd.DataFrame
    """One row per group, least stable first (unmeasured groups, then by variance)."""

    @property
    def worst_group(self) -> str | None:
        """The group behind ``paraphrase_scs_variance_max`` (an unmeasured group when there is one)."""
        return None if self.groups.empty else str(self.groups["group_id"].iloc[0])

    def unstable_groups(self, max_variance: float) -> pd.DataFrame:
        """Groups at or above ``max_variance``, or unmeasured (for reviewers: which intents are brittle)."""
        return self.groups[~(self.groups["variance"] < max_variance)].reset_index(drop=True)

    def summary(self, limit: int = 5) -> dict[str, Any]:
        """Small JSON-able evidence for the gate reviewer: the worst group and the least stable ones."""
        worst = self.groups.head(1)
        return {
            "paraphrase_worst_group": self.worst_group,
            "paraphrase_worst_group_variance": None if worst.empty or not np.isfinite(worst["variance"].iloc[0])
            else float(worst["variance"].iloc[0]),
            "least_stable_groups": self.groups.head(limit).to_dict(orient="records"),
        }


def worst_case_variance(answered_scores: Sequence[float], unanswered: int) -> float:
    """Largest population variance of the group over any 0/1 scores for its ``unanswered`` variants.

    NaN when nothing was answered or a score is not finite. Only the number of failed variants set to 1
    matters, so ``unanswered + 1`` candidates are tried.
    """
    scores = [float(s) for s in answered_scores]
    if not scores or not all(math.isfinite(s) for s in scores):
        return NAN
    return max(float(np.var([*scores, *([1.0] * ones), *([0.0] * (unanswered - ones))]))
               for ones in range(unanswered + 1))


def _group_rows(evidence: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for group_id, group in evidence.groupby("group_id", sort=False):
        scores = group["score"].to_numpy(dtype=float)
        ok = group["error"].isna().to_numpy()
        answered_scores = scores[ok]
        worst = group.iloc[int(np.argmin(scores))]
        rows.append({
            "group_id": group_id,
            "kb_id": group["kb_id"].iloc[0],
            "n": len(group),
            "answered": int(ok.sum()),
            "errors": int((~ok).sum()),
            "variance": worst_case_variance(answered_scores.tolist(), int((~ok).sum())),
            "answered_variance": float(np.var(answered_scores)) if len(answered_scores) else NAN,
            "mean_score": float(scores.mean()),
            "min_score": float(scores.min()),
            "max_score": float(scores.max()),
            "deviating": _deviating(group),
            "worst_id": worst["id"],
            "worst_query": worst["query"],
        })
    return rows


def _deviating(group: pd.DataFrame) -> int:
    """Variants on the minority side of the group's verdicts (failed calls count as not correct)."""
    correct = int((group["correct"].astype(bool) & group["error"].isna()).sum())
    return min(correct, len(group) - correct)


def run_paraphrase_suite(
    client: ChatClient,
    items_df: pd.DataFrame,
    judge: ReferenceJudge,
    variants_per_query: int | None = None,
    max_variance: float | None = None,
) -> ParaphraseResult:
    """Ask every paraphrase once and measure score variance within groups (module docstring).

    ``items_df`` has the paraphrase-set columns (``load_paraphrase_set``); ``variants_per_query``
    additionally requires that many items per group (pass the policy's value to enforce the spec).
    ``max_variance`` (the policy's line) classifies the groups over it: ``paraphrase_brittle_groups``
    counts those whose variance rests on at least ``CONCLUSIVE_DEVIATIONS`` deviating variants (or that
    nothing measured), ``paraphrase_inconclusive_groups`` those over the line on a single deviating
    variant: a person looks at them. Without ``max_variance`` both are NaN (not measured).
    """
    require_columns(items_df, PARAPHRASE_SCHEMA, "paraphrase items")
    items = items_df.reset_index(drop=True)
    check_groups(items, variants_per_query,
                 lambda item_id, field, reason: f"paraphrase items: item {item_id!r}: field '{field}': {reason}")
    completions = call_client(client, [str(q) for q in items["query"]])

    rows: list[dict[str, Any]] = []
    for item, completion in zip(items.itertuples(index=False), completions, strict=True):
        expects = bool(item.expects_escalation)
        if completion.ok:
            verdict = judge.judge(item.query, completion.text, reference=item.reference,
                                  required_facts=tuple(item.required_facts), expects_escalation=expects,
                                  kb_id=None if is_missing(item.kb_id) else item.kb_id)
            score, correct, hallucinated, escalated = (verdict.score, verdict.correct, verdict.hallucinated,
                                                       verdict.escalated)
            reasons: Sequence[str] = list(verdict.reasons)
        else:
            score, correct, hallucinated, escalated = 0.0, False, False, False
            reasons = [f"call failed: {completion.error or 'no answer'}"]
        rows.append({
            "id": item.id, "group_id": item.group_id, "kb_id": None if is_missing(item.kb_id) else item.kb_id,
            "query": item.query,
            "response": completion.text if completion.ok else None, "score": float(score), "correct": correct,
            "hallucinated": hallucinated, "escalated": escalated, "expects_escalation": expects,
            "latency_ms": completion.latency_ms, "error": None if completion.ok else completion.error or "no text",
            "reasons": list(reasons),
        })
    evidence = pd.DataFrame(rows, columns=ITEM_COLUMNS)
    groups = pd.DataFrame(_group_rows(evidence), columns=GROUP_COLUMNS)
    variances = groups["variance"].to_numpy(dtype=float)
    attempts, failed_attempts = attempt_counts(completions)
    answered = int(evidence["error"].isna().sum())
    metrics: dict[str, float] = {
        # np.max / np.mean propagate NaN: one unmeasured group makes both "not measured"
        "paraphrase_scs_variance_max": float(np.max(variances)) if len(variances) else NAN,
        "paraphrase_scs_variance_mean": float(np.mean(variances)) if len(variances) else NAN,
        "paraphrase_groups_n": float(len(groups)),
        "paraphrase_groups_unmeasured": float(np.isnan(variances).sum()),
        "paraphrase_min_group_n": float(groups["n"].min()) if len(groups) else 0.0,
        "paraphrase_n": float(len(evidence)),
        "paraphrase_answered": float(answered),
        "paraphrase_errors": float(len(evidence) - answered),
        "paraphrase_attempts": float(attempts),
        "paraphrase_failed_attempts": float(failed_attempts),
        "paraphrase_error_rate": rate(failed_attempts, attempts),
        "paraphrase_scs_mean": mean(evidence["score"].tolist()),
        "paraphrase_brittle_groups": NAN,
        "paraphrase_inconclusive_groups": NAN,
    }
    if max_variance is not None and len(groups):
        over = ~(groups["variance"] < max_variance)  # NaN (nothing measured) counts as over
        conclusive = over & ((groups["deviating"] >= CONCLUSIVE_DEVIATIONS) | groups["variance"].isna())
        metrics["paraphrase_brittle_groups"] = float(conclusive.sum())
        metrics["paraphrase_inconclusive_groups"] = float((over & ~conclusive).sum())
    groups = groups.sort_values(["variance", "group_id"], ascending=[False, True], na_position="first")
    return ParaphraseResult(metrics=metrics, items=evidence, groups=groups.reset_index(drop=True))
