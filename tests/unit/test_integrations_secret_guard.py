"""secret_guard: which keys and values count as credentials."""

from __future__ import annotations

import pytest

from llm_release.integrations.secret_guard import (
    SecretLeakError,
    assert_no_secrets,
    find_secrets,
    key_looks_secret,
)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "DB_PASSWORD",
        "api_key",
        "apiKey",
        "X-Api-Key",
        "auth_token",
        "token",
        "Authorization",
        "client_secret",
        "aws_secret_access_key",
        "privateKey",
        "credentials",
        "session-cookie",
    ],
)
def test_secret_keys(key):
    assert key_looks_secret(key)


@pytest.mark.parametrize(
    "key",
    [
        "max_tokens",
        "completion_tokens",
        "prompt_tokens",
        "tokenizer",
        "key_facts",
        "secretary_name",
        "author",
        "api_version",
        "passed",
        "monkey",
    ],
)
def test_ordinary_keys(key):
    assert not key_looks_secret(key)


def test_find_secrets_reports_paths_and_auth_values():
    obj = {
        "a": {"b": [{"ok": 1}, {"Password": "x"}]},
        "h": "Bearer abc.def.ghi",
        "note": "bearer of bad news",
    }
    assert find_secrets(obj) == ["$.a.b[1].Password", "$.h"]
    with pytest.raises(SecretLeakError, match=r"payload looks like it contains credentials at \$\.a\.b\[1\]"):
        assert_no_secrets(obj, "payload")
    assert_no_secrets({"max_tokens": 5, "text": "the token of gratitude"}, "payload")
