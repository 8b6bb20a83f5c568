"""Policy compliance: what a support answer may never do, and how the checker decides it did.

The spec's policy compliance is zero tolerance (one violation fails a gate or rolls a release back), so
the categories, the refund windows and the credit limit that define a violation live here, once, and
``suites.policy_checker`` reads them: the rules compare normalised amounts and durations with these
limits, and the classifier's per-category thresholds come from here too. Changing a number here changes
what the checker flags; nothing in the checker restates it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llm_release.policy._base import StrictModel

POLICY_CATEGORY_IDS: tuple[str, ...] = (
    "refund_outside_window",
    "credit_over_limit",
    "promised_exception",
    "legal_advice",
    "other_customer_data",
    "secret_request",
    "claims_human",
    "abusive_language",
    "system_prompt_disclosure",
)
"""Every category the checker has rules for. The first eight are issue 6's shared vocabulary (the
classifier covers those); ``system_prompt_disclosure`` is rule-only and keeps the injection probes'
leak detection (a reply that reads out the bot's hidden instructions)."""

CategoryId = Literal[
    "refund_outside_window",
    "credit_over_limit",
    "promised_exception",
    "legal_advice",
    "other_customer_data",
    "secret_request",
    "claims_human",
    "abusive_language",
    "system_prompt_disclosure",
]

Combination = Literal["rules_only", "rules_or_classifier"]
"""``rules_only``: only rule findings count. ``rules_or_classifier``: a sentence violates a category when
a rule fires or the classifier's probability reaches the category's threshold."""


class ComplianceCategory(StrictModel):
    """One policy-violation category: its id, the sentence a reviewer reads, and whether it is checked."""

    id: CategoryId
    description: str = Field(min_length=1)
    enabled: bool = True


class ComplianceClassifier(StrictModel):
    """The learned half of the checker (MiniLM embeddings + logistic regression per category)."""

    enabled: bool = True
    """False: rules only, whatever ``combination`` says (e.g. where MiniLM cannot be loaded)."""
    default_threshold: float = Field(gt=0.0, lt=1.0)
    """Probability at or above which the classifier flags a sentence, for categories not in ``thresholds``."""
    thresholds: dict[CategoryId, float] = {}
    """Per-category overrides of ``default_threshold`` (each strictly between 0 and 1)."""

    @model_validator(mode="after")
    def _thresholds_in_range(self) -> ComplianceClassifier:
        bad = {k: v for k, v in self.thresholds.items() if not 0.0 < v < 1.0}
        if bad:
            raise ValueError(f"thresholds must lie strictly between 0 and 1, got {bad}")
        return self


class CompliancePolicy(StrictModel):
    """Section 3 policy compliance: the categories and the limits that define a violation."""

    categories: list[ComplianceCategory] = Field(min_length=1)
    refund_window_days: int = Field(ge=1, le=365)
    """Monthly subscriptions and store purchases: refundable within this many days of purchase."""
    annual_refund_window_days: int = Field(ge=1, le=365)
    """Annual plans: refundable within this many days of purchase or renewal."""
    credit_limit_usd: float = Field(ge=0.0, le=100_000.0)
    """Support may grant an account credit up to this amount; more needs a manager's approval."""
    classifier: ComplianceClassifier
    combination: Combination = "rules_or_classifier"

    @model_validator(mode="after")
    def _one_entry_per_category(self) -> CompliancePolicy:
        ids = [category.id for category in self.categories]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"categories: each id may appear once, duplicated: {duplicates}")
        missing = [i for i in POLICY_CATEGORY_IDS if i not in ids]
        if missing:
            raise ValueError(f"categories: every category must be listed (set enabled: false to skip one), "
                             f"missing: {missing}")
        return self
