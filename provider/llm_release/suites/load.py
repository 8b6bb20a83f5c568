"""Load test (stage 2 performance gates): latency under load, error rate, throughput and cold start.

The gate entry point is the **open-loop** generator, :func:`run_open_loop` (or :func:`run_performance_test`,
which adds the cold-start measurement). Requests arrive as a Poisson process at ``rate_rps`` (seeded
exponential gaps), whether or not earlier requests have been answered, as real users do. Each request's
latency runs from its *intended* send time, so time spent waiting for the generator, for a free slot
under ``max_in_flight`` or for a slow server all counts (the schedule is a Poisson process conditioned
on its count, see :func:`arrival_times`). A closed-loop test (N workers, each sending its
next request when the previous one returns) does not do that: when the server stalls, the workers stop
sending, the requests that users would have sent during the stall are never issued and their waiting
is never measured (coordinated omission), and its throughput is whatever the server managed rather than
the rate the spec asks for. :func:`run_load_test`, the closed-loop generator, is kept only as the
baseline that ``benchmarks/load.py`` uses to show how much it under-reports.

Nothing is dropped: a request still unanswered at ``duration_s + grace_s`` (or never sent because
``max_in_flight`` requests were outstanding until then) is counted as a failed request and a failed
attempt, with its latency up to the cut-off. Error rates count attempts, not final outcomes (a retry
that succeeded still had a failure, see ``attempt_counts``).

Open-loop metrics (the names the performance gate reads):

* ``load_offered_rps``: planned arrivals / ``duration_s``; ``load_target_rps``: the requested rate.
* ``load_achieved_rps``: the rate successful answers came back at: the least-squares slope of the
  count of successful answers against their completion times. A server that keeps up answers at the
  offered rate times the share served; one that falls behind answers at its capacity, however long the
  grace lets the backlog drain (its queueing also shows in the latency percentiles). Answers divided by
  the span from the first send would instead charge the tail latency of the last requests to throughput
  (about 1 % over 30 s for a server that keeps up), and answers over the first-to-last window depends on
  the latency of just those two requests; the slope uses every answer. ``load_served_fraction`` is the
  share of requests answered successfully.
* ``load_n`` (requests issued by the schedule), ``load_attempts``, ``load_errors`` (failed attempts,
  retried ones included), ``load_error_rate`` (failed attempts / attempts), ``load_failed_requests``,
  ``load_unanswered`` (cut off at the deadline, of which ``load_not_sent`` never got a slot).
* ``load_latency_p50_ms`` / ``_p95_ms`` / ``_p99_ms``: over every request, failed ones included, from
  its intended send time; ``load_send_lag_p99_ms``: how late the generator itself sent (if this is
  large the generator, not the server, was the bottleneck).
* ``load_duration_s`` (the span), ``load_peak_in_flight``; with a cold start, ``cold_start_ms``
  (None when unmeasured: a gate fails it, it is never 0).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llm_release.suites._common import NAN, attempt_counts, latency_percentiles, rate
from llm_release.suites.types import ChatClient, ColdStart, Completion

DEFAULT_MAX_IN_FLIGHT = 512
DEFAULT_GRACE_S = 10.0
# Worker threads for a synchronous ChatClient driven open-loop: enough for the spec's rates at
# sub-second latencies; requests beyond them queue, and that wait counts in their latency.
MAX_SYNC_THREADS = 64
_CANCEL_WAIT_S = 5.0

Call = Callable[[str], Awaitable[Completion]]


@dataclass(frozen=True)
class LoadRequest:
    """Timing of one open-loop request, in seconds from the run start (``completions[index]`` is its answer).

    ``sent_s`` is None when it never got an in-flight slot, ``done_s`` None when it was unanswered at the
    cut-off. ``latency_ms`` runs from ``intended_s`` to the outcome (or to the cut-off).
    """

    index: int
    intended_s: float
    sent_s: float | None
    done_s: float | None
    latency_ms: float


@dataclass
class LoadResult:
    metrics: dict[str, float | None]
    completions: list[Completion]
    requests: list[LoadRequest] = field(default_factory=list)
    cold_start: ColdStart | None = None


def _resolve_client(client: Any, concurrency: int) -> Any:
    if hasattr(client, "complete_batch") or hasattr(client, "acomplete_batch"):
        return client
    if callable(client):
        made = client(concurrency)
        if not (hasattr(made, "complete_batch") or hasattr(made, "acomplete_batch")):
            raise TypeError(f"client factory returned {type(made).__name__}, which has no complete_batch")
        return made
    raise TypeError(f"{type(client).__name__} is neither a ChatClient nor a client factory")


def _failed(prompt: str, exc: BaseException) -> Completion:
    reason = f"client raised {type(exc).__name__}: {exc}"
    return Completion(prompt=prompt, text=None, latency_ms=NAN, error=reason, failed_attempts=(reason,))


def _single(prompt: str, answers: Any) -> Completion:
    """The one Completion a single-prompt batch call must return (the client contract, checked)."""
    answers = list(answers)
    if len(answers) != 1 or not isinstance(answers[0], Completion):
        raise TypeError(f"client returned {len(answers)} item(s) for 1 prompt, expected one Completion")
    return answers[0]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed (it comes with ``uvicorn[standard]``), else the standard loop.

    The generator shares the machine with the server it loads: uvloop cut the client's CPU per request
    by about a fifth (2.05 -> 1.66 ms in a micro-benchmark), which keeps the generator from becoming the
    bottleneck it measures.
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _run_coroutine(coroutine: Any) -> Any:
    """Run ``coroutine`` on a new event loop, on a fresh thread when this thread already runs one."""

    def run() -> Any:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(coroutine)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def _validate_prompts(prompts: Sequence[str]) -> None:
    if isinstance(prompts, str) or not prompts:
        raise ValueError("prompts must be a non-empty sequence of strings")


# ----------------------------------------------------------------------------- open loop
def arrival_times(rate_rps: float, duration_s: float, seed: int = 0) -> np.ndarray:
    """Poisson arrival times in ``[0, duration_s)`` at ``rate_rps``, exactly ``round(rate * duration)`` of them.

    They are a Poisson process conditioned on its count: sorted seeded uniform times, whose gaps are
    exponential with mean 1/rate (bursts and lulls as real traffic has). Drawing exponential gaps
    until ``duration_s`` instead leaves the count itself random (about +-1.6 % over 30 s at 150 req/s),
    so the offered rate would fall below the rate a gate asks for in about half the runs, through no
    fault of the server. The same (rate, duration, seed) always gives the same schedule.
    """
    if not rate_rps > 0:
        raise ValueError(f"rate_rps must be > 0, got {rate_rps}")
    if not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    count = round(rate_rps * duration_s)
    return np.sort(np.random.default_rng(seed).uniform(0.0, duration_s, size=count))


@contextlib.asynccontextmanager
async def _single_call(client: Any, max_in_flight: int) -> AsyncIterator[Call]:
    """How one prompt is sent: a pooled session, the async batch API, or a sync client on threads."""
    session = getattr(client, "session", None)
    if callable(session) and hasattr(client, "acomplete_batch"):  # OpenAIChatEndpoint: one pooled client
        async with session(max_connections=max_in_flight) as opened:
            yield opened.complete
        return
    if inspect.iscoroutinefunction(getattr(client, "acomplete_batch", None)):

        async def via_async_batch(prompt: str) -> Completion:
            return _single(prompt, await client.acomplete_batch([prompt]))

        yield via_async_batch
        return
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=min(max_in_flight, MAX_SYNC_THREADS))
    loop = asyncio.get_running_loop()

    async def via_threads(prompt: str) -> Completion:
        return _single(prompt, await loop.run_in_executor(pool, client.complete_batch, [prompt]))

    try:
        yield via_threads
    finally:
        # calls still running in threads cannot be interrupted; they are already counted as unanswered
        pool.shutdown(wait=False, cancel_futures=True)


async def arun_open_loop(
    client: ChatClient | Callable[[int], ChatClient],
    prompts: Sequence[str],
    *,
    rate_rps: float,
    duration_s: float,
    seed: int = 0,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    grace_s: float = DEFAULT_GRACE_S,
) -> LoadResult:
    """The open-loop load test on the running event loop (see the module docstring for the metrics)."""
    _validate_prompts(prompts)
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    if grace_s < 0:
        raise ValueError(f"grace_s must be >= 0, got {grace_s}")
    schedule = arrival_times(rate_rps, duration_s, seed)
    n = len(schedule)
    plan = [str(prompts[i % len(prompts)]) for i in range(n)]
    resolved = _resolve_client(client, max_in_flight)
    sent: list[float | None] = [None] * n
    done: list[float | None] = [None] * n
    results: list[Completion | None] = [None] * n
    in_flight = {"now": 0, "peak": 0}
    loop = asyncio.get_running_loop()

    async with _single_call(resolved, max_in_flight) as call:
        slots = asyncio.Semaphore(max_in_flight)
        t0 = loop.time()

        async def fire(index: int) -> None:
            async with slots:
                sent[index] = loop.time() - t0
                in_flight["now"] += 1
                in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
                try:
                    results[index] = await call(plan[index])
                except Exception as exc:  # the client is outside our control: record, keep loading
                    results[index] = _failed(plan[index], exc)
                finally:
                    in_flight["now"] -= 1
                done[index] = loop.time() - t0

        tasks: list[asyncio.Task[None]] = []
        for index, due in enumerate(schedule):
            delay = t0 + float(due) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(index)))
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            cutoff = t0 + duration_s + grace_s
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, cutoff - loop.time()))
        gave_up = loop.time() - t0
        if pending:
            # asyncio fires a timer up to one clock resolution early; the requests still pending
            # were given the whole cut-off, so that is when the run gave up on them
            gave_up = max(gave_up, duration_s + grace_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=_CANCEL_WAIT_S)

    return _open_loop_result(
        plan, schedule, sent, done, results, gave_up,
        rate_rps=rate_rps, duration_s=duration_s, grace_s=grace_s, max_in_flight=max_in_flight,
        peak_in_flight=in_flight["peak"],
    )


def _open_loop_result(
    plan: list[str],
    schedule: np.ndarray,
    sent: list[float | None],
    done: list[float | None],
    results: list[Completion | None],
    gave_up: float,
    *,
    rate_rps: float,
    duration_s: float,
    grace_s: float,
    max_in_flight: int,
    peak_in_flight: int,
) -> LoadResult:
    """Turn the raw timings into completions, per-request records and the gate metrics."""
    completions: list[Completion] = []
    requests: list[LoadRequest] = []
    not_sent = unanswered = 0
    for index, prompt in enumerate(plan):
        intended = float(schedule[index])
        completion, finished = results[index], done[index]
        if completion is None or finished is None:
            unanswered += 1
            if sent[index] is None:
                not_sent += 1
                reason = (f"not sent: {max_in_flight} requests stayed in flight until the cut-off at "
                          f"{duration_s + grace_s:g} s")
                client_latency = NAN
            else:
                reason = (f"timeout: no answer by the cut-off at {duration_s + grace_s:g} s "
                          f"(duration {duration_s:g} s + grace {grace_s:g} s)")
                client_latency = (gave_up - float(sent[index])) * 1000.0
            completion = Completion(prompt, None, client_latency, error=reason, failed_attempts=(reason,))
            finished = None
        end = finished if finished is not None else gave_up
        completions.append(completion)
        requests.append(LoadRequest(index, intended, sent[index], finished, (end - intended) * 1000.0))

    n = len(plan)
    ok = sum(c.ok for c in completions)
    attempts, failed_attempts = attempt_counts(completions)
    last_outcome = max((r.done_s if r.done_s is not None else gave_up for r in requests), default=0.0)
    span = max(duration_s, last_outcome)
    lags = [(r.sent_s - r.intended_s) * 1000.0 for r in requests if r.sent_s is not None]
    metrics: dict[str, float | None] = {
        "load_target_rps": float(rate_rps),
        "load_offered_rps": n / duration_s,
        "load_achieved_rps": _answer_rate(requests, completions),
        "load_n": float(n),
        "load_attempts": float(attempts),
        "load_errors": float(failed_attempts),
        "load_error_rate": rate(failed_attempts, attempts),
        "load_failed_requests": float(n - ok),
        "load_served_fraction": rate(ok, n),
        "load_unanswered": float(unanswered),
        "load_not_sent": float(not_sent),
        "load_duration_s": span,
        "load_peak_in_flight": float(peak_in_flight),
        "load_send_lag_p99_ms": float(np.percentile(lags, 99)) if lags else NAN,
    }
    metrics.update(latency_percentiles([r.latency_ms for r in requests], prefix="load_latency"))
    return LoadResult(metrics=metrics, completions=completions, requests=requests)


def _answer_rate(requests: list[LoadRequest], completions: list[Completion]) -> float:
    """Successful answers per second: slope of the answer count over completion time (see above)."""
    done = sorted(r.done_s for r, c in zip(requests, completions, strict=True) if c.ok and r.done_s is not None)
    if len(done) < 2 or done[-1] <= done[0]:
        return 0.0 if not done else NAN
    slope, _ = np.polyfit(np.asarray(done), np.arange(len(done), dtype=float), 1)
    return float(slope)


def run_open_loop(
    client: ChatClient | Callable[[int], ChatClient],
    prompts: Sequence[str],
    *,
    rate_rps: float,
    duration_s: float,
    seed: int = 0,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    grace_s: float = DEFAULT_GRACE_S,
) -> LoadResult:
    """Open-loop load test at ``rate_rps`` for ``duration_s`` (module docstring); synchronous entry point.

    ``client`` is an :class:`~llm_release.integrations.model_endpoint.OpenAIChatEndpoint` (one pooled
    session), any client with an async ``acomplete_batch``, a synchronous ``ChatClient`` (driven on
    threads), or a factory ``f(max_in_flight) -> client``. The run ends by ``duration_s + grace_s``.
    """
    return _run_coroutine(
        arun_open_loop(
            client, prompts, rate_rps=rate_rps, duration_s=duration_s, seed=seed,
            max_in_flight=max_in_flight, grace_s=grace_s,
        )
    )


def measure_cold_start(client: Any) -> ColdStart:
    """The client's cold-start measurement; "unmeasured" (None) when it has no way to ask for a scale-up."""
    measure = getattr(client, "measure_cold_start", None)
    if not callable(measure):
        return ColdStart(None, f"{type(client).__name__} cannot request a scale-up: cold start unmeasured")
    try:
        result = measure()
    except Exception as exc:  # the client is outside our control: unmeasured, with the reason
        return ColdStart(None, f"cold-start measurement raised {type(exc).__name__}: {exc}")
    if not isinstance(result, ColdStart):
        raise TypeError(f"measure_cold_start returned {type(result).__name__}, expected ColdStart")
    return result


def run_performance_test(
    client: ChatClient | Callable[[int], ChatClient],
    prompts: Sequence[str],
    *,
    rate_rps: float,
    duration_s: float,
    seed: int = 0,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    grace_s: float = DEFAULT_GRACE_S,
    cold_start: bool = True,
) -> LoadResult:
    """The stage-2 performance measurement: cold start first (a fresh replica), then the open-loop load.

    Cold start goes first so the scale-up does not disturb the load run; its metric ``cold_start_ms``
    joins the load metrics (None when unmeasured). ``cold_start=False`` skips it and leaves the metric
    out entirely, so a gate on it fails closed instead of seeing a number.
    """
    resolved = _resolve_client(client, max_in_flight)
    cold = measure_cold_start(resolved) if cold_start else None
    result = run_open_loop(
        resolved, prompts, rate_rps=rate_rps, duration_s=duration_s, seed=seed,
        max_in_flight=max_in_flight, grace_s=grace_s,
    )
    if cold is not None:
        result.metrics.update(cold.metrics)
        result.cold_start = cold
    return result


# ----------------------------------------------------------------------------- closed loop (baseline)
Results = list[Completion | None]


async def _run_async(client: Any, plan: list[str], concurrency: int, deadline: float) -> Results:
    """Closed loop on one event loop, sending through the same single-call path as the open loop."""
    results: list[Completion | None] = [None] * len(plan)
    cursor = iter(range(len(plan)))

    async with _single_call(client, concurrency) as call:

        async def worker() -> None:
            for index in cursor:  # shared iterator: each index is taken by exactly one worker
                if time.monotonic() >= deadline:
                    return
                try:
                    results[index] = await call(plan[index])
                except Exception as exc:
                    results[index] = _failed(plan[index], exc)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


def _run_threads(client: ChatClient, plan: list[str], concurrency: int, deadline: float) -> Results:
    results: list[Completion | None] = [None] * len(plan)
    lock = threading.Lock()
    cursor = iter(range(len(plan)))

    def worker() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None or time.monotonic() >= deadline:
                return
            try:
                results[index] = _single(plan[index], client.complete_batch([plan[index]]))
            except Exception as exc:
                results[index] = _failed(plan[index], exc)

    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return results


def run_load_test(
    client: ChatClient | Callable[[int], ChatClient],
    prompts: Sequence[str],
    concurrency: int,
    n_requests: int,
    max_duration_s: float = 300.0,
) -> LoadResult:
    """Closed-loop baseline: ``concurrency`` workers send ``n_requests`` prompts back to back.

    Kept to show what a closed loop hides (module docstring), not for gating: its latencies are the
    client's own per-call times (no waiting before the send is seen) and its throughput is what the
    server allowed. Error counting is honest all the same (``load_attempts``, ``load_errors`` = failed
    attempts). Requests not started before ``max_duration_s`` are counted in ``load_not_sent``.
    Metrics: ``load_n``, ``load_not_sent``, ``load_attempts``, ``load_errors``, ``load_error_rate``,
    ``load_failed_requests``, ``load_latency_p50/p95/p99_ms`` (every sent request), ``load_throughput_rps``
    (successful requests per second of wall time), ``load_duration_s``, ``load_concurrency``.
    """
    _validate_prompts(prompts)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if n_requests < 1:
        raise ValueError(f"n_requests must be >= 1, got {n_requests}")
    if max_duration_s <= 0:
        raise ValueError(f"max_duration_s must be > 0, got {max_duration_s}")
    resolved = _resolve_client(client, concurrency)
    plan = [str(prompts[i % len(prompts)]) for i in range(n_requests)]
    start = time.monotonic()
    deadline = start + max_duration_s
    if inspect.iscoroutinefunction(getattr(resolved, "acomplete_batch", None)):
        results = _run_coroutine(_run_async(resolved, plan, concurrency, deadline))
    else:
        results = _run_threads(resolved, plan, concurrency, deadline)
    duration = time.monotonic() - start
    sent = [c for c in results if c is not None]
    ok = [c for c in sent if c.ok]
    attempts, failed_attempts = attempt_counts(sent)
    metrics: dict[str, float | None] = {
        "load_n": float(len(sent)),
        "load_not_sent": float(len(plan) - len(sent)),
        "load_attempts": float(attempts),
        "load_errors": float(failed_attempts),
        "load_error_rate": rate(failed_attempts, attempts),
        "load_failed_requests": float(len(sent) - len(ok)),
        "load_throughput_rps": len(ok) / duration if duration > 0 else NAN,
        "load_duration_s": duration,
        "load_concurrency": float(concurrency),
    }
    metrics.update(latency_percentiles([c.latency_ms for c in sent], prefix="load_latency"))
    return LoadResult(metrics=metrics, completions=sent)
