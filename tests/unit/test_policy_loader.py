"""Loading policies and release configs: overrides, env expansion, and errors that name file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llm_release.policy import (
    DEFAULT_PROFILE,
    PolicyError,
    ReleasePolicy,
    load_policy,
    load_release_config,
)
from llm_release.policy.loader import resolve_policy_document

APPROVERS = {
    "ml_lead": ["alice"],
    "support_ops_lead": ["bob"],
    "safety_reviewer": ["carol"],
    "executive": ["dave"],
}


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def config(**extra: object) -> dict[str, object]:
    base = {
        "model_name": "support_llm",
        "model_type": "support-llm",
        "approvers": APPROVERS,
        "mlflow_tracking_uri": "sqlite:///mlflow.db",
        "audit_path": "audit.jsonl",
        "tickets_dir": "tickets",
    }
    return {**base, **extra}


def problems(exc_info: pytest.ExceptionInfo[PolicyError]) -> list[str]:
    return exc_info.value.problems


def test_valid_release_config_resolves_policy(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", config(time_scale=0.0005, release_type="prompt_minor"))
    cfg = load_release_config(path)
    assert cfg.profile == DEFAULT_PROFILE
    assert cfg.connections.router_conn_id == "llm_traffic_router"
    assert cfg.connections.metrics_conn_id == "llm_metrics_source"
    assert cfg.release_policy.decision_engine.min_score == 78
    assert cfg.users_for("ml_lead") == ["alice"]


def test_named_list_override_and_deep_merge(tmp_path: Path) -> None:
    overrides = {"rollout": {"phases": {"canary_tier_1": {"dwell_hours": 3}}}, "approvals": {"sla_hours": 2}}
    cfg = load_release_config(write(tmp_path, "c.yaml", config(policy=overrides)))
    policy = cfg.release_policy
    assert policy.rollout.phase("canary_tier_1").dwell_hours == 3
    assert policy.rollout.phase("canary_tier_2").dwell_hours == 4  # untouched sibling
    assert policy.approvals.sla_hours == 2
    assert policy.approvals.always_required == ["ml_lead", "support_ops_lead"]


def test_misspelt_key_names_path_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", config(policy={"decision_engine": {"scs_targt": 0.8}}, time_scal=0.5))
    with pytest.raises(PolicyError) as exc:
        load_release_config(path)
    lines = problems(exc)
    assert f"{path}: time_scal: extra inputs are not permitted; did you mean 'time_scale'?" in lines
    assert (
        f"{path}: policy.decision_engine.scs_targt: extra inputs are not permitted; did you mean 'scs_target'?"
        in lines
    )


def test_wrong_type_names_list_index_path(tmp_path: Path) -> None:
    path = write(
        tmp_path, "c.yaml", config(policy={"rollout": {"phases": {"canary_tier_2": {"dwell_hours": "x"}}}})
    )
    with pytest.raises(PolicyError) as exc:
        load_release_config(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: policy.rollout.phases.2.dwell_hours: Input should be a valid number")
    assert "'x'" in line


def test_unknown_named_item_is_reported_with_suggestion(tmp_path: Path) -> None:
    path = write(
        tmp_path, "c.yaml", config(policy={"rollout": {"phases": {"canary_tier_3": {"dwell_hours": 1}}}})
    )
    with pytest.raises(PolicyError) as exc:
        load_release_config(path)
    assert "policy.rollout.phases.canary_tier_3: no item with name 'canary_tier_3'; did you mean" in str(
        exc.value
    )


def test_yaml_syntax_error_has_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "model_name: x\nmodel_type: [unclosed\nprofile: y\n")
    with pytest.raises(PolicyError) as exc:
        load_release_config(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: line ") and "YAML syntax error" in line


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "model_name: a\nmodel_type: b\nmodel_name: c\n")
    with pytest.raises(PolicyError) as exc:
        load_release_config(path)
    assert "duplicate key 'model_name' (first defined on line 1)" in str(exc.value)
    assert "line 3" in str(exc.value)


def test_missing_file_and_unknown_profile(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="file not found"):
        load_release_config(tmp_path / "nope.yaml")
    with pytest.raises(PolicyError, match="did you mean 'customer-support-weekly-high-impact'"):
        load_policy("customer-support-weekly-high-impakt")
    assert issubclass(PolicyError, ValueError)


def test_env_expansion_with_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMR_TEST_URI", "sqlite:///m.db")
    monkeypatch.delenv("LLMR_UNSET", raising=False)
    data = config(
        mlflow_tracking_uri="${LLMR_TEST_URI}",
        audit_path="${LLMR_UNSET:-/tmp/audit.jsonl}",
        time_scale="${LLMR_UNSET:-0.5}",
        owner="cost $$5",
    )
    cfg = load_release_config(write(tmp_path, "c.yaml", data))
    assert cfg.mlflow_tracking_uri == "sqlite:///m.db"
    assert cfg.audit_path == "/tmp/audit.jsonl"
    assert cfg.time_scale == 0.5
    assert cfg.owner == "cost $5"


def test_unset_env_var_without_default_names_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMR_UNSET", raising=False)
    path = write(tmp_path, "c.yaml", config(connections={"router_conn_id": "${LLMR_UNSET}"}))
    with pytest.raises(PolicyError) as exc:
        load_release_config(path)
    assert problems(exc) == [
        f"{path}: connections.router_conn_id: environment variable 'LLMR_UNSET' is not set "
        "(write ${LLMR_UNSET:-default} to give a default)"
    ]


@pytest.mark.parametrize("scale", [0, -1, 1.5])
def test_time_scale_bounds(tmp_path: Path, scale: float) -> None:
    with pytest.raises(PolicyError, match="time_scale"):
        load_release_config(write(tmp_path, "c.yaml", config(time_scale=scale)))


def test_every_possible_role_needs_a_user(tmp_path: Path) -> None:
    approvers = {k: v for k, v in APPROVERS.items() if k != "executive"}
    path = write(tmp_path, "c.yaml", config(approvers=approvers))
    with pytest.raises(PolicyError) as exc:
        load_release_config(path)
    (line,) = problems(exc)
    assert line.startswith(f"{path}: approvers.executive: the policy may require a Executive Sponsor")


def test_approver_role_typo_and_distinct_people(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", config(approvers={**APPROVERS, "safety_reviewr": ["x"]}))
    with pytest.raises(
        PolicyError, match=r"approvers.safety_reviewr: unknown role; did you mean 'safety_reviewer'"
    ):
        load_release_config(path)
    same = {role: ["alice"] for role in APPROVERS}
    with pytest.raises(PolicyError, match="distinct people"):
        load_release_config(write(tmp_path, "d.yaml", config(approvers=same)))
    # overlapping lists are fine as long as a distinct assignment exists
    overlapping = {
        "ml_lead": ["alice", "bob"],
        "support_ops_lead": ["alice"],
        "safety_reviewer": ["carol"],
        "executive": ["dave", "carol"],
    }
    load_release_config(write(tmp_path, "e.yaml", config(approvers=overlapping)))


def test_unknown_release_type(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="unknown release type 'prompt_mnor'; did you mean 'prompt_minor'"):
        load_release_config(write(tmp_path, "c.yaml", config(release_type="prompt_mnor")))


def test_policy_file_extends_profile(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        {
            "extends": DEFAULT_PROFILE,
            "profile": "strict",
            "decision_engine": {
                "routing_bands": {"enhanced_review": {"min_score": 90}, "advance": {"min_score": 95}},
            },
        },
    )
    policy = load_policy(path)
    assert policy.profile == "strict"
    assert policy.decision_engine.min_score == 90
    assert policy.decision_engine.weights.safety == 35
    child = write(tmp_path, "child.yaml", {"extends": "p.yaml", "approvals": {"sla_hours": 1}})
    assert load_policy(child).decision_engine.min_score == 90


def test_extends_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", {"extends": "b.yaml"})
    write(tmp_path, "b.yaml", {"extends": "a.yaml"})
    with pytest.raises(PolicyError, match="cycle"):
        load_policy(tmp_path / "a.yaml")


def _base() -> dict:
    data, _ = resolve_policy_document(DEFAULT_PROFILE)
    return data


def _errors(data: dict) -> str:
    from llm_release.policy.loader import validate_policy_mapping

    with pytest.raises(PolicyError) as exc:
        validate_policy_mapping(data, "p.yaml")
    return str(exc.value)


def test_cross_field_weights_and_bands() -> None:
    data = _base()
    data["decision_engine"]["weights"]["latency"] = 20
    assert "p.yaml: decision_engine.weights: weights must sum to 100, got 105" in _errors(data)
    data = _base()
    data["decision_engine"]["routing_bands"][1]["min_score"] = 95
    assert "strictly decreasing min_score" in _errors(data)


def test_cross_field_risk_levels_contiguous_and_monotone() -> None:
    data = _base()
    data["risk"]["levels"][1]["min_score"] = 32
    assert "levels must be contiguous: low ends at 30 but medium starts at 32" in _errors(data)
    data = _base()
    data["risk"]["levels"][3]["mitigations"]["canary_dwell_multiplier"] = 1.0
    assert "level critical is laxer than high: canary_dwell_multiplier" in _errors(data)


def test_cross_field_phases_and_references() -> None:
    data = _base()
    data["rollout"]["phases"][3]["traffic_percent"] = 5
    assert "traffic_percent must be strictly increasing" in _errors(data)
    data = _base()
    data["rollout"]["phases"][-1]["traffic_percent"] = 90
    assert "traffic_percent 100" in _errors(data)
    data = _base()
    data["pause_triggers"][0]["applies_to_phases"] = ["canary_tier_9"]
    assert (
        "p.yaml: pause_triggers.0.applies_to_phases: 'canary_tier_9' is not a live rollout phase"
        in _errors(data)
    )
    data = _base()
    data["risk"]["levels"][3]["mitigations"]["additional_approvers"].append("ceo")
    assert "risk.levels.3.mitigations.additional_approvers: unknown role 'ceo'" in _errors(data)
    data = _base()
    data["rollback_triggers"][1]["minutes"] = None
    assert "rollback_triggers.1: evaluation 'sustained' needs minutes" in _errors(data)


def test_every_problem_is_listed_at_once() -> None:
    data = _base()
    data["drift"]["alert_threshold"] = 0.5
    data["retention"]["audit_months"] = 0
    data["bias"]["toolng"] = "x"
    text = _errors(data)
    assert "drift: alert_threshold (0.5) must be below hard_block_threshold (0.22)" in text
    assert "retention.audit_months" in text
    assert "bias.toolng: extra inputs are not permitted; did you mean 'tooling'?" in text


def test_model_round_trips_through_dump() -> None:
    policy = load_policy(DEFAULT_PROFILE)
    again = ReleasePolicy.model_validate(policy.model_dump())
    assert again == policy
