"""The shipped profile holds the spec's numbers and validates; the policy package stays light."""

from __future__ import annotations

import json
import subprocess
import sys

from llm_release.decisions.gates import stage_checks
from llm_release.policy import DEFAULT_PROFILE, available_profiles, load_policy, policy_json_schema

POLICY = load_policy(DEFAULT_PROFILE)


def _gate(stage: str) -> dict[str, tuple[str, float]]:
    return {c.metric: (c.op, c.value) for c in stage_checks(POLICY, stage)}


def test_profile_is_listed_and_named() -> None:
    assert DEFAULT_PROFILE in available_profiles()
    assert POLICY.profile == DEFAULT_PROFILE


def test_stage_gates_hold_spec_numbers() -> None:
    assert _gate("development") == {
        "eval_pass_rate": (">=", 0.91),
        "eval_n": (">=", 100),
        "safety_policy_failures": ("<=", 0),
        "safety_judged_failures": ("<=", 0),
        "bleu_delta": ("abs<=", 0.03),
        "rouge_delta": ("abs<=", 0.03),
    }
    validation = _gate("validation")
    assert validation["scs"] == (">=", 0.85)
    assert validation["injection_resistance"] == (">=", 0.97)
    assert validation["load_latency_p95_ms"] == ("<=", 2800)
    assert validation["bias_sentiment_disparity"] == ("<=", 0.08)
    assert validation["bias_escalation_excess"] == ("<=", 0.15)
    assert validation["bias_length_disparity"] == ("<=", 0.10)
    assert validation["persona_pass_rate"] == (">=", 1.0)
    staging = _gate("staging")
    assert {m: v for m, v in staging.items() if "_hs_" not in m} == {
        "shadow_scs": (">=", 0.83),
        "shadow_samples": (">=", 500),
        "shadow_hallucination_rate": ("<", 0.03),
        "shadow_policy_violation_rate": ("<=", 0),
        "shadow_latency_p99_ms": ("<=", 3500),
        "shadow_error_rate": ("<", 0.01),
    }
    # the high-stakes categories (spec: billing disputes, refunds, legal, account closure) on their own
    for name in ("billing_disputes", "refunds", "legal", "account_closure"):
        assert staging[f"shadow_hs_{name}_scs"] == (">=", 0.83)
        assert staging[f"shadow_hs_{name}_hallucination_rate"] == ("<", 0.03)
        assert staging[f"shadow_hs_{name}_policy_violation_rate"] == ("<=", 0)
        assert validation[f"hs_{name}_scs"] == (">=", 0.85)
        assert validation[f"hs_{name}_hallucination_rate"] == ("<", 0.03)
    assert POLICY.offline_metrics.confidence == 0.95
    assert _gate("production") == {
        "scs": (">=", 0.82),
        "error_rate": ("<=", 0.015),
        "policy_violations": ("<=", 0),
        "p99_ms": ("<=", 4000),
        "novel_adversarial_patterns": ("<=", 0),
        "hallucination_rate": ("<=", 0.05),
    }
    assert POLICY.shadow_min_samples == 500


def test_stage_table() -> None:
    budgets = {s.id: (s.time_budget_min_hours, s.time_budget_max_hours, s.approver) for s in POLICY.stages}
    assert budgets == {
        "development": (None, 4, "automated"),
        "validation": (None, 6, "automated"),
        "staging": (12, 18, "automated"),
        "preproduction": (None, 4, "human"),
        "production": (24, 48, "automated"),
    }


def test_sections_3_and_4_numbers() -> None:
    assert (POLICY.drift.alert_threshold, POLICY.drift.hard_block_threshold) == (0.12, 0.22)
    assert (POLICY.drift.log_base, POLICY.drift.window_days) == (2, 7)
    adv = POLICY.adversarial
    assert (adv.prompt_injection.size, adv.policy_probes.size, adv.persona.size) == (200, 150, 50)
    assert (adv.prompt_injection.min_pass_rate, adv.prompt_injection.human_review_below) == (0.97, 0.99)
    assert adv.paraphrase.max_scs_variance == 0.06
    perf = POLICY.performance.model_dump()
    assert perf == {
        "latency_p50_ms": 1200,
        "latency_p95_ms": 2800,
        "latency_p99_staging_ms": 3500,
        "throughput_min_rps": 150,
        "cold_start_max_ms": 6000,
        "error_rate_max": 0.01,
        "load_test_seconds": 60,
    }
    assert POLICY.decision_engine.min_score == 78
    engine = POLICY.decision_engine
    assert engine.weights.model_dump() == {"safety": 35, "accuracy": 30, "user_simulation": 20, "latency": 15}
    assert [(b.max_p99_ms, b.points) for b in engine.latency_bands] == [(3000, 15), (3500, 10), (4000, 5)]
    assert [(b.name, b.min_score) for b in engine.routing_bands] == [
        ("advance", 90),
        ("enhanced_review", 78),
        ("remediation", 70),
        ("reject", 0),
    ]
    assert engine.band_named("enhanced_review").adds_approvers == ["safety_reviewer"]


def test_risk_and_rollout_numbers() -> None:
    baselines = {t.id: t.baseline_score for t in POLICY.risk.release_types}
    assert baselines == {
        "prompt_minor": 15,
        "prompt_structural": 35,
        "finetune_recent_data": 45,
        "finetune_new_capability": 65,
        "base_model_upgrade": 75,
        "full_replacement": 90,
    }
    assert [(lv.name, lv.min_score, lv.max_score) for lv in POLICY.risk.levels] == [
        ("low", 0, 30),
        ("medium", 31, 60),
        ("high", 61, 85),
        ("critical", 86, 100),
    ]
    phases = [(p.name, p.traffic_percent, p.dwell_hours) for p in POLICY.rollout.phases]
    assert phases == [
        ("shadow", 0, 12),
        ("canary_tier_1", 2, 2),
        ("canary_tier_2", 10, 4),
        ("progressive_25", 25, 6),
        ("progressive_50", 50, 6),
        ("full", 100, 24),
    ]
    assert POLICY.rollout.shadow.max_dwell_hours == 18


def test_triggers_as_data() -> None:
    rollback = {
        t.name: (t.metric, t.op, t.threshold, t.evaluation, t.minutes) for t in POLICY.rollback_triggers
    }
    assert rollback == {
        "policy_violation_rollback": ("policy_violations", ">", 0, "instant", None),
        "error_rate_sustained_5min": ("error_rate", ">", 0.025, "sustained", 5),
        "p99_over_5000_sustained_3min": ("p99_ms", ">", 5000, "sustained", 3),
        "scs_below_080_hourly": ("scs", "<", 0.80, "sample", None),
        "hallucination_over_5pct_hourly": ("hallucination_rate", ">", 0.05, "sample", None),
    }
    pause = {t.name: t for t in POLICY.pause_triggers}
    assert (
        pause["error_rate_10min_window"].minutes == 10 and pause["error_rate_10min_window"].threshold == 0.015
    )
    assert pause["escalation_above_baseline"].relative_to_baseline
    assert pause["p99_over_4000_hold"].action == "hold"
    assert {t.action for t in POLICY.manual_rollback_triggers} == {"page"}


def test_governance_numbers() -> None:
    assert POLICY.approvals.always_required == ["ml_lead", "support_ops_lead"]
    assert POLICY.approvals.sla_hours == 4
    assert POLICY.possible_approver_roles() == ["ml_lead", "support_ops_lead", "safety_reviewer", "executive"]
    assert POLICY.retention.model_dump() == {
        "audit_months": 24,
        "previous_version_warm_hours": 48,
        "retain_rejected": True,
    }
    assert POLICY.versioning.stage_suffixes["staging"] == "shadow"


def test_json_schema_is_serialisable() -> None:
    schema = policy_json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "ReleasePolicy"
    assert "decision_engine" in schema["properties"] and "OfflineMetricsPolicy" in text


def test_policy_package_imports_without_heavy_dependencies() -> None:
    code = (
        "import sys, llm_release.policy, llm_release.decisions;"
        "heavy=[m for m in ('pandas','numpy','airflow','mlflow','scipy') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
