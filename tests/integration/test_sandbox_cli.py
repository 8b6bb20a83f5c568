"""`llm-release sandbox up|status|faults|down` end to end: one background process group, cleaned up."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from llm_release.cli import main
from llm_release.sandbox.runner import SandboxError, SandboxProcess, pid_alive, read_state

pytestmark = pytest.mark.integration


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def live_requests(gateway_url: str) -> float:
    text = httpx.get(f"{gateway_url}/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("llm_gateway_requests_total{") and 'mode="live"' in line
    )


def test_up_status_faults_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gateway, stable, candidate = free_ports(3)
    state_dir = tmp_path / "sandbox"
    common = ["--state-dir", str(state_dir)]
    up = ["sandbox", "up", *common, "--gateway-port", str(gateway), "--stable-port", str(stable),
          "--candidate-port", str(candidate), "--replay-rate", "20"]
    assert main(up) == 0
    state = read_state(state_dir)
    assert state is not None
    try:
        assert state["ports"] == {"gateway": gateway, "stable": stable, "candidate": candidate}
        assert state["urls"]["gateway"] == f"http://127.0.0.1:{gateway}"
        assert state["pgid"] == state["pid"] and pid_alive(state["pid"])
        assert f"http://127.0.0.1:{gateway}" in capsys.readouterr().out

        assert main(["sandbox", "status", *common]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["health"] == {"gateway": True, "stable": True, "candidate": True}

        # The replayer drives live traffic on its own.
        deadline = time.monotonic() + 10
        while live_requests(state["urls"]["gateway"]) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert live_requests(state["urls"]["gateway"]) >= 10

        assert main(["sandbox", "faults", "candidate", "hallucination_rate=0.25", "seed=7", *common]) == 0
        faults = json.loads(capsys.readouterr().out)
        assert faults["hallucination_rate"] == 0.25 and faults["seed"] == 7
        assert httpx.get(f"{state['urls']['candidate']}/admin/faults").json() == faults
        assert main(["sandbox", "faults", "candidate", "hallucination_rate=3", *common]) == 1
        assert "hallucination_rate" in capsys.readouterr().err

        # A second `up` on the same state dir refuses instead of starting a twin.
        with pytest.raises(SandboxError, match="already running"):
            SandboxProcess(state_dir, *free_ports(3)).start()
    finally:
        assert main(["sandbox", "down", *common]) == 0
    assert "stopped" in capsys.readouterr().out
    assert not group_alive(state["pgid"])
    assert read_state(state_dir) is None
    assert main(["sandbox", "status", *common]) == 1
    assert (state_dir / "sandbox.log").exists()  # the log is kept for post-mortems


def test_stop_kills_a_process_group_that_ignores_sigterm(tmp_path: Path) -> None:
    """`down` must not leave anything behind even if the runner hangs on SIGTERM."""
    gateway, stable, candidate = free_ports(3)
    process = SandboxProcess(tmp_path, gateway, stable, candidate, replay_rate=0, stop_grace_s=1.0)
    process.start()
    pid = process.pid
    assert pid is not None
    # Make the runner ignore SIGTERM by stopping it (SIGSTOP): only SIGKILL can end it now.
    os.killpg(pid, signal.SIGSTOP)
    started = time.monotonic()
    assert process.stop() is True
    assert time.monotonic() - started < 8
    assert not group_alive(pid)
