"""``ReleasePolicy``: the whole spec as one validated document, plus the checks that span sections."""

from __future__ import annotations

from pydantic import Field, model_validator

from llm_release.policy._base import STAGE_IDS, Identifier, StrictModel
from llm_release.policy.compliance import CompliancePolicy
from llm_release.policy.decision_engine import DecisionEnginePolicy
from llm_release.policy.governance import ApprovalsPolicy, RecoveryPolicy, RetentionPolicy, VersioningPolicy
from llm_release.policy.judging import JudgingPolicy
from llm_release.policy.monitoring import MonitoringPolicy
from llm_release.policy.risk import RiskPolicy
from llm_release.policy.rollout import RolloutPolicy
from llm_release.policy.stages import StagePolicy
from llm_release.policy.triggers import Trigger, scale_problem
from llm_release.policy.validation import (
    AdversarialPolicy,
    ApprovalRoute,
    BiasPolicy,
    DriftPolicy,
    OfflineMetricsPolicy,
    PerformancePolicy,
    ShadowPolicy,
)

CROSS_FIELD_MARK = "@"
"""Prefix of a cross-field problem line ``@dotted.path: reason`` (the loader turns it into a field path)."""


class ReleasePolicy(StrictModel):
    """Everything a release must satisfy. Load with ``llm_release.policy.load_policy``."""

    profile: str = Field(min_length=1)
    description: str = ""
    stages: list[StagePolicy]
    offline_metrics: OfflineMetricsPolicy
    """Stage 1-2 exit criteria and the section 3 offline metric table."""
    shadow: ShadowPolicy
    """Stage 3 exit criteria of the shadow alone (the rest come from offline_metrics and performance)."""
    drift: DriftPolicy
    bias: BiasPolicy
    adversarial: AdversarialPolicy
    compliance: CompliancePolicy
    """Section 3 policy compliance: violation categories, refund windows, credit limit, checker settings."""
    performance: PerformancePolicy
    """Section 3 performance gates and the load test."""
    approval_routing: list[ApprovalRoute] = Field(min_length=1)
    decision_engine: DecisionEnginePolicy
    risk: RiskPolicy
    rollout: RolloutPolicy
    pause_triggers: list[Trigger]
    rollback_triggers: list[Trigger] = Field(min_length=1)
    manual_rollback_triggers: list[Trigger] = []
    monitoring: MonitoringPolicy
    approvals: ApprovalsPolicy
    versioning: VersioningPolicy = VersioningPolicy()
    retention: RetentionPolicy
    recovery: RecoveryPolicy
    judging: JudgingPolicy = JudgingPolicy()
    """Which judge decides answer quality per use (offline / LLM / both), and the LLM judge's settings."""

    @model_validator(mode="after")
    def _cross_field(self) -> ReleasePolicy:
        problems: list[tuple[str, str]] = []
        problems += self._check_stages()
        problems += self._check_triggers()
        problems += self._check_monitoring_scales()
        problems += self._check_roles_and_phases()
        if problems:
            raise ValueError("\n".join(f"{CROSS_FIELD_MARK}{path}: {reason}" for path, reason in problems))
        return self

    def _check_stages(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        ids = [s.id for s in self.stages]
        if ids != list(STAGE_IDS):
            problems.append(("stages", f"must list the stages {list(STAGE_IDS)} in order, got {ids}"))
        for index, stage in enumerate(self.stages):
            if stage.number != index + 1:
                problems.append((f"stages.{index}.number", f"expected {index + 1}, got {stage.number}"))
        if ids == list(STAGE_IDS):
            staging_stage = self.stages[2]
            shadow = self.rollout.shadow
            low = staging_stage.time_budget_min_hours
            if low is not None and shadow.dwell_hours < low:
                problems.append(
                    (
                        "rollout.phases.0.dwell_hours",
                        f"shadow dwell {shadow.dwell_hours:g} h is below the staging minimum {low:g} h",
                    )
                )
            if shadow.dwell_hours > staging_stage.time_budget_max_hours:
                problems.append(
                    (
                        "rollout.phases.0.dwell_hours",
                        f"shadow dwell {shadow.dwell_hours:g} h exceeds the staging time budget "
                        f"{staging_stage.time_budget_max_hours:g} h",
                    )
                )
        return problems

    def _check_triggers(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        live = {p.name for p in self.rollout.live_phases}
        allowed = {
            "pause_triggers": {"hold", "pause"},
            "rollback_triggers": {"rollback"},
            "manual_rollback_triggers": {"page"},
        }
        seen: set[str] = set()
        for group, actions in allowed.items():
            for index, trigger in enumerate(getattr(self, group)):
                path = f"{group}.{index}"
                if trigger.name in seen:
                    problems.append((f"{path}.name", f"duplicate trigger name {trigger.name!r}"))
                seen.add(trigger.name)
                if trigger.action not in actions:
                    problems.append((f"{path}.action", f"{group} may only use {sorted(actions)}"))
                problems += self._resolve_line(group, index, trigger)
                for phase in trigger.applies_to_phases or []:
                    if phase not in live:
                        problems.append(
                            (
                                f"{path}.applies_to_phases",
                                f"{phase!r} is not a live rollout phase (valid: {sorted(live)})",
                            )
                        )
        return problems

    def _resolve_line(self, group: str, index: int, trigger: Trigger) -> list[tuple[str, str]]:
        """Fill ``threshold`` from the monitoring line the trigger names (one home per number)."""
        if trigger.monitoring_line is None:
            return []
        path = f"{group}.{index}.monitoring_line"
        entry = self.monitoring.metric(trigger.metric)
        if entry is None:
            return [(path, f"monitoring has no entry for metric {trigger.metric!r}")]
        if entry.relative_to_baseline != trigger.relative_to_baseline:
            return [(path, f"monitoring.{trigger.metric} and the trigger disagree on relative_to_baseline")]
        bad_way = ">" if entry.direction == "below" else "<"
        if trigger.op.startswith(bad_way):
            return [(path, f"op {trigger.op!r} contradicts monitoring.{trigger.metric} direction {entry.direction!r}")]
        line = getattr(entry, trigger.monitoring_line)
        if trigger.threshold is not None and trigger.threshold != line:
            return [
                (
                    f"{group}.{index}.threshold",
                    f"{trigger.threshold:g} restates monitoring.{trigger.metric}.{trigger.monitoring_line} "
                    f"({line:g}) with another number; give one of them",
                )
            ]
        object.__setattr__(trigger, "threshold", line)
        return []

    def _check_monitoring_scales(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        for group in ("llm_metrics", "system_metrics"):
            for index, entry in enumerate(getattr(self.monitoring, group)):
                if entry.metric == "throughput_rps" or entry.relative_to_baseline:
                    continue  # drops and excesses relative to a baseline are fractions, checked by the model
                for level in ("alert", "critical"):
                    problem = scale_problem(entry.metric, getattr(entry, level))
                    if problem:
                        problems.append((f"monitoring.{group}.{index}.{level}", problem))
        return problems

    def _check_roles_and_phases(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        roles = set(self.approvals.role_ids())
        live = {p.name for p in self.rollout.live_phases}
        for index, band in enumerate(self.decision_engine.routing_bands):
            for role in band.adds_approvers:
                if role not in roles:
                    problems.append(
                        (
                            f"decision_engine.routing_bands.{index}.adds_approvers",
                            f"unknown role {role!r} (valid: {sorted(roles)})",
                        )
                    )
        for index, level in enumerate(self.risk.levels):
            base = f"risk.levels.{index}.mitigations"
            mit = level.mitigations
            for role in mit.additional_approvers:
                if role not in roles:
                    problems.append(
                        (f"{base}.additional_approvers", f"unknown role {role!r} (valid: {sorted(roles)})")
                    )
            for phase in [*mit.human_confirmation_before_phases, *mit.phase_min_dwell_hours]:
                if phase not in live:
                    problems.append((base, f"{phase!r} is not a live rollout phase (valid: {sorted(live)})"))
        for index, route in enumerate(self.approval_routing):
            if route.gate in {r.gate for r in self.approval_routing[:index]}:
                problems.append((f"approval_routing.{index}.gate", f"duplicate gate {route.gate!r}"))
        return problems

    # --- convenience accessors used by the decision layer and the DAG -------------------------

    def stage(self, stage_id: str) -> StagePolicy:
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise ValueError(f"unknown stage {stage_id!r}; valid: {list(STAGE_IDS)}")

    @property
    def shadow_min_samples(self) -> int:
        return self.shadow.min_samples

    def possible_approver_roles(self) -> list[Identifier]:
        """Every role some release could require: always-required, band- and risk-added ones."""
        ordered: list[str] = list(self.approvals.always_required)
        extra = [r for band in self.decision_engine.routing_bands for r in band.adds_approvers]
        extra += [r for level in self.risk.levels for r in level.mitigations.additional_approvers]
        for role in extra:
            if role not in ordered:
                ordered.append(role)
        return ordered

    def notified_roles(self) -> list[str]:
        """Every role some notice of this policy addresses (stages, bands, rejection, escalation)."""
        roles = [r for stage in self.stages for r in stage.notify_roles]
        roles += [r for band in self.decision_engine.routing_bands for r in band.notify_roles]
        roles += self.decision_engine.rejection.notify_roles + self.monitoring.escalation.critical_notify_roles
        roles += self.drift.notify_roles_on_block
        return list(dict.fromkeys(roles))

    def all_triggers(self) -> list[Trigger]:
        return [*self.pause_triggers, *self.rollback_triggers, *self.manual_rollback_triggers]
