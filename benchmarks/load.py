"""Load benchmark of the sandbox candidate model server: does it meet the spec's performance gates?

Starts the whole sandbox (``llm_release.sandbox.runner``, as ``llm-release sandbox up`` does: stable and
candidate model servers, the gateway and the traffic replayer in one process) on free 127.0.0.1 ports,
then, against the candidate model server, with the generator on the same machine:

1. the cold start: ``measure_cold_start`` (scale-up hook, first request timed);
2. the open-loop generator at the spec's 150 req/s for ``--duration`` s (Poisson arrivals, latency from
   each request's intended send time, unanswered requests counted as errors);
3. the closed-loop baseline (16 workers, as the old load test did) with the same number of requests: it
   reports the server's own latency and hides queueing, so the ratio open/closed p99 shows what a
   closed loop under-reports (about 1 when the server keeps up; large when it does not);
4. a rate search: the rate steps up until p99 crosses 2,800 ms (the spec's p95 gate, the release
   acceleration criterion's p99), within ``--budget`` s in all; ``max_sustainable_rps`` is the highest
   rate whose p99 stayed at or below it. The first failing rate also gets a closed-loop baseline.

Figures only, no assertion: timings on a shared 2-core machine vary. The last line is one JSON object:
``{"offered_rps", "achieved_rps", "p50_ms", "p99_ms", "error_rate", "max_sustainable_rps"}`` (the
150 req/s run, plus the search result).

    .venv/bin/python benchmarks/load.py [--duration 20] [--budget 180]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import tempfile
import time
from typing import Any

from llm_release.integrations.model_endpoint import OpenAIChatEndpoint
from llm_release.sandbox.runner import SandboxProcess
from llm_release.suites.datasets import load_validation_set
from llm_release.suites.load import LoadResult, run_load_test, run_open_loop

SPEC_RATE_RPS = 150.0  # spec section 3: throughput >= 150 req/s at peak load
P99_LIMIT_MS = 2800.0
CLOSED_LOOP_WORKERS = 16  # the old LoadTestOperator default
SEARCH_STEP_S = 8.0
SEARCH_GRACE_S = 5.0
# Above this the generator sent late: the step measured the shared machine's generator as much as the server.
GENERATOR_LAG_NOTE_MS = 500.0


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc), None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fmt(value: Any, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def describe(label: str, m: dict[str, Any]) -> str:
    return (
        f"{label}: offered {fmt(m['load_offered_rps'], 1)}/s, achieved {fmt(m['load_achieved_rps'], 1)}/s, "
        f"n {fmt(m['load_n'])}, served {fmt(m['load_served_fraction'], 4)}, attempts {fmt(m['load_attempts'])}, "
        f"error rate {fmt(m['load_error_rate'], 4)}, "
        f"p50 {fmt(m['load_latency_p50_ms'])} ms, p95 {fmt(m['load_latency_p95_ms'])} ms, "
        f"p99 {fmt(m['load_latency_p99_ms'])} ms, unanswered {fmt(m['load_unanswered'])}, "
        f"peak in flight {fmt(m['load_peak_in_flight'])}, generator send lag p99 {fmt(m['load_send_lag_p99_ms'], 1)} ms"
        + (" [generator lagging]" if (m["load_send_lag_p99_ms"] or 0.0) > GENERATOR_LAG_NOTE_MS else "")
    )


def closed_baseline(endpoint: OpenAIChatEndpoint, prompts: list[str], open_run: LoadResult, budget_s: float) -> None:
    """Closed-loop run with the same request count; prints its p99 and the open/closed ratio."""
    n = int(open_run.metrics["load_n"] or 0)
    if n < 1:
        return
    closed = run_load_test(endpoint, prompts, concurrency=CLOSED_LOOP_WORKERS, n_requests=n, max_duration_s=budget_s)
    cm, om = closed.metrics, open_run.metrics
    ratio = (om["load_latency_p99_ms"] or math.nan) / (cm["load_latency_p99_ms"] or math.nan)
    print(
        f"  closed-loop baseline ({CLOSED_LOOP_WORKERS} workers, {n} requests): "
        f"throughput {fmt(cm['load_throughput_rps'], 1)}/s in {fmt(cm['load_duration_s'], 1)} s, "
        f"p50 {fmt(cm['load_latency_p50_ms'])} ms, p99 {fmt(cm['load_latency_p99_ms'])} ms, "
        f"not sent {fmt(cm['load_not_sent'])}; open/closed p99 = {fmt(ratio, 2)}x",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the 150 req/s run")
    parser.add_argument("--budget", type=float, default=180.0, help="bound on the whole benchmark, seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay-rate", type=float, default=20.0, help="sandbox replayer traffic (req/s)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    prompts = list(load_validation_set()["query"])

    with tempfile.TemporaryDirectory(prefix="llm-release-load-") as state_dir:
        sandbox = SandboxProcess(
            state_dir, gateway_port=free_port(), stable_port=free_port(), candidate_port=free_port(),
            replay_rate=args.replay_rate, seed=args.seed,
        )
        with sandbox:
            url = sandbox.urls["candidate"]
            print(f"sandbox up: candidate {url} (replayer {args.replay_rate:g} req/s to stable via the gateway)",
                  flush=True)
            endpoint = OpenAIChatEndpoint(url, model="northwind-support-candidate")

            cold = endpoint.measure_cold_start()
            print(f"cold start: {fmt(cold.cold_start_ms)} ms ({cold.detail})", flush=True)

            server_cpu, client_cpu = process_cpu_s(sandbox.pid or 0), time.process_time()
            main_run = run_open_loop(endpoint, prompts, rate_rps=SPEC_RATE_RPS, duration_s=args.duration,
                                     seed=args.seed)
            client_cpu = time.process_time() - client_cpu
            server_after = process_cpu_s(sandbox.pid or 0)
            m = main_run.metrics
            print(describe(f"open loop {SPEC_RATE_RPS:g} req/s x {args.duration:g} s", m), flush=True)
            n_main = m["load_n"] or math.nan
            if server_cpu is not None and server_after is not None:
                per_server = 1000 * (server_after - server_cpu) / n_main
                print(f"  CPU per candidate request: sandbox process {per_server:.2f} ms (includes its replayer, "
                      f"gateway and stable traffic), generator {1000 * client_cpu / n_main:.2f} ms", flush=True)
            closed_baseline(endpoint, prompts, main_run, budget_s=60.0)

            # rate search: step up from 150 while p99 holds; step down if 150 itself fails
            passing: list[float] = []
            if (m["load_latency_p99_ms"] or math.inf) <= P99_LIMIT_MS:
                passing.append(SPEC_RATE_RPS)
                rates = [200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 500.0, 600.0, 700.0, 800.0]
            else:
                rates = [100.0, 50.0, 25.0]
            for step_rate in rates:
                if time.monotonic() - started + SEARCH_STEP_S + SEARCH_GRACE_S + 2.0 > args.budget:
                    print(f"rate search stopped: the {args.budget:g} s budget is spent", flush=True)
                    break
                time.sleep(1.0)  # let the previous step drain
                step = run_open_loop(endpoint, prompts, rate_rps=step_rate, duration_s=SEARCH_STEP_S,
                                     seed=args.seed, grace_s=SEARCH_GRACE_S)
                sm = step.metrics
                ok = (sm["load_latency_p99_ms"] or math.inf) <= P99_LIMIT_MS
                print(describe(f"  search {step_rate:g} req/s x {SEARCH_STEP_S:g} s [{'ok' if ok else 'p99 > limit'}]",
                               sm), flush=True)
                if ok:
                    passing.append(step_rate)
                    if rates[0] < SPEC_RATE_RPS:  # stepping down: the first passing rate is the answer
                        break
                elif rates[0] > SPEC_RATE_RPS:
                    closed_baseline(endpoint, prompts, step, budget_s=30.0)
                    break
        print(f"sandbox stopped; benchmark took {time.monotonic() - started:.0f} s", flush=True)

    result = {
        "offered_rps": round(m["load_offered_rps"], 1),
        "achieved_rps": round(m["load_achieved_rps"], 1),
        "p50_ms": round(m["load_latency_p50_ms"], 1),
        "p99_ms": round(m["load_latency_p99_ms"], 1),
        "error_rate": round(m["load_error_rate"], 5),
        "max_sustainable_rps": max(passing) if passing else None,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
