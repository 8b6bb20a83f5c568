"""Hook for the traffic router that splits live traffic between model versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from llm_release.hooks.model_endpoint import connection_base_url, connection_extra

if TYPE_CHECKING:
    from llm_release.integrations.router import TrafficRouter


class TrafficRouterHook(BaseHook):
    """Build a :class:`TrafficRouter` from an ``llm_traffic_router`` connection.

    ``extra.kind`` selects the implementation; ``sandbox_gateway`` (the default) drives the admin API
    of the sandbox gateway, which is also the shape a production gateway adapter implements.
    """

    conn_name_attr = "llm_traffic_router_conn_id"
    default_conn_name = "llm_traffic_router"
    conn_type = "llm_traffic_router"
    hook_name = "LLM Traffic Router"

    def __init__(self, llm_traffic_router_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = llm_traffic_router_conn_id

    def base_url(self) -> str:
        return connection_base_url(self.get_connection(self.conn_id))

    def get_conn(self) -> TrafficRouter:
        conn = self.get_connection(self.conn_id)
        kind = connection_extra(conn).get("kind", "sandbox_gateway")
        if kind != "sandbox_gateway":
            raise ValueError(
                f"connection {self.conn_id!r}: extra.kind {kind!r} is not supported (sandbox_gateway)"
            )
        from llm_release.integrations.router import SandboxGatewayRouter

        return SandboxGatewayRouter(connection_base_url(conn))

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login", "password"],
            "relabeling": {"host": "Gateway admin host or URL"},
            "placeholders": {"host": "127.0.0.1", "extra": '{"kind": "sandbox_gateway"}'},
        }
