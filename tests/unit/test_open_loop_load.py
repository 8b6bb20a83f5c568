"""Finding 5: the load test was closed-loop, so queueing under load was never measured.

The open-loop generator (``suites.load.run_open_loop``) sends on a seeded Poisson schedule whatever the
server does, measures each latency from the intended send time, and counts what it could not send or
get answered as errors. The fakes here are in-process async clients, so the tests need no server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from llm_release.suites.load import arrival_times, run_load_test, run_open_loop, run_performance_test
from llm_release.suites.types import ColdStart, Completion

GATE_METRICS = {
    "load_offered_rps", "load_achieved_rps", "load_n", "load_attempts", "load_errors", "load_error_rate",
    "load_latency_p50_ms", "load_latency_p95_ms", "load_latency_p99_ms", "load_duration_s",
}


class SerialServer:
    """A server that handles one request at a time, ``service_s`` each: its capacity is 1/service_s."""

    def __init__(self, service_s: float = 0.02) -> None:
        self.service_s = service_s
        self.lock: asyncio.Lock | None = None
        self.calls = 0

    async def acomplete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        if self.lock is None:
            self.lock = asyncio.Lock()
        async with self.lock:
            start = time.perf_counter()
            await asyncio.sleep(self.service_s)
            self.calls += 1
            return [Completion(p, "ok", (time.perf_counter() - start) * 1000.0) for p in prompts]


class Scripted:
    """Answers at once; ``hang`` prompts never get an answer, ``retried`` ones needed a second attempt."""

    def __init__(self, hang: set[str] = frozenset(), retried: set[str] = frozenset()) -> None:
        self.hang, self.retried = hang, retried

    async def acomplete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        [prompt] = prompts
        if prompt in self.hang:
            await asyncio.Event().wait()
        if prompt in self.retried:
            return [Completion(prompt, "ok", 2.0, attempts=2, failed_attempts=("HTTP 503: busy",))]
        return [Completion(prompt, "ok", 1.0)]


def test_arrival_times_are_seeded_poisson_with_the_offered_count_exact():
    times = arrival_times(200.0, 30.0, seed=7)
    assert np.array_equal(times, arrival_times(200.0, 30.0, seed=7))
    assert not np.array_equal(times, arrival_times(200.0, 30.0, seed=8))
    assert times[0] >= 0 and times[-1] < 30.0 and np.all(np.diff(times) >= 0)
    assert len(times) == 6000  # offered == target: a gate at the target is not failed by sampling noise
    gaps = np.diff(times)
    assert np.mean(gaps) == pytest.approx(1 / 200.0, rel=0.01)
    assert np.std(gaps) / np.mean(gaps) == pytest.approx(1.0, abs=0.05)  # exponential: CV 1, not a fixed tick
    assert len(arrival_times(150.0, 0.001)) == 0


def test_finding5_open_loop_sees_the_queue_that_closed_loop_hides():
    """Offered 100/s to a server with capacity 50/s: the queue grows, and only the open loop says so."""
    server = SerialServer(service_s=0.02)
    open_run = run_open_loop(server, ["q"], rate_rps=100.0, duration_s=1.0, seed=1, grace_s=10.0)
    om = open_run.metrics
    n = int(om["load_n"])
    closed = run_load_test(SerialServer(service_s=0.02), ["q"], concurrency=1, n_requests=n).metrics
    assert om["load_unanswered"] == 0 and om["load_errors"] == 0
    assert closed["load_latency_p99_ms"] < 100.0  # each call alone looks fast...
    assert om["load_latency_p99_ms"] > 5 * closed["load_latency_p99_ms"]  # ...users waited in the queue
    assert om["load_latency_p50_ms"] > 200.0
    assert om["load_achieved_rps"] < 0.75 * om["load_offered_rps"]  # throughput is what was served
    # the client-side latency of each call (what a closed loop reports) excludes the queue
    assert max(c.latency_ms for c in open_run.completions) < 100.0


def test_finding5_latency_counts_the_wait_for_an_in_flight_slot():
    server = SerialServer(service_s=0.03)
    result = run_open_loop(server, ["q"], rate_rps=80.0, duration_s=0.5, seed=2, max_in_flight=1, grace_s=10.0)
    late = [r for r in result.requests if r.sent_s is not None and r.sent_s - r.intended_s > 0.05]
    assert late, "with one slot, later arrivals must wait before they are sent"
    for r in late:
        assert r.latency_ms >= (r.sent_s - r.intended_s) * 1000.0
    assert result.metrics["load_send_lag_p99_ms"] > 50.0
    assert result.metrics["load_peak_in_flight"] == 1


def test_finding5_unanswered_requests_are_errors_not_dropped():
    hang = {"stuck"}
    prompts = ["a", "b", "c", "stuck"]
    result = run_open_loop(Scripted(hang=hang), prompts, rate_rps=40.0, duration_s=0.5, seed=4, grace_s=0.3)
    m = result.metrics
    n = int(m["load_n"])
    stuck = sum(1 for i in range(n) if prompts[i % 4] == "stuck")
    assert stuck > 0 and len(result.completions) == n == len(result.requests)
    assert m["load_unanswered"] == stuck and m["load_failed_requests"] == stuck
    assert m["load_errors"] == stuck and m["load_error_rate"] == pytest.approx(stuck / n)
    unanswered = [c for c in result.completions if c.prompt == "stuck"]
    assert all(c.error.startswith("timeout: no answer by the cut-off at 0.8 s") for c in unanswered)
    # their latency counts, up to the cut-off: at least the grace period after the last arrival
    assert m["load_latency_p99_ms"] >= 300.0
    assert m["load_duration_s"] >= 0.8


def test_finding5_requests_never_sent_for_a_full_in_flight_limit_are_errors():
    result = run_open_loop(Scripted(hang={"q"}), ["q"], rate_rps=50.0, duration_s=0.4, seed=5,
                           max_in_flight=2, grace_s=0.1)
    m = result.metrics
    assert m["load_n"] >= 5
    assert m["load_not_sent"] == m["load_n"] - 2 and m["load_unanswered"] == m["load_n"]
    assert m["load_error_rate"] == 1.0 and m["load_achieved_rps"] == 0.0 and m["load_served_fraction"] == 0.0
    assert any(c.error.startswith("not sent: 2 requests stayed in flight") for c in result.completions)


def test_finding5_error_rate_counts_attempts_and_metric_names_are_the_gates():
    prompts = [f"p{i}" for i in range(5)]
    result = run_open_loop(Scripted(retried={"p0"}), prompts, rate_rps=100.0, duration_s=0.5, seed=6)
    m = result.metrics
    assert set(m) >= GATE_METRICS
    retried = sum(1 for i in range(int(m["load_n"])) if i % 5 == 0)
    assert m["load_failed_requests"] == 0
    assert m["load_attempts"] == m["load_n"] + retried and m["load_errors"] == retried
    assert m["load_error_rate"] == pytest.approx(retried / (m["load_n"] + retried))
    assert m["load_offered_rps"] == 100.0 and m["load_n"] == 50
    assert m["load_achieved_rps"] == pytest.approx(100.0, rel=0.15)  # every request served at the offered rate
    assert m["load_served_fraction"] == 1.0


def test_failed_requests_latency_counts_and_achieved_counts_only_answers():
    class HalfFail:
        async def acomplete_batch(self, prompts: Sequence[str]) -> list[Completion]:
            await asyncio.sleep(0.05 if prompts[0] == "bad" else 0.0)
            if prompts[0] == "bad":
                return [Completion("bad", None, 50.0, error="HTTP 500", failed_attempts=("HTTP 500",))]
            return [Completion(prompts[0], "ok", 0.1)]

    m = run_open_loop(HalfFail(), ["bad", "good"], rate_rps=100.0, duration_s=0.5, seed=9).metrics
    assert m["load_failed_requests"] == pytest.approx(m["load_n"] / 2, abs=1)
    assert m["load_achieved_rps"] == pytest.approx(50.0, rel=0.3)  # half the offered 100/s came back answered
    assert m["load_latency_p95_ms"] >= 50.0  # the slow failures are in the percentiles


def test_sync_client_is_driven_on_threads():
    class Sync:
        def __init__(self) -> None:
            self.threads: set[int] = set()

        def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
            self.threads.add(threading.get_ident())
            time.sleep(0.02)
            return [Completion(prompts[0], "ok", 20.0)]

    client = Sync()
    m = run_open_loop(client, ["q"], rate_rps=100.0, duration_s=0.5, seed=3).metrics
    assert m["load_errors"] == 0 and m["load_n"] > 20
    assert threading.get_ident() not in client.threads and len(client.threads) >= 1


def test_client_that_raises_or_breaks_the_contract_is_an_error():
    class Broken:
        async def acomplete_batch(self, prompts: Sequence[str]) -> list[Completion]:
            if prompts[0] == "raise":
                raise RuntimeError("socket gone")
            return []

    result = run_open_loop(Broken(), ["raise", "empty"], rate_rps=50.0, duration_s=0.3, seed=1)
    errors = {c.error for c in result.completions}
    assert "client raised RuntimeError: socket gone" in errors
    assert "client raised TypeError: client returned 0 item(s) for 1 prompt, expected one Completion" in errors
    assert result.metrics["load_error_rate"] == 1.0


def test_performance_test_adds_cold_start_and_never_zero():
    class WithColdStart(Scripted):
        def measure_cold_start(self) -> ColdStart:
            return ColdStart(2100.0, "first request after scale-up answered in 2100 ms")

    m = run_performance_test(WithColdStart(), ["q"], rate_rps=50.0, duration_s=0.2).metrics
    assert m["cold_start_ms"] == 2100.0 and m["load_n"] >= 1
    result = run_performance_test(Scripted(), ["q"], rate_rps=50.0, duration_s=0.2)
    assert result.metrics["cold_start_ms"] is None  # unmeasured: a gate fails it
    assert "cannot request a scale-up" in result.cold_start.detail
    skipped = run_performance_test(Scripted(), ["q"], rate_rps=50.0, duration_s=0.2, cold_start=False)
    assert "cold_start_ms" not in skipped.metrics


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"rate_rps": 0.0, "duration_s": 1.0}, "rate_rps"),
        ({"rate_rps": 10.0, "duration_s": 0.0}, "duration_s"),
        ({"rate_rps": 10.0, "duration_s": 1.0, "max_in_flight": 0}, "max_in_flight"),
        ({"rate_rps": 10.0, "duration_s": 1.0, "grace_s": -1.0}, "grace_s"),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(ValueError, match=error):
        run_open_loop(Scripted(), ["q"], **kwargs)
    with pytest.raises(ValueError, match="prompts"):
        run_open_loop(Scripted(), [], rate_rps=1.0, duration_s=1.0)
