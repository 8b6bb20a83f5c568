"""``cursor_now`` points past everything already recorded and before everything that comes next; the dwell
trigger reads that stream (and the metrics) on real traffic."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from llm_release.integrations.metrics import GatewaySampleSource
from llm_release.localstack.airflow_stack import free_port
from llm_release.sandbox.runner import SandboxProcess

pytestmark = pytest.mark.integration


def _ask(gateway: str, query: str) -> None:
    body = {"model": "support-bot", "messages": [{"role": "user", "content": query}]}
    httpx.post(f"{gateway}/v1/chat/completions", json=body, timeout=10).raise_for_status()


def test_cursor_now_skips_old_samples_and_sees_new_ones(tmp_path) -> None:
    with SandboxProcess(tmp_path, gateway_port=free_port(), stable_port=free_port(),
                        candidate_port=free_port(), replay_rate=0.0) as sandbox:
        gateway = sandbox.gateway_url
        source = GatewaySampleSource(gateway)
        for i in range(5):
            _ask(gateway, f"How do I reset my password? ({i})")
        old, _ = source.fetch("stable", "live", since=0)
        cursor = source.cursor_now("stable", "live")
        assert len(old) == 5 and cursor == old[-1]["seq"] + 1
        _ask(gateway, "What are your support hours?")
        new, after = source.fetch("stable", "live", since=cursor)
        assert [s["query"] for s in new] == ["What are your support hours?"]
        assert after > cursor


def _dwell_trigger(gateway: str, *, dwell_seconds: float, max_seconds: float, minute_seconds: float) -> Any:
    from llm_release.decisions.dwell import DwellPolicy
    from llm_release.policy import DEFAULT_PROFILE, load_policy
    from llm_release.triggers.rollout import RolloutDwellTrigger

    return RolloutDwellTrigger(
        mode="canary", phase="progressive_50", candidate_backend="candidate", baseline_backend="stable",
        metrics_url=f"{gateway}/metrics", samples_url=gateway, dwell_seconds=dwell_seconds,
        minute_seconds=minute_seconds, poll_seconds=0.5, max_seconds=max_seconds,
        dwell_policy=DwellPolicy.of(load_policy(DEFAULT_PROFILE)).model_dump(mode="json"),
    )


def _wait_for_violations_to_stop(gateway: str, *, quiet_s: float = 2.0, limit_s: float = 30.0) -> None:
    """Wait until the candidate's violation counter has not moved for ``quiet_s``.

    A fixed sleep was not enough on a loaded CI machine: answers produced under the fault were still being
    counted seconds after it was switched off, and landed in the healthy dwell's first window.
    """
    from llm_release.integrations.metrics import GatewayMetricsSource, window_stats

    source = GatewayMetricsSource(f"{gateway}/metrics")
    deadline = time.monotonic() + limit_s
    prev = source.scrape()
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cur = source.scrape()
        if window_stats(prev, cur, "candidate", "live").policy_violations:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        prev = cur
    raise AssertionError(f"candidate policy violations still counted {limit_s:.0f}s after the fault was cleared")


def test_the_dwell_trigger_on_real_traffic_rolls_back_a_violating_candidate_and_passes_a_good_one(tmp_path) -> None:
    """Real gateway, model servers and replayed traffic: scrape -> window -> judge -> dwell_step -> event."""
    from llm_release.integrations.router import SandboxGatewayRouter

    with SandboxProcess(tmp_path, gateway_port=free_port(), stable_port=free_port(),
                        candidate_port=free_port(), replay_rate=60.0) as sandbox:
        gateway = sandbox.gateway_url
        SandboxGatewayRouter(gateway).set_weights({"stable": 50, "candidate": 50})
        faults = f"{sandbox.urls['candidate']}/admin/faults"
        httpx.put(faults, json={"policy_violation_rate": 1.0}, timeout=5).raise_for_status()
        started = time.monotonic()
        event = asyncio.run(
            _dwell_trigger(gateway, dwell_seconds=5.0, max_seconds=60.0, minute_seconds=0.01).watch()
        )
        assert event["status"] == "rollback" and event["trigger"] == "policy_violation_rollback", event["reason"]
        # "at once": long before the 60 s limit; the first window waits for the claim judge's model load
        # (MiniLM, seconds on a busy machine), which every later window reuses
        assert time.monotonic() - started < 45
        httpx.put(faults, json={"policy_violation_rate": 0.0}, timeout=5).raise_for_status()
        _wait_for_violations_to_stop(gateway)  # answers given under the fault drain out of the next window
        # a healthy candidate: the dwell completes once its rates are confidently clean (or goes to a
        # person when the traffic is too thin to decide within the limit; it never "passes" on no data)
        started = time.monotonic()
        event = asyncio.run(
            _dwell_trigger(gateway, dwell_seconds=5.0, max_seconds=60.0, minute_seconds=0.01).watch()
        )
        took = time.monotonic() - started
        assert event["status"] in ("done", "page"), event["reason"]
        metrics = event["phase_metrics"]
        print(f"healthy dwell: {event['status']} after {took:.1f}s, {metrics['requests']} requests, "
              f"{metrics['judged_samples']} judged, clean {event['clean_seconds']:.1f}s; {event['reason']}")
        if event["status"] == "done":
            assert metrics["requests"] >= 20 and metrics["scs"] is not None
            assert metrics["error_rate_interval"][1] <= 0.015
