"""``llm-release demo``: the whole local stack with the example release DAG, on embedded defaults.

Starts the sandbox (model servers, gateway, replayed traffic), an MLflow server on a SQLite store,
and ``airflow standalone`` with this repository's ``dags/`` and ``plugins/``; creates one user per
approver role; registers a production and a candidate version; triggers a release of the good
candidate; prints the UI address and how to approve; runs until interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from llm_release.localstack.airflow_client import AirflowClient, task_id_of, wait_until
from llm_release.localstack.airflow_stack import AirflowStack, _signal_group, airflow_env
from llm_release.localstack.seed import SandboxPorts, connections_env, seed_registry

DEMO_USERS = {"admin": "admin", "alice": "user", "bob": "user", "carol": "user", "dana": "user"}
ROLE_OF_USER = {
    "alice": "ML Lead",
    "bob": "Support Ops Lead",
    "carol": "Safety Reviewer",
    "dana": "Executive",
}
MODEL = "support-llm"
DAG_ID = "release_support_llm"


def run_demo(
    repo: Path,
    home: Path,
    airflow_port: int,
    mlflow_port: int,
    ports: SandboxPorts,
    time_scale: float,
    replay_rate: float,
) -> int:
    from llm_release.sandbox.runner import SandboxProcess

    home.mkdir(parents=True, exist_ok=True)
    passwords = {user: f"{user}-demo" for user in DEMO_USERS}
    sandbox = SandboxProcess(
        state_dir=home / "sandbox",
        gateway_port=ports.gateway,
        stable_port=ports.stable,
        candidate_port=ports.candidate,
        replay_rate=replay_rate,
    )
    procs: list[subprocess.Popen] = []
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        print(
            f"[demo] sandbox on 127.0.0.1: gateway {ports.gateway}, stable {ports.stable}, "
            f"candidate {ports.candidate}",
            flush=True,
        )
        sandbox.start()
        tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
        versions = seed_registry(tracking_uri, MODEL, artifact_root=str(home / "mlartifacts"))
        print(
            f"[demo] MLflow registry {tracking_uri}: production v{versions['production']}, "
            f"candidate v{versions['candidate']}",
            flush=True,
        )
        procs.append(
            _start(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "server",
                    "--backend-store-uri",
                    tracking_uri,
                    "--default-artifact-root",
                    str(home / "mlartifacts"),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                ],
                home / "mlflow.log",
                dict(os.environ),
            )
        )
        env = airflow_env(
            home / "airflow",
            airflow_port,
            DEMO_USERS,
            passwords,
            dags_folder=repo / "dags",
            plugins_folder=repo / "plugins",
            parallelism=4,
            extra={
                **connections_env(ports),
                "LLM_RELEASE_HOME": str(home),
                "LLM_RELEASE_TIME_SCALE": str(time_scale),
                # Compressed time: a canary phase sees a tiny share of a real phase's requests, so the
                # demo decides rates at 80 % confidence (the shipped policy's 95 % stays the default
                # everywhere else). An hourly quality sample keeps the policy's 80 judged answers: the
                # judge flags about 2 % of a good candidate's live answers, and at 80 % confidence a
                # 40-answer sample would condemn a good release on 4 of them about once in a hundred.
                "LLM_RELEASE_EVIDENCE_CONFIDENCE": "0.8",
                "LLM_RELEASE_LIVE_SAMPLE_MIN": "80",
                # ...and a sample that took tens of scaled hours to fill at 2 % stays usable for 3,000
                # scaled minutes instead of going stale before the next one closes
                "LLM_RELEASE_SAMPLE_MAX_AGE_MINUTES": "3000",
                "LLM_RELEASE_LOAD_TEST_SECONDS": "20",
                "MLFLOW_TRACKING_URI": tracking_uri,
                "LLM_RELEASE_MLFLOW_UI": f"http://127.0.0.1:{mlflow_port}",
            },
        )
        print("[demo] starting airflow standalone (about 30 s)...", flush=True)
        procs.append(_start([sys.executable, "-m", "airflow", "standalone"], home / "airflow.log", env))
        stack = AirflowStack(home / "airflow", env, airflow_port)
        stack.wait_healthy(timeout_s=240)
        admin = AirflowClient(stack.base_url, "admin", passwords["admin"])
        wait_until(lambda: admin.get_dag(DAG_ID), timeout_s=180, interval_s=2, what=f"DAG {DAG_ID} parsed")
        run = admin.trigger(
            DAG_ID,
            {
                "candidate_version": versions["candidate"],
                "release_type": "prompt_structural",
                "change_summary": "demo: clearer refund-policy wording",
            },
        )
        run_id = run["dag_run_id"]
        _print_banner(stack.base_url, mlflow_port, passwords, run_id)
        pending = wait_until(
            lambda: admin.pending_approvals(DAG_ID, run_id) or _finished(admin, run_id),
            timeout_s=900,
            interval_s=3,
            what="the first approval request",
        )
        if isinstance(pending, list):
            tasks = ", ".join(task_id_of(d) for d in pending)
            print(f"[demo] the release is waiting for approval: {tasks}", flush=True)
        else:
            print(f"[demo] the run ended before asking for approval: {pending}", flush=True)
        print("[demo] running; press Ctrl-C to stop everything.", flush=True)
        while not stop["now"]:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        print("[demo] stopping...", flush=True)
        for proc in procs:
            _signal_group(proc, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
        sandbox.stop()
    return 0


def _finished(admin: AirflowClient, run_id: str) -> str | None:
    state = admin.get_run(DAG_ID, run_id)["state"]
    return state if state in ("success", "failed") else None


def _start(cmd: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True, cwd=log.parent
    )


def _print_banner(base_url: str, mlflow_port: int, passwords: dict[str, str], run_id: str) -> None:
    users = "\n".join(
        f"    {u:<6} / {passwords[u]:<12} {ROLE_OF_USER.get(u, 'Admin (triggers runs)')}" for u in DEMO_USERS
    )
    print(
        f"""
======================================================================
 Airflow UI : {base_url}      MLflow UI : http://127.0.0.1:{mlflow_port}
 Release run: {DAG_ID} / {run_id}
 Users (login / password, role):
{users}
 Approve in the UI: log in as the role's user, open Browse -> Required Actions
 (or the waiting task in the run's grid) and choose "Approve".
 Approve through the REST API:
    TOKEN=$(curl -s -X POST {base_url}/auth/token -H 'Content-Type: application/json' \\
            -d '{{"username":"alice","password":"{passwords["alice"]}"}}' \\
            | python3 -c 'import sys,json;print(json.load(sys.stdin)["access_token"])')
    curl -s -H "Authorization: Bearer $TOKEN" '{base_url}/api/v2/dags/~/dagRuns/~/hitlDetails?response_received=false'
    TASK=stage_4_preproduction.approve_ml_lead   # the task_id of the pending approval
    curl -s -X PATCH -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
         "{base_url}/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/$TASK/-1/hitlDetails" \\
         -d '{{"chosen_options":["Approve"],"params_input":{{}}}}'
======================================================================
""",
        flush=True,
    )
