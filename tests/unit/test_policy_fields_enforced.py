"""Every policy field is read by the code that enforces it (DESIGN: "a field that nothing reads is a bug").

The test walks the ``ReleasePolicy`` model tree and looks for an attribute read of each field
(``.field_name``) in the package outside ``policy/``. A field nothing reads validates but enforces
nothing: a user who changes it changes nothing, which in a release policy is a disabled safety check.
Pure descriptions (titles, rationales, the spec's prose) are listed below with the reason.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

from pydantic import BaseModel

from llm_release.policy import ReleasePolicy

PACKAGE = Path(__file__).resolve().parents[2] / "provider" / "llm_release"

DESCRIPTION_ONLY = {
    # Prose shown to people (plan output, approval bodies, docs), not rules.
    "profile": "the profile's name",
    "description": "prose",
    "title": "prose",
    "purpose": "prose",
    "entry_criteria": "the spec's prose for stage entry (each rule is enforced by its own field)",
    "exit_criteria": "the spec's prose for stage exit (each rule is enforced by its own field)",
    "approver_description": "prose",
    "rationale": "prose",
    "criteria": "prose describing a risk level",
    "decision": "prose describing a risk level's decision",
    "notes": "prose",
    "population": "prose describing a rollout phase's audience",
    "infrastructure": "prose describing a rollout phase's serving set-up",
    "action": "prose of a routing band / recovery step (RoutingBand.action, RecoveryStep.action); "
    "Trigger.action is read by decisions.breaches",
    "cadence": "prose of a monitoring cadence (cadence_minutes is the number)",
    "alert_when": "prose of a behavioural signal",
    "method": "prose: how a drift metric is computed (only jensen_shannon is valid)",
    "log_base": "only base 2 is valid (fixed by the model)",
    "embedding": "prose: which embedding (only the shipped MiniLM is supported)",
    "tooling": "prose: the bias tooling",
    "canary_skippable": "only False is valid (fixed by the model: canary stages cannot be skipped)",
    "retain_rejected": "only True is valid: the registry never deletes a rejected version",
    "reviewer_action": "prose shown to the reviewer",
    "workflow": "the spec's recovery timeline, shown in incident tickets",
    "post_incident_requirements": "the checklist shown in the post-incident review ticket",
    "total_window_hours": "the spec's ~48 h summary; the plan is the sum of the phase dwells",
    "automated": "documents the routing table: every gate's automated checks always run; human_required routes",
    "approver": "documents a stage's approver; stage 4's human gate is the DAG's shape (approval tasks)",
    "monitoring_line": "read by ReleasePolicy itself, which fills the trigger's threshold from monitoring",
    # Enforced by later issues (the measurement does not exist yet); listed so that they are not forgotten.
    "coherence_min": "issue 7: the coherence suite (BERTScore) does not exist yet",
    "extra_adversarial_prompts": "issue 7: the expanded (+50) adversarial data set does not exist yet",
    "bias_reaudit": "issue 7: the bias re-audit against n-1 does not exist yet",
    "proxies": "issue 7: the demographic-proxy lexicon is fixed in the bias suite for now",
    "categories": "issue 7: per-category adversarial results",
    "cadence_minutes": "issue 8: monitoring cadences from Prometheus queries",
    "sample_fraction": "issue 8: the gateway's live sampling rate",
    "behavioral_signals": "issue 8: behavioural signals are not scraped yet",
    "alert_relative_increase": "issue 8: behavioural signals",
    "window_hours": "issue 8: behavioural signals",
    "alert_channels": "issue 8: alert routing to Slack / PagerDuty",
    "on_call_response_minutes": "issue 8: on-call paging",
    "cached_top_intents": "issue 8: the fallback chain",
    "degradation_confidence_threshold": "issue 8: the fallback chain",
    "degradation_message": "issue 8: the fallback chain",
    "cached_fallback_latency_ms": "issue 8: the fallback chain",
    "audit_months": "issue 9: object-locked audit retention",
    "channels": "issue 9: rejection notices by channel",
    "notify_within_minutes": "issue 9: rejection notice deadline",
    "block_next_release_until_review": "issue 9: the post-rejection review workflow",
    "sla_hours": "issue 9: the reviewer SLA",
    "time_budget_min_hours": "validated against the shadow dwell (policy); issue 9 enforces stage budgets",
    "full_pipeline_reset": "issue 9: critical-risk pipeline reset",
    "window_days": "issue 7: the drift reference window",
    "checked_at_stage": "only 'validation' is valid (fixed by the model)",
    "insufficient_data_when_null_exceeds_alert": "issue 7: drift's permutation null",
    "notify_roles_on_block": "issue 7: drift block notifications",
}


def _models(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is None and not isinstance(annotation, types.UnionType):
        return []
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def _fields(model: type[BaseModel], prefix: str, seen: set[type]) -> list[tuple[str, str]]:
    if model in seen:
        return []
    seen.add(model)
    out: list[tuple[str, str]] = []
    for name, info in model.model_fields.items():
        out.append((f"{prefix}{name}", name))
        for sub in _models(info.annotation):
            out += _fields(sub, f"{prefix}{name}.", seen)
    return out


def _source_outside_policy() -> str:
    return "\n".join(
        p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py") if "policy" not in p.relative_to(PACKAGE).parts
    )


def test_every_policy_field_is_read_outside_the_policy_package():
    source = _source_outside_policy()
    unread = sorted(
        path
        for path, name in _fields(ReleasePolicy, "", set())
        if name not in DESCRIPTION_ONLY and not re.search(rf"\.{re.escape(name)}\b", source)
    )
    assert not unread, f"policy fields nothing outside policy/ reads (enforce them or explain them): {unread}"


def test_allow_list_names_real_fields():
    names = {name for _, name in _fields(ReleasePolicy, "", set())}
    stale = sorted(set(DESCRIPTION_ONLY) - names)
    assert not stale, f"allow-list entries that are no longer policy fields: {stale}"
