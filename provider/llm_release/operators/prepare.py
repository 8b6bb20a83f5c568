"""``prepare``: resolve the candidate, name the release, score its risk and derive the rollout plan."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from llm_release.operators.base import ReleaseOperatorBase, jsonable


def clean_release_streak(closed_outcomes: list[str]) -> int:
    """Consecutive releases, newest first, that were promoted without a rollback."""
    streak = 0
    for outcome in reversed(closed_outcomes):
        if outcome != "promoted":
            break
        streak += 1
    return streak


class PrepareReleaseOperator(ReleaseOperatorBase):
    """Open the release: everything later tasks need, decided once and written to the audit trail.

    Refuses to start when a post-incident review of this model is still open (spec section 7), when
    there is no production version to roll back to, or when the candidate is the production version.
    """

    ui_color = "#fff3cd"

    def execute(self, context: Any) -> dict[str, Any]:
        from llm_release.decisions.risk import assess_risk
        from llm_release.decisions.rollout import plan_rollout
        from llm_release.decisions.versioning import next_increment, version_name

        cfg = self.config
        params = context["params"]
        ti = context["ti"]

        reviews = [
            t
            for t in self.tickets.list_open("post_incident_review")
            if t.body.get("model_name") == cfg.model_name
        ]
        if reviews:
            ids = ", ".join(t.ticket_id for t in reviews)
            raise AirflowFailException(
                f"post-incident review outstanding for {cfg.model_name} (ticket {ids}); "
                "close it before the next release (spec section 7)"
            )

        candidate_version = str(params.get("candidate_version") or "").strip()
        if candidate_version:
            candidate = self.registry.resolve(cfg.model_name, version=candidate_version)
        else:
            candidate = self.registry.get_alias(cfg.model_name, "candidate")
            if candidate is None:
                raise AirflowFailException(
                    f"no candidate_version given and registered model {cfg.model_name!r} has no 'candidate' alias"
                )
        production = self.registry.get_alias(cfg.model_name, "production")
        if production is None:
            raise AirflowFailException(
                f"registered model {cfg.model_name!r} has no 'production' alias: no version to roll back to"
            )
        if production.version == candidate.version:
            raise AirflowFailException(f"candidate version {candidate.version} is already in production")
        for label, mv in (("candidate", candidate), ("production", production)):
            if not mv.endpoint_conn_id or not mv.backend:
                raise AirflowFailException(
                    f"{label} version {mv.version}: registry tags llm_release.endpoint_conn_id and "
                    "llm_release.backend are required to reach it"
                )

        history = self.audit_store.read()
        opened = [
            r for r in history if r.kind == "release_opened" and r.payload.get("model_name") == cfg.model_name
        ]
        mine = [r for r in opened if r.payload.get("airflow_run_id") == ti.run_id]
        if mine:  # a retry of this task: converge on the release already opened
            self.log.info("release %s already opened by this run; reusing it", mine[-1].release_id)
            return mine[-1].payload["release"]

        now = datetime.now(UTC)
        names = [r.payload["release"]["version_name"] for r in opened if "version_name" in r.payload["release"]]
        increment = next_increment(names, cfg.model_type, now.date())
        first_name = version_name(cfg.model_type, now.date(), increment, "development")
        release_id = first_name.rsplit("-", 1)[0]  # the release id is the version name without stage

        closed = [
            r.payload.get("outcome", "")
            for r in history
            if r.kind == "release_closed" and r.payload.get("model_name") == cfg.model_name
        ]
        streak = clean_release_streak(closed)
        release_type = str(params.get("release_type"))
        risk = assess_risk(cfg.release_policy.risk, cfg.release_policy.approvals, release_type)
        plan = plan_rollout(cfg.release_policy, risk.level, clean_release_streak=streak)

        run_id = self.registry.start_release_run(
            experiment_name=f"llm-release/{cfg.model_name}",
            run_name=release_id,
            tags={"llm_release.release_id": release_id, "llm_release.candidate_version": candidate.version},
        )
        self.registry.set_version_tags(
            cfg.model_name,
            candidate.version,
            {"llm_release.release_id": release_id, "llm_release.version_name": first_name},
        )
        ui_url = None
        if cfg.mlflow_ui_url:
            experiment_id = self.registry.client.get_run(run_id).info.experiment_id
            ui_url = f"{cfg.mlflow_ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
        release = jsonable(
            {
                "release_id": release_id,
                "version_name": first_name,
                "model_name": cfg.model_name,
                "model_type": cfg.model_type,
                "candidate": {
                    "version": candidate.version,
                    "backend": candidate.backend,
                    "endpoint_conn_id": candidate.endpoint_conn_id,
                },
                "production": {
                    "version": production.version,
                    "backend": production.backend,
                    "endpoint_conn_id": production.endpoint_conn_id,
                },
                "release_type": release_type,
                "change_summary": params.get("change_summary", ""),
                "risk": risk,
                "plan": plan,
                "clean_release_streak": streak,
                "mlflow_run_id": run_id,
                "mlflow_ui_url": ui_url,
                "opened_at": now.isoformat(),
                "time_scale": cfg.time_scale,
            }
        )
        self.record(
            context,
            "release_opened",
            {"model_name": cfg.model_name, "airflow_run_id": ti.run_id, "release": release},
            stage="prepare",
            release_id=release_id,
        )
        self.log_json("Release opened", release)
        return release
