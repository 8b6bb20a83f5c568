"""Small helpers the suites share: fail-closed rates and latency percentiles, and client calls.

NaN is the suites' "not measured" value: a rate over zero items or a percentile over zero successful
calls is NaN, never 0 or 1, so a gate comparing it to a threshold fails closed (every comparison with
NaN is false) instead of passing on missing data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from llm_release.suites.types import ChatClient, Completion

NAN = float("nan")


def rate(numerator: int | float, denominator: int | float) -> float:
    """numerator / denominator, NaN when the denominator is 0."""
    return float(numerator) / float(denominator) if denominator else NAN


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean, NaN for no values."""
    return float(np.mean(values)) if len(values) else NAN


def latency_percentiles(latencies_ms: Sequence[float], prefix: str = "latency") -> dict[str, float]:
    """``{prefix}_p50_ms``, ``_p95_ms``, ``_p99_ms`` (numpy linear percentiles); NaN when empty."""
    values = [float(v) for v in latencies_ms if v is not None and math.isfinite(float(v))]
    if not values:
        return {f"{prefix}_p50_ms": NAN, f"{prefix}_p95_ms": NAN, f"{prefix}_p99_ms": NAN}
    p50, p95, p99 = np.percentile(np.asarray(values), [50, 95, 99])
    return {f"{prefix}_p50_ms": float(p50), f"{prefix}_p95_ms": float(p95), f"{prefix}_p99_ms": float(p99)}


def call_client(client: ChatClient, prompts: Sequence[str]) -> list[Completion]:
    """``client.complete_batch`` with the contract checked: one ``Completion`` per prompt, in order.

    A client that raises is treated as failing every prompt (fail closed, with the reason recorded);
    a client that returns the wrong number of answers is a bug and raises ``ValueError``.
    """
    prompts = list(prompts)
    try:
        completions = list(client.complete_batch(prompts))
    except Exception as exc:  # the client is outside our control: record, don't crash the suite
        reason = f"client raised {type(exc).__name__}: {exc}"
        return [Completion(prompt=p, text=None, latency_ms=NAN, error=reason) for p in prompts]
    if len(completions) != len(prompts):
        raise ValueError(f"client returned {len(completions)} completions for {len(prompts)} prompts")
    for index, completion in enumerate(completions):
        if not isinstance(completion, Completion):
            raise TypeError(f"client returned {type(completion).__name__} at position {index}, "
                            "expected Completion")
    return completions


def attempt_counts(completions: Sequence[Completion]) -> tuple[int, int]:
    """(attempts, failed attempts) over ``completions``: the denominator and numerator of an error rate.

    A retried call is several requests to the model, and each failure among them is a failure the
    model really produced, even when a later retry succeeded (DESIGN: "Measurement clients count every
    attempt"). A completion that does not record its failed attempts (a client that does not retry)
    counts as one attempt, failed when the completion failed; a failed completion is never counted
    as having had fewer failures than its final one.
    """
    attempts = failed = 0
    for completion in completions:
        n_attempts = max(1, int(completion.attempts))
        n_failed = len(completion.failed_attempts)
        if not completion.ok:
            n_failed = max(n_failed, 1)
        attempts += max(n_attempts, n_failed)
        failed += n_failed
    return attempts, failed
