"""The shipped recording of production support traffic (``traffic_queries.jsonl``).

The sandbox replays it as live traffic, and drift checks use it as the reference window of past
queries. Plain Python: no pandas, so the sandbox process stays light.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

QUERY_KINDS = ("support", "out_of_scope", "adversarial", "persona")


class TrafficFileError(ValueError):
    """A replay-traffic file is missing or has a bad row (message names file and line)."""


def load_traffic_queries(path: str | Path | None = None) -> list[str]:
    """Queries from a JSONL file of ``{"query": str, "kind": str, "entry_id": str|null}`` rows.

    Default: the shipped ``data/traffic_queries.jsonl``.
    """
    if path is None:
        resource = resources.files("llm_release.data").joinpath("traffic_queries.jsonl")
        source, reader = str(resource), resource.read_text
    else:
        source, reader = str(path), Path(path).read_text
    try:
        text = reader(encoding="utf-8")
    except OSError as exc:
        raise TrafficFileError(f"{source}: cannot read traffic file: {exc}") from exc
    queries: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise TrafficFileError(f"{source}:{number}: invalid JSON: {exc}") from exc
        if not isinstance(row, dict):
            raise TrafficFileError(f"{source}:{number}: expected a JSON object")
        query = row.get("query")
        if not isinstance(query, str) or not query.strip():
            raise TrafficFileError(f"{source}:{number}: field 'query' must be a non-empty string")
        kind = row.get("kind", "support")
        if kind not in QUERY_KINDS:
            raise TrafficFileError(
                f"{source}:{number}: field 'kind' must be one of {QUERY_KINDS}, got {kind!r}"
            )
        queries.append(query)
    if not queries:
        raise TrafficFileError(f"{source}: no queries")
    return queries
