"""``cursor_now`` points past everything already recorded and before everything that comes next."""

from __future__ import annotations

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
