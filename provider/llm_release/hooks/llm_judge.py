"""Hook for the rubric LLM judge (any OpenAI-compatible endpoint) stored as an Airflow connection.

Connection fields: host (or a full base URL), port, schema (http/https), password (the API key).
Extra: ``model`` (required: it is part of every cache key), ``price_per_1k_input`` and
``price_per_1k_output`` (currency per 1,000 tokens, for the cost count), ``cache_dir`` (where the verdict
cache lives; none: no cache), ``timeout_s`` (bounds a request, retries included), ``json_mode`` (ask
for ``response_format: json_object``), ``max_retries``.

How the judge is run (repeats, agreement floor, rubric version, concurrency) and for which use is the
release policy's ``judging`` section: :meth:`LLMJudgeHook.judge_for`. The API key stays in the
connection: it is never logged, and neither the settings nor the judge show it in ``repr``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from llm_release.hooks.model_endpoint import connection_base_url, connection_extra

if TYPE_CHECKING:
    from llm_release.integrations.judge_selection import JudgeSelection, LLMJudgeSettings
    from llm_release.integrations.llm_judge import LLMJudge
    from llm_release.policy import JudgeUse, ReleasePolicy

_BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}


def _number(conn_id: str, extra: dict[str, Any], key: str, default: float, cast: type = float) -> Any:
    value = extra.get(key, default)
    if value is None or value == "":
        return default
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise ValueError(f"connection {conn_id!r}: extra field {key!r} must be a number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"connection {conn_id!r}: extra field {key!r} must be >= 0, got {value!r}")
    return number


def _flag(conn_id: str, extra: dict[str, Any], key: str) -> bool:
    value = extra.get(key, False)
    if isinstance(value, bool):
        return value
    if str(value).strip().lower() in _BOOLS:
        return _BOOLS[str(value).strip().lower()]
    raise ValueError(f"connection {conn_id!r}: extra field {key!r} must be true or false, got {value!r}")


class LLMJudgeHook(BaseHook):
    """Build the LLM judge from an ``llm_judge`` connection (see the module docstring for its fields)."""

    conn_name_attr = "llm_judge_conn_id"
    default_conn_name = "llm_judge_default"
    conn_type = "llm_judge"
    hook_name = "LLM Judge (OpenAI-compatible)"

    def __init__(self, llm_judge_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = llm_judge_conn_id

    def settings(self) -> LLMJudgeSettings:
        """The connection as :class:`LLMJudgeSettings`; bad fields raise naming the connection and field."""
        from llm_release.integrations.judge_selection import LLMJudgeSettings

        conn = self.get_connection(self.conn_id)
        extra = connection_extra(conn)
        model = extra.get("model")
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"connection {self.conn_id!r}: extra field 'model' must name the judge model")
        cache_dir = extra.get("cache_dir")
        if cache_dir is not None and not isinstance(cache_dir, str):
            raise ValueError(f"connection {self.conn_id!r}: extra field 'cache_dir' must be a path string")
        timeout_s = _number(self.conn_id, extra, "timeout_s", 60.0)
        if timeout_s <= 0:
            raise ValueError(f"connection {self.conn_id!r}: extra field 'timeout_s' must be > 0")
        return LLMJudgeSettings(
            base_url=connection_base_url(conn),
            model=model.strip(),
            api_key=conn.password or None,
            timeout_s=timeout_s,
            price_per_1k_input=_number(self.conn_id, extra, "price_per_1k_input", 0.0),
            price_per_1k_output=_number(self.conn_id, extra, "price_per_1k_output", 0.0),
            cache_dir=cache_dir or None,
            json_mode=_flag(self.conn_id, extra, "json_mode"),
            max_retries=_number(self.conn_id, extra, "max_retries", 2, int),
        )

    def judge_for(self, policy: ReleasePolicy, use: JudgeUse) -> JudgeSelection:
        """The judge setup the policy asks for this use, built on this connection."""
        from llm_release.integrations.judge_selection import judge_for

        return judge_for(policy, use, self.settings())

    def get_conn(self, policy: ReleasePolicy | None = None) -> LLMJudge:
        """The judge run as ``policy.judging.llm`` says (or with the client's defaults without a policy)."""
        from llm_release.integrations.judge_selection import build_llm_judge
        from llm_release.integrations.llm_judge import LLMJudge

        settings = self.settings()
        if policy is not None:
            return build_llm_judge(policy, settings)
        cache = None
        if settings.cache_dir:
            from llm_release.integrations.judge_cache import JudgeCache

            cache = JudgeCache.in_dir(settings.cache_dir)
        return LLMJudge(base_url=settings.base_url, model=settings.model, api_key=settings.api_key,
                        timeout_s=settings.timeout_s, cache=cache, price_per_1k_input=settings.price_per_1k_input,
                        price_per_1k_output=settings.price_per_1k_output, max_retries=settings.max_retries,
                        json_mode=settings.json_mode)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["login"],
            "relabeling": {"password": "API key", "host": "Host or base URL"},
            "placeholders": {"host": "https://judge.internal/v1", "schema": "https"},
        }
