"""Approval routing (spec section 3): which automated results need a human before the gate opens.

Two reasons send a result to a person: the section-3 routing table (stage 2's results:
``required_reviews``), and, at every gated stage, a gate verdict that is "inconclusive" (an interval
straddling its line, a category with too few samples: ``gate_review``). ``review_requirements`` is both
for one stage. A reviewer's Approve opens the gate, Reject takes the rejection path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from llm_release.decisions.gates import CheckResult, GateVerdict, check_one
from llm_release.policy import GateThreshold, ReleasePolicy


class ReviewRequirement(BaseModel):
    model_config = ConfigDict(frozen=True)

    gate: str
    reason: str
    reviewer_action: str
    checks: list[CheckResult]


def route_conditions(policy: ReleasePolicy, gate: str) -> list[GateThreshold]:
    """The checks a routed result must pass to skip human review, from the fields that own the numbers.

    Section 3: policy compliance is reviewed on any failure; adversarial results when injection
    resistance is below ``adversarial.prompt_injection.human_review_below`` or when a paraphrase group is
    over ``adversarial.paraphrase.max_scs_variance`` on a single deviating variant (inconclusive; two or
    more fail the gate); bias when any disparity
    exceeds its limit; drift above ``drift.alert_threshold`` (an unmeasured divergence, i.e. too little
    data, counts as above it).
    """
    o, b, adv = policy.offline_metrics, policy.bias, policy.adversarial
    conditions: dict[str, list[GateThreshold]] = {
        "policy_compliance": [
            GateThreshold(metric="policy_compliance_rate", op=">=", value=o.policy_compliance_rate_min,
                          source="offline_metrics.policy_compliance_rate_min", description="any failure detected"),
            GateThreshold(metric="policy_probe_violations", op="<=", value=adv.policy_probes.max_violations,
                          source="adversarial.policy_probes.max_violations", description="any probe violation"),
        ],
        "adversarial": [
            GateThreshold(metric="injection_resistance", op=">=", value=adv.prompt_injection.human_review_below,
                          source="adversarial.prompt_injection.human_review_below"),
            GateThreshold(metric="paraphrase_scs_variance_max", op="<", value=adv.paraphrase.max_scs_variance,
                          source="adversarial.paraphrase.max_scs_variance",
                          description="a paraphrase group over the line on a single variant (a person looks)"),
        ],
        "bias_fairness": [
            GateThreshold(metric="bias_sentiment_disparity", op="<=", value=b.sentiment_max_disparity,
                          source="bias.sentiment_max_disparity"),
            GateThreshold(metric="bias_escalation_excess", op="<=", value=b.escalation_max_excess_over_baseline,
                          source="bias.escalation_max_excess_over_baseline"),
            GateThreshold(metric="bias_length_disparity", op="<=", value=b.length_max_disparity,
                          source="bias.length_max_disparity"),
        ],
        "data_drift": [
            GateThreshold(metric="drift_js_divergence", op="<=", value=policy.drift.alert_threshold,
                          source="drift.alert_threshold", description="drift above the alert threshold"),
        ],
    }
    return conditions.get(gate, [])


def required_reviews(
    policy: ReleasePolicy, measurements: Mapping[str, Any], gates: Sequence[str] | None = None
) -> list[ReviewRequirement]:
    """Routes (optionally only those named in ``gates``) whose results must be reviewed by a person.

    ``always`` routes other than the stage-4 gate (which has its own approvals) always need review;
    ``on_condition`` routes need review when any derived check fails or is unmeasured (missing evidence
    goes to a person, never silently through).
    """
    needed: list[ReviewRequirement] = []
    for route in policy.approval_routing:
        if gates is not None and route.gate not in gates:
            continue
        if route.gate == "preproduction":
            continue  # stage 4 is always a human gate: its approvals are tasks of their own
        if route.human_required == "always":
            needed.append(
                ReviewRequirement(
                    gate=route.gate,
                    reason="always reviewed by a human",
                    reviewer_action=route.reviewer_action,
                    checks=[],
                )
            )
        elif route.human_required == "on_condition":
            checks = [check_one(t, measurements.get(t.metric)) for t in route_conditions(policy, route.gate)]
            failed = [c for c in checks if not c.passed]
            if failed:
                needed.append(
                    ReviewRequirement(
                        gate=route.gate,
                        reason="; ".join(c.reason for c in failed),
                        reviewer_action=route.reviewer_action,
                        checks=checks,
                    )
                )
    return needed


ROUTING_TABLE_STAGE = "validation"
"""The section-3 approval-routing table concerns stage 2's results."""

INCONCLUSIVE_ACTION = (
    "The gate could not decide: the evidence below (value, n, interval) straddles a line or rests on too "
    "few samples. Approve to open the gate on this evidence; Reject to reject the candidate."
)


def gate_review(stage: str, verdict: GateVerdict) -> ReviewRequirement | None:
    """A review when the gate is inconclusive; None when it passed. A failed gate never reaches routing
    (it rejects), so routing a failed verdict is an error, not a review."""
    if verdict.outcome == "fail":
        raise ValueError(f"gate {stage!r} failed: a failed gate rejects, it is not routed to a review")
    if verdict.outcome == "pass":
        return None
    return ReviewRequirement(
        gate=f"{stage}_gate",
        reason="inconclusive: " + "; ".join(c.reason for c in verdict.inconclusive),
        reviewer_action=INCONCLUSIVE_ACTION,
        checks=verdict.inconclusive,
    )


def review_requirements(
    policy: ReleasePolicy, stage: str, verdict: GateVerdict, measurements: Mapping[str, Any]
) -> list[ReviewRequirement]:
    """Every review the result of ``stage`` needs: an inconclusive gate (any stage), and the routing
    table's conditions for stage 2."""
    needed = [r for r in [gate_review(stage, verdict)] if r is not None]
    if stage == ROUTING_TABLE_STAGE:
        needed += required_reviews(policy, measurements)
    return needed
