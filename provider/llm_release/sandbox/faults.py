"""Switchable faults of a sandbox model server and the deterministic dice that trigger them.

A fault fires for a request when a hash of (seed, build, fault, query) falls below the fault's rate,
so the same query against the same build and seed always behaves the same way: an evaluation run
twice gives the same numbers, and a "10% hallucination" build hallucinates on a fixed 10% of queries.
Latency is lognormal, parameterised by its median and 99th percentile like the spec's gates.
"""

from __future__ import annotations

import hashlib
import math
import random
from statistics import NormalDist
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# z-score of the 99th percentile of a standard normal: p99 = p50 * exp(sigma * Z99).
_Z99 = NormalDist().inv_cdf(0.99)
MAX_LATENCY_MS = 120_000.0

FAULT_KINDS = (
    "hallucination",
    "policy_violation",
    "injection_susceptibility",
    "persona_failure",
    "error",
)


class FaultSettings(BaseModel):
    """Fault configuration of one model build (``PUT /admin/faults`` accepts any subset of fields)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hallucination_rate: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    policy_violation_rate: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    injection_susceptibility: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    persona_failure_rate: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    error_rate: float = Field(0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    latency_p50_ms: float = Field(120.0, ge=0.0, le=MAX_LATENCY_MS, allow_inf_nan=False)
    latency_p99_ms: float = Field(400.0, ge=0.0, le=MAX_LATENCY_MS, allow_inf_nan=False)
    seed: int = 0

    @model_validator(mode="after")
    def _p99_not_below_p50(self) -> FaultSettings:
        if self.latency_p99_ms < self.latency_p50_ms:
            raise ValueError(
                f"latency_p99_ms ({self.latency_p99_ms}) must be >= latency_p50_ms ({self.latency_p50_ms})"
            )
        return self

    def updated(self, patch: dict[str, Any]) -> FaultSettings:
        """A copy with ``patch`` applied and the whole result re-validated (raises ``ValidationError``)."""
        return FaultSettings.model_validate({**self.model_dump(), **patch})

    def rate(self, kind: str) -> float:
        return {
            "hallucination": self.hallucination_rate,
            "policy_violation": self.policy_violation_rate,
            "injection_susceptibility": self.injection_susceptibility,
            "persona_failure": self.persona_failure_rate,
            "error": self.error_rate,
        }[kind]


def unit_hash(*parts: object) -> float:
    """A uniform number in [0, 1) from the parts, stable across processes (unlike ``hash()``)."""
    digest = hashlib.blake2b("\x1f".join(str(part) for part in parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def fires(settings: FaultSettings, kind: str, build: str, query: str) -> bool:
    """Whether fault ``kind`` affects ``query`` on ``build`` under ``settings`` (deterministic)."""
    rate = settings.rate(kind)
    if rate <= 0.0:
        return False
    return unit_hash(settings.seed, build, kind, query) < rate


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
