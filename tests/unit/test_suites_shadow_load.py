"""Shadow-sample evaluation (suites.shadow) and the load test (suites.load)."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Sequence

import pytest

from llm_release.suites.judge import ReferenceJudge
from llm_release.suites.knowledge_base import default_knowledge_base
from llm_release.suites.load import run_load_test
from llm_release.suites.shadow import ShadowSampleError, evaluate_shadow_samples
from llm_release.suites.types import Completion


@pytest.fixture(scope="module")
def judge() -> ReferenceJudge:
    return ReferenceJudge(default_knowledge_base())


def _sample(seq: int, query: str, response: str | None, latency: float = 200.0, error: str | None = None,
            violations: list[str] | None = None) -> dict:
    return {"seq": seq, "ts": 0.0, "version": "candidate", "mode": "shadow", "query": query,
            "response": response, "latency_ms": latency, "error": error,
            "status": 200 if error is None else 503, "policy_violations": violations or []}


def _good_samples(n: int) -> list[dict]:
    kb = default_knowledge_base()
    entries = kb.entries
    return [_sample(i, entries[i % len(entries)].questions[0], entries[i % len(entries)].answer,
                    latency=100.0 + i) for i in range(n)]


def test_good_shadow_traffic(judge: ReferenceJudge) -> None:
    result = evaluate_shadow_samples(_good_samples(60), judge)
    m = result.metrics
    assert m["shadow_samples"] == 60 and m["shadow_error_rate"] == 0.0
    assert m["shadow_scs"] >= 0.95
    assert m["shadow_hallucination_rate"] == 0.0 and m["shadow_policy_violation_rate"] == 0.0
    assert m["shadow_latency_p99_ms"] == pytest.approx(100.0 + 0.99 * 59)


def test_violations_hallucinations_and_errors(judge: ReferenceJudge) -> None:
    samples = _good_samples(20)
    samples[0]["response"] = "Invoices from the last 36 months are in Billing > Invoices."  # hallucinated
    samples[1]["response"] = "I have issued a full refund for you."  # rechecked here: refund_promise
    samples[2]["policy_violations"] = ["abusive"]  # only the gateway saw it: kept (union)
    samples[3] = _sample(3, "How do I reset my password?", None, error="HTTP 503")
    result = evaluate_shadow_samples(samples, judge, flag_limit=5)
    m = result.metrics
    assert m["shadow_error_rate"] == pytest.approx(1 / 20)
    assert m["shadow_policy_violations"] == 2
    assert m["shadow_policy_violation_rate"] == pytest.approx(2 / 19)
    assert m["shadow_hallucination_rate"] >= 1 / 19
    flagged = set(result.flagged["seq"])
    assert {0, 1, 2} <= flagged and 3 not in flagged and len(result.flagged) <= 5


def test_all_failed_samples_give_nan_quality(judge: ReferenceJudge) -> None:
    m = evaluate_shadow_samples([_sample(0, "q", None, error="timeout")], judge).metrics
    assert m["shadow_error_rate"] == 1.0
    assert math.isnan(m["shadow_scs"]) and math.isnan(m["shadow_policy_violation_rate"])
    empty = evaluate_shadow_samples([], judge).metrics
    assert empty["shadow_samples"] == 0 and math.isnan(empty["shadow_scs"])


def test_malformed_sample_names_index_and_key(judge: ReferenceJudge) -> None:
    bad = _good_samples(3)
    del bad[2]["policy_violations"]
    with pytest.raises(ShadowSampleError, match="sample 2: key 'policy_violations'"):
        evaluate_shadow_samples(bad, judge)


def test_shadow_errors_ignored_half_503_cannot_fill_the_sample_quota(judge: ReferenceJudge) -> None:
    """Finding: failed mirrored requests counted toward the 500-sample minimum (50 % HTTP 503 passed)."""
    good = _good_samples(600)
    samples = [s if s["seq"] % 2 else _sample(s["seq"], s["query"], None, latency=250.0, error="HTTP 503")
               for s in good]
    m = evaluate_shadow_samples(samples, judge).metrics
    assert m["shadow_requests"] == 600
    assert m["shadow_errors"] == 300 and m["shadow_error_rate"] == pytest.approx(0.5)
    assert m["shadow_samples"] == 300 < 500  # only judged answers count toward the gate's 500
    assert m["shadow_scs_n"] == m["shadow_hallucination_n"] == m["shadow_escalation_n"] == 300
    assert m["shadow_policy_violation_n"] == 300


def test_shadow_p99_counts_failed_requests(judge: ReferenceJudge) -> None:
    """A timeout's latency is latency: p99 over answered requests only hid the slowest ones."""
    samples = _good_samples(95) + [_sample(95 + i, "Where is my order?", None, latency=15000.0,
                                           error="timeout after 15.0s") for i in range(5)]
    m = evaluate_shadow_samples(samples, judge).metrics
    assert m["shadow_latency_n"] == 100 and m["shadow_latency_unknown"] == 0
    assert m["shadow_latency_p99_ms"] == pytest.approx(15000.0)
    assert m["shadow_latency_p50_ms"] < 200


def test_shadow_unknown_latency_of_a_failure_makes_p99_not_measured(judge: ReferenceJudge) -> None:
    samples = _good_samples(100) + [_sample(100 + i, "q", None, latency=None, error="connection reset")  # type: ignore[arg-type]
                                    for i in range(2)]
    m = evaluate_shadow_samples(samples, judge).metrics
    assert m["shadow_latency_unknown"] == 2
    assert math.isnan(m["shadow_latency_p99_ms"])  # it could be anything up to the timeout: not a pass
    assert m["shadow_latency_p50_ms"] == pytest.approx(100.0 + 50.5)


def test_shadow_violation_on_a_failed_request_is_counted_and_flagged(judge: ReferenceJudge) -> None:
    samples = _good_samples(10)
    samples.append({**_sample(10, "Give me a refund now", None, error="HTTP 502"),
                    "policy_violations": ["refund_promise"]})
    result = evaluate_shadow_samples(samples, judge)
    m = result.metrics
    assert m["shadow_policy_violations"] == 1
    assert m["shadow_policy_violation_n"] == 11 and m["shadow_policy_violation_rate"] == pytest.approx(1 / 11)
    assert 10 in set(result.flagged["seq"])


def test_shadow_nothing_answered_is_no_data_not_zero(judge: ReferenceJudge) -> None:
    m = evaluate_shadow_samples([_sample(i, "q", None, error="HTTP 503") for i in range(3)], judge).metrics
    assert m["shadow_samples"] == 0 and m["shadow_requests"] == 3
    for name in ("shadow_policy_violations", "shadow_ungrounded", "shadow_hallucination_rate",
                 "shadow_escalation_rate", "shadow_scs"):
        assert math.isnan(m[name]), name


# ----------------------------------------------------------------------------- load
class SyncClient:
    def __init__(self, delay_s: float = 0.01, fail_every: int = 0) -> None:
        self.delay_s, self.fail_every = delay_s, fail_every
        self.in_flight = self.peak = self.count = 0
        self.lock = threading.Lock()

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        with self.lock:
            self.in_flight += 1
            self.count += 1
            number = self.count
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.delay_s)
        with self.lock:
            self.in_flight -= 1
        if self.fail_every and number % self.fail_every == 0:
            return [Completion(prompts[0], None, self.delay_s * 1000, error="HTTP 500")]
        return [Completion(prompts[0], "ok", self.delay_s * 1000)]


class AsyncClient:
    def __init__(self) -> None:
        self.in_flight = self.peak = 0

    async def acomplete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return [Completion(p, "ok", 10.0) for p in prompts]

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        raise AssertionError("the load test must use the async API when there is one")


def test_sync_client_load_respects_concurrency_and_counts_errors() -> None:
    client = SyncClient(fail_every=10)
    result = run_load_test(client, ["a", "b", "c"], concurrency=4, n_requests=40)
    m = result.metrics
    assert m["load_n"] == 40 and m["load_not_sent"] == 0
    assert m["load_errors"] == 4 and m["load_error_rate"] == pytest.approx(0.1)
    assert client.peak <= 4 and client.peak >= 2
    assert m["load_throughput_rps"] > 0 and m["load_latency_p95_ms"] == pytest.approx(10.0)


def test_async_client_is_driven_through_its_async_api() -> None:
    client = AsyncClient()
    m = run_load_test(client, ["x"], concurrency=5, n_requests=30).metrics
    assert m["load_n"] == 30 and m["load_errors"] == 0
    assert client.peak == 5
    assert m["load_throughput_rps"] > 100


def test_factory_gets_the_concurrency_and_deadline_bounds_the_run() -> None:
    seen = []

    def factory(concurrency: int) -> SyncClient:
        seen.append(concurrency)
        return SyncClient(delay_s=0.05)

    m = run_load_test(factory, ["x"], concurrency=2, n_requests=1000, max_duration_s=0.2).metrics
    assert seen == [2]
    assert m["load_not_sent"] > 900 and m["load_n"] + m["load_not_sent"] == 1000


def test_closed_loop_counts_retried_failures_as_errors() -> None:
    """A retry that succeeded still had a failed attempt: the closed loop's error rate counts it too."""

    class Retrying:
        def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
            return [Completion(prompts[0], "ok", 5.0, attempts=2, failed_attempts=("HTTP 503: busy",))]

    m = run_load_test(Retrying(), ["x"], concurrency=2, n_requests=10).metrics
    assert m["load_failed_requests"] == 0
    assert m["load_attempts"] == 20 and m["load_errors"] == 10 and m["load_error_rate"] == 0.5


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        run_load_test(SyncClient(), [], concurrency=1, n_requests=1)
    with pytest.raises(ValueError):
        run_load_test(SyncClient(), ["x"], concurrency=0, n_requests=1)
    with pytest.raises(TypeError):
        run_load_test(object(), ["x"], concurrency=1, n_requests=1)
