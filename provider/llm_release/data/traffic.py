"""The shipped recording of production support traffic (``traffic_queries.jsonl``).

The sandbox replays it as live traffic, and drift checks use it as the reference window of past
queries. Plain Python: no pandas, so the sandbox process stays light.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from llm_release.inputs import InputError, read_jsonl, row_count_problem

QUERY_KINDS = ("support", "out_of_scope", "adversarial", "persona")


class TrafficFileError(ValueError):
    """A replay-traffic file is missing, too big, not UTF-8, too small or has a bad row (message names
    file and line); a reader error is chained as ``__cause__``."""


def load_traffic_queries(
    path: str | Path | None = None, *, min_rows: int | None = None, max_bytes: int | None = None
) -> list[str]:
    """Queries from a JSONL file of ``{"query": str, "kind": str, "entry_id": str|null}`` rows.

    Default: the shipped ``data/traffic_queries.jsonl``. A ``path`` is an override from a release
    config, so a missing file is reported against ``datasets.traffic_queries``. ``min_rows`` refuses a
    recording too short to be a reference window.
    """
    if path is None:
        source = str(resources.files("llm_release.data").joinpath("traffic_queries.jsonl"))
        field = None
    else:
        source, field = str(path), "datasets.traffic_queries"
    try:
        rows = read_jsonl(source, kind="traffic", max_bytes=max_bytes, field=field, what="traffic file")
    except InputError as exc:
        raise TrafficFileError(str(exc)) from exc
    queries: list[str] = []
    for number, row in rows:
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
    problem = row_count_problem(source, len(queries), min_rows, "traffic_queries")
    if problem:
        raise TrafficFileError(problem)
    return queries
