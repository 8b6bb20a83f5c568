"""Evidence for the suites' rates and means, overall and per category (DESIGN: measurement honesty).

The gates weigh intervals, not points (``decisions.evidence``). A rate's Wilson interval needs only its
counts; a mean's interval needs the per-item values, which only the suites hold, so the bootstrap runs
here: ``scipy.stats.bootstrap`` (BCa, falling back to the percentile interval when BCa is undefined),
with a fixed seed so that a re-run of the same answers gives the same interval.

Categories (``CategoryMap``): every knowledge-base category (information in the gate's evidence table)
and every high-stakes category of the policy (``offline_metrics.high_stakes_categories``, gated on its
own). A judged item belongs to the categories of its knowledge-base entry: the labelled ``kb_id`` offline,
the entry the judge grounded the answer in for shadow samples.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from llm_release.decisions.evidence import (
    Evidence,
    high_stakes_metric,
    kb_category_metric,
    rate_evidence,
)
from llm_release.policy import HighStakesCategory

BOOTSTRAP_SEED = 20261202
"""Fixed: the same per-item values always give the same interval (a retried task converges)."""
BOOTSTRAP_RESAMPLES = 4999


def mean_evidence(values: Sequence[float], confidence: float, *, seed: int = BOOTSTRAP_SEED,
                  n_resamples: int = BOOTSTRAP_RESAMPLES) -> Evidence:
    """The mean of ``values`` with its bootstrap interval at ``confidence``.

    No values: not measured (value None). One value: no interval (a gate calls it inconclusive). All
    values equal: the interval is that value (every resample has the same mean).
    """
    data = np.asarray([float(v) for v in values], dtype=float)
    if not np.all(np.isfinite(data)):
        raise ValueError(f"mean_evidence: {int((~np.isfinite(data)).sum())} non-finite value(s) among {len(data)}")
    n = len(data)
    if n == 0:
        return Evidence(kind="mean", value=None, n=0, confidence=confidence, method="none")
    mean = float(data.mean())
    if n == 1:
        return Evidence(kind="mean", value=mean, n=1, confidence=confidence, method="none")
    if float(np.ptp(data)) == 0.0:
        return Evidence(kind="mean", value=mean, n=n, lo=mean, hi=mean, confidence=confidence, method="constant")
    from scipy.stats import bootstrap  # lazy: scipy stays out of DAG parsing

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = bootstrap((data,), np.mean, confidence_level=confidence, method=method, vectorized=True,
                               n_resamples=n_resamples, rng=np.random.default_rng(seed))
        lo, hi = (float(x) for x in result.confidence_interval)
        if math.isfinite(lo) and math.isfinite(hi):
            # the point always lies in the interval it is reported with (float rounding of tight intervals)
            lo, hi = min(lo, mean), max(hi, mean)
            return Evidence(kind="mean", value=mean, n=n, lo=lo, hi=hi, confidence=confidence,
                            method=f"bootstrap_{method.lower()}")
    return Evidence(kind="mean", value=mean, n=n, confidence=confidence, method="none")


@dataclass(frozen=True)
class CategoryMap:
    """Which categories a knowledge-base entry belongs to: its KB category and any high-stakes ones."""

    kb_category: Mapping[str, str]
    """KB entry id -> its category."""
    high_stakes: Mapping[str, frozenset[str]]
    """High-stakes category name -> the KB entry ids it covers."""

    @classmethod
    def build(cls, kb_categories: Mapping[str, str], groups: Sequence[HighStakesCategory]) -> CategoryMap:
        """From the KB's ``{entry id: category}`` and the policy's high-stakes categories; a category or
        entry id the KB does not have is an error naming the policy field (it would gate nothing)."""
        known = set(kb_categories.values())
        members: dict[str, frozenset[str]] = {}
        for index, group in enumerate(groups):
            where = f"offline_metrics.high_stakes_categories.{index} ({group.name})"
            unknown_cats = sorted(set(group.kb_categories) - known)
            if unknown_cats:
                raise ValueError(f"{where}.kb_categories: {unknown_cats} not in the knowledge base "
                                 f"(categories: {sorted(known)})")
            unknown_ids = sorted(set(group.kb_ids) - set(kb_categories))
            if unknown_ids:
                raise ValueError(f"{where}.kb_ids: {unknown_ids} not in the knowledge base")
            members[group.name] = frozenset(
                {i for i, c in kb_categories.items() if c in set(group.kb_categories)} | set(group.kb_ids))
        return cls(kb_category=dict(kb_categories), high_stakes=members)

    @classmethod
    def from_kb(cls, kb: object, groups: Sequence[HighStakesCategory]) -> CategoryMap:
        """From a ``KnowledgeBase`` (anything with ``entries`` having ``id`` and ``category``)."""
        return cls.build({e.id: str(e.category) for e in kb.entries}, groups)  # type: ignore[attr-defined]


CATEGORY_COLUMNS = ("kb_id", "answered", "score", "hallucinated", "violated")


def category_evidence(rows: pd.DataFrame, categories: CategoryMap, confidence: float,
                      prefix: str = "") -> tuple[dict[str, float], dict[str, Evidence]]:
    """Per KB category and per high-stakes category: ``_n`` (items), ``_scs`` (mean score over the items,
    bootstrap), ``_hallucination_rate`` and ``_policy_violation_rate`` (answered items hallucinated / with
    a policy finding, Wilson). ``rows`` holds one row per judged item with ``CATEGORY_COLUMNS``; a row
    whose ``kb_id`` is missing or unknown belongs to no category. Categories without items are reported
    with n 0 (not measured), never left out: the gate must see that nothing was measured."""
    missing = [c for c in CATEGORY_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"category_evidence: rows lack column(s) {missing}")
    groups: dict[str, frozenset[str]] = {}
    for category in sorted(set(categories.kb_category.values())):
        ids = frozenset(i for i, c in categories.kb_category.items() if c == category)
        groups[kb_category_metric(category, "{}", prefix)] = ids
    for name, ids in categories.high_stakes.items():
        groups[high_stakes_metric(name, "{}", prefix)] = ids
    metrics: dict[str, float] = {}
    evidence: dict[str, Evidence] = {}
    for pattern, ids in groups.items():
        part = rows[rows["kb_id"].isin(ids)]
        answered = part[part["answered"].astype(bool)]
        found = {
            "scs": mean_evidence(part["score"].astype(float).tolist(), confidence),
            "hallucination_rate": rate_evidence(int(answered["hallucinated"].astype(bool).sum()), len(answered),
                                                confidence),
            "policy_violation_rate": rate_evidence(int(answered["violated"].astype(bool).sum()), len(answered),
                                                   confidence),
        }
        metrics[pattern.format("n")] = float(len(part))
        for metric, ev in found.items():
            name = pattern.format(metric)
            metrics[name] = math.nan if ev.value is None else ev.value
            evidence[name] = ev
    return metrics, evidence


def overall_evidence(confidence: float | None, rates: Mapping[str, tuple[int, int]],
                     means: Mapping[str, Sequence[float]]) -> dict[str, Evidence]:
    """Evidence of a suite's overall rates (``{metric: (k, n)}``) and means (``{metric: values}``); none
    when no confidence was given (the gates then fail closed on the missing evidence)."""
    if confidence is None:
        return {}
    found: dict[str, Evidence] = {m: rate_evidence(k, n, confidence) for m, (k, n) in rates.items()}
    found.update({m: mean_evidence(v, confidence) for m, v in means.items()})
    return found
