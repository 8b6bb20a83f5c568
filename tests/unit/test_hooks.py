"""Hooks build clients from Airflow connections; bad connections get errors naming the connection."""

from __future__ import annotations

import json

import pytest
from airflow.sdk import Connection

from llm_release.hooks.metrics_source import MetricsSourceHook
from llm_release.hooks.model_endpoint import ModelEndpointHook, connection_base_url, connection_extra
from llm_release.hooks.traffic_router import TrafficRouterHook


def conn(**kwargs: object) -> Connection:
    return Connection(conn_id=str(kwargs.pop("conn_id", "c")), conn_type=str(kwargs.pop("conn_type", "x")), **kwargs)


def test_base_url_from_host_port_or_full_url() -> None:
    assert connection_base_url(conn(host="127.0.0.1", port=8701)) == "http://127.0.0.1:8701"
    assert connection_base_url(conn(host="https://llm.internal/v1/")) == "https://llm.internal/v1"
    with pytest.raises(ValueError, match=r"'c'.*host"):
        connection_base_url(conn(host=""))


def test_extra_accepts_plain_and_form_prefixed_keys_and_names_bad_json() -> None:
    c = conn(conn_type="llm_model_endpoint", extra=json.dumps({"extra__llm_model_endpoint__model": "m", "x": 1}))
    assert connection_extra(c) == {"model": "m", "x": 1}
    with pytest.raises(ValueError, match=r"'bad'.*not valid JSON"):
        connection_extra(conn(conn_id="bad", extra="{nope"))


def test_hooks_build_clients_from_environment_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_EP", json.dumps({"conn_type": "llm_model_endpoint", "host": "127.0.0.1",
                                                      "port": 9, "password": "sk-secret",
                                                      "extra": {"model": "bot", "max_concurrency": 3}}))
    monkeypatch.setenv("AIRFLOW_CONN_GW", json.dumps({"conn_type": "llm_metrics_source", "host": "127.0.0.1",
                                                      "port": 8700}))
    endpoint = ModelEndpointHook("EP").get_conn()
    assert endpoint.base_url.startswith("http://127.0.0.1:9") and endpoint.model == "bot"
    assert "sk-secret" not in repr(endpoint)
    assert MetricsSourceHook("GW").endpoints() == {"metrics_url": "http://127.0.0.1:8700/metrics",
                                                   "samples_url": "http://127.0.0.1:8700"}
    router = TrafficRouterHook("GW").get_conn()
    assert type(router).__name__ == "SandboxGatewayRouter"


def test_endpoint_hook_passes_the_measurement_settings_of_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real deployment points the cold-start measurement at its own scale-up hook (or has none)."""
    extra = {"max_retry_after_s": 3, "max_reply_bytes": 4096, "scale_up_path": "/ops/scale-up"}
    monkeypatch.setenv("AIRFLOW_CONN_EP", json.dumps({"conn_type": "llm_model_endpoint", "host": "127.0.0.1",
                                                      "port": 9, "extra": extra}))
    endpoint = ModelEndpointHook("EP").get_conn()
    assert (endpoint.max_retry_after_s, endpoint.max_reply_bytes) == (3.0, 4096)
    assert endpoint.scale_up_path == "/ops/scale-up"
    monkeypatch.setenv("AIRFLOW_CONN_EP", json.dumps({"conn_type": "llm_model_endpoint", "host": "127.0.0.1",
                                                      "extra": {"scale_up_path": None}}))
    assert ModelEndpointHook("EP").get_conn().scale_up_path is None
