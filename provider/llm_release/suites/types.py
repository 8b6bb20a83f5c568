"""Value types shared by the measurement suites and the clients that feed them.

They live here, in the suites layer, so suites never import an integration: an integration
(the OpenAI-compatible endpoint, the sandbox) implements ``ChatClient`` and returns ``Completion``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Completion:
    """One model answer, or the reason there is none.

    ``text`` is None exactly when the call failed; ``error`` then says why (timeout, HTTP 503, bad JSON...).

    ``latency_ms`` is the wall time of the whole call as its caller saw it: from the first send to the
    final outcome, including failed attempts and the back-off waits between them. A client that retries
    must not report only its last, lucky attempt: that is the latency the user waited for.

    ``attempts`` counts every request sent for this call (1 when it was not retried) and
    ``failed_attempts`` holds the error of every attempt that failed, retried or final, in order. A
    measurement counts these, not the final outcome alone (DESIGN: "Measurement clients count every
    attempt"): a call that succeeded on its third try had two failures the server really produced.
    Clients that do not retry keep the defaults (one attempt; its error, if any, is ``error``).
    """

    prompt: str
    text: str | None
    latency_ms: float
    error: str | None = None
    status_code: int | None = None
    attempts: int = 1
    failed_attempts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@dataclass(frozen=True)
class ColdStart:
    """The first request after a scale-up (spec section 3: cold-start latency <= 6,000 ms).

    ``cold_start_ms`` is None when the cold start was not measured (the endpoint has no scale-up hook,
    the scale-up failed, or the first request failed); ``detail`` says which. None is "no data": a gate
    treats it as a failure, and it is never reported as 0.
    """

    cold_start_ms: float | None
    detail: str
    scale_up_url: str | None = None
    completion: Completion | None = None

    @property
    def metrics(self) -> dict[str, float | None]:
        """``{"cold_start_ms": value}`` under the metric name the performance gate reads."""
        return {"cold_start_ms": self.cold_start_ms}


@runtime_checkable
class ChatClient(Protocol):
    """Anything that can answer a batch of single-turn user prompts, in order."""

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]: ...
