"""Who hears about what: the roles the policy names for each kind of release notice.

One function so that every notice (rejection, remediation, rollback, a page, a critical monitoring line,
a stage's results) is addressed from the policy field that owns its audience, never from a list written
again in an operator or in the release config.
"""

from __future__ import annotations

from typing import Literal

from llm_release.policy import ReleasePolicy

NoticeKind = Literal["rejection", "rollback", "page", "monitoring_critical", "stage_result"]


def notice_roles(
    policy: ReleasePolicy, kind: NoticeKind, *, band: str | None = None, stage: str | None = None
) -> list[str]:
    """The roles to notify, in order, without duplicates.

    - ``rejection``: ``decision_engine.rejection.notify_roles`` (section 4: model owner, ML lead, release
      manager), plus the decision band's ``notify_roles`` when a band blocked the release (70-77:
      ML lead + Support Ops lead).
    - ``rollback``, ``page``, ``monitoring_critical``: ``monitoring.escalation.critical_notify_roles``
      (section 6: ML lead + Support Ops lead notified at the critical threshold, automatically).
    - ``stage_result``: the stage's ``notify_roles`` (stage 2: the ML engineer; stage 3: the quality lead).
    """
    roles: list[str] = []
    if kind == "rejection":
        roles += policy.decision_engine.rejection.notify_roles
        if band is not None:
            roles += policy.decision_engine.band_named(band).notify_roles
    elif kind in ("rollback", "page", "monitoring_critical"):
        roles += policy.monitoring.escalation.critical_notify_roles
    elif kind == "stage_result":
        if stage is None:
            raise ValueError("a stage_result notice needs the stage")
        roles += policy.stage(stage).notify_roles
    else:
        raise ValueError(f"unknown notice kind {kind!r}")
    return list(dict.fromkeys(roles))
