"""Session fixture: one real stack (sandbox, MLflow on SQLite, Airflow's four components) for the e2e tests."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from release_stack import MODEL, PASSWORDS, REPLAY_RATE, TIME_SCALE, USERS, Stack, _write_configs

from llm_release.localstack.airflow_client import AirflowClient, wait_until
from llm_release.localstack.airflow_stack import AirflowStack, airflow_env, free_port
from llm_release.localstack.seed import SandboxPorts, connections_env, register_sandbox_version

REPO_DAGS = Stack.repo() / "dags"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    from llm_release.integrations.registry import MlflowModelRegistry
    from llm_release.sandbox.runner import SandboxProcess

    # A SIGTERM (CI time-out, a killed session) must still stop Airflow and the sandbox: turn it
    # into KeyboardInterrupt, which pytest unwinds through the fixture's finally block.
    signal.signal(signal.SIGTERM, _interrupt)
    home = tmp_path_factory.mktemp("e2e")
    ports = SandboxPorts(gateway=free_port(), stable=free_port(), candidate=free_port())
    sandbox = SandboxProcess(
        state_dir=home / "sandbox",
        gateway_port=ports.gateway,
        stable_port=ports.stable,
        candidate_port=ports.candidate,
        replay_rate=REPLAY_RATE,
    )
    sandbox.start()
    airflow: AirflowStack | None = None
    try:
        tracking_uri = f"sqlite:///{home / 'mlflow.db'}"
        registry = MlflowModelRegistry(tracking_uri, artifact_root=str(home / "mlartifacts"))
        production = register_sandbox_version(registry, MODEL, "stable", "production (stable build)")
        registry.set_alias(MODEL, "production", production.version)

        config_dir = home / "configs"
        _write_configs(config_dir)
        api_port = free_port()
        env = airflow_env(
            home / "airflow",
            api_port,
            USERS,
            PASSWORDS,
            dags_folder=REPO_DAGS,
            plugins_folder=Stack.repo() / "plugins",
            parallelism=4,
            extra={
                **connections_env(ports),
                "LLM_RELEASE_CONFIG_DIR": str(config_dir),
                "LLM_RELEASE_HOME": str(home),
                "LLM_RELEASE_TIME_SCALE": TIME_SCALE,
                # Compressed time sees a few hundredth of a real phase's traffic: the evidence a rate
                # needs at the policy's 95 % would hold every canary past its limit. The test policy
                # decides at 80 %, and says so. Hourly quality samples keep the policy's 80 judged
                # answers: the judge flags ~2 % of a good candidate's live answers, and a 40-answer
                # sample at 80 % condemned a good release on 4-5 of them (seen: 5/57 at progressive_50).
                "LLM_RELEASE_LIVE_SAMPLE_MIN": "80",
                # At 2 % of the replay an 80-answer sample takes ~44 s, i.e. ~40 scaled hours, so the
                # policy's 90-minute age limit made every tier-1 sample stale before the next one closed
                # and the quality triggers read "unmeasured" (pages, ~3 min per release). A sample stays
                # usable for 3,000 scaled minutes (~54 s) here.
                "LLM_RELEASE_SAMPLE_MAX_AGE_MINUTES": "3000",
                "LLM_RELEASE_EVIDENCE_CONFIDENCE": "0.8",
                "LLM_RELEASE_LOAD_TEST_SECONDS": "10",
                "MLFLOW_TRACKING_URI": tracking_uri,
            },
        )
        airflow = AirflowStack(home / "airflow", env, api_port)
        airflow.start()
        admin = AirflowClient(airflow.base_url, "admin", PASSWORDS["admin"])
        for dag_id in ("release_support_llm", "release_support_llm_small_team"):
            wait_until(
                lambda d=dag_id: admin.get_dag(d), timeout_s=180, interval_s=2, what=f"DAG {dag_id} parsed"
            )
        assert admin.import_errors() == []
        yield Stack(
            home, airflow, sandbox, ports, tracking_uri, home / "audit" / "audit.jsonl", home / "tickets"
        )
    finally:
        if airflow is not None:
            airflow.stop()
        sandbox.stop()
