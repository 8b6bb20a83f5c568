"""``prepare``: resolve the candidate, name the release, score its risk and derive the rollout plan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NoReturn

from airflow.sdk.exceptions import AirflowFailException

from llm_release.operators.base import ReleaseOperatorBase, jsonable

REFUSAL_XCOM_KEY = "refusal"
"""XCom key under which ``prepare`` says why it refused to open a release (read by ``close_release``)."""
MLFLOW_RUN_XCOM_KEY = "mlflow_run_id"
"""XCom key of the release's MLflow run id, pushed as soon as the run exists, so that a ``prepare``
failing after that point still lets ``close_release`` end the run FAILED instead of leaving it RUNNING."""


class PrepareReleaseOperator(ReleaseOperatorBase):
    """Open the release: everything later tasks need, decided once and written to the audit trail.

    The rules (post-incident review open, no production version, candidate already in production,
    naming, risk, plan) are ``decisions.release.open_release``; this task fetches the facts it needs
    and persists the ``ReleaseRecord``. A refusal fails the task with the reason, which it also pushes
    (XCom key ``refusal``) for ``close_release`` to name; every later task is then upstream-failed and
    the run ends failed.

    :param config_path: the release config YAML. (templated)
    """

    ui_color = "#fff3cd"

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.release import ReleaseRefused, open_release
        from llm_release.integrations.registry import RegistryError

        cfg = self.config
        params = context["params"]
        ti = context["ti"]
        history = self.audit_store.read()
        opened = [
            r for r in history if r.kind == "release_opened" and r.payload.get("model_name") == cfg.model_name
        ]
        mine = [r for r in opened if r.payload.get("airflow_run_id") == ti.run_id]
        if mine:  # a retry of this task: converge on the release already opened
            release = mine[-1].payload["release"]
            self.log.info("release %s already opened by this run; reusing it", mine[-1].release_id)
            if release.get("mlflow_run_id"):
                ti.xcom_push(key=MLFLOW_RUN_XCOM_KEY, value=release["mlflow_run_id"])
            return release

        candidate_version = str(params.get("candidate_version") or "").strip()
        if candidate_version:
            try:
                candidate = self.registry.resolve(cfg.model_name, version=candidate_version)
            except RegistryError as exc:
                self._refuse(ti, str(exc))
        else:
            candidate = self.registry.get_alias(cfg.model_name, "candidate")
            if candidate is None:
                self._refuse(
                    ti, f"no candidate_version given and registered model {cfg.model_name!r} has no 'candidate' alias"
                )
        production = self.registry.get_alias(cfg.model_name, "production")
        reviews = [
            t.ticket_id
            for t in self.tickets.list_open("post_incident_review")
            if t.body.get("model_name") == cfg.model_name
        ]
        try:
            record = open_release(
                cfg.release_policy,
                model_name=cfg.model_name,
                model_type=cfg.model_type,
                candidate=_facts(candidate),
                production=None if production is None else _facts(production),
                release_type=str(params.get("release_type") or cfg.release_type or ""),
                change_summary=str(params.get("change_summary") or ""),
                open_reviews=reviews,
                used_version_names=[r.payload["release"].get("version_name", "") for r in opened],
                closed_outcomes=[
                    r.payload.get("outcome", "")
                    for r in history
                    if r.kind == "release_closed" and r.payload.get("model_name") == cfg.model_name
                ],
                now=datetime.now(UTC),
                time_scale=cfg.time_scale,
                airflow_run_id=ti.run_id,
            )
        except (ReleaseRefused, ValueError) as exc:
            self._refuse(ti, str(exc))

        run_id = self.registry.start_release_run(
            experiment_name=f"llm-release/{cfg.model_name}",
            run_name=record.release_id,
            tags={
                "llm_release.release_id": record.release_id,
                "llm_release.candidate_version": record.candidate.version,
                "llm_release.airflow_run_id": ti.run_id,
            },
        )
        ti.xcom_push(key=MLFLOW_RUN_XCOM_KEY, value=run_id)
        self.registry.set_version_tags(
            cfg.model_name,
            record.candidate.version,
            {"llm_release.release_id": record.release_id, "llm_release.version_name": record.version_name},
        )
        ui_url = None
        if cfg.mlflow_ui_url:
            experiment_id = self.registry.client.get_run(run_id).info.experiment_id
            ui_url = f"{cfg.mlflow_ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        record = record.model_copy(update={"mlflow_run_id": run_id, "mlflow_ui_url": ui_url})
        release = jsonable(record)
        self.record(
            context,
            "release_opened",
            {"model_name": cfg.model_name, "airflow_run_id": ti.run_id, "release": release},
            stage="prepare",
            release_id=record.release_id,
        )
        self.log_json("Release opened", release)
        return release

    @staticmethod
    def _refuse(ti: Any, reason: str) -> NoReturn:
        """Fail the task with ``reason`` and push it, so ``close_release`` can say why the run failed."""
        ti.xcom_push(key=REFUSAL_XCOM_KEY, value=reason)
        raise AirflowFailException(f"release not opened: {reason}")


def _facts(info: Any) -> Any:
    from llm_release.decisions.release import VersionFacts

    return VersionFacts(version=info.version, backend=info.backend, endpoint_conn_id=info.endpoint_conn_id)
