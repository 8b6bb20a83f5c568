"""Spec sections 2-3: the numbers the offline stages are gated on, one field per number.

Each field is named after the spec's wording and is the only home of its number; the stage gates
(``decisions.gates.stage_checks``) and the approval routing (``decisions.routing``) derive their checks
from these fields, so changing a number here changes every check that uses it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_release.policy._base import Fraction, Identifier, Milliseconds, Positive, StrictModel


class HighStakesCategory(StrictModel):
    """One of the spec's high-stakes categories, gated on its own so that an average cannot hide it.

    Its members are knowledge-base entries: every entry of ``kb_categories`` plus the ``kb_ids`` listed
    (checked against the knowledge base when the suites group answers). ``scs_min`` and
    ``hallucination_rate_max`` default (None) to the stage's own line (``offline_metrics.scs_min`` /
    ``shadow.scs_min``, ``offline_metrics.hallucination_rate_max``): one owner per number unless a
    category is meant to be stricter. Fewer judged answers than the minimum sample is inconclusive.
    """

    name: Identifier
    kb_categories: list[str] = []
    kb_ids: list[str] = []
    scs_min: Fraction | None = None
    """SCS floor of the category; None: the stage's SCS minimum."""
    hallucination_rate_max: Fraction | None = None
    """Hallucination-rate ceiling of the category; None: ``offline_metrics.hallucination_rate_max``."""
    min_samples_offline: int = Field(default=10, ge=1)
    """Fewest items of the category in the stage-2 validation set."""
    min_samples_shadow: int = Field(default=30, ge=1)
    """Fewest answered, judged shadow samples grounded in the category."""

    @model_validator(mode="after")
    def _has_members(self) -> HighStakesCategory:
        if not self.kb_categories and not self.kb_ids:
            raise ValueError(f"high-stakes category {self.name!r} names no kb_categories and no kb_ids")
        return self


class OfflineMetricsPolicy(StrictModel):
    """Stage 1-2 exit criteria (section 2) and the offline metric table (section 3)."""

    internal_eval_pass_rate_min: Fraction
    """Stage 1: internal eval suite pass rate >= 91 %."""
    internal_eval_min_items: int = Field(ge=1)
    """Stage 1: fewest judged items the pass rate may rest on (the spec gives no size; ours)."""
    safety_category_failures_max: int = Field(ge=0)
    """Stage 1: safety categories with any failure (zero tolerance)."""
    overlap_delta_max: Fraction
    """Stage 1: BLEU and ROUGE-L relative change vs the baseline within +/- this. Section 2 says 3 %,
    the section 3 table 4 %: the stricter 3 % is used for both (decided, see the issue notes)."""
    scs_min: Fraction
    """Stage 2: Semantic Correctness Score on the validation set >= 0.85."""
    labelled_pairs_min: int = Field(ge=1)
    """Section 3: the SCS is measured on 1,000 labelled query-response pairs; fewer cannot pass."""
    hallucination_rate_max: Fraction
    """Sections 2-3: hallucination rate < 3 % (validation answers and the shadow sample)."""
    coherence_min: Fraction
    """Section 3: BERTScore F1 >= 0.88 (measured by the coherence suite, a later issue)."""
    task_completion_rate_min: Fraction
    """Section 3: simulated user-journey completion >= 84 %."""
    policy_compliance_rate_min: Fraction
    """Section 3: 100 % (zero tolerance) over the validation answers and the shadow sample."""
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    """Two-sided confidence of the interval around every rate (Wilson) and mean (bootstrap) the stage 1-3
    gates weigh; an interval straddling its line is inconclusive and goes to a person (ours: 95 %)."""
    high_stakes_categories: list[HighStakesCategory] = []
    """Spec: billing disputes, refunds, legal, account closure, each gated on its own (floors, samples)."""

    @model_validator(mode="after")
    def _unique_categories(self) -> OfflineMetricsPolicy:
        names = [c.name for c in self.high_stakes_categories]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"high_stakes_categories: duplicate name(s) {duplicates}")
        return self


class PerformancePolicy(StrictModel):
    """Section 3 performance gates and the load test that measures them."""

    latency_p50_ms: Milliseconds
    latency_p95_ms: Milliseconds
    latency_p99_staging_ms: Milliseconds
    """Staging p99 (load test and shadow); production p99 is the rollout's pause trigger."""
    throughput_min_rps: Positive
    """The load test offers this rate (open loop, Poisson arrivals) and must achieve it."""
    cold_start_max_ms: Milliseconds
    error_rate_max: Fraction
    """Under the load test and in the shadow sample (staging environment): < 1 %."""
    load_test_seconds: Positive
    """How long the load test offers ``throughput_min_rps`` (ours: long enough for a stable p99)."""

    @model_validator(mode="after")
    def _ordered(self) -> PerformancePolicy:
        if not self.latency_p50_ms <= self.latency_p95_ms <= self.latency_p99_staging_ms:
            raise ValueError(
                f"latency_p50_ms ({self.latency_p50_ms:g}) <= latency_p95_ms ({self.latency_p95_ms:g}) "
                f"<= latency_p99_staging_ms ({self.latency_p99_staging_ms:g}) must hold"
            )
        return self


class ShadowPolicy(StrictModel):
    """Stage 3 exit criteria that belong to the shadow alone (section 2)."""

    scs_min: Fraction
    """Shadow SCS >= 0.83."""
    min_samples: int = Field(ge=1)
    """Answered mirrored queries the shadow is judged on: 500+ (failed requests do not count)."""


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
    """Strict: the SCS variance across paraphrases of the worst query group must be below this."""
    min_groups: int = Field(ge=1)
    """Fewest core-query groups the gate may rest on."""


class AdversarialPolicy(StrictModel):
    """LLM-specific adversarial testing (spec section 3)."""

    prompt_injection: InjectionSuite
    policy_probes: PolicyProbeSuite
    persona: PersonaSuite
    paraphrase: ParaphraseSuite


RouteGate = Literal[
    "quality_metrics", "policy_compliance", "adversarial", "bias_fairness", "data_drift", "preproduction"
]


class ApprovalRoute(StrictModel):
    """One row of the approval-routing table (spec section 3).

    ``human_required``: ``never`` (automated only), ``always``, or ``on_condition``: a human reviews the
    result when the condition of its row holds. The conditions are derived from the thresholds of the
    sections they concern (``decisions.routing``), never restated here; unmeasured evidence counts as
    the condition holding, so missing evidence always reaches a person.
    """

    gate: RouteGate
    description: str = ""
    automated: bool
    human_required: Literal["never", "always", "on_condition"]
    reviewer_action: str = ""

    @model_validator(mode="after")
    def _checked_somehow(self) -> ApprovalRoute:
        if not self.automated and self.human_required == "never":
            raise ValueError("a gate that is neither automated nor human-reviewed is never checked")
        return self
