"""A small client for Airflow's public REST API (v2), as an approver or operator would use it.

Used by the demo (to trigger the example release) and by the end-to-end tests (to answer approval
tasks as distinct users). Every wait is bounded in time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

TERMINAL_RUN_STATES = {"success", "failed"}


DB_ERROR_ATTEMPTS = 4


class AirflowApiError(RuntimeError):
    """The API answered with an error; the message carries method, path, status and body."""


@dataclass
class AirflowClient:
    """Authenticated REST client for one user (SimpleAuthManager or any manager issuing JWTs)."""

    base_url: str
    username: str
    password: str
    timeout_s: float = 30.0
    _token: str | None = field(default=None, init=False, repr=False)

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url.rstrip("/"), timeout=self.timeout_s)

    def token(self) -> str:
        if self._token is None:
            with self._client() as client:
                resp = client.post("/auth/token", json={"username": self.username, "password": self.password})
            if resp.status_code >= 400:
                raise AirflowApiError(
                    f"POST /auth/token as {self.username}: HTTP {resp.status_code} {resp.text}"
                )
            self._token = resp.json()["access_token"]
        return self._token

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; a transient metadata-database error (HTTP 500 "Database error", e.g. SQLite
        locked by the scheduler in the local stack) is tried again a few times, as a person would click
        again: the server rolled the failed request back, so nothing is applied twice."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        for attempt in range(DB_ERROR_ATTEMPTS):
            with self._client() as client:
                resp = client.request(method, path, headers=headers, **kwargs)
            transient = resp.status_code == 500 and "Database error" in resp.text
            if not transient or attempt == DB_ERROR_ATTEMPTS - 1:
                break
            time.sleep(1.0 + attempt)
        if resp.status_code >= 400:
            raise AirflowApiError(f"{method} {path} as {self.username}: HTTP {resp.status_code} {resp.text}")
        return resp.json() if resp.content else None

    # --- DAGs and runs -------------------------------------------------------------------------
    def get_dag(self, dag_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}")

    def import_errors(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v2/importErrors")["import_errors"]

    def trigger(self, dag_id: str, conf: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"logical_date": None, "conf": conf}
        if run_id:
            body["dag_run_id"] = run_id
        return self.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", json=body)

    def get_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        data = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500}
        )
        return {ti["task_id"]: ti for ti in data["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        data = self.request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": True, "stringify": False},
        )
        return data.get("value")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        data = self.request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            headers={"Accept": "application/json"},
        )
        content = data.get("content", "")
        if isinstance(content, list):
            return "\n".join(
                str(item.get("event", item)) if isinstance(item, dict) else str(item) for item in content
            )
        return str(content)

    # --- Human-in-the-loop approvals -----------------------------------------------------------
    def pending_approvals(self, dag_id: str = "~", run_id: str = "~") -> list[dict[str, Any]]:
        data = self.request(
            "GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/hitlDetails", params={"response_received": False}
        )
        return data["hitl_details"]

    def answer(self, dag_id: str, run_id: str, task_id: str, option: str = "Approve") -> dict[str, Any]:
        return self.request(
            "PATCH",
            f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/-1/hitlDetails",
            json={"chosen_options": [option], "params_input": {}},
        )


def wait_until(
    predicate: Callable[[], Any], timeout_s: float, interval_s: float = 1.0, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns a truthy value; raise TimeoutError naming ``what``."""
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, AirflowApiError) as exc:
            last_exc = exc
        time.sleep(interval_s)
    raise TimeoutError(
        f"timed out after {timeout_s:.0f}s waiting for {what}"
        + (f" (last error: {last_exc})" if last_exc else "")
    )


def task_id_of(detail: dict[str, Any]) -> str:
    """The task id of a hitlDetails entry (the API nests it under ``task_instance``)."""
    ti = detail.get("task_instance") or {}
    return ti.get("task_id") or detail["task_id"]


def run_id_of(detail: dict[str, Any]) -> str:
    ti = detail.get("task_instance") or {}
    return ti.get("dag_run_id") or ti.get("run_id") or detail["dag_run_id"]
