"""Extra link from release tasks to the release's MLflow run (metrics, evidence, failure report)."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseOperatorLink


class MlflowReleaseRunLink(BaseOperatorLink):
    """Opens the MLflow run holding this release's metrics and evidence (set by task ``prepare``)."""

    name = "MLflow release run"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # imported here: operators.base imports this module to attach the link to every release task
        from llm_release.operators.base import PREPARE_TASK_ID

        # Airflow 3 computes links when the task ends and passes the running task instance here.
        pull = getattr(ti_key, "xcom_pull", None)
        if pull is not None:
            release = pull(task_ids=PREPARE_TASK_ID)
        else:
            from airflow.sdk.execution_time.xcom import XCom

            prepare_key = ti_key._replace(task_id=PREPARE_TASK_ID, map_index=-1)
            release = XCom.get_value(ti_key=prepare_key, key="return_value")
        if not isinstance(release, dict):
            return ""
        return str(release.get("mlflow_ui_url") or "")
