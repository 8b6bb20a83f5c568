"""``ReleasePolicy``: the whole spec as one validated document, plus the checks that span sections."""

from __future__ import annotations

from pydantic import Field, model_validator

from llm_release.policy._base import STAGE_IDS, GateThreshold, Identifier, MetricThreshold, StrictModel
from llm_release.policy.decision_engine import DecisionEnginePolicy
from llm_release.policy.governance import ApprovalsPolicy, RecoveryPolicy, RetentionPolicy, VersioningPolicy
from llm_release.policy.monitoring import MonitoringPolicy
from llm_release.policy.risk import RiskPolicy
from llm_release.policy.rollout import RolloutPolicy
from llm_release.policy.stages import StagePolicy
from llm_release.policy.triggers import Trigger
from llm_release.policy.validation import AdversarialPolicy, ApprovalRoute, BiasPolicy, DriftPolicy

SHADOW_SAMPLES_METRIC = "shadow_samples"
"""The staging-gate metric whose threshold is the minimum number of evaluated shadow samples."""

CROSS_FIELD_MARK = "@"
"""Prefix of a cross-field problem line ``@dotted.path: reason`` (the loader turns it into a field path)."""


class ReleasePolicy(StrictModel):
    """Everything a release must satisfy. Load with ``llm_release.policy.load_policy``."""

    profile: str = Field(min_length=1)
    description: str = ""
    stages: list[StagePolicy]
    gates: dict[str, list[GateThreshold]]
    """Measurable exit criteria keyed by stage id; every stage has at least one check."""
    offline_metrics: list[MetricThreshold] = Field(min_length=1)
    """Spec section 3 offline-metric table (reported with the validation results)."""
    drift: DriftPolicy
    bias: BiasPolicy
    adversarial: AdversarialPolicy
    performance: list[MetricThreshold] = Field(min_length=1)
    """Spec section 3 performance gates (load test and serving context)."""
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

    @model_validator(mode="after")
    def _cross_field(self) -> ReleasePolicy:
        problems: list[tuple[str, str]] = []
        problems += self._check_stages_and_gates()
        problems += self._check_triggers()
        problems += self._check_roles_and_phases()
        if problems:
            raise ValueError("\n".join(f"{CROSS_FIELD_MARK}{path}: {reason}" for path, reason in problems))
        return self

    def _check_stages_and_gates(self) -> list[tuple[str, str]]:
        problems: list[tuple[str, str]] = []
        ids = [s.id for s in self.stages]
        if ids != list(STAGE_IDS):
            problems.append(("stages", f"must list the stages {list(STAGE_IDS)} in order, got {ids}"))
        for index, stage in enumerate(self.stages):
            if stage.number != index + 1:
                problems.append((f"stages.{index}.number", f"expected {index + 1}, got {stage.number}"))
        missing = [s for s in STAGE_IDS if s not in self.gates]
        unknown = [s for s in self.gates if s not in STAGE_IDS]
        if missing:
            problems.append(("gates", f"missing gates for stages {missing}"))
        if unknown:
            problems.append(("gates", f"unknown stage ids {unknown}; valid: {list(STAGE_IDS)}"))
        for stage_id, checks in self.gates.items():
            if not checks:
                problems.append(
                    (f"gates.{stage_id}", "a gate needs at least one check (an empty gate would pass)")
                )
            metrics = [c.metric for c in checks]
            duplicated = sorted({m for m in metrics if metrics.count(m) > 1})
            if duplicated:
                problems.append((f"gates.{stage_id}", f"metrics checked twice: {duplicated}"))
        staging = self.gates.get("staging", [])
        floors = [c for c in staging if c.metric == SHADOW_SAMPLES_METRIC]
        if not floors or floors[0].op not in (">=", ">") or floors[0].value < 1:
            problems.append(
                (
                    "gates.staging",
                    f"needs a '{SHADOW_SAMPLES_METRIC} >= N' check with N >= 1 (minimum shadow sample)",
                )
            )
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
                for phase in trigger.applies_to_phases or []:
                    if phase not in live:
                        problems.append(
                            (
                                f"{path}.applies_to_phases",
                                f"{phase!r} is not a live rollout phase (valid: {sorted(live)})",
                            )
                        )
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

    def gate(self, stage_id: str) -> list[GateThreshold]:
        try:
            return self.gates[stage_id]
        except KeyError:
            raise ValueError(f"unknown stage {stage_id!r}; valid: {list(self.gates)}") from None

    @property
    def shadow_min_samples(self) -> int:
        check = next(c for c in self.gates["staging"] if c.metric == SHADOW_SAMPLES_METRIC)
        return int(check.value) + (1 if check.op == ">" else 0)

    def possible_approver_roles(self) -> list[Identifier]:
        """Every role some release could require: always-required, band- and risk-added ones."""
        ordered: list[str] = list(self.approvals.always_required)
        extra = [r for band in self.decision_engine.routing_bands for r in band.adds_approvers]
        extra += [r for level in self.risk.levels for r in level.mitigations.additional_approvers]
        for role in extra:
            if role not in ordered:
                ordered.append(role)
        return ordered

    def all_triggers(self) -> list[Trigger]:
        return [*self.pause_triggers, *self.rollback_triggers, *self.manual_rollback_triggers]
