"""Findings 6 and 7 against the real sandbox model server (uvicorn on 127.0.0.1, no runner needed).

6: cold start is a real, measurable thing: the first request after start-up or after
``POST /admin/scale-up`` pays the model load, once per replica, and the client measures it.
7: the server was made cheaper per request (cached retrieval, a ready JSON response) without changing
what the bot answers; the figures are in ``benchmarks/load.py``, never asserted here (timings on a shared
2-core machine vary), and these tests check only that the open loop runs against the server and that
the answers are the same.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from llm_release.integrations.model_endpoint import OpenAIChatEndpoint
from llm_release.sandbox.bot import SupportBot
from llm_release.sandbox.faults import FaultSettings
from llm_release.sandbox.model_server import create_model_server_app
from llm_release.suites.datasets import load_validation_set
from llm_release.suites.knowledge_base import default_knowledge_base
from llm_release.suites.load import run_open_loop, run_performance_test

pytestmark = pytest.mark.integration

COLD_START_MS = 400.0


class Served:
    """One ASGI app served by uvicorn on a free 127.0.0.1 port in a daemon thread."""

    def __init__(self, app) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Served:
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


@pytest.fixture
def cold_server() -> Iterator[str]:
    """A fresh candidate server (its model not loaded yet) with fast simulated latency."""
    faults = FaultSettings(latency_p50_ms=5, latency_p99_ms=20)
    with Served(create_model_server_app("candidate", faults=faults, cold_start_ms=COLD_START_MS)) as served:
        yield served.url


def replica(url: str) -> dict:
    return httpx.get(f"{url}/admin/replica", timeout=5).json()


def test_finding6_first_request_after_start_pays_the_model_load_once(cold_server):
    assert replica(cold_server) == {"replica": 1, "model_loaded": False, "cold_start_ms": COLD_START_MS,
                                    "cold_starts": 0}
    ep = OpenAIChatEndpoint(cold_server, max_concurrency=6)
    first = ep.complete_batch(["How do I reset my password?"] * 6)  # concurrent first requests
    assert all(c.ok for c in first)
    # all waited for the same load (sent a few ms apart, so each waited at least most of it)...
    assert min(c.latency_ms for c in first) >= COLD_START_MS / 2
    state = replica(cold_server)
    assert state["model_loaded"] and state["cold_starts"] == 1  # ...which happened once


def test_finding6_measure_cold_start_against_the_sandbox_scale_up_hook(cold_server):
    ep = OpenAIChatEndpoint(cold_server)
    ep.complete_batch(["warm up"])  # the start-up load is paid; the scale-up must bring a new one
    cold = ep.measure_cold_start()
    assert cold.cold_start_ms is not None and cold.cold_start_ms >= COLD_START_MS, cold.detail
    assert cold.scale_up_url == f"{cold_server}/admin/scale-up"
    state = replica(cold_server)
    assert state["replica"] == 2 and state["cold_starts"] == 2 and state["model_loaded"]


def test_finding6_scale_up_sets_the_load_time_and_validates_it(cold_server):
    reply = httpx.post(f"{cold_server}/admin/scale-up", json={"cold_start_ms": 50}, timeout=5)
    assert reply.status_code == 200 and reply.json()["cold_start_ms"] == 50 and not reply.json()["model_loaded"]
    bad = httpx.post(f"{cold_server}/admin/scale-up", json={"cold_start_ms": -1}, timeout=5)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["cold_start_ms"]
    unknown = httpx.post(f"{cold_server}/admin/scale-up", json={"replicas": 3}, timeout=5)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["replicas"]


def test_finding6_cold_start_disabled_and_no_hook():
    faults = FaultSettings(latency_p50_ms=0, latency_p99_ms=0)
    with Served(create_model_server_app("stable", faults=faults, cold_start_ms=0)) as served:
        ep = OpenAIChatEndpoint(served.url)
        assert ep.complete_batch(["hi"])[0].ok and replica(served.url)["cold_starts"] == 1
        unmeasured = OpenAIChatEndpoint(served.url, scale_up_path="/no/such/hook").measure_cold_start()
        assert unmeasured.cold_start_ms is None and "HTTP 404" in unmeasured.detail
    with pytest.raises(ValueError, match="cold_start_ms"):
        create_model_server_app("stable", cold_start_ms=-5)


def test_finding5_open_loop_performance_test_against_the_model_server(cold_server):
    prompts = list(load_validation_set()["query"])
    result = run_performance_test(OpenAIChatEndpoint(cold_server), prompts, rate_rps=40.0, duration_s=1.5, seed=1)
    m = result.metrics
    assert m["cold_start_ms"] is not None and m["cold_start_ms"] >= COLD_START_MS
    assert m["load_n"] == len(result.completions) > 0
    assert m["load_errors"] == 0 and m["load_unanswered"] == 0, [c.error for c in result.completions if not c.ok]
    assert m["load_attempts"] == m["load_n"]


def test_finding1_injected_errors_count_against_the_load_error_rate():
    """10 % of queries fail (deterministically per query, so retries fail too): every attempt counts."""
    faults = FaultSettings(latency_p50_ms=1, latency_p99_ms=2, error_rate=0.1)
    with Served(create_model_server_app("candidate", faults=faults, cold_start_ms=0)) as served:
        prompts = list(load_validation_set()["query"])
        ep = OpenAIChatEndpoint(served.url, max_retries=1, backoff_s=0.01)
        m = run_open_loop(ep, prompts, rate_rps=60.0, duration_s=1.5, seed=2).metrics
    failed = m["load_failed_requests"]
    assert failed > 0
    assert m["load_errors"] == 2 * failed  # the first attempt and its retry both failed
    assert m["load_attempts"] == m["load_n"] + failed


def test_finding7_cached_retrieval_leaves_every_answer_unchanged():
    kb = default_knowledge_base()
    faults = FaultSettings(hallucination_rate=0.2, policy_violation_rate=0.1, seed=3)
    queries = list(load_validation_set()["query"])
    for build in ("stable", "candidate"):
        bot = SupportBot(kb, build)
        first = [bot.reply(q, faults) for q in queries]
        again = [bot.reply(q, faults) for q in queries]  # served from the cache
        uncached = SupportBot(kb, build)
        uncached._best = kb.best  # the retrieval without the cache
        assert first == again == [uncached.reply(q, faults) for q in queries]
