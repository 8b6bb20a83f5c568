"""Traffic replayer: sends recorded customer queries to the gateway at a target rate.

It stands in for production users so canary windows, shadow mirroring and the metric triggers have
live traffic to look at. Arrivals are Poisson (or a fixed interval) and in-flight requests are capped,
so a slow backend lowers the achieved rate instead of piling up unbounded tasks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass, field

import httpx

log = logging.getLogger(__name__)



@dataclass
class ReplayStats:
    sent: int = 0
    ok: int = 0
    failed: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)


class TrafficReplayer:
    """Replays ``queries`` against ``gateway_url`` at ``rate_per_s`` until ``stop`` is set."""

    def __init__(
        self,
        gateway_url: str,
        queries: list[str],
        rate_per_s: float,
        *,
        concurrency: int | None = None,
        poisson: bool = True,
        seed: int = 0,
        timeout_s: float = 30.0,
        model: str = "default",
    ) -> None:
        if rate_per_s < 0:
            raise ValueError(f"rate_per_s must be >= 0, got {rate_per_s}")
        if concurrency is None:
            # customers do not wait for each other: enough slots for two seconds of arrivals, so the
            # replay keeps its rate through the servers' latency (8 slots capped it near 50/s)
            concurrency = max(8, math.ceil(2 * rate_per_s))
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if not queries:
            raise ValueError("queries: at least one query is required")
        self.url = gateway_url.rstrip("/") + "/v1/chat/completions"
        self.queries = list(queries)
        self.rate_per_s = rate_per_s
        self.concurrency = concurrency
        self.poisson = poisson
        self.timeout_s = timeout_s
        self.model = model
        self._rng = random.Random(seed)
        self.stats = ReplayStats()

    def _next_interval(self) -> float:
        if self.poisson:
            return self._rng.expovariate(self.rate_per_s)
        return 1.0 / self.rate_per_s

    async def _send(self, client: httpx.AsyncClient, query: str, slots: asyncio.Semaphore) -> None:
        try:
            payload = {"model": self.model, "messages": [{"role": "user", "content": query}]}
            response = await client.post(self.url, json=payload)
            key = str(response.status_code)
            self.stats.status_counts[key] = self.stats.status_counts.get(key, 0) + 1
            if response.status_code == 200:
                self.stats.ok += 1
            else:
                self.stats.failed += 1
        except httpx.HTTPError as exc:
            self.stats.failed += 1
            key = type(exc).__name__
            self.stats.status_counts[key] = self.stats.status_counts.get(key, 0) + 1
        finally:
            slots.release()

    async def run(self, stop: asyncio.Event) -> ReplayStats:
        """Send until ``stop`` is set; waits for in-flight requests (bounded by the timeout) at the end."""
        if self.rate_per_s == 0:
            await stop.wait()
            return self.stats
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        order = list(self.queries)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout_s, limits=limits) as client:
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            position = len(order)
            while not stop.is_set():
                next_at += self._next_interval()
                delay = next_at - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=delay)
                        break
                    except TimeoutError:
                        pass
                else:
                    next_at = loop.time()  # behind schedule: do not burst to catch up
                await slots.acquire()
                if stop.is_set():
                    slots.release()
                    break
                if position >= len(order):
                    self._rng.shuffle(order)
                    position = 0
                query = order[position]
                position += 1
                self.stats.sent += 1
                task = asyncio.create_task(self._send(client, query, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout_s)
        return self.stats
