"""The Airflow shell stays thin: one test per finding of the shell review.

* rules in operators (sign-off, decision-score inputs): the operators now call ``decisions``;
* task ids repeated in operators: ``pipeline.py`` passes every upstream task id in;
* a failed release that looked green: ``close_release`` always runs and fails unless promoted, and the
  MLflow release run ends FINISHED or FAILED with the outcome and reason.

Operators run here against a real config file, a real MLflow store (SQLite) and a real audit file; only
the task instance is a stand-in that serves XComs and task states. One test runs a real DAG run with
``dag.test()`` in its own Airflow home.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException

import llm_release.operators as operators_pkg
from llm_release.decisions.release import ReleaseRecord, VersionFacts, open_release
from llm_release.integrations.registry import MlflowModelRegistry
from llm_release.operators.base import PREPARE_TASK_ID
from llm_release.pipeline import build_release_dag
from llm_release.policy import load_release_config

OPERATORS_DIR = Path(operators_pkg.__file__).parent
PACKAGE_DIR = OPERATORS_DIR.parent
RUN_ID = "manual__2026-11-20T09:00:00+00:00"


# --------------------------------------------------------------------------- fixtures and stand-ins


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "release.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            model_name: support-llm
            model_type: support-llm
            approvers:
              ml_lead: [alice]
              support_ops_lead: [bob, carol]
              safety_reviewer: [carol]
              executive: [dana]
            mlflow_tracking_uri: sqlite:///{tmp_path}/mlflow.db
            mlflow_artifact_root: {tmp_path}/artifacts
            audit_path: {tmp_path}/audit/audit.jsonl
            tickets_dir: {tmp_path}/tickets
            """
        )
    )
    return path


@pytest.fixture
def dag(config_path: Path) -> Any:
    return build_release_dag(config_path, dag_id="release_test")


def release_record(config_path: Path, release_type: str = "prompt_minor", *, mlflow_run: bool = True) -> ReleaseRecord:
    cfg = load_release_config(config_path)
    record = open_release(
        cfg.release_policy,
        model_name=cfg.model_name,
        model_type=cfg.model_type,
        candidate=VersionFacts(version="2", backend="candidate", endpoint_conn_id="llm_candidate"),
        production=VersionFacts(version="1", backend="stable", endpoint_conn_id="llm_stable"),
        release_type=release_type,
        change_summary="",
        open_reviews=[],
        used_version_names=[],
        closed_outcomes=[],
        now=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        time_scale=1.0,
        airflow_run_id=RUN_ID,
    )
    if mlflow_run:
        run_id = mlflow(config_path).start_release_run("llm-release/support-llm", record.release_id)
        record = record.model_copy(update={"mlflow_run_id": run_id})
    return record


def mlflow(config_path: Path) -> MlflowModelRegistry:
    cfg = load_release_config(config_path)
    return MlflowModelRegistry(cfg.mlflow_tracking_uri, artifact_root=cfg.mlflow_artifact_root)


class FakeTI:
    """Serves XComs and this run's task states the way Airflow's task instance does."""

    dag_id = "release_test"
    run_id = RUN_ID

    def __init__(self, task_id: str, xcoms: dict[tuple[str, str], Any], states: dict[str, str] | None = None):
        self.task_id = task_id
        self.xcoms = xcoms
        self.states = states or {}
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value

    def get_task_states(self, dag_id: str, task_ids=None, task_group_id=None, run_ids=None, **_: Any) -> dict:
        states = {t: s for t, s in self.states.items() if task_ids is None or t in task_ids}
        if task_group_id is not None:
            states = {t: s for t, s in states.items() if t.startswith(f"{task_group_id}.")}
        return {self.run_id: states}


def context_for(task: Any, xcoms: dict[tuple[str, str], Any], states: dict[str, str] | None = None) -> dict:
    return {"ti": FakeTI(task.task_id, xcoms, states), "dag": task.dag, "params": {}}


def all_states(dag: Any, default: str, **overrides: str) -> dict[str, str]:
    states = {t: default for t in dag.task_dict if t != "close_release"}
    states.update({k.replace("__", "."): v for k, v in overrides.items()})
    return states


# --------------------------------------------------------------------------- task ids: one owner


def _literals(node: ast.AST) -> list[str]:
    """String constants inside a task-id argument (plain, f-string parts, list/tuple/dict elements)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant)] or ["<f-string>"]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [s for element in node.elts for s in _literals(element)]
    if isinstance(node, ast.Dict):
        return [s for value in node.values if value is not None for s in _literals(value)]
    return []


def test_no_operator_hard_codes_another_tasks_id() -> None:
    problems: list[str] = []
    group_id = re.compile(r"stage_\d+_[a-z]")
    literal_in_template = re.compile(r"task_ids\s*=\s*['\"][A-Za-z_]")
    for path in sorted(OPERATORS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            where = f"{path.name}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.keyword) and node.arg and (
                node.arg in ("task_ids", "task_id", "task_group_id", "group_id")
                or node.arg.endswith(("_task_id", "_task_ids"))
            ):
                for text in _literals(node.value):
                    problems.append(f"{where}: {node.arg}={text!r}")
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if group_id.search(node.value):
                    problems.append(f"{where}: task group id in {node.value[:60]!r}")
                if literal_in_template.search(node.value):
                    problems.append(f"{where}: task id written into a template {node.value[:60]!r}")
    assert problems == [], "task ids belong to pipeline.py:\n" + "\n".join(problems)


def test_the_prepare_task_id_is_defined_once() -> None:
    assignments = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value == "prepare":
                assignments.append((path.relative_to(PACKAGE_DIR).as_posix(), [ast.unparse(t) for t in node.targets]))
    assert assignments == [("operators/base.py", ["PREPARE_TASK_ID"])]


def _referenced_ids(task: Any) -> dict[str, list[str]]:
    refs: dict[str, list[str]] = {}
    for name, value in vars(task).items():
        if name in ("task_id", "_task_id") or not name.endswith(("_task_id", "_task_ids", "measurement_tasks")):
            continue
        if isinstance(value, str):
            refs[name] = [value]
        elif isinstance(value, dict):
            refs[name] = list(value.values())
        elif isinstance(value, (list, tuple)):
            refs[name] = list(value)
    return refs


def test_every_task_id_an_operator_reads_is_its_neighbour_in_the_dag(dag: Any) -> None:
    checked = 0
    for task in dag.tasks:
        upstream = task.get_flat_relative_ids(upstream=True)
        for name, ids in _referenced_ids(task).items():
            for ref in ids:
                assert ref in dag.task_dict, f"{task.task_id}.{name} = {ref!r} is not a task of the DAG"
                assert ref in upstream or ref in task.downstream_task_ids, (
                    f"{task.task_id}.{name} = {ref!r} is neither upstream of it nor a branch it chooses"
                )
                checked += 1
        if getattr(task, "watched_group_id", None):
            assert task.watched_group_id in dag.task_group_dict
    assert checked > 30, checked  # the wiring is really being exercised


def test_pipeline_passes_the_canary_dwell_only_to_later_phases(dag: Any) -> None:
    cfg = load_release_config(dag.task_dict[PREPARE_TASK_ID].config_path)
    canary = cfg.release_policy.rollout.canary_acceleration.measured_at_phase
    phases = [p.name for p in cfg.release_policy.rollout.phases if p.traffic_percent > 0]
    for index, phase in enumerate(phases):
        task = dag.task_dict[f"stage_5_production.set_traffic_{phase}"]
        expected = f"stage_5_production.dwell_{canary}" if index > phases.index(canary) else None
        assert task.canary_task_id == expected, phase


# --------------------------------------------------------------------------- a run's state tells its outcome


def test_close_release_is_the_only_leaf_and_runs_whatever_failed(dag: Any) -> None:
    assert [t.task_id for t in dag.leaves] == ["close_release"]
    close = dag.task_dict["close_release"]
    assert close.trigger_rule == "all_done"
    assert close.get_flat_relative_ids(upstream=True) == set(dag.task_dict) - {"close_release"}
    rules = {t.task_id: t.trigger_rule for t in dag.tasks}
    assert {r for t, r in rules.items() if t != "close_release"} <= {
        "all_success", "none_failed_min_one_success", "one_failed"
    }, rules
    assert {t for t, r in rules.items() if r == "one_failed"} == {"reject", "rollback"}


def test_close_release_fails_when_prepare_failed_and_names_why(dag: Any) -> None:
    close = dag.task_dict["close_release"]
    refusal = "post-incident review outstanding for support-llm (ticket PIR-1)"
    context = context_for(
        close,
        {(PREPARE_TASK_ID, "refusal"): refusal},
        all_states(dag, "upstream_failed", prepare="failed", reject="skipped", rollback="skipped"),
    )
    with pytest.raises(AirflowFailException, match=re.escape(f"failed: release not opened: {refusal}")):
        close.execute(context)


def test_close_release_ends_the_mlflow_run_of_a_prepare_that_failed_after_opening_it(config_path, dag) -> None:
    run_id = mlflow(config_path).start_release_run("llm-release/support-llm", "support-llm-2026-W47-9")
    close = dag.task_dict["close_release"]
    context = context_for(
        close,
        {(PREPARE_TASK_ID, "mlflow_run_id"): run_id},
        all_states(dag, "upstream_failed", prepare="failed", reject="skipped", rollback="skipped"),
    )
    with pytest.raises(AirflowFailException, match="release not opened: task 'prepare' ended failed"):
        close.execute(context)
    run = mlflow(config_path).client.get_run(run_id)
    assert run.info.status == "FAILED" and run.data.tags["llm_release.outcome"] == "failed"


def test_close_release_ends_a_rejected_release_run_failed_with_the_reason_idempotently(config_path, dag) -> None:
    record = release_record(config_path)
    close = dag.task_dict["close_release"]
    states = all_states(
        dag, "upstream_failed", prepare="success", stage_1_development__internal_eval="success",
        stage_1_development__gate="failed", reject="success", rollback="skipped",
    )
    xcoms = {(PREPARE_TASK_ID, "return_value"): record.model_dump(mode="json")}
    for _ in range(2):  # a retried close converges
        with pytest.raises(AirflowFailException, match=r"rejected: failed stage_1_development\.gate"):
            close.execute(context_for(close, xcoms, states))
    run = mlflow(config_path).client.get_run(record.mlflow_run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["llm_release.outcome"] == "rejected"
    assert run.data.tags["llm_release.reason"] == "failed stage_1_development.gate"
    closed = [r for r in load_audit(config_path) if r.kind == "release_closed"]
    assert len(closed) == 1 and closed[0].payload["outcome"] == "rejected"


def test_close_release_finishes_the_run_only_when_promoted(config_path, dag) -> None:
    record = release_record(config_path)
    close = dag.task_dict["close_release"]
    xcoms = {(PREPARE_TASK_ID, "return_value"): record.model_dump(mode="json")}
    payload = close.execute(context_for(close, xcoms, all_states(dag, "success", reject="skipped", rollback="skipped")))
    assert payload["outcome"] == "promoted"
    run = mlflow(config_path).client.get_run(record.mlflow_run_id)
    assert run.info.status == "FINISHED" and run.data.tags["llm_release.outcome"] == "promoted"

    skipped_promotion = all_states(dag, "success", reject="skipped", rollback="skipped",
                                   stage_5_production__promote="skipped")
    with pytest.raises(AirflowFailException, match="ended without promotion"):
        close.execute(context_for(close, xcoms, skipped_promotion))


def load_audit(config_path: Path) -> list[Any]:
    from llm_release.integrations.audit import JsonlAuditStore

    return JsonlAuditStore(load_release_config(config_path).audit_path).read()


DAG_FILE = """\
# airflow DAG built by the test from the config named in LLM_RELEASE_TEST_CONFIG
import os

from llm_release.pipeline import build_release_dag

dag = build_release_dag(os.environ["LLM_RELEASE_TEST_CONFIG"], dag_id="release_prepare_fails")
"""

RUN_DAG = """\
import json, os, runpy, sys
from airflow.utils import db
db.initdb()
dag = runpy.run_path(sys.argv[1])["dag"]
run = dag.test(run_conf={"candidate_version": "2"})
states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}
print(json.dumps({"run": str(getattr(run.state, "value", run.state)), "states": states}))
"""


@pytest.mark.integration
def test_a_run_whose_prepare_fails_ends_failed_not_green(tmp_path: Path, config_path: Path) -> None:
    """A real DAG run: the candidate is refused in ``prepare`` (post-incident review open)."""
    from llm_release.integrations.tickets import LocalTicketStore

    registry = mlflow(config_path)
    for backend in ("stable", "candidate"):
        registry.register_version(
            "support-llm", endpoint_conn_id=f"llm_{backend}", backend=backend, inference_config={}, system_prompt="p"
        )
    registry.set_alias("support-llm", "production", "1")
    cfg = load_release_config(config_path)
    LocalTicketStore(cfg.tickets_dir).open_ticket(
        "post_incident_review", "support-llm-2026-W40-1", "PIR", {"model_name": "support-llm"}, "pir/test"
    )
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    dag_file = home / "dags" / "release_prepare_fails.py"
    dag_file.write_text(DAG_FILE)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "LLM_RELEASE_TEST_CONFIG": str(config_path),
    }
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    out = subprocess.run(
        [sys.executable, "-c", RUN_DAG, str(dag_file)], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    states = result["states"]
    assert states["prepare"] == "failed"
    assert states["close_release"] == "failed", states  # it used to skip itself, and the run ended "success"
    assert result["run"] == "failed", states
    assert "post-incident review outstanding" in out.stdout + out.stderr


# --------------------------------------------------------------------------- rules called, not held, by operators


def decision_payload(band: str) -> dict[str, Any]:
    return {"inputs": {}, "score": {
        "total": 91.0 if band == "advance" else 80.0, "components": {}, "safety_vetoed": False,
        "unmeasured_components": [], "band": band, "advances_to_stage_4": True,
        "requires_safety_reviewer": band == "enhanced_review", "adds_approvers": [], "min_score": 78.0,
        "explanation": [],
    }}


def hitl(user: str, option: str = "Approve") -> dict[str, Any]:
    return {"chosen_options": [option], "responded_by_user": {"id": user, "name": user}, "params_input": {}}


def test_approval_check_calls_signoff_verdict_and_refuses_one_person_for_two_roles(config_path, dag) -> None:
    record = release_record(config_path, "base_model_upgrade", mlflow_run=False)  # High: safety reviewer, red team
    check = dag.task_dict["stage_4_preproduction.check_approvals"]
    stage4 = "stage_4_preproduction"
    xcoms = {
        (PREPARE_TASK_ID, "return_value"): record.model_dump(mode="json"),
        ("stage_3_staging.decision_score", "return_value"): decision_payload("advance"),
        (f"{stage4}.approve_ml_lead", "return_value"): hitl("alice"),
        (f"{stage4}.approve_support_ops_lead", "return_value"): hitl("carol"),
        (f"{stage4}.approve_safety_reviewer", "return_value"): hitl("carol"),
        (f"{stage4}.red_team_review", "return_value"): hitl("carol"),
    }  # no XCom from route_approvals: the requirement is recomputed, never read back
    with pytest.raises(AirflowFailException, match="'carol' approved 2 roles"):
        check.execute(context_for(check, xcoms))
    xcoms[(f"{stage4}.approve_support_ops_lead", "return_value")] = hitl("bob")
    result = check.execute(context_for(check, xcoms))
    assert result["passed"] and result["red_team_accepted"]
    assert result["required_roles"] == ["ml_lead", "support_ops_lead", "safety_reviewer"]
    del xcoms[(f"{stage4}.red_team_review", "return_value")]
    with pytest.raises(AirflowFailException, match="red-team review required at this risk level was not answered"):
        check.execute(context_for(check, xcoms))


def test_approval_routing_without_a_decision_score_fails_closed(config_path, dag) -> None:
    record = release_record(config_path, mlflow_run=False)
    route = dag.task_dict["stage_4_preproduction.route_approvals"]
    xcoms = {(PREPARE_TASK_ID, "return_value"): record.model_dump(mode="json")}
    with pytest.raises(AirflowFailException, match=r"no decision score from task 'stage_3_staging\.decision_score'"):
        route.choose_branch(context_for(route, xcoms))
    xcoms[("stage_3_staging.decision_score", "return_value")] = decision_payload("enhanced_review")
    chosen = route.choose_branch(context_for(route, xcoms))
    assert chosen == [
        "stage_4_preproduction.approve_ml_lead",
        "stage_4_preproduction.approve_support_ops_lead",
        "stage_4_preproduction.approve_safety_reviewer",
    ]


def test_decision_score_operator_treats_a_missing_probe_count_as_a_failure_not_zero(config_path, dag) -> None:
    record = release_record(config_path)
    task = dag.task_dict["stage_3_staging.decision_score"]
    shadow = {"shadow_policy_violation_rate": 0.0, "shadow_scs": 0.92, "shadow_latency_p99_ms": 2000.0}
    xcoms = {
        (PREPARE_TASK_ID, "return_value"): record.model_dump(mode="json"),
        ("stage_2_validation.validation_eval", "return_value"): {
            "metrics": {"task_completion_rate": 0.93, "policy_violations": 0.0}
        },
        ("stage_3_staging.evaluate_shadow", "return_value"): {"metrics": shadow},
        ("stage_2_validation.adversarial", "return_value"): {"metrics": {"policy_probe_violations": 0.0}},
    }
    passed = task.execute(context_for(task, xcoms))
    assert passed["score"]["advances_to_stage_4"] and passed["score"]["band"] == "advance"
    xcoms[("stage_2_validation.adversarial", "return_value")] = {"metrics": {"policy_probe_n": 50.0}}
    context = context_for(task, xcoms)
    with pytest.raises(AirflowFailException, match="release blocked"):
        task.execute(context)
    verdict = context["ti"].pushed["verdict"]
    assert verdict["inputs"]["unmeasured"] == ["adversarial.policy_probe_violations"]
    assert verdict["score"]["safety_vetoed"]


def test_a_policy_asking_for_the_llm_judge_is_refused_before_any_dag_exists(config_path: Path) -> None:
    """The LLM judge is a client and a hook, not yet part of the pipeline: 'both' must not be ignored."""
    config_path.write_text(config_path.read_text() + "policy:\n  judging:\n    shadow: both\n")
    with pytest.raises(ValueError, match=r"judging\.shadow = 'both'.*offline claim judge only"):
        build_release_dag(config_path, dag_id="release_test")
