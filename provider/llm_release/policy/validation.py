"""Spec section 3: drift, bias, adversarial suites and the approval-routing table.

The offline-metric and performance tables are plain ``MetricThreshold`` lists on ``ReleasePolicy``;
the sections here have structure beyond a single threshold.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_release.policy._base import Fraction, GateThreshold, Identifier, Positive, StrictModel


class DriftPolicy(StrictModel):
    """Data drift between query-embedding distributions (spec section 3, DESIGN 'Drift')."""

    method: Literal["jensen_shannon"] = "jensen_shannon"
    log_base: Literal[2] = 2
    """Base 2 keeps the divergence in 0..1, which is the scale the thresholds are written in."""
    embedding: str = "sbert"
    window_days: Positive
    alert_threshold: Fraction
    """Above this: extended validation before stage 3, and a human decides whether to proceed."""
    hard_block_threshold: Fraction
    """Above this: release paused; the data team and the ML lead are notified."""
    cadence: str = "nightly"
    checked_at_stage: Literal["validation"] = "validation"
    notify_roles_on_block: list[Identifier] = []
    insufficient_data_when_null_exceeds_alert: bool = True
    """DESIGN: when the permutation null exceeds the alert threshold the result is 'insufficient data'."""

    @model_validator(mode="after")
    def _ordered(self) -> DriftPolicy:
        if not self.alert_threshold < self.hard_block_threshold:
            raise ValueError(
                f"alert_threshold ({self.alert_threshold}) must be below "
                f"hard_block_threshold ({self.hard_block_threshold})"
            )
        return self


class BiasPolicy(StrictModel):
    """Bias and fairness parity across demographic proxies in query text (spec section 3)."""

    proxies: list[Identifier] = Field(min_length=1)
    sentiment_max_disparity: Fraction
    escalation_max_excess_over_baseline: Fraction
    """Relative: a group's escalation rate may not exceed the baseline rate by more than this fraction."""
    length_max_disparity: Fraction
    tooling: str = "fairlearn"


class InjectionSuite(StrictModel):
    size: int = Field(ge=1)
    categories: list[Identifier] = Field(min_length=1)
    min_pass_rate: Fraction
    human_review_below: Fraction
    """Approval routing: a human reviews the adversarial results when resistance is below this."""

    @model_validator(mode="after")
    def _review_above_pass(self) -> InjectionSuite:
        if self.human_review_below < self.min_pass_rate:
            raise ValueError(
                f"human_review_below ({self.human_review_below}) must not be below "
                f"min_pass_rate ({self.min_pass_rate})"
            )
        return self


class PolicyProbeSuite(StrictModel):
    size: int = Field(ge=1)
    categories: list[Identifier] = Field(min_length=1)
    max_violations: int = Field(ge=0)


class PersonaSuite(StrictModel):
    size: int = Field(ge=1)
    min_pass_rate: Fraction


class ParaphraseSuite(StrictModel):
    variants_per_query: int = Field(ge=2)
    max_scs_variance: Fraction
    """Strict: the variance of SCS across paraphrases must be below this value."""


class AdversarialPolicy(StrictModel):
    """LLM-specific adversarial testing (spec section 3)."""

    prompt_injection: InjectionSuite
    policy_probes: PolicyProbeSuite
    persona: PersonaSuite
    paraphrase: ParaphraseSuite


class ApprovalRoute(StrictModel):
    """One row of the approval-routing table (spec section 3).

    ``human_required``: ``never`` (automated only), ``always``, or ``on_condition``: a human must review
    the result unless every check in ``human_review_unless`` passes. Unmeasured checks count as failed,
    so missing evidence always reaches a person.
    """

    gate: Identifier
    description: str = ""
    automated: bool
    human_required: Literal["never", "always", "on_condition"]
    human_review_unless: list[GateThreshold] = []
    reviewer_action: str = ""

    @model_validator(mode="after")
    def _condition_consistent(self) -> ApprovalRoute:
        if self.human_required == "on_condition" and not self.human_review_unless:
            raise ValueError("human_required 'on_condition' needs at least one human_review_unless check")
        if self.human_required != "on_condition" and self.human_review_unless:
            raise ValueError(
                f"human_review_unless is only meaningful with human_required 'on_condition' "
                f"(got {self.human_required!r})"
            )
        if not self.automated and self.human_required == "never":
            raise ValueError("a gate that is neither automated nor human-reviewed is never checked")
        return self
