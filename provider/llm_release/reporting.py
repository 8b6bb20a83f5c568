"""Summaries of releases from their audit trail: what reviewers and operators need on one page.

Pure functions over audit records (objects with ``release_id``, ``kind``, ``stage``, ``actor``,
``payload``, ``ts``), used by the Airflow UI plugin's release dashboard and by the CLI. No Airflow
import, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def group_by_release(records: Iterable[Any]) -> dict[str, list[Any]]:
    """Records per release id, in trail order."""
    releases: dict[str, list[Any]] = {}
    for record in records:
        releases.setdefault(record.release_id, []).append(record)
    return releases


def summarize_release(records: Sequence[Any]) -> dict[str, Any]:
    """One release's state: opening facts, gate verdicts, score, approvals, rollout, outcome."""
    if not records:
        raise ValueError("no audit records for this release")
    opened = next((r for r in records if r.kind == "release_opened"), None)
    release = (opened.payload.get("release") if opened else None) or {}
    closed = next((r for r in reversed(records) if r.kind == "release_closed"), None)
    gates = [
        {"stage": r.payload.get("stage") or r.stage, "passed": bool(r.payload.get("passed")),
         "failed_checks": [c.get("metric") for c in r.payload.get("checks", []) if not c.get("passed")]
         or list(r.payload.get("problems", [])), "ts": r.ts}
        for r in records if r.kind == "gate_verdict"
    ]
    score = next((r.payload.get("score") for r in reversed(records) if r.kind == "decision_score"), None)
    approvals = [
        {"role": r.payload.get("role"), "decision": r.payload.get("decision"), "by": r.actor,
         "purpose": r.payload.get("purpose"), "ts": r.ts}
        for r in records if r.kind == "approval"
    ]
    rollout = [
        {"phase": r.payload.get("phase"), "traffic_percent": r.payload.get("traffic_percent"),
         "dwell_hours": r.payload.get("dwell_hours"), "ts": r.ts}
        for r in records if r.kind == "traffic_change" and r.payload.get("phase")
    ]
    dwells = [
        {"phase": r.payload.get("phase"), "status": r.payload.get("status"), "reason": r.payload.get("reason"),
         "metrics": r.payload.get("phase_metrics") or r.payload.get("last_sample")}
        for r in records if r.kind == "dwell_result"
    ]
    rollback = next((r.payload for r in records if r.kind == "rollback"), None)
    rejection = next((r.payload for r in records if r.kind == "rejection"), None)
    status = closed.payload.get("outcome", "closed") if closed is not None else "in progress"
    return {
        "release_id": records[0].release_id,
        "model_name": release.get("model_name"),
        "candidate_version": (release.get("candidate") or {}).get("version"),
        "production_version": (release.get("production") or {}).get("version"),
        "release_type": release.get("release_type"),
        "risk": release.get("risk"),
        "change_summary": release.get("change_summary"),
        "airflow_run_id": opened.payload.get("airflow_run_id") if opened else None,
        "opened_at": opened.ts if opened else None,
        "status": status,
        "reason": closed.payload.get("reason") if closed else None,
        "gates": gates,
        "decision_score": score,
        "approvals": approvals,
        "rollout": rollout,
        "dwells": dwells,
        "rollback": rollback,
        "rejection": rejection,
        "events": len(records),
    }


def release_for_run(records: Iterable[Any], airflow_run_id: str) -> str | None:
    """The release id opened by an Airflow run, if any."""
    for record in records:
        if record.kind == "release_opened" and record.payload.get("airflow_run_id") == airflow_run_id:
            return str(record.release_id)
    return None
