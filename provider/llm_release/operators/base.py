"""Shared plumbing for the release operators: config, the release record, audit, registry.

Operators stay thin: they read their inputs (the release config file and upstream XComs), call the
pure layers (decisions, suites) and the integrations, push a small JSON verdict, and log a summary.
Heavy imports (pandas, mlflow, scikit-learn) happen inside ``execute`` so that parsing the DAG file
stays fast.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from llm_release.links.mlflow import MlflowReleaseRunLink

if TYPE_CHECKING:
    from llm_release.decisions.release import ReleaseRecord
    from llm_release.integrations.audit import JsonlAuditStore
    from llm_release.integrations.registry import MlflowModelRegistry
    from llm_release.integrations.tickets import LocalTicketStore
    from llm_release.policy import ReleaseConfig

PREPARE_TASK_ID = "prepare"
"""Task id of ``prepare``, the root task that opens the release; every task reads the release record from
its XCom. The one task id the shell shares by name: ``pipeline.py`` gives the task this id, and every
other upstream task id reaches an operator as a constructor argument."""


def jsonable(value: Any) -> Any:
    """Convert pydantic models, dataclasses and NaN into plain JSON (NaN becomes None: never a pass)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "to_dict") and hasattr(value, "columns"):  # pandas DataFrame: list of records
        return jsonable(value.to_dict(orient="records"))
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"))
    if hasattr(value, "__dataclass_fields__"):
        return jsonable({k: getattr(value, k) for k in value.__dataclass_fields__})
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


class ReleaseOperatorBase(BaseOperator):
    """Base for every task of the release DAG.

    :param config_path: the release config YAML (validated at parse time; re-read here so a task
        always acts on the same file the DAG was built from). (templated)
    """

    template_fields: Sequence[str] = ("config_path",)
    ui_color = "#e8f0fe"
    operator_extra_links = (MlflowReleaseRunLink(),)

    def __init__(self, *, config_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config_path = config_path

    # --- configuration and services ----------------------------------------------------------
    @cached_property
    def config(self) -> ReleaseConfig:
        from llm_release.policy import load_release_config

        return load_release_config(self.config_path)

    @cached_property
    def audit_store(self) -> JsonlAuditStore:
        from llm_release.integrations.audit import JsonlAuditStore

        return JsonlAuditStore(self.config.audit_path)

    @cached_property
    def registry(self) -> MlflowModelRegistry:
        from llm_release.integrations.registry import MlflowModelRegistry

        return MlflowModelRegistry(
            self.config.mlflow_tracking_uri, artifact_root=self.config.mlflow_artifact_root
        )

    @cached_property
    def tickets(self) -> LocalTicketStore:
        from llm_release.integrations.tickets import LocalTicketStore

        return LocalTicketStore(self.config.tickets_dir)

    def seconds(self, hours: float) -> float:
        """A policy duration in hours, compressed by the config's ``time_scale``."""
        return float(hours) * 3600.0 * float(self.config.time_scale)

    # --- the release record ------------------------------------------------------------------
    @staticmethod
    def release(context: Any) -> ReleaseRecord:
        """The typed release record ``prepare`` opened (its XCom, validated)."""
        from llm_release.decisions.release import ReleaseRecord

        rel = context["ti"].xcom_pull(task_ids=PREPARE_TASK_ID)
        if not rel:
            raise RuntimeError(
                f"no release record in XCom from task {PREPARE_TASK_ID!r}; the release was not opened"
            )
        return ReleaseRecord.model_validate(rel)

    def record(
        self,
        context: Any,
        kind: str,
        payload: dict[str, Any],
        *,
        stage: str,
        actor: str = "airflow",
        suffix: str = "",
        release_id: str | None = None,
    ) -> None:
        """Append one event to the audit trail, idempotently for a retried task.

        The event id is derived from the run, the task and the kind, so a retry that reaches the same
        point converges on one record instead of writing a duplicate.
        """
        from llm_release.integrations.audit import AuditEvent

        ti = context["ti"]
        rid = release_id or self.release(context).release_id
        event_id = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{kind}{suffix}"
        self.audit_store.append(
            AuditEvent(
                release_id=rid,
                kind=kind,
                stage=stage,
                actor=actor,
                payload=jsonable(payload),
                event_id=event_id,
            )
        )

    def log_json(self, title: str, obj: Any) -> None:
        self.log.info("%s:\n%s", title, json.dumps(jsonable(obj), indent=2, sort_keys=True))
