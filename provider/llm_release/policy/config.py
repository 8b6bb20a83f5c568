"""``ReleaseConfig``: the per-model file a DAG is built from (e.g. ``dags/configs/support_llm.yaml``).

It names the model, picks a policy profile, overrides parts of it, maps approver roles to Airflow
users and sets the connections. Loading resolves and validates the policy too, so one command
(``llm-release validate``) finds every mistake before a DAG exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator

from llm_release.policy._base import Identifier, StrictModel
from llm_release.policy.errors import PolicyError, suggestion, validation_problems
from llm_release.policy.loader import DEFAULT_PROFILE, resolve_policy_document, validate_policy_mapping
from llm_release.policy.release_policy import ReleasePolicy
from llm_release.policy.yamlio import expand_env, merge_collect, read_yaml_mapping


class Connections(StrictModel):
    """Airflow connection ids; secrets stay in the connections, never in this file."""

    router_conn_id: str = "llm_traffic_router"
    metrics_conn_id: str = "llm_metrics_source"
    # Model endpoints are not listed here: each registry version names its own endpoint connection
    # (tag ``llm_release.endpoint_conn_id``), so the release always talks to what the registry says.


class Notifications(StrictModel):
    """Where notices go. Which roles hear about what is the policy's (``decisions.notices``); this maps
    each role to its contacts (e-mail addresses, chat handles). A role without contacts is addressed by
    its name in the message."""

    contacts: dict[Identifier, list[str]] = {}
    webhook_conn_id: str | None = None
    """Airflow connection whose host is a Slack-compatible webhook URL; None: log and audit only."""


class ReleaseConfig(StrictModel):
    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    """Registered model name in the model registry."""
    model_type: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
    """Prefix of version names, e.g. ``support-llm`` -> ``support-llm-2025-W22-3-prod``."""
    profile: str = DEFAULT_PROFILE
    """Shipped profile name or path to a policy YAML file (relative to this config file)."""
    policy: dict[str, Any] = {}
    """Overrides deep-merged onto the profile, then validated as a whole ``ReleasePolicy``."""
    approvers: dict[Identifier, list[str]] = {}
    """Role id -> Airflow usernames allowed to approve for that role."""
    time_scale: float = Field(default=1.0, gt=0, le=1)
    """Multiplies every policy duration (0.0005 turns a 2-hour dwell into 3.6 s in the sandbox)."""
    schedule: str | None = None
    release_type: Identifier | None = None
    """Default release type for scheduled runs (a run parameter can override it)."""
    connections: Connections = Connections()
    mlflow_tracking_uri: str = Field(min_length=1)
    """MLflow tracking/registry URI, e.g. ``sqlite:///.../mlflow.db`` locally."""
    mlflow_artifact_root: str | None = None
    """Where release runs store artifacts (evidence, reports); None: MLflow's default (./mlruns)."""
    mlflow_ui_url: str | None = None
    """Base URL of the MLflow UI, for the tasks' "MLflow release run" link."""
    audit_path: str = Field(min_length=1)
    """Append-only JSONL audit trail of every release of this model."""
    tickets_dir: str = Field(min_length=1)
    """Where remediation, incident and post-incident-review tickets are kept."""
    notifications: Notifications = Notifications()
    datasets: dict[Identifier, str] = {}
    """Optional overrides of shipped dataset paths, keyed by dataset name."""
    max_hold_factor: float = Field(default=3.0, ge=1.0)
    """A phase still held (paused) after dwell x this fails closed, which rolls the release back."""
    owner: str = "llm-release"
    tags: list[str] = []

    _policy: ReleasePolicy | None = PrivateAttr(default=None)
    _source: str = PrivateAttr(default="<config>")

    @field_validator("approvers")
    @classmethod
    def _usernames(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, users in value.items():
            if any(not isinstance(u, str) or not u.strip() for u in users):
                raise ValueError(f"role {role!r}: usernames must be non-empty strings")
            if len(set(users)) != len(users):
                raise ValueError(f"role {role!r}: a username is listed twice")
        return value

    @property
    def release_policy(self) -> ReleasePolicy:
        """The profile with this config's overrides applied (resolved on first use)."""
        if self._policy is None:
            self._policy = self.resolve_policy()
        return self._policy

    def resolve_policy(self, label: str | None = None, base_dir: Path | None = None) -> ReleasePolicy:
        """Merge ``policy`` onto ``profile``, validate, and check approvers and release type against it."""
        label = label or self._source
        profile: str | Path = self.profile
        if (
            base_dir is not None
            and self.profile.endswith((".yaml", ".yml"))
            and not Path(self.profile).is_absolute()
        ):
            profile = base_dir / self.profile
        try:
            base, _ = resolve_policy_document(profile)
        except PolicyError as exc:
            raise PolicyError([f"{label}: profile: {line}" for line in exc.problems]) from None
        merged, problems = merge_collect(base, self.policy, label, ("policy",))
        try:
            policy = validate_policy_mapping(merged, label, prefix=("policy",))
        except PolicyError as exc:
            raise PolicyError(problems + exc.problems) from None
        problems += self._check_against(policy, label)
        if problems:
            raise PolicyError(problems)
        self._policy = policy
        return policy

    def _check_against(self, policy: ReleasePolicy, label: str) -> list[str]:
        problems: list[str] = []
        valid_roles = policy.approvals.role_ids()
        for role in self.approvers:
            if role not in valid_roles:
                problems.append(
                    f"{label}: approvers.{role}: unknown role{suggestion(role, valid_roles)} "
                    f"(roles: {', '.join(valid_roles)})"
                )
        known = list(dict.fromkeys([*valid_roles, *policy.notified_roles()]))
        for role in self.notifications.contacts:
            if role not in known:
                problems.append(
                    f"{label}: notifications.contacts.{role}: no notice of the policy addresses role {role!r}"
                    f"{suggestion(role, known)} (roles: {', '.join(known)})"
                )
        needed = policy.possible_approver_roles()
        for role in needed:
            if not self.approvers.get(role):
                problems.append(
                    f"{label}: approvers.{role}: the policy may require a {policy.approvals.title(role)} "
                    f"but no user is listed for role {role!r}"
                )
        if (
            policy.approvals.distinct_people
            and not problems
            and not _distinct_assignment({role: self.approvers[role] for role in needed})
        ):
            problems.append(
                f"{label}: approvers: roles {needed} must be signed by distinct people, but the listed "
                f"users cannot cover them all with different persons"
            )
        if self.release_type is not None:
            valid = [t.id for t in policy.risk.release_types]
            if self.release_type not in valid:
                problems.append(
                    f"{label}: release_type: unknown release type {self.release_type!r}"
                    f"{suggestion(self.release_type, valid)} (valid: {', '.join(valid)})"
                )
        return problems

    def users_for(self, role: str) -> list[str]:
        return list(self.approvers.get(role, []))


def _distinct_assignment(candidates: dict[str, list[str]]) -> bool:
    """Whether each role can get a different person (bipartite matching, augmenting paths)."""
    owner: dict[str, str] = {}

    def assign(role: str, visited: set[str]) -> bool:
        for user in candidates[role]:
            if user in visited:
                continue
            visited.add(user)
            if user not in owner or assign(owner[user], visited):
                owner[user] = role
                return True
        return False

    return all(assign(role, set()) for role in candidates)


def load_release_config(path: str | Path) -> ReleaseConfig:
    """Load, expand ``${VAR}``, validate a release config and resolve its policy.

    Raises ``PolicyError`` with every problem as ``<file>: <field.path>: <reason>``.
    """
    path = Path(path)
    label = str(path)
    data = expand_env(read_yaml_mapping(path), label)
    try:
        config = ReleaseConfig.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, label, ReleaseConfig)
        # Report problems in the policy overrides in the same pass, so one run lists every mistake.
        overrides = data.get("policy", {})
        policy_field_failed = any(err["loc"][:1] == ("policy",) for err in exc.errors())
        if isinstance(overrides, dict) and not policy_field_failed:
            problems += _policy_problems(data, overrides, label, path.parent)
        raise PolicyError(problems) from None
    config._source = label
    config.resolve_policy(label, base_dir=path.parent)
    return config


def _policy_problems(
    data: dict[str, Any], overrides: dict[str, Any], label: str, base_dir: Path
) -> list[str]:
    profile = data.get("profile", DEFAULT_PROFILE)
    if not isinstance(profile, str):
        return []
    source: str | Path = base_dir / profile if profile.endswith((".yaml", ".yml")) else profile
    try:
        base, _ = resolve_policy_document(source)
    except PolicyError as exc:
        return [f"{label}: profile: {line}" for line in exc.problems]
    merged, problems = merge_collect(base, overrides, label, ("policy",))
    try:
        policy = validate_policy_mapping(merged, label, prefix=("policy",))
    except PolicyError as exc:
        return problems + exc.problems
    approvers, release_type = data.get("approvers", {}), data.get("release_type")
    well_formed = isinstance(approvers, dict) and all(
        isinstance(users, list) and all(isinstance(u, str) for u in users) for users in approvers.values()
    )
    if well_formed and (release_type is None or isinstance(release_type, str)):
        partial = ReleaseConfig.model_construct(approvers=approvers, release_type=release_type)
        problems += partial._check_against(policy, label)
    return problems
