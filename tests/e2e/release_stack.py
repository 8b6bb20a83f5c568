"""Shared pieces of the end-to-end stack: sandbox, MLflow (SQLite), Airflow's four components.

Everything binds 127.0.0.1 on free ports under a temporary directory and is stopped at the end.
Users: one per approver role (alice=ML lead, bob=Support Ops lead, carol=Safety reviewer,
dana=executive) plus an admin that triggers runs. A second config, ``support_llm_small_team``, lets
carol answer for two roles (backup ops lead and safety reviewer), so the rule that each role needs a
different person is checked at run time, when she answers both.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llm_release.localstack.airflow_client import AirflowClient
from llm_release.localstack.airflow_stack import AirflowStack
from llm_release.localstack.seed import SandboxPorts

REPO = Path(__file__).resolve().parents[2]
MODEL = "support-llm"
TIME_SCALE = "0.0003"  # 1 policy hour = 1.08 s; the 48-hour plan runs in about a minute
REPLAY_RATE = 90.0  # live queries per second: the 2 % canary sees about 1.8 of them
USERS = {"admin": "admin", "alice": "user", "bob": "user", "carol": "user", "dana": "user"}
PASSWORDS = {name: f"{name}-pw" for name in USERS}
ROLE_USERS = {"ml_lead": "alice", "support_ops_lead": "bob", "safety_reviewer": "carol", "executive": "dana"}


@dataclass
class Stack:
    home: Path
    airflow: AirflowStack
    sandbox: Any
    ports: SandboxPorts
    tracking_uri: str
    audit_path: Path
    tickets_dir: Path

    @staticmethod
    def repo() -> Path:
        return REPO

    def client(self, user: str) -> AirflowClient:
        return AirflowClient(self.airflow.base_url, user, PASSWORDS[user])

    def registry(self) -> Any:
        from llm_release.integrations.registry import MlflowModelRegistry

        return MlflowModelRegistry(self.tracking_uri, artifact_root=str(self.home / "mlartifacts"))

    def router(self) -> Any:
        from llm_release.integrations.router import SandboxGatewayRouter

        return SandboxGatewayRouter(f"http://127.0.0.1:{self.ports.gateway}")

    def audit(self, release_id: str | None = None) -> list[Any]:
        from llm_release.integrations.audit import JsonlAuditStore

        return JsonlAuditStore(self.audit_path).read(release_id)


def _write_configs(config_dir: Path) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    shipped = REPO / "dags" / "configs" / "support_llm.yaml"
    shutil.copy(shipped, config_dir / "support_llm.yaml")
    small_team = yaml.safe_load(shipped.read_text())
    small_team["approvers"] = {
        "ml_lead": ["alice"],
        "support_ops_lead": ["bob", "carol"],  # carol is the backup ops lead
        "safety_reviewer": ["carol"],
        "executive": ["dana"],
    }
    (config_dir / "support_llm_small_team.yaml").write_text(yaml.safe_dump(small_team, sort_keys=False))
