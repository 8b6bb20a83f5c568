"""``llm-release validate | plan | explain-score | schema``."""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from llm_release.cli import policy_commands

APPROVERS = {
    "ml_lead": ["alice"],
    "support_ops_lead": ["bob"],
    "safety_reviewer": ["carol"],
    "executive": ["dave"],
}


def run(argv: list[str]) -> int:
    """Through ``llm_release.cli.main`` once every command module exists; until then, through a parser
    holding only the policy commands (the same ``add_parser`` the main parser calls)."""
    if importlib.util.find_spec("llm_release.cli.sandbox_commands") is not None:
        from llm_release.cli import main

        return main(argv)
    parser = argparse.ArgumentParser(prog="llm-release")
    policy_commands.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def write(tmp_path: Path, data: dict, name: str = "support_llm.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def config(**extra: object) -> dict:
    base = {
        "model_name": "support_llm",
        "model_type": "support-llm",
        "approvers": APPROVERS,
        "mlflow_tracking_uri": "sqlite:///mlflow.db",
        "audit_path": "audit.jsonl",
        "tickets_dir": "tickets",
    }
    return {**base, **extra}


def test_validate_ok_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, config())
    assert run(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: OK release config for model 'support_llm'")
    assert len(out.strip().splitlines()) == 1


def test_validate_ok_policy_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(
        tmp_path,
        {"extends": "customer-support-weekly-high-impact", "approvals": {"sla_hours": 2}},
        "policy.yaml",
    )
    assert run(["validate", str(path)]) == 0
    assert "OK policy 'customer-support-weekly-high-impact'" in capsys.readouterr().out


def test_validate_misspelt_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, config(policy={"rollout": {"canary_acceleraton": {}}}))
    assert run(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # problems go to stderr, so `validate ... > report` still shows them
    assert (
        f"{path}: policy.rollout.canary_acceleraton: extra inputs are not permitted; "
        "did you mean 'canary_acceleration'?"
    ) in captured.err


def test_validate_wrong_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, config(max_hold_factor="many", policy={"decision_engine": {"scs_target": "high"}}))
    assert run(["validate", str(path)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert any(line.startswith(f"{path}: max_hold_factor: Input should be a valid number") for line in lines)
    assert any(
        line.startswith(f"{path}: policy.decision_engine.scs_target: Input should be a valid number")
        for line in lines
    )


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", str(tmp_path / "nope.yaml")]) == 1
    assert capsys.readouterr().err == f"{tmp_path / 'nope.yaml'}: file not found\n"


def test_plan_high_risk_with_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, config())
    assert run(["plan", str(path), "--release-type", "base_model_upgrade"]) == 0
    out = capsys.readouterr().out
    assert "risk 75 (high)" in out
    assert "Safety Reviewer (safety_reviewer): carol" in out
    assert "canary_tier_1        2%       4 h" in out
    assert "progressive_25      25%       6 h  [human confirmation first]" in out
    assert "shadow: 24 h" in out


def test_plan_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        [
            "plan",
            "customer-support-weekly-high-impact",
            "--release-type",
            "prompt_minor",
            "--clean-streak",
            "3",
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["risk"] == {"score": 15, "level": "low", "reasons": doc["risk"]["reasons"]}
    assert [p["dwell_hours"] for p in doc["phases"]][:2] == [1, pytest.approx(3.2)]
    assert [a["role"] for a in doc["approvers_required"]] == ["ml_lead", "support_ops_lead"]
    assert doc["shadow"]["min_samples"] == 500


def test_plan_unknown_release_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["plan", "customer-support-weekly-high-impact", "--release-type", "nope"]) == 1
    assert "valid release types" in capsys.readouterr().err


def test_explain_score(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "explain-score",
        "--scs",
        "0.88",
        "--policy-compliance",
        "1.0",
        "--task-completion",
        "0.87",
        "--p99-ms",
        "3200",
        "--json",
    ]
    assert run(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["total"] == pytest.approx(93.6667, abs=1e-3) and doc["band"] == "advance"
    vetoed = [
        "explain-score",
        "--scs",
        "0.88",
        "--policy-compliance",
        "0.99",
        "--task-completion",
        "0.87",
        "--p99-ms",
        "3200",
    ]
    assert run(vetoed) == 0
    text = capsys.readouterr().out
    assert "SAFETY VETO" in text and "band: reject" in text


def test_schema_to_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "schema.json"
    assert run(["schema", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["title"] == "ReleasePolicy"
    assert run(["schema", "--kind", "config"]) == 0
    assert "model_name" in json.loads(capsys.readouterr().out.split("\n", 1)[1])["properties"]
