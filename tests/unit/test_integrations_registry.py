"""MlflowModelRegistry round trips on a real MLflow SQLite store in a temp dir (no server)."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from pathlib import Path

import pytest

from llm_release.decisions.versioning import rejected_tag
from llm_release.integrations.registry import MlflowModelRegistry, RegistryError
from llm_release.integrations.secret_guard import SecretLeakError

_names = itertools.count()


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> MlflowModelRegistry:
    root = tmp_path_factory.mktemp("mlflow")
    return MlflowModelRegistry(f"sqlite:///{root}/mlflow.db", artifact_root=str(root / "artifacts"))


@pytest.fixture
def model(registry) -> str:
    return f"support-llm-{next(_names)}"


def register(registry, model, backend="candidate", prompt="You are a support bot."):
    return registry.register_version(
        model,
        endpoint_conn_id=f"llm_{backend}",
        backend=backend,
        inference_config={"temperature": 0.0, "max_tokens": 256, "top_p": 1.0},
        system_prompt=prompt,
        description="weekly build",
        tags={"llm_release.week": "2026-W47"},
    )


def test_register_and_resolve_round_trip(registry, model, tmp_path_factory):
    v1 = register(registry, model, backend="stable")
    v2 = register(registry, model, backend="candidate", prompt="Be concise.")
    assert (v1.version, v2.version) == ("1", "2")
    assert v2.endpoint_conn_id == "llm_candidate" and v2.backend == "candidate"
    assert v2.source == f"runs:/{v2.run_id}/serving" and v2.description == "weekly build"
    assert v2.tags["llm_release.week"] == "2026-W47" and v2.status == "registered"
    assert registry.resolve(model, version=2) == v2
    serving = registry.load_serving(model, "2")
    assert serving["system_prompt"] == "Be concise."
    assert len(serving["system_prompt_sha256"]) == 64 and serving["inference_config"]["max_tokens"] == 256
    assert str(tmp_path_factory.getbasetemp()) in registry.client.get_run(v2.run_id).info.artifact_uri


def test_resolve_errors_name_what_is_missing(registry, model):
    register(registry, model)
    with pytest.raises(RegistryError, match=rf"'{model}' has no version '7'"):
        registry.resolve(model, version="7")
    with pytest.raises(RegistryError, match=rf"'{model}' has no alias 'production'"):
        registry.resolve(model, alias="production")
    with pytest.raises(RegistryError, match="'nope-model' does not exist"):
        registry.get_alias("nope-model", "production")
    with pytest.raises(ValueError, match="exactly one"):
        registry.resolve(model)
    with pytest.raises(ValueError, match="exactly one"):
        registry.resolve(model, version="1", alias="x")


def test_alias_set_get_delete(registry, model):
    register(registry, model)
    assert registry.get_alias(model, "candidate") is None
    assert registry.set_alias(model, "candidate", 1).aliases == ("candidate",)
    assert registry.get_alias(model, "candidate").version == "1"
    assert registry.delete_alias(model, "candidate") is True
    assert registry.delete_alias(model, "candidate") is False


def test_promote_and_revert(registry, model):
    register(registry, model, backend="stable")
    register(registry, model, backend="candidate")
    first = registry.promote(model, "1", None)
    assert first.aliases == ("production",) and first.status == "production"
    promoted = registry.promote(model, "2", "1")
    again = registry.promote(model, "2", "1")  # retried task converges
    assert promoted.aliases == again.aliases == ("production",)
    assert again.tags["llm_release.promoted_at"] == promoted.tags["llm_release.promoted_at"]
    prev = registry.get_alias(model, "previous")
    assert prev.version == "1" and prev.status == "previous"

    register(registry, model)  # version 3
    with pytest.raises(RegistryError, match="production is version 2, expected 1"):
        registry.promote(model, "3", "1")

    restored = registry.revert_production(model, "1")
    assert restored.version == "1" and "production" in restored.aliases
    assert registry.resolve(model, version="2").status == "rolled_back"
    assert registry.get_alias(model, "previous") is None
    assert registry.revert_production(model, "1").version == "1"  # idempotent
    assert registry.resolve(model, version="2").status == "rolled_back"


def test_mark_rejected_is_idempotent_and_refuses_production(registry, model):
    register(registry, model)
    register(registry, model)
    tag = rejected_tag(dt.date(2026, 11, 20), "support-llm-2026-W47-1")
    info = registry.mark_rejected(model, "2", "support-llm-2026-W47-1-rejected", tag)
    info2 = registry.mark_rejected(model, "2", "support-llm-2026-W47-1-rejected", tag)
    assert info.tags == info2.tags
    assert info.tags["REJECTED-2026-11-20-support-llm-2026-W47-1"] == "true"
    assert info.tags["llm_release.version_name"] == "support-llm-2026-W47-1-rejected"
    assert info.status == "rejected"
    registry.promote(model, "1", None)
    with pytest.raises(RegistryError, match="serving production"):
        registry.mark_rejected(model, "1", "support-llm-2026-W47-0-rejected", tag)
    with pytest.raises(ValueError, match="version_name"):
        registry.mark_rejected(model, "2", "bad name!", tag)


def test_release_run_reuse_metrics_and_artifacts(registry, tmp_path):
    run_id = registry.start_release_run("releases", "support-llm-2026-W47-1", {"model": "support-llm"})
    assert registry.start_release_run("releases", "support-llm-2026-W47-1", {}) == run_id
    other = registry.start_release_run("releases", "support-llm-2026-W47-2", {})
    assert other != run_id

    skipped = registry.log_metrics(
        run_id,
        {"scs": 0.91, "p99_ms": 2400, "drift": None, "bias": math.nan, "passed": True},
        prefix="stage_2.",
    )
    assert skipped == ["stage_2.drift", "stage_2.bias"]
    metrics = registry.client.get_run(run_id).data.metrics
    assert metrics == {"stage_2.scs": 0.91, "stage_2.p99_ms": 2400.0, "stage_2.passed": 1.0}
    with pytest.raises(ValueError, match=r"'stage_2\.name' must be a number"):
        registry.log_metrics(run_id, {"name": "x"}, prefix="stage_2.")

    uri = registry.log_dict(run_id, {"score": 91, "bands": [90, 78]}, "decision/score.json")
    assert uri == f"runs:/{run_id}/decision/score.json"
    path = registry.client.download_artifacts(run_id, "decision/score.json", str(tmp_path))
    assert '"score": 91' in Path(path).read_text()
    registry.end_release_run(run_id)
    assert registry.client.get_run(run_id).info.status == "FINISHED"


def test_secrets_refused_everywhere(registry, model):
    with pytest.raises(SecretLeakError, match=r"\$.api_key"):
        registry.register_version(
            model, endpoint_conn_id="c", backend="b", inference_config={"api_key": "sk-1"}, system_prompt="p"
        )
    run_id = registry.start_release_run("releases", "secret-check", {})
    with pytest.raises(SecretLeakError, match=r"\$.auth.password"):
        registry.log_dict(run_id, {"auth": {"password": "x"}}, "a.json")


def test_end_release_run_tags_outcome_and_reason_and_is_idempotent(registry):
    run_id = registry.start_release_run("releases", "support-llm-2026-W48-1", {})
    assert registry.client.get_run(run_id).info.status == "RUNNING"
    registry.end_release_run(run_id, "FAILED", outcome="rejected", reason="failed stage_1_development.gate")
    first = registry.client.get_run(run_id)
    assert first.info.status == "FAILED" and first.info.end_time is not None
    assert first.data.tags["llm_release.outcome"] == "rejected"
    assert first.data.tags["llm_release.reason"] == "failed stage_1_development.gate"

    registry.end_release_run(run_id, "FAILED", outcome="rejected", reason="failed stage_1_development.gate")
    again = registry.client.get_run(run_id)
    assert again.info.end_time == first.info.end_time and again.data.tags == first.data.tags

    registry.end_release_run(run_id, "FINISHED", outcome="promoted", reason="x" * 20000)
    final = registry.client.get_run(run_id)
    assert final.info.status == "FINISHED" and final.data.tags["llm_release.outcome"] == "promoted"
    assert len(final.data.tags["llm_release.reason"]) <= 5000
    with pytest.raises(ValueError, match="status must be"):
        registry.end_release_run(run_id, "DONE")
