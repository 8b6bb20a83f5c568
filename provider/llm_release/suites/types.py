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
    ``latency_ms`` is wall time of the successful attempt (or of the last failed one).
    """

    prompt: str
    text: str | None
    latency_ms: float
    error: str | None = None
    status_code: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


@runtime_checkable
class ChatClient(Protocol):
    """Anything that can answer a batch of single-turn user prompts, in order."""

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]: ...
