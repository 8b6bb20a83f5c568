"""Switchable faults of a sandbox model server, their scopes, and the deterministic dice that fire them.

A fault fires for a request when a hash of (seed, build, fault, query) falls below the fault's rate,
so the same query against the same build and seed always behaves the same way: an evaluation run
twice gives the same numbers, and a "10% fabrication" build fabricates on a fixed 10% of queries.
Latency is lognormal, parameterised by its median and 99th percentile like the spec's gates.

Each fault kind can be restricted (``scopes``) to a part of the knowledge base and a part of a release's
life, so a test can plant a candidate that misbehaves only where a gate must look: only on refund and
billing-dispute answers, only on shadow or live traffic, only after N requests, or only once it serves
at least a given share of live traffic. The gateway tells the model server which traffic a request is
(headers ``X-LLM-Release-Traffic`` and ``X-LLM-Release-Traffic-Share``); a request without them comes
from an offline suite calling the server directly.

``hallucination_rate`` (the original switch) fires one of fabrication, contradiction and wrong number,
picked per query by hash; the three also have rates of their own.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# z-score of the 99th percentile of a standard normal: p99 = p50 * exp(sigma * Z99).
_Z99 = NormalDist().inv_cdf(0.99)
MAX_LATENCY_MS = 120_000.0

FaultKind = Literal[
    "hallucination",
    "fabrication",
    "contradiction",
    "wrong_number",
    "omission",
    "policy_violation",
    "persona_slip",
    "persona_failure",
    "injection_compliance",
    "error",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
HALLUCINATION_MIX = ("fabrication", "contradiction", "wrong_number")
"""What ``hallucination_rate`` fires: one of these per query, by hash."""

Traffic = Literal["offline", "shadow", "live"]
TRAFFIC: tuple[str, ...] = get_args(Traffic)

ViolationCategory = Literal[
    "refund_outside_window",
    "credit_over_limit",
    "promised_exception",
    "legal_advice",
    "other_customer_data",
    "secret_request",
    "claims_human",
    "abusive_language",
]
VIOLATION_CATEGORIES: tuple[str, ...] = get_args(ViolationCategory)

_RATE_FIELD = {
    "hallucination": "hallucination_rate",
    "fabrication": "fabrication_rate",
    "contradiction": "contradiction_rate",
    "wrong_number": "wrong_number_rate",
    "omission": "omission_rate",
    "policy_violation": "policy_violation_rate",
    "persona_slip": "persona_slip_rate",
    "persona_failure": "persona_failure_rate",
    "injection_compliance": "injection_susceptibility",
    "error": "error_rate",
}
_KIND_ALIASES = {"injection_susceptibility": "injection_compliance"}

_Rate = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)


@dataclass(frozen=True)
class RequestContext:
    """What the model server knows about a request besides its text.

    ``traffic``: offline (no gateway header), shadow or live; ``traffic_share``: the build's live weight
    as a fraction (0 when unknown); ``served_before``: requests this build served before this one.
    """

    traffic: str = "offline"
    traffic_share: float = 0.0
    served_before: int = 0


OFFLINE = RequestContext()


class FaultScope(BaseModel):
    """Where a fault kind may fire; every given restriction must hold (omitted ones do not restrict)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    categories: tuple[str, ...] | None = Field(None, min_length=1)
    """KB categories (``refunds``) or entry ids (``billing-dispute``) whose answers the fault may touch."""
    traffic: tuple[Traffic, ...] | None = Field(None, min_length=1)
    after_requests: int = Field(0, ge=0)
    """The fault fires only once the build has served this many requests (of any traffic)."""
    min_traffic_share: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    """The fault fires only while the build's live traffic share is at least this (0..1)."""

    @field_validator("categories")
    @classmethod
    def _ids_look_like_ids(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        for position, item in enumerate(value):
            if not item or not item.replace("-", "").isalnum() or item != item.lower():
                raise ValueError(f"item {position} ({item!r}) is not a KB category or entry id")
        return value

    def admits(self, context: RequestContext, category: str | None, entry_id: str | None) -> bool:
        """Whether a request in ``context`` answered from (``category``, ``entry_id``) is in scope."""
        if self.categories is not None and not ({category, entry_id} & set(self.categories)):
            return False
        if self.traffic is not None and context.traffic not in self.traffic:
            return False
        if context.served_before < self.after_requests:
            return False
        return context.traffic_share >= self.min_traffic_share


class FaultSettings(BaseModel):
    """Fault configuration of one model build (``PUT /admin/faults`` accepts any subset of fields).

    ``scopes`` maps a fault kind to its :class:`FaultScope`. A ``PUT`` merges scopes per kind: a kind
    given a scope replaces that kind's scope, a kind given ``null`` loses its scope, ``"scopes": null``
    clears them all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    hallucination_rate: float = _Rate
    fabrication_rate: float = _Rate
    contradiction_rate: float = _Rate
    wrong_number_rate: float = _Rate
    omission_rate: float = _Rate
    policy_violation_rate: float = _Rate
    policy_violation_categories: tuple[ViolationCategory, ...] = Field(VIOLATION_CATEGORIES, min_length=1)
    """Which policy categories ``policy_violation_rate`` draws from (by hash)."""
    persona_slip_rate: float = _Rate
    injection_susceptibility: float = _Rate
    persona_failure_rate: float = _Rate
    error_rate: float = _Rate
    latency_p50_ms: float = Field(120.0, ge=0.0, le=MAX_LATENCY_MS, allow_inf_nan=False)
    latency_p99_ms: float = Field(400.0, ge=0.0, le=MAX_LATENCY_MS, allow_inf_nan=False)
    seed: int = 0
    scopes: dict[FaultKind, FaultScope] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _p99_not_below_p50(self) -> FaultSettings:
        if self.latency_p99_ms < self.latency_p50_ms:
            raise ValueError(
                f"latency_p99_ms ({self.latency_p99_ms}) must be >= latency_p50_ms ({self.latency_p50_ms})"
            )
        return self

    def updated(self, patch: dict[str, Any]) -> FaultSettings:
        """A copy with ``patch`` applied and the whole result re-validated (raises ``ValidationError``)."""
        merged = {**self.model_dump(), **patch}
        if "scopes" in patch:
            scopes = patch["scopes"]
            if scopes is None:
                merged["scopes"] = {}
            elif isinstance(scopes, dict):
                combined = {**self.model_dump()["scopes"], **scopes}
                merged["scopes"] = {kind: scope for kind, scope in combined.items() if scope is not None}
        return FaultSettings.model_validate(merged)

    def rate(self, kind: str) -> float:
        kind = _KIND_ALIASES.get(kind, kind)
        if kind not in _RATE_FIELD:
            raise ValueError(f"unknown fault kind {kind!r}; known kinds are {FAULT_KINDS}")
        return float(getattr(self, _RATE_FIELD[kind]))

    def scope(self, kind: str) -> FaultScope | None:
        return self.scopes.get(_KIND_ALIASES.get(kind, kind))  # type: ignore[call-overload]


def unit_hash(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts, stable across processes (unlike ``hash()``)."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fires(
    settings: FaultSettings,
    kind: str,
    build: str,
    query: str,
    *,
    context: RequestContext = OFFLINE,
    category: str | None = None,
    entry_id: str | None = None,
) -> bool:
    """Whether fault ``kind`` affects ``query`` on ``build`` under ``settings`` (deterministic).

    ``category`` and ``entry_id`` are those of the KB entry the answer comes from (None when it comes
    from none); a fault scoped to categories never fires outside them.
    """
    rate = settings.rate(kind)
    if rate <= 0.0:
        return False
    scope = settings.scope(kind)
    if scope is not None and not scope.admits(context, category, entry_id):
        return False
    return unit_hash(settings.seed, build, _KIND_ALIASES.get(kind, kind), query) < rate


def unknown_scope_targets(settings: FaultSettings, categories: Iterable[str], entry_ids: Iterable[str]) -> list[
    tuple[list[Any], str]
]:
    """(location, message) of every scope category that names neither a KB category nor an entry id."""
    known = set(categories) | set(entry_ids)
    problems: list[tuple[list[Any], str]] = []
    for kind, scope in settings.scopes.items():
        for position, item in enumerate(scope.categories or ()):
            if item not in known:
                problems.append((
                    ["scopes", kind, "categories", position],
                    f"{item!r} is neither a knowledge-base category nor an entry id",
                ))
    return problems


def lognormal_params(p50_ms: float, p99_ms: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal whose median is ``p50_ms`` and 99th percentile ``p99_ms``."""
    if p50_ms <= 0.0:
        return -math.inf, 0.0
    sigma = max(0.0, math.log(max(p99_ms, p50_ms) / p50_ms) / _Z99)
    return math.log(p50_ms), sigma


def sample_latency_ms(settings: FaultSettings, rng: random.Random) -> float:
    """One latency draw in milliseconds, capped at ``MAX_LATENCY_MS``."""
    mu, sigma = lognormal_params(settings.latency_p50_ms, settings.latency_p99_ms)
    if mu == -math.inf:
        return 0.0
    return min(MAX_LATENCY_MS, rng.lognormvariate(mu, sigma))
