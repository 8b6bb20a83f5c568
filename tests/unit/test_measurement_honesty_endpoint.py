"""Findings against the model-endpoint client as a measuring instrument (DESIGN: "Measurement honesty").

Each test is named after the finding it pins down and would have failed on the client before the fix:
retries hid failures and their time, ``timeout_s`` bounded each read instead of the call, Retry-After
was ignored, reply bodies were unbounded, and cold start was not measurable at all.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from llm_release.integrations.model_endpoint import OpenAIChatEndpoint, parse_retry_after
from llm_release.suites._common import attempt_counts
from llm_release.suites.load import run_open_loop
from llm_release.suites.types import Completion

URL = "http://model.test"
CHAT_URL = f"{URL}/v1/chat/completions"


def ok_reply(content: str = "fine") -> httpx.Response:
    return httpx.Response(200, json={"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]})


def endpoint(handler, **kw) -> OpenAIChatEndpoint:
    kw.setdefault("backoff_s", 0.001)
    return OpenAIChatEndpoint(URL, transport=httpx.MockTransport(handler), **kw)


class EveryTenthFails:
    """A candidate whose server fails every 10th request it receives (10 % of requests), 503."""

    def __init__(self) -> None:
        self.received = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.received += 1
        if self.received % 10 == 0:
            return httpx.Response(503, text="overloaded")
        return ok_reply()


# ------------------------------------------------------------------ finding 1: every attempt counts
def test_finding1_retried_failures_are_counted_in_the_completion():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        return ok_reply() if calls["n"] == 3 else httpx.Response(503, text=f"busy {calls['n']}")

    [c] = endpoint(handler, max_retries=2).complete_batch(["q"])
    assert c.ok and c.attempts == 3
    assert c.failed_attempts == ("HTTP 503: busy 1", "HTTP 503: busy 2")
    assert attempt_counts([c]) == (3, 2)


def test_finding1_candidate_failing_10_percent_measures_10_percent_not_zero():
    """The reported case: retries made every call succeed and the load test saw a 0.0 % error rate."""
    server = EveryTenthFails()
    # one call at a time: a retry is the very next request the server receives, so it cannot land on
    # another tenth (with calls in flight together, one call's three attempts can all be tenths)
    completions = endpoint(server, max_retries=2, max_concurrency=1).complete_batch([f"q{i}" for i in range(300)])
    assert all(c.ok for c in completions)  # the release is robust...
    attempts, failed = attempt_counts(completions)
    assert attempts == server.received
    assert failed == server.received // 10
    assert failed / attempts == pytest.approx(0.10, abs=0.005)  # ...but the metric is not rosy


def test_finding1_open_loop_load_error_rate_counts_retried_failures():
    server = EveryTenthFails()
    result = run_open_loop(endpoint(server, max_retries=2), ["How do I reset my password?"],
                           rate_rps=300, duration_s=1.0, seed=3, grace_s=5.0)
    m = result.metrics
    assert m["load_failed_requests"] == 0
    assert m["load_attempts"] == server.received and m["load_errors"] == server.received // 10
    assert m["load_error_rate"] == pytest.approx(0.10, abs=0.01)


def test_finding1_latency_includes_failed_attempts_and_backoff():
    calls = {"n": 0}

    async def handler(request):
        calls["n"] += 1
        if calls["n"] == 1:
            await asyncio.sleep(0.1)  # a slow failure
            return httpx.Response(503, text="busy")
        return ok_reply()

    [c] = endpoint(handler, max_retries=1, backoff_s=0.2).complete_batch(["q"])
    assert c.ok and c.attempts == 2
    assert c.latency_ms >= 300.0  # 100 ms failed attempt + 200 ms back-off + the answer


def test_finding1_final_failure_lists_every_attempt_and_defaults_stay_compatible():
    [c] = endpoint(lambda r: httpx.Response(500, text="boom"), max_retries=2).complete_batch(["q"])
    assert not c.ok and c.attempts == 3 and c.failed_attempts == ("HTTP 500: boom",) * 3
    [bad] = endpoint(lambda r: httpx.Response(400, text="no")).complete_batch(["q"])
    assert bad.attempts == 1 and bad.failed_attempts == ("HTTP 400: no",)
    legacy = Completion("p", None, 5.0, error="HTTP 503")  # a client that does not retry
    assert (legacy.attempts, legacy.failed_attempts) == (1, ())
    assert attempt_counts([legacy, Completion("p", "ok", 1.0)]) == (2, 1)


# ------------------------------------------------------------------ finding 2: timeout bounds the call
def test_finding2_timeout_bounds_the_whole_call_not_each_read():
    async def slow_failure(request):
        await asyncio.sleep(0.4)
        return httpx.Response(503, text="busy")

    start = time.monotonic()
    [c] = endpoint(slow_failure, max_retries=5, timeout_s=1.0).complete_batch(["q"])
    elapsed = time.monotonic() - start
    # before: each of the 6 attempts got its own 1 s read timeout, 2.4 s in all
    assert elapsed < 1.0 + 0.3, elapsed
    assert c.error == f"timeout after 1 s (3 attempts) calling {CHAT_URL}"
    assert c.attempts == 3 and len(c.failed_attempts) == 3 and c.failed_attempts[-1] == c.error
    assert c.latency_ms >= 1000.0


def test_finding2_backoff_beyond_the_budget_ends_the_call_instead_of_waiting():
    start = time.monotonic()
    [c] = endpoint(lambda r: httpx.Response(502, text="bad gateway"), max_retries=3, backoff_s=5.0,
                   timeout_s=1.0).complete_batch(["q"])
    assert time.monotonic() - start < 0.5
    assert c.error.startswith("HTTP 502: bad gateway (not retried: back-off 5 s exceeds the remaining")
    assert c.attempts == 1


# ------------------------------------------------------------------ finding 3: Retry-After
def test_finding3_retry_after_seconds_is_honoured():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] == 1:
            return httpx.Response(429, headers={"Retry-After": "1"}, text="slow down")
        return ok_reply()

    start = time.monotonic()
    [c] = endpoint(handler, max_retries=2).complete_batch(["q"])  # back-off alone would be 1 ms
    assert c.ok and c.attempts == 2 and c.failed_attempts == ("HTTP 429: slow down",)
    assert time.monotonic() - start >= 1.0 and c.latency_ms >= 1000.0


def test_finding3_retry_after_http_date_is_parsed():
    now = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(later, now=now.timestamp()) == pytest.approx(7.0)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now.timestamp()) == 0.0
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None and parse_retry_after("-1") is None


def test_finding3_retry_after_beyond_the_cap_ends_the_call_as_an_error():
    start = time.monotonic()
    [c] = endpoint(lambda r: httpx.Response(503, headers={"Retry-After": "120"}, text="maintenance"),
                   max_retries=3).complete_batch(["q"])
    assert time.monotonic() - start < 1.0
    assert c.error == "HTTP 503: maintenance (not retried: Retry-After 120 s exceeds the cap of 10 s)"
    assert c.status_code == 503 and c.attempts == 1


def test_finding3_retry_after_beyond_the_call_budget_ends_the_call():
    [c] = endpoint(lambda r: httpx.Response(429, headers={"Retry-After": "5"}, text="later"),
                   max_retries=3, timeout_s=2.0).complete_batch(["q"])
    assert c.error.startswith("HTTP 429: later (not retried: Retry-After 5 s exceeds the remaining")
    assert c.error.endswith("of the 2 s call budget)")


def test_finding3_retry_after_ignored_on_other_statuses():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        return ok_reply() if calls["n"] == 2 else httpx.Response(500, headers={"Retry-After": "600"})

    [c] = endpoint(handler, max_retries=1).complete_batch(["q"])
    assert c.ok and c.attempts == 2


# ------------------------------------------------------------------ finding 4: bounded replies
def test_finding4_oversized_reply_with_length_is_refused():
    big = json.dumps({"choices": [{"message": {"content": "x" * (2 << 20)}}]})
    [c] = endpoint(lambda r: httpx.Response(200, text=big)).complete_batch(["q"])
    assert c.error == f"reply larger than 1048576 bytes from {CHAT_URL}"
    assert c.attempts == 1 and c.failed_attempts == (c.error,)


def test_finding4_streamed_reply_reading_stops_at_the_limit():
    produced = {"chunks": 0}

    async def endless():
        for _ in range(10_000):  # 640 MiB if read to the end
            produced["chunks"] += 1
            yield b"x" * 65536

    [c] = endpoint(lambda r: httpx.Response(200, content=endless()), max_reply_bytes=200_000).complete_batch(["q"])
    assert c.error == f"reply larger than 200000 bytes from {CHAT_URL}"
    assert produced["chunks"] <= 5


def test_finding4_health_reply_is_bounded():
    def handler(request):
        return httpx.Response(200, content=b"y" * 5000)

    h = OpenAIChatEndpoint(URL, transport=httpx.MockTransport(handler), max_reply_bytes=1000).health()
    assert not h.ok and h.detail == f"reply larger than 1000 bytes from {URL}/v1/models"


# ------------------------------------------------------------------ finding 6: cold start
def test_finding6_cold_start_times_the_first_request_after_scale_up():
    state = {"cold": False, "scale_ups": 0}

    async def handler(request):
        if request.url.path == "/ops/scale":  # the deployment's own hook, configured on the endpoint
            state["cold"], state["scale_ups"] = True, state["scale_ups"] + 1
            return httpx.Response(200, json={"replica": 2})
        if state["cold"]:
            await asyncio.sleep(0.25)  # model load
            state["cold"] = False
        return ok_reply()

    cold = endpoint(handler, scale_up_path="/ops/scale").measure_cold_start()
    assert state["scale_ups"] == 1
    assert cold.scale_up_url == f"{URL}/ops/scale"
    assert cold.cold_start_ms is not None and cold.cold_start_ms >= 250.0
    assert cold.metrics == {"cold_start_ms": cold.cold_start_ms}
    assert cold.completion is not None and cold.completion.ok


def test_finding6_endpoint_without_scale_up_route_leaves_cold_start_unmeasured():
    def handler(request):
        return httpx.Response(404, json={"detail": "Not Found"}) if "admin" in request.url.path else ok_reply()

    cold = endpoint(handler).measure_cold_start()
    assert cold.cold_start_ms is None and cold.metrics == {"cold_start_ms": None}
    assert "no scale-up hook" in cold.detail and f"{URL}/admin/scale-up" in cold.detail
    unset = endpoint(handler, scale_up_path=None).measure_cold_start()
    assert unset.cold_start_ms is None and "scale_up_path=None" in unset.detail


def test_finding6_failed_first_request_leaves_cold_start_unmeasured():
    def handler(request):
        if request.url.path == "/admin/scale-up":
            return httpx.Response(200, json={})
        return httpx.Response(400, text="model not loaded")

    cold = endpoint(handler).measure_cold_start()
    assert cold.cold_start_ms is None
    assert cold.detail.startswith("first request after scale-up failed: HTTP 400: model not loaded")


def test_finding6_scale_up_error_is_reported_with_the_url():
    def handler(request):
        return httpx.Response(500, text="quota exceeded")

    cold = endpoint(handler, scale_up_path="https://ops.test/scale?svc=bot").measure_cold_start()
    assert cold.cold_start_ms is None
    assert cold.detail.startswith("scale-up via https://ops.test/scale?svc=bot failed: HTTP 500: quota exceeded")
