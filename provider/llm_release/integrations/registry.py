"""Model registry and release-run tracking on MLflow.

A "model version" here is a serving configuration rather than weights: which endpoint serves it (an Airflow
connection id), which sandbox/production backend name it has in the router, its inference config and its
system prompt. That is what the spec's reproducibility section asks to version together. Registering one
logs ``serving/serving.json`` to an MLflow run and points the model version at ``runs:/<run_id>/serving``.

Promotion state lives in registry aliases (``production``, ``previous``) and tags, so every write is a set
operation and retried tasks converge. Import this module only at task run time: ``mlflow`` costs ~1 s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from llm_release.integrations.secret_guard import assert_no_secrets

log = logging.getLogger(__name__)

TAG_ENDPOINT = "llm_release.endpoint_conn_id"
TAG_BACKEND = "llm_release.backend"
TAG_STATUS = "llm_release.status"
TAG_RELEASE_ID = "llm_release.release_id"
TAG_OUTCOME = "llm_release.outcome"
TAG_REASON = "llm_release.reason"
MAX_TAG_CHARS = 5000
"""MLflow refuses longer tag values (the limit is 5000 or 8000 characters depending on the store)."""
ALIAS_PRODUCTION = "production"
ALIAS_PREVIOUS = "previous"
SERVING_ARTIFACT = "serving/serving.json"
DEFAULT_SERVING_EXPERIMENT = "llm_release_model_versions"

_VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MISSING = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


class RegistryError(RuntimeError):
    """A registry lookup or write failed; the message names the model, version or alias involved."""


@dataclass(frozen=True)
class ModelVersionInfo:
    """Everything the pipeline needs about one registered version (no MLflow types leak out)."""

    name: str
    version: str
    aliases: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)
    source: str = ""
    run_id: str | None = None
    description: str = ""
    endpoint_conn_id: str | None = None
    backend: str | None = None

    @property
    def status(self) -> str | None:
        return self.tags.get(TAG_STATUS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "tags": self.tags,
            "source": self.source,
            "run_id": self.run_id,
            "description": self.description,
            "endpoint_conn_id": self.endpoint_conn_id,
            "backend": self.backend,
        }


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _info(mv: ModelVersion) -> ModelVersionInfo:
    tags = dict(mv.tags or {})
    return ModelVersionInfo(
        name=mv.name,
        version=str(mv.version),
        aliases=tuple(mv.aliases or ()),
        tags=tags,
        source=mv.source or "",
        run_id=mv.run_id,
        description=mv.description or "",
        endpoint_conn_id=tags.get(TAG_ENDPOINT),
        backend=tags.get(TAG_BACKEND),
    )


def _is_missing(exc: MlflowException) -> bool:
    return getattr(exc, "error_code", "") in _MISSING


class MlflowModelRegistry:
    """Registry + tracking facade over :class:`mlflow.tracking.MlflowClient`.

    ``artifact_root`` (optional) is where new experiments store artifacts, e.g. a temp dir in tests or an
    ``s3://`` bucket; without it MLflow's server/store default applies.
    """

    def __init__(
        self,
        tracking_uri: str,
        registry_uri: str | None = None,
        *,
        artifact_root: str | None = None,
        serving_experiment: str = DEFAULT_SERVING_EXPERIMENT,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.registry_uri = registry_uri or tracking_uri
        self.artifact_root = artifact_root.rstrip("/") if artifact_root else None
        self.serving_experiment = serving_experiment
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)

    def __repr__(self) -> str:
        return f"MlflowModelRegistry(tracking_uri={self.tracking_uri!r}, registry_uri={self.registry_uri!r})"

    # ----------------------------------------------------------------- experiments and runs
    def _experiment_id(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            return exp.experiment_id
        location = f"{self.artifact_root}/{name}" if self.artifact_root else None
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException:  # created concurrently by another task
            exp = self.client.get_experiment_by_name(name)
            if exp is None:
                raise
            return exp.experiment_id

    def start_release_run(
        self, experiment_name: str, run_name: str, tags: Mapping[str, str] | None = None
    ) -> str:
        """Run id for the release ``run_name``; reuses the run tagged with that release id if one exists."""
        if not run_name or "'" in run_name or "`" in run_name:
            raise ValueError(f"run_name must be non-empty without quotes, got {run_name!r}")
        tags = {str(k): str(v) for k, v in (tags or {}).items()}
        assert_no_secrets(tags, f"tags of release run {run_name!r}")
        exp_id = self._experiment_id(experiment_name)
        found = self.client.search_runs(
            [exp_id],
            f"tags.`{TAG_RELEASE_ID}` = '{run_name}'",
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        if found:
            run_id = found[0].info.run_id
            for k, v in tags.items():
                self.client.set_tag(run_id, k, v)
            log.info("reusing MLflow run %s for release %s", run_id, run_name)
            return run_id
        run = self.client.create_run(exp_id, tags={**tags, TAG_RELEASE_ID: run_name}, run_name=run_name)
        return run.info.run_id

    def end_release_run(
        self, run_id: str, status: str = "FINISHED", *, outcome: str | None = None, reason: str | None = None
    ) -> None:
        """End the release run with ``status`` (``FINISHED``, ``FAILED`` or ``KILLED``) and say why.

        ``outcome`` and ``reason`` go to the tags ``llm_release.outcome`` / ``llm_release.reason`` so
        the MLflow UI tells a rejected or rolled-back release from a promoted one without opening the
        audit trail (a long reason is cut to fit MLflow's tag size). Idempotent: a retried close that
        finds the run already ended with this status and these tags changes nothing, not even the end
        time; a different status (a release re-run after a clear) replaces the earlier one.
        """
        if status not in ("FINISHED", "FAILED", "KILLED"):
            raise ValueError(f"status must be FINISHED, FAILED or KILLED, got {status!r}")
        tags: dict[str, str] = {}
        if outcome is not None:
            tags[TAG_OUTCOME] = str(outcome)
        if reason is not None:
            text = str(reason)
            tags[TAG_REASON] = text if len(text) <= MAX_TAG_CHARS else text[: MAX_TAG_CHARS - 3] + "..."
        assert_no_secrets(tags, f"end tags of release run {run_id}")
        run = self.client.get_run(run_id)
        current = run.data.tags
        for key, value in tags.items():
            if current.get(key) != value:
                self.client.set_tag(run_id, key, value)
        if run.info.status != status:
            self.client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.from_string(status)))

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, Any], prefix: str = "", step: int = 0
    ) -> list[str]:
        """Log numeric metrics; None/NaN/inf are skipped (and returned) instead of being logged as numbers."""
        skipped: list[str] = []
        batch: list[Metric] = []
        ts = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        for key, value in metrics.items():
            name = f"{prefix}{key}"
            if value is None:
                skipped.append(name)
                continue
            if isinstance(value, bool):
                value = float(value)
            if not isinstance(value, int | float):
                raise ValueError(f"metric {name!r} must be a number, got {type(value).__name__}: {value!r}")
            if not math.isfinite(value):
                skipped.append(name)
                continue
            batch.append(Metric(key=name, value=float(value), timestamp=ts, step=step))
        for start in range(0, len(batch), 1000):
            self.client.log_batch(run_id, metrics=batch[start : start + 1000])
        if skipped:
            log.warning("run %s: not logging missing/non-finite metrics %s", run_id, skipped)
        return skipped

    def log_dict(self, run_id: str, obj: Any, artifact_file: str) -> str:
        """Store ``obj`` as a JSON/YAML artifact; returns its ``runs:/`` URI. Refuses secret-looking keys."""
        assert_no_secrets(obj, f"artifact {artifact_file!r}")
        self.client.log_dict(run_id, obj, artifact_file)
        return f"runs:/{run_id}/{artifact_file}"

    # ----------------------------------------------------------------- versions
    def register_version(
        self,
        model_name: str,
        *,
        endpoint_conn_id: str,
        backend: str,
        inference_config: Mapping[str, Any],
        system_prompt: str,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersionInfo:
        """Create a new version whose source is the logged serving configuration."""
        if not endpoint_conn_id or not backend:
            raise ValueError("endpoint_conn_id and backend must be non-empty")
        assert_no_secrets(dict(inference_config), f"inference_config of {model_name!r}")
        extra = {str(k): str(v) for k, v in (tags or {}).items()}
        assert_no_secrets(extra, f"tags of {model_name!r}")
        serving = {
            "model_name": model_name,
            "endpoint_conn_id": endpoint_conn_id,
            "backend": backend,
            "inference_config": dict(inference_config),
            "system_prompt_sha256": hashlib.sha256(system_prompt.encode()).hexdigest(),
            "system_prompt": system_prompt,
        }
        try:
            json.dumps(serving)
        except TypeError as exc:
            raise ValueError(f"inference_config of {model_name!r} is not JSON-serialisable: {exc}") from exc
        try:
            self.client.get_registered_model(model_name)
        except MlflowException as exc:
            if not _is_missing(exc):
                raise
            try:
                self.client.create_registered_model(model_name)
            except MlflowException:
                self.client.get_registered_model(model_name)  # created concurrently: fine if it exists now
        exp_id = self._experiment_id(self.serving_experiment)
        run = self.client.create_run(
            exp_id,
            run_name=f"{model_name}-serving",
            tags={"llm_release.model_name": model_name, TAG_BACKEND: backend},
        )
        run_id = run.info.run_id
        try:
            self.client.log_dict(run_id, serving, SERVING_ARTIFACT)
            params = {
                "endpoint_conn_id": endpoint_conn_id,
                "backend": backend,
                "system_prompt_sha256": serving["system_prompt_sha256"],
            }
            self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])
        finally:
            self.client.set_terminated(run_id)
        mv = self.client.create_model_version(
            model_name,
            source=f"runs:/{run_id}/serving",
            run_id=run_id,
            description=description or None,
            tags={**extra, TAG_ENDPOINT: endpoint_conn_id, TAG_BACKEND: backend, TAG_STATUS: "registered"},
        )
        log.info("registered %s version %s (backend %s)", model_name, mv.version, backend)
        return _info(self.client.get_model_version(model_name, str(mv.version)))

    def load_serving(self, model_name: str, version: str) -> dict[str, Any]:
        """The ``serving.json`` logged when the version was registered."""
        info = self.resolve(model_name, version=version)
        if not info.run_id:
            raise RegistryError(f"{model_name} version {version} has no run; serving config unknown")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                path = self.client.download_artifacts(info.run_id, SERVING_ARTIFACT, tmp)
            except MlflowException as exc:
                raise RegistryError(
                    f"{model_name} version {version}: cannot read {SERVING_ARTIFACT} "
                    f"of run {info.run_id}: {exc}"
                ) from exc
            return json.loads(Path(path).read_text())

    def resolve(
        self, model_name: str, version: str | int | None = None, alias: str | None = None
    ) -> ModelVersionInfo:
        """Exactly one of ``version`` / ``alias``; a missing model, version or alias raises RegistryError."""
        if (version is None) == (alias is None):
            raise ValueError("resolve() needs exactly one of version= or alias=")
        if alias is not None:
            info = self.get_alias(model_name, alias)
            if info is None:
                raise RegistryError(f"registered model {model_name!r} has no alias {alias!r}")
            return info
        try:
            return _info(self.client.get_model_version(model_name, str(version)))
        except MlflowException as exc:
            if _is_missing(exc):
                raise RegistryError(f"registered model {model_name!r} has no version {version!r}") from exc
            raise

    def _require_model(self, model_name: str) -> Any:
        try:
            return self.client.get_registered_model(model_name)
        except MlflowException as exc:
            if _is_missing(exc):
                raise RegistryError(f"registered model {model_name!r} does not exist") from exc
            raise

    def get_alias(self, model_name: str, alias: str) -> ModelVersionInfo | None:
        """The version behind ``alias`` or None; a missing model is an error, not None."""
        model = self._require_model(model_name)
        version = (model.aliases or {}).get(alias)
        return None if version is None else self.resolve(model_name, version=str(version))

    def set_alias(self, model_name: str, alias: str, version: str | int) -> ModelVersionInfo:
        self.resolve(model_name, version=version)
        self.client.set_registered_model_alias(model_name, alias, str(version))
        return self.resolve(model_name, version=version)

    def delete_alias(self, model_name: str, alias: str) -> bool:
        """Remove ``alias``; False when it was already absent (idempotent)."""
        if self.get_alias(model_name, alias) is None:
            return False
        self.client.delete_registered_model_alias(model_name, alias)
        return True

    def set_version_tags(
        self, model_name: str, version: str | int, tags: Mapping[str, Any]
    ) -> ModelVersionInfo:
        self.resolve(model_name, version=version)
        clean = {str(k): str(v) for k, v in tags.items()}
        assert_no_secrets(clean, f"tags for {model_name} version {version}")
        for key, value in clean.items():
            self.client.set_model_version_tag(model_name, str(version), key, value)
        return self.resolve(model_name, version=version)

    def mark_rejected(
        self, model_name: str, version: str | int, version_name: str, tag: str
    ) -> ModelVersionInfo:
        """Tag the version with ``tag`` (``REJECTED-<date>-<release>``, spec section 4, made by
        ``decisions.versioning.rejected_tag``) and its rejected version name; rejected versions are kept."""
        for label, value in (("version_name", version_name), ("tag", tag)):
            if not _VERSION_NAME.match(value):
                raise ValueError(f"{label} {value!r} may only contain letters, digits, '.', '_' and '-'")
        info = self.resolve(model_name, version=version)
        if ALIAS_PRODUCTION in info.aliases:
            raise RegistryError(
                f"{model_name} version {version} is serving production; roll back before marking it rejected"
            )
        return self.set_version_tags(
            model_name,
            version,
            {
                tag: "true",
                TAG_STATUS: "rejected",
                "llm_release.version_name": version_name,
            },
        )

    def promote(
        self, model_name: str, version: str | int, previous_version: str | int | None
    ) -> ModelVersionInfo:
        """``production`` -> ``version`` and ``previous`` -> ``previous_version`` (kept warm for rollback).

        Refuses when ``production`` points at something other than ``version`` or ``previous_version``:
        someone else changed production and the caller's rollback target would be wrong.
        """
        version = str(version)
        prev = None if previous_version is None else str(previous_version)
        if prev == version:
            raise ValueError(f"previous_version must differ from version ({version})")
        new = self.resolve(model_name, version=version)
        if prev is not None:
            self.resolve(model_name, version=prev)
        current = self.get_alias(model_name, ALIAS_PRODUCTION)
        if current is not None and current.version not in (version, prev):
            raise RegistryError(
                f"{model_name}: production is version {current.version}, expected {prev} "
                f"(or {version} already); refusing to promote over an unexpected version"
            )
        now = _now_iso()
        if prev is not None:
            self.client.set_registered_model_alias(model_name, ALIAS_PREVIOUS, prev)
            self.set_version_tags(
                model_name, prev, {TAG_STATUS: "previous", "llm_release.superseded_at": now}
            )
        if ALIAS_PRODUCTION not in new.aliases:
            self.client.set_registered_model_alias(model_name, ALIAS_PRODUCTION, version)
            self.set_version_tags(
                model_name, version, {TAG_STATUS: "production", "llm_release.promoted_at": now}
            )
        log.info("%s: production -> %s, previous -> %s", model_name, version, prev)
        return self.resolve(model_name, version=version)

    def revert_production(self, model_name: str, to_version: str | int) -> ModelVersionInfo:
        """Rollback: ``production`` -> ``to_version``; the version it replaces is tagged ``rolled_back``."""
        to_version = str(to_version)
        target = self.resolve(model_name, version=to_version)
        current = self.get_alias(model_name, ALIAS_PRODUCTION)
        now = _now_iso()
        if current is not None and current.version != to_version:
            self.set_version_tags(
                model_name, current.version, {TAG_STATUS: "rolled_back", "llm_release.rolled_back_at": now}
            )
        if ALIAS_PRODUCTION not in target.aliases:
            self.client.set_registered_model_alias(model_name, ALIAS_PRODUCTION, to_version)
            self.set_version_tags(
                model_name, to_version, {TAG_STATUS: "production", "llm_release.restored_at": now}
            )
        previous = self.get_alias(model_name, ALIAS_PREVIOUS)
        if previous is not None and previous.version == to_version:
            self.client.delete_registered_model_alias(model_name, ALIAS_PREVIOUS)
        log.warning("%s: production reverted to version %s", model_name, to_version)
        return self.resolve(model_name, version=to_version)
