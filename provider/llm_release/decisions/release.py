"""Opening and closing a release: whether a candidate may start, the typed record of it, and its outcome.

``open_release`` is the one enforcer of the spec's entry rules for a release (section 7: no release
while a post-incident review is outstanding; a production version to roll back to must exist; the
candidate is not already production; both versions are reachable), and the one place a release is
named (section 8, through ``decisions.versioning`` and the policy's naming settings). The shell
(``PrepareReleaseOperator``) only fetches the facts from the registry, the ticket store and the audit
trail and persists what this returns.

``ReleaseRecord`` is what every later task reads (from the ``prepare`` task's XCom): typed and frozen,
so a misspelt key is an error at the reader rather than a silent ``None``.

``release_outcome`` is the one place that says how a release ended. Its rule: a release is promoted only
when the promotion succeeded and nothing failed; everything else (rejected, rolled back, a failed task,
a release that never opened) is a failure, and the run must end failed so that its colour tells the
truth. ``CloseReleaseOperator`` asks Airflow for the task states and calls it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from llm_release.decisions.risk import RiskAssessment, assess_risk
from llm_release.decisions.rollout import RolloutPlan, plan_rollout
from llm_release.decisions.versioning import (
    next_increment,
    parse_version_name,
    rejected_tag,
    release_id_of,
    version_name,
)
from llm_release.policy import ReleasePolicy

PROMOTED = "promoted"


class ReleaseRefused(ValueError):
    """The release may not start; the message says why and what to do about it."""


class VersionRef(BaseModel):
    """One registered model version as the release talks to it."""

    model_config = ConfigDict(frozen=True)

    version: str
    backend: str
    """The traffic router's name for the serving deployment (registry tag ``llm_release.backend``)."""
    endpoint_conn_id: str
    """Airflow connection of its OpenAI-compatible endpoint (registry tag ``llm_release.endpoint_conn_id``)."""


class VersionFacts(BaseModel):
    """What the registry says about a version (``None`` where a tag is missing)."""

    model_config = ConfigDict(frozen=True)

    version: str
    backend: str | None = None
    endpoint_conn_id: str | None = None


class ReleaseRecord(BaseModel):
    """Everything later tasks need about the release, decided once by ``open_release``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    release_id: str
    """The version name without its stage suffix, e.g. ``support-llm-2026-W47-1``."""
    version_name: str
    """The name at the stage the release opened in (``...-dev``)."""
    model_name: str
    model_type: str
    candidate: VersionRef
    production: VersionRef
    release_type: str
    change_summary: str = ""
    risk: RiskAssessment
    plan: RolloutPlan
    clean_release_streak: int
    opened_at: datetime
    time_scale: float
    airflow_run_id: str = ""
    mlflow_run_id: str | None = None
    mlflow_ui_url: str | None = None

    def name_at(self, stage: str, policy: ReleasePolicy) -> str:
        """This release's version name at ``stage`` (a stage key such as ``rejected`` or ``production``)."""
        return parse_version_name(self.version_name, policy.versioning).with_stage(stage, policy.versioning)

    def rejection_tag(self, policy: ReleasePolicy, today: date, existing_tags: Iterable[str] = ()) -> str:
        """The registry tag of this release's rejection (``REJECTED-<date>-<release id>`` by default).

        Built by ``decisions.versioning.rejected_tag`` from the policy's template. When the candidate
        already carries this release's rejection tag (a retried rejection, perhaps after midnight), that
        tag's date is reused so a retry converges on one tag instead of adding a second.
        """
        template = policy.decision_engine.rejection.registry_tag_template
        marker = "\x00"
        prefix, _, suffix = template.format(date=marker, version=self.release_id).partition(marker)
        for tag in sorted(existing_tags):
            if not (tag.startswith(prefix) and tag.endswith(suffix)) or len(tag) <= len(prefix) + len(suffix):
                continue
            middle = tag[len(prefix) : len(tag) - len(suffix)]
            try:
                when = date.fromisoformat(middle)
            except ValueError:
                continue
            if rejected_tag(when, self.release_id, template) == tag:
                return tag
        return rejected_tag(today, self.release_id, template)


def clean_release_streak(closed_outcomes: Sequence[str]) -> int:
    """Consecutive releases, newest last in ``closed_outcomes``, that were promoted without a rollback."""
    streak = 0
    for outcome in reversed(closed_outcomes):
        if outcome != PROMOTED:
            break
        streak += 1
    return streak


def _reachable(label: str, facts: VersionFacts) -> VersionRef:
    if not facts.endpoint_conn_id or not facts.backend:
        missing = [n for n, v in (("llm_release.endpoint_conn_id", facts.endpoint_conn_id),
                                  ("llm_release.backend", facts.backend)) if not v]
        raise ReleaseRefused(
            f"{label} version {facts.version}: registry tag(s) {', '.join(missing)} missing; "
            "the release cannot reach it"
        )
    return VersionRef(version=facts.version, backend=facts.backend, endpoint_conn_id=facts.endpoint_conn_id)


def open_release(
    policy: ReleasePolicy,
    *,
    model_name: str,
    model_type: str,
    candidate: VersionFacts,
    production: VersionFacts | None,
    release_type: str,
    change_summary: str,
    open_reviews: Sequence[str],
    used_version_names: Sequence[str],
    closed_outcomes: Sequence[str],
    now: datetime,
    time_scale: float,
    airflow_run_id: str = "",
) -> ReleaseRecord:
    """Decide whether the release may open and, if so, name it, score its risk and plan its rollout.

    ``open_reviews``: ids of this model's post-incident reviews still open (spec section 7 refuses the
    next release until each is closed). ``used_version_names``: names earlier releases took (the
    increment counts the week's candidates). ``closed_outcomes``: this model's earlier release outcomes,
    oldest first (three clean ones shorten the canary, spec section 1).
    """
    if open_reviews:
        raise ReleaseRefused(
            f"post-incident review outstanding for {model_name} (ticket {', '.join(open_reviews)}); "
            "close it before the next release (spec section 7)"
        )
    if production is None:
        raise ReleaseRefused(
            f"registered model {model_name!r} has no 'production' alias: no version to roll back to"
        )
    if production.version == candidate.version:
        raise ReleaseRefused(f"candidate version {candidate.version} is already in production")
    cand = _reachable("candidate", candidate)
    prod = _reachable("production", production)
    naming = policy.versioning
    increment = next_increment(used_version_names, model_type, now.date(), naming)
    first_name = version_name(model_type, now.date(), increment, "development", naming)
    streak = clean_release_streak(closed_outcomes)
    risk = assess_risk(policy.risk, policy.approvals, release_type)
    plan = plan_rollout(policy, risk.level, clean_release_streak=streak)
    return ReleaseRecord(
        release_id=release_id_of(first_name, naming),
        version_name=first_name,
        model_name=model_name,
        model_type=model_type,
        candidate=cand,
        production=prod,
        release_type=risk.release_type,
        change_summary=change_summary,
        risk=risk,
        plan=plan,
        clean_release_streak=streak,
        opened_at=now,
        time_scale=time_scale,
        airflow_run_id=airflow_run_id,
    )


Outcome = Literal["promoted", "rejected", "rolled_back", "failed"]


class OutcomeTasks(BaseModel):
    """Ids of the tasks whose states decide a release's outcome (passed in by ``pipeline.py``)."""

    model_config = ConfigDict(frozen=True)

    prepare: str
    promote: str
    reject: str
    rollback: str


class ReleaseOutcome(BaseModel):
    """How a release ended, in one word and one line for people."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    reason: str
    failed_tasks: tuple[str, ...] = ()
    """Tasks in state ``failed``, in DAG order (the first is where the release first broke)."""

    @property
    def promoted(self) -> bool:
        return self.outcome == PROMOTED

    @property
    def run_status(self) -> Literal["FINISHED", "FAILED"]:
        """The MLflow run status this outcome ends the release run with."""
        return "FINISHED" if self.promoted else "FAILED"


def _in_order(task_ids: Iterable[str], order: Sequence[str]) -> tuple[str, ...]:
    rank = {task_id: index for index, task_id in enumerate(order)}
    return tuple(sorted(task_ids, key=lambda t: (rank.get(t, len(rank)), t)))


def release_outcome(
    states: Mapping[str, str | None],
    tasks: OutcomeTasks,
    *,
    opened: bool,
    task_order: Sequence[str] = (),
    refusal: str | None = None,
    rollback_trigger: str | None = None,
) -> ReleaseOutcome:
    """Decide how the release ended from its tasks' final states.

    ``states``: task id -> Airflow state name for every task of the run except the closing one.
    ``opened``: whether ``prepare`` produced a release record. ``task_order``: the DAG's topological
    order, to name the first failure first. ``refusal``: why ``prepare`` refused to open the release,
    when it said so. ``rollback_trigger``: the breached trigger the rollback reported.

    Promoted only when the release opened, the promotion succeeded, and no task failed (a failure
    path that itself crashed, for instance, is not a clean release). In precedence order otherwise:
    not opened, rolled back, rejected, some task failed, and "ended without promotion".
    """
    failed = _in_order((t for t, state in states.items() if state == "failed"), task_order)
    prepare_state = states.get(tasks.prepare)
    if not opened or prepare_state != "success":
        why = refusal or f"task {tasks.prepare!r} ended {prepare_state or 'without a state'}"
        return ReleaseOutcome(outcome="failed", reason=f"release not opened: {why}", failed_tasks=failed)
    if states.get(tasks.rollback) == "success":
        return ReleaseOutcome(
            outcome="rolled_back", reason=rollback_trigger or "a rollout task failed", failed_tasks=failed
        )
    if states.get(tasks.reject) == "success":
        return ReleaseOutcome(outcome="rejected", reason=_failed_line(failed), failed_tasks=failed)
    if failed:
        return ReleaseOutcome(outcome="failed", reason=_failed_line(failed), failed_tasks=failed)
    if states.get(tasks.promote) == "success":
        return ReleaseOutcome(outcome="promoted", reason="promoted to production")
    return ReleaseOutcome(
        outcome="failed",
        reason=f"ended without promotion (task {tasks.promote!r} {states.get(tasks.promote) or 'did not run'})",
    )


def _failed_line(failed: Sequence[str]) -> str:
    return ("failed " + ", ".join(failed)) if failed else "no task reported the failure"


def rejection_tickets(policy: ReleasePolicy, decision_band: str | None) -> tuple[str, ...]:
    """Tickets a rejection opens (spec section 4), by kind, without duplicates.

    A remediation ticket with the failure context when ``decision_engine.rejection.create_remediation_ticket``
    is set, plus whatever the decision score's band creates when the score is what blocked the release
    (``routing_bands.creates_ticket``: the remediation queue for 70-77, an incident for a hard rejection
    below 70). ``decision_band`` is None when something other than the score failed.
    """
    kinds: list[str] = []
    if policy.decision_engine.rejection.create_remediation_ticket:
        kinds.append("remediation")
    if decision_band is not None:
        created = policy.decision_engine.band_named(decision_band).creates_ticket
        if created != "none" and created not in kinds:
            kinds.append(created)
    return tuple(kinds)


class RevertTiming(BaseModel):
    """How long the rollback took to put the previous version back, against the recovery target."""

    model_config = ConfigDict(frozen=True)

    seconds: float
    target_seconds: float
    within_target: bool


def revert_timing(policy: ReleasePolicy, seconds: float) -> RevertTiming:
    """Compare a rollback's time to revert with ``recovery.previous_version_serve_seconds`` (spec section 7)."""
    target = float(policy.recovery.previous_version_serve_seconds)
    return RevertTiming(seconds=round(float(seconds), 3), target_seconds=target, within_target=seconds <= target)
