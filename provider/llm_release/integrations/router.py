"""Traffic routing between model builds: weights for live traffic and an optional shadow target.

The rollout and rollback tasks only need four calls, captured by :class:`TrafficRouter`; the sandbox gateway
(:class:`SandboxGatewayRouter`) is one implementation, a service mesh or API gateway would be another.
Writes are validated before they are sent and verified by reading back, so a retried Airflow task converges
on the requested state instead of trusting a reply it may never have received.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)


class RouterError(RuntimeError):
    """A routing call failed or the router ended up in a state other than the one requested."""


@runtime_checkable
class TrafficRouter(Protocol):
    """What the pipeline needs from whatever splits live traffic between builds."""

    def get_weights(self) -> dict[str, int]: ...

    def set_weights(self, weights: Mapping[str, int]) -> dict[str, int]: ...

    def get_shadow(self) -> str | None: ...

    def set_shadow(self, target: str | None) -> str | None: ...


def validate_weights(weights: Mapping[str, int]) -> dict[str, int]:
    """Integers 0..100 per backend summing to 100; raises ValueError naming the offending backend."""
    if not isinstance(weights, Mapping) or not weights:
        raise ValueError("weights must be a non-empty mapping of backend name to integer percent")
    clean: dict[str, int] = {}
    for name, value in weights.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"backend name {name!r} must be a non-empty string")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"weight for backend {name!r} must be an integer percent, got {value!r}")
        if not 0 <= value <= 100:
            raise ValueError(f"weight for backend {name!r} must be within 0..100, got {value}")
        clean[name] = value
    total = sum(clean.values())
    if total != 100:
        raise ValueError(f"weights must sum to 100, got {total} ({clean})")
    return clean


def _nonzero(weights: Mapping[str, int]) -> dict[str, int]:
    return {k: v for k, v in weights.items() if v}


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return True
    return isinstance(exc, _Unavailable)


class _Unavailable(Exception):
    """HTTP 502/503/504 from the router: the write may not have happened; safe to retry (idempotent)."""


class SandboxGatewayRouter:
    """:class:`TrafficRouter` over the sandbox gateway's ``/admin/weights`` and ``/admin/shadow`` API."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10.0,
        *,
        max_retries: int = 3,
        backoff_s: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._transport = transport

    def __repr__(self) -> str:
        return f"SandboxGatewayRouter(base_url={self.base_url!r})"

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        url = f"{self.base_url}{path}"

        def call() -> httpx.Response:
            with httpx.Client(timeout=self.timeout_s, transport=self._transport) as client:
                resp = client.request(method, url, json=body if method == "PUT" else None)
            if resp.status_code in (502, 503, 504):
                raise _Unavailable(f"HTTP {resp.status_code}: {_reason(resp)}")
            return resp

        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff_s, max=5.0),
            retry=retry_if_exception(_is_retryable),
            reraise=True,
        )
        try:
            resp = retrying(call)
        except (httpx.HTTPError, _Unavailable) as exc:
            raise RouterError(
                f"{method} {url} failed after {self.max_retries + 1} attempts: {type(exc).__name__}: {exc}"
            ) from exc
        if not resp.is_success:
            raise RouterError(f"{method} {url} -> HTTP {resp.status_code}: {_reason(resp)}")
        try:
            return resp.json()
        except ValueError as exc:
            raise RouterError(f"{method} {url} returned a non-JSON body: {resp.text[:200]!r}") from exc

    def get_weights(self) -> dict[str, int]:
        data = self._request("GET", "/admin/weights")
        weights = data.get("weights") if isinstance(data, dict) else None
        if not isinstance(weights, dict):
            raise RouterError(f"GET {self.base_url}/admin/weights: no object field 'weights' in {data!r}")
        try:
            return validate_weights(weights)
        except ValueError as exc:
            raise RouterError(f"GET {self.base_url}/admin/weights returned invalid weights: {exc}") from exc

    def set_weights(self, weights: Mapping[str, int]) -> dict[str, int]:
        """Send validated weights, then read them back; returns the router's full weight table."""
        wanted = validate_weights(weights)
        self._request("PUT", "/admin/weights", {"weights": wanted})
        actual = self.get_weights()
        if _nonzero(actual) != _nonzero(wanted):
            raise RouterError(f"{self.base_url}/admin/weights reads back {actual} after setting {wanted}")
        log.info("traffic weights at %s now %s", self.base_url, actual)
        return actual

    def get_shadow(self) -> str | None:
        data = self._request("GET", "/admin/shadow")
        if not isinstance(data, dict) or "target" not in data:
            raise RouterError(f"GET {self.base_url}/admin/shadow: reply has no field 'target': {data!r}")
        target = data["target"]
        if target is not None and not isinstance(target, str):
            raise RouterError(f"GET {self.base_url}/admin/shadow: 'target' not a string or null: {target!r}")
        return target

    def set_shadow(self, target: str | None) -> str | None:
        """Mirror live traffic to ``target`` (None stops mirroring); verified by reading back."""
        if target is not None and (not isinstance(target, str) or not target):
            raise ValueError(f"shadow target must be a backend name or None, got {target!r}")
        self._request("PUT", "/admin/shadow", {"target": target})
        actual = self.get_shadow()
        if actual != target:
            raise RouterError(f"{self.base_url}/admin/shadow reads back {actual!r} after setting {target!r}")
        log.info("shadow target at %s now %r", self.base_url, actual)
        return actual

    def backends(self) -> dict[str, dict[str, Any]]:
        data = self._request("GET", "/admin/backends")
        backends = data.get("backends") if isinstance(data, dict) else None
        if not isinstance(backends, dict):
            raise RouterError(f"GET {self.base_url}/admin/backends: reply has no object field 'backends'")
        return backends


def _reason(resp: httpx.Response) -> str:
    """The server's own explanation: FastAPI ``detail`` (string or validation list) or the body text."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:300] or resp.reason_phrase
    if isinstance(data, dict):
        detail = data.get("detail", data.get("error", data))
        if isinstance(detail, list):
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(x) for x in item.get("loc", ()))
                    parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg", item)))
                else:
                    parts.append(str(item))
            return "; ".join(parts)
        return detail if isinstance(detail, str) else str(detail)
    return str(data)
