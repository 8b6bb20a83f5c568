"""Approvals (spec sections 2 and 9), version naming and audit retention (section 8), recovery (section 7)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from llm_release.policy._base import Fraction, Identifier, Positive, StrictModel


class ApproverRole(StrictModel):
    id: Identifier
    title: str


class ApprovalsPolicy(StrictModel):
    """Stage-4 sign-off. Who is added beyond ``always_required`` comes from the decision band
    (``RoutingBand.adds_approvers``) and the risk level (``RiskMitigations.additional_approvers``)."""

    roles: list[ApproverRole] = Field(min_length=1)
    always_required: list[Identifier] = Field(min_length=1)
    distinct_people: bool = True
    """One person cannot sign for two roles of the same release."""
    sla_hours: Positive

    @model_validator(mode="after")
    def _known_roles(self) -> ApprovalsPolicy:
        ids = [r.id for r in self.roles]
        if len(set(ids)) != len(ids):
            raise ValueError(f"role ids must be unique, got {ids}")
        unknown = [r for r in self.always_required if r not in ids]
        if unknown:
            raise ValueError(f"always_required names unknown roles {unknown}; roles: {ids}")
        return self

    def role_ids(self) -> list[str]:
        return [r.id for r in self.roles]

    def title(self, role_id: str) -> str:
        for role in self.roles:
            if role.id == role_id:
                return role.title
        raise ValueError(f"unknown approver role {role_id!r}; valid: {self.role_ids()}")


STAGE_KEYS = (
    "development",
    "validation",
    "staging",
    "preproduction",
    "production",
    "rejected",
    "rolled_back",
)


class VersioningPolicy(StrictModel):
    """``{type}-{YYYY}-W{WW}-{n}-{stage}`` with ISO year and week (spec section 8)."""

    template: str = "{type}-{year:04d}-W{week:02d}-{increment}-{stage}"
    stage_suffixes: dict[str, str] = {
        "development": "dev",
        "validation": "validation",
        "staging": "shadow",
        "preproduction": "preprod",
        "production": "prod",
        "rejected": "rejected",
        "rolled_back": "rolledback",
    }

    @model_validator(mode="after")
    def _suffixes(self) -> VersioningPolicy:
        missing = [k for k in STAGE_KEYS if k not in self.stage_suffixes]
        extra = [k for k in self.stage_suffixes if k not in STAGE_KEYS]
        if missing or extra:
            raise ValueError(
                f"stage_suffixes must have exactly the keys {list(STAGE_KEYS)} (missing {missing}, "
                f"unknown {extra})"
            )
        values = list(self.stage_suffixes.values())
        if len(set(values)) != len(values):
            raise ValueError(f"stage suffixes must be distinct, got {values}")
        bad = [v for v in values if not re.fullmatch(r"[a-z]+", v)]
        if bad:
            raise ValueError(f"stage suffixes must be lowercase letters only (parsable), got {bad}")
        for placeholder in ("{type}", "{year", "{week", "{increment}", "{stage}"):
            if placeholder not in self.template:
                raise ValueError(f"template must contain {placeholder}")
        return self


class RetentionPolicy(StrictModel):
    audit_months: int = Field(ge=1)
    previous_version_warm_hours: Positive
    retain_rejected: Literal[True] = True
    """Spec section 8: rejected versions are retained, never deleted (the registry only tags them)."""


class RecoveryStep(StrictModel):
    at_minutes: float = Field(ge=0)
    action: str


class RecoveryPolicy(StrictModel):
    """Fallback chain and recovery workflow time targets (spec section 7)."""

    previous_version_serve_seconds: Positive
    cached_top_intents: int = Field(ge=0)
    degradation_confidence_threshold: Fraction
    degradation_message: str
    cached_fallback_latency_ms: Positive
    """Section 5: cached-response fallback when latency exceeds this (cold-start mitigation)."""
    workflow: list[RecoveryStep] = Field(min_length=1)
    post_incident_requirements: list[str] = []

    @model_validator(mode="after")
    def _steps_ordered(self) -> RecoveryPolicy:
        times = [s.at_minutes for s in self.workflow]
        if times != sorted(times):
            raise ValueError(f"workflow steps must be in time order, got {times}")
        return self
