"""Release policy: pydantic models of the spec, shipped profiles, loading with precise errors.

Imported at DAG-parse time, so it depends on pydantic and PyYAML only.
"""

from llm_release.policy._base import (
    RISK_LEVEL_NAMES,
    STAGE_IDS,
    ComparisonOp,
    GateThreshold,
    StrictModel,
)
from llm_release.policy.compliance import ComplianceCategory, ComplianceClassifier, CompliancePolicy
from llm_release.policy.config import Connections, ReleaseConfig, load_release_config
from llm_release.policy.decision_engine import (
    ComponentWeights,
    DecisionEnginePolicy,
    LatencyBand,
    RejectionPolicy,
    RoutingBand,
)
from llm_release.policy.errors import PolicyError
from llm_release.policy.governance import (
    ApprovalsPolicy,
    ApproverRole,
    RecoveryPolicy,
    RetentionPolicy,
    VersioningPolicy,
)
from llm_release.policy.judging import JUDGE_USES, JudgeMode, JudgeUse, JudgingPolicy, LLMJudgePolicy
from llm_release.policy.loader import (
    DEFAULT_PROFILE,
    available_profiles,
    load_policy,
    policy_json_schema,
)
from llm_release.policy.monitoring import MonitoredMetric, MonitoringPolicy
from llm_release.policy.release_policy import ReleasePolicy
from llm_release.policy.risk import ReleaseType, RiskLevel, RiskMitigations, RiskPolicy
from llm_release.policy.rollout import (
    CanaryAcceleration,
    CleanStreakAcceleration,
    LiveEvidencePolicy,
    RolloutPhase,
    RolloutPolicy,
)
from llm_release.policy.stages import StagePolicy
from llm_release.policy.triggers import RatioCounts, Trigger
from llm_release.policy.validation import (
    AdversarialPolicy,
    ApprovalRoute,
    BiasPolicy,
    DriftPolicy,
    HighStakesCategory,
    OfflineMetricsPolicy,
    PerformancePolicy,
    ShadowPolicy,
)

__all__ = [
    "DEFAULT_PROFILE",
    "JUDGE_USES",
    "RISK_LEVEL_NAMES",
    "STAGE_IDS",
    "AdversarialPolicy",
    "ApprovalRoute",
    "ApprovalsPolicy",
    "ApproverRole",
    "BiasPolicy",
    "CanaryAcceleration",
    "CleanStreakAcceleration",
    "ComparisonOp",
    "ComplianceCategory",
    "ComplianceClassifier",
    "CompliancePolicy",
    "ComponentWeights",
    "Connections",
    "DecisionEnginePolicy",
    "DriftPolicy",
    "GateThreshold",
    "HighStakesCategory",
    "JudgeMode",
    "JudgeUse",
    "JudgingPolicy",
    "LLMJudgePolicy",
    "LatencyBand",
    "LiveEvidencePolicy",
    "MonitoredMetric",
    "MonitoringPolicy",
    "OfflineMetricsPolicy",
    "PerformancePolicy",
    "PolicyError",
    "RatioCounts",
    "RecoveryPolicy",
    "RejectionPolicy",
    "ReleaseConfig",
    "ReleasePolicy",
    "ReleaseType",
    "RetentionPolicy",
    "RiskLevel",
    "RiskMitigations",
    "RiskPolicy",
    "RolloutPhase",
    "RolloutPolicy",
    "RoutingBand",
    "ShadowPolicy",
    "StagePolicy",
    "StrictModel",
    "Trigger",
    "VersioningPolicy",
    "available_profiles",
    "load_policy",
    "load_release_config",
    "policy_json_schema",
]
