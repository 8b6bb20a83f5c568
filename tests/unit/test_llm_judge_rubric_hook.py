"""The LLM judge's strict rubric parse and its Airflow hook (no network: the judge is only built)."""

from __future__ import annotations

import json

import pytest

from llm_release.hooks.llm_judge import LLMJudgeHook
from llm_release.integrations.judge_rubric import RubricParseError, parse_reply


@pytest.mark.parametrize("reply", [
    "", "not json", '{"verdict": "correct"}',
    '{"verdict":"correct","hallucinated":false,"policy_violation":false,"violation_category":null,'
    '"score":1.5,"reason":"x"}',
    '{"verdict":"incorrect","hallucinated":false,"policy_violation":true,"violation_category":null,'
    '"score":0,"reason":"x"}',
    '{"verdict":"incorrect","hallucinated":false,"policy_violation":false,"violation_category":null,'
    '"score":0,"reason":"x","extra":1}',
    'Sure! {"verdict":"correct","hallucinated":false,"policy_violation":false,"violation_category":null,'
    '"score":1,"reason":"x"}',
])
def test_rubric_parse_is_strict(reply: str) -> None:
    with pytest.raises(RubricParseError):
        parse_reply(reply)


def test_hook_builds_the_judge_from_a_connection_without_showing_the_key(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path) -> None:
    extra = {"model": "judge-1", "price_per_1k_input": "0.25", "price_per_1k_output": 1, "cache_dir": str(tmp_path)}
    monkeypatch.setenv("AIRFLOW_CONN_J", json.dumps({"conn_type": "llm_judge", "host": "https://judge.example/v1",
                                                     "password": "sk-judge-secret", "extra": extra}))
    settings = LLMJudgeHook("J").settings()
    assert settings.base_url == "https://judge.example/v1" and "sk-judge-secret" not in repr(settings)
    judge = LLMJudgeHook("J").get_conn()
    assert (judge.model, judge.price_per_1k_input, judge.price_per_1k_output) == ("judge-1", 0.25, 1.0)
    assert judge.base_url == "https://judge.example" and judge.cache is not None
    assert "sk-judge-secret" not in repr(judge)
    monkeypatch.setenv("AIRFLOW_CONN_J", json.dumps({"conn_type": "llm_judge", "host": "h",
                                                     "extra": {"model": "m", "price_per_1k_input": "cheap"}}))
    with pytest.raises(ValueError, match=r"'J'.*price_per_1k_input"):
        LLMJudgeHook("J").settings()
    monkeypatch.setenv("AIRFLOW_CONN_J", json.dumps({"conn_type": "llm_judge", "host": "h"}))
    with pytest.raises(ValueError, match=r"'J'.*model"):
        LLMJudgeHook("J").settings()
