"""Hook for the source of live serving metrics (the gateway's Prometheus endpoint) and samples."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from llm_release.hooks.model_endpoint import connection_base_url, connection_extra

if TYPE_CHECKING:
    from llm_release.integrations.metrics import GatewayMetricsSource, GatewaySampleSource


class MetricsSourceHook(BaseHook):
    """Describe where live metrics and response samples are read.

    Triggers run in the triggerer and must be serialisable, so besides building clients this hook
    exposes :meth:`endpoints`, the plain URLs a trigger needs.
    """

    conn_name_attr = "llm_metrics_source_conn_id"
    default_conn_name = "llm_metrics_source"
    conn_type = "llm_metrics_source"
    hook_name = "LLM Metrics Source"

    def __init__(self, llm_metrics_source_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = llm_metrics_source_conn_id

    def endpoints(self) -> dict[str, str]:
        conn = self.get_connection(self.conn_id)
        base = connection_base_url(conn)
        extra = connection_extra(conn)
        return {
            "metrics_url": str(extra.get("metrics_url") or f"{base}/metrics"),
            "samples_url": str(extra.get("samples_url") or base),
        }

    def get_conn(self) -> tuple[GatewayMetricsSource, GatewaySampleSource]:
        from llm_release.integrations.metrics import GatewayMetricsSource, GatewaySampleSource

        urls = self.endpoints()
        return GatewayMetricsSource(urls["metrics_url"]), GatewaySampleSource(urls["samples_url"])

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "password"],
            "relabeling": {"host": "Gateway host or URL"},
            "placeholders": {"extra": '{"metrics_url": "http://127.0.0.1:8700/metrics"}'},
        }
