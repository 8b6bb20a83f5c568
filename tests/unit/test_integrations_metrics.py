"""Metrics parsing, window deltas and Prometheus-compatible quantiles, checked by hand-computed values."""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from llm_release.integrations.metrics import (
    GatewayMetricsSource,
    GatewaySampleSource,
    MetricsSnapshot,
    MetricsSource,
    MetricsUnavailable,
    histogram_quantile,
    window_stats,
)

INF = math.inf


def expo(
    version="candidate",
    mode="live",
    requests=0,
    errors=0,
    violations=0,
    escalations=0,
    buckets=None,
    lsum=0.0,
) -> str:
    """Hand-written Prometheus text for one series (what the gateway exposes)."""
    buckets = buckets or {0.1: 0, 0.5: 0, 1.0: 0, INF: 0}
    lab = f'version="{version}",mode="{mode}"'
    lines = [
        "# TYPE llm_gateway_requests_total counter",
        f"llm_gateway_requests_total{{{lab}}} {requests}",
        "# TYPE llm_gateway_errors_total counter",
        f"llm_gateway_errors_total{{{lab}}} {errors}",
        "# TYPE llm_gateway_policy_violations_total counter",
        f"llm_gateway_policy_violations_total{{{lab}}} {violations}",
        "# TYPE llm_gateway_escalations_total counter",
        f"llm_gateway_escalations_total{{{lab}}} {escalations}",
        "# TYPE llm_gateway_request_duration_seconds histogram",
    ]
    for le, n in buckets.items():
        le_s = "+Inf" if le == INF else repr(le)
        lines.append(f'llm_gateway_request_duration_seconds_bucket{{{lab},le="{le_s}"}} {n}')
    lines += [
        f"llm_gateway_request_duration_seconds_sum{{{lab}}} {lsum}",
        f"llm_gateway_request_duration_seconds_count{{{lab}}} {buckets[INF]}",
        "# TYPE llm_gateway_traffic_weight gauge",
        'llm_gateway_traffic_weight{version="candidate"} 10',
    ]
    return "\n".join(lines) + "\n"


def test_parse_hand_written_text():
    snap = MetricsSnapshot.parse(
        expo(
            requests=7,
            errors=1,
            violations=2,
            escalations=3,
            buckets={0.1: 2, 0.5: 5, 1.0: 7, INF: 7},
            lsum=2.5,
        ),
        ts=10.0,
    )
    s = snap.get("candidate", "live")
    assert (s.requests, s.errors, s.policy_violations, s.escalations) == (7, 1, 2, 3)
    assert s.buckets == {0.1: 2, 0.5: 5, 1.0: 7, INF: 7}
    assert (s.latency_sum, s.latency_count, snap.ts) == (2.5, 7, 10.0)
    assert snap.weights == {"candidate": 10}
    assert snap.get("stable", "shadow").requests == 0  # unseen series reads as zero


def test_parse_prometheus_client_exposition():
    reg = CollectorRegistry()
    req = Counter("llm_gateway_requests_total", "r", ["version", "mode"], registry=reg)
    hist = Histogram(
        "llm_gateway_request_duration_seconds",
        "d",
        ["version", "mode"],
        buckets=[0.05, 0.1, 0.25],
        registry=reg,
    )
    Gauge("llm_gateway_traffic_weight", "w", ["version"], registry=reg).labels("stable").set(90)
    req.labels("stable", "shadow").inc(3)
    for v in (0.01, 0.2, 0.3):
        hist.labels("stable", "shadow").observe(v)
    snap = MetricsSnapshot.parse(generate_latest(reg).decode())
    s = snap.get("stable", "shadow")
    assert s.requests == 3 and s.latency_count == 3 and s.created is not None
    assert s.buckets == {0.05: 1, 0.1: 1, 0.25: 2, INF: 3}
    assert snap.weights == {"stable": 90}


def test_parse_garbage_raises_with_source():
    with pytest.raises(MetricsUnavailable, match="http://gw/metrics"):
        MetricsSnapshot.parse('llm_gateway_requests_total{version="a" 1 2 3\n', source="http://gw/metrics")


def test_window_stats_hand_computed():
    prev = MetricsSnapshot.parse(
        expo(
            requests=25, errors=1, violations=0, escalations=2, buckets={0.1: 10, 0.5: 20, 1.0: 25, INF: 25}
        ),
        ts=100.0,
    )
    cur = MetricsSnapshot.parse(
        expo(
            requests=125,
            errors=4,
            violations=1,
            escalations=12,
            buckets={0.1: 30, 0.5: 80, 1.0: 115, INF: 125},
        ),
        ts=160.0,
    )
    w = window_stats(prev, cur, "candidate")
    assert (w.start_ts, w.end_ts, w.requests, w.errors) == (100.0, 160.0, 100, 3)
    assert w.error_rate == pytest.approx(0.03)
    assert (w.policy_violations, w.escalations) == (1, 10)
    assert w.escalation_rate == pytest.approx(0.10)
    # delta buckets {0.1: 20, 0.5: 60, 1: 90, +Inf: 100}; p50 rank 50 in (0.1, 0.5]: 0.1 + 0.4 * 30/40
    assert w.p50_ms == pytest.approx(400.0)
    # p99 rank 99 lands in +Inf bucket -> highest finite bound (Prometheus behaviour)
    assert w.p99_ms == pytest.approx(1000.0)
    assert not w.counter_reset


def test_quantile_interpolation_inside_finite_bucket():
    buckets = {0.05: 0, 0.1: 50, 0.25: 100, INF: 100}
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.1 + 0.15 * 49 / 50)  # 0.247
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    # first bucket interpolates from 0
    assert histogram_quantile(0.5, {1.0: 10, INF: 10}) == pytest.approx(0.5)
    assert histogram_quantile(0.5, {1.0: 10}) is None  # no +Inf bucket: undefined in Prometheus
    assert histogram_quantile(0.5, {1.0: 0, INF: 0}) is None


def test_counter_reset_uses_current_values():
    prev = MetricsSnapshot.parse(
        expo(requests=500, errors=10, buckets={0.1: 400, 0.5: 500, 1.0: 500, INF: 500}), ts=1.0
    )
    cur = MetricsSnapshot.parse(
        expo(requests=40, errors=2, buckets={0.1: 20, 0.5: 40, 1.0: 40, INF: 40}), ts=2.0
    )
    w = window_stats(prev, cur, "candidate")
    assert w.counter_reset
    assert (w.requests, w.errors, w.error_rate) == (40, 2, pytest.approx(0.05))
    assert w.p50_ms == pytest.approx(100.0)  # rank 20 reaches exactly the 0.1 bucket count


def test_zero_traffic_gives_none_not_zero():
    snap = expo(requests=5, buckets={0.1: 5, 0.5: 5, 1.0: 5, INF: 5})
    w = window_stats(MetricsSnapshot.parse(snap, ts=1), MetricsSnapshot.parse(snap, ts=2), "candidate")
    assert w.requests == 0
    assert w.error_rate is None and w.escalation_rate is None and w.p50_ms is None and w.p99_ms is None
    w = window_stats(MetricsSnapshot(ts=1), MetricsSnapshot(ts=2), "nobody", "shadow")
    assert w.requests == 0 and w.p99_ms is None


def test_snapshots_out_of_order_rejected():
    with pytest.raises(ValueError, match="out of order"):
        window_stats(MetricsSnapshot(ts=5), MetricsSnapshot(ts=4), "candidate")


@given(st.lists(st.integers(0, 50), min_size=2, max_size=8), st.floats(0.01, 1.0))
def test_quantile_properties(increments, q):
    bounds = [*[0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10][: len(increments) - 1], INF]
    cum, running = {}, 0
    for b, inc in zip(bounds, increments, strict=True):
        running += inc
        cum[b] = running
    value = histogram_quantile(q, cum)
    if running == 0:
        assert value is None
        return
    finite = [b for b in bounds if b != INF]
    assert 0.0 <= value <= finite[-1]
    assert histogram_quantile(min(1.0, q + 0.2), cum) >= value  # monotone in q


def test_gateway_metrics_source_scrape_and_failures():
    text = expo(requests=3, buckets={0.1: 3, 0.5: 3, 1.0: 3, INF: 3})
    src = GatewayMetricsSource(
        "http://gw.test/metrics", transport=httpx.MockTransport(lambda r: httpx.Response(200, text=text))
    )
    assert isinstance(src, MetricsSource)
    assert src.scrape().get("candidate").requests == 3
    assert asyncio.run(src.ascrape()).get("candidate").requests == 3

    calls = {"n": 0}

    def down(request):
        calls["n"] += 1
        raise httpx.ConnectError("refused", request=request)

    bad = GatewayMetricsSource("http://gw.test/metrics", backoff_s=0.001, transport=httpx.MockTransport(down))
    with pytest.raises(MetricsUnavailable, match=r"http://gw.test/metrics failed: ConnectError"):
        bad.scrape()
    assert calls["n"] == 3
    with pytest.raises(MetricsUnavailable, match=r"http://gw\.test/metrics"):
        asyncio.run(bad.ascrape())
    err = GatewayMetricsSource(
        "http://gw.test/metrics", transport=httpx.MockTransport(lambda r: httpx.Response(500, text="boom"))
    )
    with pytest.raises(MetricsUnavailable, match="HTTP 500: boom"):
        err.scrape()


class FakeRing:
    """Gateway ring buffer: samples with seq > since, at most min(limit, cap); next = last seq returned."""

    def __init__(self, n: int, cap: int = 1000) -> None:
        self.samples = [
            {
                "seq": i,
                "ts": float(i),
                "version": "candidate",
                "mode": "shadow",
                "query": f"q{i}",
                "response": f"r{i}",
                "latency_ms": 5.0,
                "error": None,
                "status": 200,
                "policy_violations": [],
            }
            for i in range(1, n + 1)
        ]
        self.cap = cap
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        since = int(request.url.params["since"])
        limit = min(int(request.url.params["limit"]), self.cap)
        page = [s for s in self.samples if s["seq"] > since][:limit]
        return httpx.Response(200, json={"samples": page, "next": page[-1]["seq"] if page else since})


def test_sample_source_pages_until_exhausted():
    ring = FakeRing(2500, cap=400)  # server caps pages below the requested limit
    src = GatewaySampleSource("http://gw.test", transport=httpx.MockTransport(ring))
    samples, cursor = src.fetch("candidate", "shadow", since=0, limit=1000)
    assert [s["seq"] for s in samples] == list(range(1, 2501)) and cursor == 2500
    assert src.fetch("candidate", "shadow", since=cursor) == ([], 2500)
    samples, cursor = asyncio.run(src.afetch("candidate", "shadow", since=2000, limit=300))
    assert len(samples) == 500 and cursor == 2500


def test_sample_source_bound_and_resume():
    ring = FakeRing(5000)
    src = GatewaySampleSource("http://gw.test", max_samples=1500, transport=httpx.MockTransport(ring))
    first, cursor = src.fetch("candidate", limit=1000)
    assert len(first) == 2000 and cursor == 2000  # stops after the page that crossed the bound
    rest, cursor = src.fetch("candidate", since=cursor, limit=1000)
    assert rest[0]["seq"] == 2001 and cursor == 4000


def test_sample_source_bad_replies():
    def missing(request):
        return httpx.Response(
            200, json={"samples": [{"seq": 1, "version": "c", "mode": "shadow"}], "next": 1}
        )

    src = GatewaySampleSource("http://gw.test", transport=httpx.MockTransport(missing))
    with pytest.raises(MetricsUnavailable, match=r"samples\[0\] lacks field\(s\) query, response, error"):
        src.fetch("candidate")
    src = GatewaySampleSource(
        "http://gw.test", transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"samples": []}))
    )
    with pytest.raises(MetricsUnavailable, match="'next' must be an integer"):
        src.fetch("candidate")
    with pytest.raises(ValueError, match="mode"):
        src.fetch("candidate", mode="canary")


def test_snapshot_dict_round_trip_and_bad_input():
    snap = MetricsSnapshot.parse(expo(requests=7, buckets={0.1: 2, 0.5: 5, 1.0: 7, INF: 7}, lsum=2.5), ts=3.0)
    data = json.loads(json.dumps(snap.to_dict()))
    assert MetricsSnapshot.from_dict(data) == snap
    del data["series"][0]["errors"]
    with pytest.raises(ValueError, match=r"series\[0\].*errors"):
        MetricsSnapshot.from_dict(data)


def test_a_metric_family_missing_from_the_scrape_is_unmeasured_not_zero():
    full = expo(requests=10, errors=1, violations=2, escalations=3, buckets={0.1: 10, 0.5: 10, 1.0: 10, INF: 10})
    without = "\n".join(
        line for line in full.splitlines() if "policy_violations" not in line and "escalations" not in line
    ) + "\n"
    prev = MetricsSnapshot.parse(full, ts=1.0)
    cur = MetricsSnapshot.parse(without.replace(" 10\n", " 30\n", 1), ts=2.0)
    assert cur.missing_families() == ["policy_violations", "escalations"]
    series = cur.get("candidate")
    assert series.requests == 30 and series.policy_violations is None and series.escalations is None
    assert cur.get("stable", "shadow").policy_violations is None  # an unseen series too
    w = window_stats(prev, cur, "candidate")
    assert (w.requests, w.errors) == (20, 0)
    assert w.policy_violations is None and w.escalations is None and w.escalation_rate is None
    w = window_stats(cur, MetricsSnapshot.parse(full.replace(" 10\n", " 40\n", 1), ts=3.0), "candidate")
    assert w.policy_violations is None  # the previous scrape lacked it: the delta is unknown, not 2
    # a family exported without any series yet is measured: zero for every (version, mode)
    empty = MetricsSnapshot.parse(full + "# TYPE llm_gateway_other_total counter\n", ts=4.0)
    assert empty.missing_families() == [] and empty.get("stable", "live").policy_violations == 0
    data = json.loads(json.dumps(cur.to_dict()))
    assert MetricsSnapshot.from_dict(data) == cur and data["families"] == ["errors", "requests"]


FAMILIES = {
    "requests": "llm_gateway_requests_total",
    "errors": "llm_gateway_errors_total",
    "policy_violations": "llm_gateway_policy_violations_total",
    "escalations": "llm_gateway_escalations_total",
}


@given(st.sets(st.sampled_from(sorted(FAMILIES))), st.sets(st.sampled_from(sorted(FAMILIES))))
def test_only_counters_present_in_both_scrapes_have_a_delta(dropped_prev, dropped_cur):
    def scrape(dropped, scale, ts):
        text = expo(requests=10 * scale, errors=scale, violations=scale, escalations=2 * scale,
                    buckets={0.1: 10 * scale, 0.5: 10 * scale, 1.0: 10 * scale, INF: 10 * scale})
        keep = [line for line in text.splitlines() if not any(FAMILIES[f] in line for f in dropped)]
        return MetricsSnapshot.parse("\n".join(keep) + "\n", ts=ts)

    w = window_stats(scrape(dropped_prev, 1, 1.0), scrape(dropped_cur, 3, 2.0), "candidate")
    expected = {"requests": 20, "errors": 2, "policy_violations": 2, "escalations": 4}
    for field, delta in expected.items():
        measured = field not in dropped_prev | dropped_cur
        assert getattr(w, field) == (delta if measured else None), field
    assert (w.error_rate is None) == bool({"errors", "requests"} & (dropped_prev | dropped_cur))
