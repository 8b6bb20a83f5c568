"""Airflow DAGs for weekly LLM releases: one per release config in ``dags/configs/`` (or ``$LLM_RELEASE_CONFIG_DIR``).

The shipped ``configs/support_llm.yaml`` gives the DAG ``release_support_llm``. Parsing this file
imports only the provider's DAG factory (pydantic + yaml); evaluation libraries load in the tasks.
"""

from __future__ import annotations

import os
from pathlib import Path

from llm_release.pipeline import build_release_dag

CONFIG_DIR = Path(os.environ.get("LLM_RELEASE_CONFIG_DIR") or Path(__file__).parent / "configs")

for _config in sorted(CONFIG_DIR.glob("*.yaml")):
    _dag = build_release_dag(_config, dag_id=f"release_{_config.stem}")
    globals()[_dag.dag_id] = _dag
