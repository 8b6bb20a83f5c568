"""Parse time of the release DAG file against a minimal one-task DAG file.

Each measurement runs in a fresh interpreter that first imports ``airflow.sdk`` (as the DAG
processor has) and then times, in-process, the import of the DAG file, which is what a DAG processor
pays per file: the first parse, with the provider's modules not yet imported. Several rounds are run
alternately and the median is reported. The last line is one JSON object:
``{"release_dag_ms": .., "minimal_dag_ms": .., "difference_ms": ..}``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RELEASE_DAG = REPO / "dags" / "weekly_llm_release.py"
MINIMAL_DAG = REPO / "benchmarks" / "minimal_dag.py"
ROUNDS = int(os.environ.get("PARSE_BENCH_ROUNDS", "5"))

PROBE = """
import importlib.util, json, sys, time
import airflow.sdk  # loaded before timing, as in the DAG processor
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("dag_under_test", path)
module = importlib.util.module_from_spec(spec)
start = time.perf_counter()
spec.loader.exec_module(module)
first = (time.perf_counter() - start) * 1000
start = time.perf_counter()
spec.loader.exec_module(importlib.util.module_from_spec(spec))
warm = (time.perf_counter() - start) * 1000
dags = {v.dag_id for v in vars(module).values() if type(v).__name__ == "DAG"}
print(json.dumps({"first_ms": first, "warm_ms": warm, "dags": len(dags)}))
"""


def measure(path: Path) -> dict[str, float]:
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    release, minimal = [], []
    for i in range(ROUNDS):
        r, m = measure(RELEASE_DAG), measure(MINIMAL_DAG)
        if r["dags"] < 1 or m["dags"] != 1:
            raise SystemExit(f"round {i}: expected DAGs in both files, got {r['dags']} and {m['dags']}")
        release.append(r)
        minimal.append(m)
        print(
            f"round {i + 1}: release first {r['first_ms']:.1f} ms (warm {r['warm_ms']:.1f} ms, {r['dags']} DAGs); "
            f"minimal first {m['first_ms']:.1f} ms (warm {m['warm_ms']:.1f} ms)",
            flush=True,
        )
    rel = statistics.median(x["first_ms"] for x in release)
    mini = statistics.median(x["first_ms"] for x in minimal)
    print(
        f"median first parse: release {rel:.1f} ms, minimal {mini:.1f} ms, ratio {rel / mini:.1f}x; "
        f"warm medians {statistics.median(x['warm_ms'] for x in release):.1f} ms vs "
        f"{statistics.median(x['warm_ms'] for x in minimal):.1f} ms"
    )
    print(
        json.dumps(
            {
                "release_dag_ms": round(rel, 1),
                "minimal_dag_ms": round(mini, 1),
                "difference_ms": round(rel - mini, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
