"""API gateway of the sandbox: weighted routing, shadow mirroring, samples and Prometheus metrics.

It plays the role of the production gateway the rollout drives: the pipeline sets traffic weights
and the shadow target through ``/admin``, Prometheus scrapes ``/metrics`` for the pause/rollback
triggers, and the shadow stage reads mirrored exchanges from ``/admin/samples``. Every response is
run through the policy checker (the spec's "real-time, every response" policy monitoring).

It must stay light (it shares two cores with Airflow): one pooled ``httpx.AsyncClient``, a bounded
ring buffer, regex-only per-response work, and a cap on in-flight shadow requests.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from llm_release.suites.policy_checker import is_escalation, violated_rules

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 8, 10)
MODES = ("live", "shadow")
DEFAULT_SAMPLE_CAPACITY = 20_000
MAX_SAMPLES_PAGE = 20_000


@dataclass
class Sample:
    """One recorded exchange (live or shadow), as served by ``/admin/samples``."""

    seq: int
    ts: float
    version: str
    mode: str
    query: str
    response: str | None
    latency_ms: float
    error: str | None
    status: int | None
    policy_violations: list[str] = field(default_factory=list)


class GatewayMetrics:
    """The gateway's Prometheus metrics in their own registry (several gateways can share a process)."""

    def __init__(self, backends: list[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("version", "mode")
        self.requests = Counter(
            "llm_gateway_requests", "Chat requests sent to a backend", labels, registry=self.registry
        )
        self.errors = Counter(
            "llm_gateway_errors",
            "Failed backend requests (upstream 5xx, timeouts, connection errors, unparseable replies)",
            labels,
            registry=self.registry,
        )
        self.duration = Histogram(
            "llm_gateway_request_duration_seconds",
            "Backend request duration",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.policy_violations = Counter(
            "llm_gateway_policy_violations",
            "Responses flagged by the sandbox policy checker",
            labels,
            registry=self.registry,
        )
        self.escalations = Counter(
            "llm_gateway_escalations",
            "Responses that hand off to a human agent",
            labels,
            registry=self.registry,
        )
        self.weight = Gauge(
            "llm_gateway_traffic_weight",
            "Live traffic weight in percent",
            ("version",),
            registry=self.registry,
        )
        self.shadow_dropped = Counter(
            "llm_gateway_shadow_dropped",
            "Mirrored requests skipped because too many shadow requests were in flight",
            ("version",),
            registry=self.registry,
        )
        # Create every series at zero so rate/delta computations see a baseline from the first scrape.
        for name in backends:
            for mode in MODES:
                for metric in (self.requests, self.errors, self.policy_violations, self.escalations):
                    metric.labels(version=name, mode=mode)
                self.duration.labels(version=name, mode=mode)
            self.shadow_dropped.labels(version=name)


class WeightsError(ValueError):
    """Invalid weights; the message names the backend or the problem."""


def validate_weights(raw: Any, backends: list[str]) -> dict[str, int]:
    """Integers 0..100 over known backends summing to 100; omitted backends get 0."""
    if not isinstance(raw, dict) or not raw:
        raise WeightsError("weights: expected a non-empty object of backend name -> integer percent")
    unknown = sorted(set(raw) - set(backends))
    if unknown:
        raise WeightsError(f"weights: unknown backend(s) {unknown}; known backends are {backends}")
    weights = dict.fromkeys(backends, 0)
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise WeightsError(f"weights.{name}: must be an integer between 0 and 100, got {value!r}")
        weights[name] = value
    total = sum(weights.values())
    if total != 100:
        raise WeightsError(f"weights: must sum to 100, got {total} ({weights})")
    return weights


class Gateway:
    """Routing state and the proxy logic behind the FastAPI app (kept separate to test without HTTP)."""

    def __init__(
        self,
        backends: Mapping[str, str],
        weights: Mapping[str, int] | None = None,
        shadow: str | None = None,
        *,
        sample_capacity: int = DEFAULT_SAMPLE_CAPACITY,
        timeout_s: float = 15.0,
        max_shadow_inflight: int = 64,
        seed: int | None = None,
    ) -> None:
        if not backends:
            raise ValueError("backends: at least one backend is required")
        self.backends = {name: url.rstrip("/") for name, url in backends.items()}
        names = list(self.backends)
        default = {name: (100 if i == 0 else 0) for i, name in enumerate(names)}
        if weights is None and "stable" in self.backends:
            default = {name: (100 if name == "stable" else 0) for name in names}
        self.weights = validate_weights(dict(weights) if weights is not None else default, names)
        self.shadow = self._check_shadow(shadow)
        self.metrics = GatewayMetrics(names)
        self._set_weight_gauges()
        self.samples: deque[Sample] = deque(maxlen=sample_capacity)
        self._seq = itertools.count(1)
        self._last_seq = 0
        self._rng = random.Random(seed)
        self.timeout_s = timeout_s
        self.max_shadow_inflight = max_shadow_inflight
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self.client: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ routing state
    def _check_shadow(self, target: Any) -> str | None:
        if target is not None and target not in self.backends:
            raise ValueError(f"target: unknown backend {target!r}; known backends are {list(self.backends)}")
        return target

    def _set_weight_gauges(self) -> None:
        for name, value in self.weights.items():
            self.metrics.weight.labels(version=name).set(value)

    def set_weights(self, raw: Any) -> dict[str, int]:
        self.weights = validate_weights(raw, list(self.backends))
        self._set_weight_gauges()
        log.info("gateway weights now %s", self.weights)
        return self.weights

    def set_shadow(self, target: Any) -> str | None:
        self.shadow = self._check_shadow(target)
        log.info("gateway shadow target now %r", self.shadow)
        return self.shadow

    def pick_backend(self) -> str:
        names = [name for name, weight in self.weights.items() if weight > 0]
        return self._rng.choices(names, weights=[self.weights[name] for name in names])[0]

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        if self.client is None:
            limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
            self.client = httpx.AsyncClient(timeout=self.timeout_s, limits=limits)

    async def close(self) -> None:
        for task in list(self._shadow_tasks):
            task.cancel()
        if self._shadow_tasks:
            await asyncio.gather(*self._shadow_tasks, return_exceptions=True)
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    # ------------------------------------------------------------------ proxying
    async def forward(self, name: str, body: bytes, query: str, mode: str) -> tuple[int, bytes]:
        """Send ``body`` to backend ``name``, record sample and metrics; return (status, body) to reply."""
        assert self.client is not None, "gateway not started"
        url = f"{self.backends[name]}/v1/chat/completions"
        labels = {"version": name, "mode": mode}
        self.metrics.requests.labels(**labels).inc()
        started = time.perf_counter()
        status: int | None = None
        text: str | None = None
        error: str | None = None
        reply_status, reply_body = 502, b""
        try:
            headers = {
                "content-type": "application/json",
                # tell the model server which traffic this is (its faults may be scoped to it)
                "X-LLM-Release-Traffic": mode,
                "X-LLM-Release-Traffic-Share": f"{self.weights.get(name, 0) / 100:g}",
            }
            upstream = await self.client.post(url, content=body, headers=headers)
            status, reply_status, reply_body = upstream.status_code, upstream.status_code, upstream.content
            if status >= 500:
                error = f"HTTP {status}: {_error_message(upstream.content)}"
            elif status == 200:
                text = _completion_text(upstream.content)
                if text is None:
                    error = "unparseable completion reply"
                    reply_status = 502
                    reply_body = _error_body("upstream returned an unparseable completion", "bad_gateway")
            else:
                error = f"HTTP {status}: {_error_message(upstream.content)}"
        except httpx.TimeoutException as exc:
            error = f"timeout after {self.timeout_s}s: {type(exc).__name__}"
            reply_status, reply_body = 504, _error_body(f"backend {name} timed out", "gateway_timeout")
        except httpx.HTTPError as exc:
            error = f"connection error: {type(exc).__name__}: {exc}"
            reply_status, reply_body = 502, _error_body(f"backend {name} unreachable", "bad_gateway")
        elapsed = time.perf_counter() - started
        self.metrics.duration.labels(**labels).observe(elapsed)
        upstream_failed = status is None or status >= 500 or (status == 200 and text is None)
        if upstream_failed:
            self.metrics.errors.labels(**labels).inc()
        violations: list[str] = []
        if text is not None:
            violations = violated_rules(query, text)
            if violations:
                self.metrics.policy_violations.labels(**labels).inc()
            if is_escalation(text):
                self.metrics.escalations.labels(**labels).inc()
        self._record(name, mode, query, text, elapsed * 1000.0, error, status, violations)
        return reply_status, reply_body

    def mirror(self, body: bytes, query: str) -> None:
        """Fire-and-forget copy of a live request to the shadow target (its answer is only recorded)."""
        target = self.shadow
        if target is None:
            return
        if len(self._shadow_tasks) >= self.max_shadow_inflight:
            self.metrics.shadow_dropped.labels(version=target).inc()
            return
        task = asyncio.create_task(self._shadow_call(target, body, query))
        self._shadow_tasks.add(task)
        task.add_done_callback(self._shadow_tasks.discard)

    async def _shadow_call(self, target: str, body: bytes, query: str) -> None:
        try:
            await self.forward(target, body, query, "shadow")
        except asyncio.CancelledError:
            raise
        except Exception:  # a shadow failure must never surface anywhere but the logs and metrics
            log.exception("shadow request to %s failed", target)

    # ------------------------------------------------------------------ samples
    def _record(
        self,
        version: str,
        mode: str,
        query: str,
        response: str | None,
        latency_ms: float,
        error: str | None,
        status: int | None,
        violations: list[str],
    ) -> None:
        seq = next(self._seq)
        self._last_seq = seq
        sample = Sample(
            seq, time.time(), version, mode, query, response, round(latency_ms, 3), error, status, violations
        )
        self.samples.append(sample)

    def query_samples(
        self, version: str | None, mode: str | None, since: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Samples with ``seq >= since`` matching the filters, oldest first, and the cursor for next time.

        The cursor is one past the last returned sample when the page is full, otherwise one past the
        newest sample in the buffer (everything up to there has been scanned). A cursor from the future
        (``since`` beyond the newest sample) is clamped to "now": asking with a huge ``since`` is how a
        client learns where new samples will start without downloading old ones.
        """
        out: list[dict[str, Any]] = []
        ring = self.samples
        if since > self._last_seq + 1:
            return out, self._last_seq + 1
        if not ring:
            return out, max(since, self._last_seq + 1)
        start = max(0, since - ring[0].seq)
        for sample in itertools.islice(ring, start, None):
            if sample.seq < since:
                continue
            if (version is None or sample.version == version) and (mode is None or sample.mode == mode):
                out.append(asdict(sample))
                if len(out) >= limit:
                    return out, sample.seq + 1
        return out, max(since, self._last_seq + 1)


def _completion_text(content: bytes) -> str | None:
    try:
        data = json.loads(content)
        text = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return text if isinstance(text, str) else None


def _error_message(content: bytes) -> str:
    try:
        data = json.loads(content)
    except ValueError:
        return content[:200].decode("utf-8", "replace")
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and "message" in error:
            return str(error["message"])[:200]
        if "detail" in data:
            return str(data["detail"])[:200]
    return str(data)[:200]


def _error_body(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": "server_error", "code": code}}).encode()


def _query_of(payload: Any) -> str | None:
    """The last user message of an OpenAI chat request, or None if the payload is not one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        return None
    for message in reversed(payload["messages"]):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        if isinstance(message.get("content"), str) and message["content"]:
            return message["content"]
    return None


def create_gateway_app(
    backends: Mapping[str, str],
    weights: Mapping[str, int] | None = None,
    shadow: str | None = None,
    **options: Any,
) -> FastAPI:
    """The gateway app; ``options`` go to :class:`Gateway` (sample_capacity, timeout_s, seed...)."""
    gateway = Gateway(backends, weights, shadow, **options)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.close()

    app = FastAPI(title="Northwind sandbox gateway", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.gateway = gateway

    def problem(detail: str, status: int = 422) -> JSONResponse:
        return JSONResponse(status_code=status, content={"detail": detail})

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "backends": list(gateway.backends)}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = await request.body()
        try:
            payload = json.loads(body)
        except ValueError:
            return problem("body: not valid JSON")
        query = _query_of(payload)
        if query is None:
            return problem("messages: expected a list with at least one message with role 'user' and text")
        name = gateway.pick_backend()
        gateway.mirror(body, query)
        status, content = await gateway.forward(name, body, query, "live")
        return Response(
            content=content, status_code=status, media_type="application/json", headers={"x-served-by": name}
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(gateway.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/admin/weights")
    async def get_weights() -> dict[str, Any]:
        return {"weights": gateway.weights}

    @app.put("/admin/weights")
    async def put_weights(request: Request) -> Any:
        try:
            payload = await request.json()
        except ValueError:
            return problem("body: not valid JSON")
        if not isinstance(payload, dict) or set(payload) != {"weights"}:
            return problem('body: expected {"weights": {"<backend>": <0..100>, ...}}')
        try:
            return {"weights": gateway.set_weights(payload["weights"])}
        except WeightsError as exc:
            return problem(str(exc))

    @app.get("/admin/shadow")
    async def get_shadow() -> dict[str, Any]:
        return {"target": gateway.shadow}

    @app.put("/admin/shadow")
    async def put_shadow(request: Request) -> Any:
        try:
            payload = await request.json()
        except ValueError:
            return problem("body: not valid JSON")
        if not isinstance(payload, dict) or set(payload) != {"target"}:
            return problem('body: expected {"target": "<backend>"} or {"target": null}')
        try:
            return {"target": gateway.set_shadow(payload["target"])}
        except ValueError as exc:
            return problem(str(exc))

    @app.get("/admin/samples")
    async def samples(
        version: str | None = None,
        mode: str | None = Query(None, pattern="^(live|shadow)$"),
        since: int = Query(0, ge=0),
        limit: int = Query(1000, ge=1, le=MAX_SAMPLES_PAGE),
    ) -> Any:
        if version is not None and version not in gateway.backends:
            known = list(gateway.backends)
            return problem(f"version: unknown backend {version!r}; known backends are {known}")
        page, cursor = gateway.query_samples(version, mode, since, limit)
        return {"samples": page, "next": cursor}

    @app.get("/admin/backends")
    async def get_backends() -> dict[str, Any]:
        return {"backends": {name: {"url": url} for name, url in gateway.backends.items()}}

    return app
