"""Release notifications: rejection, rollback and other notices to the roles the policy names.

``ReleaseNotifier`` is an Airflow notifier (usable as ``on_failure_callback``) and the operators call
:func:`notify_release_event` directly. Who is addressed comes from ``decisions.notices.notice_roles``
(the policy owns each audience); the release config maps a role to its contacts
(``notifications.contacts``). Messages go to a webhook connection (Slack-compatible JSON,
``{"text": ...}``) when ``notifications.webhook_conn_id`` is configured, and always to the task log
and the audit trail, so a notice is never lost when no webhook is set up.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseHook, BaseNotifier


def format_notice(kind: str, release: Any, details: dict[str, Any]) -> str:
    if hasattr(release, "model_dump"):
        release = release.model_dump(mode="json")
    head = {
        "rejection": f"Release {release['release_id']} REJECTED",
        "rollback": f"Release {release['release_id']} ROLLED BACK",
        "stage_result": f"Release {release['release_id']}: {details.get('stage')} gate "
        f"{'passed' if details.get('passed') else 'FAILED'}",
    }.get(kind, f"Release {release['release_id']}: {kind}")
    reason = details.get("trigger") or ", ".join(details.get("failed_tasks", [])) or details.get("summary", "")
    return (
        f"{head} ({release['model_name']} v{release['candidate']['version']}, "
        f"risk {release['risk']['level']}): {reason}. Tickets: {details.get('tickets') or details.get('ticket')}"
    )


def post_webhook(conn_id: str, text: str) -> None:
    """POST ``{"text": text}`` to the URL held by connection ``conn_id`` (Slack-compatible)."""
    import httpx

    conn = BaseHook.get_connection(conn_id)
    url = conn.host if "://" in (conn.host or "") else f"https://{conn.host}"
    httpx.post(url, json={"text": text}, timeout=10).raise_for_status()


def notify_release_event(
    config: Any,
    kind: str,
    release: Any,
    details: dict[str, Any],
    log: logging.Logger | Any,
    *,
    band: str | None = None,
    stage: str | None = None,
) -> dict[str, Any]:
    """Send one notice to the roles the policy names for ``kind``; return what was sent where (the caller
    records it in the audit trail, before or after sending, so a failing webhook cannot lose it)."""
    from llm_release.decisions.notices import notice_roles

    text = format_notice(kind, release, details)
    roles = notice_roles(config.release_policy, kind, band=band, stage=stage)  # type: ignore[arg-type]
    recipients = {role: config.notifications.contacts.get(role, [role]) for role in roles}
    log.warning("NOTICE to %s: %s", recipients or "(log only)", text)
    sent: dict[str, Any] = {"text": text, "roles": roles, "recipients": recipients, "webhook": None}
    conn_id = getattr(config.notifications, "webhook_conn_id", None)
    if conn_id:
        post_webhook(conn_id, text)
        sent["webhook"] = conn_id
    return sent


class ReleaseNotifier(BaseNotifier):
    """Airflow notifier posting a short release notice (e.g. as a DAG ``on_failure_callback``)."""

    template_fields = ("message", "webhook_conn_id")

    def __init__(self, *, message: str, webhook_conn_id: str | None = None) -> None:
        super().__init__()
        self.message = message
        self.webhook_conn_id = webhook_conn_id

    def notify(self, context: Any) -> None:
        logging.getLogger(__name__).warning("NOTICE: %s", self.message)
        if self.webhook_conn_id:
            post_webhook(self.webhook_conn_id, self.message)
