"""Integration clients over real sockets: a small FastAPI app served by uvicorn on 127.0.0.1:<free port>.

The MockTransport unit tests cover the logic; these check the same clients against real HTTP (connection
refused, read timeouts, real Prometheus exposition from prometheus_client, FastAPI 422 bodies).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel

from llm_release.integrations.metrics import GatewayMetricsSource, GatewaySampleSource, window_stats
from llm_release.integrations.model_endpoint import OpenAIChatEndpoint
from llm_release.integrations.router import RouterError, SandboxGatewayRouter

pytestmark = pytest.mark.integration

API_KEY = "sk-integration-9f8e7d"


class WeightsBody(BaseModel):
    weights: dict[str, int]


class ShadowBody(BaseModel):
    target: str | None


def build_app() -> FastAPI:
    app = FastAPI()
    state: dict[str, Any] = {
        "weights": {"stable": 100, "candidate": 0},
        "shadow": None,
        "samples": [],
        "flaky": Tally(),
    }
    reg = CollectorRegistry()
    requests = Counter("llm_gateway_requests_total", "r", ["version", "mode"], registry=reg)
    errors = Counter("llm_gateway_errors_total", "e", ["version", "mode"], registry=reg)
    latency = Histogram(
        "llm_gateway_request_duration_seconds",
        "d",
        ["version", "mode"],
        buckets=[0.05, 0.1, 0.25, 0.5, 1.0],
        registry=reg,
    )

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        version = "candidate" if "cand" in prompt else "stable"
        requests.labels(version, "live").inc()
        if prompt.startswith("slow"):
            await asyncio.sleep(1.0)
        if prompt.startswith("flaky"):
            state["flaky"][prompt] += 1
            if state["flaky"][prompt] <= 2:
                errors.labels(version, "live").inc()
                return JSONResponse({"error": "injected"}, status_code=503)
        latency.labels(version, "live").observe(0.07 if version == "stable" else 0.3)
        seq = len(state["samples"]) + 1
        state["samples"].append(
            {
                "seq": seq,
                "ts": time.time(),
                "version": version,
                "mode": "live",
                "query": prompt,
                "response": f"re: {prompt}",
                "latency_ms": 5.0,
                "error": None,
                "status": 200,
                "policy_violations": [],
            }
        )
        return {
            "id": f"c{seq}",
            "model": body["model"],
            "usage": {},
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"re: {prompt}"}}],
        }

    @app.get("/healthz")
    def healthz() -> dict:
        return {"ok": True}

    @app.get("/metrics")
    def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(reg).decode())

    @app.get("/admin/weights")
    def get_weights() -> dict:
        return {"weights": state["weights"]}

    @app.put("/admin/weights")
    def put_weights(body: WeightsBody) -> dict:
        weights = body.weights
        unknown = set(weights) - set(state["weights"])
        if unknown:
            raise HTTPException(422, f"unknown backend(s): {', '.join(sorted(unknown))}")
        state["weights"] = {k: weights.get(k, 0) for k in state["weights"]}
        return {"weights": state["weights"]}

    @app.get("/admin/shadow")
    def get_shadow() -> dict:
        return {"target": state["shadow"]}

    @app.put("/admin/shadow")
    def put_shadow(body: ShadowBody) -> dict:
        state["shadow"] = body.target
        return {"target": body.target}

    @app.get("/admin/samples")
    def samples(version: str, mode: str, since: int = 0, limit: int = 1000) -> dict:
        page = [
            s for s in state["samples"] if s["seq"] > since and s["version"] == version and s["mode"] == mode
        ][: min(limit, 50)]
        return {"samples": page, "next": page[-1]["seq"] if page else since}

    return app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(build_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)
    sock.close()


def test_endpoint_over_real_http(server):
    ep = OpenAIChatEndpoint(server, api_key=API_KEY, backoff_s=0.01, max_concurrency=4)
    out = ep.complete_batch([f"q{i}" for i in range(10)] + ["flaky-1"])
    assert [c.text for c in out] == [f"re: q{i}" for i in range(10)] + ["re: flaky-1"]
    assert ep.health().ok

    no_key = OpenAIChatEndpoint(server, max_retries=3)
    [c] = no_key.complete_batch(["q"])
    assert c.status_code == 401 and "unauthorized" in c.error


def test_endpoint_timeout_and_connection_refused(server):
    slow = OpenAIChatEndpoint(server, api_key=API_KEY, timeout_s=0.2, max_retries=1, backoff_s=0.01)
    start = time.monotonic()
    [c] = slow.complete_batch(["slow one"])
    assert c.text is None and c.error.startswith("timeout after 0.2 s")
    assert time.monotonic() - start < 1.5

    dead_url = f"http://127.0.0.1:{free_port()}"
    dead = OpenAIChatEndpoint(dead_url, api_key=API_KEY, max_retries=1, backoff_s=0.01)
    [c] = dead.complete_batch(["q"])
    assert c.text is None and "ConnectError" in c.error and API_KEY not in c.error
    assert not dead.health().ok


def test_router_over_real_http(server):
    router = SandboxGatewayRouter(server)
    assert router.set_weights({"stable": 75, "candidate": 25}) == {"stable": 75, "candidate": 25}
    assert router.set_shadow("candidate") == "candidate"
    assert router.set_shadow(None) is None
    with pytest.raises(RouterError, match=r"/admin/weights -> HTTP 422: unknown backend\(s\): canary"):
        router.set_weights({"stable": 50, "canary": 50})
    with pytest.raises(RouterError, match=r"127.0.0.1:\d+/admin/weights failed after 2 attempts"):
        SandboxGatewayRouter(f"http://127.0.0.1:{free_port()}", max_retries=1, backoff_s=0.01).get_weights()


def test_metrics_and_samples_over_real_http(server):
    metrics = GatewayMetricsSource(f"{server}/metrics")
    prev = metrics.scrape()
    ep = OpenAIChatEndpoint(server, api_key=API_KEY, backoff_s=0.01)
    ep.complete_batch([f"cand {i}" for i in range(8)] + ["flaky-cand"])
    cur = asyncio.run(metrics.ascrape())
    w = window_stats(prev, cur, "candidate")
    assert (w.requests, w.errors) == (11, 2)  # 8 + flaky-cand answered on its third attempt
    assert w.error_rate == pytest.approx(2 / 11)
    # all 9 observations are 0.3 s, bucket (0.25, 0.5]: p50 = 0.25 + 0.25 * 4.5/9
    assert w.p50_ms == pytest.approx(375.0)

    src = GatewaySampleSource(server)
    samples, cursor = src.fetch("candidate", "live", since=0, limit=3)
    assert len(samples) >= 9 and cursor == samples[-1]["seq"]
    more, cursor2 = asyncio.run(src.afetch("candidate", "live", since=cursor))
    assert more == [] and cursor2 == cursor
