"""Integration clients against the real sandbox components (helper B's model server, gateway, runner)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from llm_release.integrations.model_endpoint import OpenAIChatEndpoint

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model_server() -> Iterator[str]:
    """The real candidate model server app, served by uvicorn on a free 127.0.0.1 port."""
    from llm_release.sandbox.model_server import create_model_server_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_model_server_app("candidate")
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not srv.started:
        assert time.monotonic() < deadline, "model server did not start"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    httpx.put(f"{url}/admin/faults", json={"latency_p50_ms": 5, "latency_p99_ms": 20}).raise_for_status()
    yield url
    srv.should_exit = True
    thread.join(10)
    sock.close()


def set_faults(url: str, **faults) -> None:
    httpx.put(f"{url}/admin/faults", json=faults, timeout=5).raise_for_status()


def test_model_server_answers_batch_in_order(model_server):
    ep = OpenAIChatEndpoint(model_server, model="northwind-support-candidate", max_concurrency=4)
    prompts = ["How do I reset my password?", "What is your refund policy?", "Can I change my plan?"] * 4
    out = ep.complete_batch(prompts)
    assert [c.prompt for c in out] == prompts
    assert all(c.ok and c.text for c in out), [c.error for c in out if not c.ok]
    health = ep.health()
    assert health.ok and health.url.endswith("/v1/models")


def test_model_server_injected_errors_exhaust_retries(model_server):
    set_faults(model_server, error_rate=1.0)
    try:
        ep = OpenAIChatEndpoint(model_server, max_retries=1, backoff_s=0.01)
        out = ep.complete_batch(["Where is my order?", "How do I cancel?"])
        assert all(c.text is None and c.status_code == 503 for c in out)
        assert all(c.error.startswith("HTTP 503: ") and "injected fault" in c.error for c in out)
    finally:
        set_faults(model_server, error_rate=0.0)


def test_model_server_422_not_retried(model_server):
    ep = OpenAIChatEndpoint(model_server, max_retries=3, temperature=5.0)  # server bounds temperature to 0..2
    start = time.monotonic()
    [c] = ep.complete_batch(["hello"])
    assert c.status_code == 422 and "temperature" in c.error
    assert time.monotonic() - start < 2.0


class _Served:
    """A uvicorn server for one ASGI app on a free 127.0.0.1 port, in a daemon thread."""

    def __init__(self, app, lifespan: str = "on") -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan=lifespan))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> _Served:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            assert time.monotonic() < deadline, f"{self.url} did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def gateway() -> Iterator[dict[str, str]]:
    """Real gateway in front of real stable and candidate model servers (B's apps, no runner needed)."""
    from llm_release.sandbox.gateway import create_gateway_app
    from llm_release.sandbox.model_server import create_model_server_app

    with (
        _Served(create_model_server_app("stable"), "off") as stable,
        _Served(create_model_server_app("candidate"), "off") as candidate,
    ):
        for url in (stable.url, candidate.url):
            set_faults(url, latency_p50_ms=5, latency_p99_ms=20)
        app = create_gateway_app({"stable": stable.url, "candidate": candidate.url}, seed=7)
        with _Served(app) as gw:
            yield {"gateway": gw.url, "stable": stable.url, "candidate": candidate.url}


def wait_for(predicate, timeout_s: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_gateway_router_metrics_and_samples(gateway):
    from llm_release.integrations.metrics import GatewayMetricsSource, GatewaySampleSource, window_stats
    from llm_release.integrations.router import RouterError, SandboxGatewayRouter

    gw = gateway["gateway"]
    router = SandboxGatewayRouter(gw)
    assert set(router.backends()) == {"stable", "candidate"}
    assert router.set_weights({"stable": 100, "candidate": 0}) == {"stable": 100, "candidate": 0}
    assert router.set_shadow("candidate") == "candidate"
    with pytest.raises(RouterError, match=r"HTTP 422: weights: unknown backend\(s\) \['canary'\]"):
        router.set_weights({"canary": 100})
    with pytest.raises(RouterError, match="target: unknown backend 'canary'"):
        router.set_shadow("canary")

    metrics = GatewayMetricsSource(f"{gw}/metrics")
    samples = GatewaySampleSource(gw)
    _, cursor = samples.fetch("candidate", "shadow")
    prev = metrics.scrape()
    assert prev.weights == {"stable": 100.0, "candidate": 0.0}

    ep = OpenAIChatEndpoint(gw, max_concurrency=4)
    prompts = [f"How do I reset my password? (ticket {i})" for i in range(12)]
    out = ep.complete_batch(prompts)
    assert all(c.ok for c in out), [c.error for c in out if not c.ok]

    shadow, cursor2 = wait_for(
        lambda: (lambda r: r if len(r[0]) >= 12 else None)(
            samples.fetch("candidate", "shadow", since=cursor, limit=5)
        ),
        what="12 shadow samples",
    )
    assert sorted(s["query"] for s in shadow) == sorted(prompts)
    assert cursor2 > cursor and samples.fetch("candidate", "shadow", since=cursor2) == ([], cursor2)

    cur = metrics.scrape()
    live = window_stats(prev, cur, "stable", "live")
    assert (live.requests, live.errors, live.error_rate) == (12, 0, 0.0)
    assert live.p50_ms is not None and 0 < live.p50_ms <= live.p99_ms
    assert window_stats(prev, cur, "candidate", "live").requests == 0
    assert window_stats(prev, cur, "candidate", "live").error_rate is None
    shadow_stats = window_stats(prev, cur, "candidate", "shadow")
    assert shadow_stats.requests == 12

    # injected candidate errors show up as errors of the candidate live series once it takes traffic
    set_faults(gateway["candidate"], error_rate=1.0)
    try:
        router.set_shadow(None)
        router.set_weights({"stable": 0, "candidate": 100})
        before = metrics.scrape()
        failed = OpenAIChatEndpoint(gw, max_retries=1, backoff_s=0.01).complete_batch(["Where is my parcel?"])
        assert failed[0].status_code is not None and failed[0].status_code >= 500
        stats = window_stats(before, asyncio_scrape(metrics), "candidate", "live")
        assert stats.requests == 2 and stats.errors == 2 and stats.error_rate == 1.0
    finally:
        set_faults(gateway["candidate"], error_rate=0.0)
        router.set_weights({"stable": 100, "candidate": 0})


def asyncio_scrape(source):
    import asyncio

    return asyncio.run(source.ascrape())


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_full_sandbox_process_with_replayed_traffic(tmp_path):
    """B's SandboxProcess (own process group, replayer on): rollout and shadow seen through our clients."""
    from llm_release.integrations.metrics import GatewayMetricsSource, GatewaySampleSource, window_stats
    from llm_release.integrations.router import SandboxGatewayRouter
    from llm_release.sandbox.runner import SandboxProcess

    gw_port, stable_port, cand_port = _free_ports(3)
    # no simulated model load: this test reads the first windows of replayed traffic, which a cold start
    # would leave without a single completed request (no latency yet)
    with SandboxProcess(tmp_path / "sandbox", gw_port, stable_port, cand_port, replay_rate=40.0,
                        cold_start_ms=0) as sandbox:
        gw = sandbox.gateway_url
        for build in ("stable", "candidate"):
            set_faults(sandbox.urls[build], latency_p50_ms=5, latency_p99_ms=20)
        router = SandboxGatewayRouter(gw)
        metrics = GatewayMetricsSource(f"{gw}/metrics")
        samples = GatewaySampleSource(gw)
        _, cursor = samples.fetch("candidate", "shadow")
        assert router.set_shadow("candidate") == "candidate"
        assert router.set_weights({"stable": 90, "candidate": 10}) == {"stable": 90, "candidate": 10}
        prev = metrics.scrape()

        def enough():
            w = window_stats(prev, metrics.scrape(), "stable", "live")
            return w if w.requests >= 40 else None

        stable_live = wait_for(enough, timeout_s=20, what="replayed live traffic on stable")
        assert stable_live.error_rate is not None and stable_live.p99_ms is not None
        cur = metrics.scrape()
        assert cur.weights == {"stable": 90.0, "candidate": 10.0}
        assert window_stats(prev, cur, "candidate", "live").requests > 0
        shadow, next_cursor = samples.fetch("candidate", "shadow", since=cursor, limit=7)
        assert shadow and next_cursor > cursor
        assert all(s["mode"] == "shadow" and s["version"] == "candidate" for s in shadow)
        assert router.set_weights({"stable": 100, "candidate": 0}) == {"stable": 100, "candidate": 0}
        assert router.set_shadow(None) is None
