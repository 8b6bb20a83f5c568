"""Evidence behind a measured rate or mean, and the interval rule every evidence-weighing check uses.

DESIGN (measurement honesty): every rate carries its sample size and an interval, and a verdict whose
interval straddles its threshold is "inconclusive" and goes to a person. This module is the one home of

* :func:`wilson_interval` (also used by the rollout triggers in ``decisions.breaches``),
* :class:`Evidence`, the JSON-serialisable record a suite reports next to a point value
  (``kind`` rate: ``k`` of ``n`` with a Wilson interval; ``kind`` mean: ``n`` values with a bootstrap
  interval that the suite computed where the per-item values are),
* :func:`interval_outcome`, pass / fail / inconclusive for an interval against ``<op> threshold``, and
* :func:`zero_tolerance`, which tells the one-strike checks (a rate that must be exactly 0 or 1) apart:
  no interval can ever lie wholly on the passing side of such a line, and a single violation is
  already a failure, so they are decided on the count.
"""

from __future__ import annotations

import functools
import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_release.decisions._numbers import compare

Outcome = Literal["pass", "fail", "inconclusive"]
EvidenceKind = Literal["rate", "mean"]


def wilson_interval(successes: float, trials: float, confidence: float) -> tuple[float, float]:
    """Two-sided Wilson score interval of a binomial proportion (no continuity correction).

    The same numbers as ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method="wilson")``.
    """
    if trials <= 0:
        raise ValueError(f"a rate needs at least one trial, got {trials!r}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..trials, got {successes!r} of {trials!r}")
    z = normal_quantile(confidence)
    n, p = float(trials), successes / trials
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, center - half)
    hi = 1.0 if successes == trials else min(1.0, center + half)
    return lo, hi


@functools.lru_cache(maxsize=16)
def normal_quantile(confidence: float) -> float:
    """The standard normal quantile of a two-sided ``confidence``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    from scipy.special import ndtri  # lazy: keeps DAG parsing free of scipy

    return float(ndtri(0.5 + confidence / 2))


class Evidence(BaseModel):
    """A point value with the sample it rests on and its interval at ``confidence``.

    ``value`` is None when nothing was measured (``n`` 0). ``lo``/``hi`` are None when no interval can
    be computed (a mean of a single value): such evidence never passes an interval check.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: EvidenceKind
    value: float | None
    n: int = Field(ge=0)
    k: int | None = Field(default=None, ge=0)
    """Rates: the count in the numerator (e.g. hallucinated answers)."""
    lo: float | None = None
    hi: float | None = None
    confidence: float = Field(gt=0.0, lt=1.0)
    method: str
    """``wilson``, ``bootstrap_bca``, ``bootstrap_percentile``, ``constant`` (every value equal) or ``none``."""

    @model_validator(mode="after")
    def _consistent(self) -> Evidence:
        if self.kind == "rate" and self.k is None:
            raise ValueError("rate evidence needs k (the numerator count)")
        if self.kind == "rate" and self.k is not None and self.k > self.n:
            raise ValueError(f"rate evidence: k={self.k} exceeds n={self.n}")
        if (self.lo is None) != (self.hi is None):
            raise ValueError("an interval needs both lo and hi")
        if self.lo is not None and self.hi is not None and not self.lo <= self.hi:
            raise ValueError(f"interval [{self.lo}, {self.hi}] is reversed")
        if self.n == 0 and self.value is not None:
            raise ValueError("no sample (n=0) cannot have a value")
        return self

    def interval_text(self) -> str:
        return "[-]" if self.lo is None or self.hi is None else f"[{self.lo:.3g}, {self.hi:.3g}]"


def rate_evidence(k: int, n: int, confidence: float) -> Evidence:
    """``k`` of ``n`` as a rate with its Wilson interval; ``n`` 0 is "not measured" (value None)."""
    if n == 0:
        return Evidence(kind="rate", value=None, n=0, k=0, confidence=confidence, method="wilson")
    lo, hi = wilson_interval(k, n, confidence)
    return Evidence(kind="rate", value=k / n, n=n, k=k, lo=lo, hi=hi, confidence=confidence, method="wilson")


def zero_tolerance(op: str, threshold: float) -> bool:
    """A rate line that allows nothing: ``<= 0`` (no violation) or ``>= 1`` (everything compliant)."""
    return (op == "<=" and threshold <= 0.0) or (op == ">=" and threshold >= 1.0)


def interval_outcome(value: float, lo: float, hi: float, op: str, threshold: float) -> Outcome:
    """pass when the whole interval (and the point) is on the passing side of ``<op> threshold``, fail
    when the whole interval is on the failing side, inconclusive while it straddles the line.

    ``abs<=`` bounds a signed value on both sides: fail only when the interval lies beyond one end.
    ``==`` has no passing side an interval could lie on: callers gate it on the point.
    """
    if op == "==":
        raise ValueError("'==' checks are decided on the point value, not an interval")
    if compare(lo, op, threshold) and compare(hi, op, threshold) and compare(value, op, threshold):
        return "pass"
    if op == "abs<=":
        return "fail" if lo > threshold or hi < -threshold else "inconclusive"
    if not compare(lo, op, threshold) and not compare(hi, op, threshold):
        return "fail"
    return "inconclusive"


CATEGORY_METRICS: tuple[str, ...] = ("scs", "hallucination_rate", "policy_violation_rate")
"""What the suites report per knowledge-base category and per high-stakes category (plus ``_n``)."""


def high_stakes_metric(name: str, metric: str, prefix: str = "") -> str:
    """Measurement name of a high-stakes category's metric: ``hs_refunds_scs``, ``shadow_hs_legal_n``.

    The suites write and the gates read these names, so both build them here."""
    return f"{prefix}hs_{name}_{metric}"


def kb_category_metric(category: str, metric: str, prefix: str = "") -> str:
    """Measurement name of a knowledge-base category's metric (information in the evidence table):
    ``kb_billing_scs``, ``shadow_kb_refunds_hallucination_rate``."""
    return f"{prefix}kb_{category}_{metric}"
