"""Pure decision functions from (policy, measurements) to verdicts. No I/O, no Airflow import."""

from llm_release.decisions.breaches import BreachVerdict, MetricSample, TriggerHit, classify_breaches
from llm_release.decisions.drift import DriftVerdict, drift_verdict
from llm_release.decisions.gates import CheckResult, GateVerdict, check_gate
from llm_release.decisions.risk import RiskAssessment, assess_risk
from llm_release.decisions.rollout import (
    PlannedPhase,
    RolloutPlan,
    accelerate,
    plan_rollout,
    required_approvers,
)
from llm_release.decisions.routing import ReviewRequirement, required_reviews
from llm_release.decisions.score import DecisionInputs, DecisionScore, decision_score
from llm_release.decisions.versioning import (
    VersionName,
    next_increment,
    parse_version_name,
    rejected_tag,
    version_name,
)

__all__ = [
    "BreachVerdict",
    "CheckResult",
    "DecisionInputs",
    "DecisionScore",
    "DriftVerdict",
    "GateVerdict",
    "MetricSample",
    "PlannedPhase",
    "ReviewRequirement",
    "RiskAssessment",
    "RolloutPlan",
    "TriggerHit",
    "VersionName",
    "accelerate",
    "assess_risk",
    "check_gate",
    "classify_breaches",
    "decision_score",
    "drift_verdict",
    "next_increment",
    "parse_version_name",
    "plan_rollout",
    "rejected_tag",
    "required_approvers",
    "required_reviews",
    "version_name",
]
