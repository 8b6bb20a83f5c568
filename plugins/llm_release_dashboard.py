"""Airflow UI plugin: a release dashboard for approvers and operators (under ``/llm-release``).

For every release DAG config it reads the audit trail and shows each release's gate verdicts,
decision score, approvals (who, which role, when), rollout phases and outcome; a run-level view
links an Airflow DAG run to its release. Every page requires the same login as Airflow's API.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from airflow.api_fastapi.core_api.security import get_user
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse

CONFIG_DIR = Path(os.environ.get("LLM_RELEASE_CONFIG_DIR") or Path(__file__).resolve().parents[1] / "dags" / "configs")

app = FastAPI(title="LLM releases", dependencies=[Depends(get_user)])


def _records() -> list[Any]:
    from llm_release.integrations.audit import JsonlAuditStore
    from llm_release.policy import load_release_config

    records: list[Any] = []
    seen: set[str] = set()
    for path in sorted(CONFIG_DIR.glob("*.yaml")):
        audit_path = str(Path(load_release_config(path).audit_path).resolve())
        if audit_path in seen or not Path(audit_path).exists():
            continue
        seen.add(audit_path)
        records.extend(JsonlAuditStore(audit_path).read())
    return records


def _summaries() -> list[dict[str, Any]]:
    from llm_release.reporting import group_by_release, summarize_release

    return [summarize_release(rs) for rs in group_by_release(_records()).values()]


@app.get("/api/releases")
def list_releases() -> list[dict[str, Any]]:
    return _summaries()


@app.get("/api/releases/{release_id}")
def get_release(release_id: str) -> dict[str, Any]:
    for summary in _summaries():
        if summary["release_id"] == release_id:
            return summary
    raise HTTPException(404, f"no release {release_id!r} in the audit trails of {CONFIG_DIR}")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str) -> HTMLResponse:
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}.ok{color:#1a7f37}.bad{color:#c62828}")
    return HTMLResponse(f"<!doctype html><title>{_e(title)}</title><style>{style}</style><h1>{_e(title)}</h1>{body}")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already escaped (or built from escaped parts)."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(passed: bool) -> str:
    return "<span class='ok'>passed</span>" if passed else "<span class='bad'>failed</span>"


@app.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    rows = [
        [f"<a href='releases/{_e(s['release_id'])}'>{_e(s['release_id'])}</a>", _e(s["model_name"]),
         f"v{_e(s['candidate_version'])}", _e((s["risk"] or {}).get("level")),
         _e((s["decision_score"] or {}).get("total")), _e(s["status"]), _e(s["reason"])]
        for s in sorted(_summaries(), key=lambda s: s["opened_at"] or "", reverse=True)
    ]
    headers = ["Release", "Model", "Candidate", "Risk", "Score", "Status", "Why"]
    return _page("LLM releases", _table(headers, rows))


@app.get("/releases/{release_id}", response_class=HTMLResponse)
def release_page(release_id: str) -> HTMLResponse:
    s = get_release(release_id)
    gates = [
        [_e(g["stage"]), _verdict(g["passed"]), _e(", ".join(map(str, g["failed_checks"])))]
        for g in s["gates"]
    ]
    approvals = [[_e(a["role"]), _e(a["by"]), _e(a["decision"]), _e(a["ts"])] for a in s["approvals"]]
    dwells = [[_e(d["phase"]), _e(d["status"]), _e(d["reason"])] for d in s["dwells"]]
    score = s["decision_score"] or {}
    risk = s["risk"] or {}
    body = (
        f"<p>{_e(s['model_name'])} v{_e(s['candidate_version'])} replacing v{_e(s['production_version'])}; "
        f"{_e(s['release_type'])}, risk {_e(risk.get('score'))} ({_e(risk.get('level'))}); "
        f"status <b>{_e(s['status'])}</b> {_e(s['reason'])}</p><p>{_e(s['change_summary'])}</p>"
        f"<h2>Decision score {_e(score.get('total'))} ({_e(score.get('band'))})</h2>"
        f"<p>{_e(score.get('components'))}</p>"
        f"<h2>Gates</h2>{_table(['Stage', 'Verdict', 'Failed checks'], gates)}"
        f"<h2>Approvals</h2>{_table(['Role', 'By', 'Decision', 'When'], approvals)}"
        f"<h2>Rollout</h2>{_table(['Phase', 'Result', 'Reason'], dwells)}"
    )
    return _page(f"Release {release_id}", body)


@app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse)
def run_page(dag_id: str, run_id: str) -> HTMLResponse:
    from llm_release.reporting import release_for_run

    release_id = release_for_run(_records(), run_id)
    if release_id is None:
        return _page(f"{dag_id} / {run_id}", "<p>This run has not opened a release (yet).</p>")
    return release_page(release_id)


class LlmReleaseDashboardPlugin(AirflowPlugin):
    name = "llm_release_dashboard"
    fastapi_apps = [{"app": app, "url_prefix": "/llm-release", "name": "LLM releases"}]
    external_views = [
        {"name": "LLM releases", "href": "/llm-release/", "destination": "nav", "url_route": "llm-releases"},
        {"name": "Release summary", "href": "/llm-release/runs/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
         "url_route": "llm-release-run"},
    ]
