"""Run the whole sandbox (two model servers, the gateway, the replayer) in one process and one loop.

``python -m llm_release.sandbox.runner --state-dir DIR`` is what ``llm-release sandbox up`` starts in
the background; :class:`SandboxProcess` is the Python handle around that process for tests and the
CLI. One process keeps the footprint small on a machine that also runs Airflow, and one process group
lets ``down`` stop everything with a single signal.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from llm_release.data.traffic import load_traffic_queries
from llm_release.sandbox.faults import FaultSettings
from llm_release.sandbox.gateway import create_gateway_app
from llm_release.sandbox.model_server import DEFAULT_COLD_START_MS, create_model_server_app
from llm_release.sandbox.replayer import TrafficReplayer
from llm_release.suites.knowledge_base import KnowledgeBase

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
DEFAULT_GATEWAY_PORT = 8700
DEFAULT_STABLE_PORT = 8701
DEFAULT_CANDIDATE_PORT = 8702
DEFAULT_REPLAY_RATE = 20.0
STATE_FILE = "state.json"
LOG_FILE = "sandbox.log"
STOP_GRACE_S = 10.0
STARTUP_TIMEOUT_S = 90.0
"""Bound on the wait for every component's /healthz: the model servers load MiniLM (about 8 s idle, over 30 s on a
busy 2-core machine), so 30 s failed start-ups that were only slow."""


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the runner (several servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _url(port: int) -> str:
    return f"http://{HOST}:{port}"


async def run_sandbox(
    gateway_port: int = DEFAULT_GATEWAY_PORT,
    stable_port: int = DEFAULT_STABLE_PORT,
    candidate_port: int = DEFAULT_CANDIDATE_PORT,
    replay_rate: float = DEFAULT_REPLAY_RATE,
    *,
    seed: int = 0,
    traffic_path: str | None = None,
    stop: asyncio.Event | None = None,
    log_level: str = "warning",
    cold_start_ms: float = DEFAULT_COLD_START_MS,
) -> None:
    """Serve until ``stop`` is set (or SIGTERM/SIGINT when run as the main program).

    ``cold_start_ms`` is each model server's simulated model load (first request after start-up or
    after ``POST /admin/scale-up``).
    """
    stop = stop or asyncio.Event()
    kb = KnowledgeBase.load()
    faults = FaultSettings(seed=seed)
    backends = {"stable": _url(stable_port), "candidate": _url(candidate_port)}
    apps = [
        (create_model_server_app("stable", kb, faults, cold_start_ms=cold_start_ms), stable_port),
        (create_model_server_app("candidate", kb, faults, cold_start_ms=cold_start_ms), candidate_port),
        (create_gateway_app(backends, {"stable": 100, "candidate": 0}, None, seed=seed), gateway_port),
    ]
    servers = [
        _Server(
            uvicorn.Config(app, host=HOST, port=port, log_level=log_level, access_log=False, lifespan="on")
        )
        for app, port in apps
    ]
    serve_tasks = [asyncio.create_task(server.serve()) for server in servers]

    # Start the replayer only once every server is accepting connections.
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not all(server.started for server in servers):
        if any(task.done() for task in serve_tasks) or time.monotonic() > deadline:
            stop.set()
            break
        await asyncio.sleep(0.05)
    replayer = TrafficReplayer(_url(gateway_port), load_traffic_queries(traffic_path), replay_rate, seed=seed)
    replay_task = asyncio.create_task(replayer.run(stop), name="replayer")
    log.info("sandbox serving: gateway %s, stable %s, candidate %s, replay %.1f/s",
             _url(gateway_port), backends["stable"], backends["candidate"], replay_rate)

    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait([stop_wait, *serve_tasks], return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await asyncio.wait([replay_task], timeout=5.0)
    for server in servers:
        server.should_exit = True
    results = await asyncio.gather(*serve_tasks, return_exceptions=True)
    stop_wait.cancel()
    failures = [
        r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
    ]
    if failures:
        raise RuntimeError(f"sandbox server failed: {failures[0]!r}") from failures[0]
    if not all(server.started for server in servers):
        raise RuntimeError("a sandbox server did not start (port in use?)")
    log.info("sandbox stopped; replayer sent %d requests", replayer.stats.sent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llm_release.sandbox.runner", description=__doc__)
    parser.add_argument("--state-dir", required=True, help="directory for state.json and the log")
    parser.add_argument("--gateway-port", type=int, default=DEFAULT_GATEWAY_PORT)
    parser.add_argument("--stable-port", type=int, default=DEFAULT_STABLE_PORT)
    parser.add_argument("--candidate-port", type=int, default=DEFAULT_CANDIDATE_PORT)
    parser.add_argument("--replay-rate", type=float, default=DEFAULT_REPLAY_RATE, help="requests per second")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--traffic", default=None, help="JSONL traffic file (default: shipped queries)")
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--cold-start-ms", type=float, default=DEFAULT_COLD_START_MS,
                        help="simulated model load of a fresh model-server replica (0 disables)")
    args = parser.parse_args(argv)
    log_format = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=args.log_level.upper(), format=log_format)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied request is too much
    Path(args.state_dir).mkdir(parents=True, exist_ok=True)

    async def _main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_sandbox(
            args.gateway_port, args.stable_port, args.candidate_port, args.replay_rate,
            seed=args.seed, traffic_path=args.traffic, stop=stop, log_level=args.log_level,
            cold_start_ms=args.cold_start_ms,
        )

    try:
        asyncio.run(_main())
    except RuntimeError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------- process handle
class SandboxError(RuntimeError):
    """The sandbox could not be started, reached or stopped (message says which and why)."""


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists; reaps it first if it is an exited child of this process (a zombie)."""
    with contextlib.suppress(ChildProcessError, OSError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(state_dir: str | Path) -> dict[str, Any] | None:
    """The ``state.json`` of a sandbox started in ``state_dir``, or None if there is none."""
    path = Path(state_dir) / STATE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise SandboxError(f"{path}: not valid JSON: {exc}") from exc


def health(urls: dict[str, str], timeout_s: float = 2.0) -> dict[str, bool]:
    """``/healthz`` of every component (True = answered 200)."""
    status: dict[str, bool] = {}
    with httpx.Client(timeout=timeout_s) as client:
        for name, url in urls.items():
            try:
                status[name] = client.get(f"{url}/healthz").status_code == 200
            except httpx.HTTPError:
                status[name] = False
    return status


class SandboxProcess:
    """Start/stop the sandbox as a background process group; also a context manager.

    ``state.json`` in ``state_dir``::

        {"pid": 1234, "pgid": 1234, "started_at": 1.7e9, "host": "127.0.0.1",
         "ports": {"gateway": 8700, "stable": 8701, "candidate": 8702},
         "urls": {"gateway": "http://127.0.0.1:8700", "stable": "...", "candidate": "..."},
         "replay_rate": 20.0, "seed": 0, "log": "<state_dir>/sandbox.log"}
    """

    def __init__(
        self,
        state_dir: str | Path,
        gateway_port: int = DEFAULT_GATEWAY_PORT,
        stable_port: int = DEFAULT_STABLE_PORT,
        candidate_port: int = DEFAULT_CANDIDATE_PORT,
        replay_rate: float = DEFAULT_REPLAY_RATE,
        *,
        seed: int = 0,
        traffic_path: str | Path | None = None,
        startup_timeout_s: float = STARTUP_TIMEOUT_S,
        stop_grace_s: float = STOP_GRACE_S,
        log_level: str = "warning",
        cold_start_ms: float | None = None,
    ) -> None:
        ports = {"gateway": gateway_port, "stable": stable_port, "candidate": candidate_port}
        if len(set(ports.values())) != 3:
            raise ValueError(f"ports must be distinct, got {ports}")
        self.state_dir = Path(state_dir)
        self.ports = ports
        self.urls = {name: _url(port) for name, port in ports.items()}
        self.replay_rate = replay_rate
        self.seed = seed
        self.traffic_path = traffic_path
        self.startup_timeout_s = startup_timeout_s
        self.stop_grace_s = stop_grace_s
        self.log_level = log_level
        self.cold_start_ms = cold_start_ms
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def state_path(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.state_dir / LOG_FILE

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    def _command(self) -> list[str]:
        command = [
            sys.executable, "-m", "llm_release.sandbox.runner",
            "--state-dir", str(self.state_dir),
            "--gateway-port", str(self.ports["gateway"]),
            "--stable-port", str(self.ports["stable"]),
            "--candidate-port", str(self.ports["candidate"]),
            "--replay-rate", str(self.replay_rate),
            "--seed", str(self.seed),
            "--log-level", self.log_level,
        ]
        if self.traffic_path is not None:
            command += ["--traffic", str(self.traffic_path)]
        if self.cold_start_ms is not None:
            command += ["--cold-start-ms", str(self.cold_start_ms)]
        return command

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def start(self) -> dict[str, Any]:
        """Start the process, wait until every component answers ``/healthz``, write ``state.json``."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        existing = read_state(self.state_dir)
        if existing and pid_alive(int(existing["pid"])):
            raise SandboxError(f"a sandbox is already running from {self.state_path} (pid {existing['pid']})")
        with open(self.log_path, "ab") as log_file:
            self._proc = subprocess.Popen(
                self._command(), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, close_fds=True,
            )
        self.pid = self._proc.pid
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self._proc.poll() is not None:
                raise SandboxError(
                    f"sandbox exited with code {self._proc.returncode} during start-up; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            if all(health(self.urls, timeout_s=1.0).values()):
                break
            if time.monotonic() > deadline:
                self._terminate_group()
                raise SandboxError(
                    f"sandbox not healthy within {self.startup_timeout_s}s; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(0.2)
        state = {
            "pid": self.pid,
            "pgid": self.pid,
            "started_at": time.time(),
            "host": HOST,
            "ports": self.ports,
            "urls": self.urls,
            "replay_rate": self.replay_rate,
            "seed": self.seed,
            "log": str(self.log_path),
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2), encoding="utf-8")
        tmp.replace(self.state_path)
        return state

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return True
            elif not pid_alive(pid):
                return True
            time.sleep(0.1)
        return False

    def _terminate_group(self, pid: int | None = None) -> bool:
        """SIGTERM the process group, wait up to ``stop_grace_s``, then SIGKILL. True if it was running."""
        pid = pid or self.pid
        if pid is None:
            return False
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        if not self._wait_gone(pid, self.stop_grace_s):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self._wait_gone(pid, 5.0)
        return True

    def stop(self) -> bool:
        """Stop the sandbox recorded in ``state_dir`` (or started by this handle); remove ``state.json``."""
        pid = self.pid
        if pid is None:
            state = read_state(self.state_dir)
            pid = int(state["pgid"]) if state else None
        stopped = self._terminate_group(pid) if pid is not None else False
        with contextlib.suppress(FileNotFoundError):
            self.state_path.unlink()
        self.pid, self._proc = None, None
        return stopped

    def __enter__(self) -> SandboxProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
