"""Hook for an OpenAI-compatible model serving endpoint stored as an Airflow connection.

The connection keeps what is secret (the API key, in the password field) out of DAG code, XCom and
logs; the registry only names the connection id of each model version's endpoint.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from llm_release.integrations.model_endpoint import OpenAIChatEndpoint


def connection_base_url(conn: Any, default_scheme: str = "http") -> str:
    """Build ``scheme://host:port/path`` from a connection, accepting a full URL in ``host``."""
    host = (conn.host or "").rstrip("/")
    if not host:
        raise ValueError(f"connection {conn.conn_id!r}: field 'host' is empty")
    if "://" in host:
        base = host
    else:
        scheme = (conn.schema or default_scheme) if conn.schema in ("http", "https", None, "") else "http"
        base = f"{scheme}://{host}"
        if conn.port:
            base = f"{base}:{conn.port}"
    return base


def connection_extra(conn: Any) -> dict[str, Any]:
    """Return the connection's extra as a dict, with an error naming the connection when it is not JSON."""
    raw = conn.extra
    if not raw:
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"connection {conn.conn_id!r}: field 'extra' is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError(f"connection {conn.conn_id!r}: field 'extra' must be a JSON object")
    # custom form fields may be stored as ``extra__<conn_type>__<field>``: accept both spellings
    prefix = f"extra__{conn.conn_type}__"
    return {key.removeprefix(prefix): v for key, v in value.items()}


_TUNING = {"max_retry_after_s": float, "max_reply_bytes": int}


class ModelEndpointHook(BaseHook):
    """Build an :class:`OpenAIChatEndpoint` from an ``llm_model_endpoint`` connection.

    Connection fields: host (or a full base URL), port, schema (http/https), password (API key).
    Extra: ``model``, ``timeout_s`` (bounds the whole call, retries included), ``max_concurrency``,
    ``max_retries``, ``system_prompt``, ``max_retry_after_s`` (the longest Retry-After honoured),
    ``max_reply_bytes``, ``scale_up_path`` (the deployment's scale-up hook the cold-start measurement
    calls; ``null`` when it has none, which leaves cold start unmeasured and its gate failing).
    """

    conn_name_attr = "llm_model_endpoint_conn_id"
    default_conn_name = "llm_model_endpoint_default"
    conn_type = "llm_model_endpoint"
    hook_name = "LLM Model Endpoint (OpenAI-compatible)"

    def __init__(self, llm_model_endpoint_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = llm_model_endpoint_conn_id

    def get_conn(self) -> OpenAIChatEndpoint:
        from llm_release.integrations.model_endpoint import OpenAIChatEndpoint

        conn = self.get_connection(self.conn_id)
        extra = connection_extra(conn)
        return OpenAIChatEndpoint(
            base_url=connection_base_url(conn),
            model=str(extra.get("model", "default")),
            api_key=conn.password or None,
            timeout_s=float(extra.get("timeout_s", 30.0)),
            max_concurrency=int(extra.get("max_concurrency", 8)),
            max_retries=int(extra.get("max_retries", 2)),
            system_prompt=extra.get("system_prompt"),
            **{k: cast(extra[k]) for k, cast in _TUNING.items() if k in extra},
            **({"scale_up_path": extra["scale_up_path"]} if "scale_up_path" in extra else {}),
        )

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"password": "API key", "host": "Host or base URL"},
            "placeholders": {"host": "127.0.0.1 or https://llm.internal/v1", "schema": "http"},
        }
