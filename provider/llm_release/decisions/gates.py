"""Gate checks: compare measurements with a stage's thresholds. Missing, NaN or infinite values fail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from llm_release.decisions._numbers import as_finite, compare
from llm_release.policy import GateThreshold


class CheckResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    op: str
    threshold: float
    observed: float | None
    passed: bool
    reason: str


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
    )


def check_gate(thresholds: Sequence[GateThreshold], measurements: Mapping[str, Any]) -> GateVerdict:
    """Check every threshold; the gate passes only when all checks pass.

    An empty threshold list is a configuration error (it would pass everything), not a pass.
    """
    if not thresholds:
        raise ValueError("a gate needs at least one threshold; an empty gate would pass anything")
    checks = [check_one(t, measurements.get(t.metric)) for t in thresholds]
    return GateVerdict(passed=all(c.passed for c in checks), checks=checks)
