"""Build the weekly release DAG of one model from its release config.

The shape is fixed by the design: ``prepare``, five stage task groups, a rejection path for
anything that fails before live traffic, a rollback path for anything that fails during the
rollout, and ``close_release``. The per-run facts (risk level, rollout plan, required approvers)
are derived in ``prepare`` and read by later tasks from XCom; the DAG itself only depends on the
policy (phases, roles), which is why building it imports nothing heavier than pydantic and yaml.

This module owns the DAG's shape, so it alone knows the task ids: every operator that reads another
task's XCom or state gets that task's id as a constructor argument from here (only ``prepare``'s id
is a shared constant, ``operators.base.PREPARE_TASK_ID``). ``close_release`` is the only leaf and
fails unless the release was promoted, so a run's state always tells the release's outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, TaskGroup

from llm_release.operators.approvals import (
    ApprovalCheckOperator,
    ApprovalRoutingOperator,
    ConfirmationRoutingOperator,
    HumanReviewRoutingOperator,
    RoleApprovalOperator,
    RollbackReadinessOperator,
)
from llm_release.operators.base import PREPARE_TASK_ID
from llm_release.operators.failure import CloseReleaseOperator, RejectReleaseOperator, RollbackOperator
from llm_release.operators.gates import DecisionScoreOperator, ReleaseGateOperator
from llm_release.operators.prepare import PrepareReleaseOperator
from llm_release.operators.rollout import PromoteOperator, SetTrafficOperator
from llm_release.operators.shadow import EvaluateShadowOperator, StartShadowOperator
from llm_release.operators.suites import (
    AdversarialSuiteOperator,
    BiasAuditOperator,
    DriftCheckOperator,
    EvaluationSuiteOperator,
    LoadTestOperator,
    ParaphraseSuiteOperator,
)
from llm_release.sensors.dwell import RolloutDwellSensor, ShadowDwellSensor

if TYPE_CHECKING:
    from llm_release.policy import ReleaseConfig

JOIN = "none_failed_min_one_success"
DWELL_RETRIES = 2
RED_TEAM_ROLE = "safety_reviewer"
GATE_REVIEWER_ROLE = "ml_lead"
"""Role whose users decide an inconclusive stage 1-3 gate (and stage 2's routed results)."""
"""Role whose users accept the external red team's findings at stage 4 (High risk and above, spec 9)."""


def _params(config: ReleaseConfig) -> dict[str, Param]:
    release_types = sorted(t.id for t in config.release_policy.risk.release_types)
    return {
        "candidate_version": Param(
            "",
            type="string",
            title="Candidate model version",
            description=f"Version of registered model '{config.model_name}' to release. "
            "Empty: the version holding the registry alias 'candidate'.",
        ),
        "release_type": Param(
            "finetune_recent_data",
            type="string",
            enum=release_types,
            title="Release type",
            description="Sets the baseline risk score (spec section 9) and so the mitigations.",
        ),
        "change_summary": Param(
            "",
            type="string",
            title="Change summary",
            description="What changed in this candidate; shown to approvers and kept in the audit trail.",
        ),
    }


def _refuse_unwired_judges(policy: Any, path: str) -> None:
    """The LLM judge exists as a client and hook (``integrations.llm_judge``, ``LLMJudgeHook``) but the
    suites, the shadow evaluation and the dwell trigger judge with the offline claim judge only. A policy
    asking for ``llm`` or ``both`` would otherwise be validated and silently ignored: refuse it here, before
    any DAG exists, naming the field."""
    from llm_release.policy import JUDGE_USES

    asked = {use: getattr(policy.judging, use) for use in JUDGE_USES if getattr(policy.judging, use) != "offline"}
    if asked:
        fields = ", ".join(f"judging.{use} = {mode!r}" for use, mode in asked.items())
        raise ValueError(
            f"{path}: {fields}: the release pipeline judges with the offline claim judge only; the LLM judge "
            "is not wired into the suites, the shadow evaluation or the dwell trigger yet. Set them to 'offline'."
        )


def build_release_dag(
    config: ReleaseConfig | str | Path,
    *,
    dag_id: str | None = None,
    config_path: str | Path | None = None,
    schedule: Any = None,
    start_date: datetime | None = None,
    tags: list[str] | None = None,
) -> DAG:
    """Return the release DAG for ``config`` (a ReleaseConfig or the path of its YAML file).

    Tasks receive the config *path* and re-load it when they run, so the file must be readable by the
    workers. Invalid configs fail here, at parse time, with the file, field path and reason.
    """
    from llm_release.policy import load_release_config

    if not isinstance(config, (str, Path)) and config_path is None:
        raise ValueError("build_release_dag: pass config_path when config is an object")
    path = str(config_path or config)
    cfg = config if not isinstance(config, (str, Path)) else load_release_config(config)
    policy = cfg.release_policy
    _refuse_unwired_judges(policy, path)
    common = {"config_path": path}

    def approval(
        task_id: str, role: str, purpose: str, *, stage: str, decision_task_id: str | None = None,
        gate_task_id: str | None = None, route_task_id: str | None = None,
    ) -> RoleApprovalOperator:
        return RoleApprovalOperator(
            task_id=task_id,
            role=role,
            role_title=policy.approvals.title(role),
            purpose=purpose,
            approvers=cfg.users_for(role),
            stage=stage,
            decision_task_id=decision_task_id,
            gate_task_id=gate_task_id,
            route_task_id=route_task_id,
            **common,
        )

    def gate_review(group: str, gate: ReleaseGateOperator, stage: str, passed_id: str, purpose: str) -> list[Any]:
        """After ``gate``: route to a person (an inconclusive gate; at stage 2 also the section-3 routing
        table) or straight on. Approve -> ``passed_id`` runs; Reject fails the review -> rejection path."""
        review = approval("human_review", GATE_REVIEWER_ROLE, purpose, stage=stage, gate_task_id=gate.task_id,
                          route_task_id=f"{group}.route_review")
        passed = EmptyOperator(task_id=passed_id, trigger_rule=JOIN)
        route = HumanReviewRoutingOperator(
            task_id="route_review", gate_task_id=gate.task_id, review_task_id=review.task_id,
            continue_task_id=passed.task_id, stage=stage, **common,
        )
        gate >> route >> [review, passed]
        review >> passed
        return [route, review, passed]

    phases = [p for p in policy.rollout.phases if p.traffic_percent > 0]
    # SetTraffic of every phase after this one reads its dwell's measurements (canary acceleration)
    canary_phase = policy.rollout.canary_acceleration.measured_at_phase
    confirm_phases = {
        name for level in policy.risk.levels for name in level.mitigations.human_confirmation_before_phases
    }

    dag = DAG(
        dag_id=dag_id or f"release_{cfg.model_name.replace('-', '_')}",
        description=f"Weekly release of {cfg.model_name} under policy '{policy.profile}'",
        schedule=schedule if schedule is not None else cfg.schedule,
        start_date=start_date or datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        params=_params(cfg),
        tags=tags or ["llm-release", cfg.model_name],
        default_args={"retries": 0, "retry_delay": timedelta(seconds=10)},
        doc_md=__doc__,
    )
    with dag:
        prepare = PrepareReleaseOperator(task_id=PREPARE_TASK_ID, **common)
        pre_live: list[Any] = []  # tasks whose failure means "reject the candidate"

        with TaskGroup("stage_1_development", tooltip="Internal eval suite, safety, BLEU/ROUGE delta") as s1:
            internal_eval = EvaluationSuiteOperator(
                task_id="internal_eval", dataset="eval_set", with_baseline=True, **common
            )
            gate1 = ReleaseGateOperator(
                task_id="gate", stage="development", measurement_tasks=[internal_eval.task_id],
                inconclusive_to_review=True, **common
            )
            internal_eval >> gate1
            review1 = gate_review(s1.group_id, gate1, "development", "developed", "stage 1 gate review")
        pre_live += [internal_eval, gate1, *review1]

        with TaskGroup("stage_2_validation", tooltip="Held-out SCS, adversarial, bias, load test") as s2:
            validation_eval = EvaluationSuiteOperator(
                task_id="validation_eval", dataset="validation_set", with_baseline=False, **common
            )
            adversarial = AdversarialSuiteOperator(task_id="adversarial", **common)
            bias = BiasAuditOperator(task_id="bias_audit", **common)
            # The load test runs alone, after the other suites: requests from them on the same endpoint
            # (and their CPU on a shared worker) would distort the latency and throughput it measures.
            load = LoadTestOperator(task_id="load_test", **common)
            paraphrase = ParaphraseSuiteOperator(task_id="paraphrase", **common)
            drift = DriftCheckOperator(task_id="drift", **common)
            suites = [validation_eval, adversarial, bias, load, paraphrase, drift]
            gate2 = ReleaseGateOperator(
                task_id="gate", stage="validation", measurement_tasks=[t.task_id for t in suites],
                inconclusive_to_review=True, **common
            )
            chain_list([t for t in suites if t is not load], load)
            chain_list(suites, gate2)
            review2 = gate_review(s2.group_id, gate2, "validation", "validated", "stage 2 result review")
        pre_live += [*suites, gate2, *review2]

        with TaskGroup("stage_3_staging", tooltip="Shadow on mirrored traffic, decision score") as s3:
            start_shadow = StartShadowOperator(task_id="start_shadow", **common)
            shadow_dwell = ShadowDwellSensor(
                task_id="shadow_dwell", start_shadow_task_id=start_shadow.task_id, **common
            )
            evaluate_shadow = EvaluateShadowOperator(
                task_id="evaluate_shadow", start_task_id=start_shadow.task_id, **common
            )
            gate3 = ReleaseGateOperator(
                task_id="gate", stage="staging", measurement_tasks=[evaluate_shadow.task_id],
                inconclusive_to_review=True, **common
            )
            decision = DecisionScoreOperator(
                task_id="decision_score",
                validation_task_id=validation_eval.task_id,
                adversarial_task_id=adversarial.task_id,
                shadow_task_id=evaluate_shadow.task_id,
                **common,
            )
            start_shadow >> shadow_dwell >> evaluate_shadow >> gate3
            review3 = gate_review(s3.group_id, gate3, "staging", "staged", "stage 3 gate review")
            review3[-1] >> decision
        pre_live += [start_shadow, shadow_dwell, evaluate_shadow, gate3, *review3, decision]

        with TaskGroup("stage_4_preproduction", tooltip="Human sign-off per role, rollback path") as s4:
            approvals = {
                role: approval(
                    f"approve_{role}", role, "stage 4 release sign-off", stage="preproduction",
                    decision_task_id=decision.task_id,
                )
                for role in policy.approvals.role_ids()
            }
            # High risk and above: the external red team's findings are accepted before sign-off (spec 9)
            red_team = approval(
                "red_team_review", RED_TEAM_ROLE, "external red-team review accepted", stage="preproduction",
                decision_task_id=decision.task_id,
            )
            approval_task_ids = {role: task.task_id for role, task in approvals.items()}
            route = ApprovalRoutingOperator(
                task_id="route_approvals",
                decision_task_id=decision.task_id,
                approval_task_ids=approval_task_ids,
                red_team_task_id=red_team.task_id,
                **common,
            )
            check = ApprovalCheckOperator(
                task_id="check_approvals",
                decision_task_id=decision.task_id,
                approval_task_ids=approval_task_ids,
                red_team_task_id=red_team.task_id,
                red_team_role=RED_TEAM_ROLE,
                trigger_rule=JOIN,
                **common,
            )
            readiness = RollbackReadinessOperator(task_id="confirm_rollback_path", **common)
            route >> [*approvals.values(), red_team]
            [*approvals.values(), red_team] >> check >> readiness
        pre_live += [route, *approvals.values(), red_team, check, readiness]

        with TaskGroup("stage_5_production", tooltip="Progressive rollout with dwell sensors") as s5:
            previous: Any = None
            rollout_tasks: list[Any] = []
            canary_task_id: str | None = None  # set once the acceleration's measuring phase is built
            for phase in phases:
                set_traffic = SetTrafficOperator(
                    task_id=f"set_traffic_{phase.name}",
                    phase=phase.name,
                    canary_task_id=canary_task_id,
                    trigger_rule=JOIN,
                    **common,
                )
                if phase.name in confirm_phases:
                    confirm = approval(
                        f"confirm_{phase.name}", "ml_lead", f"confirmation before {phase.traffic_percent:g}% traffic",
                        stage="production", decision_task_id=decision.task_id,
                    )
                    route_confirm = ConfirmationRoutingOperator(
                        task_id=f"route_confirm_{phase.name}",
                        phase=phase.name,
                        confirm_task_id=confirm.task_id,
                        continue_task_id=set_traffic.task_id,
                        **common,
                    )
                    route_confirm >> [confirm, set_traffic]
                    confirm >> set_traffic
                    head: Any = route_confirm
                    rollout_tasks += [route_confirm, confirm]
                else:
                    head = set_traffic
                # Retries: Airflow 3.3 can fail a task that parks for a person right after resuming from
                # its trigger (executor event of the resumed run processed while the task is queued,
                # apache/airflow#72716); a page does exactly that. A retry re-dwells the phase from the
                # previous phase's state. Every verdict of the dwell raises AirflowFailException, which
                # Airflow never retries, so a rollback or a "Rollback" answer is never retried away.
                dwell = RolloutDwellSensor(
                    task_id=f"dwell_{phase.name}",
                    phase=phase.name,
                    set_traffic_task_id=set_traffic.task_id,
                    previous_dwell_task_id=None if previous is None else previous.task_id,
                    retries=DWELL_RETRIES,
                    retry_delay=timedelta(seconds=2),
                    **common,
                )
                set_traffic >> dwell
                if previous is not None:
                    previous >> head
                previous = dwell
                if phase.name == canary_phase:
                    canary_task_id = dwell.task_id
                rollout_tasks += [set_traffic, dwell]
            promote = PromoteOperator(task_id="promote", **common)
            previous >> promote
            rollout_tasks.append(promote)

        reject = RejectReleaseOperator(
            task_id="reject",
            watched_task_ids=[t.task_id for t in pre_live],
            decision_task_id=decision.task_id,
            trigger_rule="one_failed",
            **common,
        )
        rollback = RollbackOperator(
            task_id="rollback", watched_group_id=s5.group_id, trigger_rule="one_failed", **common
        )
        # The only leaf: all_done makes it run whatever failed (prepare included), and it fails the run
        # unless the release was promoted, so no run can end "success" without a promotion.
        close = CloseReleaseOperator(
            task_id="close_release",
            promote_task_id=promote.task_id,
            reject_task_id=reject.task_id,
            rollback_task_id=rollback.task_id,
            trigger_rule="all_done",
            **common,
        )

        prepare >> s1 >> s2 >> s3 >> s4 >> s5
        pre_live >> reject
        rollout_tasks >> rollback
        [reject, rollback, promote] >> close
    return dag


def chain_list(upstream: list[Any], downstream: Any) -> None:
    """Make every task of ``upstream`` a parent of ``downstream``."""
    for task in upstream:
        task >> downstream
