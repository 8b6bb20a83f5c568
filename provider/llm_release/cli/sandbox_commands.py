"""``llm-release sandbox up|down|status|faults``: manage the local serving sandbox.

``up`` starts one background process group (model servers, gateway, replayer) and records it in
``<state-dir>/state.json``; the other commands find it there.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from llm_release.sandbox.runner import (
    DEFAULT_CANDIDATE_PORT,
    DEFAULT_GATEWAY_PORT,
    DEFAULT_REPLAY_RATE,
    DEFAULT_STABLE_PORT,
    STARTUP_TIMEOUT_S,
    STATE_FILE,
    SandboxError,
    SandboxProcess,
    health,
    pid_alive,
    read_state,
)

STATE_DIR_ENV = "LLM_RELEASE_SANDBOX_DIR"
BUILDS = ("stable", "candidate")


def default_state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or Path.home() / ".llm-release" / "sandbox")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("sandbox", help="Local sandbox: model servers, gateway, traffic replayer.")
    commands = parser.add_subparsers(dest="sandbox_command", required=True)

    def with_state_dir(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--state-dir",
            type=Path,
            default=None,
            help=f"where state.json and the log live (default: ${STATE_DIR_ENV} or ~/.llm-release/sandbox)",
        )
        return sub

    up = with_state_dir(commands.add_parser("up", help="start the sandbox in the background"))
    up.add_argument("--gateway-port", type=int, default=DEFAULT_GATEWAY_PORT)
    up.add_argument("--stable-port", type=int, default=DEFAULT_STABLE_PORT)
    up.add_argument("--candidate-port", type=int, default=DEFAULT_CANDIDATE_PORT)
    up.add_argument("--replay-rate", type=float, default=DEFAULT_REPLAY_RATE, help="requests/second")
    up.add_argument("--seed", type=int, default=0)
    up.add_argument("--startup-timeout", type=float, default=STARTUP_TIMEOUT_S, help="seconds to wait for /healthz")
    up.set_defaults(func=cmd_up)

    down = with_state_dir(commands.add_parser("down", help="stop the sandbox"))
    down.set_defaults(func=cmd_down)

    status = with_state_dir(commands.add_parser("status", help="state and health; exit 1 if down"))
    status.set_defaults(func=cmd_status)

    faults = with_state_dir(
        commands.add_parser("faults", help="show or change a build's faults, e.g. error_rate=0.05 seed=3")
    )
    faults.add_argument("build", choices=BUILDS)
    faults.add_argument("settings", nargs="*", metavar="key=value")
    faults.set_defaults(func=cmd_faults)


def _state_dir(args: argparse.Namespace) -> Path:
    return args.state_dir or default_state_dir()


def _checked_state(state_dir: Path) -> dict[str, Any] | None:
    """``state.json`` of ``state_dir`` (None if there is none), checked to have the shape ``up`` writes.

    The file is ours, but a person may have edited it or left one from another version; a ``KeyError``
    deep in a command would say nothing useful. Raises ``SandboxError`` naming the file and the problem.
    """
    state = read_state(state_dir)
    if state is None:
        return None
    path = state_dir / STATE_FILE
    hint = f"; stop the sandbox by hand if it runs, then delete {path}"
    if not isinstance(state, dict):
        raise SandboxError(f"{path}: expected a JSON object, got {type(state).__name__}{hint}")
    pid, urls = state.get("pid"), state.get("urls")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        raise SandboxError(f"{path}: field 'pid': expected a positive integer, got {pid!r}{hint}")
    if not isinstance(urls, dict) or not all(isinstance(u, str) for u in urls.values()):
        raise SandboxError(f"{path}: field 'urls': expected a mapping of component to URL{hint}")
    return state


def cmd_up(args: argparse.Namespace) -> int:
    sandbox = SandboxProcess(
        _state_dir(args),
        args.gateway_port,
        args.stable_port,
        args.candidate_port,
        args.replay_rate,
        seed=args.seed,
        startup_timeout_s=args.startup_timeout,
    )
    try:
        state = sandbox.start()
    except SandboxError as exc:
        print(f"sandbox up failed: {exc}", file=sys.stderr)
        return 1
    print(f"sandbox running (pid {state['pid']}), state in {sandbox.state_path}")
    for name, url in state["urls"].items():
        print(f"  {name:<9} {url}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    try:
        state = _checked_state(state_dir)
    except SandboxError as exc:
        print(f"sandbox down: {exc}", file=sys.stderr)
        return 1
    if state is None:
        print(f"no sandbox recorded in {state_dir}")
        return 0
    stopped = SandboxProcess(state_dir).stop()
    print(f"sandbox (pid {state['pid']}) {'stopped' if stopped else 'was not running; state removed'}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    try:
        state = _checked_state(state_dir)
    except SandboxError as exc:
        print(f"sandbox status: {exc}", file=sys.stderr)
        return 1
    if state is None:
        print(f"not running (no state in {state_dir})")
        return 1
    alive = pid_alive(int(state["pid"]))
    checks = health(state["urls"]) if alive else dict.fromkeys(state["urls"], False)
    print(json.dumps({"state": state, "process_alive": alive, "health": checks}, indent=2))
    return 0 if alive and all(checks.values()) else 1


def _parse_setting(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"expected key=value, got {item!r}")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def cmd_faults(args: argparse.Namespace) -> int:
    state_dir = _state_dir(args)
    try:
        state = _checked_state(state_dir)
    except SandboxError as exc:
        print(f"sandbox faults: {exc}", file=sys.stderr)
        return 1
    if state is None:
        print(f"no sandbox recorded in {state_dir}; run `llm-release sandbox up` first", file=sys.stderr)
        return 1
    if args.build not in state["urls"]:
        print(f"sandbox faults: {state_dir / STATE_FILE} has no URL for {args.build!r}", file=sys.stderr)
        return 1
    url = f"{state['urls'][args.build]}/admin/faults"
    try:
        patch = dict(_parse_setting(item) for item in args.settings)
    except ValueError as exc:
        print(f"sandbox faults: {exc}", file=sys.stderr)
        return 2
    try:
        with httpx.Client(timeout=10.0) as client:
            response = client.put(url, json=patch) if patch else client.get(url)
    except httpx.HTTPError as exc:
        print(f"sandbox faults: {url} unreachable: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"sandbox faults: {url} answered {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    print(json.dumps(response.json(), indent=2))
    return 0
