"""Provider metadata read by Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from llm_release import __version__

INTEGRATION = "LLM Release"


def _endpoint_fields() -> dict[str, Any]:
    return {
        "model": {
            "label": "Model name sent in requests",
            "schema": {"type": ["string", "null"], "default": "default"},
        },
        "timeout_s": {"label": "Request timeout (s)", "schema": {"type": ["number", "null"], "default": 30}},
        "max_concurrency": {
            "label": "Max concurrent requests",
            "schema": {"type": ["integer", "null"], "default": 8},
        },
        "max_retries": {
            "label": "Retries on 429/5xx/timeouts",
            "schema": {"type": ["integer", "null"], "default": 2},
        },
        "system_prompt": {"label": "System prompt", "schema": {"type": ["string", "null"]}},
    }


def _judge_fields() -> dict[str, Any]:
    return {
        "model": {"label": "Judge model name", "schema": {"type": ["string", "null"]}},
        "price_per_1k_input": {
            "label": "Price per 1,000 prompt tokens",
            "schema": {"type": ["number", "null"], "default": 0},
        },
        "price_per_1k_output": {
            "label": "Price per 1,000 completion tokens",
            "schema": {"type": ["number", "null"], "default": 0},
        },
        "cache_dir": {"label": "Verdict cache directory", "schema": {"type": ["string", "null"]}},
        "timeout_s": {"label": "Request timeout (s)", "schema": {"type": ["number", "null"], "default": 60}},
        "json_mode": {"label": "Ask for JSON mode", "schema": {"type": ["boolean", "null"], "default": False}},
        "max_retries": {
            "label": "Retries on 429/5xx/timeouts",
            "schema": {"type": ["integer", "null"], "default": 2},
        },
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-llm-release",
        "name": INTEGRATION,
        "description": "Weekly LLM releases as Airflow DAGs: evaluation, adversarial, bias and shadow gates, "
        "a release decision score, human sign-off per role, and a metric-gated progressive rollout "
        "with automatic rollback, every step in an audit trail.",
        "versions": [__version__],
        "integrations": [{"integration-name": INTEGRATION, "tags": ["software"]}],
        "operators": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "llm_release.operators.prepare",
                    "llm_release.operators.suites",
                    "llm_release.operators.gates",
                    "llm_release.operators.shadow",
                    "llm_release.operators.approvals",
                    "llm_release.operators.rollout",
                    "llm_release.operators.failure",
                ],
            }
        ],
        "sensors": [{"integration-name": INTEGRATION, "python-modules": ["llm_release.sensors.dwell"]}],
        "triggers": [{"integration-name": INTEGRATION, "python-modules": ["llm_release.triggers.rollout"]}],
        "hooks": [
            {
                "integration-name": INTEGRATION,
                "python-modules": [
                    "llm_release.hooks.model_endpoint",
                    "llm_release.hooks.traffic_router",
                    "llm_release.hooks.metrics_source",
                    "llm_release.hooks.llm_judge",
                ],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "llm_release.hooks.model_endpoint.ModelEndpointHook",
                "hook-name": "LLM Model Endpoint (OpenAI-compatible)",
                "connection-type": "llm_model_endpoint",
                "conn-fields": _endpoint_fields(),
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "extra"],
                    "relabeling": {"password": "API key", "host": "Host or base URL"},
                    "placeholders": {"host": "127.0.0.1 or https://llm.internal/v1", "schema": "http"},
                },
            },
            {
                "hook-class-name": "llm_release.hooks.traffic_router.TrafficRouterHook",
                "hook-name": "LLM Traffic Router",
                "connection-type": "llm_traffic_router",
                "conn-fields": {
                    "kind": {
                        "label": "Router kind",
                        "schema": {"type": ["string", "null"], "default": "sandbox_gateway"},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "password", "extra"],
                    "relabeling": {"host": "Gateway admin host or URL"},
                    "placeholders": {"host": "127.0.0.1"},
                },
            },
            {
                "hook-class-name": "llm_release.hooks.metrics_source.MetricsSourceHook",
                "hook-name": "LLM Metrics Source",
                "connection-type": "llm_metrics_source",
                "conn-fields": {
                    "metrics_url": {
                        "label": "Prometheus metrics URL",
                        "schema": {"type": ["string", "null"]},
                    },
                    "samples_url": {
                        "label": "Response samples base URL",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "password", "extra"],
                    "relabeling": {"host": "Gateway host or URL"},
                    "placeholders": {"host": "127.0.0.1"},
                },
            },
            {
                "hook-class-name": "llm_release.hooks.llm_judge.LLMJudgeHook",
                "hook-name": "LLM Judge (OpenAI-compatible)",
                "connection-type": "llm_judge",
                "conn-fields": _judge_fields(),
                "ui-field-behaviour": {
                    "hidden-fields": ["login", "extra"],
                    "relabeling": {"password": "API key", "host": "Host or base URL"},
                    "placeholders": {"host": "https://judge.internal/v1", "schema": "https"},
                },
            },
        ],
        "extra-links": ["llm_release.links.mlflow.MlflowReleaseRunLink"],
        "notifications": ["llm_release.notifications.release.ReleaseNotifier"],
    }
