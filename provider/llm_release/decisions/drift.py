"""Drift verdict (spec section 3, DESIGN 'Drift'): ok / alert / block / insufficient data."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from llm_release.decisions._numbers import as_finite
from llm_release.policy import DriftPolicy


class DriftVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["ok", "alert", "block", "insufficient_data"]
    divergence: float | None
    null_divergence: float | None
    requires_human_decision: bool
    """Above the alert line a person decides whether to proceed (approval routing)."""
    reason: str


def drift_verdict(policy: DriftPolicy, divergence: Any, null_divergence: Any = None) -> DriftVerdict:
    """Classify a Jensen-Shannon divergence; a missing value or a noisy null never counts as 'ok'."""
    value, problem = as_finite(divergence)
    null, _ = as_finite(null_divergence)
    if value is None:
        return DriftVerdict(
            status="insufficient_data",
            divergence=None,
            null_divergence=null,
            requires_human_decision=True,
            reason=f"divergence {problem}",
        )
    if (
        policy.insufficient_data_when_null_exceeds_alert
        and null is not None
        and null > policy.alert_threshold
    ):
        return DriftVerdict(
            status="insufficient_data",
            divergence=value,
            null_divergence=null,
            requires_human_decision=True,
            reason=f"no-drift null {null:.3f} > alert threshold {policy.alert_threshold:g}: too few samples",
        )
    if value > policy.hard_block_threshold:
        status, reason = (
            "block",
            f"JS {value:.3f} > hard block {policy.hard_block_threshold:g}: release paused",
        )
    elif value > policy.alert_threshold:
        status, reason = "alert", f"JS {value:.3f} > alert {policy.alert_threshold:g}: extended validation"
    else:
        status, reason = "ok", f"JS {value:.3f} <= alert {policy.alert_threshold:g}"
    return DriftVerdict(
        status=status,
        divergence=value,
        null_divergence=null,
        requires_human_decision=status != "ok",
        reason=reason,
    )
