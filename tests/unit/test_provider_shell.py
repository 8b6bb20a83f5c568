"""Provider metadata, the release summary for the dashboard, and small helpers of the Airflow shell."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest

from llm_release.decisions.release import clean_release_streak
from llm_release.get_provider_info import get_provider_info
from llm_release.operators.base import jsonable
from llm_release.reporting import group_by_release, release_for_run, summarize_release


def test_provider_info_is_valid_against_airflows_schema() -> None:
    schema = json.loads(resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert {c["connection-type"] for c in info["connection-types"]} == {
        "llm_model_endpoint", "llm_traffic_router", "llm_metrics_source", "llm_judge"}


def test_every_class_named_in_provider_info_imports() -> None:
    import importlib

    info = get_provider_info()
    names = [c["hook-class-name"] for c in info["connection-types"]] + info["extra-links"] + info["notifications"]
    for dotted in names:
        module, _, attr = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), attr), dotted
    for section in ("operators", "sensors", "triggers", "hooks"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


def test_jsonable_turns_nan_into_none_and_frames_into_records() -> None:
    frame = pd.DataFrame({"x": [1.0, math.nan]})
    out = jsonable({"f": frame, "n": np.float64(2.5), "a": np.array([1, 2]), "t": datetime(2026, 1, 2, tzinfo=UTC),
                    "bad": float("inf")})
    assert out == {"f": [{"x": 1.0}, {"x": None}], "n": 2.5, "a": [1, 2], "t": "2026-01-02T00:00:00+00:00",
                   "bad": None}
    json.dumps(out)


@pytest.mark.parametrize(("outcomes", "streak"), [
    ([], 0), (["promoted"], 1), (["promoted", "rolled_back", "promoted", "promoted"], 2),
    (["promoted", "promoted", "rejected"], 0),
])
def test_clean_release_streak_counts_trailing_promotions(outcomes: list[str], streak: int) -> None:
    assert clean_release_streak(outcomes) == streak


@dataclass
class Rec:
    release_id: str
    kind: str
    payload: dict[str, Any] = field(default_factory=dict)
    stage: str | None = None
    actor: str = "airflow"
    ts: str = "2026-11-22T00:00:00Z"


def _trail() -> list[Rec]:
    release = {"model_name": "support-llm", "candidate": {"version": "2"}, "production": {"version": "1"},
               "release_type": "prompt_minor", "risk": {"score": 15, "level": "low"}}
    return [
        Rec("r1", "release_opened", {"airflow_run_id": "run-1", "release": release}),
        Rec("r1", "gate_verdict", {"stage": "development", "passed": True, "checks": []}),
        Rec("r2", "release_opened", {"airflow_run_id": "run-2", "release": release}),
        Rec("r1", "gate_verdict", {"stage": "validation", "passed": False,
                                   "checks": [{"metric": "scs", "passed": False}, {"metric": "bleu", "passed": True}]}),
        Rec("r1", "approval", {"role": "ml_lead", "decision": "Approve"}, actor="alice"),
        Rec("r1", "rollback", {"trigger": "error_rate_sustained"}),
        Rec("r1", "release_closed", {"outcome": "rolled_back", "reason": "error_rate_sustained"}),
    ]


def test_summary_of_a_release_from_its_trail() -> None:
    releases = group_by_release(_trail())
    assert list(releases) == ["r1", "r2"]
    s = summarize_release(releases["r1"])
    assert s["status"] == "rolled_back" and s["reason"] == "error_rate_sustained"
    assert [(g["stage"], g["passed"], g["failed_checks"]) for g in s["gates"]] == [
        ("development", True, []), ("validation", False, ["scs"])]
    assert s["approvals"][0]["by"] == "alice" and s["candidate_version"] == "2"
    assert summarize_release(releases["r2"])["status"] == "in progress"
    assert release_for_run(_trail(), "run-2") == "r2" and release_for_run(_trail(), "nope") is None
    with pytest.raises(ValueError):
        summarize_release([])
