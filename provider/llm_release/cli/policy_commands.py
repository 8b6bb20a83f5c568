"""``llm-release validate | plan | explain-score | schema``: policy tooling for release owners.

``validate`` is meant for CI and for editing: it prints every problem as ``FILE: field.path: reason``
on stderr, one per line, and exits 1; the OK summary and plans go to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from llm_release.decisions import DecisionInputs, assess_risk, decision_score, plan_rollout
from llm_release.decisions.gates import GATED_STAGES, stage_checks
from llm_release.inputs import InputError, read_yaml
from llm_release.policy import (
    DEFAULT_PROFILE,
    PolicyError,
    ReleaseConfig,
    ReleasePolicy,
    load_policy,
    load_release_config,
    policy_json_schema,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    validate = subparsers.add_parser("validate", help="Validate a release config or a policy file.")
    validate.add_argument("file", type=Path)
    validate.set_defaults(func=cmd_validate)

    plan = subparsers.add_parser("plan", help="Show the risk assessment and rollout plan for a release type.")
    plan.add_argument("file", help="release config, policy file or profile name")
    plan.add_argument("--release-type", required=True)
    plan.add_argument(
        "--risk-score", type=int, default=None, help="override the baseline risk score (0..100)"
    )
    plan.add_argument("--clean-streak", type=int, default=0, help="consecutive clean releases so far")
    plan.add_argument("--json", action="store_true")
    plan.set_defaults(func=cmd_plan)

    explain = subparsers.add_parser("explain-score", help="Break down a Release Decision Engine score.")
    explain.add_argument("--scs", type=float, required=True)
    explain.add_argument("--policy-compliance", type=float, required=True)
    explain.add_argument("--task-completion", type=float, required=True)
    explain.add_argument("--p99-ms", type=float, required=True)
    explain.add_argument("--zero-tolerance-failures", type=int, default=0)
    explain.add_argument(
        "--policy", default=DEFAULT_PROFILE, help="policy file, release config or profile name"
    )
    explain.add_argument("--json", action="store_true")
    explain.set_defaults(func=cmd_explain_score)

    schema = subparsers.add_parser("schema", help="Print the JSON schema of release policies.")
    schema.add_argument("--kind", choices=["policy", "config"], default="policy")
    schema.add_argument("--output", type=Path, default=None)
    schema.set_defaults(func=cmd_schema)


def _is_release_config(path: Path) -> bool:
    """A release config names a model; a policy file does not. Files the reader refuses (too big, not
    UTF-8, aliases, bad YAML) count as policies: the policy loader reads them through the same reader
    and reports the problem as ``FILE: line L, column C: reason``."""
    try:
        data = read_yaml(path, kind="config")
    except InputError:
        return False
    return isinstance(data, dict) and "model_name" in data


def _load(source: str | Path) -> tuple[ReleasePolicy, ReleaseConfig | None]:
    path = Path(source)
    if path.is_file() and _is_release_config(path):
        config = load_release_config(path)
        return config.release_policy, config
    return load_policy(source), None


def _print_errors(exc: PolicyError) -> int:
    """Every problem on its own stderr line (stdout stays clean for ``--json``); exit code 1."""
    for line in exc.problems:
        print(line, file=sys.stderr)
    return 1


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        policy, config = _load(args.file)
    except PolicyError as exc:
        return _print_errors(exc)
    if config is not None:
        print(
            f"{args.file}: OK release config for model {config.model_name!r} ({config.model_type}), "
            f"profile {config.profile!r}, {len(config.approvers)} approver roles, "
            f"time_scale {config.time_scale:g}"
        )
    else:
        checks = sum(len(stage_checks(policy, s)) for s in GATED_STAGES)
        print(
            f"{args.file}: OK policy {policy.profile!r}: {len(policy.stages)} stages, {checks} gate checks, "
            f"{len(policy.rollout.phases)} rollout phases, {len(policy.all_triggers())} triggers"
        )
    return 0


def _plan_document(
    policy: ReleasePolicy, config: ReleaseConfig | None, args: argparse.Namespace
) -> dict[str, Any]:
    risk = assess_risk(policy.risk, policy.approvals, args.release_type, args.risk_score)
    plan = plan_rollout(policy, risk, args.clean_streak)
    approvers = [
        {
            "role": role,
            "title": policy.approvals.title(role),
            **({"users": config.users_for(role)} if config is not None else {}),
        }
        for role in risk.approvers_required
    ]
    return {
        "profile": policy.profile,
        "release_type": risk.release_type,
        "risk": {"score": risk.score, "level": risk.level, "reasons": risk.reasons},
        "mitigations": risk.mitigations,
        "blocked_pending_executive": risk.blocked_pending_executive,
        "approvers_required": approvers,
        "safety_reviewer_note": "a decision score in the enhanced-review band also adds its approvers",
        "shadow": {
            "hours": plan.shadow_hours,
            "max_hours": plan.shadow_max_hours,
            "min_samples": plan.shadow_min_samples,
        },
        "phases": [p.model_dump() for p in plan.phases],
        "live_hours": plan.live_hours,
        "notes": plan.notes,
        "gates": {
            stage: [c.model_dump(include={"metric", "op", "value", "source"}) for c in stage_checks(policy, stage)]
            for stage in GATED_STAGES
        },
    }


def cmd_plan(args: argparse.Namespace) -> int:
    try:
        policy, config = _load(args.file)
        doc = _plan_document(policy, config, args)
    except PolicyError as exc:
        return _print_errors(exc)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    risk = doc["risk"]
    print(f"release type {doc['release_type']}: risk {risk['score']} ({risk['level']})")
    if doc["blocked_pending_executive"]:
        print("  BLOCKED pending executive approval")
    print("mitigations:" if doc["mitigations"] else "mitigations: none (standard pipeline)")
    for line in doc["mitigations"]:
        print(f"  - {line}")
    print("stage-4 approvers:")
    for approver in doc["approvers_required"]:
        users = f": {', '.join(approver['users'])}" if "users" in approver else ""
        print(f"  - {approver['title']} ({approver['role']}){users}")
    shadow = doc["shadow"]
    print(
        f"shadow: {shadow['hours']:g} h (up to {shadow['max_hours']:g} h), >= {shadow['min_samples']} samples"
    )
    print("rollout:")
    for phase in doc["phases"]:
        confirm = "  [human confirmation first]" if phase["requires_human_confirmation"] else ""
        print(f"  {phase['name']:<16} {phase['traffic_percent']:>5g}%  {phase['dwell_hours']:>6g} h{confirm}")
        for adjustment in phase["adjustments"]:
            print(f"      {adjustment}")
    print(f"live rollout total: {doc['live_hours']:g} h")
    for note in doc["notes"]:
        print(f"note: {note}")
    print("gates (each number from the policy field named):")
    for stage, checks in doc["gates"].items():
        print(f"  {stage}:")
        for check in checks:
            print(f"    {check['metric']} {check['op']} {check['value']:g}  <- {check['source']}")
    return 0


def cmd_explain_score(args: argparse.Namespace) -> int:
    try:
        policy, _ = _load(args.policy)
    except PolicyError as exc:
        return _print_errors(exc)
    inputs = DecisionInputs(
        policy_compliance_rate=args.policy_compliance,
        scs=args.scs,
        task_completion_rate=args.task_completion,
        p99_ms=args.p99_ms,
        zero_tolerance_failures=args.zero_tolerance_failures,
    )
    score = decision_score(policy.decision_engine, inputs)
    if args.json:
        print(json.dumps(score.model_dump(), indent=2))
    else:
        for line in score.explanation:
            print(line)
        if score.safety_vetoed:
            print("SAFETY VETO")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    schema = policy_json_schema() if args.kind == "policy" else ReleaseConfig.model_json_schema()
    text = json.dumps(schema, indent=2, sort_keys=True)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0
