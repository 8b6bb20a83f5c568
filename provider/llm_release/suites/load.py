"""Load test (stage 2 performance gates): latency percentiles, error rate and throughput under load.

``n_requests`` prompts (cycling through ``prompts``) are sent with at most ``concurrency`` in flight:

* a client with an async ``acomplete_batch`` (``OpenAIChatEndpoint``) gets ``concurrency`` worker
  coroutines, each sending one prompt at a time, on one event loop;
* a synchronous ``ChatClient`` gets ``concurrency`` worker threads calling ``complete_batch([prompt])``.

``client`` may also be a factory ``f(concurrency) -> client``, so the caller can size a connection pool
to the load. The run is bounded: at most ``n_requests`` calls, and requests not started before
``max_duration_s`` are skipped (counted in ``load_not_sent``, which a gate should require to be 0).

Metrics: ``load_n`` (sent), ``load_not_sent``, ``load_errors``, ``load_error_rate``,
``load_latency_p50_ms`` / ``_p95_ms`` / ``_p99_ms`` (successful requests), ``load_throughput_rps``
(successful requests per second of wall time), ``load_duration_s``, ``load_concurrency``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llm_release.suites._common import NAN, latency_percentiles, rate
from llm_release.suites.types import ChatClient, Completion


@dataclass
class LoadResult:
    metrics: dict[str, float]
    completions: list[Completion]


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
    return Completion(prompt=prompt, text=None, latency_ms=NAN, error=reason)


Results = list[Completion | None]


async def _run_async(client: Any, plan: list[str], concurrency: int, deadline: float) -> Results:
    results: list[Completion | None] = [None] * len(plan)
    cursor = iter(range(len(plan)))

    async def worker() -> None:
        for index in cursor:  # shared iterator: each index is taken by exactly one worker
            if time.monotonic() >= deadline:
                return
            try:
                results[index] = (await client.acomplete_batch([plan[index]]))[0]
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
                results[index] = client.complete_batch([plan[index]])[0]
            except Exception as exc:
                results[index] = _failed(plan[index], exc)

    with concurrent.futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    return results


def _run_coroutine(coroutine: Any) -> Any:
    """``asyncio.run``, or on a fresh thread when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run_load_test(
    client: ChatClient | Callable[[int], ChatClient],
    prompts: Sequence[str],
    concurrency: int,
    n_requests: int,
    max_duration_s: float = 300.0,
) -> LoadResult:
    """Send ``n_requests`` prompts with ``concurrency`` in flight and measure (see module docstring)."""
    if isinstance(prompts, str) or not prompts:
        raise ValueError("prompts must be a non-empty sequence of strings")
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
    metrics: dict[str, float] = {
        "load_n": float(len(sent)),
        "load_not_sent": float(len(plan) - len(sent)),
        "load_errors": float(len(sent) - len(ok)),
        "load_error_rate": rate(len(sent) - len(ok), len(sent)),
        "load_throughput_rps": len(ok) / duration if duration > 0 else NAN,
        "load_duration_s": duration,
        "load_concurrency": float(concurrency),
    }
    metrics.update(latency_percentiles([c.latency_ms for c in ok], prefix="load_latency"))
    return LoadResult(metrics=metrics, completions=sent)
