"""Parsing the release DAG file must stay light: no data or ML library is imported at parse time."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = ["pandas", "numpy", "scipy", "mlflow", "torch", "sklearn", "fairlearn", "evaluate", "boto3"]

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("weekly_llm_release", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
dags = {k: len(v.tasks) for k, v in vars(module).items() if type(v).__name__ == "DAG"}
heavy = sorted(m for m in json.loads(sys.argv[2]) if m in sys.modules)
print(json.dumps({"dags": dags, "heavy": heavy}))
"""


def test_parsing_the_release_dag_imports_no_heavy_library() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "dags" / "weekly_llm_release.py"), json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["dags"].get("release_support_llm", 0) > 30, result
    assert result["heavy"] == [], f"imported at parse time: {result['heavy']}"
