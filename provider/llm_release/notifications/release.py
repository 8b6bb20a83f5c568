"""Release notifications: rejection and rollback notices to the people the spec names.

``ReleaseNotifier`` is an Airflow notifier (usable as ``on_failure_callback``) and the operators call
:func:`notify_release_event` directly. Messages go to a webhook connection (Slack-compatible JSON,
``{"text": ...}``) when ``notifications.webhook_conn_id`` is configured, and always to the task log
and the audit trail, so a notice is never lost when no webhook is set up.
"""

from __future__ import annotations

import logging
from typing import Any

from airflow.sdk import BaseHook, BaseNotifier


def format_notice(kind: str, release: dict[str, Any], details: dict[str, Any]) -> str:
    head = {
        "rejection": f"Release {release['release_id']} REJECTED",
        "rollback": f"Release {release['release_id']} ROLLED BACK",
    }.get(kind, f"Release {release['release_id']}: {kind}")
    reason = details.get("trigger") or ", ".join(details.get("failed_tasks", []))
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
    config: Any, kind: str, release: dict[str, Any], details: dict[str, Any], log: logging.Logger | Any
) -> dict[str, Any]:
    """Send one notice; return what was sent where (recorded by the caller in the audit trail)."""
    text = format_notice(kind, release, details)
    recipients = list(getattr(config.notifications, "recipients", []) or [])
    log.warning("NOTICE to %s: %s", recipients or "(log only)", text)
    sent: dict[str, Any] = {"text": text, "recipients": recipients, "webhook": None}
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
