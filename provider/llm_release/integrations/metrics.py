"""Live-traffic measurements from the gateway: Prometheus counters/histograms and the sample ring buffer.

The dwell sensor compares two scrapes (``prev`` and ``cur``) and turns their deltas into a
:class:`WindowStats` for one (version, mode). Quantiles follow Prometheus' ``histogram_quantile`` exactly
(linear interpolation inside the bucket; a rank in the ``+Inf`` bucket yields the highest finite bound),
so the numbers match what an operator sees on a Prometheus dashboard over the same window.

Fail closed: an unreachable or unparsable source raises :class:`MetricsUnavailable`; a window with no
requests reports ``None`` rates and quantiles, never 0, so "no data" can not pass a gate. A counter
whose metric *family* is absent from a scrape is unmeasured: its series values and window deltas are
``None``, never 0 (a missing ``policy_violations`` counter must not read as "no violation"). A family
that is exported but has no series for a (version, mode) yet reads as 0: Prometheus clients export a
labelled child only once it was used.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tenacity import AsyncRetrying, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)

PREFIX = "llm_gateway_"
REQUESTS = f"{PREFIX}requests_total"
ERRORS = f"{PREFIX}errors_total"
POLICY_VIOLATIONS = f"{PREFIX}policy_violations_total"
ESCALATIONS = f"{PREFIX}escalations_total"
LATENCY = f"{PREFIX}request_duration_seconds"
WEIGHT = f"{PREFIX}traffic_weight"

_COUNTERS = {
    REQUESTS: "requests",
    ERRORS: "errors",
    POLICY_VIOLATIONS: "policy_violations",
    ESCALATIONS: "escalations",
}
COUNTER_FIELDS = tuple(_COUNTERS.values())
_FAMILY_FIELDS = {name.removesuffix("_total"): attr for name, attr in _COUNTERS.items()}
"""Prometheus family name (the text parser drops a counter's ``_total``) -> counter field."""


FUTURE_CURSOR = 2**62
"""A sample cursor beyond any sequence number: the gateway clamps it to "now"."""

class MetricsUnavailable(RuntimeError):
    """The metrics or samples source could not be read or parsed; callers must treat this as a failure."""


@dataclass
class SeriesCounters:
    """Cumulative counters of one (version, mode) series as exposed at scrape time.

    A counter is ``None`` when its metric family was absent from the scrape (unmeasured).
    """

    requests: float | None = 0.0
    errors: float | None = 0.0
    policy_violations: float | None = 0.0
    escalations: float | None = 0.0
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound (s) -> cumulative count
    latency_sum: float = 0.0
    latency_count: float = 0.0
    created: float | None = None  # process-side creation time of the series, when exported


@dataclass
class MetricsSnapshot:
    """One scrape: ``series[(version, mode)]`` plus the routing weight gauge per version.

    ``families``: the counter fields whose metric family the scrape contained; ``None`` when not
    recorded (a snapshot built by hand), in which case every counter counts as present.
    """

    ts: float
    series: dict[tuple[str, str], SeriesCounters] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    families: frozenset[str] | None = None

    @classmethod
    def parse(cls, text: str, ts: float | None = None, *, source: str = "<text>") -> MetricsSnapshot:
        """Parse Prometheus text exposition; raises :class:`MetricsUnavailable` naming ``source``."""
        snap = cls(ts=time.time() if ts is None else ts)
        try:
            families = list(text_string_to_metric_families(text))
        except Exception as exc:  # the parser raises ValueError/TypeError/IndexError on bad lines
            raise MetricsUnavailable(f"cannot parse Prometheus text from {source}: {exc}") from exc
        present: set[str] = set()
        for family in families:
            if family.name in _FAMILY_FIELDS:
                present.add(_FAMILY_FIELDS[family.name])
            for sample in family.samples:
                if sample.name in _COUNTERS:
                    present.add(_COUNTERS[sample.name])
                snap._add(sample.name, sample.labels, sample.value, source)
        snap.families = frozenset(present)
        return snap

    def _add(self, name: str, labels: Mapping[str, str], value: float, source: str) -> None:
        if not name.startswith(PREFIX):
            return
        if name == WEIGHT:
            if "version" in labels:
                self.weights[labels["version"]] = value
            return
        if "version" not in labels or "mode" not in labels:
            return
        if math.isnan(value):
            raise MetricsUnavailable(f"{source}: sample {name}{dict(labels)} is NaN")
        s = self.series.setdefault((labels["version"], labels["mode"]), SeriesCounters())
        if name in _COUNTERS:
            setattr(s, _COUNTERS[name], value)
        elif name == f"{LATENCY}_bucket":
            try:
                s.buckets[float(labels["le"])] = value
            except (KeyError, ValueError) as exc:
                raise MetricsUnavailable(f"{source}: bucket sample {dict(labels)} has no valid 'le'") from exc
        elif name == f"{LATENCY}_sum":
            s.latency_sum = value
        elif name == f"{LATENCY}_count":
            s.latency_count = value
        elif name == f"{PREFIX}requests_created":
            s.created = value

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (``+Inf`` bucket as the string "+Inf") for trigger/XCom state."""
        return {
            "ts": self.ts,
            "weights": dict(self.weights),
            "families": None if self.families is None else sorted(self.families),
            "series": [
                {
                    "version": v,
                    "mode": m,
                    "requests": s.requests,
                    "errors": s.errors,
                    "policy_violations": s.policy_violations,
                    "escalations": s.escalations,
                    "buckets": {
                        ("+Inf" if b == math.inf else repr(b)): n for b, n in sorted(s.buckets.items())
                    },
                    "latency_sum": s.latency_sum,
                    "latency_count": s.latency_count,
                    "created": s.created,
                }
                for (v, m), s in sorted(self.series.items())
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricsSnapshot:
        """Inverse of :meth:`to_dict`; raises ValueError naming the bad field."""
        try:
            families = data.get("families")
            snap = cls(
                ts=float(data["ts"]),
                weights={str(k): float(v) for k, v in data["weights"].items()},
                families=None if families is None else frozenset(str(f) for f in families),
            )
            for i, row in enumerate(data["series"]):
                try:
                    snap.series[(row["version"], row["mode"])] = SeriesCounters(
                        requests=_opt_float(row["requests"]),
                        errors=_opt_float(row["errors"]),
                        policy_violations=_opt_float(row["policy_violations"]),
                        escalations=_opt_float(row["escalations"]),
                        buckets={float(b): float(n) for b, n in row["buckets"].items()},
                        latency_sum=float(row["latency_sum"]),
                        latency_count=float(row["latency_count"]),
                        created=None if row.get("created") is None else float(row["created"]),
                    )
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    raise ValueError(f"metrics snapshot series[{i}]: bad or missing field {exc}") from exc
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"metrics snapshot: bad or missing field {exc}") from exc
        return snap

    def get(self, version: str, mode: str = "live") -> SeriesCounters:
        """The series, or an all-zero one when the gateway has not seen that (version, mode) yet.

        Counters whose family the scrape did not contain are ``None`` either way.
        """
        series = self.series.get((version, mode), SeriesCounters())
        missing = self.missing_families()
        return dataclasses.replace(series, **dict.fromkeys(missing)) if missing else series

    def missing_families(self) -> list[str]:
        """Counter fields whose metric family was absent from the scrape (unmeasured, never 0)."""
        if self.families is None:
            return []
        return [f for f in COUNTER_FIELDS if f not in self.families]


@dataclass(frozen=True)
class WindowStats:
    """What happened to one (version, mode) between two scrapes. ``None`` means "no data", never "good"."""

    version: str
    mode: str
    start_ts: float
    end_ts: float
    requests: int | None
    errors: int | None
    error_rate: float | None
    policy_violations: int | None
    escalations: int | None
    escalation_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    counter_reset: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus ``histogram_quantile`` over cumulative ``{upper_bound: count}``; None when undefined.

    Same algorithm as ``bucketQuantile`` in prometheus/promql/quantile.go: find the first bucket whose
    cumulative count reaches ``q * total`` and interpolate linearly inside it (from 0 for the first bucket
    when its bound is positive); a rank falling in the ``+Inf`` bucket returns the highest finite bound.
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    counts: list[float] = []
    running = 0.0
    for b in bounds:  # enforce monotonicity like Prometheus' ensureMonotonic
        running = max(running, buckets[b])
        counts.append(running)
    if len(bounds) < 2:
        return None
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    idx = next(i for i, c in enumerate(counts) if c >= rank)
    if idx == len(bounds) - 1:
        return bounds[-2]
    if idx == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[idx], counts[idx]
    if idx > 0:
        start = bounds[idx - 1]
        count -= counts[idx - 1]
        rank -= counts[idx - 1]
    return start + (end - start) * (rank / count)


def _series_reset(prev: SeriesCounters, cur: SeriesCounters) -> bool:
    """A gateway restart zeroes every counter of the series at once; any decrease means restart."""
    if prev.created is not None and cur.created is not None and cur.created != prev.created:
        return True
    pairs: list[tuple[float | None, float | None]] = [
        (prev.requests, cur.requests),
        (prev.errors, cur.errors),
        (prev.policy_violations, cur.policy_violations),
        (prev.escalations, cur.escalations),
        (prev.latency_count, cur.latency_count),
    ]
    pairs += [(v, cur.buckets.get(b, 0.0)) for b, v in prev.buckets.items()]
    return any(c < p for p, c in _measured(pairs))


def _measured(pairs: Iterable[tuple[float | None, float | None]]) -> list[tuple[float, float]]:
    return [(p, c) for p, c in pairs if p is not None and c is not None]


def _delta(prev: float | None, cur: float | None) -> int | None:
    """A counter's increase; None when either scrape lacked the counter's family."""
    return None if prev is None or cur is None else round(cur - prev)


def _per_request(count: int | None, requests: int | None) -> float | None:
    return count / requests if count is not None and requests is not None and requests > 0 else None


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def window_stats(
    prev: MetricsSnapshot, cur: MetricsSnapshot, version: str, mode: str = "live"
) -> WindowStats:
    """Deltas between two snapshots for one series; after a counter reset the current values are the delta.

    A counter whose family is absent from either scrape has a ``None`` delta (and so do its rates).
    """
    if cur.ts < prev.ts:
        raise ValueError(f"snapshots out of order: cur.ts={cur.ts} < prev.ts={prev.ts}")
    p, c = prev.get(version, mode), cur.get(version, mode)
    reset = _series_reset(p, c)
    base = SeriesCounters() if reset else p
    if reset:
        log.warning(
            "counter reset detected for %s/%s between %s and %s; using current values",
            version,
            mode,
            prev.ts,
            cur.ts,
        )
    requests = _delta(base.requests, c.requests)
    errors = _delta(base.errors, c.errors)
    violations = _delta(base.policy_violations, c.policy_violations)
    escalations = _delta(base.escalations, c.escalations)
    buckets = {b: n - base.buckets.get(b, 0.0) for b, n in c.buckets.items()}
    p50 = histogram_quantile(0.5, buckets)
    p99 = histogram_quantile(0.99, buckets)
    return WindowStats(
        version=version,
        mode=mode,
        start_ts=prev.ts,
        end_ts=cur.ts,
        requests=requests,
        errors=errors,
        error_rate=_per_request(errors, requests),
        policy_violations=violations,
        escalations=escalations,
        escalation_rate=_per_request(escalations, requests),
        p50_ms=None if p50 is None else p50 * 1000.0,
        p99_ms=None if p99 is None else p99 * 1000.0,
        counter_reset=reset,
    )


@runtime_checkable
class MetricsSource(Protocol):
    """Anything that returns a cumulative :class:`MetricsSnapshot` of the serving layer."""

    def scrape(self) -> MetricsSnapshot: ...

    async def ascrape(self) -> MetricsSnapshot: ...


_TRANSIENT = (httpx.TransportError,)


class GatewayMetricsSource:
    """Scrapes the gateway's ``/metrics``; quick retries on connection errors, then fail closed."""

    def __init__(
        self,
        metrics_url: str,
        timeout_s: float = 5.0,
        *,
        max_retries: int = 2,
        backoff_s: float = 0.2,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ):
        if not metrics_url.startswith(("http://", "https://")):
            raise ValueError(f"metrics_url must be an http(s) URL, got {metrics_url!r}")
        self.metrics_url = metrics_url
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._transport = transport

    def __repr__(self) -> str:
        return f"GatewayMetricsSource({self.metrics_url!r})"

    def _check(self, resp: httpx.Response) -> str:
        if not resp.is_success:
            raise MetricsUnavailable(f"GET {self.metrics_url} -> HTTP {resp.status_code}: {resp.text[:200]}")
        return resp.text

    def _retry_kwargs(self) -> dict[str, Any]:
        return dict(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait_exponential(multiplier=self.backoff_s, max=2.0),
            retry=retry_if_exception_type(_TRANSIENT),
            reraise=True,
        )

    def scrape(self) -> MetricsSnapshot:
        def get() -> str:
            with httpx.Client(timeout=self.timeout_s, transport=self._transport) as client:
                return self._check(client.get(self.metrics_url))

        try:
            text = Retrying(**self._retry_kwargs())(get)
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"GET {self.metrics_url} failed: {type(exc).__name__}: {exc}") from exc
        return MetricsSnapshot.parse(text, time.time(), source=self.metrics_url)

    async def ascrape(self) -> MetricsSnapshot:
        try:
            async for attempt in AsyncRetrying(**self._retry_kwargs()):
                with attempt:
                    async with httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport) as client:
                        text = self._check(await client.get(self.metrics_url))
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"GET {self.metrics_url} failed: {type(exc).__name__}: {exc}") from exc
        return MetricsSnapshot.parse(text, time.time(), source=self.metrics_url)


_SAMPLE_FIELDS = ("seq", "version", "mode", "query", "response", "error")


class GatewaySampleSource:
    """Reads recorded exchanges from the gateway ring buffer (``/admin/samples``), page by page.

    ``fetch`` returns every sample after ``since`` (up to ``max_samples``) and the cursor to pass next time.
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10.0,
        *,
        max_samples: int = 20000,
        max_retries: int = 2,
        backoff_s: float = 0.2,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/admin/samples"
        self.timeout_s = timeout_s
        self.max_samples = max_samples
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._transport = transport

    def __repr__(self) -> str:
        return f"GatewaySampleSource({self.base_url!r})"

    def _page(self, resp: httpx.Response, since: int) -> tuple[list[dict[str, Any]], int]:
        where = f"GET {self.url}?since={since}"
        if not resp.is_success:
            raise MetricsUnavailable(f"{where} -> HTTP {resp.status_code}: {resp.text[:200]}")
        try:
            data = resp.json()
        except ValueError as exc:
            raise MetricsUnavailable(f"{where}: reply is not JSON") from exc
        if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
            raise MetricsUnavailable(f"{where}: reply has no list field 'samples'")
        nxt = data.get("next")
        if isinstance(nxt, bool) or not isinstance(nxt, int):
            raise MetricsUnavailable(f"{where}: reply field 'next' must be an integer, got {nxt!r}")
        for i, sample in enumerate(data["samples"]):
            if not isinstance(sample, dict):
                raise MetricsUnavailable(f"{where}: samples[{i}] is not an object")
            missing = [f for f in _SAMPLE_FIELDS if f not in sample]
            if missing:
                raise MetricsUnavailable(f"{where}: samples[{i}] lacks field(s) {', '.join(missing)}")
        return data["samples"], nxt

    def _params(self, version: str, mode: str, since: int, limit: int) -> dict[str, Any]:
        return {"version": version, "mode": mode, "since": since, "limit": limit}

    def _validate_args(self, mode: str, since: int, limit: int) -> None:
        if mode not in ("live", "shadow"):
            raise ValueError(f"mode must be 'live' or 'shadow', got {mode!r}")
        if since < 0 or limit < 1:
            raise ValueError(f"since must be >= 0 and limit >= 1, got since={since}, limit={limit}")

    def _accumulate(
        self, out: list[dict[str, Any]], page: list[dict[str, Any]], since: int, nxt: int
    ) -> bool:
        """Add a page; True while pages keep coming, the cursor advances and the bound is not reached.

        Paging does not stop on a short page because a server may cap ``limit`` below what was asked.
        """
        out.extend(page)
        return bool(page) and nxt > since and len(out) < self.max_samples

    def cursor_now(self, version: str, mode: str = "live") -> int:
        """The cursor where the next new sample will start, without downloading old samples.

        It asks from a cursor in the future, which the gateway clamps to one past its newest sample.
        """
        self._validate_args(mode, FUTURE_CURSOR, 1)
        try:
            with httpx.Client(timeout=self.timeout_s, transport=self._transport) as client:
                resp = client.get(self.url, params=self._params(version, mode, FUTURE_CURSOR, 1))
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"GET {self.url} failed: {type(exc).__name__}: {exc}") from exc
        return self._page(resp, FUTURE_CURSOR)[1]

    async def acursor_now(self, version: str, mode: str = "live") -> int:
        """Async twin of :meth:`cursor_now`."""
        self._validate_args(mode, FUTURE_CURSOR, 1)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport) as client:
                resp = await client.get(self.url, params=self._params(version, mode, FUTURE_CURSOR, 1))
        except httpx.HTTPError as exc:
            raise MetricsUnavailable(f"GET {self.url} failed: {type(exc).__name__}: {exc}") from exc
        return self._page(resp, FUTURE_CURSOR)[1]

    def fetch(
        self, version: str, mode: str = "shadow", since: int = 0, limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]:
        """All samples of (version, mode) after cursor ``since``; ``limit`` is the page size.

        Stops once ``max_samples`` are collected (the result may exceed it by less than one page); the
        returned cursor always matches the last page read, so nothing is skipped on the next call.
        """
        self._validate_args(mode, since, limit)
        out: list[dict[str, Any]] = []
        cursor = since
        with httpx.Client(timeout=self.timeout_s, transport=self._transport) as client:
            retrying = Retrying(
                stop=stop_after_attempt(self.max_retries + 1),
                wait=wait_exponential(multiplier=self.backoff_s, max=2.0),
                retry=retry_if_exception_type(_TRANSIENT),
                reraise=True,
            )
            while True:
                try:
                    resp = retrying(client.get, self.url, params=self._params(version, mode, cursor, limit))
                except httpx.HTTPError as exc:
                    raise MetricsUnavailable(f"GET {self.url} failed: {type(exc).__name__}: {exc}") from exc
                page, nxt = self._page(resp, cursor)
                more = self._accumulate(out, page, cursor, nxt)
                cursor = max(cursor, nxt)
                if not more:
                    break
        return out, cursor

    async def afetch(
        self, version: str, mode: str = "shadow", since: int = 0, limit: int = 1000
    ) -> tuple[list[dict[str, Any]], int]:
        """Async twin of :meth:`fetch` (for triggers running in the triggerer's event loop)."""
        self._validate_args(mode, since, limit)
        out: list[dict[str, Any]] = []
        cursor = since
        async with httpx.AsyncClient(timeout=self.timeout_s, transport=self._transport) as client:
            while True:
                try:
                    async for attempt in AsyncRetrying(
                        stop=stop_after_attempt(self.max_retries + 1),
                        wait=wait_exponential(multiplier=self.backoff_s, max=2.0),
                        retry=retry_if_exception_type(_TRANSIENT),
                        reraise=True,
                    ):
                        with attempt:
                            resp = await client.get(
                                self.url, params=self._params(version, mode, cursor, limit)
                            )
                except httpx.HTTPError as exc:
                    raise MetricsUnavailable(f"GET {self.url} failed: {type(exc).__name__}: {exc}") from exc
                page, nxt = self._page(resp, cursor)
                more = self._accumulate(out, page, cursor, nxt)
                cursor = max(cursor, nxt)
                if not more:
                    break
        return out, cursor
