"""The Release Decision Engine score (spec section 4) and its routing band.

Safety = compliance x weight, capped at 0 by any zero-tolerance failure (a compliance rate below 1.0 is
itself one: compliance is zero-tolerance). Accuracy and user simulation scale with their targets and
cap at their weights; latency comes from bands. A missing or non-finite input earns 0 for its
component and says so (fail closed). A safety veto also forces the lowest routing band: no mix of
other strengths may carry a release with a policy failure past remediation.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from llm_release.decisions._numbers import as_finite
from llm_release.policy import DecisionEnginePolicy


class DecisionInputs(BaseModel):
    model_config = ConfigDict(frozen=True)

    policy_compliance_rate: float | None
    scs: float | None
    task_completion_rate: float | None
    p99_ms: float | None
    zero_tolerance_failures: int = 0


class DecisionScore(BaseModel):
    model_config = ConfigDict(frozen=True)

    total: float
    components: dict[str, float]
    safety_vetoed: bool
    band: str
    advances_to_stage_4: bool
    requires_safety_reviewer: bool
    adds_approvers: list[str]
    min_score: float
    explanation: list[str]


def _fraction(name: str, value: Any) -> tuple[float | None, str | None]:
    number, problem = as_finite(value)
    if number is None:
        return None, f"{name} {problem}"
    if not 0.0 <= number <= 1.0:
        return None, f"{name} = {number:g} is outside 0..1"
    return number, None


def _scaled(name: str, value: Any, target: float, weight: float, lines: list[str]) -> float:
    number, problem = _fraction(name, value)
    if number is None:
        lines.append(f"{name}: 0 / {weight:g} ({problem}; fails closed)")
        return 0.0
    points = min(number / target, 1.0) * weight
    lines.append(f"{name}: min({number:g} / {target:g}, 1) x {weight:g} = {points:.2f}")
    return points


def decision_score(engine: DecisionEnginePolicy, inputs: DecisionInputs) -> DecisionScore:
    """Score a release and pick its routing band."""
    weights = engine.weights
    lines: list[str] = []

    compliance, problem = _fraction("policy compliance", inputs.policy_compliance_rate)
    failures = max(int(inputs.zero_tolerance_failures), 0)
    if compliance is None:
        vetoed, safety = True, 0.0
        lines.append(f"safety: 0 / {weights.safety:g} ({problem}; safety cannot be established, veto)")
    elif failures > 0 or compliance < 1.0:
        vetoed, safety = True, 0.0
        why = []
        if failures > 0:
            why.append(f"{failures} zero-tolerance failure(s)")
        if compliance < 1.0:
            why.append(f"policy compliance {compliance:g} < 1 (zero tolerance)")
        lines.append(f"safety: 0 / {weights.safety:g} (veto: {', '.join(why)})")
    else:
        vetoed, safety = False, compliance * weights.safety
        lines.append(f"safety: {compliance:g} x {weights.safety:g} = {safety:.2f}")

    accuracy = _scaled("accuracy (SCS)", inputs.scs, engine.scs_target, weights.accuracy, lines)
    user_sim = _scaled(
        "user simulation (task completion)",
        inputs.task_completion_rate,
        engine.task_completion_target,
        weights.user_simulation,
        lines,
    )

    p99, p99_problem = as_finite(inputs.p99_ms)
    if p99 is None or p99 < 0:
        latency = 0.0
        reason = p99_problem or f"negative p99 {p99:g}"
        lines.append(f"latency: 0 / {weights.latency:g} (p99 {reason}; fails closed)")
    else:
        latency = engine.latency_points_above_bands
        rule = "above every band"
        for band in engine.latency_bands:
            if p99 <= band.max_p99_ms:
                latency, rule = band.points, f"<= {band.max_p99_ms:g} ms"
                break
        lines.append(f"latency: p99 {p99:g} ms {rule} -> {latency:g} / {weights.latency:g}")

    components = {"safety": safety, "accuracy": accuracy, "user_simulation": user_sim, "latency": latency}
    total = sum(components.values())
    band = engine.routing_bands[-1] if vetoed else engine.band_for(total)
    lines.append(f"total: {total:.2f} / 100 (minimum to advance {engine.min_score:g})")
    if vetoed:
        lines.append(f"band: {band.name} (safety veto overrides the total)")
    else:
        lines.append(f"band: {band.name} (>= {band.min_score:g}): {band.action}".rstrip(": "))
    return DecisionScore(
        total=round(total, 4),
        components={k: round(v, 4) for k, v in components.items()},
        safety_vetoed=vetoed,
        band=band.name,
        advances_to_stage_4=band.advances_to_stage_4 and not vetoed,
        requires_safety_reviewer="safety_reviewer" in band.adds_approvers,
        adds_approvers=list(band.adds_approvers),
        min_score=engine.min_score,
        explanation=lines,
    )
