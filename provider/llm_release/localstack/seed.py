"""Seed a local stack: Airflow connections for the sandbox and the model registry's versions.

The registry holds, per model version, which Airflow connection reaches its serving endpoint and
which router backend serves it; these helpers write exactly that for the sandbox's two builds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

STABLE_CONN_ID = "llm_sandbox_stable"
CANDIDATE_CONN_ID = "llm_sandbox_candidate"
SYSTEM_PROMPT = (
    "You are Northwind Cloud's support assistant, an AI. Answer only from the support knowledge base; "
    "hand off to a human agent for legal threats, disputes and anything you cannot answer."
)


@dataclass(frozen=True)
class SandboxPorts:
    gateway: int
    stable: int
    candidate: int


def connections_env(ports: SandboxPorts, host: str = "127.0.0.1") -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables for the sandbox's endpoints, router and metrics source."""

    def conn(conn_type: str, port: int, extra: dict[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"conn_type": conn_type, "host": host, "port": port, "schema": "http"}
        if extra:
            body["extra"] = extra
        return json.dumps(body)

    return {
        f"AIRFLOW_CONN_{STABLE_CONN_ID.upper()}": conn(
            "llm_model_endpoint", ports.stable, {"model": "support-bot", "max_concurrency": 8}
        ),
        f"AIRFLOW_CONN_{CANDIDATE_CONN_ID.upper()}": conn(
            "llm_model_endpoint", ports.candidate, {"model": "support-bot", "max_concurrency": 8}
        ),
        "AIRFLOW_CONN_LLM_TRAFFIC_ROUTER": conn(
            "llm_traffic_router", ports.gateway, {"kind": "sandbox_gateway"}
        ),
        "AIRFLOW_CONN_LLM_METRICS_SOURCE": conn("llm_metrics_source", ports.gateway),
    }


def register_sandbox_version(registry: Any, model_name: str, build: str, description: str = "") -> Any:
    """Register a model version served by sandbox build ``build`` (``stable`` or ``candidate``)."""
    conn_id = STABLE_CONN_ID if build == "stable" else CANDIDATE_CONN_ID
    return registry.register_version(
        model_name,
        endpoint_conn_id=conn_id,
        backend=build,
        inference_config={"temperature": 0.0, "top_p": 1.0, "max_tokens": 512},
        system_prompt=SYSTEM_PROMPT,
        description=description or f"sandbox build '{build}'",
    )


def seed_registry(tracking_uri: str, model_name: str, artifact_root: str | None = None) -> dict[str, str]:
    """Ensure a production version (stable build) and a candidate version (candidate build) exist."""
    from llm_release.integrations.registry import MlflowModelRegistry

    registry = MlflowModelRegistry(tracking_uri, artifact_root=artifact_root)
    production = _alias_or_none(registry, model_name, "production")
    if production is None:
        production = register_sandbox_version(
            registry, model_name, "stable", "current production (stable build)"
        )
        registry.set_alias(model_name, "production", production.version)
    candidate = _alias_or_none(registry, model_name, "candidate")
    if candidate is None:
        candidate = register_sandbox_version(registry, model_name, "candidate", "this week's candidate")
        registry.set_alias(model_name, "candidate", candidate.version)
    return {"production": production.version, "candidate": candidate.version}


def _alias_or_none(registry: Any, model_name: str, alias: str) -> Any:
    """The version holding ``alias``, or None when it, or the registered model itself, does not exist."""
    from llm_release.integrations.registry import RegistryError

    try:
        return registry.get_alias(model_name, alias)
    except RegistryError:
        return None
